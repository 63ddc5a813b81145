"""Tests for CCAAligner."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose
from scipy import linalg
from sklearn.cross_decomposition import CCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.extmath import svd_flip

from skembed import CCAAligner
from skembed._cca import _maxvar_directions
from skembed.datasets import load_fortunes


def _latent_views(seed, n=400, widths=(5, 4), n_latent=3, noise=0.5, dtype=float):
    """Views sharing a latent signal of decreasing strength, plus noise."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, n_latent)) * np.linspace(2.0, 0.5, n_latent)
    views = []
    for d in widths:
        loading = rng.normal(size=(n_latent, d))
        offset = rng.normal(scale=5.0, size=d)
        views.append(latent @ loading + noise * rng.normal(size=(n, d)) + offset)
    return [v.astype(dtype) for v in views]


def _regularized_covariances(views, reg):
    centred = [v - v.mean(axis=0) for v in views]
    n = centred[0].shape[0]
    C = [[a.T @ b / (n - 1) for b in centred] for a in centred]
    D = [
        C[k][k] + reg * np.trace(C[k][k]) / C[k][k].shape[0] * np.eye(len(C[k][k]))
        for k in range(len(views))
    ]
    return C, D


def _reference_two_view(views, m, reg):
    """Textbook CCA: C12 D2^-1 C21 u = rho^2 D1 u, a generalised eigenproblem."""
    C, D = _regularized_covariances(views, reg)
    rho2, U = linalg.eigh(C[0][1] @ linalg.solve(D[1], C[1][0]), D[0])
    rho2, U = rho2[::-1][:m], U[:, ::-1][:, :m]
    rho = np.sqrt(rho2)
    V = linalg.solve(D[1], C[1][0] @ U) / rho
    return rho, [U, V]


def _reference_maxvar(views, m, reg):
    """MAXVAR as the generalised eigenproblem C a = lambda D a over all views."""
    C, D = _regularized_covariances(views, reg)
    K = len(views)
    full = np.block([[D[i] if i == j else C[i][j] for j in range(K)] for i in range(K)])
    _, vectors = linalg.eigh(full, linalg.block_diag(*D))
    vectors = vectors[:, ::-1][:, :m]
    offsets = np.cumsum([0] + [v.shape[1] for v in views])
    weights = []
    for k in range(K):
        a = vectors[offsets[k] : offsets[k + 1]]
        weights.append(a / np.sqrt(np.einsum("ds,de,es->s", a, D[k], a)))
    pairs = [(i, j) for i in range(K) for j in range(i + 1, K)]
    rho = np.mean(
        [np.einsum("ds,de,es->s", weights[i], C[i][j], weights[j]) for i, j in pairs],
        axis=0,
    )
    return rho, weights


def _match_signs(actual, expected):
    return expected * np.sign(np.sum(actual * expected, axis=0))


def _covariance(Z1, Z2):
    Z1, Z2 = Z1 - Z1.mean(axis=0), Z2 - Z2.mean(axis=0)
    return Z1.T @ Z2 / (Z1.shape[0] - 1)


@pytest.mark.parametrize("reg", [0.0, 1e-2])
@pytest.mark.parametrize("widths", [(5, 4), (3, 6)])
def test_matches_dense_float64_reference(reg, widths):
    """Check weights and correlations against a generalised eigensolver to 1e-8."""
    views = _latent_views(0, widths=widths)
    cca = CCAAligner(n_components=3, reg=reg).fit(views)
    rho, weights = _reference_two_view(views, 3, reg)
    assert_allclose(cca.canonical_correlations_, rho, atol=1e-8)
    for ours, ref in zip(cca.weights_, weights, strict=True):
        assert_allclose(ours, _match_signs(ours, ref), atol=1e-8)
    for k, view in enumerate(views):
        assert_allclose(cca.means_[k], view.mean(axis=0), atol=1e-10)


def test_three_views_match_dense_maxvar_reference():
    """Check K = 3 weights and mean pairwise correlations against MAXVAR to 1e-8."""
    views = _latent_views(1, widths=(5, 4, 6))
    cca = CCAAligner(n_components=3, reg=1e-3).fit(views)
    rho, weights = _reference_maxvar(views, 3, 1e-3)
    assert_allclose(cca.canonical_correlations_, rho, atol=1e-8)
    for ours, ref in zip(cca.weights_, weights, strict=True):
        assert_allclose(ours, _match_signs(ours, ref), atol=1e-8)
    Z = cca._transform_views(views)
    assert cca.transform(views).shape == (400, 9)
    for k in range(3):
        # Each view's variates have unit regularised variance.
        D = _regularized_covariances(views, 1e-3)[1][k]
        assert_allclose(np.diag(cca.weights_[k].T @ D @ cca.weights_[k]), 1.0)
    pairwise = [np.diag(_covariance(Z[i], Z[j])) for i, j in [(0, 1), (0, 2), (1, 2)]]
    assert_allclose(np.mean(pairwise, axis=0), cca.canonical_correlations_, atol=1e-3)


def test_maxvar_reduces_to_two_view_cca():
    """Check that the K-view MAXVAR path run on two views is two-view CCA."""
    rng = np.random.default_rng(2)
    views = _latent_views(2, widths=(5, 4))
    cca = CCAAligner(n_components=3, reg=1e-2).fit(views)
    # Whitened cross-covariance with random (non-unit) singular values.
    T = rng.normal(size=(5, 4))
    T /= 1.1 * np.linalg.norm(T, 2)
    U, S, Vt = linalg.svd(T, full_matrices=False)
    U, Vt = svd_flip(U, Vt)
    blocks, rho = _maxvar_directions([[None, T], [None, None]], [5, 4], 3)
    assert_allclose(rho, S[:3], atol=1e-12)
    assert_allclose(blocks[0], U[:, :3], atol=1e-10)
    assert_allclose(blocks[1], Vt[:3].T, atol=1e-10)
    # And the fitted two-view estimator is its own reference: the SVD path.
    rho_ref, weights = _reference_maxvar(views, 3, 1e-2)
    assert_allclose(cca.canonical_correlations_, rho_ref, atol=1e-8)
    for ours, ref in zip(cca.weights_, weights, strict=True):
        assert_allclose(ours, _match_signs(ours, ref), atol=1e-8)


def test_matches_sklearn_cca():
    """Check the first components against scikit-learn's NIPALS CCA to 1e-4."""
    A, B = _latent_views(3, n=500, widths=(4, 3), noise=0.7)
    cca = CCAAligner(n_components=2, reg=0).fit([A, B])
    sk = CCA(n_components=2, max_iter=5000, tol=1e-12).fit(A, B)
    X_scores, Y_scores = sk.transform(A, B)
    Z = cca._transform_views([A, B])
    for s in range(2):
        sk_rho = np.corrcoef(X_scores[:, s], Y_scores[:, s])[0, 1]
        assert_allclose(cca.canonical_correlations_[s], sk_rho, atol=1e-4)
        assert_allclose(
            abs(np.corrcoef(Z[0][:, s], X_scores[:, s])[0, 1]), 1, atol=1e-4
        )
        assert_allclose(
            abs(np.corrcoef(Z[1][:, s], Y_scores[:, s])[0, 1]), 1, atol=1e-4
        )
    # First weight vector, in scikit-learn's standardised coordinates.
    w = cca.weights_[0][:, 0] * A.std(axis=0, ddof=1)
    w /= np.linalg.norm(w)
    assert_allclose(w, _match_signs(w[:, None], sk.x_weights_[:, :1])[:, 0], atol=1e-4)


def _well_conditioned_map(singular_vectors, singular_values):
    U, _, Vt = np.linalg.svd(singular_vectors)
    return (U * singular_values) @ Vt


@settings(deadline=None, max_examples=30)
@given(
    seed=st.integers(0, 2**16),
    raw_maps=st.tuples(
        arrays(np.float64, (4, 4), elements=st.floats(-1, 1)),
        arrays(np.float64, (3, 3), elements=st.floats(-1, 1)),
    ),
    scales=st.tuples(
        arrays(np.float64, 4, elements=st.floats(0.3, 3)),
        arrays(np.float64, 3, elements=st.floats(0.3, 3)),
    ),
    shifts=st.tuples(
        arrays(np.float64, 4, elements=st.floats(-100, 100)),
        arrays(np.float64, 3, elements=st.floats(-100, 100)),
    ),
)
def test_correlations_invariant_under_affine_maps(seed, raw_maps, scales, shifts):
    """Check that invertible linear maps and translations of each view change
    neither the canonical correlations nor the canonical variates (up to sign)."""
    views = _latent_views(seed, widths=(4, 3), noise=0.6)
    maps = [_well_conditioned_map(r, s) for r, s in zip(raw_maps, scales, strict=True)]
    moved = [v @ M + t for v, M, t in zip(views, maps, shifts, strict=True)]
    before = CCAAligner(n_components=3, reg=0).fit(views)
    after = CCAAligner(n_components=3, reg=0).fit(moved)
    assert_allclose(
        after.canonical_correlations_, before.canonical_correlations_, atol=1e-8
    )
    variates = before._transform_views(views)
    moved_variates = after._transform_views(moved)
    for Z, Z_moved in zip(variates, moved_variates, strict=True):
        assert_allclose(np.abs(Z_moved), np.abs(Z), atol=1e-7)


@settings(deadline=None, max_examples=30)
@given(
    data=st.tuples(
        arrays(np.float64, (30, 4), elements=st.floats(-10, 10)),
        arrays(np.float64, (30, 3), elements=st.floats(-10, 10)),
    ),
    reg=st.floats(1e-3, 1.0),
)
def test_correlations_in_unit_interval_sorted_and_finite(data, reg):
    """Check correlations in [0, 1], descending, and finite output on any data."""
    assume(all(np.var(view, axis=0).sum() > 1e-6 for view in data))
    cca = CCAAligner(n_components=3, reg=reg).fit(list(data))
    rho = cca.canonical_correlations_
    assert np.all((rho >= 0) & (rho <= 1))
    assert np.all(np.diff(rho) <= 1e-12)
    assert np.all(np.isfinite(cca.transform(list(data))))


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 2**16), reg=st.sampled_from([0.0, 1e-4, 1e-2, 0.3]))
def test_training_variates_are_whitened(seed, reg):
    """Check identity covariance (up to reg) and a diagonal cross-covariance
    equal to the canonical correlations on the training views."""
    views = _latent_views(seed, widths=(5, 4))
    cca = CCAAligner(n_components=4, reg=reg).fit(views)
    Z1, Z2 = cca._transform_views(views)
    assert_allclose(
        _covariance(Z1, Z2), np.diag(cca.canonical_correlations_), atol=1e-8
    )
    for k, Z in enumerate((Z1, Z2)):
        C = np.cov(views[k], rowvar=False)
        ridge = reg * np.trace(C) / C.shape[0]
        P = cca.weights_[k]
        covariance = _covariance(Z, Z)
        # Exactly I - ridge P^T P; within reg of the identity.
        assert_allclose(covariance, np.eye(4) - ridge * P.T @ P, atol=1e-8)
        bound = ridge / (np.linalg.eigvalsh(C)[0] + ridge)
        assert np.max(np.abs(covariance - np.eye(4))) <= bound + 1e-8


def test_translate_is_least_squares_through_canonical_space():
    """Check translate: exact for an invertible relation, regression otherwise."""
    rng = np.random.default_rng(4)
    A = rng.normal(size=(300, 4))
    M = rng.normal(size=(4, 4)) + 2 * np.eye(4)
    B = A @ M + 3.0
    cca = CCAAligner(n_components=4, reg=0).fit([A, B])
    assert_allclose(cca.canonical_correlations_, 1.0, atol=1e-10)
    assert_allclose(cca.translate(A, 0, 1), B, atol=1e-8)
    assert_allclose(cca.translate(B, 1, 0), A, atol=1e-8)

    views = _latent_views(5, widths=(6, 5))
    cca = CCAAligner(n_components=2, reg=1e-2).fit(views)
    Z = cca._transform_views(views)[1]
    centred = views[1] - views[1].mean(axis=0)
    expected = np.linalg.lstsq(Z, centred, rcond=None)[0]
    assert_allclose(cca._back_projection(1), expected, atol=1e-10)
    assert_allclose(
        cca.inverse_transform_view(Z, 1), Z @ expected + views[1].mean(axis=0)
    )


def test_errors_name_the_bound_and_the_parameter():
    """Check data-dependent errors for n_components and rank-deficient views."""
    A, B = _latent_views(6, n=50, widths=(5, 3))
    with pytest.raises(ValueError, match=r"n_components=4 .* narrowest view.* = 3"):
        CCAAligner(n_components=4).fit([A, B])
    with pytest.raises(ValueError, match=r"n_components=3 .* n_samples - 1 = 2"):
        CCAAligner(n_components=3).fit([A[:3], B[:3]])
    duplicated = np.hstack([A[:, :4], A[:, :1]])
    with pytest.raises(ValueError, match=r"'view0' is rank-deficient.*Set reg > 0"):
        CCAAligner(n_components=2, reg=0).fit([duplicated, B])
    with pytest.raises(ValueError, match=r"'view1' is constant"):
        CCAAligner(n_components=2).fit([A, np.ones_like(B)])
    with pytest.raises(ValueError, match="reg"):
        CCAAligner(reg=-1.0).fit([A, B])
    # A regularised rank-deficient view gives finite output.
    cca = CCAAligner(n_components=3, reg=1e-3).fit([duplicated, B])
    assert np.all(np.isfinite(cca.transform([duplicated, B])))
    assert np.all(np.isfinite(cca.translate(duplicated, 0, 1)))


def test_float32_is_preserved():
    """Check float32 in, float32 out, close to the float64 result."""
    views = _latent_views(7, widths=(5, 4))
    views32 = [v.astype(np.float32) for v in views]
    cca64 = CCAAligner(n_components=3).fit(views)
    cca32 = CCAAligner(n_components=3).fit(views32)
    for out in (
        cca32.transform(views32),
        cca32.transform_view(views32[0], 0),
        cca32.translate(views32[0], 0, 1),
        cca32.inverse_transform_view(cca32.transform_view(views32[1], 1), 1),
    ):
        assert out.dtype == np.float32
    assert cca32.weights_[0].dtype == np.float64
    assert_allclose(
        cca32.canonical_correlations_, cca64.canonical_correlations_, atol=1e-5
    )
    assert_allclose(cca32.transform(views32), cca64.transform(views), atol=1e-3)


@pytest.mark.parametrize("n_chunks", [2, 7])
@pytest.mark.parametrize("widths", [(5, 4), (4, 3, 5)])
def test_partial_fit_equals_fit(n_chunks, widths):
    """Check that partial_fit over chunks equals fit on the stacked rows."""
    X = np.hstack(_latent_views(8, widths=widths))
    views = len(widths)
    full = CCAAligner(n_components=3, views=views).fit(X)
    streamed = CCAAligner(n_components=3, views=views)
    for chunk in np.array_split(X, n_chunks):
        streamed.partial_fit(chunk)
    assert_allclose(
        streamed.canonical_correlations_, full.canonical_correlations_, atol=1e-10
    )
    for ours, ref in zip(streamed.weights_, full.weights_, strict=True):
        assert_allclose(ours, ref, atol=1e-9)
    assert_allclose(streamed.transform(X), full.transform(X), atol=1e-9)


def test_views_by_name_and_feature_names():
    """Check named views, combine modes and output feature names."""
    X = np.hstack(_latent_views(9, widths=(4, 3, 5)))
    views = {"a": slice(0, 4), "b": slice(4, 7), "c": slice(7, 12)}
    cca = CCAAligner(n_components=2, views=views).fit(X)
    names = cca.get_feature_names_out()
    assert list(names[:2]) == ["a__ccaaligner0", "a__ccaaligner1"]
    assert cca.set_params(combine="mean").transform(X).shape == (400, 2)
    assert cca.set_params(combine="similarity").transform(X).shape == (400, 3)
    assert cca.translate(X[:, 7:], "c", "a").shape == (400, 4)


def test_score_is_high_for_shared_signal():
    """Check that score (cross-view retrieval) sees a strong shared signal."""
    train = _latent_views(10, n=600, widths=(8, 6), n_latent=6, noise=0.05)
    # Near-noiseless views: little regularisation is right here.
    cca = CCAAligner(n_components=6, reg=1e-3).fit(train)
    assert cca.score(train) > 0.9
    noise = [np.random.default_rng(11).normal(size=v.shape) for v in train]
    assert CCAAligner(n_components=6, reg=1e-3).fit(noise).score(noise) < 0.1


def test_pipeline_grid_search_on_fortunes():
    """Check GridSearchCV over n_components, reg and combine before a classifier."""
    data = load_fortunes()
    rows = np.random.default_rng(0).permutation(len(data.target))[:900]
    X = np.hstack([data.views["minilm"][rows], data.views["wordllama256"][rows]])
    y = data.target[rows]
    views = {"minilm": slice(0, 384), "wordllama256": slice(384, 640)}
    pipe = make_pipeline(CCAAligner(views=views), LogisticRegression(max_iter=200))
    grid = {
        "ccaaligner__n_components": [4, 16],
        "ccaaligner__reg": [1e-2, 0.3],
        "ccaaligner__combine": ["concat", "mean"],
    }
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    assert search.best_estimator_[0].transform(X[:5]).dtype == np.float32
    assert search.best_score_ > 3 / 38


def test_default_keeps_every_component_the_data_allow():
    """Check n_components=None: the narrowest width, or n_samples - 1 if smaller."""
    rng = np.random.default_rng(11)
    A, B = rng.normal(size=(300, 6)), rng.normal(size=(300, 5))
    assert CCAAligner().fit([A, B]).n_components_ == 5
    assert CCAAligner().fit([A[:4], B[:4]]).n_components_ == 3
    three = CCAAligner().fit([A, B, rng.normal(size=(300, 7))])
    assert three.transform([A, B, rng.normal(size=(300, 7))]).shape == (300, 15)
    # partial_fit keeps the bound up to date as rows arrive.
    streamed = CCAAligner().partial_fit([A[:3], B[:3]])
    assert streamed.n_components_ == 2
    assert streamed.partial_fit([A[3:], B[3:]]).n_components_ == 5


def test_a_ridge_that_overflows_names_reg():
    """Check reg times a huge variance is refused as too large, not too small."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(40, 5))
    B = A[:, :3] @ rng.normal(size=(3, 4)) + 0.2 * rng.normal(size=(40, 4))
    CCAAligner(reg=1e10).fit([A, B])
    with pytest.raises(ValueError, match=r"reg=10000000000.0 times .* lower reg"):
        CCAAligner(reg=1e10).fit([A * 1e150, B * 1e150])


def test_exactly_collinear_columns_are_refused_at_reg_0():
    """Check reg=0 refuses a copied column for every draw (rounding aside)."""
    rng = np.random.default_rng(17)
    for _ in range(100):
        X = rng.normal(size=(30, 5))
        X[:, -1] = X[:, 0]
        with pytest.raises(ValueError, match="rank-deficient"):
            CCAAligner(n_components=2, reg=0).fit([rng.normal(size=(30, 3)), X])


def test_a_first_chunk_too_small_on_its_own_says_so():
    """Check partial_fit's first chunk below the minimum: nothing is kept, so a
    stream of such chunks never starts; the error says to make it larger."""
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(40, 30)), rng.normal(size=(40, 30))
    aligner = CCAAligner(20)
    with pytest.raises(
        ValueError, match=r"n_samples - 1 = 9.*make the first chunk larger"
    ):
        aligner.partial_fit([A[:10], B[:10]])
    assert not hasattr(aligner, "means_")
    # A larger first chunk starts the stream, and later chunks may be small.
    aligner.partial_fit([A[:30], B[:30]]).partial_fit([A[30:], B[30:]])
    with pytest.raises(ValueError, match="n_samples") as caught:
        CCAAligner(20).fit([A[:10], B[:10]])
    assert "partial_fit" not in str(caught.value)
