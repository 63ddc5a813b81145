"""Tests for skembed.fused_kneighbors: one corpus searched in several indexes."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import special_ortho_group
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skembed import EmbeddingIndex, fused_kneighbors


def _corpus(seed=0, n_index=600, n_queries=60, widths=(20, 14)):
    """One corpus seen by two unrelated noisy 'models', and queries in each space.

    Each model sees a shared latent document through its own random linear
    map plus its own noise, so the two indexes rank differently and their sum
    ranks unlike either.
    """
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_index, 10))
    answers = rng.choice(n_index, size=n_queries, replace=False)
    spaces = []
    for width in widths:
        embed = rng.normal(size=(10, width))
        index = latent @ embed + 1.0 * rng.normal(size=(n_index, width)) + 0.5
        query = latent[answers] @ embed + 1.5 * rng.normal(size=(n_queries, width))
        sample = latent[rng.choice(n_index, 200)] @ embed
        spaces.append((index, query + 0.5, sample + 0.5))
    return spaces, answers


def _searches(spaces, methods=("nn", "csls"), center=(True, "separate"), **kw):
    out = []
    for (index, query, sample), method, centre in zip(
        spaces, methods, center, strict=True
    ):
        searcher = EmbeddingIndex(method=method, csls_k=5, center=centre, **kw)
        searcher.fit(index)
        if method == "csls" or centre == "separate":
            searcher.fit_queries(sample)
        out.append((searcher, query))
    return out


def _unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _brute_force(searches, weights, k):
    """The fused ranking written out: every row scored in every space."""
    total = 0.0
    for weight, (index, query) in zip(weights, searches, strict=True):
        data = index._rows  # prepared (centred, unit) rows of a numpy index
        mean = index.query_mean_ if index.center == "separate" else index.mean_
        q = _unit(query - mean) if mean is not None else _unit(query)
        cosines = q @ data.T
        if index.method == "csls":
            cosines = 2 * cosines - index.penalties_
        total = total + weight * cosines
    order = np.lexsort(
        (np.broadcast_to(np.arange(total.shape[1]), total.shape), -total)
    )
    order = order[:, :k]
    return np.take_along_axis(total, order, axis=1), order


@pytest.mark.parametrize("shortlist", [2, 10, 1000])
@pytest.mark.parametrize("weights", [None, [0.3, 2.0]])
def test_fused_search_equals_the_sum_over_every_row(shortlist, weights):
    """Check the result against every row scored in every index, whatever the
    shortlist: shortlists too short for the fused top-k are widened."""
    spaces, _ = _corpus()
    searches = _searches(spaces)
    scores, rows = fused_kneighbors(
        searches, n_neighbors=8, weights=weights, shortlist=shortlist
    )
    expected_scores, expected_rows = _brute_force(
        searches, [1.0, 1.0] if weights is None else weights, 8
    )
    assert_array_equal(rows, expected_rows)
    assert_allclose(scores, expected_scores, rtol=0, atol=1e-10)


def test_fused_search_ranks_unlike_either_index():
    """Check that the example is not trivial (the sum changes the top rows),
    and that the sum finds the queries' documents more often than either."""
    spaces, answers = _corpus()
    searches = _searches(spaces)
    _, fused = fused_kneighbors(searches, n_neighbors=5, shortlist=5)
    alone = [index.kneighbors(query, 5)[1] for index, query in searches]
    assert all((fused[:, 0] != rows[:, 0]).any() for rows in alone)
    hits = [np.mean((rows == answers[:, None]).any(axis=1)) for rows in alone]
    assert np.mean((fused == answers[:, None]).any(axis=1)) > max(hits)


def test_a_query_alone_gets_its_rows_in_the_batch():
    spaces, _ = _corpus(seed=1)
    searches = _searches(spaces)
    scores, rows = fused_kneighbors(searches, n_neighbors=6, shortlist=3)
    for i in (0, 17, 59):
        one = [(index, query[i : i + 1]) for index, query in searches]
        s, r = fused_kneighbors(one, n_neighbors=6, shortlist=3)
        assert_array_equal(r[0], rows[i])
        assert_array_equal(s[0], scores[i])


def test_blocks_of_queries_give_the_same_rows(monkeypatch):
    """Queries are searched in blocks that bound the shortlists' memory."""
    import skembed._index

    spaces, _ = _corpus(seed=1)
    searches = _searches(spaces)
    expected = fused_kneighbors(searches, n_neighbors=6, shortlist=3)
    monkeypatch.setattr(skembed._index, "_FUSED_BLOCK", 7)
    scores, rows = fused_kneighbors(searches, n_neighbors=6, shortlist=3)
    assert_array_equal(rows, expected[1])
    assert_array_equal(scores, expected[0])


def test_one_search_ranks_as_its_index():
    """A single index: its own ranking, scores plus the query's CSLS penalty."""
    spaces, _ = _corpus(seed=2)
    (index, query), _ = _searches(spaces, methods=("csls", "nn"))
    scores, rows = fused_kneighbors([(index, query)], n_neighbors=7, shortlist=7)
    own_scores, own_rows = index.kneighbors(query, 7)
    assert_array_equal(rows, own_rows)
    # The differences along a query are its constant penalty r(q).
    shift = scores - own_scores
    assert_allclose(shift, shift[:, :1] * np.ones((1, 7)), atol=1e-9)


def test_float32_inputs_and_inputs_untouched():
    spaces, _ = _corpus(seed=3)
    spaces = [tuple(a.astype(np.float32) for a in space) for space in spaces]
    searches = _searches(spaces)
    copies = [query.copy() for _, query in searches]
    scores, rows = fused_kneighbors(searches, n_neighbors=4, shortlist=2)
    assert scores.dtype == np.float64 and rows.dtype == np.int64
    for (_, query), copy in zip(searches, copies, strict=True):
        assert_array_equal(query, copy)
    _, expected = _brute_force(searches, [1.0, 1.0], 4)
    assert (rows == expected).mean() > 0.99  # float32 rounding may swap near-ties


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_fused_search_is_invariant_under_rotations_of_one_space(seed):
    """Rotating one model's index and its queries together changes no row."""
    spaces, _ = _corpus(seed=4, n_index=300, n_queries=20)
    rotation = special_ortho_group.rvs(spaces[1][0].shape[1], random_state=seed)
    rotated = [spaces[0], tuple(a @ rotation for a in spaces[1])]
    _, rows = fused_kneighbors(_searches(spaces), n_neighbors=5, shortlist=4)
    _, turned = fused_kneighbors(_searches(rotated), n_neighbors=5, shortlist=4)
    assert_array_equal(rows, turned)


@pytest.mark.parametrize("method", ["nn", "csls"])
def test_faiss_backends(method):
    """Flat FAISS is exact like numpy, by cosine and by CSLS; HNSW is
    approximate (its shortlists are), and still agrees on nearly every row."""
    pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    spaces, _ = _corpus(seed=5)
    methods = (method, method)
    exact = fused_kneighbors(_searches(spaces, methods), n_neighbors=5, shortlist=3)
    for backend in ("faiss-flat", "faiss-hnsw"):
        searches = _searches(spaces, methods, backend=backend, shortlist=50)
        if backend == "faiss-flat":
            scores, rows = fused_kneighbors(searches, n_neighbors=5, shortlist=3)
            assert_array_equal(rows, exact[1])
            assert_allclose(scores, exact[0], atol=1e-5)
            continue
        # Not widened: as good as the shortlists of the default length.
        _, rows = fused_kneighbors(searches, n_neighbors=5)
        shared = [
            np.intersect1d(a, b).size for a, b in zip(rows, exact[1], strict=True)
        ]
        assert np.mean(shared) / 5 > 0.95


def test_bad_searches_are_named():
    spaces, _ = _corpus(seed=6, n_index=100, n_queries=5)
    searches = _searches(spaces)
    (a, qa), (b, qb) = searches
    with pytest.raises(ValueError, match="searches is empty"):
        fused_kneighbors([])
    with pytest.raises(InvalidParameterError, match="searches"):
        fused_kneighbors(a)
    with pytest.raises(TypeError, match=r"searches\[1\] must be a pair"):
        fused_kneighbors([(a, qa), b])
    with pytest.raises(TypeError, match=r"searches\[0\]\[0\] must be a fitted"):
        fused_kneighbors([(qa, a)])
    with pytest.raises(NotFittedError):
        fused_kneighbors([(a, qa), (EmbeddingIndex(), qb)])
    with pytest.raises(ValueError, match=r"searches\[1\] queries has 20 columns"):
        fused_kneighbors([(a, qa), (b, qa)])
    with pytest.raises(ValueError, match=r"searches\[1\] has 4 queries"):
        fused_kneighbors([(a, qa), (b, qb[:4])])
    short = EmbeddingIndex().fit(spaces[1][0][:50])
    with pytest.raises(ValueError, match="same documents in the same order"):
        fused_kneighbors([(a, qa), (short, qb)])
    with pytest.raises(ValueError, match="one positive weight per search"):
        fused_kneighbors(searches, weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="one positive weight per search"):
        fused_kneighbors(searches, weights=[1.0])
    with pytest.raises(ValueError, match="n_neighbors=101 exceeds"):
        fused_kneighbors(searches, n_neighbors=101)
    with pytest.raises(InvalidParameterError, match="shortlist"):
        fused_kneighbors(searches, shortlist=0)
    no_penalties = EmbeddingIndex(method="csls").fit(spaces[1][0])
    with pytest.raises(ValueError, match=r"searches\[1\]: method=\"csls\" needs"):
        fused_kneighbors([(a, qa), (no_penalties, qb)])


@pytest.mark.slow
def test_blocks_of_queries_follow_working_memory():
    """Check the shortlists of a block of queries fit in working_memory.

    Blocks of about 4 million shortlisted rows held about 250 MiB of
    temporaries whatever scikit-learn's working_memory said; with 16 MiB
    asked for, the search stays near it, with the same result.
    """
    import tracemalloc

    from sklearn import config_context

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(8_000, 8))
    indexes = [EmbeddingIndex(center=False).fit(rows) for _ in range(2)]
    searches = [(index, rows) for index in indexes]
    with config_context(working_memory=16):
        fused_kneighbors(searches[:1], 10)  # imports and caches
        tracemalloc.start()
        try:
            got = fused_kneighbors(searches, 10)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    want = fused_kneighbors(searches, 10)
    assert_array_equal(got[1], want[1])
    assert_allclose(got[0], want[0])
    # The output, the prepared queries (1 MiB) and a 16 MiB budget, with
    # room: the 8,000 queries in one block peaked at about 80 MiB.
    assert peak < 40 * 2**20, peak / 2**20


def test_queries_are_prepared_a_block_at_a_time():
    """Check that fused_kneighbors prepares only the block of queries it fuses.

    Every search's queries were prepared at once (centred, unit-length
    copies, float64 here): 20 MiB for two searches of 20,000 queries, with
    blocks of a few MiB under working_memory=1. Rows prepared a block at a
    time are the rows of the whole prepared matrix, column-major queries
    included, so nothing changes.
    """
    import tracemalloc

    from sklearn import config_context

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(1000, 64)) + 1.0
    queries = rng.normal(size=(20_000, 64)) + 1.0
    indexes = [EmbeddingIndex(center=True).fit(rows) for _ in range(2)]
    searches = [(indexes[0], queries), (indexes[1], np.asfortranarray(queries))]
    with config_context(working_memory=1):
        fused_kneighbors([(index, queries[:2]) for index in indexes], 5)
        tracemalloc.start()
        try:
            scores, found = fused_kneighbors(searches, 5, shortlist=10)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # Each index ranks the same cosines: the fused sum is twice one search's.
    prepared = [
        index._prepare(part, index._dtype, index._query_mean())
        for index, part in searches
    ]
    single_scores, single = indexes[0]._search_prepared(prepared[0], 5)
    assert_array_equal(found, single)
    assert_allclose(scores, 2 * single_scores, rtol=1e-12)
    # The results (1.5 MiB) and a block's shortlists and prepared rows.
    assert peak < 8 * 2**20, peak / 2**20
