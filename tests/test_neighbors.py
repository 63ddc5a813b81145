"""Tests for the search engine: kneighbors, CSLS penalties, retrieval."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import ortho_group
from sklearn import config_context
from sklearn.utils._param_validation import InvalidParameterError

from skembed import _neighbors, csls_penalties, kneighbors
from skembed._neighbors import (
    _row_top_mean,
    _tile_uniforms,
    alignment_score,
    mutual_matches,
    neighbourhood_mean_operator,
)
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


def _assert_best_matches(found, M, atol):
    """Check that ``found[i]`` is a best column of row i of M, up to ``atol``.

    Where the best score leads the second by more than 2 * atol, the match
    must be the dense argmax itself; closer than that, any column within
    atol of the best is one: which of two such near-ties comes first is a
    matter of one machine's rounding (float32 rows whose two best CSLS
    scores differ by 1.5e-6 occur below).
    """
    rows = np.arange(M.shape[0])
    best = M.max(axis=1)
    assert np.all(M[rows, found] >= best - atol)
    second = (
        np.sort(M, axis=1)[:, -2] if M.shape[1] > 1 else np.full_like(best, -np.inf)
    )
    clear = best - second > 2 * atol
    assert clear.mean() > 0.9
    assert_array_equal(found[clear], M.argmax(axis=1)[clear])


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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
# (30, 700): rows wide enough for the chunk-maxima floor of _row_top_mean.
@pytest.mark.parametrize("shape", [(70, 50), (50, 70), (9, 120), (30, 700)])
def test_mutual_matches_equal_two_csls_searches(dtype, shape):
    """Check the fused kernel against kneighbors in both directions and dense CSLS."""
    rng = np.random.default_rng(11)
    A = rng.normal(size=(shape[0], 6)).astype(dtype)
    B = rng.normal(size=(shape[1], 6)).astype(dtype)
    M = _dense_csls(A, B, 4)
    s_ab, i_ab = kneighbors(A, B, 1, method="csls", csls_k=4)
    s_ba, i_ba = kneighbors(B, A, 1, method="csls", csls_k=4)
    atol = 1e-5 if dtype == np.float32 else 1e-12
    for chunk_size in (None, 1, 4, 1000):
        forward, backward, forward_score, backward_score = mutual_matches(
            A, B, 4, chunk_size=chunk_size
        )
        assert forward.dtype == backward.dtype == np.int64
        assert forward_score.dtype == backward_score.dtype == np.float64
        assert_array_equal(forward, i_ab[:, 0])
        assert_array_equal(backward, i_ba[:, 0])
        _assert_best_matches(forward, M, atol)
        _assert_best_matches(backward, M.T, atol)
        assert_allclose(forward_score, s_ab[:, 0], atol=atol)
        assert_allclose(backward_score, s_ba[:, 0], atol=atol)
        assert_allclose(forward_score, M.max(axis=1), atol=atol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", [1, 4, 53])
def test_neighbourhood_mean_operator_averages_the_k_nearest_rows(dtype, k):
    """Check A @ V against the mean of V over a dense top-k, in every block size."""
    rng = np.random.default_rng(13)
    Q = rng.normal(size=(37, 5))
    T = rng.normal(size=(53, 5))
    V = rng.normal(size=(53, 3))
    Qn, Tn = (unit.astype(dtype) for unit in (Q, T))
    Qn /= np.linalg.norm(Qn, axis=1, keepdims=True)
    Tn /= np.linalg.norm(Tn, axis=1, keepdims=True)
    nearest = np.argsort(-_dense_cosine(Q, T), axis=1)[:, :k]
    expected = V[nearest].mean(axis=1)
    for chunk_size in (None, 1, 6, 1000):
        A = neighbourhood_mean_operator(Qn, Tn, k, chunk_size=chunk_size)
        assert A.shape == (37, 53) and A.dtype == dtype
        assert_array_equal(np.diff(A.indptr), k)
        assert_allclose(A.sum(axis=1), 1.0, rtol=1e-6)
        assert_allclose(A @ V, expected, atol=1e-5 if dtype == np.float32 else 1e-12)


def test_neighbourhood_mean_operator_keeps_rows_tied_with_the_kth():
    """Check that a tie at the k-th cosine widens the neighbourhood instead of
    being broken by position, and that a zero query row averages everything."""
    Q = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    T = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    A = neighbourhood_mean_operator(Q, T, 1).toarray()
    assert_allclose(A[0], [1, 0, 0, 0])
    assert_allclose(A[1], [0, 0.5, 0.5, 0])
    assert_allclose(A[2], [0.25] * 4)


@pytest.mark.parametrize("n_queries", [1, 7, 1000])
def test_neighbourhood_mean_operator_cuts_blocks_whatever_the_threads(
    monkeypatch, n_queries
):
    """Check that the query blocks do not depend on the number of threads.

    A row's cosines can differ in the last bit with the number of rows of its
    block, and a neighbourhood with them at a near-tie, so a cut that shared
    the rows out among the threads made the operator depend on the thread
    count.
    """
    import skembed._neighbors as neighbors
    import skembed._parallel as parallel

    rng = np.random.default_rng(0)
    Q = rng.normal(size=(n_queries, 8)).astype(np.float32)
    T = rng.normal(size=(300, 8)).astype(np.float32)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    cut = neighbors.row_groups
    results = []
    for threads in (1, 2, 3):
        seen = []

        def recording(*args, seen=seen, **kwargs):
            seen.append(cut(*args, **kwargs))
            return seen[-1]

        monkeypatch.setattr(neighbors, "row_groups", recording)
        monkeypatch.setattr(parallel, "blas_threads", lambda threads=threads: threads)
        monkeypatch.setattr(
            neighbors, "blas_threads", lambda threads=threads: threads, raising=False
        )
        A = neighbourhood_mean_operator(Q, T, 5, working_memory=0.1)
        results.append((seen, A))
    for seen, A in results[1:]:
        assert seen == results[0][0]
        assert_array_equal(A.indptr, results[0][1].indptr)
        assert_array_equal(A.indices, results[0][1].indices)


def test_mutual_matches_ties_go_to_the_lower_row():
    """Check that equal scores pick the lower row in both directions, across blocks."""
    A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    B = np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 0.0], [1.0, -1.0]])
    for chunk_size in (1, 2, None):
        forward, backward, _, _ = mutual_matches(A, B, 1, chunk_size=chunk_size)
        # A[0] and A[2] tie on B[1] and B[2]; B[1] and B[2] tie on A[0], A[2].
        assert forward[0] == forward[2] == 1
        assert backward[1] == backward[2] == 0


def test_mutual_matches_stochastic_induction():
    """Check keep_prob < 1: real scores, a geometric choice, seeded, all-dropped.

    Every score is kept with probability keep_prob, so a row takes its j-th
    best partner with probability keep_prob (1 - keep_prob)^j; a row whose
    scores are all dropped keeps its best.
    """
    rng = np.random.default_rng(12)
    A, B = rng.normal(size=(300, 6)), rng.normal(size=(200, 6))
    M = _dense_csls(A, B, 5)
    ranks_forward = np.argsort(np.argsort(-M, axis=1), axis=1)
    ranks_backward = np.argsort(np.argsort(-M, axis=0), axis=0)
    first = []
    for seed in range(10):
        forward, backward, forward_score, backward_score = mutual_matches(
            A, B, 5, keep_prob=0.25, generator=np.random.default_rng(seed), chunk_size=7
        )
        assert_allclose(forward_score, M[np.arange(300), forward], atol=1e-12)
        assert_allclose(backward_score, M[backward, np.arange(200)], atol=1e-12)
        first.append(ranks_forward[np.arange(300), forward] == 0)
        first.append(ranks_backward[backward, np.arange(200)] == 0)
        again = mutual_matches(
            A, B, 5, keep_prob=0.25, generator=np.random.default_rng(seed), chunk_size=7
        )
        assert_array_equal(again[0], forward)
        assert_array_equal(again[1], backward)
    assert abs(np.concatenate(first).mean() - 0.25) < 0.03
    dropped = mutual_matches(A, B, 5, keep_prob=1e-12, generator=rng, chunk_size=7)
    for got, expected in zip(dropped, mutual_matches(A, B, 5), strict=True):
        assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stochastic_matches_do_not_depend_on_the_blocks(dtype):
    # The scores dropped belong to rows, not to blocks sized by memory: with
    # one seed, every block layout (and so every working_memory) gives the
    # same matches.
    rng = np.random.default_rng(0)
    A = rng.normal(size=(300, 8)).astype(dtype)
    B = rng.normal(size=(200, 8)).astype(dtype)

    def run(**kwargs):
        return mutual_matches(
            A, B, 5, keep_prob=0.5, generator=np.random.default_rng(42), **kwargs
        )

    reference = run()
    for kwargs in (
        {"chunk_size": 1},
        {"chunk_size": 7},
        {"chunk_size": 64},
        {"chunk_size": 130},
        {"working_memory": 0.01},
    ):
        forward, backward, forward_score, backward_score = run(**kwargs)
        assert_array_equal(forward, reference[0])
        assert_array_equal(backward, reference[1])
        # Products of blocks of other heights round differently.
        atol = 1e-5 if dtype == np.float32 else 1e-12
        assert_allclose(forward_score, reference[2], atol=atol)
        assert_allclose(backward_score, reference[3], atol=atol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stochastic_matching_draws_only_the_rows_of_a_block(dtype):
    # A block of one row inside a tile of 64 drew the whole tile: with the
    # blocks of a large pool (a few rows each), every block held a
    # temporary 64 rows high, beyond its working_memory.
    import tracemalloc

    n_columns = 50_000
    whole = _tile_uniforms(3, 1, 0, 128, n_columns, dtype)
    tracemalloc.start()
    try:
        one = _tile_uniforms(3, 1, 70, 71, n_columns, dtype)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * one.nbytes
    # The same numbers as when the whole tile is drawn, odd offsets included.
    assert_array_equal(one, whole[70:71])
    for start, stop in [(1, 2), (3, 70), (63, 65), (127, 128)]:
        part = _tile_uniforms(3, 1, start, stop, 7, dtype)
        assert_array_equal(part, _tile_uniforms(3, 1, 0, 128, 7, dtype)[start:stop])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("chunk_size", [2, 5, 40])
def test_mutual_matches_column_floors_across_many_blocks(chunk_size, dtype):
    """Check the column penalties when many blocks raise the floors.

    600 rows of A against 40 of B in small blocks: the candidates of later
    blocks outnumber the kept values several times, so they are merged and
    the floors raised during the pass. Penalties, matches and scores must
    still be those of the dense CSLS matrix.
    """
    rng = np.random.default_rng(21)
    A, B = rng.normal(size=(600, 5)), rng.normal(size=(40, 5))
    M = _dense_csls(A, B, 3)
    forward, backward, forward_score, backward_score = mutual_matches(
        A.astype(dtype), B.astype(dtype), 3, chunk_size=chunk_size
    )
    atol = 1e-5 if dtype == np.float32 else 1e-12
    assert_array_equal(forward, M.argmax(axis=1))
    assert_array_equal(backward, M.argmax(axis=0))
    assert_allclose(forward_score, M.max(axis=1), atol=atol)
    assert_allclose(backward_score, M.max(axis=0), atol=atol)


@pytest.mark.parametrize("keep_prob", [1.0, 0.3])
def test_mutual_matches_same_on_one_thread_and_two(keep_prob):
    """Check that the row blocks' threads do not change the result.

    Penalties are sorted before they are averaged and each block draws its
    own random numbers, so one thread and two give the same matches, and
    scores equal up to the rounding of products on another thread count.
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(22)
    A, B = rng.normal(size=(500, 8)), rng.normal(size=(300, 8))
    results = []
    for n_threads in (1, 2):
        with threadpool_limits(n_threads):
            results.append(
                mutual_matches(
                    A,
                    B,
                    5,
                    keep_prob=keep_prob,
                    generator=np.random.default_rng(3),
                    chunk_size=16,
                )
            )
    for k, (one, two) in enumerate(zip(*results, strict=True)):
        if k < 2:
            assert_array_equal(one, two)
        else:
            assert_allclose(one, two, rtol=0, atol=1e-12)


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["nn", "csls"])
def test_equal_rows_tie_exactly_in_every_batch_and_position(dtype, method):
    """Check copies of index rows tie exactly and rank in row order.

    A BLAS product rounds a row's scores by its position in the block, so
    copies could differ in the last bits and rank by the machine and the
    batch; scores are exact, so they may not.
    """
    rng = np.random.default_rng(5)
    d = 26
    base = rng.normal(size=(40, d))
    T = np.vstack([base, base[::-1], base[::3]]).astype(dtype)  # every row twice+
    Q = (base[::2] + 0.1 * rng.normal(size=(20, d))).astype(dtype)
    results = [
        kneighbors(Q, T, 6, method=method, csls_k=4, chunk_size=size)
        for size in (1, 3, 20)
    ]
    results += [
        kneighbors(Q[i : i + 1], T, 6, method=method, csls_k=4, index_penalties=None)
        if method == "nn"
        else kneighbors(
            Q[i : i + 1],
            T,
            6,
            method=method,
            csls_k=4,
            index_penalties=csls_penalties(Q, T, csls_k=4),
        )
        for i in range(0, 20, 7)
    ]
    scores, indices = results[0]
    # scores of rows without a close rival keep their block rounding
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for other_scores, other_indices in results[1:3]:
        assert_array_equal(other_indices, indices)
        assert_allclose(other_scores, scores, rtol=rtol)
    for i, (one_scores, one_indices) in zip(range(0, 20, 7), results[3:], strict=True):
        assert_array_equal(one_indices[0], indices[i])
        assert_allclose(one_scores[0], scores[i], rtol=rtol)
    # copies score bit-equal and come in row order
    for row_scores, row_indices in zip(scores, indices, strict=True):
        for a in range(5):
            if row_scores[a] == row_scores[a + 1]:
                assert row_indices[a] < row_indices[a + 1]
        copies = {tuple(T[j]) for j in row_indices}
        assert len(copies) < 6  # some neighbours are copies, and they tied
    penalties = csls_penalties(Q, T, csls_k=4)
    assert_array_equal(penalties[:40], penalties[40:80][::-1])
    # a copy before the partner wins the tie, a copy after it loses it
    paired = T[:40]
    early = np.vstack([paired[:1], paired]).astype(dtype)
    queries = np.vstack([paired[:1], paired]).astype(dtype)
    assert retrieval_accuracy(queries, early, k=1, method=method, csls_k=4) == (
        pytest.approx(40 / 41)
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
    # Penalties are mean cosines: far outside [-1, 1], float32 rounding
    # bounds would not hold; a rounding above 1 is fine.
    for bad in (1000.0, -1.01):
        with pytest.raises(ValueError, match="index_penalties must be mean cosines"):
            kneighbors(Q, T, method="csls", csls_k=2, index_penalties=np.full(8, bad))
    kneighbors(Q, T, method="csls", csls_k=2, index_penalties=np.full(8, 1 + 1e-12))
    with pytest.raises(ValueError, match="queries has no rows"):
        kneighbors(Q[:0], T)
    with pytest.raises(ValueError, match="index has no rows"):
        csls_penalties(Q, T[:0])
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


@pytest.mark.parametrize("dtype, big", [(np.float32, 2e37), (np.float64, 1e307)])
def test_rows_whose_norm_leaves_the_dtype_are_searched_by_direction(dtype, big):
    # Finite entries, but a norm (sqrt(384) * big) beyond the dtype's range:
    # cosine ignores scale, so the row is searched like any other.
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(6, 384)).astype(dtype)
    docs[0] = big
    query = np.vstack([np.ones(384), rng.normal(size=384)]).astype(dtype)
    for k in (1, 2):
        scores, found = kneighbors(query, docs, k=k)
        assert found[0, 0] == 0
        # A float32 cosine of 384 terms: 1e-5, as elsewhere (AVX2 kernels
        # round this one to 0.999998).
        assert_allclose(scores[0, 0], 1.0, atol=1e-5 if dtype == np.float32 else 1e-12)
        scores, found = kneighbors(query, docs, k=k, method="csls", csls_k=2)
        assert found[0, 0] == 0
    assert retrieval_accuracy(docs, docs, method="csls", csls_k=2) == 1.0
    assert np.isfinite(csls_penalties(docs, docs, csls_k=2)).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mutual_matches_give_the_first_of_identical_rows(dtype):
    """Check copies of a row: the first copy, whatever the blocks and threads.

    A BLAS product rounds a row's scores by its place in the block, so which
    copy won depended on chunk_size and the thread count, and a self-learning
    fit on pools with repeated texts swapped copies every round.
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, 384)).astype(dtype)
    A = rows[rng.integers(0, 300, 1000)]  # pools with repeated texts
    B = rows[rng.integers(0, 300, 900)]
    _, first_of_a = np.unique(A, axis=0, return_index=True)
    _, first_of_b = np.unique(B, axis=0, return_index=True)
    reference = None
    for threads in (1, 2):
        for chunk_size in (None, 17):
            with threadpool_limits(threads, user_api="blas"):
                forward, backward, _, _ = mutual_matches(
                    A, B, 10, chunk_size=chunk_size
                )
            assert np.isin(forward, first_of_b).all()
            assert np.isin(backward, first_of_a).all()
            if reference is None:
                reference = forward, backward
            assert_array_equal(forward, reference[0])
            assert_array_equal(backward, reference[1])


def test_the_tie_rule_has_a_direction():
    """Check a tie that only the documented direction of the rule scores right.

    Target 1 equals target 0, query 0's partner, and has the higher index,
    so query 0 finds its partner first; query 1 finds target 2 before its
    partner, query 2 its partner: 2/3. The mirror rule (a higher index ranks
    first) gives 1/3; the symmetric fixtures above score the same under both.
    """
    Q = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    T = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert retrieval_accuracy(Q, T) == pytest.approx(2 / 3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ties", ["none", "some", "all"])
@pytest.mark.parametrize("k", [1, 10])
def test_row_top_mean_equals_a_full_partition(dtype, ties, k):
    """Check the row means of the k largest values, bit for bit, on any row width.

    Wide rows are ranked from the entries above a floor of chunk maxima;
    copies of a column put ties at the top ("some"), and rows of one value
    ("all") leave every entry at the floor, where every row is partitioned.
    """
    rng = np.random.default_rng(5)
    for n_cols in (7, 600, 1300, 5000):
        if k > n_cols:
            continue
        S = rng.normal(size=(40, n_cols)).astype(dtype)
        if ties == "some":
            S[:, 1::3] = S[:, ::3][:, : S[:, 1::3].shape[1]]
        elif ties == "all":
            S[:] = 0.5
        top = np.sort(S, axis=1)[:, n_cols - k :].copy()
        expected = top.mean(axis=1, dtype=np.float64)
        got = _row_top_mean(S.copy(), k)
        assert got.dtype == np.float64
        assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shortlist", [1, 3, 40])
def test_mutual_matches_search_again_the_rows_their_shortlist_cannot_decide(
    monkeypatch, dtype, shortlist
):
    """Check the single pass against dense CSLS when shortlists are short.

    In 3 dimensions many rows' best CSLS match lies below their few largest
    cosines (a hub's penalty pushes it down): those rows must be searched
    again, and the others decided from their shortlist alone.
    """
    monkeypatch.setattr(_neighbors, "_SHORTLIST", shortlist)
    rng = np.random.default_rng(31)
    A = rng.normal(size=(400, 3)).astype(dtype)
    B = rng.normal(size=(900, 3)).astype(dtype)
    M = _dense_csls(A, B, 1)
    atol = 1e-5 if dtype == np.float32 else 1e-12
    for chunk_size in (None, 13):
        forward, backward, forward_score, backward_score = mutual_matches(
            A, B, 1, chunk_size=chunk_size
        )
        _assert_best_matches(forward, M, atol)
        _assert_best_matches(backward, M.T, atol)
        assert_allclose(forward_score, M.max(axis=1), atol=atol)
        assert_allclose(backward_score, M.max(axis=0), atol=atol)


def test_mutual_matches_with_a_row_copied_past_the_shortlist():
    """Check rows whose shortlist would list hundreds of tied copies.

    300 copies of one row of B tie at the top of every row of A near it;
    those rows are searched again in full, and the first copy wins.
    """
    rng = np.random.default_rng(32)
    B = rng.normal(size=(600, 8))
    B[100:400] = B[100]
    A = B[100] + 0.01 * rng.normal(size=(50, 8))
    A = np.vstack([A, rng.normal(size=(50, 8))])
    M = _dense_csls(A, B, 5)
    forward, backward, forward_score, _ = mutual_matches(A, B, 5)
    assert_array_equal(forward, M.argmax(axis=1))
    assert (forward[:50] == 100).all()
    assert_array_equal(backward, M.argmax(axis=0))
    assert_allclose(forward_score, M.max(axis=1), atol=1e-12)


@pytest.mark.parametrize("method", ["nn", "csls"])
def test_zero_queries_among_others(method):
    """Check zero queries, answered without ranking the whole index (300 of
    them against 200,000 rows took 29 s): the first k rows by cosine, the k
    of lowest penalty by CSLS (ties to the lower row), the other queries as
    searched alone, the penalties from every query."""
    rng = np.random.default_rng(0)
    index = rng.normal(size=(500, 8))
    index[7] = index[3]  # a tie of penalties
    queries = rng.normal(size=(30, 8))
    queries[[2, 11, 29]] = 0.0
    penalties = csls_penalties(queries, index, csls_k=5)
    params = {"method": method, "csls_k": 5}
    if method == "csls":
        params["index_penalties"] = penalties
    scores, found = kneighbors(queries, index, 6, **params)
    others = np.setdiff1d(np.arange(30), [2, 11, 29])
    alone = kneighbors(queries[others], index, 6, **params)
    assert_array_equal(found[others], alone[1])
    assert_array_equal(scores[others], alone[0])
    expected = np.arange(6)
    if method == "csls":
        expected = np.argsort(penalties, kind="stable")[:6]
    for row in (2, 11, 29):
        assert_array_equal(found[row], expected)
        assert_array_equal(scores[row], -penalties[expected] if method == "csls" else 0)
    if method == "csls":
        # Without index_penalties the pool is every query, zero ones included.
        own = kneighbors(queries, index, 6, method="csls", csls_k=5)
        assert_array_equal(own[1], found)


def test_rows_tied_with_the_whole_index_stay_within_memory():
    """Check zero queries, whose cosine ties with every index row.

    Every row of the index was a candidate of every query of a block, kept
    with its row, column, scores and sort order (about 40 bytes each against
    the block's 8 per score): 16.5 MiB here. Ranked a few rows at a time,
    the candidates stay within the block's memory.
    """
    index = np.random.default_rng(0).normal(size=(20000, 8))
    queries = np.zeros((50, 8))
    kneighbors(queries[:2], index, 5, chunk_size=10)  # imports and caches
    tracemalloc.start()
    try:
        scores, found = kneighbors(queries, index, 5, chunk_size=10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Ties go to the lower row: rows 0-4, cosine 0, for every query.
    assert_array_equal(found, np.tile(np.arange(5), (50, 1)))
    assert_array_equal(scores, 0.0)
    assert peak < 10 * 2**20, peak / 2**20


@pytest.mark.parametrize("method", ["nn", "csls"])
def test_float64_queries_search_a_float32_index_in_float32(method):
    # The index is the large side: float64 queries used to copy all of it
    # to float64 (118 MiB for one query against 40,000 x 384 float32 rows).
    rng = np.random.default_rng(0)
    index = rng.normal(size=(20_000, 64)).astype(np.float32)
    queries = index[:30].astype(np.float64) + 0.1 * rng.normal(size=(30, 64))

    def search(Q):
        tracemalloc.start()
        try:
            return kneighbors(Q, index, k=5, method=method), (
                tracemalloc.get_traced_memory()[1]
            )
        finally:
            tracemalloc.stop()

    expected, peak32 = search(queries.astype(np.float32))
    got, peak64 = search(queries)
    # A float64 copy of the index would add index.nbytes * 2.
    assert peak64 < peak32 + index.nbytes // 4
    assert_array_equal(got[1], expected[1])
    assert_array_equal(got[0], expected[0])
    # Cosines ignore a row's scale: float64 rows far outside float32's range
    # find the same neighbours instead of overflowing or vanishing.
    for scale in (1e300, 1e-300):
        assert_array_equal(
            kneighbors(scale * queries, index, k=5, method=method)[1], expected[1]
        )
    penalties = csls_penalties(queries, index, csls_k=5)
    assert_array_equal(
        penalties, csls_penalties(queries.astype(np.float32), index, csls_k=5)
    )
    assert retrieval_accuracy(
        index[:30].astype(np.float64), index[:30]
    ) == retrieval_accuracy(index[:30], index[:30])


def _rank_without_grouping(monkeypatch):
    """Turn off the grouping of copies (the plain ranking, tested above)."""
    monkeypatch.setattr(_neighbors, "_CROWDED_ROW", np.inf)
    monkeypatch.setattr(_neighbors, "_GROUPED_PAIRS", np.inf)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("penalties", [None, "computed", "unequal"])
def test_copies_rank_as_they_would_one_by_one(dtype, penalties, monkeypatch):
    """Check an index and queries full of copies of one document.

    Copies tie with each other over much of the index, and were ranked pair
    by pair (300 queries near a document copied into half of 200,000 rows
    took 8.2 s). Grouping them must change no neighbour, score or penalty,
    also under CSLS penalties a caller passed that differ between copies.
    """
    rng = np.random.default_rng(0)
    document = rng.normal(size=16)
    index = rng.normal(size=(6000, 16))
    copied = rng.permutation(6000)[:4500]
    index[copied] = document
    queries = document + 1e-3 * rng.normal(size=(160, 16))
    queries[::2] = document
    queries[1::8] = rng.normal(size=(20, 16))
    index, queries = index.astype(dtype), queries.astype(dtype)
    params = {"method": "nn"} if penalties is None else {"method": "csls"}
    if penalties is not None:
        params["index_penalties"] = csls_penalties(queries, index)
        if penalties == "unequal":
            # Within the float32 search's rounding margin: all copies are
            # candidates, and only the penalties tell them apart.
            params["index_penalties"][copied[::3]] -= 1e-6
    paired = np.vstack([index[copied[:300]], index[:60]])

    def results():
        return (
            kneighbors(queries, index, 12, **params),
            csls_penalties(queries, index),
            csls_penalties(index, queries),
            retrieval_accuracy(paired, paired, k=3, method=params["method"]),
        )

    grouped = _neighbors._first_copies_among
    calls = []
    monkeypatch.setattr(
        _neighbors,
        "_first_copies_among",
        lambda *args: calls.append(1) or grouped(*args),
    )
    got = results()
    assert calls, "the copies were not grouped"
    _rank_without_grouping(monkeypatch)
    expected = results()
    assert_array_equal(got[0][1], expected[0][1])
    assert_array_equal(got[0][0], expected[0][0])
    for value, reference in zip(got[1:], expected[1:], strict=True):
        assert_array_equal(value, reference)
    # The lowest copies first, for every query equal to the document.
    if penalties != "unequal":
        assert_array_equal(got[0][1][::2], np.tile(np.sort(copied)[:12], (80, 1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [1, 3, 16])
def test_first_copies_among_rows_and_penalties(dtype, width, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, width)).astype(dtype)
    X[rng.integers(3000, size=2000)] = X[rng.integers(3000, size=2000)]
    X[5], X[6] = 0.0, -0.0  # equal values, different bytes: not copies
    penalties = rng.choice([0.0, 0.5], size=3000)
    rows = np.sort(rng.choice(3000, size=2500, replace=False))
    keys = np.hstack(
        [
            X.view(np.uint8).reshape(3000, -1),
            penalties.view(np.uint8)[:, None].reshape(3000, -1),
        ]
    )
    for extra, expected_keys in ((None, X), (penalties, keys)):
        expected = rows[_neighbors.first_copies(expected_keys[rows])]
        assert_array_equal(_neighbors._first_copies_among(X, rows, extra), expected)
    # Every hash equal: rows the first one does not equal stay their own.
    monkeypatch.setattr(_neighbors, "_HASH_WORDS", np.zeros(64, dtype=np.uint64))
    got = _neighbors._first_copies_among(X, rows, penalties)
    first = rows[0]
    equal = np.all(keys[rows] == keys[first], axis=1)
    assert_array_equal(got, np.where(equal, first, rows))


def test_first_pair_copies_equal_those_of_the_joined_rows():
    """Check pairs hashed side by side: the same groups as the joined rows."""
    from skembed._neighbors import first_copies, first_pair_copies

    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 3))[rng.integers(6, size=200)]
    B = rng.normal(size=(5, 2)).astype(np.float32)[rng.integers(5, size=200)]
    expected = first_copies(np.hstack([A, B.astype(np.float64)]))
    assert_array_equal(first_pair_copies(A, B), expected)
    assert len(np.unique(expected)) <= 6 * 5  # repeats, grouped


def test_searches_refuse_dates_and_strings():
    """Check kneighbors and EmbeddingIndex refuse what fit refuses.

    Dates and numeric strings were cast to floats and searched.
    """
    from skembed import EmbeddingIndex

    rng = np.random.default_rng(0)
    index = rng.normal(size=(30, 4))
    dates = np.datetime64("2024-01-01") + (index * 1e6).astype("timedelta64[s]")
    with pytest.raises(ValueError, match="queries holds non-numeric values"):
        kneighbors(dates, index, k=2)
    with pytest.raises(ValueError, match="index holds non-numeric values"):
        kneighbors(index, index.astype(str), k=2)
    with pytest.raises(ValueError, match="X holds non-numeric values"):
        EmbeddingIndex().fit(dates)


def test_penalties_and_weights_are_checked_by_name():
    """Check CSLS penalties without CSLS, and non-numbers, are refused by name.

    kneighbors ignored index_penalties under method="nn" (even of the wrong
    length); strings or a dict of penalties or weights gave numpy's "could
    not convert string to float" without naming them.
    """
    from skembed import EmbeddingIndex, fused_kneighbors

    rng = np.random.default_rng(0)
    index = rng.normal(size=(20, 4))
    with pytest.raises(ValueError, match="index_penalties are CSLS penalties.*nn"):
        kneighbors(index[:5], index, k=3, index_penalties=np.ones(20))
    for bad in (["x"] * 20, {"a": 1}):
        with pytest.raises(ValueError, match="index_penalties must be an array"):
            kneighbors(index[:5], index, k=3, method="csls", index_penalties=bad)
    searches = [(EmbeddingIndex().fit(index), index[:2])]
    with pytest.raises(ValueError, match="weights must be an array of numbers"):
        fused_kneighbors(searches, 3, weights=["x"])


def test_a_list_of_views_where_one_matrix_goes_is_refused():
    """Check a list of 2-D arrays given for one matrix names the slip.

    numpy read it as one 3-D array or failed with "inhomogeneous shape".
    """
    from skembed import EmbeddingIndex, ProcrustesAligner

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(20, 4)), rng.normal(size=(20, 3))
    aligner = ProcrustesAligner().fit([A, B])
    for call in (
        lambda: aligner.transform_view([A, B], 0),
        lambda: aligner.translate([A, A], 0, 1),
        lambda: EmbeddingIndex().fit([A, B]),
        lambda: kneighbors([A, A], A, k=2),
    ):
        with pytest.raises(ValueError, match="list of 2 2-D arrays.*one view"):
            call()


def test_first_copies_hold_no_copy_of_the_rows(monkeypatch):
    """Check rows grouped by their bytes without sorting a copy of them.

    np.unique of the rows' bytes held three copies of X: check_same_space of
    two 20,000 x 384 float32 inputs peaked at 88 MiB to sample 1,000 rows.
    Hashed a few thousand rows at a time, the grouping costs a few numbers a
    row; rows whose hashes collide are still grouped by their bytes.
    """
    from skembed._neighbors import first_copies, first_pair_copies

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 256)).astype(np.float32)[rng.integers(4000, size=20000)]
    X[5], X[6] = 0.0, -0.0  # equal values, different bytes: not copies
    keys = X.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    expected = first[inverse.ravel()]
    first_copies(X[:10])  # imports and caches
    tracemalloc.start()
    try:
        got = first_copies(X)
        peak = tracemalloc.get_traced_memory()[1]
        first_pair_copies(X, X[::-1])
        pair_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_array_equal(got, expected)
    assert peak < X.nbytes // 2, peak / X.nbytes
    assert pair_peak < X.nbytes // 2, pair_peak / X.nbytes
    # Every hash equal: the rows are grouped by their bytes all the same.
    monkeypatch.setattr(_neighbors, "_HASH_WORDS", np.zeros(64, dtype=np.uint64))
    assert_array_equal(first_copies(X[:3000]), expected[:3000])


def test_complex_input_is_refused_by_name():
    """Check complex embeddings get a message that names the input and the fix.

    scikit-learn's message named neither and printed the values (all of
    them, for a small array).
    """
    from skembed import EmbeddingIndex, ProcrustesAligner
    from skembed.metrics import linear_cka

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4)) + 0j
    cases = [
        (lambda: kneighbors(X, X.real, k=2), "queries"),
        (lambda: kneighbors(X.real, X, k=2), "index"),
        (lambda: EmbeddingIndex().fit(X), "X"),
        (lambda: ProcrustesAligner().fit([X[:, :2], X[:, 2:].real]), r"X\[0\]"),
        (lambda: ProcrustesAligner().fit(pd.DataFrame(X)), "X"),
        (lambda: linear_cka(X.real, X), "B"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=rf"{name} holds complex values") as err:
            call()
        assert ".real)" in str(err.value)
        assert "[[" not in str(err.value)  # no values printed
