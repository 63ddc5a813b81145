"""Ranking metrics of a search against relevance labels: Recall, MRR, NDCG at k.

A search returns, for every query, the index rows it ranks best
(:func:`skembed.kneighbors`, :meth:`skembed.EmbeddingIndex.kneighbors`);
relevance labels say which index rows answer each query. Labels come in
three forms:

- one relevant row per query: an integer array of shape ``(n_queries,)``;
- several per query: a sequence of ``n_queries`` collections of row numbers
  (lists, sets or arrays; their lengths may differ), or a 2-D integer array
  when every query has the same number of them; each row is listed once
  (a dense relevance matrix goes in as a sparse one);
- graded relevance: a SciPy sparse matrix of shape ``(n_queries, n_index)``
  whose non-zero entries are the grades (NDCG uses them as gains; Recall and
  MRR count a row as relevant when its grade is positive).

Every metric matches retrieved rows to labels with one sort of the labels
and one binary search per retrieved row, so its cost is
``O((n_labels + n_queries k) log n_labels)`` whatever the size of the index.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from collections.abc import Mapping
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval

from skembed._params import validate_params

__all__ = ["mrr_at_k", "ndcg_at_k", "recall_at_k"]


def _check_int64_range(ids, name):
    """Unsigned row numbers beyond int64 would wrap to negative ones (padding)."""
    if ids.dtype.kind == "u" and ids.size and ids.max() > np.iinfo(np.int64).max:
        raise ValueError(
            f"{name} holds a row number above {np.iinfo(np.int64).max}; row "
            "numbers must fit in a signed 64-bit integer."
        )


def _check_retrieved_matrix(retrieved):
    """Refuse results that are not one row per query of equal length.

    scikit-learn's "Expected 2D array" and numpy's "inhomogeneous shape" name
    neither ``retrieved`` nor the -1 that pads a query with fewer results.
    """
    if isinstance(retrieved, list | tuple):
        if retrieved and all(np.ndim(row) == 0 for row in retrieved):
            ndim, shape = 1, (len(retrieved),)
        else:
            lengths = sorted(
                {len(row) for row in retrieved if hasattr(row, "__len__")},
                reverse=True,
            )
            if len(lengths) > 1:
                raise ValueError(
                    f"retrieved has rows of {lengths[0]} and {lengths[1]} "
                    "results; every query needs the same number: pad a query "
                    "with fewer results with -1, the mark of a missing result."
                )
            return
    else:
        ndim, shape = (
            getattr(retrieved, "ndim", None),
            getattr(retrieved, "shape", None),
        )
    if ndim == 1:
        raise ValueError(
            f"retrieved is a 1-D array of shape {tuple(shape)}, but it holds the "
            "results of every query, of shape (n_queries, n_retrieved); for "
            "one query pass its results as one row, [rows]."
        )
    if isinstance(ndim, Integral) and ndim > 2:
        raise ValueError(
            f"retrieved is a {ndim}-D array of shape {tuple(shape)}, but it must "
            "be of shape (n_queries, n_retrieved), the indices kneighbors "
            "returns."
        )


def _check_retrieved(retrieved, k):
    if (
        isinstance(retrieved, tuple)
        and len(retrieved) == 2
        and all(np.ndim(part) == 2 for part in retrieved)
    ):
        # kneighbors' whole (scores, indices) pair, an easy slip, read as one
        # 3-D array: "Found array with dim 3".
        raise ValueError(
            "retrieved is a pair of 2-D arrays, like the (scores, indices) that "
            "kneighbors returns; pass the indices alone, kneighbors(...)[1]."
        )
    _check_retrieved_matrix(retrieved)
    retrieved = check_array(
        retrieved, dtype=None, ensure_all_finite=True, input_name="retrieved"
    )
    if not np.issubdtype(retrieved.dtype, np.integer):
        raise TypeError(
            f"retrieved has dtype {retrieved.dtype}, but it must hold index row "
            "numbers (integers), such as the indices returned by kneighbors."
        )
    _check_int64_range(retrieved, "retrieved")
    if k is None:
        k = retrieved.shape[1]
    elif k > retrieved.shape[1]:
        raise ValueError(
            f"k={k} is larger than the number of rows retrieved per query "
            f"({retrieved.shape[1]}); retrieve at least k neighbours or lower k."
        )
    top = retrieved[:, :k].astype(np.int64, copy=False)
    if top.size and top.min() < -1:
        row = int(np.flatnonzero((top < -1).any(axis=1))[0])
        raise ValueError(
            f"retrieved holds {int(top[row].min())} for query {row}; index rows "
            "are non-negative, and -1 is the only mark of a missing result."
        )
    # Missing results (FAISS pads with -1) are never relevant; real rows must
    # not repeat, or one relevant row would count twice.
    ordered = np.sort(top, axis=1)
    repeated = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    if repeated.any():
        row = int(np.flatnonzero(repeated.any(axis=1))[0])
        raise ValueError(
            f"retrieved lists an index row twice for query {row}; each query's "
            "results must be distinct rows (use -1 for missing results)."
        )
    return top


def _labels(relevant, n_queries):
    """(query, row, grade) triples of the labels, sorted by query and row."""
    if sp.issparse(relevant):
        labels = sp.coo_array(relevant, copy=True)
        if labels.dtype.kind in "iuf":
            # Summed in their own dtype, uint8 grades 200 and 100 made 44.
            labels = labels.astype(np.float64)
        # Repeated (row, column) entries of a COO input add up, as in SciPy.
        labels.sum_duplicates()
        if labels.shape[0] != n_queries:
            raise ValueError(
                f"relevant has {labels.shape[0]} rows, but retrieved has "
                f"{n_queries} queries; pass one row of grades per query."
            )
        grades = np.asarray(labels.data, dtype=np.float64)
        if not np.all(np.isfinite(grades)) or (grades < 0).any():
            raise ValueError(
                "relevant holds negative or non-finite grades; grades must be "
                "finite and >= 0 (0 means not relevant)."
            )
        keep = grades > 0
        queries = np.asarray(labels.row, dtype=np.int64)[keep]
        rows = np.asarray(labels.col, dtype=np.int64)[keep]
        grades = grades[keep]
    else:
        if isinstance(relevant, Mapping):
            # list(dict) is its keys: each query would score its own number.
            raise TypeError(
                "relevant is a mapping (query -> relevant rows); pass a list in "
                "query order instead, e.g. [relevant[q] for q in range(n_queries)]."
            )
        if isinstance(relevant, np.ndarray) and relevant.dtype != object:
            array = relevant
        else:
            try:
                array = np.asarray(relevant)
            except ValueError:
                array = None
            if array is not None and array.dtype == object:
                array = None
        if array is not None and (array.ndim > 2 or array.ndim == 0):
            raise ValueError(
                f"relevant has {array.ndim} dimensions; pass one row number per "
                "query (1-D), a fixed number per query (2-D), a list of "
                "collections, or a sparse matrix of grades."
            )
        if array is not None and array.ndim in (1, 2) and array.dtype != object:
            if array.size == 0:
                # numpy reads lists of empty lists as float: no label at all.
                array = array.astype(np.int64)
            if np.issubdtype(array.dtype, np.floating) and np.isnan(array).any():
                # Missing labels (pandas' NA in a nullable integer column turns
                # the whole column to float): the dtype alone hid the cause.
                missing = np.isnan(array.reshape(len(array), -1)).any(axis=1)
                raise ValueError(
                    f"relevant has a missing label (NaN or NA) for query "
                    f"{int(np.argmax(missing))}; every entry must be an index row "
                    "number. Drop the queries without a label from both relevant "
                    "and retrieved."
                )
            if not np.issubdtype(array.dtype, np.integer):
                raise TypeError(
                    f"relevant has dtype {array.dtype}; relevance labels are index "
                    "row numbers (integers), or a sparse matrix of grades."
                )
            if array.shape[0] != n_queries:
                raise ValueError(
                    f"relevant has {array.shape[0]} entries, but retrieved has "
                    f"{n_queries} queries; pass the relevant rows of every query."
                )
            _check_int64_range(array, "relevant")
            array = array.reshape(n_queries, -1)
            queries = np.repeat(np.arange(n_queries), array.shape[1])
            rows = array.ravel().astype(np.int64)
        else:
            relevant = list(relevant)
            if len(relevant) != n_queries:
                raise ValueError(
                    f"relevant has {len(relevant)} entries, but retrieved has "
                    f"{n_queries} queries; pass the relevant rows of every query."
                )
            pieces = []
            for query, answers in enumerate(relevant):
                if isinstance(answers, set | frozenset):
                    answers = sorted(answers)
                answers = np.atleast_1d(np.asarray(answers))
                if answers.size and not np.issubdtype(answers.dtype, np.integer):
                    raise TypeError(
                        f"relevant[{query}] holds {answers.dtype} values; "
                        "relevance labels are index row numbers (integers)."
                    )
                _check_int64_range(answers, f"relevant[{query}]")
                pieces.append(answers.astype(np.int64).ravel())
            counts = np.array([len(piece) for piece in pieces], dtype=np.int64)
            queries = np.repeat(np.arange(n_queries), counts)
            rows = np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int64)
        if (rows < 0).any():
            raise ValueError(
                "relevant holds a negative row number; relevance labels are "
                "index rows, numbered from 0."
            )
        pairs, counts = np.unique(np.stack([queries, rows]), axis=1, return_counts=True)
        if (counts > 1).any():
            # As in retrieved, a row listed twice is a mistake, and often a
            # telling one: a dense relevance matrix (n_queries x n_index, 0/1
            # or grades, the y_true of scikit-learn's ndcg_score) read as row
            # numbers names rows 0 and 1 as every query's answers.
            query, row = pairs[:, int(np.flatnonzero(counts > 1)[0])]
            raise ValueError(
                f"relevant lists index row {row} more than once for query "
                f"{query}; give each relevant row once. A relevance matrix of "
                "shape (n_queries, n_index) (0/1 or grades, as scikit-learn's "
                "ndcg_score takes) goes in as scipy.sparse.csr_array(matrix)."
            )
        queries, rows = pairs[0], pairs[1]
        grades = np.ones(len(rows))
    order = np.lexsort((rows, queries))
    queries, rows, grades = queries[order], rows[order], grades[order]
    counts = np.bincount(queries, minlength=n_queries)
    if (counts == 0).any():
        query = int(np.flatnonzero(counts == 0)[0])
        raise ValueError(
            f"query {query} has no relevant index row; ranking metrics are "
            "undefined for it. Drop queries without relevance labels."
        )
    return queries, rows, grades


def _gains(relevant, retrieved, k):
    """Grade of every retrieved row (0 when not relevant), and the labels."""
    top = _check_retrieved(retrieved, k)
    n_queries, width = top.shape
    queries, rows, grades = _labels(relevant, n_queries)
    # One sorted key per label; every retrieved row is looked up by its key.
    # Row numbers are first replaced by their rank among the labelled rows,
    # so that query * span + rank fits in int64 whatever the row numbers
    # (ids of a database can be near 2**63): rows that no label names get a
    # rank no key holds.
    labelled = np.unique(rows)
    span = labelled.shape[0] + 1
    ranks = np.searchsorted(labelled, np.maximum(top, 0))
    named = np.minimum(ranks, span - 2)
    ranks[(labelled[named] != top) if labelled.size else True] = span - 1
    keys = queries * span + np.searchsorted(labelled, rows)
    wanted = (np.arange(n_queries)[:, None] * span + ranks).ravel()
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    found = (keys[at] == wanted) & (top.ravel() >= 0)
    gains = np.where(found, grades[at], 0.0).reshape(n_queries, width)
    return gains, queries, grades


@validate_params(
    {
        "relevant": ["array-like", "sparse matrix"],
        "retrieved": ["array-like"],
        "k": [Interval(Integral, 1, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def recall_at_k(relevant, retrieved, *, k=10):
    """Mean share of each query's relevant rows found among its first k results.

    Parameters
    ----------
    relevant : array-like, sequence of collections, or sparse matrix
        The relevant index rows of every query: one per query (shape
        ``(n_queries,)``), several (a sequence of ``n_queries`` collections of
        row numbers, or a 2-D integer array), or graded (a sparse matrix of
        shape ``(n_queries, n_index)``, relevant where the grade is positive).
        Every query needs at least one relevant row (the metrics are
        undefined without one: a ValueError names the query, so drop it),
        each listed once. A dense relevance matrix of shape
        ``(n_queries, n_index)`` (0/1 or grades) goes in as a sparse matrix.
        Row numbers can be any non-negative int64 values, such as database
        ids.
    retrieved : array-like of shape (n_queries, n_retrieved)
        Index rows returned for each query, best first, such as the indices
        of :func:`skembed.kneighbors`. ``-1`` marks a missing result.
    k : int or None, default=10
        Results counted per query, at most ``n_retrieved``; None counts all.

    Returns
    -------
    recall : float
        :math:`\\frac{1}{|Q|} \\sum_q |R_q \\cap T_q^k| / |R_q|`, with
        :math:`R_q` the relevant rows of q and :math:`T_q^k` its first k
        results, in [0, 1].

    See Also
    --------
    mrr_at_k : Where the first relevant row comes.
    ndcg_at_k : Discounted gain of the whole top k.
    skembed.metrics.retrieval_accuracy : Row-paired retrieval, one partner each.

    Notes
    -----
    With one relevant row per query this is the hit rate (the share of
    queries whose answer is in the top k). With several, a query with more
    relevant rows than ``k`` cannot reach 1: the denominator is
    :math:`|R_q|`, as in BEIR and TREC's ``recall_k``.

    Examples
    --------
    >>> from skembed.metrics import recall_at_k
    >>> retrieved = [[4, 2, 7], [0, 1, 3]]
    >>> recall_at_k([2, 5], retrieved, k=3)
    0.5
    >>> recall_at_k([[2, 7], [3, 9]], retrieved, k=3)
    0.75
    >>> recall_at_k([{2, 7}, {3}], retrieved, k=2)
    0.25
    """
    gains, queries, _ = _gains(relevant, retrieved, k)
    n_queries = gains.shape[0]
    found = np.count_nonzero(gains > 0, axis=1)
    total = np.bincount(queries, minlength=n_queries)
    return float(np.mean(found / total))


@validate_params(
    {
        "relevant": ["array-like", "sparse matrix"],
        "retrieved": ["array-like"],
        "k": [Interval(Integral, 1, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def mrr_at_k(relevant, retrieved, *, k=10):
    """Mean reciprocal rank of the first relevant row within the first k results.

    Parameters
    ----------
    relevant : array-like, sequence of collections, or sparse matrix
        The relevant index rows of every query; see :func:`recall_at_k`.
    retrieved : array-like of shape (n_queries, n_retrieved)
        Index rows returned for each query, best first; ``-1`` marks a
        missing result.
    k : int or None, default=10
        Results looked at per query, at most ``n_retrieved``; None looks at
        all.

    Returns
    -------
    mrr : float
        :math:`\\frac{1}{|Q|} \\sum_q 1 / \\operatorname{rank}_q`, where
        :math:`\\operatorname{rank}_q` is the position (from 1) of q's first
        relevant result, and a query with none in its top k adds 0.

    See Also
    --------
    recall_at_k, ndcg_at_k

    Examples
    --------
    >>> from skembed.metrics import mrr_at_k
    >>> retrieved = [[4, 2, 7], [0, 1, 3], [5, 6, 8]]
    >>> mrr_at_k([2, 0, 9], retrieved, k=3)
    0.5
    """
    gains, _, _ = _gains(relevant, retrieved, k)
    hits = gains > 0
    first = np.argmax(hits, axis=1)
    reciprocal = np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)
    return float(np.mean(reciprocal))


@validate_params(
    {
        "relevant": ["array-like", "sparse matrix"],
        "retrieved": ["array-like"],
        "k": [Interval(Integral, 1, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def ndcg_at_k(relevant, retrieved, *, k=10):
    """Normalised discounted cumulative gain of the first k results.

    Parameters
    ----------
    relevant : array-like, sequence of collections, or sparse matrix
        The relevant index rows of every query; see :func:`recall_at_k`.
        With a sparse matrix, the grades are the gains; otherwise every
        relevant row has gain 1.
    retrieved : array-like of shape (n_queries, n_retrieved)
        Index rows returned for each query, best first; ``-1`` marks a
        missing result.
    k : int or None, default=10
        Results scored per query, at most ``n_retrieved``; None scores all.

    Returns
    -------
    ndcg : float
        Mean over queries of DCG@k / IDCG@k, in [0, 1].

    See Also
    --------
    recall_at_k, mrr_at_k
    sklearn.metrics.ndcg_score : The same from a full score matrix.

    Notes
    -----
    :math:`\\mathrm{DCG@k} = \\sum_{i=1}^{k} g_i / \\log_2(i + 1)`, with
    :math:`g_i` the gain of the i-th result (linear gains, as in
    :func:`sklearn.metrics.ndcg_score`); IDCG@k is the DCG of the best
    possible order of the query's relevant rows.

    Examples
    --------
    >>> from skembed.metrics import ndcg_at_k
    >>> retrieved = [[4, 2, 7], [0, 1, 3]]
    >>> round(ndcg_at_k([2, 0], retrieved, k=3), 4)
    0.8155
    """
    gains, queries, grades = _gains(relevant, retrieved, k)
    n_queries, width = gains.shape
    discounts = 1.0 / np.log2(np.arange(2, width + 2))
    dcg = gains @ discounts
    # Ideal order: each query's grades, largest first, cut at k.
    order = np.lexsort((-grades, queries))
    ranked_queries, ranked = queries[order], grades[order]
    starts = np.searchsorted(ranked_queries, np.arange(n_queries))
    position = np.arange(len(ranked)) - starts[ranked_queries]
    inside = position < width
    ideal = np.bincount(
        ranked_queries[inside],
        weights=ranked[inside] * discounts[position[inside]],
        minlength=n_queries,
    )
    return float(np.mean(dcg / ideal))
