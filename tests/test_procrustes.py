"""Tests for ProcrustesAligner and GeneralizedProcrustesAligner."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import pickle
import tracemalloc
import warnings

import numpy as np
import pytest
from _corpora import available_corpus, missing
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy import linalg
from scipy.stats import ortho_group
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skembed import (
    GeneralizedProcrustesAligner,
    KernelResidualAligner,
    ProcrustesAligner,
    ResidualMLPAligner,
    RidgeAligner,
    load_aligner,
    save_aligner,
)
from skembed.datasets import load_fortunes
from skembed.exceptions import ConstantViewWarning
from skembed.metrics import retrieval_accuracy


def _rotated_pair(seed, n=300, d=6, scale=1.0, shift=0.0, noise=0.0, dtype=float):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    Q = ortho_group.rvs(d, random_state=seed)
    B = scale * A @ Q + shift + noise * rng.normal(size=(n, d))
    return A.astype(dtype), B.astype(dtype), Q


def _directional_retrieval(aligner, A, B):
    Z = aligner._transform_views([A, B])
    return retrieval_accuracy(Z[0], Z[1]), retrieval_accuracy(Z[1], Z[0])


def _stiefel_descent(X, Y, W, *, scale, rows=False, n_iter=3000):
    """Riemannian gradient descent of the residual over orthonormal maps.

    Minimises ``||s X W - Y||_F^2`` over W with orthonormal columns (with
    ``rows=True``: orthonormal rows, W = V^T for V with orthonormal columns),
    and over s when ``scale`` (else s = 1), from the rows themselves and
    independently of skembed's solver: the Euclidean gradient (for ``scale``,
    at the least-squares s, by the envelope theorem) is projected onto the
    tangent space of the Stiefel manifold, steps follow the Barzilai-Borwein
    rule with Armijo backtracking, and a polar retraction keeps V on the
    manifold. Returns the residual and the map.
    """

    def cost_and_gradient(V):
        XW = X @ (V.T if rows else V)
        s = np.sum(XW * Y) / np.sum(XW * XW) if scale else 1.0
        R = s * XW - Y
        gradient = 2 * s * (X.T @ R)
        return float(np.sum(R * R)), (gradient.T if rows else gradient)

    def tangent(V, E):
        return E - V @ ((V.T @ E + E.T @ V) / 2)

    def retract(V):
        # LAPACK's gesdd (numpy's svd) fails to converge on some matrices, as
        # a step of this descent met on one BLAS thread; gesvd does not.
        U, _, Vt = linalg.svd(V, full_matrices=False, lapack_driver="gesvd")
        return U @ Vt

    V = retract(W.T if rows else W)
    cost, E = cost_and_gradient(V)
    g = tangent(V, E)
    step = 1e-3 / max(np.linalg.norm(g), 1e-300)
    for _ in range(n_iter):
        while True:
            V_next = retract(V - step * g)
            cost_next, E_next = cost_and_gradient(V_next)
            if cost_next <= cost - 1e-4 * step * np.sum(g * g) or step < 1e-20:
                break
            step /= 2
        g_next = tangent(V_next, E_next)
        dV, dg = V_next - V, g_next - g
        curvature = np.sum(dV * dg)
        V, cost, g = V_next, cost_next, g_next
        if np.linalg.norm(g) <= 1e-13 * max(cost, 1.0):
            break
        step = np.sum(dV * dV) / curvature if curvature > 0 else 2 * step
    return cost, (V.T if rows else V)


def _anisotropic_pair(seed, n=400, d=10, p=6, noise=0.5):
    """A source whose columns differ in spread, and a noisy narrower target."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.geomspace(4.0, 0.25, d)
    Q = ortho_group.rvs(d, random_state=seed)[:, :p]
    Y = X @ Q + noise * rng.normal(size=(n, p)) + 2.0
    return X, Y


@settings(deadline=None)
@given(
    seed=st.integers(0, 2**16),
    s=st.floats(0.2, 5.0),
    shift=st.floats(-10, 10),
    reflect=st.booleans(),
)
def test_recovers_rotation_scale_and_shift(seed, s, shift, reflect):
    """Check that B = s A Q + t yields Q, s and t, reflections included."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(200, 5))
    Q = ortho_group.rvs(5, random_state=seed)
    if reflect and np.linalg.det(Q) > 0:
        Q[:, 0] = -Q[:, 0]
    t = shift * rng.normal(size=5)
    B = s * A @ Q + t + 1e-6 * rng.normal(size=A.shape)
    aligner = ProcrustesAligner(reference=1, scale=True, output_frame="reference")
    aligner.fit([A, B])
    assert_allclose(aligner.rotations_[0], Q, atol=1e-5)
    assert_allclose(aligner.scales_[0], s, rtol=1e-5)
    assert_allclose(aligner.transform_view(A, 0), B, atol=1e-4 * (1 + abs(shift)))

    aligner32 = ProcrustesAligner(reference=1, scale=True).fit(
        [A.astype(np.float32), B.astype(np.float32)]
    )
    assert aligner32.transform_view(A.astype(np.float32), 0).dtype == np.float32
    assert_allclose(aligner32.rotations_[0], Q, atol=2e-3)
    assert_allclose(aligner32.scales_[0], s, rtol=1e-3)


@settings(deadline=None)
@given(seed=st.integers(0, 2**16))
def test_transform_is_equivariant_to_source_rotation(seed):
    """Check that rotating the source input by Q' is absorbed by the fitted map."""
    A, B, _ = _rotated_pair(seed, noise=0.3)
    Q2 = ortho_group.rvs(A.shape[1], random_state=seed + 1)
    out = ProcrustesAligner().fit([A, B]).transform([A, B])
    # View 0 is the reference, so view 1 is the source.
    out_rotated = ProcrustesAligner().fit([A, B @ Q2]).transform([A, B @ Q2])
    assert_allclose(out, out_rotated, atol=1e-8)


@settings(deadline=None)
@given(seed=st.integers(0, 2**16))
def test_row_permutation_leaves_map_unchanged(seed):
    """Check that shuffling the paired rows does not change the fitted map."""
    A, B, _ = _rotated_pair(seed, noise=0.5, shift=2.0)
    perm = np.random.default_rng(seed).permutation(A.shape[0])
    first = ProcrustesAligner(scale=True).fit([A, B])
    second = ProcrustesAligner(scale=True).fit([A[perm], B[perm]])
    assert_allclose(first.rotations_[1], second.rotations_[1], atol=1e-10)
    assert_allclose(first.scales_, second.scales_, rtol=1e-10)


@settings(deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n_chunks=st.integers(2, 12),
    n_dropped=st.integers(0, 2),
)
def test_partial_fit_equals_fit(seed, n_chunks, n_dropped):
    """Check that partial_fit over chunks equals fit on the stacked rows.

    The statistics, the scale and the residual always agree. The rotation is
    compared where it is unique: with ``n_dropped`` constant source columns
    the cross-covariance has as many zero singular values, the rotation
    within them is arbitrary and rounding decides it.
    """
    A, B, _ = _rotated_pair(seed, noise=0.5, shift=5.0)
    B[:, :n_dropped] = 5.0
    X = np.hstack([A, B])
    full = ProcrustesAligner(scale=True).fit(X)
    streamed = ProcrustesAligner(scale=True)
    for chunk in np.array_split(X, n_chunks):
        streamed.partial_fit(chunk)
    assert streamed._stats.n_samples_ == full._stats.n_samples_
    assert_allclose(streamed.means_[0], full.means_[0], atol=1e-12)
    assert_allclose(streamed.means_[1], full.means_[1], atol=1e-12)
    cross = full._stats.centered_cross(1, 0)
    assert_allclose(
        streamed._stats.centered_cross(1, 0), cross, atol=1e-11 * np.abs(cross).max()
    )
    assert_allclose(
        streamed._stats.centered_sum_of_squares(1),
        full._stats.centered_sum_of_squares(1),
        rtol=1e-12,
    )
    assert_allclose(streamed.scales_, full.scales_, rtol=1e-10)
    residuals = [np.sum((a.transform_view(B, 1) - A) ** 2) for a in (streamed, full)]
    assert_allclose(residuals[0], residuals[1], rtol=1e-10)
    singular = full.singular_values_[1]
    unique = singular[-1] > 1e-6 * singular[0]
    assert unique == (n_dropped == 0)
    if unique:
        assert_allclose(streamed.rotations_[1], full.rotations_[1], atol=1e-10)


def test_rectangular_views_are_semi_orthogonal():
    """Check the semi-orthogonal maps between views of different widths."""
    rng = np.random.default_rng(0)
    # Centred, orthonormal columns: then the truncated rotation is the exact optimum.
    A = np.linalg.qr(rng.normal(size=(400, 8)) - 0)[0]
    A = np.linalg.qr(A - A.mean(axis=0))[0] * 20
    Q = ortho_group.rvs(8, random_state=0)
    B = (A @ Q)[:, :5]
    aligner = ProcrustesAligner(reference=1).fit([A, B])
    W = aligner.rotations_[0]
    assert W.shape == (8, 5)
    assert_allclose(W.T @ W, np.eye(5), atol=1e-10)
    assert_allclose(aligner.transform_view(A, 0), B, atol=1e-8)

    narrow = ProcrustesAligner(reference=0).fit([A, B])
    W = narrow.rotations_[1]
    assert W.shape == (5, 8)
    assert_allclose(W @ W.T, np.eye(5), atol=1e-10)
    assert narrow.transform([A, B]).shape == (400, 16)


def _closed_form_residual(X, Y, *, scale):
    """Residual of U V^T with, when ``scale``, its own least-squares scale."""
    U, _, Vt = np.linalg.svd(X.T @ Y, full_matrices=False)
    XW = X @ (U @ Vt)
    s = np.sum(XW * Y) / np.sum(XW * XW) if scale else 1.0
    return float(np.sum((s * XW - Y) ** 2))


@pytest.mark.parametrize("scale", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wider_source_minimises_the_residual(seed, scale):
    """Check a wider source's map against Stiefel descents from random starts."""
    X, Y = _anisotropic_pair(seed)
    aligner = ProcrustesAligner(reference=1, scale=scale).fit([X, Y])
    W, s = aligner.rotations_[0], aligner.scales_[0]
    assert W.shape == (10, 6)
    assert_allclose(W.T @ W, np.eye(6), atol=1e-12)
    # In the shared space (centred by default) the reference is Y - mean(Y).
    residual = np.sum(
        (aligner.transform_view(X, 0) - aligner.transform_view(Y, 1)) ** 2
    )

    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    rng = np.random.default_rng(seed + 100)
    starts = [np.linalg.qr(rng.normal(size=(10, 6)))[0] for _ in range(4)]
    descents = [_stiefel_descent(Xc, Yc, W0, scale=scale)[0] for W0 in starts]
    assert residual <= min(descents) * (1 + 1e-9)
    # U V^T only maximises tr(W^T X^T Y); here it is far from the minimiser.
    assert residual < 0.8 * _closed_form_residual(Xc, Yc, scale=scale)
    # The scale is the least-squares scale of the returned map: the
    # residual's derivative in s, 2 s ||X W||^2 - 2 tr(W^T X^T Y), vanishes.
    XW = Xc @ W
    if scale:
        assert_allclose(s * np.sum(XW * XW), np.sum(XW * Yc), rtol=1e-10)
    else:
        assert s == 1.0
    assert aligner.n_iter_[0] > 0 and aligner.n_iter_[1] == 0


@pytest.mark.parametrize("scale", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_wider_source_max_covariance_is_the_transposed_reverse_map(seed, scale):
    """Check unbalanced="max_covariance": the transposed map of the reference.

    W^T must be the least-squares (classical) map of the reference into the
    wider source, so W maximises tr(W^T X^T Y) over orthonormal columns; the
    scale is still the least-squares one of the returned map, and no Gram
    matrix is accumulated without a scale.
    """
    X, Y = _anisotropic_pair(seed)
    aligner = ProcrustesAligner(
        reference=1, scale=scale, unbalanced="max_covariance"
    ).fit([X, Y])
    W, s = aligner.rotations_[0], aligner.scales_[0]
    assert W.shape == (10, 6)
    assert_allclose(W.T @ W, np.eye(6), atol=1e-12)
    reverse = ProcrustesAligner(reference=0).fit([X, Y])
    assert_allclose(W, reverse.rotations_[1].T, atol=1e-12)
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    rng = np.random.default_rng(seed + 200)
    for _ in range(20):
        other = np.linalg.qr(rng.normal(size=(10, 6)))[0]
        assert np.sum(W * (Xc.T @ Yc)) >= np.sum(other * (Xc.T @ Yc))
    XW = Xc @ W
    if scale:
        assert_allclose(s * np.sum(XW * XW), np.sum(XW * Yc), rtol=1e-10)
    else:
        assert s == 1.0
        assert aligner._stats.gram_views == []
    assert_array_equal(aligner.n_iter_, [0, 0])
    # Its residual is the closed form's, above the least-squares map's.
    residual = np.sum(
        (aligner.transform_view(X, 0) - aligner.transform_view(Y, 1)) ** 2
    )
    assert_allclose(residual, _closed_form_residual(Xc, Yc, scale=scale), rtol=1e-10)
    solved = ProcrustesAligner(reference=1, scale=scale).fit([X, Y])
    assert residual > np.sum(
        (solved.transform_view(X, 0) - solved.transform_view(Y, 1)) ** 2
    )


def test_max_covariance_survives_a_model_file(tmp_path):
    """Check that a model file keeps unbalanced and the closed-form map."""
    X, Y = _anisotropic_pair(6)
    aligner = ProcrustesAligner(reference=1, unbalanced="max_covariance").fit([X, Y])
    save_aligner(aligner, tmp_path / "model.npz")
    loaded = load_aligner(tmp_path / "model.npz")
    assert loaded.unbalanced == "max_covariance"
    assert_array_equal(loaded.transform([X, Y]), aligner.transform([X, Y]))
    # partial_fit of the loaded model goes on with the same closed form.
    loaded.partial_fit([X[:50], Y[:50]])
    reverse = ProcrustesAligner(reference=0).fit(
        [np.vstack([X, X[:50]]), np.vstack([Y, Y[:50]])]
    )
    assert_allclose(loaded.rotations_[0], reverse.rotations_[1].T, atol=1e-10)


def test_max_covariance_changes_only_wider_sources():
    """Check that views no wider than the reference get the same map either way."""
    X, Y = _anisotropic_pair(3, d=10, p=6)
    for reference in (0, 1):
        for scale in (False, True):
            maps = [
                ProcrustesAligner(
                    reference=reference, scale=scale, unbalanced=unbalanced
                ).fit([X, Y[:, :6], Y[:, :6] @ ortho_group.rvs(6, random_state=1)])
                for unbalanced in ("least_squares", "max_covariance")
            ]
            for k in range(3):
                if k == reference or (reference == 1 and k == 0):
                    continue
                assert_allclose(maps[0].rotations_[k], maps[1].rotations_[k])
                assert_allclose(maps[0].scales_[k], maps[1].scales_[k])


@pytest.mark.parametrize("scale", [False, True])
def test_narrower_source_closed_form_is_the_minimiser(scale):
    """Check a narrower source: U V^T and its scale minimise the residual."""
    X, Y = _anisotropic_pair(3, d=10, p=6)
    # Swap roles: the 6-wide view maps into the 10-wide reference.
    aligner = ProcrustesAligner(reference=0, scale=scale).fit([X, Y])
    W, s = aligner.rotations_[1], aligner.scales_[1]
    assert W.shape == (6, 10)
    assert_allclose(W @ W.T, np.eye(6), atol=1e-12)
    residual = np.sum(
        (aligner.transform_view(Y, 1) - aligner.transform_view(X, 0)) ** 2
    )
    Yc, Xc = Y - Y.mean(axis=0), X - X.mean(axis=0)
    rng = np.random.default_rng(7)
    starts = [np.linalg.qr(rng.normal(size=(10, 6)))[0].T for _ in range(3)]
    descents = [
        _stiefel_descent(Yc, Xc, W0, scale=scale, rows=True)[0] for W0 in starts
    ]
    assert residual <= min(descents) * (1 + 1e-9)
    assert_allclose(residual, _closed_form_residual(Yc, Xc, scale=scale), rtol=1e-12)
    YW = Yc @ W
    if scale:
        # ||Y W|| = ||Y|| for orthonormal rows: tr(S) / ||Y||^2 is least squares.
        assert_allclose(np.sum(YW * YW), np.sum(Yc * Yc), rtol=1e-12)
        assert_allclose(s * np.sum(YW * YW), np.sum(YW * Xc), rtol=1e-10)
    assert_array_equal(aligner.n_iter_, [0, 0])


def test_equal_widths_take_the_closed_form():
    """Check that equal widths accumulate no Gram matrix and run no iteration.

    The sums of squares (a few flops a row) are taken, for the check of
    constant views only.
    """
    A, B, Q = _rotated_pair(11, noise=0.1)
    aligner = ProcrustesAligner().fit([A, B])
    assert aligner._stats.gram_views == []
    assert aligner._checking_request([6, 6]) == {"sum_of_squares": True}
    assert aligner._statistics_request([6, 6])["sum_of_squares"] is False
    assert_array_equal(aligner.n_iter_, [0, 0])
    wider = ProcrustesAligner(reference=1).fit([A, B[:, :4]])
    assert wider._stats.gram_views == [0]


def test_wider_source_warns_when_stopped_early():
    """Check the ConvergenceWarning of the wider-source solver."""
    X, Y = _anisotropic_pair(4)
    with pytest.warns(ConvergenceWarning, match="max_iter=1 iterations"):
        aligner = ProcrustesAligner(reference=1, max_iter=1, tol=0).fit([X, Y])
    assert aligner.n_iter_[0] == 1
    W = aligner.rotations_[0]
    assert_allclose(W.T @ W, np.eye(6), atol=1e-12)


def test_wider_source_partial_fit_and_float32():
    """Check partial_fit and float32 input for a wider source."""
    X, Y = _anisotropic_pair(5, n=600)
    whole = ProcrustesAligner(reference=1, scale=True).fit([X, Y])
    streamed = ProcrustesAligner(reference=1, scale=True)
    for rows in np.array_split(np.arange(600), 5):
        streamed.partial_fit([X[rows], Y[rows]])
    # The minimiser is isolated here, so both paths end at the same map.
    assert_allclose(streamed.rotations_[0], whole.rotations_[0], atol=1e-8)
    assert_allclose(streamed.scales_, whole.scales_, rtol=1e-10)
    single = ProcrustesAligner(reference=1, scale=True).fit(
        [X.astype(np.float32), Y.astype(np.float32)]
    )
    assert single.transform_view(X[:5].astype(np.float32), 0).dtype == np.float32
    assert_allclose(single.rotations_[0], whole.rotations_[0], atol=1e-4)


@pytest.mark.parametrize("n", [20, 30])
def test_wider_source_with_fewer_rows_than_widths_converges(n):
    """Check a wider source fitted on fewer rows than the reference's width.

    The centred source has rank n - 1 < p, so a family of maps shares the
    least residual and the Newton equation has no solution; with float32
    moments the steepest descent keeps promising rounding-level gains. The
    solver must stop at a stationary point well before max_iter, without a
    ConvergenceWarning, at the residual of the float64 fit.
    """
    X, Y = _anisotropic_pair(7, n=n, d=48, p=32)
    fits = {}
    for dtype in (np.float64, np.float32):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            aligner = ProcrustesAligner(reference=1).fit(
                [X.astype(dtype), Y.astype(dtype)]
            )
        assert aligner.n_iter_[0] < aligner.max_iter // 2
        Z = aligner.transform_view(X, 0) - aligner.transform_view(Y, 1)
        fits[dtype] = np.sum(Z.astype(np.float64) ** 2)
    assert_allclose(fits[np.float32], fits[np.float64], rtol=1e-4)


def test_three_views_and_reference_by_name():
    """Check K = 3 views with the reference given by name."""
    rng = np.random.default_rng(1)
    A = rng.normal(size=(300, 4))
    Qs = [ortho_group.rvs(4, random_state=s) for s in range(2)]
    X = np.hstack([A, A @ Qs[0], A @ Qs[1]])
    views = {"a": slice(0, 4), "b": slice(4, 8), "c": slice(8, 12)}
    aligner = ProcrustesAligner(views=views, reference="b", output_frame="reference")
    aligner.fit(X)
    assert aligner.reference_ == 1
    assert_allclose(aligner.transform_view(A, "a"), A @ Qs[0], atol=1e-8)
    assert_allclose(aligner.transform_view(A @ Qs[1], "c"), A @ Qs[0], atol=1e-8)
    names = aligner.get_feature_names_out()
    assert names[0] == "a__procrustesaligner0" and len(names) == 12
    assert_allclose(aligner.translate(A @ Qs[1], "c", "a"), A, atol=1e-8)


def test_unknown_reference_is_an_error():
    """Check that a reference that names no view gets a clear error."""
    X = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(ValueError, match="^reference='nope' is not a view"):
        ProcrustesAligner(reference="nope").fit(X)
    for cls in (
        ProcrustesAligner,
        RidgeAligner,
        ResidualMLPAligner,
        KernelResidualAligner,
    ):
        with pytest.raises(ValueError, match=r"^reference=5 is not a view.*\[-2, 1\]"):
            cls(reference=5).fit(X)


def test_allow_reflection_false_gives_proper_rotation():
    """Check that allow_reflection=False returns det = +1 even for a reflected copy."""
    rng = np.random.default_rng(2)
    A = rng.normal(size=(200, 5))
    R = np.eye(5)
    R[0, 0] = -1
    aligner = ProcrustesAligner(reference=1, allow_reflection=False).fit([A, A @ R])
    assert_allclose(np.linalg.det(aligner.rotations_[0]), 1.0, atol=1e-10)
    free = ProcrustesAligner(reference=1).fit([A, A @ R])
    assert_allclose(free.rotations_[0], R, atol=1e-10)
    with pytest.raises(ValueError, match="allow_reflection=False needs views of equal"):
        ProcrustesAligner(allow_reflection=False).fit([A, A[:, :3]])


def test_normalize_l2_uses_unit_rows():
    """Check that normalize='l2' equals fitting on unit-length rows."""
    A, B, _ = _rotated_pair(3, noise=0.2)
    A2, B2 = 3 * A, 0.5 * B
    unit = [
        A / np.linalg.norm(A, axis=1, keepdims=True),
        B / np.linalg.norm(B, axis=1, keepdims=True),
    ]
    by_option = ProcrustesAligner(normalize="l2").fit([A2, B2])
    by_hand = ProcrustesAligner().fit(unit)
    assert_allclose(by_option.rotations_[1], by_hand.rotations_[1], atol=1e-10)
    assert_allclose(by_option.transform([A2, B2]), by_hand.transform(unit), atol=1e-10)


def test_float32_preserved_and_memory_bounded():
    """Check float32 in -> float32 out, and that fit copies no more than a chunk."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400_000, 64)).astype(np.float32)
    X += 3.0
    before = X.copy()
    tracemalloc.start()
    aligner = ProcrustesAligner(scale=True).fit(X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 0.25 * X.nbytes
    assert_allclose(X, before)
    assert aligner.transform(X[:10]).dtype == np.float32
    assert aligner.transform_view(X[:10, :32], 1).dtype == np.float32
    assert aligner.translate(X[:10, :32], 1, 0).dtype == np.float32


def test_translate_and_inverse_round_trip():
    """Check that inverse_transform_view undoes transform_view."""
    A, B, _ = _rotated_pair(4, noise=0.1, shift=1.0, scale=2.0)
    aligner = ProcrustesAligner(scale=True).fit([A, B])
    Z = aligner.transform_view(B, 1)
    assert_allclose(aligner.inverse_transform_view(Z, 1), B, atol=1e-10)
    with pytest.raises(ValueError, match="n_components_ = 6"):
        aligner.inverse_transform_view(Z[:, :3], 1)


def test_combine_modes():
    """Check the concat, mean and similarity outputs and their feature names."""
    A, B, _ = _rotated_pair(5)
    X = np.hstack([A, B])
    concat = ProcrustesAligner().fit(X)
    mean = ProcrustesAligner(combine="mean", output_frame="reference").fit(X)
    sim = ProcrustesAligner(combine="similarity").fit(X)
    assert concat.transform(X).shape == (300, 12)
    assert_allclose(mean.transform(X), A, atol=1e-8)
    assert_allclose(sim.transform(X), np.ones((300, 1)), atol=1e-8)
    assert list(sim.get_feature_names_out()) == ["cosine__view0__view1"]
    assert mean.get_feature_names_out()[0] == "procrustesaligner0"
    # View names holding "__" joined into one name twice.
    views = {"a": [0, 1], "b__c": [2, 3], "a__b": [4, 5], "c": [6, 7]}
    rng = np.random.default_rng(0)
    four = ProcrustesAligner(views=views, combine="similarity")
    names = four.fit(rng.normal(size=(50, 8))).get_feature_names_out()
    assert len(set(names)) == len(names) == 6
    assert names[0] == "cosine__view0__view1"


def test_set_output_pandas():
    """Check that set_output(transform='pandas') names the columns."""
    A, B, _ = _rotated_pair(6)
    out = ProcrustesAligner().set_output(transform="pandas").fit_transform([A, B])
    assert list(out.columns[:2]) == [
        "view0__procrustesaligner0",
        "view0__procrustesaligner1",
    ]


def test_clone_and_pickle():
    """Check clone and a pickle round trip of a fitted aligner."""
    A, B, _ = _rotated_pair(7)
    aligner = ProcrustesAligner(scale=True).fit([A, B])
    restored = pickle.loads(pickle.dumps(aligner))
    assert_allclose(restored.transform([A, B]), aligner.transform([A, B]))
    assert clone(aligner).get_params() == aligner.get_params()


def test_generalized_procrustes_recovers_consensus():
    """Check that GPA aligns rotated noisy copies of one configuration."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(500, 5))
    views = [
        A @ ortho_group.rvs(5, random_state=s) + 0.05 * rng.normal(size=A.shape) + s
        for s in range(4)
    ]
    gpa = GeneralizedProcrustesAligner().fit(views)
    Z = [gpa.transform_view(v, k) for k, v in enumerate(views)]
    for k in range(1, 4):
        assert np.abs(Z[k] - Z[0]).mean() < 0.1
    assert gpa.n_iter_ >= 1
    assert gpa.residual_ < 0.01
    assert gpa.score(views) > 0.95


def test_generalized_procrustes_scale():
    """Check that GPA with scale=True undoes per-view scaling up to one factor."""
    rng = np.random.default_rng(1)
    A = rng.normal(size=(300, 4))
    factors = [1.0, 3.0, 0.5]
    views = [f * A @ ortho_group.rvs(4, random_state=i) for i, f in enumerate(factors)]
    gpa = GeneralizedProcrustesAligner(scale=True).fit(views)
    ratios = gpa.scales_ * np.array(factors)
    assert_allclose(ratios / ratios[0], np.ones(3), rtol=1e-6)


def test_generalized_procrustes_warns_when_stopped_early():
    """Check the ConvergenceWarning when max_iter is too small."""
    rng = np.random.default_rng(2)
    views = [rng.normal(size=(100, 6)) for _ in range(3)]
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        GeneralizedProcrustesAligner(max_iter=1, tol=0).fit(views)


def test_generalized_procrustes_different_widths():
    """Check that GPA handles views of different widths."""
    rng = np.random.default_rng(3)
    A = rng.normal(size=(300, 6))
    views = [A, (A @ ortho_group.rvs(6, random_state=0))[:, :4]]
    gpa = GeneralizedProcrustesAligner().fit(views)
    assert gpa.n_components_ == 6
    assert gpa.rotations_[1].shape == (4, 6)


@pytest.mark.slow
def test_pipeline_and_grid_search_with_classifier():
    """Check Pipeline + GridSearchCV over aligner options with a classifier."""
    data = load_fortunes()
    X = [data.views["minilm"][:900], data.views["e5"][:900]]
    y = data.target[:900]
    pipe = make_pipeline(ProcrustesAligner(), LogisticRegression(max_iter=300))
    grid = GridSearchCV(
        pipe,
        {
            "procrustesaligner__center": [True, False],
            "procrustesaligner__scale": [False, True],
            "procrustesaligner__combine": ["concat", "mean"],
        },
        cv=3,
    )
    grid.fit(np.hstack(X), y)
    assert grid.best_score_ > 1.5 / len(data.target_names)


def test_label_free_grid_search_uses_score():
    """Check that GridSearchCV on the aligner alone selects centring on e5 data."""
    data = load_fortunes()
    X = np.hstack([data.views["minilm"][:1500], data.views["e5"][:1500]])
    grid = GridSearchCV(
        ProcrustesAligner(reference=1), {"center": [False, True]}, cv=3
    ).fit(X)
    assert grid.best_params_ == {"center": True}
    assert grid.best_score_ > 0.5


def test_bundled_real_data_retrieval():
    """Check held-out retrieval on the bundled subset, and the uncentred trap."""
    data = load_fortunes()
    A, B = data.views["minilm"], data.views["e5"]
    train, test = slice(0, 2000), slice(2000, None)
    aligner = ProcrustesAligner().fit([A[train], B[train]])
    forward, backward = _directional_retrieval(aligner, A[test], B[test])
    assert forward > 0.9 and backward > 0.9
    trap = ProcrustesAligner(center=False, reference=0).fit([A[train], B[train]])
    # Uncentred, e5's common direction dominates the cross-products.
    Z = [trap.transform_view(A[test], 0), trap.transform_view(B[test], 1)]
    assert retrieval_accuracy(Z[1], Z[0]) < forward - 0.2


@pytest.mark.skipif(available_corpus("fortunes") is None, reason=missing("fortunes"))
def test_full_real_data_retrieval():
    """Check >= 0.98 top-1 both ways, minilm <-> e5, 5,000 train / 2,000 held out."""
    folder = available_corpus("fortunes")
    A = np.load(folder / "minilm.npy")
    B = np.load(folder / "e5.npy")
    perm = np.random.default_rng(20240607).permutation(A.shape[0])
    test, train = perm[:2000], perm[2000:7000]
    aligner = ProcrustesAligner().fit([A[train], B[train]])
    forward, backward = _directional_retrieval(aligner, A[test], B[test])
    assert forward >= 0.98 and backward >= 0.98
    assert aligner.score([A[test], B[test]]) >= 0.98


def _statistics_descent(X, Y, W, *, scale, n_iter):
    """The Stiefel descent run on d x d factors of the moments instead of rows.

    With ``F = (X^T X)^{1/2}`` and ``T = F^+ X^T Y``, ``||s F W - T||^2``
    differs from ``||s X W - Y||^2`` by a constant when X^T Y lies in the
    range of X^T X, as it does for centred rows; returns the rows' residual.
    """
    values, vectors = np.linalg.eigh(X.T @ X)
    root = np.sqrt(np.clip(values, 0, None))
    inverse = np.where(root > 1e-9 * root.max(), 1 / np.maximum(root, 1e-300), 0.0)
    F = (vectors * root) @ vectors.T
    T = (vectors * inverse) @ vectors.T @ (X.T @ Y)
    cost, W = _stiefel_descent(F, T, W, scale=scale, n_iter=n_iter)
    return cost - np.sum(T * T) + np.sum(Y * Y), W


@pytest.mark.skipif(available_corpus("fortunes") is None, reason=missing("fortunes"))
@pytest.mark.parametrize("scale", [False, True])
@pytest.mark.slow
def test_real_wider_source_residual_and_retrieval(scale):
    """Check minilm (384) -> wordllama (256): residual, descent, retrieval."""
    folder = available_corpus("fortunes")
    A = np.load(folder / "minilm.npy").astype(np.float64)
    B = np.load(folder / "wordllama256.npy").astype(np.float64)
    perm = np.random.default_rng(20240607).permutation(A.shape[0])
    test, train = perm[:2000], perm[2000:7000]
    aligner = ProcrustesAligner(reference=1, scale=scale).fit([A[train], B[train]])
    mapped = aligner.transform_view(A[train], 0)
    residual = np.sum((mapped - aligner.transform_view(B[train], 1)) ** 2)
    Xc, Yc = A[train] - A[train].mean(axis=0), B[train] - B[train].mean(axis=0)
    closed = _closed_form_residual(Xc, Yc, scale=scale)
    # Measured: 4563.0 (U V^T) and 3553.1 (solver) without scale, 3663.7 and
    # 3442.6 with it. A Stiefel descent started at the solver's map finds
    # nothing lower (long descents from U V^T end above it too).
    W = aligner.rotations_[0]
    descent, _ = _statistics_descent(Xc, Yc, W, scale=scale, n_iter=40)
    assert residual <= descent * (1 + 1e-9)
    assert residual < (0.8 if not scale else 0.95) * closed
    U, _, Vt = np.linalg.svd(Xc.T @ Yc, full_matrices=False)

    # Before: the closed-form U V^T (with its least-squares scale).
    XW = Xc @ (U @ Vt)
    s0 = np.sum(XW * Yc) / np.sum(XW * XW) if scale else 1.0
    mapped = [s0 * (A[test] - A[train].mean(axis=0)) @ (U @ Vt)]
    mapped.append(B[test] - B[train].mean(axis=0))
    old = (
        retrieval_accuracy(mapped[0], mapped[1]),
        retrieval_accuracy(mapped[1], mapped[0]),
    )
    new = _directional_retrieval(aligner, A[test], B[test])
    # Held-out top-1, minilm -> wordllama and back: no worse than U V^T.
    assert new[0] >= old[0] - 0.005 and new[1] >= old[1] - 0.005


@pytest.mark.parametrize("factor", [1e77, 1e-100])
def test_scaled_fits_at_extreme_magnitudes(factor):
    """Check scale=True far from unit magnitudes: the same maps, no overflow.

    Generalised Procrustes divided by the outer product of the views' sums
    of squares, which leaves float64's range near 1e77 and 1e-100; the solver
    of a wider source squared entries near 1e-100 to zero.
    """
    rng = np.random.default_rng(0)
    C = rng.normal(size=(60, 5))
    D = 0.8 * C @ ortho_group.rvs(5, random_state=1) + 0.05 * rng.normal(size=C.shape)
    unit = GeneralizedProcrustesAligner(scale=True).fit([C, D])
    scaled = GeneralizedProcrustesAligner(scale=True).fit([C * factor, D * factor])
    assert_allclose(scaled.scales_, unit.scales_, rtol=1e-9)
    assert_allclose(scaled.residual_, unit.residual_, rtol=1e-9)
    X = rng.normal(size=(200, 6))
    W = np.linalg.qr(rng.normal(size=(6, 4)))[0]
    Y = 1.36 * X @ W + 0.01 * rng.normal(size=(200, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wide = ProcrustesAligner(scale=True, reference=1).fit([X, Y])
        tiny = ProcrustesAligner(scale=True, reference=1).fit([X * factor, Y * factor])
    assert_allclose(tiny.scales_, wide.scales_, rtol=1e-9)
    assert_allclose(tiny.rotations_[0], wide.rotations_[0], atol=1e-9)


def test_translate_names_source_and_target_in_its_errors():
    """Check that a view that does not exist is named by its parameter."""
    A, B, _ = _rotated_pair(0)
    aligner = ProcrustesAligner().fit([A, B])
    with pytest.raises(ValueError, match="^source=5 is not a view"):
        aligner.translate(A, source=5, target=0)
    with pytest.raises(ValueError, match="^target='nope' is not a view"):
        aligner.translate(A, source=0, target="nope")


def test_exact_fits_of_a_wider_source_converge():
    """Check a reference that is exactly part of the source, and a constant one.

    A truncated (Matryoshka) embedding is an exact fit: the line search
    stalls at the moments' rounding, which is not a failure to converge. A
    constant reference with scale=True has a zero residual from the start
    (it raised ZeroDivisionError).
    """
    rng = np.random.default_rng(0)
    A = rng.normal(size=(100, 8))
    for B, scale in ((A[:, :4].copy(), False), (2 * A[:, :4], True)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            aligner = ProcrustesAligner(reference=1, scale=scale).fit([A, B])
        assert aligner.n_iter_[0] < aligner.max_iter
        assert_allclose(aligner.translate(A, 0, 1), B, atol=1e-6)
    constant = ProcrustesAligner(reference=1, scale=True).fit([A, np.ones((100, 4))])
    assert np.isfinite(constant.transform_view(A, 0)).all()


@pytest.mark.parametrize("scale", [False, True])
def test_a_wider_exact_copy_of_the_reference_maps_back_exactly(scale):
    """Check a wider isometric copy of the reference: the start is the answer.

    The exact map is where the solver starts; steps taken on the rounding of
    the moments walked 2e-5 away from it.
    """
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(100, 5)) * np.arange(1, 6) + 2
    M = ortho_group.rvs(9, random_state=0)[:5]
    X = Y @ M + 7
    aligner = ProcrustesAligner(scale=scale).fit([Y, X])
    assert aligner.n_iter_[1] == 0
    assert_allclose(aligner.rotations_[1], M.T, atol=1e-12)
    assert_allclose(aligner.translate(Y, 0, 1), X, atol=1e-11)
    assert_allclose(aligner.translate(X, 1, 0), Y, atol=1e-11)


def test_wider_source_partial_fit_of_float64_then_float32_chunks_converges():
    """Check the solver's precision is that of the coarsest chunk's statistics.

    Float32 chunks carry float32 rounding into merged statistics; judged at
    float64 precision, the solver ran to max_iter and warned.
    """
    X, Y = _anisotropic_pair(7, n=20, d=48, p=32)
    aligner = ProcrustesAligner(reference=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aligner.partial_fit([X[:10], Y[:10]])
        aligner.partial_fit([X[10:].astype(np.float32), Y[10:].astype(np.float32)])
    assert aligner.n_iter_[0] < aligner.max_iter
    assert aligner._fit_dtype == np.float64


def test_constant_reference_of_a_wider_source_fits_without_warnings():
    """Check the solver's subnormal floor: 1 / floor overflowed, with a warning.

    A constant reference leaves nothing to correlate with; the map is any
    orthonormal one, and no RuntimeWarning may reach the user (only the
    warning that the reference is constant).
    """
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(50, 6)), np.ones((50, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.warns(UserWarning, match=r"\['view1'\] are constant") as record:
            aligner = ProcrustesAligner(reference=1).fit([X, Y])
    assert len(record) == 1
    rotation = aligner.rotations_[0]
    assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-10)


@pytest.mark.parametrize("value, normalize", [(1.0, None), (0.1, None), (1.0, "l2")])
def test_gpa_scales_a_constant_view_to_zero(value, normalize):
    """Check a view constant over the rows, whose centring leaves rounding noise.

    With 0.1 * ones the scale divided by that noise: scales_ of 4e154, a NaN
    residual, hundreds of RuntimeWarnings; ones (centred exactly) gave 0.
    """
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 4)), np.full((20, 3), value)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        gpa = GeneralizedProcrustesAligner(scale=True, normalize=normalize)
        with pytest.warns(UserWarning, match=r"\['view1'\] are constant") as record:
            gpa.fit([X, Y])
    assert len(record) == 1
    assert gpa.scales_[1] == 0
    assert gpa.residual_ == pytest.approx(0.5)
    assert_array_equal(gpa.transform_view(Y, 1), 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", [0.1, 1e6 + 0.1])
@pytest.mark.parametrize("constant_view", [0, 1])
@pytest.mark.parametrize(
    "aligner",
    [
        ProcrustesAligner(),
        ProcrustesAligner(center=False, scale=True),
        ProcrustesAligner(reference=1),
        GeneralizedProcrustesAligner(),
    ],
    ids=["procrustes", "uncentred", "wider-source", "gpa"],
)
def test_a_constant_view_is_reported(aligner, constant_view, value, dtype):
    """Check the warning for a view constant over the rows fitted.

    Every row of it maps to one point, and a rotation onto a constant
    reference is arbitrary, so retrieval across the views is at chance; the
    fit said nothing. 0.1 * ones centres with rounding noise in float64
    (its cross moments are 1e-33, not 0).
    """
    rng = np.random.default_rng(0)
    X = [
        rng.normal(size=(100, 5)).astype(dtype),
        rng.normal(size=(100, 4)).astype(dtype),
    ]
    X[constant_view] = np.full_like(X[constant_view], value)
    reference_is_constant = constant_view == aligner.get_params().get("reference")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.warns(UserWarning) as record:
            fitted = clone(aligner).fit(X)
    messages = [str(w.message) for w in record]
    assert len(messages) == 1, messages
    said = f"['view{constant_view}'] are constant over the training rows"
    assert said in messages[0]
    # A caller can name the view without reading the text.
    assert record[0].category is ConstantViewWarning
    assert record[0].message.views == (f"view{constant_view}",)
    # And after a copy or a trip through a worker process.
    copied = pickle.loads(pickle.dumps(record[0].message))
    assert (copied.views, str(copied)) == (record[0].message.views, messages[0])
    assert ("every rotation onto the reference is arbitrary" in messages[0]) is (
        reference_is_constant and not isinstance(fitted, GeneralizedProcrustesAligner)
    )
    assert record[0].filename == __file__
    assert fitted.transform(X).dtype == dtype
    # A small spread far from the origin is no constant view.
    X[constant_view] = (value + 1e-3 * rng.normal(size=X[constant_view].shape)).astype(
        np.float64
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clone(aligner).fit(X)


def test_a_constant_view_is_reported_by_partial_fit():
    """Check that the warning follows the rows so far, not the last chunk."""
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(50, 4)), np.full((50, 4), 0.1)
    aligner = ProcrustesAligner()
    with pytest.warns(UserWarning, match=r"\['view1'\] are constant"):
        aligner.partial_fit([A, B])
    with pytest.warns(UserWarning, match=r"\['view1'\] are constant"):
        aligner.partial_fit([A, B])
    # Constant over the first chunk only: the rows so far are not.
    aligner = ProcrustesAligner()
    with pytest.warns(UserWarning, match="constant"):
        aligner.partial_fit([A, B])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aligner.partial_fit([A, rng.normal(size=(50, 4))])


def _descended(W, G, C, scale, steps=3000):
    """Projected gradient descent on maps with orthonormal columns, from W."""
    rate = 0.3 / np.linalg.eigvalsh(G)[-1]
    for _ in range(steps):
        s = np.trace(W.T @ C) / np.trace(W.T @ G @ W) if scale else 1.0
        gradient = s * s * G @ W - s * C
        gradient -= W @ ((W.T @ gradient + gradient.T @ W) / 2)
        U, _, Vt = np.linalg.svd(W - rate * gradient, full_matrices=False)
        W = U @ Vt
    return W


@pytest.mark.parametrize("n_rows, seed", [(4, 1), (6, 0), (10, 5)])
@pytest.mark.parametrize("scale", [False, True])
def test_wider_source_from_few_rows_ends_at_a_minimum_not_a_saddle(n_rows, seed, scale):
    """Check that descent from the fitted map of a wider source gains nothing.

    Newton's method stopped where the gradient vanished, and with few rows
    that was often a saddle: a residual of 3.04 where descent from the same
    map reached 0 (4 rows, 10 source and 4 reference columns; 20 of 24 random
    problems of that size, 3 of 24 at 10 rows).
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 10)) * np.linspace(0.1, 5, 10)
    Y = X @ rng.normal(size=(10, 4)) * 0.3 + rng.normal(size=(n_rows, 4))
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    G, C = Xc.T @ Xc, Xc.T @ Yc

    def residual(W):
        s = np.trace(W.T @ C) / np.trace(W.T @ G @ W) if scale else 1.0
        return np.sum((s * Xc @ W - Yc) ** 2)

    W = ProcrustesAligner(reference=1, scale=scale).fit([X, Y]).rotations_[0]
    assert residual(_descended(W, G, C, scale)) >= residual(W) - 1e-6 * np.sum(Yc**2)


@pytest.mark.parametrize("cls", [ProcrustesAligner, GeneralizedProcrustesAligner])
@pytest.mark.parametrize("fitted, now", [("l2", None), (None, "l2")])
def test_mapping_refuses_a_normalize_changed_after_fit(cls, fitted, now, tmp_path):
    # The maps apply to rows normalised as at fit: raw rows through a map
    # fitted on unit rows came out scaled by their norms, with no error.
    rng = np.random.default_rng(0)
    X = 5.0 * rng.normal(size=(120, 8))
    aligner = cls(normalize=fitted).fit(X)
    expected = aligner.transform(X)
    expected_translation = aligner.translate(X[:, :4], 0, 1)
    path = tmp_path / "aligner.skembed"
    save_aligner(aligner, path)
    for model in (aligner, load_aligner(path)):
        model.set_params(normalize=now)
        for call in (
            lambda m: m.transform(X),
            lambda m: m.transform_view(X[:, :4], 0),
            lambda m: m.translate(X[:, :4], 0, 1),
        ):
            with pytest.raises(ValueError, match="fitted with normalize=.*set_params"):
                call(model)
        model.set_params(normalize=fitted)
        assert_array_equal(model.transform(X), expected)
        assert_array_equal(model.translate(X[:, :4], 0, 1), expected_translation)
    aligner.set_params(normalize=now)
    assert_allclose(
        aligner.fit(X).transform(X), cls(normalize=now).fit_transform(X), atol=1e-12
    )


@pytest.mark.parametrize("shifted", [(1,), (0, 1)])
def test_generalized_procrustes_ignores_a_large_offset_of_the_views(shifted):
    # Views far from the origin relative to their spread (float64, 1e6 away,
    # spread 0.06) were taken for constant: one such view was fitted to
    # chance with no warning, two raised "All views are constant".
    rng = np.random.default_rng(0)
    A = 0.06 * rng.normal(size=(300, 16))
    B = A @ ortho_group.rvs(16, random_state=1) + 0.001 * rng.normal(size=(300, 16))
    views = [A, B]
    offset = [v + 1e6 if k in shifted else v for k, v in enumerate(views)]
    expected = GeneralizedProcrustesAligner().fit(views)
    fitted = GeneralizedProcrustesAligner().fit(offset)
    assert fitted.score(offset) == expected.score(views) == 1.0
    assert_allclose(fitted.transform(offset), expected.transform(views), atol=1e-6)


def test_no_reflection_never_gets_a_negative_scale():
    """Check a single column that only a reflection fits, with scale=True.

    The scale was -0.9987 with the rotation 1: a reflection after all, which
    flipped the sign of every translated row under allow_reflection=False.
    """
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 1))
    b = -a + 0.01 * rng.normal(size=(50, 1))
    with pytest.warns(UserWarning, match="only through a reflection"):
        aligner = ProcrustesAligner(allow_reflection=False, scale=True).fit([a, b])
    assert_array_equal(aligner.rotations_[1], [[1.0]])
    assert aligner.scales_[1] == 0.0
    assert_allclose(aligner.translate(b, 1, 0), np.tile(a.mean(axis=0), (50, 1)))
    # Several columns: a flipped last singular value leaves a positive sum.
    A = rng.normal(size=(50, 3))
    B = A @ np.diag([1.0, 1.0, -1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aligner = ProcrustesAligner(allow_reflection=False, scale=True).fit([A, B])
    assert aligner.scales_[1] > 0
    assert aligner.singular_values_[1][-1] < 0
    fitted = ProcrustesAligner(allow_reflection=True, scale=True).fit([a, b])
    assert_allclose(fitted.translate(b, 1, 0), a, atol=0.05)


def test_singular_values_are_those_of_the_centred_cross_product():
    """Check the documented meaning: sums over the rows, growing with them."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(400, 3))
    B = A @ ortho_group.rvs(3, random_state=0) + 0.1 * rng.normal(size=(400, 3))
    for n in (100, 400):
        aligner = ProcrustesAligner().fit([A[:n], B[:n]])
        Ac, Bc = A[:n] - A[:n].mean(axis=0), B[:n] - B[:n].mean(axis=0)
        expected = np.linalg.svd(Bc.T @ Ac, compute_uv=False)
        assert_allclose(aligner.singular_values_[1], expected, rtol=1e-10)
