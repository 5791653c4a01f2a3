"""scikit-learn's common estimator checks on every classifier of the package."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from mrmoe_sklearn import LNNClassifier, LSTMClassifier, MoEClassifier, MRMoEClassifier

SMALL = dict(max_epochs=12, batch_size=32, lr=2e-2, n_threads=1, random_state=0)

ESTIMATORS = [
    MRMoEClassifier(hidden_size=8, backbone_units=8, **SMALL),
    LNNClassifier(hidden_size=16, backbone_units=16, **SMALL),
    MoEClassifier(n_experts=2, hidden_size=8, backbone_units=8, **SMALL),
    LSTMClassifier(hidden_size=16, **SMALL),
]

# A 2D X is a batch of univariate series (n_samples, n_timesteps): the package
# counts channels, not columns, in n_features_in_.
EXPECTED_FAILED = {
    "check_n_features_in": "n_features_in_ counts channels; a 2D X is one channel of n_timesteps steps",
    "check_n_features_in_after_fitting": "a 2D X with fewer columns is a shorter univariate series, which is valid",
    "check_methods_subset_invariance": "float32 matrix products round differently per batch size (~1e-7 relative)",
}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_compatible(estimator, check):
    check(estimator)
