"""Tests for skembed.EmbeddingIndex: exact and FAISS search by cosine or CSLS."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import pickle
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.utils._param_validation import InvalidParameterError

from skembed import EmbeddingIndex, csls_penalties, kneighbors
from skembed.datasets import load_fortunes
from skembed.metrics import recall_at_k


def _data(seed=0, n_index=2000, n_queries=150, width=24, offset=1.5, noise=0.6):
    """Index rows with a common offset, and noisy copies of some as queries."""
    rng = np.random.default_rng(seed)
    index = rng.normal(size=(n_index, width)) + offset
    answers = rng.choice(n_index, size=n_queries, replace=False)
    queries = index[answers] + noise * rng.normal(size=(n_queries, width))
    sample = index[rng.choice(n_index, size=400, replace=False)]
    sample = sample + noise * rng.normal(size=sample.shape)
    return index, queries, answers, sample


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("method", ["nn", "csls"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_backend_matches_the_engine(center, method, dtype):
    """Check that the exact backend returns kneighbors' neighbours and scores."""
    index, queries, _, sample = _data()
    index, queries, sample = (a.astype(dtype) for a in (index, queries, sample))
    searcher = EmbeddingIndex(7, method=method, csls_k=5, center=center).fit(index)
    if method == "csls":
        searcher.fit_queries(sample)
    scores, indices = searcher.kneighbors(queries)
    shift = index.mean(axis=0, dtype=np.float64).astype(dtype) if center else 0
    penalties = None
    if method == "csls":
        penalties = csls_penalties(sample - shift, index - shift, csls_k=5)
        assert_allclose(searcher.penalties_, penalties, atol=1e-5)
    expected_scores, expected = kneighbors(
        queries - shift,
        index - shift,
        7,
        method=method,
        csls_k=5,
        index_penalties=penalties,
    )
    assert_array_equal(indices, expected)
    assert_allclose(scores, expected_scores, atol=1e-5)
    assert scores.dtype == np.float64 and indices.dtype == np.int64


def test_batches_do_not_change_results():
    """Check that one query at a time gives the results of the whole batch."""
    index, queries, _, sample = _data()
    searcher = EmbeddingIndex(5, method="csls").fit(index).fit_queries(sample)
    scores, indices = searcher.kneighbors(queries)
    for row in (0, 17, 149):
        one_scores, one = searcher.kneighbors(queries[row : row + 1])
        assert_array_equal(one[0], indices[row])
        assert_allclose(one_scores[0], scores[row], atol=1e-12)


def test_input_is_not_modified_and_float32_is_kept():
    """Check that fit leaves X alone and float32 queries search in float32."""
    index, queries, _, _ = _data()
    index32 = index.astype(np.float32)
    before = index32.copy()
    searcher = EmbeddingIndex(center=False).fit(index32)
    assert_array_equal(index32, before)
    assert searcher._rows.dtype == np.float32
    assert not np.shares_memory(searcher._rows, index32)


def test_csls_needs_penalties():
    """Check the error that says to call fit_queries first."""
    index, queries, _, sample = _data()
    searcher = EmbeddingIndex(method="csls").fit(index)
    with pytest.raises(ValueError, match="call fit_queries"):
        searcher.kneighbors(queries)
    with pytest.raises(ValueError, match="at least csls_k=10 queries"):
        searcher.fit_queries(sample[:3])
    searcher.fit_queries(sample)
    searcher.fit(index)  # a new index: the old penalties do not apply
    assert not hasattr(searcher, "penalties_")


def test_fit_queries_refuses_csls_k_above_the_index_size():
    """Check that fit_queries says at once that csls_k exceeds the index.

    It used to estimate penalties that no search could use, and the error
    came at the first kneighbors.
    """
    index, _, _, sample = _data()
    searcher = EmbeddingIndex(3, method="csls", csls_k=10).fit(index[:6])
    with pytest.raises(
        ValueError, match=r"csls_k=10 exceeds the number of index rows \(6\)"
    ):
        searcher.fit_queries(sample)
    assert not hasattr(searcher, "penalties_")


def _shifted_queries(seed=0, shift=10.0, noise=1.2):
    """Index rows, and queries and a sample displaced along one direction.

    Like short queries against long documents: the queries' mean differs from
    the documents' by an offset that says nothing about the answer.
    """
    index, queries, answers, sample = _data(seed, offset=0.0, noise=noise)
    direction = np.random.default_rng(seed + 1).normal(size=index.shape[1])
    direction *= shift / np.linalg.norm(direction)
    return index, queries + direction, answers, sample + direction


@pytest.mark.parametrize("method", ["nn", "csls"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_separate_centring_subtracts_each_sides_mean(method, dtype):
    """Check center="separate" against the engine on explicitly centred rows."""
    index, queries, _, sample = _shifted_queries()
    index, queries, sample = (a.astype(dtype) for a in (index, queries, sample))
    searcher = EmbeddingIndex(7, method=method, csls_k=5, center="separate")
    searcher.fit(index).fit_queries(sample)
    index_mean = index.mean(axis=0, dtype=np.float64)
    query_mean = sample.mean(axis=0, dtype=np.float64)
    assert_allclose(searcher.mean_, index_mean, rtol=1e-6)
    assert_allclose(searcher.query_mean_, query_mean, rtol=1e-6)
    assert searcher.query_mean_.dtype == np.float64
    centred_index = index - index_mean.astype(dtype)
    centred_sample = sample - query_mean.astype(dtype)
    penalties = None
    if method == "csls":
        penalties = csls_penalties(centred_sample, centred_index, csls_k=5)
        assert_allclose(searcher.penalties_, penalties, atol=1e-5)
    expected_scores, expected = kneighbors(
        queries - query_mean.astype(dtype),
        centred_index,
        7,
        method=method,
        csls_k=5,
        index_penalties=penalties,
    )
    scores, indices = searcher.kneighbors(queries)
    assert_array_equal(indices, expected)
    assert_allclose(scores, expected_scores, atol=1e-5)


def test_separate_centring_removes_a_query_offset():
    """Check that centring queries on their own mean undoes a common offset.

    With the index mean subtracted from both sides, the offset dominates
    every query and recall collapses; with each side's own mean it is gone.
    """
    index, queries, answers, sample = _shifted_queries()
    unshifted = _data(offset=0.0, noise=1.2)[1]
    plain = EmbeddingIndex(10).fit(index).kneighbors(unshifted)[1]
    shared = EmbeddingIndex(10, center=True).fit(index).kneighbors(queries)[1]
    separate = EmbeddingIndex(10, center="separate").fit(index)
    found = separate.fit_queries(sample).kneighbors(queries)[1]
    assert recall_at_k(answers, shared) < 0.5 * recall_at_k(answers, found)
    # As good as searching the queries without the offset.
    assert recall_at_k(answers, found) >= recall_at_k(answers, plain) - 0.02


def test_separate_centring_needs_a_query_sample():
    """Check the error before fit_queries, and that a new index forgets the mean."""
    index, queries, _, sample = _shifted_queries()
    searcher = EmbeddingIndex(center="separate").fit(index)
    with pytest.raises(ValueError, match=r"call fit_queries\(queries\)"):
        searcher.kneighbors(queries)
    searcher.fit_queries(sample)
    scores, indices = searcher.kneighbors(queries)
    for row in (0, 17, 149):
        one_scores, one = searcher.kneighbors(queries[row : row + 1])
        assert_array_equal(one[0], indices[row])
        assert_allclose(one_scores[0], scores[row], atol=1e-12)
    searcher.fit(index)
    assert not hasattr(searcher, "query_mean_")
    with pytest.raises(InvalidParameterError):
        EmbeddingIndex(center="queries").fit(index)
    # A query minus the mean of itself alone is the zero vector.
    with pytest.raises(ValueError, match="got 1 query"):
        searcher.fit_queries(sample[:1])


def test_bad_queries_and_parameters():
    """Check clear errors for queries of another width and impossible k."""
    index, queries, _, _ = _data()
    searcher = EmbeddingIndex().fit(index)
    with pytest.raises(ValueError, match="in the index's space"):
        searcher.kneighbors(queries[:, :5])
    with pytest.raises(ValueError, match="between 1 and the number of index rows"):
        searcher.kneighbors(queries, 5000)
    with pytest.raises(InvalidParameterError):
        EmbeddingIndex(backend="annoy").fit(index)
    with pytest.raises(ValueError, match="must be an integer"):
        searcher.kneighbors(queries, True)


def test_dataframe_columns_must_match_the_index():
    """Check that queries with the index's column names in another order fail.

    Columns are matched by position, so reordered names would silently search
    the wrong coordinates; scikit-learn's feature-name check refuses them.
    """
    pd = pytest.importorskip("pandas")
    index, queries, _, _ = _data()
    names = [f"x{i}" for i in range(index.shape[1])]
    searcher = EmbeddingIndex(5).fit(pd.DataFrame(index, columns=names))
    same = searcher.kneighbors(pd.DataFrame(queries, columns=names))
    assert_array_equal(same[1], EmbeddingIndex(5).fit(index).kneighbors(queries)[1])
    reordered = pd.DataFrame(queries[:, ::-1], columns=names[::-1])
    with pytest.raises(ValueError, match="feature names"):
        searcher.kneighbors(reordered)


# ------------------------------------------------------------------- FAISS
@pytest.mark.parametrize("center", [False, True, "separate"])
def test_faiss_flat_matches_numpy(center):
    """Check that FAISS's exact inner products give the numpy neighbours."""
    pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    index, queries, _, _ = _data()
    index, queries = index.astype(np.float32), queries.astype(np.float32)
    exact = EmbeddingIndex(10, center=center).fit(index).fit_queries(queries)
    flat = EmbeddingIndex(10, center=center, backend="faiss-flat", batch_size=64)
    flat.fit(index).fit_queries(queries)
    scores, indices = flat.kneighbors(queries)
    expected_scores, expected = exact.kneighbors(queries)
    # float32 kernels differ in rounding: compare scores, and neighbours where
    # the scores are not within rounding of each other.
    assert_allclose(scores, expected_scores, atol=1e-5)
    distinct = np.abs(np.diff(expected_scores, axis=1)).min(axis=1) > 1e-5
    assert_array_equal(indices[distinct], expected[distinct])


@pytest.mark.parametrize("backend", ["faiss-flat", "faiss-hnsw"])
def test_faiss_takes_float64_rows_beyond_float32_range(backend):
    """Check that rows too large for float32 are scaled before the cast.

    Cosine search ignores a row's scale, but float64 rows with entries near
    1e39 became inf in the float32 cast that came first: RuntimeWarnings and
    index -1 for every query.
    """
    pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    index, queries, _, _ = _data(n_index=500, n_queries=20)
    search = EmbeddingIndex(5, center=True, backend=backend)
    scores, expected = search.fit(index).kneighbors(queries)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        big_scores, indices = search.fit(index * 1e39).kneighbors(queries * 1e39)
    assert_array_equal(indices, expected)
    assert_allclose(big_scores, scores, atol=1e-5)


@pytest.mark.parametrize("method", ["nn", "csls"])
def test_faiss_shortlists_tied_with_half_the_index_stay_within_memory(method):
    """Check queries next to a row copied through half of a FAISS index.

    Their shortlists hold every copy. The whole batch was widened at once
    (about 60 bytes per query and index row), and CSLS scored every copy
    again as a possible row outside the shortlist, copying it per query:
    71 and 321 MiB here. Widened queries now come in groups sized by
    scikit-learn's working_memory, and shortlisted rows are not scored twice.
    """
    pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    import tracemalloc

    rng = np.random.default_rng(0)
    index = rng.normal(size=(20000, 16)).astype(np.float32)
    index[:10000] = index[0]
    queries = index[0] + 1e-3 * rng.normal(size=(100, 16)).astype(np.float32)
    flat = EmbeddingIndex(5, method=method, backend="faiss-flat").fit(index)
    exact = EmbeddingIndex(5, method=method).fit(index)
    if method == "csls":
        flat.fit_queries(queries)
        exact.fit_queries(queries)
    with sklearn.config_context(working_memory=16):
        flat.kneighbors(queries[:2])  # imports and caches
        tracemalloc.start()
        try:
            scores, found = flat.kneighbors(queries)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    expected_scores, expected = exact.kneighbors(queries)
    # The copies tie: the first five, rows 0-4, for every query.
    assert_array_equal(found, expected)
    assert_array_equal(found, np.tile(np.arange(5), (100, 1)))
    assert_allclose(scores, expected_scores, atol=1e-5)
    assert peak < 32 * 2**20, peak / 2**20


def test_faiss_csls_reranks_the_shortlist():
    """Check FAISS + CSLS against the exact CSLS when the shortlist is the index."""
    pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    index, queries, _, sample = _data(n_index=500)
    index, queries = index.astype(np.float32), queries.astype(np.float32)
    params = {"method": "csls", "csls_k": 5, "center": True}
    exact = EmbeddingIndex(5, **params).fit(index).fit_queries(sample)
    faiss_csls = EmbeddingIndex(5, backend="faiss-flat", shortlist=500, **params)
    faiss_csls.fit(index).fit_queries(sample)
    assert_allclose(faiss_csls.penalties_, exact.penalties_, atol=1e-5)
    scores, indices = faiss_csls.kneighbors(queries)
    expected_scores, expected = exact.kneighbors(queries)
    assert_allclose(scores, expected_scores, atol=1e-5)
    distinct = np.abs(np.diff(expected_scores, axis=1)).min(axis=1) > 1e-5
    assert_array_equal(indices[distinct], expected[distinct])


@pytest.mark.parametrize("shortlist", [1, 3])
@pytest.mark.parametrize("backend", ["faiss-flat", "faiss-hnsw"])
def test_faiss_csls_and_the_shortlist(backend, shortlist):
    """Check FAISS + CSLS against the rows its shortlist holds.

    HNSW re-ranks the ``shortlist`` best rows, no more: the rows fetched past
    the cut to find ties there were all re-ranked, so that with shortlist=1
    the second row by cosine could win, and a copy of an unrelated row
    changed a query's answer. The flat index also scores the rows outside
    the shortlist whose low penalty lets them rank, so its answers are the
    numpy backend's exact CSLS whatever the shortlist.
    """
    pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    rng = np.random.default_rng(0)
    index = rng.normal(size=(40, 6)).astype(np.float32)
    queries = rng.normal(size=(30, 6)).astype(np.float32)
    sample = rng.normal(size=(50, 6)).astype(np.float32)
    params = {"method": "csls", "csls_k": 1, "center": False}
    for rows in (index, np.vstack([index, index[:5]])):
        search = EmbeddingIndex(1, backend=backend, shortlist=shortlist, **params)
        search.fit(rows).fit_queries(sample)
        found = search.kneighbors(queries)[1][:, 0]
        unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        cosines = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
        cut = -np.sort(-cosines, axis=1)[:, shortlist - 1 : shortlist]
        csls = np.where(cosines >= cut - 1e-6, 2 * cosines - search.penalties_, -np.inf)
        in_shortlist = csls.argmax(axis=1)
        exact = EmbeddingIndex(1, **params).fit(rows).fit_queries(sample)
        expected = exact.kneighbors(queries)[1][:, 0]
        # The two rules differ here, so the test tells them apart.
        assert (in_shortlist != expected).any()
        assert_array_equal(found, expected if backend == "faiss-flat" else in_shortlist)


@pytest.mark.parametrize("center", [False, True])
def test_faiss_flat_csls_is_exact_on_real_vectors(center):
    """Check faiss-flat + CSLS against the numpy search on real embeddings.

    Before the rows outside the shortlist were checked, 13 of these 500
    queries (uncentred; 487 with a shortlist of 10) got other neighbours
    than the exact search.
    """
    pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    vectors = load_fortunes(views=["e5"]).views["e5"].astype(np.float32)
    index, queries = vectors[:2500], vectors[2500:]
    params = {"method": "csls", "center": center}
    exact = EmbeddingIndex(10, **params).fit(index).fit_queries(queries)
    want_scores, want = exact.kneighbors(queries)
    for shortlist in (10, 100):
        flat = EmbeddingIndex(10, backend="faiss-flat", shortlist=shortlist, **params)
        scores, found = flat.fit(index).fit_queries(queries).kneighbors(queries)
        assert_array_equal(found, want)
        assert_allclose(scores, want_scores, atol=1e-5)


def test_faiss_hnsw_finds_nearly_the_exact_neighbours():
    """Check that the HNSW graph's neighbours are mostly the exact ones."""
    pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    index, queries, answers, sample = _data(n_index=3000)
    exact = EmbeddingIndex(10, center=True).fit(index).kneighbors(queries)[1]
    hnsw = EmbeddingIndex(10, center=True, backend="faiss-hnsw").fit(index)
    approximate = hnsw.kneighbors(queries)[1]
    overlap = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(approximate, exact, strict=True)]
    )
    assert overlap >= 0.95
    assert recall_at_k(answers, approximate) >= recall_at_k(answers, exact) - 0.02
    csls = EmbeddingIndex(10, method="csls", center=True, backend="faiss-hnsw")
    found = csls.fit(index).fit_queries(sample).kneighbors(queries)[1]
    assert recall_at_k(answers, found) >= recall_at_k(answers, exact) - 0.02


def test_missing_faiss_says_how_to_install(monkeypatch):
    """Check that a FAISS backend without faiss names the extra to install."""
    monkeypatch.setitem(sys.modules, "faiss", None)
    index, _, _, _ = _data(n_index=500)
    with pytest.raises(ImportError, match=r"skembed\[faiss\]"):
        EmbeddingIndex(backend="faiss-hnsw").fit(index)
    EmbeddingIndex(backend="numpy").fit(index)


@pytest.mark.parametrize("backend", ["numpy", "faiss-flat", "faiss-hnsw"])
def test_fitted_index_survives_pickling(backend):
    """Check that a pickled index answers as the original does."""
    if backend != "numpy":
        pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    index, queries, _, sample = _data(n_index=600)
    searcher = EmbeddingIndex(5, method="csls", center=True, backend=backend)
    searcher.fit(index).fit_queries(sample)
    restored = pickle.loads(pickle.dumps(searcher))
    scores, indices = searcher.kneighbors(queries)
    restored_scores, restored_indices = restored.kneighbors(queries)
    assert_array_equal(restored_indices, indices)
    assert_allclose(restored_scores, scores)


@pytest.mark.parametrize("backend", ["faiss-flat", "faiss-hnsw"])
@pytest.mark.parametrize("method", ["nn", "csls"])
def test_faiss_takes_numpy_integers(backend, method):
    """Check numpy integer parameters on the FAISS backends.

    Grids built with numpy (np.arange) give np.int64 values, which FAISS's
    bindings refuse unless converted; the search must equal the one with
    Python integers.
    """
    pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    index, queries, _, sample = _data(n_index=400, n_queries=20)
    params = {"method": method}
    if backend == "faiss-hnsw":
        params.update(hnsw_neighbors=16, ef_construction=100, ef_search=100)
    else:
        params.update(shortlist=50)
    results = []
    for convert in (int, np.int64):
        typed = {
            name: convert(value) for name, value in params.items() if name != "method"
        }
        searcher = EmbeddingIndex(
            convert(3), csls_k=convert(5), backend=backend, method=method, **typed
        ).fit(index)
        if method == "csls":
            searcher.fit_queries(sample)
        results.append(searcher.kneighbors(queries, convert(3)))
    assert_array_equal(results[0][1], results[1][1])
    assert_allclose(results[0][0], results[1][0])


@pytest.mark.parametrize("method", ["nn", "csls"])
def test_hnsw_padding_is_minus_one_with_minus_infinity(method):
    """Check the places a weak HNSW graph cannot fill: index -1, score -inf.

    A graph of 2 links per node built with a search width of 1 cannot reach
    every row, so asking for all of them leaves places empty, for nn as for
    CSLS (FAISS itself pads nn with the lowest float).
    """
    pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    rng = np.random.default_rng(0)
    index, queries = rng.normal(size=(200, 16)), rng.normal(size=(30, 16))
    searcher = EmbeddingIndex(
        200,
        method=method,
        backend="faiss-hnsw",
        hnsw_neighbors=2,
        ef_construction=1,
        ef_search=1,
    ).fit(index)
    if method == "csls":
        searcher.fit_queries(queries)
    scores, indices = searcher.kneighbors(queries)
    missing = indices < 0
    assert missing.any()
    assert_array_equal(np.isneginf(scores), missing)
    # Found rows come first, best first.
    assert not (missing[:, :-1] & ~missing[:, 1:]).any()
    found = np.where(missing, -np.inf, scores)
    assert (np.diff(found, axis=1)[~missing[:, 1:]] <= 1e-12).all()


def test_numpy_booleans_choose_the_centring():
    """Check that center=np.False_ does not centre and np.True_ does."""
    index, queries, _, _ = _data(n_queries=20)
    plain = EmbeddingIndex(5, center=False).fit(index)
    off = EmbeddingIndex(5, center=np.False_).fit(index)
    assert off.mean_ is None
    assert_array_equal(off.kneighbors(queries)[1], plain.kneighbors(queries)[1])
    on = EmbeddingIndex(5, center=np.True_).fit(index)
    assert_allclose(on.mean_, EmbeddingIndex(5, center=True).fit(index).mean_)


@pytest.mark.parametrize("backend", ["numpy", "faiss-flat"])
def test_centring_rows_near_the_float64_limit(backend):
    """Check the mean of finite rows whose column sums overflow float64."""
    if backend != "numpy":
        pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    index = rng.random((40, 5)) * 1e307 + 5e307
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted = EmbeddingIndex(3, center=True, backend=backend).fit(index)
        found = fitted.kneighbors(index[:5])[1]
    small = EmbeddingIndex(3, center=True).fit(index / 1e300)
    assert_allclose(fitted.mean_ / 1e300, small.mean_, rtol=1e-12)
    assert_array_equal(found, small.kneighbors(index[:5] / 1e300)[1])


@pytest.mark.parametrize("backend", ["numpy", "faiss-flat"])
@pytest.mark.parametrize(("dtype", "big"), [(np.float32, 3e38), (np.float64, 1.7e308)])
def test_centring_whose_difference_overflows(backend, dtype, big):
    """Check rows that overflow only once the mean is subtracted."""
    if backend != "numpy":
        pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    index = np.array([[big, 1.0], [-big, 2.0], [-big, -1.0], [big / 3, 5.0]], dtype)
    fitted = EmbeddingIndex(4, center=True, backend=backend).fit(index)
    scores, found = fitted.kneighbors(np.array([[1.0, 0.0]], dtype))
    # The mean is about (-big / 6, 1.75): rows 0 and 3 point along +x, 1 and
    # 2 along -x, each pair in row order.
    assert_array_equal(found, [[0, 3, 1, 2]])
    assert_allclose(scores, [[1.0, 1.0, -1.0, -1.0]], atol=1e-6)


def test_float16_rows_are_searched_in_float32():
    """Check float16 rows: stored and searched in float32, not float64."""
    index, queries, _, _ = _data()
    half = index.astype(np.float16)
    searcher = EmbeddingIndex(center=True).fit(half)
    assert searcher._rows.dtype == np.float32
    expected = EmbeddingIndex(center=True).fit(half.astype(np.float32))
    for got, want in zip(
        searcher.kneighbors(queries.astype(np.float16)),
        expected.kneighbors(queries.astype(np.float16).astype(np.float32)),
        strict=True,
    ):
        assert_array_equal(got, want)


def test_float16_frames_are_searched_in_float32():
    """Check a DataFrame of float16 columns is held as a float16 array is."""
    index, queries, _, _ = _data()
    half = pd.DataFrame(index.astype(np.float16))
    searcher = EmbeddingIndex(center=True).fit(half)
    assert searcher._rows.dtype == np.float32
    expected = EmbeddingIndex(center=True).fit(index.astype(np.float16))
    scores, _ = searcher.kneighbors(pd.DataFrame(queries.astype(np.float16)))
    # A frame's values can be laid out by column: products summed in another
    # order, scores equal to rounding (and rows of tied scores in any order).
    want, _ = expected.kneighbors(queries.astype(np.float16))
    assert_allclose(scores, want, rtol=1e-5, atol=1e-6)
    # A frame mixing float16 with wider columns is widened as before.
    mixed = half.astype({0: np.float64})
    assert EmbeddingIndex().fit(mixed)._rows.dtype == np.float64


def test_empty_inputs_name_their_parameter():
    index, queries, _, _ = _data()
    with pytest.raises(ValueError, match="X has no rows"):
        EmbeddingIndex().fit(index[:0])
    searcher = EmbeddingIndex().fit(index)
    with pytest.raises(ValueError, match="queries has no rows"):
        searcher.kneighbors(queries[:0])


def test_a_vector_that_is_not_a_matrix_is_named_with_the_fix():
    """Check a 1-D query (one vector) and a 3-D array: errors naming the input.

    scikit-learn's "Expected 2D array" named neither the input nor the
    search, and offered ``reshape(-1, 1)``, which makes a vector into rows of
    one feature each.
    """
    index, queries, _, _ = _data(n_index=500, n_queries=20)
    searcher = EmbeddingIndex(3).fit(index)
    for call, name in [
        (lambda q: searcher.kneighbors(q), "queries"),
        (lambda q: searcher.fit_queries(q), "queries"),
        (lambda q: EmbeddingIndex().fit(q), "X"),
        (lambda q: kneighbors(q, index), "queries"),
        (lambda q: kneighbors(queries, q), "index"),
        (lambda q: csls_penalties(q, index), "queries"),
    ]:
        with pytest.raises(
            ValueError, match=rf"^{name} is a 1-D array .*reshape\(1, -1\)"
        ):
            call(queries[0])
        with pytest.raises(ValueError, match=rf"^{name} is a 3-D array"):
            call(queries[None])
        with pytest.raises(ValueError, match=rf"^{name} is a 1-D array"):
            call(list(queries[0]))
    # One query as a row: the neighbours of that query in the batch.
    one = searcher.kneighbors(queries[0].reshape(1, -1))[1]
    assert_array_equal(one, searcher.kneighbors(queries)[1][:1])


def test_float64_rows_whose_norm_overflows_are_not_zeroed():
    # A finite float64 row whose norm exceeds 1.8e308 is a direction like
    # any other, not a zero row.
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(6, 384))
    docs[0] = 1e307
    scores, found = EmbeddingIndex(2).fit(docs).kneighbors(np.ones((1, 384)))
    assert found[0, 0] == 0
    assert_allclose(scores[0, 0], 1.0)


@pytest.mark.parametrize("backend", ["faiss-flat", "faiss-hnsw"])
@pytest.mark.parametrize("method", ["nn", "csls"])
def test_faiss_keeps_the_first_of_equal_rows_at_the_cut(backend, method):
    """Check that FAISS returns equal rows in row order, as numpy does.

    FAISS keeps the later of two equal rows at its cut; the first one, which
    the numpy backend returns, was lost. One-hot rows make every cosine a
    single exact product, so the copies tie exactly on any machine.
    """
    pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    eye = np.eye(16, dtype=np.float32)
    index = np.vstack([eye, eye[:8], eye[:4]])  # rows 16-27 repeat rows 0-7, 0-3
    queries = np.abs(np.random.default_rng(0).normal(size=(50, 16))).astype(np.float32)
    # Every row has penalty 1 (two sample queries on its axis): CSLS then
    # ranks as cosine does, and a shortlist of 3 only loses rows at its cut.
    sample = np.vstack([eye, eye])
    params = {"method": method, "csls_k": 2}
    exact = EmbeddingIndex(3, **params).fit(index).fit_queries(sample)
    other = EmbeddingIndex(3, backend=backend, shortlist=3, **params)
    other.fit(index).fit_queries(sample)
    expected_scores, expected = exact.kneighbors(queries)
    scores, found = other.kneighbors(queries)
    assert_array_equal(found, expected)
    assert_allclose(scores, expected_scores, atol=1e-6)


@pytest.mark.parametrize("backend", ["faiss-flat", "faiss-hnsw"])
@pytest.mark.parametrize("method", ["nn", "csls"])
def test_faiss_copies_of_real_rows_tie_in_any_batch(backend, method):
    """Check that copies of real embeddings tie however FAISS rounds them.

    A flat index scores a large batch with a float32 matrix product, which
    rounded bitwise-equal rows an ulp apart by their place in the block: in a
    batch of 500 the copies 100 and 2000 of document 5 came before it (or
    pushed it out of the top 2), while the same query alone found
    [5, 100, 2000]. Scores must be equal for copies, rows in row order, and
    a query's neighbours the same alone as in its batch.
    """
    pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    A = load_fortunes(views=["minilm"]).views["minilm"]
    docs = A[:2500].copy()
    docs[[100, 2000]] = docs[5]
    docs[7] = docs[1500]
    queries = A[2500:].copy()
    queries[0] = docs[5]
    queries[1] = docs[1500]
    index = EmbeddingIndex(3, center=True, backend=backend, method=method).fit(docs)
    index.fit_queries(queries)
    scores, found = index.kneighbors(queries)
    assert_array_equal(found[0], [5, 100, 2000])
    assert scores[0, 0] == scores[0, 1] == scores[0, 2]
    assert_array_equal(found[1, :2], [7, 1500])
    assert scores[1, 0] == scores[1, 1]
    for q in (0, 1, 250, 499):
        alone_scores, alone = index.kneighbors(queries[q : q + 1])
        assert_array_equal(alone[0], found[q])
        assert_array_equal(alone_scores[0], scores[q])


@pytest.mark.parametrize("backend", ["numpy", "faiss-flat"])
def test_an_index_without_a_direction_is_refused(backend):
    """Check an index whose rows are all zero, as given or once centred.

    Zero rows have cosine 0 with every query: the search returned rows 0, 1,
    2, ... with score 0 for any query, which looked like an answer. A failed
    refit keeps the fitted index.
    """
    if backend != "numpy":
        pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4))
    index = EmbeddingIndex(3, backend=backend, center=False).fit(X)
    expected = index.kneighbors(X[:2])
    with pytest.raises(ValueError, match="Every row of X is zero: "):
        index.fit(np.zeros((5, 4)))
    assert_array_equal(index.kneighbors(X[:2])[1], expected[1])
    for copies in (1, 3):
        with pytest.raises(ValueError, match="zero once centred.*center=False"):
            EmbeddingIndex(1, backend=backend, center=True).fit(np.ones((copies, 4)))
    EmbeddingIndex(1, backend=backend, center=False).fit(np.ones((1, 4)))


def test_parameters_changed_after_fit_are_refused_not_mixed():
    """Check set_params(center=...) and set_params(csls_k=...) after fit.

    The rows are stored centred or not at fit, and the penalties estimated
    with one csls_k: queries prepared by the new value met rows prepared by
    the old one (center=False -> "separate"), and CSLS scores mixed two
    neighbourhood sizes, both with no error.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)) + 2
    Q = rng.normal(size=(40, 8)) + 2
    index = EmbeddingIndex(5, center=False).fit(X)
    index.set_params(center="separate").fit_queries(Q)
    with pytest.raises(ValueError, match="fit stored the index rows as they are"):
        index.kneighbors(Q)
    expected = EmbeddingIndex(5, center="separate").fit(X).fit_queries(Q).kneighbors(Q)
    assert_array_equal(index.fit(X).fit_queries(Q).kneighbors(Q)[1], expected[1])
    index = EmbeddingIndex(5, method="csls", csls_k=5).fit(X).fit_queries(Q)
    index.set_params(csls_k=20)
    with pytest.raises(ValueError, match="estimated with csls_k=5"):
        index.kneighbors(Q)
    expected = EmbeddingIndex(5, method="csls", csls_k=20).fit(X).fit_queries(Q)
    assert_array_equal(index.fit_queries(Q).kneighbors(Q)[0], expected.kneighbors(Q)[0])


def _index_data(seed=0):
    rng = np.random.default_rng(seed)
    docs = rng.normal(size=(200, 8)) + 1.0
    sample = rng.normal(size=(100, 8)) + 2.0
    queries = rng.normal(size=(20, 8)) + 2.0
    return docs, sample, queries


def test_penalties_follow_the_centring_of_their_queries():
    """Check penalties estimated under one centring and used under another.

    center changed from "separate" to True after fit_queries, or the query
    mean refreshed by fit_queries under method="nn": the old penalties were
    used with queries centred otherwise, and 20 of 20 queries got other
    neighbours than a refitted index, without an error.
    """
    docs, sample, queries = _index_data()
    index = EmbeddingIndex(5, method="csls", center="separate").fit(docs)
    index.fit_queries(sample)
    index.set_params(center=True)
    with pytest.raises(ValueError, match="penalties_ were estimated on queries"):
        index.kneighbors(queries)
    index.fit_queries(sample)
    refit = EmbeddingIndex(5, method="csls", center=True).fit(docs).fit_queries(sample)
    for got, want in zip(
        index.kneighbors(queries), refit.kneighbors(queries), strict=True
    ):
        assert_array_equal(got, want)

    index = EmbeddingIndex(5, method="csls", center="separate").fit(docs)
    index.fit_queries(sample)
    index.set_params(method="nn").fit_queries(sample + 1.0)
    index.set_params(method="csls")
    with pytest.raises(ValueError, match='again with method="csls"'):
        index.kneighbors(queries)


def test_an_interrupted_fit_queries_keeps_the_state_before_it(monkeypatch):
    """Check fit_queries failing between the query mean and the penalties.

    The new sample's query mean was kept with the old sample's penalties,
    and every query was searched with that mix.
    """
    import skembed._index as index_module

    docs, sample, queries = _index_data()
    index = EmbeddingIndex(5, method="csls", center="separate").fit(docs)
    index.fit_queries(sample)
    before = index.kneighbors(queries)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(index_module, "unit_index_penalties", interrupted)
    with pytest.raises(KeyboardInterrupt):
        index.fit_queries(sample + 1.0)
    monkeypatch.undo()
    for got, want in zip(index.kneighbors(queries), before, strict=True):
        assert_array_equal(got, want)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"method": "CSLS"}, "'method' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"n_neighbors": 0}, "'n_neighbors' parameter"),
    ],
)
def test_parameters_set_after_fit_are_validated(params, match):
    """Check set_params values the search would misread: 'CSLS' meant cosine."""
    docs, sample, queries = _index_data()
    index = EmbeddingIndex(5).fit(docs)
    index.set_params(**params)
    with pytest.raises(InvalidParameterError, match=match):
        index.kneighbors(queries, n_neighbors=3)
    with pytest.raises(InvalidParameterError, match=match):
        index.fit_queries(sample)


def test_another_backend_after_fit_is_refused():
    """Check a backend changed after fit: the numpy rows were searched anyway."""
    docs, sample, queries = _index_data()
    index = EmbeddingIndex(5).fit(docs)
    index.set_params(backend="faiss-flat")
    with pytest.raises(ValueError, match="fit built a 'numpy' index"):
        index.kneighbors(queries)
    faiss = pytest.importorskip("faiss")
    assert faiss is not None
    index = EmbeddingIndex(5, backend="faiss-flat").fit(docs)
    index.set_params(backend="faiss-hnsw")
    with pytest.raises(ValueError, match="fit built a 'faiss-flat' index"):
        index.kneighbors(queries)


def test_separate_centring_refuses_a_sample_of_equal_queries():
    """Check copies of one query as the sample: every query became zero."""
    docs, _, queries = _index_data()
    index = EmbeddingIndex(3, center="separate").fit(docs)
    with pytest.raises(ValueError, match="are all equal"):
        index.fit_queries(np.vstack([queries[:1]] * 5))
    index.fit_queries(queries)
    assert index.kneighbors(queries[:1])[0][0, 0] > 0


def test_an_hnsw_search_leaves_the_shared_graph_as_it_was():
    """Check a search passes its efSearch with the call, not on the index.

    Each search set efSearch on the shared FAISS index, then walked it: a
    search of another thread in between changed the walk (a k=1 search beside
    a k=300 one gave other answers in 54 of 100 runs).
    """
    pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    index, queries, _, _ = _data(n_index=500)
    hnsw = EmbeddingIndex(1, backend="faiss-hnsw", ef_search=16).fit(index)
    before = hnsw.faiss_index_.hnsw.efSearch
    alone = hnsw.kneighbors(queries[:20])
    hnsw.kneighbors(queries[:20], n_neighbors=300)
    assert hnsw.faiss_index_.hnsw.efSearch == before
    again = hnsw.kneighbors(queries[:20])
    assert_array_equal(again[1], alone[1])


def test_a_refresh_of_fit_queries_serves_the_old_state_until_it_ends(monkeypatch):
    """Check searches during fit_queries see the previous state, whole.

    The new query mean was stored before the penalties were computed: a
    search of another thread during a refresh from a query log failed
    ("penalties_ were estimated on queries centred otherwise").
    """
    import skembed._index

    index, queries, _, sample = _data(n_index=400)
    searcher = EmbeddingIndex(5, method="csls", center="separate").fit(index)
    searcher.fit_queries(sample[: len(sample) // 2])
    expected = searcher.kneighbors(queries[:10])
    seen = []
    original = skembed._index.unit_index_penalties

    def searching(*args, **kwargs):
        # A search in the middle of the refresh, as another thread's would be.
        seen.append(searcher.kneighbors(queries[:10]))
        return original(*args, **kwargs)

    monkeypatch.setattr(skembed._index, "unit_index_penalties", searching)
    searcher.fit_queries(sample[len(sample) // 2 :])
    assert seen
    for scores, rows in seen:
        assert_array_equal(rows, expected[1])
        assert_allclose(scores, expected[0])


def _prepared_whole(searcher, queries):
    """kneighbors as the queries prepared all at once give it: the reference."""
    prepared = searcher._prepare(queries, searcher._dtype, searcher._query_mean())
    return searcher._search_prepared(prepared, searcher.n_neighbors)


@pytest.mark.parametrize("backend", ["numpy", "faiss-flat"])
@pytest.mark.parametrize("method", ["nn", "csls"])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n_queries", [1, 2, 301])
def test_queries_prepared_in_blocks_give_the_whole_search_bit_for_bit(
    backend, method, order, n_queries
):
    """Check that queries prepared a block at a time change no bit of the result.

    The blocks are cut where the search cuts its own (the rounding of a
    block's product may depend on its rows), in the layout of the query
    matrix (column-major rows sum their norms in another order), never of a
    single row of several, with zero queries (one equal to the index mean,
    one of zeros) between them. Blocks of 3 rows (and FAISS batches of 50),
    with 301 queries, leave one row last.
    """
    if backend != "numpy":
        pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    index, queries, _, sample = _data(n_index=500, n_queries=n_queries)
    queries = np.asarray(queries, order=order)
    if n_queries > 2:
        queries[[10, 11, 12]] = queries[9]
        queries[40] = index.mean(axis=0)
        queries[41] = 0.0
    searcher = EmbeddingIndex(
        4, method=method, center=True, backend=backend, batch_size=50
    ).fit(index.astype(np.float32))
    if method == "csls":
        searcher.fit_queries(sample)
    # 0.015 MiB: blocks of 3 queries against 500 float32 rows.
    with sklearn.config_context(working_memory=0.015):
        scores, indices = searcher.kneighbors(queries)
        expected_scores, expected = _prepared_whole(searcher, queries)
    assert_array_equal(indices, expected)
    assert_array_equal(scores, expected_scores)


@pytest.mark.parametrize("backend", ["numpy", "faiss-flat"])
def test_kneighbors_prepares_the_queries_a_block_at_a_time(backend):
    """Check that kneighbors does not copy every query at once.

    Each query was centred and scaled in a copy of the whole query matrix,
    and float64 queries of a float32 index in a float64 one first: 15 MiB
    here (20 MiB with the copy of the queries left once the zero ones were
    set apart), with a search of a few MiB.
    """
    if backend != "numpy":
        pytest.importorskip("faiss", reason="the FAISS backends need faiss-cpu")
    import tracemalloc

    rng = np.random.default_rng(0)
    index = rng.normal(size=(1000, 64)) + 1.5
    queries = rng.normal(size=(20_000, 64)) + 1.5
    queries[::1000] = 0.0
    searcher = EmbeddingIndex(5, center=True, backend=backend, batch_size=1024)
    searcher.fit(index.astype(np.float32))
    with sklearn.config_context(working_memory=1):
        searcher.kneighbors(queries[:2])  # imports and caches
        tracemalloc.start()
        try:
            scores, indices = searcher.kneighbors(queries)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        expected_scores, expected = _prepared_whole(searcher, queries)
    assert_array_equal(indices, expected)
    assert_array_equal(scores, expected_scores)
    # The results (1.5 MiB), a block of prepared queries and the search's
    # 1 MiB (FAISS: its batch's exact scores), with room.
    assert peak < 8 * 2**20, peak / 2**20


@pytest.mark.parametrize("center", [False, True, "separate"])
def test_fit_queries_prepares_the_sample_a_block_at_a_time(center):
    """Check that fit_queries holds the prepared sample once, in the index dtype.

    The whole sample was centred (or copied) in its own dtype, then cast to
    the index's: float64 queries of a float32 index held 1.5 times their
    size (73 MiB here) before the search began. The pool is now filled a
    block at a time, each row as preparing the whole sample gives it.
    """
    import tracemalloc

    from skembed._neighbors import unit_index_penalties

    rng = np.random.default_rng(0)
    index = (rng.normal(size=(300, 64)) + 1.5).astype(np.float32)
    queries = rng.normal(size=(100_000, 64)) + 1.0
    searcher = EmbeddingIndex(5, method="csls", center=center).fit(index)
    with sklearn.config_context(working_memory=1):
        searcher.fit_queries(queries[:100])  # imports and caches
        tracemalloc.start()
        try:
            searcher.fit_queries(queries)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    pool = searcher._prepare(queries, searcher._dtype, searcher._query_mean())
    expected = unit_index_penalties(pool, searcher._rows, searcher.csls_k)
    assert_array_equal(searcher.penalties_, expected)
    # The float32 pool (24 MiB), a block of float64 rows being prepared (4
    # MiB) and the search's 1 MiB, with room; the queries are 49 MiB.
    assert peak < queries.nbytes, peak / 2**20
