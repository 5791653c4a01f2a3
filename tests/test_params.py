"""Bad parameters: one error, in one format, from every estimator, transformer and public function.

Every estimator and transformer declares ``_parameter_constraints`` and fits
under scikit-learn's ``_fit_context``; every public function with parameters
is wrapped in ``validate_params``. A bad parameter raises scikit-learn's
``InvalidParameterError`` (a ``ValueError``) whose message names the
parameter, the allowed values and the value given.
"""

import importlib
import inspect
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.utils import Bunch
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_param_validation

from mrmoe_sklearn import (
    LNNClassifier,
    LNNRegressor,
    LSTMClassifier,
    LSTMRegressor,
    MoEClassifier,
    MoERegressor,
    MRMoEClassifier,
    MRMoERegressor,
    SummaryFeatures,
    TimeSeriesScaler,
    make_multirate_classification,
    summary_statistics,
    to_sequences,
)
from mrmoe_sklearn.compare import (
    MiniRocketPeer,
    compare_models,
    compare_on_splits,
    impute_for_minirocket,
    load_npz,
    peer_models,
    select_models,
    summary_gbt,
    write_results,
)
from mrmoe_sklearn.datasets import fetch_physionet2012, get_data_home, physionet2012_split
from mrmoe_sklearn.inspection import plot_training_curves

CLASSIFIERS = [MRMoEClassifier, LNNClassifier, MoEClassifier, LSTMClassifier]
REGRESSORS = [MRMoERegressor, LNNRegressor, MoERegressor, LSTMRegressor]
TRANSFORMERS = [SummaryFeatures, TimeSeriesScaler]
ESTIMATORS = CLASSIFIERS + REGRESSORS + TRANSFORMERS + [MiniRocketPeer]
#: Modules whose ``__all__`` is the public API checked here.
PUBLIC_MODULES = ["mrmoe_sklearn", "mrmoe_sklearn.datasets", "mrmoe_sklearn.compare", "mrmoe_sklearn.inspection"]
#: Public functions without ``validate_params``, and why.
UNVALIDATED = {
    "default_models": "takes no parameter",
    "main": "the command line: argparse checks every option and prints the usage",
}


def _message(param, caller, allowed, value):
    """The regex of scikit-learn's message, with ``allowed`` taken literally."""
    return re.escape(f"The {param!r} parameter of {caller} must be {allowed}. Got {value!r} instead.")


@pytest.fixture(scope="module")
def task():
    return make_multirate_classification(n_samples=20, n_channels=2, n_timesteps=8, random_state=0)


# ------------------------------------------------------------------ estimators
@pytest.mark.parametrize("Estimator", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_parameter_is_declared_and_checked(Estimator):
    """scikit-learn's own check: a constraint per parameter, each enforced at fit with its message."""
    check_param_validation(Estimator.__name__, Estimator())


@pytest.mark.parametrize("Estimator", CLASSIFIERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "param, value, allowed",
    [
        ("lr", -1.0, "a float in the range (0.0, inf) or a str among {'auto'}"),
        ("lr", float("inf"), "a float in the range (0.0, inf) or a str among {'auto'}"),
        ("max_epochs", 0, "an int in the range [1, inf) or a str among {'auto'}"),
        ("batch_size", 2.5, "an int in the range [1, inf)"),
        ("dropout", 1.0, "a float in the range [0.0, 1.0)"),
        ("validation_fraction", 0.6, "a float in the range (0.0, 0.5]"),
        ("clip_grad_norm", 0.0, "a float in the range (0.0, inf) or None"),
        ("n_threads", 0, "an int in the range [1, inf) or None"),
        ("time_channel", "0", "an int in the range (-inf, inf) or None"),
        ("device", "gpu", "a str among {'cpu', 'cuda', 'cuda:N' (N a device index), 'auto'}"),
    ],
)
def test_common_parameter_messages(Estimator, param, value, allowed, task):
    X, y = task
    with pytest.raises(InvalidParameterError, match=_message(param, Estimator.__name__, allowed, value)):
        Estimator(**{param: value}).fit(X, y)


@pytest.mark.parametrize("Estimator", CLASSIFIERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "param, value, options",
    [
        ("lr_schedule", "linear", ["'plateau'", "'cosine'", "None"]),
        ("class_weight", "heavy", ["an instance of 'dict'", "'balanced'", "None"]),
        ("early_stopping", "sometimes", ["an instance of 'bool'", "'auto'"]),
    ],
)
def test_options_messages(Estimator, param, value, options, task):
    """Options are listed (in a set's order, so each is looked for alone)."""
    X, y = task
    with pytest.raises(InvalidParameterError, match=f"The '{param}' parameter of {Estimator.__name__} must be") as info:
        Estimator(**{param: value}).fit(X, y)
    message = str(info.value)
    assert message.endswith(f"Got {value!r} instead.")
    for option in options:
        assert option in message


def test_device_accepts_any_cuda_index():
    from mrmoe_sklearn._params import DeviceOptions

    options = DeviceOptions()
    for good in ("cpu", "cuda", "cuda:0", "cuda:12", "auto"):
        assert options.is_satisfied_by(good)
    for bad in ("gpu", "cuda:", "cuda:x", "cuda:0 ", "CPU", 0, None):
        assert not options.is_satisfied_by(bad)


_NO_GATE_TOP_K = "None when gate=False (it keeps the largest gate weights: set gate=True to use it)"


@pytest.mark.parametrize(
    "Estimator, params, param, allowed",
    [
        (MRMoEClassifier, {"top_k": 5}, "top_k", "None or an int in the range [1, 4] (the number of experts)"),
        (
            MRMoEClassifier,
            {"top_k": 3, "n_experts": 2},
            "top_k",
            "None or an int in the range [1, 2] (the number of experts)",
        ),
        (
            MoEClassifier,
            {"top_k": 3, "n_experts": 2},
            "top_k",
            "None or an int in the range [1, 2] (the number of experts)",
        ),
        # top_k keeps the largest gate weights: without the gate it would be ignored (the experts averaged)
        (MRMoEClassifier, {"gate": False, "top_k": 2}, "top_k", _NO_GATE_TOP_K),
        (MRMoERegressor, {"gate": False, "top_k": 4}, "top_k", _NO_GATE_TOP_K),
        (MRMoEClassifier, {"gate": False, "top_k": 1, "rates": 1}, "top_k", _NO_GATE_TOP_K),
        # one expert: the gate is not built, top_k above 1 is out of range as with more experts
        (
            MRMoEClassifier,
            {"top_k": 2, "rates": (4,)},
            "top_k",
            "None or an int in the range [1, 1] (the number of experts)",
        ),
        (MRMoEClassifier, {"rates": (1, 0)}, "rates", "a non-empty sequence of ints >= 1"),
        (MRMoEClassifier, {"rates": ()}, "rates", "a non-empty sequence of ints >= 1"),
        (MRMoEClassifier, {"rates": (1, 2.0)}, "rates", "a non-empty sequence of ints >= 1"),
        (
            MRMoEClassifier,
            {"class_weight": {0: -1.0, 1: 1.0}},
            "class_weight",
            "a dict of finite, non-negative weights, 'balanced' or None",
        ),
        (
            LSTMClassifier,
            {"class_weight": {0: float("nan"), 1: 1.0}},
            "class_weight",
            "a dict of finite, non-negative weights, 'balanced' or None",
        ),
        (
            LNNClassifier,
            {"class_weight": {0: float("inf")}},
            "class_weight",
            "a dict of finite, non-negative weights, 'balanced' or None",
        ),
        (
            MoEClassifier,
            {"class_weight": {0: "a"}},
            "class_weight",
            "a dict of finite, non-negative weights, 'balanced' or None",
        ),
    ],
)
def test_checks_beyond_constraints_use_the_same_format(Estimator, params, param, allowed, task):
    X, y = task
    with pytest.raises(InvalidParameterError, match=_message(param, Estimator.__name__, allowed, params[param])):
        Estimator(**params).fit(X, y)


@pytest.mark.parametrize(
    "Estimator, param, value, allowed",
    [
        (MRMoEClassifier, "load_balance", "nope", None),
        (MRMoEClassifier, "ensemble_size", 0, "an int in the range [1, inf) or a str among {'auto'}"),
        (MRMoEClassifier, "head_size", 0, "an int in the range [1, inf)"),
        (MRMoEClassifier, "gate", "yes", None),  # (numpy's bool type is named differently across versions)
        (MRMoEClassifier, "aux_loss_weight", -0.1, "a float in the range [0.0, inf)"),
        (MoEClassifier, "n_experts", None, "an int in the range [1, inf)"),
        (LNNClassifier, "hidden_size", 0, "an int in the range [1, inf)"),
        (LSTMClassifier, "num_layers", 0, "an int in the range [1, inf)"),
        (MRMoERegressor, "loss", "absolute", None),
        (LSTMRegressor, "callbacks", "print_log", "an instance of 'list', an instance of 'tuple' or None"),
        (LSTMClassifier, "checkpoint_dir", 3, "an instance of 'str', an instance of 'os.PathLike' or None"),
        (MoERegressor, "early_stopping_scoring", "no_such_score", None),
    ],
)
def test_own_parameter_messages(Estimator, param, value, allowed, task):
    X, y = task
    match = _message(param, Estimator.__name__, allowed, value) if allowed else f"The '{param}' parameter of"
    with pytest.raises(InvalidParameterError, match=match):
        Estimator(**{param: value}).fit(X, y)


def test_the_error_is_a_value_error(task):
    X, y = task
    with pytest.raises(ValueError):
        LSTMClassifier(lr=0).fit(X, y)


def test_warm_start_fit_checks_again(task):
    X, y = task
    clf = LSTMClassifier(max_epochs=1, hidden_size=4, warm_start=True, random_state=0).fit(X, y)
    clf.set_params(lr=-1.0)
    with pytest.raises(InvalidParameterError, match="The 'lr' parameter of LSTMClassifier"):
        clf.fit(X, y)


# ---------------------------------------------------------------- transformers
@pytest.mark.parametrize(
    "Transformer, param, value, allowed",
    [
        (SummaryFeatures, "time_channel", 0.0, "an int in the range (-inf, inf) or None"),
        (SummaryFeatures, "channel_names", 3, "an array-like or None"),
        (SummaryFeatures, "statistics", 3, "an instance of 'str', an array-like or None"),
        (
            SummaryFeatures,
            "statistics",
            ["mean", "median"],
            "None, or one or more distinct names among {'mean', 'std', 'min', 'max', 'first', 'last', 'count', "
            "'slope', 'time_since_last'}",
        ),
        (TimeSeriesScaler, "time_channel", "0", "an int in the range (-inf, inf) or None"),
    ],
)
def test_transformer_messages(Transformer, param, value, allowed, task):
    X, _ = task
    with pytest.raises(InvalidParameterError, match=_message(param, Transformer.__name__, allowed, value)):
        Transformer(**{param: value}).fit(X)
    with pytest.raises(InvalidParameterError, match=_message(param, Transformer.__name__, allowed, value)):
        Transformer(**{param: value}).fit_transform(X)


# -------------------------------------------------------------------- functions
def _public_functions():
    found = {}
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.isfunction(obj):
                found[attr] = obj
    return found


@pytest.mark.parametrize(
    "name, func", sorted(_public_functions().items()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_public_functions_declare_their_parameters(name, func):
    if name in UNVALIDATED:
        assert not hasattr(func, "_skl_parameter_constraints")
        return
    constraints = getattr(func, "_skl_parameter_constraints", None)
    assert constraints is not None, f"{name} is not wrapped in validate_params"
    params = set(inspect.signature(func).parameters)
    assert set(constraints) == params, f"{name}: constraints for {sorted(constraints)}, parameters {sorted(params)}"


def test_public_estimators_are_all_checked():
    found = set()
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator):
                found.add(obj)
    assert found == set(ESTIMATORS)


_X = np.ones((4, 2, 5))
_FRAME = pd.DataFrame({"id": [1, 1], "t": [0.0, 1.0], "v": [1.0, 2.0]})


@pytest.mark.parametrize(
    "func, kwargs, param, allowed",
    [
        (make_multirate_classification, {"n_timesteps": 7}, "n_timesteps", "an int in the range [8, inf)"),
        (make_multirate_classification, {"missing_rate": 1.0}, "missing_rate", "a float in the range [0.0, 1.0)"),
        (make_multirate_classification, {"irregular": "yes"}, "irregular", None),
        (
            make_multirate_classification,
            {"n_samples": 3, "n_classes": 4},
            "n_samples",
            "an int >= n_classes (4)",
        ),
        (
            summary_statistics,
            {"values": np.ones((1, 2, 1)), "times": None, "valid": np.ones((1, 2), bool), "chunk_size": 0},
            "chunk_size",
            "an int in the range [1, inf) or None",
        ),
        (to_sequences, {"df": np.zeros((2, 2)), "id_col": "id", "time_col": "t"}, "df", None),
        (
            to_sequences,
            {"df": _FRAME, "id_col": "id", "time_col": "t", "max_length": 0},
            "max_length",
            "an int in the range [1, inf) or None",
        ),
        (get_data_home, {"data_home": 3}, "data_home", None),
        (fetch_physionet2012, {"download_if_missing": "no"}, "download_if_missing", None),
        (physionet2012_split, {"bunch": {}, "split": 1}, "bunch", "an instance of 'sklearn.utils._bunch.Bunch'"),
        (physionet2012_split, {"bunch": Bunch(), "split": 0}, "split", "an int in the range [1, inf)"),
        (compare_models, {"X": _X, "y": [0, 1, 0, 1], "cv": 1}, "cv", None),
        (compare_models, {"X": _X, "y": [0, 1, 0, 1], "n_jobs": 0}, "n_jobs", None),
        (
            compare_models,
            {"X": _X, "y": [0, 1, 0, 1], "max_epochs": 0},
            "max_epochs",
            "an int in the range [1, inf) or None",
        ),
        (compare_on_splits, {"X": _X, "y": [0, 1, 0, 1], "splits": [1]}, "splits", None),
        (select_models, {"models": 3}, "models", None),
        (peer_models, {"peers": 3}, "peers", None),
        (
            impute_for_minirocket,
            {"X": _X, "time_channel": "0"},
            "time_channel",
            "an int in the range (-inf, inf) or None",
        ),
        (summary_gbt, {"time_channel": 1.5}, "time_channel", "an int in the range (-inf, inf) or None"),
        (load_npz, {"path": 3}, "path", None),
        (write_results, {"result": None, "output_dir": "out"}, "result", None),
        (plot_training_curves, {"histories": []}, "histories", "an instance of 'collections.abc.Mapping'"),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_function_messages(func, kwargs, param, allowed):
    value = kwargs[param]
    match = (
        _message(param, func.__name__, allowed, value)
        if allowed
        else f"The '{param}' parameter of {func.__name__} must be"
    )
    with pytest.raises(InvalidParameterError, match=match) as info:
        func(**kwargs)
    assert str(info.value).endswith(f"Got {value!r} instead.")


def test_split_beyond_the_splits_names_their_number():
    splits = pd.DataFrame({"split1": ["train", "test"], "split2": ["test", "train"]}, index=[7, 8])
    bunch = Bunch(splits=splits, record_ids=np.array([7, 8]))
    with pytest.raises(
        InvalidParameterError, match=_message("split", "physionet2012_split", "an int in the range [1, 2]", 3)
    ):
        physionet2012_split(bunch, 3)
    with pytest.raises(InvalidParameterError, match="The 'split' parameter"):
        physionet2012_split(bunch, True)


def test_compare_checks_the_estimators_it_is_given():
    """The comparisons do not skip the validation of the estimators they fit (nested validation on)."""
    X, y = make_multirate_classification(n_samples=12, n_channels=2, n_timesteps=8, random_state=0)
    with pytest.raises(ValueError, match="Model 'bad': The 'hidden_size' parameter of LSTMClassifier must be"):
        compare_models(X, y, models={"bad": LSTMClassifier(hidden_size=0)}, cv=2, verbose=0)
    splits = {"one": (np.arange(8), np.arange(8, 10), np.arange(10, 12))}
    with pytest.raises(ValueError, match="Model 'bad': The 'hidden_size' parameter of LSTMClassifier must be"):
        compare_on_splits(X, y, splits, models={"bad": LSTMClassifier(hidden_size=0)}, verbose=0)
