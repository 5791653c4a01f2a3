"""scikit-learn's common estimator checks on the package's estimators.

Every classifier, and the regressors of both network families (the CfC mixture
and the LSTM): ``LNNRegressor`` and ``MoERegressor`` differ from
``MRMoERegressor`` only by the mixture's settings, which the classifiers'
checks cover (they passed every check too when run, at a minute of CPU more).
The regressors train longer at a lower rate than the classifiers: the checks
require R² > 0.5 on a table with one informative column of ten (a univariate
"series" of ten steps whose value at one step is the signal).
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from mrmoe_sklearn import (
    LNNClassifier,
    LSTMClassifier,
    LSTMRegressor,
    MoEClassifier,
    MRMoEClassifier,
    MRMoERegressor,
)

SMALL = dict(max_epochs=12, batch_size=32, lr=2e-2, n_threads=1, random_state=0)
SMALL_REGRESSION = dict(SMALL, max_epochs=40, lr=1e-2)

ESTIMATORS = [
    MRMoEClassifier(hidden_size=8, backbone_units=8, **SMALL),
    LNNClassifier(hidden_size=16, backbone_units=16, **SMALL),
    MoEClassifier(n_experts=2, hidden_size=8, backbone_units=8, **SMALL),
    LSTMClassifier(hidden_size=16, **SMALL),
    MRMoERegressor(hidden_size=8, backbone_units=8, **SMALL_REGRESSION),
    LSTMRegressor(hidden_size=16, **SMALL_REGRESSION),
]

# A 2D X is a batch of univariate series (n_samples, n_timesteps): the package
# counts channels, not columns, in n_features_in_.
EXPECTED_FAILED = {
    "check_n_features_in": "n_features_in_ counts channels; a 2D X is one channel of n_timesteps steps",
    "check_n_features_in_after_fitting": (
        "a 2D X of another width is refused, but by its columns as time steps (n_timesteps_in_), not by the "
        "check's 'X has 3 features, but ... is expecting 4 features as input'"
    ),
    "check_sample_weight_equivalence_on_dense_data": (
        "integer weights are not repeated rows: repeats change the shuffled mini-batches, dropout draws and "
        "scaling statistics of stochastic training (zero weights are tested in test_training_controls.py)"
    ),
}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_compatible(estimator, check):
    check(estimator)
