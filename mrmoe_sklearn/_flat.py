"""A network's trainable parameters as views of one buffer, for a one-tensor optimiser step.

A training step costs every parameter tensor a few microseconds on its own
wherever it is handled one at a time: the optimiser's bookkeeping and its
update kernel, the gradient norm, the gradient reset. MR-MoE has 21 such
tensors of a few hundred values each, and at short series these fixed costs
add up to a measurable part of the step. :class:`FlatParameters` keeps the
values of all of them in one buffer and their gradients in another (each
parameter and each gradient a view of its part), so that the optimiser
updates one tensor, the gradient norm is taken once and the reset is one
fill. The modules, their parameters and their ``state_dict`` stay as they
are; only the optimiser sees the buffer.

Element-wise optimisers (SGD, Adam, AdamW: each value's update reads only
that value, its gradient and its own state) compute on the buffer what they
compute on the separate tensors. Every parameter is stepped at every batch,
also where a batch gave it no gradient (its gradient is then 0, not None);
the package's networks give every parameter a gradient at every batch. A
gradient that a callback replaces (``param.grad = ...``) before the step is
copied into the buffer first (:meth:`FlatParameters.gather`).
"""

import torch

__all__ = ["FlatParameters", "ELEMENTWISE_OPTIMIZERS"]

#: Optimisers whose update of a value reads only that value's gradient and state,
#: so that one buffer is stepped as its parts would be.
ELEMENTWISE_OPTIMIZERS = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


class FlatParameters:
    """Parameters whose values and gradients are views of two buffers.

    Parameters
    ----------
    params : list of torch.nn.Parameter
        Dense, all on one device and of one floating dtype, each listed once.
    flat : torch.nn.Parameter or None, default=None
        The buffer of the values (an optimiser's parameter) to link them to
        again, e.g. after unpickling: the parameters' current values are
        copied into it (it may be empty, as :meth:`unlink` leaves it). None
        makes a new one.

    Attributes
    ----------
    flat : torch.nn.Parameter
        The values, the parameters' in their order; ``flat.grad`` holds the
        gradients.
    """

    def __init__(self, params, flat=None):
        self.params = list(params)
        self._sizes = [p.numel() for p in self.params]
        n = sum(self._sizes)
        first = self.params[0]
        if flat is None:
            flat = torch.nn.Parameter(torch.empty(n, dtype=first.dtype, device=first.device))
        elif flat.shape not in ((n,), (0,)) or flat.dtype != first.dtype or flat.device != first.device:
            raise ValueError(
                f"The optimiser's flat parameter (shape {tuple(flat.shape)}, {flat.dtype}, {flat.device}) does not "
                f"match the network's {len(self.params)} parameters ({n} values, {first.dtype}, {first.device})."
            )
        self.flat = flat
        self.link()

    @classmethod
    def build(cls, params, flat=None):
        """A :class:`FlatParameters` of ``params``, or None where they cannot share one buffer.

        Parameters
        ----------
        params : iterable of torch.nn.Parameter
            Those not requiring a gradient are left out; a parameter listed
            twice counts once.
        flat : torch.nn.Parameter or None, default=None
            See :class:`FlatParameters`.

        Returns
        -------
        FlatParameters or None
            None without parameters, or where they differ in device or dtype,
            are sparse or not floating point.
        """
        unique, seen = [], set()
        for p in params:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                unique.append(p)
        if not unique:
            return None
        first = unique[0]
        if not first.dtype.is_floating_point or any(
            p.layout != torch.strided or p.device != first.device or p.dtype != first.dtype for p in unique
        ):
            return None
        return cls(unique, flat)

    def link(self):
        """Make every parameter a view of :attr:`flat` (its current values copied in) and its
        gradient a view of ``flat.grad`` (all 0)."""
        flat = self.flat
        if flat.numel() != sum(self._sizes):  # emptied by unlink
            flat.data = torch.empty(sum(self._sizes), dtype=flat.dtype, device=flat.device)
        if flat.grad is None or flat.grad.shape != flat.shape:
            flat.grad = torch.zeros_like(flat)
        else:
            flat.grad.zero_()
        values, grads = flat.detach().split(self._sizes), flat.grad.split(self._sizes)
        with torch.no_grad():
            for p, v in zip(self.params, values):
                if p.data_ptr() != v.data_ptr():
                    v.copy_(p.detach().reshape(-1))
        self._grads = []
        for p, v, g in zip(self.params, values, grads):
            p.data = v.view(p.shape)
            p.grad = g.view(p.shape)
            self._grads.append(p.grad)
        self._pointers = [p.data_ptr() for p in self.params]
        self._grad_buffer = flat.grad

    def linked(self):
        """Whether every parameter and gradient is still the view :meth:`link` made.

        Moving or converting a module (``module.to``), assigning
        ``param.data`` or ``param.grad``, :meth:`unlink` or unpickling break
        the link; :meth:`zero_grad` then links again.
        """
        return (
            self._grad_buffer is not None
            and self.flat.grad is self._grad_buffer
            and all(p.grad is g for p, g in zip(self.params, self._grads))
            and all(p.data_ptr() == ptr for p, ptr in zip(self.params, self._pointers))
        )

    def zero_grad(self):
        """Set every gradient to 0, in one fill (linking the parameters again where needed)."""
        if self.linked():
            self._grad_buffer.zero_()
        else:
            self.link()

    def gather(self):
        """Copy into the gradient buffer every gradient that was replaced rather than changed in
        place since :meth:`link` (a callback's ``param.grad = ...``; None counts as 0), and make
        the parameter's gradient its view again."""
        for p, g in zip(self.params, self._grads):
            if p.grad is not g:
                if p.grad is None:
                    g.zero_()
                else:
                    g.copy_(p.grad)
                p.grad = g

    def save_frozen(self, optimizer):
        """What an optimiser step must leave as it is: the values and the ``optimizer``'s state of the
        parameters that no longer require a gradient, or None when there are none (the usual case).

        A parameter frozen after the buffer was built (skorch's ``Freezer``
        sets ``requires_grad`` to False at the start of training) is still
        part of the buffer the optimiser steps, where weight decay and the
        moments would move it; separate tensors without a gradient are
        skipped by the optimiser. Pass the result to :meth:`restore_frozen`
        after the step.

        Parameters
        ----------
        optimizer : torch.optim.Optimizer
            The optimiser stepping :attr:`flat`.

        Returns
        -------
        saved : tuple or None
        """
        if all(p.requires_grad for p in self.params):
            return None
        frozen, parts, start = [], [], 0
        for p, size in zip(self.params, self._sizes):
            if not p.requires_grad:
                frozen.append(p)
                parts.append((start, start + size))
            start += size
        state = optimizer.state.get(self.flat, {})
        tensors = {key: value for key, value in state.items() if self._is_buffer_state(value)}
        saved = {key: [value[a:b].clone() for a, b in parts] for key, value in tensors.items()}
        # the parameters' own values (the buffer's are stale where a link is broken until the step relinks)
        values = [p.detach().clone() for p in frozen]
        return optimizer, frozen, parts, values, saved

    def _is_buffer_state(self, value):
        """Whether an optimiser state entry holds a value per element of :attr:`flat`."""
        return torch.is_tensor(value) and value.shape == self.flat.shape

    def restore_frozen(self, saved):
        """Undo an optimiser step on the frozen parameters (see :meth:`save_frozen`).

        Parameters
        ----------
        saved : tuple or None
            What :meth:`save_frozen` returned before the step; None does nothing.
        """
        if saved is None:
            return
        optimizer, frozen, parts, values, states = saved
        with torch.no_grad():
            for p, value in zip(frozen, values):
                p.copy_(value)
            for key, state in optimizer.state.get(self.flat, {}).items():
                if not self._is_buffer_state(state):
                    continue
                before = states.get(key)
                for i, (a, b) in enumerate(parts):
                    if before is None:  # created by this step: as if never stepped
                        state[a:b].zero_()
                    else:
                        state[a:b].copy_(before[i])

    def unlink(self):
        """Give every parameter a copy of its values of its own, and no gradient; empty the
        buffers (before pickling: a view is pickled with its whole buffer, and the values would be
        pickled twice)."""
        for p in self.params:
            p.data = p.detach().clone()
            p.grad = None
        self.flat.grad = None
        self.flat.data = self.flat.data.new_empty(0)  # its values are the parameters' now
        self._grads, self._pointers, self._grad_buffer = [], [], None
