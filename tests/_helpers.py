"""Helpers shared by the test modules (fixtures are in ``conftest.py``).

Imported as ``from tests._helpers import ...``: ``tests`` is a package, so this
is an ordinary module (``conftest.py`` is pytest's, not one to import).
"""

import torch

#: Small but real settings for estimator tests.
FAST = dict(hidden_size=8, backbone_units=16, max_epochs=4, batch_size=32, n_threads=1, random_state=0)


# --------------------------------------------------- the CfC scan's and kernel's tests
def scan_problem(dtype=torch.float64, S=7, K=3, B=4, U=5, H=3, seed=0, weight_scale=0.5):
    """``[xin, Wh, Wo, bo, h0]`` (requiring gradients), ``dt`` and ``v`` of a scan of ``S`` steps.

    Weights are standard normal times ``weight_scale``; far above ``U ** -0.5`` the recurrence
    is chaotic over tens of steps and amplifies rounding errors at random.
    """
    g = torch.Generator().manual_seed(seed)
    args = [
        torch.randn(S, K, B, U, generator=g, dtype=dtype),
        torch.randn(K, H, U, generator=g, dtype=dtype) * weight_scale,
        torch.randn(K, U, 4 * H, generator=g, dtype=dtype) * weight_scale,
        torch.randn(K, 4 * H, generator=g, dtype=dtype),
        torch.randn(K, B, H, generator=g, dtype=dtype),
    ]
    for a in args:
        a.requires_grad_(True)
    dt = torch.rand(S, K, B, 1, generator=g, dtype=dtype) * 2
    v = (torch.rand(S, K, B, 1, generator=g) > 0.25).to(dtype)
    return args, dt, v
