"""noise_variance_fit on Poisson-like images with a known variance line."""

from __future__ import annotations

import numpy as np
import pytest

from mammo_helpers.data.phantom.validation.noise import noise_variance_fit


def poisson_like_image(a: float, b: float, seed: int, n: int = 256, edges: bool = False):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n]
    mean = 20 + 780 * (xx / n) ** 1.5 + 15 * np.sin(yy / 40)
    if edges:  # a few sharp structures that inflate some tiles' variance
        mean = mean + 300.0 * ((yy % 64) > 56)
    return mean + np.sqrt(a * mean + b) * rng.standard_normal((n, n))


@pytest.mark.parametrize("seed", [0, 1])
def test_noise_variance_fit_recovers_line(seed):
    a, b = 0.5, 100.0
    slope, intercept, r2 = noise_variance_fit(poisson_like_image(a, b, seed))
    assert slope == pytest.approx(a, rel=0.1)
    assert intercept == pytest.approx(b, rel=0.1)
    assert r2 > 0.9


def test_noise_variance_fit_rejects_structured_tiles():
    a, b = 0.5, 100.0
    img = poisson_like_image(a, b, 5, edges=True)
    res = noise_variance_fit(img, np.ones(img.shape, bool))
    assert (~res.used).sum() > 0
    assert res.slope == pytest.approx(a, rel=0.1)
    assert res.intercept == pytest.approx(b, rel=0.1)
    raw = noise_variance_fit(img, reject_sigma=np.inf)
    assert raw.used.all() and abs(raw.intercept - b) > abs(res.intercept - b)
    assert res.means.shape == res.variances.shape == res.used.shape == (256,)
    with pytest.raises(ValueError, match="tiles"):
        noise_variance_fit(img, np.zeros(img.shape, bool))
    strict = noise_variance_fit(img, reject_sigma=0.5)  # any positive cut is allowed
    assert (~strict.used).sum() > (~res.used).sum()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"reject_sigma": float("nan")}, "reject_sigma"),
        ({"reject_sigma": 0.0}, "reject_sigma"),
        ({"block": 2}, "block"),
        ({"block": 8.5}, "block"),
    ],
)
def test_bad_settings_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        noise_variance_fit(poisson_like_image(0.5, 100.0, 0), **kwargs)
