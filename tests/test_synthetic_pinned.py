"""Pinned outputs of :func:`make_multirate_classification`.

The values were taken from the generator before its stages became named
helpers; a refactoring must keep them (the same ``random_state`` gives the same
data, so results and figures built on it stay reproducible). A deliberate
change of the generator updates them and says so in its commit.
"""

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from mrmoe_sklearn.datasets import make_multirate_classification

nan = np.nan
#: Tight enough to catch any change of the random stream or the arithmetic,
#: loose enough for a different libm's last bit.
RTOL = 1e-12


def test_default_options_pinned():
    X, y, info = make_multirate_classification(
        n_samples=40, n_channels=6, n_timesteps=16, random_state=0, return_info=True
    )
    assert X.shape == (40, 7, 16)
    expected = [
        [0.30362077464267456, 0.8773121525059021, 1.5136695899127157],
        [1.320291179735132, 2.017214158905823, 3.2152400715794074],
        [nan, 2.500591150686732, 3.4928863987338596],
        [39.84034525918867, 38.605073867872576, 43.92190252492345],
        [2.2137052190685074, 2.4597325233465868, 2.36040630631447],
        [3.145804715193436, 5.00429365911358, nan],
        [-2.0711856604419943, -7.84792226053627, nan],
    ]
    assert_allclose(X[0, :, :3], expected, rtol=RTOL)
    assert_array_equal(y[:10], [1, 1, 1, 0, 0, 0, 1, 0, 0, 1])
    assert info == {"time_channel": 0, "slow_channels": [5, 6], "fast_channels": [1, 3], "noise_channels": [2, 4]}
    missing = np.flatnonzero(np.isnan(X[1]).ravel())
    assert missing.size == 22
    assert_array_equal(missing[:8], [17, 20, 22, 31, 34, 45, 46, 51])
    assert_allclose(np.nansum(X), 28275.253136096275, rtol=RTOL)


def test_regular_variable_length_weighted_pinned():
    X, y = make_multirate_classification(
        n_samples=30,
        n_channels=4,
        n_timesteps=12,
        n_classes=3,
        irregular=False,
        variable_length=True,
        weights=[0.5, 0.3],
        class_sep=2.0,
        n_noise_channels=1,
        random_state=3,
    )
    expected = [
        [0.0, 1.0, 2.0],
        [1.6143958035586132, 1.9171899118289595, 0.7107535504239202],
        [0.47888599104367024, 0.9197707390465027, 2.6173294187494527],
        [150.06342390597644, nan, nan],
        [32.39662034401772, 37.68304646295192, 38.12968300601797],
    ]
    assert_allclose(X[2, :, :3], expected, rtol=RTOL)
    assert_array_equal(y[:10], [1, 0, 1, 2, 1, 0, 0, 0, 1, 0])
    assert_array_equal(np.isnan(X).sum(axis=(1, 2))[:8], [30, 25, 24, 29, 23, 12, 25, 28])
    assert_allclose(np.nansum(X), 44239.45379940433, rtol=RTOL)


def test_single_informative_channel_pinned():
    X, y = make_multirate_classification(n_samples=10, n_channels=1, n_timesteps=8, random_state=5)
    expected = [
        [0.3951433216452002, 1.6029798819734487, 2.152866821305814, 2.9560610658195396],
        [0.8491588129276547, 1.2437965612301862, nan, 0.20934212397916785],
    ]
    assert_allclose(X[0, :, :4], expected, rtol=RTOL)
    assert_array_equal(y, [1, 1, 0, 0, 1, 0, 0, 1, 1, 0])
    assert_allclose(np.nansum(X), 350.52742503725153, rtol=RTOL)
