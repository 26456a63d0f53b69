"""Few-shot heads against independent references on the same episodes.

Prototypes, cosine prototypes and ridge regression are compared with direct NumPy computations of
their definitions; the batched logistic regression with a float64 SciPy minimisation of liblinear's
primal objective (coefficients) and with scikit-learn ``LogisticRegression(solver="liblinear")``
fitted per episode (coefficients within liblinear's tolerance; accuracy within 0.5 points).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fewshot_fixtures import feature_pool
from scipy.optimize import minimize

from mast_bench.downstream.fewshot.episodes import draw_episodes, make_pool
from mast_bench.downstream.fewshot.heads import (
    HEADS,
    RIDGE_BIAS,
    RIDGE_L2,
    cosine_scores,
    logreg_coefficients,
    logreg_scores,
    prototype_scores,
    ridge_scores,
)
from mast_bench.downstream.fewshot.scoring import episode_accuracies, summarise


def _episodes(n_episodes: int, ways: int = 5, shots: int = 5, queries: int = 16, dim: int = 64, seed: int = 0):  # type: ignore[no-untyped-def]
    x, y = feature_pool(12, 30, dim, seed=seed)
    pool = make_pool("mix", ("all",), [str(i) for i in range(len(y))], y, [f"c{i}" for i in range(12)])
    m = draw_episodes(pool, protocol="augself", protocol_version="1", class_rule="augself", ways=ways, shots=shots,
                      queries=queries, episodes=n_episodes, seed=seed)  # fmt: skip
    s, q = m.pool_indices(pool)
    return x, s, q


def _tensors(x: np.ndarray, s: np.ndarray, q: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    xt = torch.from_numpy(x)
    return xt[torch.from_numpy(s)], xt[torch.from_numpy(q.reshape(len(q), -1))]


def test_prototypes_equal_direct_numpy() -> None:
    x, s, q = _episodes(20)
    scores = prototype_scores(*_tensors(x, s, q)).numpy()
    for e in range(len(s)):
        protos = x[s[e]].astype(np.float64).mean(axis=1)  # (N, D)
        queries = x[q[e].ravel()].astype(np.float64)
        direct = -((queries[:, None, :] - protos[None]) ** 2).sum(-1)
        np.testing.assert_allclose(scores[e], direct, rtol=1e-10, atol=1e-9)
        assert (scores[e].argmax(1) == direct.argmax(1)).all()


def test_cosine_prototypes_equal_direct_numpy() -> None:
    x, s, q = _episodes(10)
    scores = cosine_scores(*_tensors(x, s, q)).numpy()
    for e in range(len(s)):
        sup = x[s[e]].astype(np.float64)
        sup /= np.linalg.norm(sup, axis=-1, keepdims=True)
        protos = sup.mean(1)
        protos /= np.linalg.norm(protos, axis=-1, keepdims=True)
        queries = x[q[e].ravel()].astype(np.float64)
        direct = (queries / np.linalg.norm(queries, axis=-1, keepdims=True)) @ protos.T
        np.testing.assert_allclose(scores[e], direct, rtol=1e-10, atol=1e-12)


def test_ridge_equals_primal_closed_form() -> None:
    # Primal (X̃ᵀX̃ + λI)⁻¹X̃ᵀY on whitened, bias-augmented features, per episode, against our dual solve.
    x, s, q = _episodes(8, dim=32)
    scores = ridge_scores(*_tensors(x, s, q)).numpy()
    for e in range(len(s)):
        n_way, k, d = s[e].shape[0], s[e].shape[1], x.shape[1]
        xs = x[s[e].ravel()].astype(np.float64)
        mean, std = xs.mean(0), xs.std(0) + 1e-5
        aug = lambda z, m=mean, sd=std: np.hstack([(z - m) / sd, np.full((len(z), 1), RIDGE_BIAS)])  # noqa: E731
        y = 2.0 * np.repeat(np.eye(n_way), k, axis=0) - 1.0
        w = np.linalg.solve(aug(xs).T @ aug(xs) + RIDGE_L2 * np.eye(d + 1), aug(xs).T @ y)
        np.testing.assert_allclose(scores[e], aug(x[q[e].ravel()].astype(np.float64)) @ w, rtol=1e-7, atol=1e-8)


def _liblinear_objective(w: np.ndarray, x: np.ndarray, y: np.ndarray, c: float) -> tuple[float, np.ndarray]:
    """½‖w‖² + c Σ log(1 + exp(−y w·x̃)), x̃ = [x, 1]: liblinear's L2R_LR primal with sklearn's intercept."""
    xa = np.hstack([x, np.ones((len(x), 1))])
    z = y * (xa @ w)
    loss = np.logaddexp(0, -z).sum()
    grad = w - c * xa.T @ (y / (1 + np.exp(z)))
    return 0.5 * w @ w + c * loss, grad


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_logreg_coefficients_minimise_liblinear_objective(scale: float) -> None:
    # Independent float64 minimisation (SciPy L-BFGS to a tiny gradient) of each way's binary problem;
    # scale 30 makes ‖x‖² ~ 10⁵, where an undamped Newton step from zero overshoots.
    x, s, _ = _episodes(4, dim=24)
    x = x * scale
    coef, intercept = logreg_coefficients(torch.from_numpy(x[s]).double())
    for e in range(len(s)):
        xs = x[s[e].ravel()].astype(np.float64)
        for c in range(s.shape[1]):
            y = np.where(np.repeat(np.arange(s.shape[1]), s.shape[2]) == c, 1.0, -1.0)
            res = minimize(_liblinear_objective, np.zeros(xs.shape[1] + 1), args=(xs, y, 1.0), jac=True,
                           method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 20000})  # fmt: skip
            ref = res.x
            ours = np.append(coef[e, c].numpy(), intercept[e, c].item())
            np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())


def _sklearn_ovr(x: np.ndarray, s: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    e, n_way, k = s.shape
    accs, coefs = [], []
    for i in range(e):
        clf = OneVsRestClassifier(LogisticRegression(solver="liblinear"))
        clf.fit(x[s[i].ravel()], np.repeat(np.arange(n_way), k))
        accs.append((clf.predict(x[q[i].ravel()]) == np.repeat(np.arange(n_way), q.shape[2])).mean() * 100)
        coefs.append(np.stack([np.append(m.coef_[0], m.intercept_[0]) for m in clf.estimators_]))
    return np.array(accs), np.stack(coefs)


def test_logreg_matches_sklearn_liblinear_per_episode() -> None:
    x, s, q = _episodes(150, dim=64)
    ours = episode_accuracies(torch.from_numpy(x), s, q, HEADS["logreg"], chunk=64)
    ref, ref_coef = _sklearn_ovr(x, s, q)
    assert 40 < ref.mean() < 98  # a test that can tell heads apart
    assert abs(ours.mean() - ref.mean()) <= 0.5
    assert (ours != ref).mean() < 0.05  # the same predictions on nearly every episode
    coef, intercept = logreg_coefficients(torch.from_numpy(x[s]))
    mine = torch.cat([coef, intercept.unsqueeze(-1).to(coef)], -1).double().numpy()
    # liblinear stops at a relative gradient of 1e-4 (scikit-learn's default tol): agreement to ~1e-3.
    assert np.abs(mine - ref_coef).max() <= 2e-3 * np.abs(ref_coef).max()


def test_logreg_two_ways_equals_sklearn_binary() -> None:
    # For two classes liblinear fits one classifier; one-vs-rest's two are its mirror images.
    from sklearn.linear_model import LogisticRegression

    x, s, q = _episodes(30, ways=2, shots=5, queries=10, dim=32)
    scores = logreg_scores(*_tensors(x, s, q)).numpy()
    for e in range(len(s)):
        clf = LogisticRegression(solver="liblinear").fit(x[s[e].ravel()], np.repeat([0, 1], 5))
        assert (scores[e].argmax(1) == clf.predict(x[q[e].ravel()])).all()


@pytest.mark.parametrize("name", sorted(HEADS))
def test_heads_solve_each_episode_independently(name: str) -> None:
    # Contract: a batch gives the scores each episode would give alone (no leakage across episodes).
    x, s, q = _episodes(6, dim=32)
    sup, qry = _tensors(x, s, q)
    batched = HEADS[name].scores(sup, qry)
    for e in range(len(s)):
        alone = HEADS[name].scores(sup[e : e + 1], qry[e : e + 1])
        torch.testing.assert_close(batched[e : e + 1], alone, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(HEADS))
def test_heads_beat_chance_and_reject_bad_shapes(name: str) -> None:
    x, s, q = _episodes(40, dim=64)
    acc = episode_accuracies(torch.from_numpy(x), s, q, HEADS[name])
    assert acc.mean() > 40  # 5-way chance is 20 %
    with pytest.raises(ValueError, match=r"support \(E, N, K, D\) and query \(E, M, D\)"):
        HEADS[name].scores(torch.zeros(2, 5, 1, 8), torch.zeros(3, 4, 8))


def test_summary_is_mean_and_196_std_over_sqrt_episodes() -> None:
    acc = np.array([100.0, 80.0, 60.0, 80.0])
    s = summarise(acc)
    assert s.mean == 80.0 and s.episodes == 4
    assert s.std == pytest.approx(np.sqrt(200.0))  # population std, as AugSelf's np.std
    assert s.ci95 == pytest.approx(1.96 * np.sqrt(200.0) / 2)


def test_cpu_solver_path_equals_torch_linalg_solve() -> None:
    # On the CPU, batched systems go through NumPy's LAPACK loop; elsewhere torch.linalg.solve: same answers.
    from mast_bench.downstream.fewshot.heads import _solve

    g = torch.Generator().manual_seed(0)
    a = torch.randn(64, 5, 25, 25, generator=g, dtype=torch.float64)
    a = a @ a.transpose(-1, -2) + torch.eye(25, dtype=torch.float64)
    b = torch.randn(64, 5, 25, 1, generator=g, dtype=torch.float64)
    torch.testing.assert_close(_solve(a, b), torch.linalg.solve(a, b), rtol=1e-10, atol=1e-12)
