"""Tests for the search engine: kneighbors, CSLS penalties, retrieval."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import ortho_group
from sklearn import config_context
from sklearn.utils._param_validation import InvalidParameterError

from skembed import csls_penalties, kneighbors
from skembed._neighbors import alignment_score
from skembed._stats import search_chunk_rows
from skembed.metrics import retrieval_accuracy

_values = st.floats(
    -10, 10, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64
)


def _matrices(n, d):
    return arrays(np.float64, (n, d), elements=_values)


def _orthogonal(d, seed):
    return ortho_group.rvs(d, random_state=seed) if d > 1 else np.ones((1, 1))


def _dense_cosine(Q, T):
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    Tn = T / np.linalg.norm(T, axis=1, keepdims=True)
    return Qn.astype(np.float64) @ Tn.T.astype(np.float64)


def _dense_csls(Q, T, csls_k):
    S = _dense_cosine(Q, T)
    r_T = np.sort(S, axis=1)[:, -csls_k:].mean(axis=1)
    r_Q = np.sort(S, axis=0)[-csls_k:, :].mean(axis=0)
    return 2 * S - r_T[:, None] - r_Q[None, :]


def _dense_retrieval(M, k):
    order = np.argsort(-M, axis=1, kind="stable")[:, :k]
    return np.mean([i in order[i] for i in range(M.shape[0])])


@pytest.mark.parametrize("method", ["nn", "csls"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_retrieval_accuracy_matches_dense(method, k, dtype):
    """Check blockwise nn/CSLS retrieval against dense score matrices."""
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(80, 6))
    T = Q + rng.normal(size=Q.shape)
    M = _dense_cosine(Q, T) if method == "nn" else _dense_csls(Q, T, 4)
    expected = _dense_retrieval(M, k)
    for chunk_size in (None, 1, 7, 1000):
        got = retrieval_accuracy(
            Q.astype(dtype),
            T.astype(dtype),
            k=k,
            method=method,
            csls_k=4,
            chunk_size=chunk_size,
        )
        assert got == pytest.approx(expected)


@pytest.mark.parametrize("method", ["nn", "csls"])
def test_kneighbors_matches_dense_on_unpaired_pools(method):
    """Check indices and scores of the engine for n_Q != n_T against dense CSLS."""
    rng = np.random.default_rng(1)
    Q = rng.normal(size=(37, 5))
    T = rng.normal(size=(53, 5))
    M = _dense_cosine(Q, T) if method == "nn" else _dense_csls(Q, T, 3)
    scores, indices = kneighbors(Q, T, 4, method=method, csls_k=3, chunk_size=6)
    assert indices.dtype == np.int64 and indices.shape == (37, 4)
    assert scores.dtype == np.float64
    assert_array_equal(indices, np.argsort(-M, axis=1, kind="stable")[:, :4])
    assert_allclose(scores, np.take_along_axis(M, indices, axis=1), atol=1e-12)


def test_kneighbors_float32_close_to_float64():
    """Check that float32 input gives the float64 neighbours and close scores."""
    rng = np.random.default_rng(2)
    Q, T = rng.normal(size=(40, 8)), rng.normal(size=(60, 8))
    s64, idx64 = kneighbors(Q, T, 3, method="csls", csls_k=5)
    s32, idx32 = kneighbors(
        Q.astype(np.float32), T.astype(np.float32), 3, method="csls", csls_k=5
    )
    assert_array_equal(idx32, idx64)
    assert_allclose(s32, s64, atol=1e-5)


def test_csls_penalties_match_dense():
    """Check r_Q(t), the mean cosine of each T row to its nearest Q rows."""
    rng = np.random.default_rng(3)
    Q, T = rng.normal(size=(30, 4)), rng.normal(size=(45, 4))
    S = _dense_cosine(Q, T)
    expected = np.sort(S, axis=0)[-5:, :].mean(axis=0)
    assert_allclose(csls_penalties(Q, T, csls_k=5, chunk_size=4), expected, atol=1e-12)


def test_ties_are_broken_by_lower_index():
    """Check that equal scores rank by target index, in the engine and in accuracy."""
    Q = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    T = np.array([[1.0, 0.0], [2.0, 0.0], [1.0, 1.0]])  # T[0], T[1] tie for Q[0:2]
    _, indices = kneighbors(Q, T, 2)
    assert_array_equal(indices[:2], [[0, 1], [0, 1]])
    # Q[0] wins its tie (partner has the lower index), Q[1] loses it.
    assert retrieval_accuracy(Q, T, k=1) == pytest.approx(2 / 3)
    assert retrieval_accuracy(Q, T, k=2) == pytest.approx(1.0)
    assert retrieval_accuracy(Q, T, k=1, method="csls", csls_k=1) == pytest.approx(
        2 / 3
    )


def test_block_size_follows_memory_budget():
    """Check that a 100k x 100k float32 search uses blocks of a few hundred MB."""
    n = 100_000
    per_row = n * (2 * 4 + 2)  # a block, a partition copy and two masks
    rows = search_chunk_rows(n, np.float32)
    assert 1 <= rows < n
    assert rows * per_row <= 256 * 2**20
    with config_context(working_memory=16):
        assert search_chunk_rows(n, np.float32) * per_row <= 16 * 2**20


def test_retrieval_accuracy_with_small_working_memory():
    """Check that a tiny working_memory still gives the same accuracy."""
    rng = np.random.default_rng(4)
    Q = rng.normal(size=(300, 5))
    T = Q + rng.normal(size=Q.shape)
    expected = retrieval_accuracy(Q, T, method="csls")
    with config_context(working_memory=0.001):
        assert retrieval_accuracy(Q, T, method="csls") == expected


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


@settings(
    deadline=None, max_examples=50, suppress_health_check=[HealthCheck.filter_too_much]
)
@given(
    st.integers(3, 10).flatmap(
        lambda n: st.tuples(_matrices(n, 3), _matrices(n, 3), st.integers(0, 999))
    ),
    st.sampled_from(["nn", "csls"]),
)
def test_retrieval_unchanged_when_both_sides_rotated(data, method):
    """Check that one rotation of both Q and T keeps the retrieval accuracy."""
    Q, T, seed = data
    csls_k = min(2, Q.shape[0])
    with np.errstate(all="ignore"):  # zero rows give NaN here and are skipped
        M = _dense_cosine(Q, T) if method == "nn" else _dense_csls(Q, T, csls_k)
    # Rounding can only flip a ranking between near-equal scores: skip those.
    assume(np.all(np.isfinite(M)))
    gaps = np.abs(M - np.diag(M)[:, None])
    np.fill_diagonal(gaps, np.inf)
    assume(gaps.min() > 1e-6)
    R = _orthogonal(3, seed)
    for k in (1, 2):
        expected = retrieval_accuracy(Q, T, k=k, method=method, csls_k=csls_k)
        rotated = retrieval_accuracy(Q @ R, T @ R, k=k, method=method, csls_k=csls_k)
        assert rotated == expected


# --------------------------------------------------------------------------
# Same space or not
# --------------------------------------------------------------------------


def test_index_penalties_from_a_larger_pool():
    """Check MUSE's protocol: penalties over a pool, searched by any batch."""
    rng = np.random.default_rng(5)
    pool = rng.normal(size=(90, 6))
    index = rng.normal(size=(70, 6))
    penalties = csls_penalties(pool, index, csls_k=4)
    S = _dense_cosine(pool, index)
    assert_allclose(penalties, np.sort(S, axis=0)[-4:, :].mean(axis=0), atol=1e-12)
    # One query at a time, with the pool's penalties, ranks as the whole pool.
    full_scores, full_indices = kneighbors(
        pool, index, 3, method="csls", csls_k=4, index_penalties=penalties
    )
    expected = _dense_csls(pool, index, 4)
    assert_array_equal(
        full_indices, np.argsort(-expected, axis=1, kind="stable")[:, :3]
    )
    for i in (0, 17, 89):
        scores, indices = kneighbors(
            pool[i : i + 1],
            index,
            3,
            method="csls",
            csls_k=4,
            index_penalties=penalties,
        )
        assert_array_equal(indices[0], full_indices[i])
        assert_allclose(scores[0], full_scores[i], atol=1e-12)


def test_kneighbors_validates_its_inputs():
    """Check errors naming the parameter for bad k, penalties, widths and methods."""
    rng = np.random.default_rng(6)
    Q, T = rng.normal(size=(5, 3)), rng.normal(size=(8, 3))
    with pytest.raises(ValueError, match="k=9 must be at most the number of index"):
        kneighbors(Q, T, 9)
    with pytest.raises(ValueError, match="queries has 3 columns and index has 2"):
        kneighbors(Q, T[:, :2])
    with pytest.raises(ValueError, match="index_penalties has shape"):
        kneighbors(Q, T, method="csls", csls_k=2, index_penalties=np.zeros(7))
    with pytest.raises(ValueError, match="csls_k=6 must be between 1 and the number"):
        kneighbors(Q, T, method="csls", csls_k=6)
    with pytest.raises(InvalidParameterError, match="'method' parameter"):
        kneighbors(Q, T, method="cosine")
    Q[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input queries contains NaN"):
        kneighbors(Q, T)


def test_alignment_score_is_the_mean_over_ordered_pairs():
    """Check alignment_score against retrieval_accuracy for three views."""
    rng = np.random.default_rng(7)
    base = rng.normal(size=(60, 4))
    views = [base + 0.8 * rng.normal(size=base.shape) for _ in range(3)]
    expected = np.mean(
        [
            retrieval_accuracy(views[a], views[b])
            for a in range(3)
            for b in range(3)
            if a != b
        ]
    )
    assert alignment_score(views) == pytest.approx(expected)
    # k and csls_k are capped at the number of rows.
    assert (
        alignment_score([v[:4] for v in views], k=10, method="csls", csls_k=50) == 1.0
    )
