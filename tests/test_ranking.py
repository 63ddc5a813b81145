"""Tests for the ranking metrics of skembed.metrics: Recall, MRR and NDCG at k."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import ndcg_score

from skembed.metrics import mrr_at_k, ndcg_at_k, recall_at_k


def _reference(relevant_sets, grades, retrieved, k):
    """Recall, MRR and NDCG from their definitions, one query at a time."""
    recalls, reciprocal, ndcgs = [], [], []
    for answers, gain_of, row in zip(relevant_sets, grades, retrieved, strict=True):
        top = [int(r) for r in row[:k]]
        found = [r for r in top if r in answers]
        recalls.append(len(found) / len(answers))
        first = next((i for i, r in enumerate(top) if r in answers), None)
        reciprocal.append(0.0 if first is None else 1 / (first + 1))
        dcg = sum(gain_of.get(r, 0.0) / np.log2(i + 2) for i, r in enumerate(top))
        ideal = sorted(gain_of.values(), reverse=True)[:k]
        idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
        ndcgs.append(dcg / idcg)
    return np.mean(recalls), np.mean(reciprocal), np.mean(ndcgs)


@st.composite
def _rankings(draw):
    n_index = draw(st.integers(5, 30))
    n_queries = draw(st.integers(1, 8))
    width = draw(st.integers(1, n_index))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    retrieved = np.array([rng.permutation(n_index)[:width] for _ in range(n_queries)])
    relevant = [
        set(rng.choice(n_index, size=rng.integers(1, 5), replace=False).tolist())
        for _ in range(n_queries)
    ]
    k = draw(st.integers(1, width))
    return relevant, retrieved, k


@given(_rankings())
def test_metrics_match_their_definitions(case):
    """Check the three metrics against a query-by-query reference, several labels."""
    relevant, retrieved, k = case
    grades = [dict.fromkeys(answers, 1.0) for answers in relevant]
    recall, mrr, ndcg = _reference(relevant, grades, retrieved, k)
    assert recall_at_k(relevant, retrieved, k=k) == pytest.approx(recall)
    assert mrr_at_k(relevant, retrieved, k=k) == pytest.approx(mrr)
    assert ndcg_at_k(relevant, retrieved, k=k) == pytest.approx(ndcg)


def test_label_forms_agree():
    """Check that an int array, lists, sets, a 2-D array and a sparse matrix agree."""
    retrieved = np.array([[3, 1, 4, 0], [2, 0, 1, 5], [5, 4, 3, 2]])
    single = np.array([1, 5, 0])
    forms = [
        single,
        single.tolist(),
        [[1], [5], [0]],
        np.array([[1], [5], [0]]),
        [{1}, {5}, {0}],
        sp.csr_array((np.ones(3), (np.arange(3), single)), shape=(3, 6)),
    ]
    for metric in (recall_at_k, mrr_at_k, ndcg_at_k):
        values = [metric(form, retrieved, k=3) for form in forms]
        assert values == pytest.approx([values[0]] * len(forms))
    assert recall_at_k(single, retrieved, k=3) == pytest.approx(1 / 3)
    assert mrr_at_k(single, retrieved, k=4) == pytest.approx((1 / 2 + 1 / 4) / 3)


def test_ragged_labels():
    """Check several relevant rows per query, of different counts."""
    retrieved = [[0, 1, 2], [5, 6, 7]]
    relevant = [[0, 9], [7]]
    assert recall_at_k(relevant, retrieved, k=3) == pytest.approx((1 / 2 + 1) / 2)
    assert mrr_at_k(relevant, retrieved, k=2) == pytest.approx(1 / 2)


@pytest.mark.parametrize("metric", [recall_at_k, mrr_at_k, ndcg_at_k])
def test_a_dense_relevance_matrix_is_refused_not_misread(metric):
    """Check that rows listed twice are refused, and a sparse matrix is advised.

    A dense 0/1 matrix (the y_true of scikit-learn's ndcg_score) read as row
    numbers named rows 0 and 1 as every query's answers: recall 0.5 here
    instead of 1.0, with no error. Repeats in ragged lists, which used to
    count once, are refused too, as they are in retrieved.
    """
    dense = np.array([[0, 1, 0, 0], [0, 0, 1, 1]])
    retrieved = [[1, 0], [2, 3]]
    for relevant in (dense, dense.tolist(), [[0, 9, 9], [7]]):
        with pytest.raises(ValueError, match="more than once.*csr_array"):
            metric(relevant, retrieved, k=2)
    assert metric(sp.csr_array(dense), retrieved, k=2) == 1.0


def test_graded_ndcg_matches_scikit_learn():
    """Check graded NDCG against sklearn.metrics.ndcg_score on a full ranking."""
    rng = np.random.default_rng(0)
    n_queries, n_index = 6, 20
    grades = rng.integers(0, 4, size=(n_queries, n_index)).astype(float)
    grades[:, 0] = 1  # every query has a relevant row
    scores = rng.normal(size=(n_queries, n_index))
    retrieved = np.argsort(-scores, axis=1)
    for k in (1, 5, 20):
        expected = ndcg_score(grades, scores, k=k)
        got = ndcg_at_k(sp.csr_array(grades), retrieved[:, :k], k=k)
        assert got == pytest.approx(expected)


def test_missing_results_are_never_relevant():
    """Check that -1 (FAISS's padding) counts as a miss and k=None uses all."""
    retrieved = [[-1, 2, -1], [4, -1, -1]]
    assert recall_at_k([2, 3], retrieved, k=None) == pytest.approx(0.5)
    assert mrr_at_k([2, 4], retrieved, k=None) == pytest.approx((1 / 2 + 1) / 2)


def test_perfect_and_empty_rankings():
    """Check 1 for relevant rows first and 0 when none is retrieved."""
    retrieved = np.array([[7, 8, 1], [3, 2, 1]])
    relevant = [[7, 8], [3, 2]]
    for metric in (recall_at_k, mrr_at_k, ndcg_at_k):
        assert metric(relevant, retrieved, k=2) == 1.0
        assert metric([[0], [0]], retrieved, k=3) == 0.0


@pytest.mark.parametrize(
    "relevant, retrieved, k, error, match",
    [
        ([1, 2], [[0, 1]], 1, ValueError, "2 entries, but retrieved has 1"),
        ([1], [[0, 1]], 3, ValueError, "k=3 is larger"),
        ([1], [[0, 0]], 2, ValueError, "lists an index row twice"),
        ([1], [[0.0, 1.0]], 2, TypeError, "must hold index row numbers"),
        ([[1], []], [[0], [1]], 1, ValueError, "query 1 has no relevant"),
        ([[], []], [[0], [1]], 1, ValueError, "query 0 has no relevant"),
        ([-1], [[0]], 1, ValueError, "negative row number"),
        ([1], [[0, -5]], 2, ValueError, "retrieved holds -5 for query 0"),
        ([1.5], [[0]], 1, TypeError, "relevance labels are index row"),
        ([["a"]], [[0]], 1, TypeError, "relevance labels are index row"),
        # A missing label turned the column to float: say it is missing.
        (
            pd.array([0, None], dtype="Int64"),
            [[0], [1]],
            1,
            ValueError,
            "missing label .* for query 1",
        ),
        ([[0, 1], [np.nan, 1]], [[0], [1]], 1, ValueError, "missing.*query 1"),
        # list(dict) is its keys: every query scored its own number (0.0 here)
        ({0: [1], 1: [0]}, [[1], [0]], 1, TypeError, "relevant is a mapping"),
        (np.zeros((1, 1, 1), int), [[0]], 1, ValueError, "has 3 dimensions"),
        (np.array(2), [[2, 3]], 2, ValueError, "relevant has 0 dimensions"),
    ],
)
def test_bad_input_is_refused(relevant, retrieved, k, error, match):
    """Check clear errors for mismatched, repeated, float or empty input."""
    with pytest.raises(error, match=match):
        recall_at_k(relevant, retrieved, k=k)


@pytest.mark.parametrize("metric", [recall_at_k, mrr_at_k, ndcg_at_k])
def test_retrieved_that_is_not_a_matrix_is_named(metric):
    """Check one query's results (1-D), a 3-D array and rows of unequal length.

    scikit-learn's "Expected 2D array" and numpy's "inhomogeneous shape"
    named neither ``retrieved`` nor the -1 that pads a short row.
    """
    with pytest.raises(ValueError, match=r"^retrieved is a 1-D array .*\[rows\]"):
        metric([2], np.array([4, 2, 7]), k=3)
    with pytest.raises(ValueError, match=r"^retrieved is a 1-D array"):
        metric([2], [4, 2, 7], k=3)
    with pytest.raises(ValueError, match=r"^retrieved is a 3-D array"):
        metric([2], np.array([[[4, 2, 7]]]), k=3)
    with pytest.raises(ValueError, match=r"^retrieved has rows of 3 and 2 .*-1"):
        metric([2, 0], [[4, 2, 7], [0, 1]], k=2)
    # The same results as a matrix, a short row padded with -1, are scored.
    assert metric([2, 0], [[4, 2, 7], [0, 1, -1]], k=2) > 0


def test_bad_grades_are_refused():
    """Check that negative grades and a wrong number of rows are refused."""
    with pytest.raises(ValueError, match="negative or non-finite grades"):
        ndcg_at_k(sp.csr_array(np.array([[-1.0, 1.0]])), [[0, 1]], k=2)
    with pytest.raises(ValueError, match="1 rows, but retrieved has 2"):
        ndcg_at_k(sp.csr_array(np.array([[0.0, 1.0]])), [[0], [1]], k=1)


def test_inputs_are_not_modified():
    """Check that the label and result arrays are left as they were."""
    retrieved = np.array([[2, -1, 0]])
    relevant = np.array([[0, 2]])
    copies = retrieved.copy(), relevant.copy()
    ndcg_at_k(relevant, retrieved, k=3)
    np.testing.assert_array_equal(retrieved, copies[0])
    np.testing.assert_array_equal(relevant, copies[1])


def test_repeated_sparse_entries_add_up():
    """Check that a COO matrix's repeated entries are one label with summed grade."""
    retrieved = np.array([[1, 0, 2]])
    repeated = sp.coo_array(
        (np.array([1.0, 2.0, 1.0]), (np.array([0, 0, 0]), np.array([2, 2, 0]))),
        shape=(1, 4),
    )
    summed = sp.csr_array(np.array([[1.0, 0.0, 3.0, 0.0]]))
    data_before = repeated.data.copy()
    assert ndcg_at_k(repeated, retrieved, k=3) == pytest.approx(
        ndcg_at_k(summed, retrieved, k=3)
    )
    assert recall_at_k(repeated, retrieved, k=2) == pytest.approx(0.5)
    np.testing.assert_array_equal(repeated.data, data_before)
    assert repeated.nnz == 3


@pytest.mark.parametrize(
    "dtype, first, second",
    [(np.uint8, 200, 100), (np.int8, 100, 100), (np.uint16, 60000, 10000)],
)
def test_repeated_sparse_entries_add_up_beyond_their_dtype(dtype, first, second):
    """Check repeated COO grades of a narrow dtype: summed as numbers, not wrapped.

    uint8 grades 200 and 100 for one row summed to 44 in uint8, and NDCG
    ranked with that grade without a word (an int8 sum beyond 127 was
    refused as a negative grade).
    """
    retrieved = np.array([[5, 2]])
    data = np.array([first, second, 1]).astype(dtype)
    repeated = sp.coo_array(
        (data, (np.array([0, 0, 0]), np.array([2, 2, 5]))), shape=(1, 8)
    )
    total = float(first + second)
    summed = sp.csr_array((np.array([total, 1.0]), ([0, 0], [2, 5])), shape=(1, 8))
    assert ndcg_at_k(repeated, retrieved, k=2) == pytest.approx(
        ndcg_at_k(summed, retrieved, k=2)
    )
    np.testing.assert_array_equal(repeated.data, data)


def test_row_numbers_near_the_int64_limit():
    """Check ids far beyond the number of queries, and unsigned ids past int64."""
    big = 2**62
    assert recall_at_k([3, big], [[3], [big]], k=1) == 1.0
    assert recall_at_k([3, big], [[big], [3]], k=1) == 0.0
    assert mrr_at_k([[big, 5], [2**63 - 1]], [[7, big], [2**63 - 1, 1]], k=2) == 0.75
    too_big = np.array([[2**63 + 5], [4]], dtype=np.uint64)
    with pytest.raises(ValueError, match="retrieved holds a row number above"):
        recall_at_k([3, 4], too_big, k=1)
    with pytest.raises(ValueError, match="relevant holds a row number above"):
        recall_at_k(too_big.ravel(), [[3], [4]], k=1)
    with pytest.raises(ValueError, match=r"relevant\[0\] holds a row number above"):
        # Ragged: read query by query.
        recall_at_k([too_big[0], np.array([4, 5])], [[3], [4]], k=1)


def test_the_pair_kneighbors_returns_is_named():
    """Check (scores, indices) given as retrieved says to pass the indices.

    It was read as one 3-D array: "Found array with dim 3".
    """
    from skembed import kneighbors

    rng = np.random.default_rng(0)
    index = rng.normal(size=(20, 4))
    for metric in (recall_at_k, mrr_at_k, ndcg_at_k):
        with pytest.raises(ValueError, match=r"kneighbors\(\.\.\.\)\[1\]"):
            metric(np.arange(5), kneighbors(index[:5], index, k=3), k=3)
