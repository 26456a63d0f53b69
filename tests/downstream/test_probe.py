"""The L-BFGS probes against scikit-learn on the same features and regularisation.

Tolerances (measured on these fixtures, stated in benchmarks/README.md):
* float32, default rtol 1e-4: held-out accuracy within 0.5 points of scikit-learn's converged fit,
  coefficients within 1 % of the largest coefficient, held-out logits within 2 % of the largest logit;
* float64, rtol 1e-10 against scikit-learn at tol 1e-10: coefficients within 1e-4 relative.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from downstream_fixtures import one_thread
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from mast_bench.downstream.augself import AugSelfProbe
from mast_bench.downstream.probe import LogisticProbe

K = 4

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)


def blobs(n: int = 300, d: int = 20, k: int = K, seed: int = 0, scale: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """Anisotropic Gaussian classes with a positive offset (like pooled ReLU features)."""
    means = np.random.default_rng(100).normal(size=(k, d)) * scale  # one distribution; seed picks the sample
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = means[y] + rng.normal(size=(n, d)) * np.linspace(0.3, 2.0, d) + 1.5
    return x, y


def sklearn_fit(x: np.ndarray, y: np.ndarray, c: float, tol: float = 1e-10, **kw) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(C=c, tol=tol, max_iter=20000, **kw).fit(x, y)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def acc(scores: torch.Tensor | np.ndarray, y: np.ndarray) -> float:
    return 100.0 * float(np.mean(np.asarray(scores).argmax(1) == y))


@pytest.mark.parametrize("c", [1e-3, 0.1, pytest.param(10.0, marks=pytest.mark.slow)])
def test_multinomial_matches_sklearn_float32_default(c: float) -> None:
    x, y = blobs()
    xt, yt = blobs(seed=1)  # held-out sample of the same distribution (about 60-80 % accuracy)
    sk = sklearn_fit(x, y, c)
    fit = LogisticProbe(torch.tensor(x, dtype=torch.float32), torch.tensor(y), num_classes=K).fit(c)
    assert fit.converged
    ours = fit.decision_function(torch.tensor(xt)).double().numpy()
    assert abs(acc(ours, yt) - 100 * sk.score(xt, yt)) <= 0.5
    assert rel_err(fit.weight.double().numpy(), sk.coef_) < 1e-2
    # The bias alone is poorly determined when features have a large mean; the logits it produces are not.
    assert rel_err(ours, sk.decision_function(xt)) < 2e-2


SLOW = pytest.mark.slow  # scikit-learn needs hundreds of iterations to reach tol 1e-10 at these C


@pytest.mark.parametrize("c", [1e-2, pytest.param(1.0, marks=SLOW), pytest.param(100.0, marks=SLOW)])
def test_multinomial_matches_sklearn_float64_tight(c: float) -> None:
    x, y = blobs()
    sk = sklearn_fit(x, y, c)
    fit = LogisticProbe(torch.tensor(x), torch.tensor(y), num_classes=K, dtype=torch.float64).fit(c, rtol=1e-10)
    assert rel_err(fit.weight.numpy(), sk.coef_) < 1e-4
    # The intercept of a multinomial model is defined up to a constant; both start at zero-sum and keep it.
    assert np.abs(fit.bias.numpy() - sk.intercept_).max() < 1e-4 * max(1.0, np.abs(sk.intercept_).max())


def test_fewer_samples_than_dimensions_drops_only_empty_directions() -> None:
    x, y = blobs(n=24, d=60, seed=3)
    sk = sklearn_fit(x, y, 1.0)
    probe = LogisticProbe(torch.tensor(x), torch.tensor(y), num_classes=K, dtype=torch.float64)
    assert probe.rank <= 23  # centred data spans at most n - 1 directions
    fit = probe.fit(1.0, rtol=1e-10)
    assert rel_err(fit.weight.numpy(), sk.coef_) < 1e-4


def test_warm_start_path_reaches_the_cold_solution() -> None:
    x, y = blobs()
    probe = LogisticProbe(torch.tensor(x), torch.tensor(y), num_classes=K, dtype=torch.float64)
    for c in (1e-4, 1e-2, 1.0):
        warm = probe.fit(c, rtol=1e-10)
    cold = LogisticProbe(torch.tensor(x), torch.tensor(y), num_classes=K, dtype=torch.float64).fit(1.0, rtol=1e-10)
    assert rel_err(warm.weight.numpy(), cold.weight.numpy()) < 1e-5
    # A second fit at the same C starts at the optimum and stops after the single mandatory step.
    assert probe.fit(1.0, rtol=1e-10).n_iter <= 2


def test_weak_regularisation_in_float32_finishes_in_float64() -> None:
    """Near-separable data at C = 1e4: float32 runs out of resolution; the fit continues in float64."""
    x, y = blobs(scale=3.0)
    sk = sklearn_fit(x, y, 1e4)
    fit = LogisticProbe(torch.tensor(x, dtype=torch.float32), torch.tensor(y), num_classes=K).fit(1e4)
    assert fit.converged
    assert fit.weight.dtype == torch.float32
    xt, yt = blobs(scale=3.0, seed=1)
    assert abs(acc(fit.decision_function(torch.tensor(xt)), yt) - 100 * sk.score(xt, yt)) <= 0.5


def test_multilabel_equals_one_sklearn_binary_fit_per_class() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 12)) + 1.0
    w_true = rng.normal(size=(12, 3))
    targets = (x @ w_true + rng.normal(size=(200, 3)) > 1.0).astype(np.float64)
    fit = LogisticProbe(torch.tensor(x), torch.tensor(targets), num_classes=3, multilabel=True, dtype=torch.float64)
    fit = fit.fit(0.5, rtol=1e-10)
    for k in range(3):
        sk = sklearn_fit(x, targets[:, k], 0.5)
        assert rel_err(fit.weight[k].numpy(), sk.coef_[0]) < 1e-4
        assert fit.bias[k].item() == pytest.approx(sk.intercept_[0], abs=1e-4)


@pytest.mark.parametrize("wd", [0.1, 3.0])
def test_augself_objective_equals_sklearn_with_penalised_bias(wd: float) -> None:
    """sum CE + wd(‖W‖² + ‖b‖²) is scikit-learn's objective with C = 1/(2 wd) on [x, 1] without intercept."""
    x, y = blobs(n=120, d=8)
    probe = AugSelfProbe(torch.tensor(x), torch.tensor(y), num_classes=K, dtype=torch.float64)
    fit = probe.fit(wd)
    sk = sklearn_fit(np.hstack([x, np.ones((len(x), 1))]), y, 1.0 / (2 * wd), fit_intercept=False)
    # AugSelf's classifier is only defined up to adding a vector to every class's weights when unpenalised;
    # with the bias penalised too the optimum is unique, and scikit-learn's multinomial one is the same.
    assert rel_err(fit.weight.numpy(), sk.coef_[:, :-1]) < 1e-5
    assert np.abs(fit.bias.numpy() - sk.coef_[:, -1]).max() < 1e-5 * np.abs(sk.coef_).max()


def test_augself_uses_the_published_optimiser_settings() -> None:
    assert AugSelfProbe.LBFGS_KWARGS == {"lr": 1.0, "line_search_fn": "strong_wolfe", "tolerance_change": 0.0}
    x, y = blobs(n=60, d=5)
    a = AugSelfProbe(torch.tensor(x), torch.tensor(y), num_classes=K, seed=0)
    b = AugSelfProbe(torch.tensor(x), torch.tensor(y), num_classes=K, seed=0)
    assert torch.equal(a.weight, b.weight)  # seeded initial weights U(-1/sqrt(D), 1/sqrt(D))
    assert float(a.weight.detach().abs().max()) <= 1 / np.sqrt(5)


def test_bad_inputs_are_rejected_with_the_sizes() -> None:
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="features and labels disagree: 10 feature rows but 9 labels"):
        LogisticProbe(x, torch.zeros(9, dtype=torch.long), num_classes=2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\), got range \[0, 5\]"):
        LogisticProbe(x, torch.tensor([0] * 9 + [5]), num_classes=2)
    with pytest.raises(ValueError, match="NaN or infinite"):
        LogisticProbe(x.clone().fill_(float("nan")), torch.zeros(10, dtype=torch.long), num_classes=2)
    with pytest.raises(ValueError, match="multi-label targets must be"):
        LogisticProbe(x, torch.zeros(10), num_classes=2, multilabel=True)
    probe = LogisticProbe(x, torch.arange(10) % 2, num_classes=2)
    with pytest.raises(ValueError, match="C must be a positive finite number"):
        probe.fit(0.0)
    with pytest.raises(ValueError, match="features and labels disagree"):
        AugSelfProbe(x, torch.zeros(11, dtype=torch.long), num_classes=2)
