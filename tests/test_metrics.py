"""Tests for skembed.metrics."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import json
import math
import pickle
import warnings

import numpy as np
import pytest
from _corpora import corpus_dir, missing
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import orthogonal_procrustes
from scipy.stats import ortho_group
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from skembed import CCAAligner, ProcrustesAligner, kneighbors
from skembed._neighbors import alignment_score
from skembed.metrics import (
    OutOfSpaceWarning,
    SpaceComparison,
    cca_similarity,
    check_same_space,
    compare_spaces,
    linear_cka,
    make_alignment_scorer,
    paired_cosine,
    procrustes_distance,
    retrieval_accuracy,
)
from skembed.metrics._verdict import ConstantInputError, _decide, needed_retrieval

# --------------------------------------------------------------------------
# Dense reference formulas (n x n where convenient; small data only)
# --------------------------------------------------------------------------


def _dense_cka(A, B, debiased=False):
    """CKA from n x n Gram matrices (Kornblith et al. 2019, reference code)."""

    def center(G):
        G = G.copy()
        n = G.shape[0]
        if debiased:
            np.fill_diagonal(G, 0)
            means = G.sum(axis=0) / (n - 2)
            means -= means.sum() / (2 * (n - 1))
            G -= means[:, None]
            G -= means[None, :]
            np.fill_diagonal(G, 0)
        else:
            H = np.eye(n) - 1.0 / n
            G = H @ G @ H
        return G

    K = center(A @ A.T)
    L = center(B @ B.T)
    return (K * L).sum() / (np.linalg.norm(K) * np.linalg.norm(L))


def _dense_procrustes(A, B):
    """Angle after the best orthogonal map, with the narrower side zero-padded."""
    A = A - A.mean(axis=0)
    B = B - B.mean(axis=0)
    A /= np.linalg.norm(A)
    B /= np.linalg.norm(B)
    width = max(A.shape[1], B.shape[1])
    A = np.pad(A, ((0, 0), (0, width - A.shape[1])))
    B = np.pad(B, ((0, 0), (0, width - B.shape[1])))
    R, _ = orthogonal_procrustes(A, B)
    return np.arccos(np.clip(np.sum((A @ R) * B), -1, 1))


def _dense_canonical_correlations(A, B):
    QA, _ = np.linalg.qr(A - A.mean(axis=0))
    QB, _ = np.linalg.qr(B - B.mean(axis=0))
    return np.linalg.svd(QA.T @ QB, compute_uv=False)


def _dense_pca(A, variance):
    A = A - A.mean(axis=0)
    _, S, Vt = np.linalg.svd(A, full_matrices=False)
    explained = np.cumsum(S**2) / np.sum(S**2)
    keep = int(np.searchsorted(explained, variance)) + 1
    return A @ Vt[:keep].T


def _paired_data(n=120, widths=(7, 5), noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, widths[0])) + 3.0
    B = A[:, : widths[1]] @ rng.normal(size=(widths[1], widths[1]))
    B += noise * rng.normal(size=B.shape)
    return A, B


# --------------------------------------------------------------------------
# Agreement with the dense formulas
# --------------------------------------------------------------------------


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_cka_matches_gram_formula(debiased, dtype):
    """Check the feature-space CKA against the n x n Gram-matrix formula."""
    A, B = _paired_data()
    expected = _dense_cka(A, B, debiased=debiased)
    got = linear_cka(A.astype(dtype), B.astype(dtype), debiased=debiased)
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    assert_allclose(got, expected, rtol=rtol)


def test_linear_cka_debiased_removes_bias_on_independent_data():
    """Check that debiased CKA of independent wide data is near 0, biased is not."""
    rng = np.random.default_rng(1)
    A = rng.normal(size=(50, 200))
    B = rng.normal(size=(50, 200))
    assert linear_cka(A, B) > 0.5
    assert abs(linear_cka(A, B, debiased=True)) < 0.05


def test_linear_cka_chunking_is_exact(monkeypatch):
    """Check that tiny row chunks give the same CKA as one chunk."""
    import skembed.metrics._similarity as metrics

    A, B = _paired_data(n=300)
    expected = linear_cka(A, B, debiased=True)
    monkeypatch.setattr(metrics, "_moment_rows", lambda n_features: 7)
    assert_allclose(linear_cka(A, B, debiased=True), expected, rtol=1e-12)


@pytest.mark.parametrize("widths", [(6, 6), (7, 4), (3, 8)])
def test_procrustes_distance_matches_dense_formula(widths):
    """Check the nuclear-norm form against an explicit zero-padded Procrustes fit."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(100, widths[0])) + 2.0
    B = A @ rng.normal(size=widths) + rng.normal(size=(100, widths[1]))
    assert_allclose(procrustes_distance(A, B), _dense_procrustes(A, B), atol=1e-10)


def test_cca_similarity_matches_qr_formula():
    """Check the mean canonical correlation against the QR-based formula."""
    A, B = _paired_data(n=200)
    rho = _dense_canonical_correlations(A, B)
    assert_allclose(cca_similarity(A, B), rho.mean(), rtol=1e-6)
    assert_allclose(cca_similarity(A, B, n_components=2), rho[:2].mean(), rtol=1e-6)


def test_cca_similarity_svcca_matches_pca_then_cca():
    """Check SVCCA against PCA of each side followed by plain CCA."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(400, 3)) * [5.0, 3.0, 2.0]
    A = latent @ rng.normal(size=(3, 10)) + 0.05 * rng.normal(size=(400, 10))
    B = latent @ rng.normal(size=(3, 8)) + 0.05 * rng.normal(size=(400, 8))
    A_red, B_red = _dense_pca(A, 0.99), _dense_pca(B, 0.99)
    assert A_red.shape[1] < A.shape[1] and B_red.shape[1] < B.shape[1]
    rho = _dense_canonical_correlations(A_red, B_red)
    assert_allclose(cca_similarity(A, B, svcca_variance=0.99), rho.mean(), rtol=1e-6)


def test_cca_similarity_invariant_to_invertible_maps():
    """Check that CCA similarity, unlike CKA, ignores invertible linear maps."""
    A, B = _paired_data(n=300)
    M = np.random.default_rng(3).normal(size=(A.shape[1], A.shape[1]))
    # Only the tiny stabilising ridge (1e-8 of the mean variance) differs.
    assert_allclose(cca_similarity(A @ M, B), cca_similarity(A, B), rtol=1e-4)


def test_cca_similarity_rejects_too_many_components():
    """Check that n_components above the available pairs is a clear error."""
    A, B = _paired_data()
    with pytest.raises(ValueError, match="n_components=6 exceeds the 5"):
        cca_similarity(A, B, n_components=6)


def test_paired_cosine_matches_dense_and_handles_zero_rows():
    """Check per-row cosines against numpy, with 0 for zero rows."""
    A, B = _paired_data(widths=(5, 5))
    A[3] = 0.0
    expected = np.einsum("ij,ij->i", A, B) / (
        np.linalg.norm(A, axis=1) * np.linalg.norm(B, axis=1) + (A == 0).all(1)
    )
    got = paired_cosine(A, B)
    assert got.shape == (A.shape[0],) and got.dtype == np.float64
    assert_allclose(got, expected, rtol=1e-12)
    assert got[3] == 0.0


def test_row_mismatch_is_an_error():
    """Check that unpaired inputs are rejected with the parameter names."""
    A, B = _paired_data()
    with pytest.raises(ValueError, match="A and B must be row-paired"):
        linear_cka(A, B[:-1])
    with pytest.raises(ValueError, match="Q and T must be row-paired"):
        retrieval_accuracy(A, A[:-1])


def test_width_mismatch_is_an_error_where_vectors_are_compared():
    """Check that cosines and retrieval refuse vectors of different widths."""
    A, B = _paired_data(widths=(7, 5))
    with pytest.raises(ValueError, match="A has 7 columns and B has 5"):
        paired_cosine(A, B)
    with pytest.raises(ValueError, match="Q has 7 columns and T has 5"):
        retrieval_accuracy(A, B)
    with pytest.raises(ValueError, match="queries has 7 columns and index has 5"):
        kneighbors(A, B, 1)


def test_invalid_parameters_are_named():
    """Check that bad k, csls_k, method and inputs give errors naming them."""
    A, _ = _paired_data(widths=(5, 5), n=20)
    with pytest.raises(ValueError, match="k=21 must be at most"):
        retrieval_accuracy(A, A, k=21)
    with pytest.raises(ValueError, match="csls_k=30"):
        retrieval_accuracy(A, A, method="csls", csls_k=30)
    with pytest.raises(InvalidParameterError, match="'method' parameter"):
        retrieval_accuracy(A, A, method="cosine")
    with pytest.raises(ValueError, match="k=30 must be at most the number"):
        kneighbors(A, A, 30)
    B = A.copy()
    B[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input B contains NaN"):
        linear_cka(A, B)
    with pytest.raises(ValueError, match="Expected 2D array"):
        procrustes_distance(A[:, 0], A[:, 1])


def test_constant_input_is_an_error():
    """Check that a representation without variance gives a clear error."""
    A, _ = _paired_data()
    with pytest.raises(ValueError, match="B has zero variance"):
        linear_cka(A, np.ones_like(A))
    with pytest.raises(ValueError, match="A has zero variance"):
        procrustes_distance(np.zeros_like(A), A)


def test_debiased_cka_needs_four_rows():
    """Check the minimum sample size of the debiased estimator."""
    A, B = _paired_data(n=3)
    with pytest.raises(ValueError, match="at least 4 rows"):
        linear_cka(A, B, debiased=True)


def test_inputs_are_not_modified():
    """Check that no metric writes into its inputs."""
    A, B = _paired_data(widths=(5, 5))
    A32, B32 = A.astype(np.float32), B.astype(np.float32)
    copies = [x.copy() for x in (A, B, A32, B32)]
    linear_cka(A, B, debiased=True)
    procrustes_distance(A, B)
    cca_similarity(A, B, svcca_variance=0.9)
    paired_cosine(A32, B32)
    retrieval_accuracy(A32, B32, method="csls", csls_k=3)
    kneighbors(A32, B32, 2, method="csls", csls_k=3)
    for x, c in zip((A, B, A32, B32), copies, strict=True):
        assert_array_equal(x, c)


# --------------------------------------------------------------------------
# Invariances and metric properties (hypothesis)
# --------------------------------------------------------------------------

_values = st.floats(
    -10, 10, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64
)


def _matrices(n, d):
    return arrays(np.float64, (n, d), elements=_values)


def _well_spread(X):
    centred = X - X.mean(axis=0)
    return np.linalg.norm(centred) > 1e-3 * (1.0 + np.abs(X).max())


@st.composite
def _pair_and_maps(draw):
    n = draw(st.integers(4, 12))
    p, q = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    A, B = draw(_matrices(n, p)), draw(_matrices(n, q))
    assume(_well_spread(A) and _well_spread(B))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.floats(0.1, 10))
    shift = draw(st.floats(-5, 5))
    return A, B, seed, scale, shift


def _orthogonal(d, seed):
    if d == 1:
        return np.array([[-1.0 if seed % 2 else 1.0]])
    return ortho_group.rvs(d, random_state=seed)


@settings(deadline=None, max_examples=60)
@given(_pair_and_maps())
def test_cka_and_procrustes_invariant_to_similarity_maps(data):
    """Check invariance to orthogonal maps, isotropic scaling and shifts, per side."""
    A, B, seed, scale, shift = data
    A_map = scale * A @ _orthogonal(A.shape[1], seed) + shift
    B_map = scale * B @ _orthogonal(B.shape[1], seed + 1) - shift
    cka = linear_cka(A, B)
    distance = procrustes_distance(A, B)
    for left, right in ((A_map, B), (A, B_map), (A_map, B_map)):
        assert_allclose(linear_cka(left, right), cka, rtol=1e-7, atol=1e-9)
        assert_allclose(procrustes_distance(left, right), distance, atol=1e-6)


def test_procrustes_distance_of_rank_one_copies_is_near_zero_both_ways():
    """Check the case where the arccos amplification showed: within 1e-7."""
    A, B = np.zeros((5, 3)), np.zeros((5, 3))
    A[0, 0], B[0, 1] = 9.0, 1.75
    for left, right in ((A, B), (B, A)):
        assert procrustes_distance(left, right) < 1e-7


def test_cka_not_invariant_to_general_invertible_maps():
    """Check a counter-example: an anisotropic scaling changes CKA, not CCA."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(500, 2))
    M = np.diag([1.0, 100.0])  # invertible, not a similarity
    assert linear_cka(A, A) == pytest.approx(1.0)
    assert linear_cka(A, A @ M) < 0.75
    assert cca_similarity(A, A @ M) == pytest.approx(1.0)


@settings(deadline=None, max_examples=60)
@given(_pair_and_maps())
def test_procrustes_distance_symmetric_and_zero_on_rotated_copies(data):
    """Check d(A, B) = d(B, A) and d(A, s A Q + c) = 0."""
    A, B, seed, scale, shift = data
    # Near 0 the arccos turns a rounding of the cosine into about 1e-8 (the
    # function's Notes): rank-one copies (one non-zero entry each) came out
    # 1.5e-8 one way round and 0 the other. The bound is that precision.
    assert_allclose(procrustes_distance(A, B), procrustes_distance(B, A), atol=1e-7)
    copy = scale * A @ _orthogonal(A.shape[1], seed) + shift
    assert procrustes_distance(A, copy) < 1e-6
    assert 0.0 <= procrustes_distance(A, B) <= math.pi / 2 + 1e-12


@settings(deadline=None, max_examples=60)
@given(
    st.integers(4, 10).flatmap(
        lambda n: st.tuples(
            *[_matrices(n, d) for d in (2, 3, 4)],
        )
    )
)
def test_procrustes_distance_triangle_inequality(triple):
    """Check d(A, C) <= d(A, B) + d(B, C) on random triples of any widths."""
    assume(all(_well_spread(X) for X in triple))
    for A, B, C in (triple, triple[::-1], (triple[1], triple[0], triple[2])):
        d_ab, d_bc = procrustes_distance(A, B), procrustes_distance(B, C)
        assert procrustes_distance(A, C) <= d_ab + d_bc + 1e-6


def test_check_same_space_accepts_noisy_copy():
    """Check that a noisy copy of the same space passes silently."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(600, 16)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_same_space(A, A + 0.3 * rng.normal(size=A.shape)) is True


def test_check_same_space_warns_on_rotated_space():
    """Check the warning on a rotated copy points at the caller and says what to do."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(600, 16))
    B = A @ ortho_group.rvs(16, random_state=0)
    with pytest.warns(OutOfSpaceWarning, match="fit an aligner") as record:
        assert check_same_space(A, B) is False
    assert record[0].filename == __file__
    with pytest.raises(ValueError, match="do not look like embeddings of one space"):
        check_same_space(A, B, action="raise")


def test_check_same_space_different_widths():
    """Check that different widths can never be one space."""
    A, B = _paired_data(widths=(7, 5))
    with pytest.raises(ValueError, match="A has 7 columns and B has 5"):
        check_same_space(A, B, action="raise")


def test_check_same_space_refuses_too_few_rows_to_tell():
    """Check that among 2-4 rows, where even perfect retrieval is not
    significant, identical inputs are not called out of space: an error
    naming the number of rows, or n_samples."""
    A = np.random.default_rng(0).normal(size=(40, 16))
    for n in (2, 3, 4):
        with pytest.raises(ValueError, match=f"at least 5 paired rows.*got {n}"):
            check_same_space(A[:n], A[:n])
    with pytest.raises(ValueError, match="n_samples=4 is too few.*n_samples >= 5"):
        check_same_space(A, A, n_samples=4)
    assert check_same_space(A[:5], A[:5]) is True
    assert check_same_space(A, A, n_samples=5) is True


def test_decide_thresholds():
    """Check the verdict rules on hand-made accuracies with 1000 test rows."""
    n = 1000  # chance 0.001, pairing bar sqrt(0.001) = 0.0316
    assert _decide(0.99, 1.0, n) == "same space"
    assert _decide(0.95, 0.99, n) == "same space"  # 95.9% of the aligned skill
    assert _decide(0.80, 0.99, n) == "different spaces, alignable"
    assert _decide(0.001, 0.5, n) == "different spaces, alignable"
    assert _decide(None, 0.04, n) == "different spaces, alignable"
    assert _decide(None, 0.02, n) == "not linearly alignable"
    assert _decide(0.002, 0.003, n) == "not linearly alignable"
    # raw is good but the alignment overfits: the raw vectors already work.
    assert _decide(0.7, 0.2, n) == "same space"
    # Small test sets: the binomial significance binds (sqrt(1/10) = 0.32).
    assert _decide(None, 0.4, 10) == "not linearly alignable"
    assert _decide(None, 0.6, 10) == "different spaces, alignable"


def test_compare_spaces_synthetic_verdicts():
    """Check the three verdicts on synthetic data with known structure."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(800, 16))
    noise = 0.3 * rng.normal(size=A.shape)
    same = compare_spaces(A, A + noise, random_state=0)
    rotated = compare_spaces(A, A @ ortho_group.rvs(16, random_state=1) + noise)
    unrelated = compare_spaces(A, rng.normal(size=A.shape), random_state=0)
    assert same.verdict == "same space"
    assert rotated.verdict == "different spaces, alignable"
    assert unrelated.verdict == "not linearly alignable"
    assert same.n_test == 200 and same.chance == pytest.approx(1 / 200)
    # The explanation's bar is the table's (it gave sqrt(chance) alone).
    needed = needed_retrieval(200)
    assert needed > math.sqrt(1 / 200)
    assert f"needs >= {needed:.4f}: at least {math.sqrt(1 / 200):.4f}" in (
        unrelated.explanation
    )


def test_compare_spaces_different_widths():
    """Check that different widths omit raw numbers and rule out 'same space'."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(600, 12))
    B = A[:, :8] + 0.1 * rng.normal(size=(600, 8))
    result = compare_spaces(A, B, random_state=0)
    assert result.raw_retrieval is None and result.paired_cosine is None
    assert result.verdict == "different spaces, alignable"
    assert "widths differ" in str(result)


def test_space_comparison_output():
    """Check to_dict is JSON-serialisable and the table shows verdict and numbers."""
    A, B = _paired_data(n=400, widths=(6, 6), noise=0.1)
    result = compare_spaces(A, B, random_state=0)
    assert isinstance(result, SpaceComparison)
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["verdict"] == result.verdict
    assert payload["n_features"] == [6, 6]
    text = str(result)
    assert f"verdict: {result.verdict}" in text
    assert "top-1 retrieval, Procrustes" in text
    assert result.explanation.split()[0] in text


def test_compare_spaces_is_reproducible():
    """Check that a fixed random_state gives identical results."""
    A, B = _paired_data(n=300, widths=(6, 6))
    assert compare_spaces(A, B, random_state=3) == compare_spaces(A, B, random_state=3)


def test_compare_spaces_needs_held_out_rows():
    """Check the error when the test split is too small."""
    A, B = _paired_data(n=20, widths=(4, 4))
    with pytest.raises(ValueError, match="at least 10 held-out"):
        compare_spaces(A, B, test_size=0.25)


@pytest.mark.parametrize(
    ("n", "test_size", "sizes"),
    [(1, 0.25, "1 and 0"), (40, 0.999999, "40 and 0"), (40, 10**30, "40 and 0")],
)
def test_compare_spaces_split_errors_name_its_own_parameters(n, test_size, sizes):
    """Check splits that leave no training row: test_size named, no train_size.

    scikit-learn's message for them named train_size, a parameter
    compare_spaces does not have (and the command line has no such option).
    """
    A, B = _paired_data(n=40, widths=(4, 4))
    with pytest.raises(ValueError, match="at least 10 held-out") as caught:
        compare_spaces(A[:n], B[:n], test_size=test_size)
    assert f"gives {sizes}." in str(caught.value)
    assert "train_size" not in str(caught.value)


# --------------------------------------------------------------------------
# Scorers
# --------------------------------------------------------------------------


def _rotated_views(n=300, d=8, noise=0.2, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    B = A @ ortho_group.rvs(d, random_state=seed) + noise * rng.normal(size=A.shape)
    return A, B + 2.0


def test_alignment_score_is_the_aligner_score():
    """Check that the default score of an aligner is _alignment_score."""
    A, B = _rotated_views()
    aligner = ProcrustesAligner().fit([A, B])
    mapped = [aligner.transform_view(A, 0), aligner.transform_view(B, 1)]
    assert aligner.score([A, B]) == alignment_score(mapped)
    scorer = make_alignment_scorer(method="nn")
    assert scorer(aligner, [A, B]) == aligner.score([A, B])


def test_alignment_score_matches_retrieval_per_view_pair():
    """Check the mean over ordered view pairs of retrieval in the shared space."""
    A, B = _rotated_views(noise=1.0)
    aligner = ProcrustesAligner().fit([A, B])
    Z = aligner._transform_views([A, B])
    expected = 0.5 * (
        retrieval_accuracy(Z[0], Z[1], k=2, method="csls", csls_k=5)
        + retrieval_accuracy(Z[1], Z[0], k=2, method="csls", csls_k=5)
    )
    scorer = make_alignment_scorer(k=2, method="csls", csls_k=5)
    assert scorer(aligner, [A, B]) == pytest.approx(expected)
    assert "csls_k=5" in repr(scorer)


def test_alignment_scorer_in_grid_search():
    """Check model selection by held-out retrieval: centring wins on shifted data."""
    A, B = _rotated_views()
    search = GridSearchCV(
        ProcrustesAligner(),
        {"center": [False, True]},
        scoring=make_alignment_scorer(),
        cv=3,
    ).fit(np.hstack([A, B]))
    assert search.best_params_ == {"center": True}
    assert search.best_score_ > 0.9


def test_alignment_scorer_takes_a_pipeline_ending_in_an_aligner():
    """Check a Pipeline whose last step is an aligner (it raised an
    AttributeError, which GridSearchCV turned into NaN scores), and a
    TypeError naming the estimator for what is not an aligner."""
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from skembed import EmbeddingConcatenator

    A, B = _rotated_views()
    X = np.hstack([A, B])
    scorer = make_alignment_scorer()
    pipeline = make_pipeline(FunctionTransformer(np.negative), ProcrustesAligner())
    pipeline.fit(X)
    direct = scorer(pipeline[-1], pipeline[:-1].transform(X))
    assert scorer(pipeline, X) == direct
    assert scorer(make_pipeline(ProcrustesAligner()).fit(X), X) == direct
    scores = cross_val_score(pipeline, X, scoring=scorer, cv=3)
    assert np.all(scores > 0.9)
    with pytest.raises(TypeError, match="got EmbeddingConcatenator"):
        scorer(EmbeddingConcatenator(views=2).fit(X), X)
    ending = make_pipeline(EmbeddingConcatenator(views=2)).fit(X)
    with pytest.raises(TypeError, match="last step of the Pipeline, got Embedding"):
        scorer(ending, X)


def test_alignment_scorer_caps_k_on_small_folds():
    """Check that k and csls_k larger than a fold are capped, not errors."""
    A, B = _rotated_views(n=30)
    aligner = ProcrustesAligner().fit([A, B])
    scorer = make_alignment_scorer(k=50, csls_k=50)
    assert scorer(aligner, [A[:5], B[:5]]) == 1.0


# --------------------------------------------------------------------------
# Real paired embeddings
# --------------------------------------------------------------------------

_N_REAL = 4000


def _fortunes(name):
    path = corpus_dir("fortunes") / f"{name}.npy"
    if not path.exists():
        pytest.skip(missing("fortunes", probe=f"{name}.npy"))
    return np.load(path, mmap_mode="r")[:_N_REAL]


def test_real_e5_and_e5_enpt_are_the_same_space():
    """Check e5 against its vocabulary-pruned variant: the same space."""
    result = compare_spaces(_fortunes("e5"), _fortunes("e5_enpt"), random_state=0)
    assert result.verdict == "same space", str(result)
    assert result.raw_retrieval > 0.95


def test_real_minilm_and_e5_are_alignable():
    """Check two different models: raw retrieval at chance, aligned >= 0.95."""
    result = compare_spaces(_fortunes("minilm"), _fortunes("e5"), random_state=0)
    assert result.verdict == "different spaces, alignable", str(result)
    assert result.raw_retrieval < 5 * result.chance
    assert max(result.procrustes_retrieval, result.cca_retrieval or 0) >= 0.95


def test_real_minilm_and_its_rotation_are_alignable():
    """Check that a random rotation of one model is a different, alignable space."""
    minilm = np.asarray(_fortunes("minilm"))
    rotation = ortho_group.rvs(minilm.shape[1], random_state=0).astype(np.float32)
    result = compare_spaces(minilm, minilm @ rotation, random_state=0)
    assert result.verdict == "different spaces, alignable", str(result)
    assert result.procrustes_retrieval > 0.99


def test_real_shape_gaussian_noise_is_not_alignable():
    """Check independent Gaussian data of the real data's shape."""
    shape = _fortunes("minilm").shape
    rng = np.random.default_rng(0)
    A = rng.normal(size=shape).astype(np.float32)
    B = rng.normal(size=shape).astype(np.float32)
    result = compare_spaces(A, B, random_state=0)
    assert result.verdict == "not linearly alignable", str(result)


def test_compare_spaces_with_fewer_rows_than_features():
    """Check that compare_spaces caps CCA at n_train - 1 components on small data."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(100, 384))
    Q = np.linalg.qr(rng.normal(size=(384, 384)))[0]
    result = compare_spaces(A, A @ Q, random_state=0)
    assert result.verdict == "different spaces, alignable"
    assert 0 <= result.cca_retrieval <= 1
    # Unrelated rows: plain CKA is biased towards 1 here, and the explanation
    # gave it alone; the debiased value beside it is near 0.
    B = rng.normal(size=(100, 384))
    unrelated = compare_spaces(A, B, random_state=0)
    assert unrelated.verdict == "not linearly alignable"
    assert unrelated.linear_cka > 0.5
    debiased = linear_cka(A, B, debiased=True)
    assert abs(debiased) < 0.1
    assert f"linear CKA is {unrelated.linear_cka:.3f} (debiased {debiased:.3f})" in (
        unrelated.explanation
    )


def test_cca_similarity_is_the_aligner_cca():
    """Check that cca_similarity and CCAAligner share one CCA, at every reg."""
    A, B = _paired_data(n=200)
    for reg in (0.0, 1e-3, 0.1):
        aligner = CCAAligner(reg=reg).fit([A, B])
        assert cca_similarity(A, B, reg=reg) == pytest.approx(
            aligner.canonical_correlations_.mean(), rel=1e-12
        )
    with pytest.raises(ValueError, match=r"rank-deficient.*Set reg > 0"):
        cca_similarity(A[:4], B[:4])
    assert 0 <= cca_similarity(A[:4], B[:4], reg=0.1) <= 1


def test_real_cca_similarity_is_exact_on_near_identical_spaces():
    """Check exact CCA (to 1e-8) of e5 and its pruned twin, where a ridge biases."""
    A, B = _fortunes("e5")[:3000], _fortunes("e5_enpt")[:3000]
    A64, B64 = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    exact = _dense_canonical_correlations(A64, B64).mean()
    assert cca_similarity(A64, B64) == pytest.approx(exact, abs=1e-8)


def test_one_column_embeddings_are_refused_by_cosine_verdicts():
    """Check compare_spaces and check_same_space on 1 column: an error, not a verdict.

    Every cosine of one column is +1 or -1: A against itself got "not
    linearly alignable" and check_same_space(A, A) returned False.
    """
    A = np.random.default_rng(0).normal(size=(400, 1))
    for check in (compare_spaces, check_same_space):
        with pytest.raises(ValueError, match="needs at least 2 columns"):
            check(A, A)


@pytest.mark.parametrize("constant", ["A", "B"])
def test_compare_spaces_names_a_constant_input(constant):
    """Check that a constant input is named A or B, not an aligner's 'view1'."""
    rng = np.random.default_rng(0)
    inputs = {"A": rng.normal(size=(80, 8)), "B": rng.normal(size=(80, 8))}
    inputs[constant] = np.ones((80, 8))
    with pytest.raises(ValueError, match=f"^{constant} is constant over the 60") as e:
        compare_spaces(inputs["A"], inputs["B"], random_state=0)
    # Its class and fields name the input for a caller that words it its own
    # way (the command line names the file), also through pickling.
    for error in (e.value, pickle.loads(pickle.dumps(e.value))):
        assert isinstance(error, ConstantInputError)
        assert (error.name, error.n_rows) == (constant, 60)
        assert str(error) == str(e.value)


def test_the_printed_threshold_is_the_one_the_verdict_uses():
    """Check signal_threshold includes the significance rule of the verdict.

    On 10 held-out rows, 0.4 is above sqrt(0.1) = 0.316 yet not significant:
    the table printed 'pairing recovered if >= 0.3162' above the verdict
    'not linearly alignable'.
    """
    from skembed.metrics._verdict import retrieval_above_chance

    rng = np.random.default_rng(0)
    A = rng.normal(size=(60, 8))
    result = compare_spaces(A, A, test_size=10, random_state=0)
    assert result.signal_threshold == 0.6
    assert retrieval_above_chance(result.signal_threshold, 10)
    assert not retrieval_above_chance(result.signal_threshold - 0.1, 10)
    assert "pairing recovered if >= 0.6000" in str(result)


def test_cca_similarity_with_fewer_rows_than_columns_is_the_aligners():
    """Check reg > 0 on n <= d: the mean over the n - 1 correlations that exist.

    The default took min(d_a, d_b) correlations, the last d - n + 1 of them
    zeros of the data, so A against itself scored 0.49 instead of 0.999.
    """
    from skembed import CCAAligner

    rng = np.random.default_rng(0)
    A = rng.normal(size=(50, 100))
    B = A @ rng.normal(size=(100, 100))
    for reg in (1e-3, 0.1):
        expected = CCAAligner(reg=reg).fit([A, B]).canonical_correlations_.mean()
        assert cca_similarity(A, B, reg=reg) == pytest.approx(expected, rel=1e-9)
        assert cca_similarity(A, A, reg=reg) > 0.9
    with pytest.raises(ValueError, match="n_samples - 1 = 49"):
        cca_similarity(A, B, reg=0.1, n_components=50)


def test_float32_metrics_of_rotated_copies_are_exact_to_float64_precision():
    """Check the documented zero and one on float32 input.

    Float32 products rounded the cross block and the Gram blocks
    differently: a rotated copy was 1e-4 rad from its original, and CKA
    returned 1.00000006.
    """
    from scipy.stats import ortho_group

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(3000, 64)) + 3.0).astype(np.float32)
    Q = ortho_group.rvs(64, random_state=0)
    rotated = (X.astype(np.float64) @ Q).astype(np.float32)
    assert procrustes_distance(X, X) < 1e-6
    # The rotated copy differs by float32 rounding of its entries (1e-7
    # relative), which moves it by about that much, not 1e-4.
    assert procrustes_distance(X, rotated) < 1e-5
    for scale in (1.0, 1e-30, 1e30):
        value = linear_cka(X * np.float32(scale), rotated * np.float32(scale))
        assert 1.0 - 1e-6 < value <= 1.0


def test_a_hit_count_at_the_chance_threshold_passes_it():
    """Check the sqrt(chance) rule in exact arithmetic.

    With 2,500 held-out pairs the threshold is 0.02: 48 + 52 hits in the
    two directions average exactly 0.02, but the float mean came out one
    rounding step below it, and the command line judged the map at chance.
    """
    from skembed.metrics._verdict import retrieval_above_chance

    n = 2500
    assert (48 / n + 52 / n) / 2 < 0.02  # the float mean that was refused
    assert retrieval_above_chance((48 / n + 52 / n) / 2, n)
    assert not retrieval_above_chance((47 / n + 52 / n) / 2, n)
    assert retrieval_above_chance(50 / n, n)
    assert not retrieval_above_chance(49 / n, n)


def test_half_hits_are_judged_by_the_threshold_that_is_printed():
    """Check the mean of two directions (half hits) against needed_retrieval.

    5.5 hits of 10 rounded to even became 6 and passed the significance
    test: 0.55 was called alignable under 'pairing recovered if >= 0.6000'.
    """
    from skembed.metrics._verdict import retrieval_above_chance

    for n in range(4, 120):
        needed = needed_retrieval(n)
        for m in range(2 * n + 1):
            # The mean of two directions' accuracies, as it is computed.
            accuracy = 0.5 * ((m // 2) / n + (m - m // 2) / n)
            accepted = retrieval_above_chance(accuracy, n)
            assert accepted == (needed is not None and m / (2 * n) >= needed), (n, m)
    assert not retrieval_above_chance(0.55, 10)
    rng = np.random.default_rng(4)
    A = rng.normal(size=(60, 4))
    B = A @ ortho_group.rvs(4, random_state=4) + rng.uniform(0.5, 1.5) * rng.normal(
        size=A.shape
    )
    result = compare_spaces(A, B, test_size=10, random_state=0)
    aligned = max(result.procrustes_retrieval, result.cca_retrieval)
    assert aligned == 0.55
    assert result.verdict == "not linearly alignable"


def test_repeated_pairs_are_counted_once():
    """Check identical inputs whose items repeat: one space, not 'not alignable'.

    A repeated item tied with its own copy, and ties go to the lower row:
    A against itself, 200 items on 2,000 rows, retrieved 0.1 and was called
    not linearly alignable; check_same_space said 'not one space'.
    """
    rng = np.random.default_rng(0)
    A = rng.normal(size=(200, 16))[rng.integers(0, 200, size=2000)]
    distinct = len(np.unique(A, axis=0))
    result = compare_spaces(A, A.copy(), random_state=0)
    assert result.verdict == "same space"
    assert result.n_samples == distinct
    assert result.n_repeated == 2000 - distinct
    assert result.to_dict()["n_repeated"] == 2000 - distinct
    assert f"({2000 - distinct} repeats left out)" in str(result)
    assert "counted once" in result.explanation
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_same_space(A, A.copy())
    # Only the pair repeats count: equal rows of A with different partners
    # are kept.
    B = rng.normal(size=(2000, 16))
    assert compare_spaces(A, B, random_state=0).n_repeated == 0
    few = A[:40][np.arange(400) % 4]
    with pytest.raises(ValueError, match="396 rows repeating an earlier pair"):
        compare_spaces(few, few, random_state=0)
    with pytest.raises(ValueError, match="got 4 .396 rows repeating"):
        check_same_space(few, few)
    # Without repeats nothing changes, and the inputs are left alone.
    C = rng.normal(size=(300, 16))
    before = C.copy()
    assert compare_spaces(C, C + 0.01, random_state=0).n_repeated == 0
    assert_array_equal(C, before)


def test_paired_cosine_stays_within_one():
    """Check identical rows: their cosines were 1 + 2 ulp (arccos gave NaN)."""
    A = np.random.default_rng(0).normal(size=(1000, 384))
    cosines = paired_cosine(A, A)
    assert cosines.max() == 1.0
    assert not np.isnan(np.arccos(cosines)).any()
    assert paired_cosine(A, -A).min() == -1.0


def test_compare_spaces_refuses_rows_a_few_roundings_apart():
    """Check rows of one vector but for a few roundings: refused as constant.

    Only rows all equal were refused; these got a verdict on a map of
    rounding noise, after ProcrustesAligner's warning that the view is
    constant. A small spread that is data is kept.
    """
    rng = np.random.default_rng(0)
    A = rng.normal(size=(80, 8)).astype(np.float32)
    steps = rng.integers(-2, 3, size=A.shape) * np.finfo(np.float32).eps
    B = (A[0] * (1 + steps)).astype(np.float32)
    with pytest.raises(ValueError, match="^B is constant over the 60 training rows"):
        compare_spaces(A, B, random_state=0)
    tiny = A[:1].astype(np.float64) + 1e-9 * A
    assert compare_spaces(A, tiny, random_state=0).verdict != "not linearly alignable"


def test_compare_spaces_of_almost_constant_rows_reports_no_debiased_cka():
    """Check rows all equal but one: the debiased CKA's error named debiased=False.

    compare_spaces has no such parameter; the debiased value, reported and
    never used by the verdict, is left out instead.
    """
    A = np.random.default_rng(0).normal(size=(40, 5))
    A[:] = A[0]
    A[-1] += 1
    B = np.random.default_rng(1).normal(size=(40, 5))
    result = compare_spaces(A, B, random_state=0)
    assert "debiased" not in result.explanation
    with pytest.raises(ValueError, match="almost all rows equal"):
        linear_cka(A, B, debiased=True)


@pytest.mark.parametrize(
    "metric", [linear_cka, procrustes_distance, cca_similarity, paired_cosine]
)
def test_metrics_refuse_dates_and_read_mixed_dtypes_in_chunks(metric):
    """Check dates are refused, and a float32 side is not copied whole.

    Dates were cast to floats without a word. A float32 side next to a
    float64 one was cast whole to float64 before the chunked pass (200 MB
    for 100,000 x 256), though every chunk is read in float64 anyway.
    """
    import tracemalloc

    rng = np.random.default_rng(0)
    A = rng.normal(size=(100_000, 64)).astype(np.float32)
    B = rng.normal(size=(100_000, 64))
    dates = np.datetime64("2024-01-01") + (B[:50] * 1e6).astype("timedelta64[s]")
    with pytest.raises(ValueError, match="A holds non-numeric values"):
        metric(dates, B[:50])
    expected = metric(A.astype(np.float64), B)
    tracemalloc.start()
    try:
        got = metric(A, B)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    # A float64 copy of A alone is 51 MB; paired_cosine's output is 0.8 MB.
    assert peak < 20 * 2**20


def test_cca_similarity_is_invariant_to_linear_maps_only_without_reg():
    """Check the invariance the docstring claims, and where it ends.

    With reg=0 any invertible map of one side leaves the value; the ridge of
    reg > 0 is a multiple of the identity, which an anisotropic map changes.
    """
    rng = np.random.default_rng(0)
    A = rng.normal(size=(2000, 12))
    B = A[:, :8] @ rng.normal(size=(8, 10)) + rng.normal(size=(2000, 10))
    M = ortho_group.rvs(12, random_state=1) @ np.diag(np.logspace(-1, 1, 12))
    exact = cca_similarity(A, B)
    assert cca_similarity(A @ M, B) == pytest.approx(exact, rel=1e-9)
    rotated = A @ ortho_group.rvs(12, random_state=2) * 3.0 + 5.0
    assert cca_similarity(rotated, B, reg=0.1) == pytest.approx(
        cca_similarity(A, B, reg=0.1), rel=1e-9
    )
    assert abs(cca_similarity(A @ M, B, reg=0.1) - cca_similarity(A, B, reg=0.1)) > 0.01


def test_argument_slips_name_the_function():
    """Check a keyword typo or a missing argument names the function.

    scikit-learn's validation wrapper raised Python's TypeError without it.
    """
    from skembed.datasets import load_fortunes

    with pytest.raises(TypeError, match=r"load_fortunes\(\): .*'as_fram'"):
        load_fortunes(as_fram=True)
    with pytest.raises(TypeError, match=r"linear_cka\(\): missing .*'B'"):
        linear_cka(np.ones((5, 2)))


def test_a_score_over_no_more_rows_than_k_warns():
    """Check a retrieval score that cannot be below 1 says so.

    make_alignment_scorer(k=50) on a fold of 40 rows, or score on one row,
    returned 1.0 for any map without a word.
    """
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(120, 8)), rng.normal(size=(120, 6))
    aligner = ProcrustesAligner().fit([A, B])
    with pytest.warns(UserWarning, match="score is 1 whatever the map") as record:
        assert make_alignment_scorer(k=50)(aligner, [A[:40], B[:40]]) == 1.0
    assert record[0].filename == __file__
    with pytest.warns(UserWarning, match="k=1 is taken over 1 row"):
        aligner.score([A[:1], B[:1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_alignment_scorer(k=5)(aligner, [A[:40], B[:40]])
        aligner.score([A[:2], B[:2]])


@pytest.mark.parametrize("dtype_b", [np.float32, np.float64])
def test_compare_spaces_copies_the_rows_it_reads_one_part_at_a_time(dtype_b):
    """Check compare_spaces' memory, and that it answers as on one dtype.

    It held gathered copies of both views' training and held-out rows at
    once, a shuffled copy of B for the random pairs, and, for a float32 A
    beside a float64 B, a float64 copy of A: 20 MiB (float32) and 35 MiB
    (float64 B) here. Rows are now gathered for the step that reads them,
    in the common dtype, so the numbers are those of A cast to float64.
    """
    import dataclasses
    import tracemalloc

    from sklearn import config_context

    rng = np.random.default_rng(0)
    A = rng.normal(size=(8000, 128)).astype(np.float32)
    B = A @ ortho_group.rvs(128, random_state=0) + 0.5 * rng.normal(size=A.shape)
    B = B.astype(dtype_b)
    with config_context(working_memory=1):
        compare_spaces(A[:100], B[:100], random_state=0)  # imports and caches
        tracemalloc.start()
        try:
            result = compare_spaces(A, B, random_state=0)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        common = compare_spaces(A.astype(B.dtype), B, random_state=0)
    assert dataclasses.asdict(result) == dataclasses.asdict(common)
    assert result.verdict == "different spaces, alignable"
    # Two views are 7.8 MiB (float32) or 11.7 MiB (float64 B).
    assert peak < 2 * (A.nbytes + B.nbytes), peak / 2**20
