"""Parameter constraints shared by the estimators, transformers and functions.

Every estimator and transformer of the package declares its parameters in a
``_parameter_constraints`` dict and fits under scikit-learn's ``_fit_context``;
public functions are wrapped in ``validate_params``. A bad parameter then raises
scikit-learn's :class:`~sklearn.utils._param_validation.InvalidParameterError`
(a ``ValueError``, and a ``TypeError`` for backward compatibility) with one
message format: ``The 'name' parameter of Caller must be <allowed>. Got <value>
instead.`` What a constraint cannot state (the elements of a sequence, one
parameter bounded by another) is checked by hand and reported through
:func:`invalid_parameter` in the same format.
"""

import re
from numbers import Integral

from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions

__all__ = ["POSITIVE_INT", "TIME_CHANNEL", "DeviceOptions", "IntInterval", "invalid_parameter"]

#: An int >= 1 (sizes, counts, epochs).
POSITIVE_INT = Interval(Integral, 1, None, closed="left")
#: A channel index (negative counts from the end) or None; its range is checked
#: against ``X`` by :func:`~mrmoe_sklearn._data.check_series`.
TIME_CHANNEL = [Interval(Integral, None, None, closed="neither"), None]


class IntInterval(Interval):
    """An :class:`~sklearn.utils._param_validation.Interval` of ints that refuses bools.

    ``Interval(Integral, ...)`` takes ``True`` and ``False`` (Integrals) as 1
    and 0; a size or a count given as a bool is a mistake. The messages are
    those of the interval (``an int in the range [1, inf)``).

    Parameters
    ----------
    left, right : int or None
        The bounds (None: unbounded).
    closed : {"left", "right", "both", "neither"}, default="left"
    """

    def __init__(self, left, right=None, *, closed="left"):
        super().__init__(Integral, left, right, closed=closed)

    def is_satisfied_by(self, val):
        return not isinstance(val, bool) and super().is_satisfied_by(val)


class DeviceOptions(StrOptions):
    """The torch devices an estimator accepts: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.

    A :class:`~sklearn.utils._param_validation.StrOptions` (so that scikit-learn
    takes it as a constraint) that also accepts ``"cuda:N"`` for any device
    index ``N``. Whether that device exists is checked at fit.
    """

    _CUDA_INDEX = re.compile(r"cuda:\d+")

    def __init__(self):
        super().__init__({"cpu", "cuda", "auto"})

    def is_satisfied_by(self, val):
        return super().is_satisfied_by(val) or (isinstance(val, str) and self._CUDA_INDEX.fullmatch(val) is not None)

    def __str__(self):
        return "a str among {'cpu', 'cuda', 'cuda:N' (N a device index), 'auto'}"


def invalid_parameter(name, caller, allowed, value):
    """The error for a bad parameter that no declared constraint can catch.

    Parameters
    ----------
    name : str
        The parameter.
    caller : str
        The estimator class or function it was given to.
    allowed : str
        What it must be, e.g. ``"an int in the range [1, 4] (the number of experts)"``.
    value : object
        What it was.

    Returns
    -------
    error : InvalidParameterError
        To raise; its message has the format of scikit-learn's own.
    """
    return InvalidParameterError(f"The {name!r} parameter of {caller} must be {allowed}. Got {value!r} instead.")
