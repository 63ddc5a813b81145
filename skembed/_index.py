"""A searchable set of embeddings: exact (numpy) or FAISS, by cosine or CSLS.

:class:`EmbeddingIndex` keeps the vectors of an index once, prepared for
search (optionally centred on their mean, then at unit length), and answers
any number of later query batches with the same neighbours: cosine, or CSLS
with penalties estimated once from a sample of queries, which also gives the
query mean when queries and index rows are centred separately. The exact backend is
skembed's search engine (:mod:`skembed._neighbors`); the FAISS backends
(optional package ``faiss-cpu``, imported only when used) hold the same
prepared rows in a flat inner-product index or an HNSW graph.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import importlib
from numbers import Integral

import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from skembed._base import state_kept_on_error
from skembed._neighbors import (
    check_numbers,
    check_vectors,
    score_margin,
    search_unit_index,
    shortlist_dots,
    unit_index_penalties,
)
from skembed._params import NumbersAreNotFlagsMixin, validate_params
from skembed._stats import chunk_rows, divide_by_row_norms, search_chunk_rows

__all__ = ["EmbeddingIndex", "fused_kneighbors"]

_BACKENDS = ("numpy", "faiss-flat", "faiss-hnsw")


def import_faiss(backend):
    """The faiss module, or an ImportError that says how to install it."""
    try:
        return importlib.import_module("faiss")
    except ImportError as exc:
        raise ImportError(
            f"backend={backend!r} needs the package 'faiss' (faiss-cpu), which is "
            'not installed; install it with `pip install "skembed[faiss]"`, or '
            'use backend="numpy".'
        ) from exc


def _best_rows(scores, rows, found, k):
    """The k best of FAISS's results per query: (scores, positions in ``rows``).

    Best first, equal scores in the order of their index rows, as the numpy
    backend orders them (FAISS returns ties in an order of its own); padding
    (``found`` False) last.
    """
    scores = np.where(found, scores, -np.inf)
    order = np.lexsort((np.where(found, rows, np.iinfo(np.int64).max), -scores))
    order = order[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def _mean_of_largest(values, valid, k):
    """Mean of the k largest valid values of every row (fewer if fewer are valid)."""
    ranked = -np.sort(-np.where(valid, values, -np.inf), axis=1)[:, :k]
    kept = np.isfinite(ranked)
    return np.where(kept, ranked, 0).sum(axis=1) / np.maximum(kept.sum(axis=1), 1)


class EmbeddingIndex(NumbersAreNotFlagsMixin, BaseEstimator):
    """Search a fixed set of embeddings by cosine or CSLS, exactly or with FAISS.

    ``fit`` prepares the index rows once (centred on their mean if ``center``,
    then scaled to unit length) and hands them to the backend; ``kneighbors``
    then answers query batches of any size, a single query included, with the
    same neighbours (scores equal up to float32 rounding). What depends on
    the queries is estimated once from a representative sample of them by
    :meth:`fit_queries`: the hubness penalties of the index rows for CSLS
    (MUSE's protocol) and, with ``center="separate"``, the mean of the
    queries.

    Read more in the :ref:`User Guide <migration>`.

    Parameters
    ----------
    n_neighbors : int, default=10
        Neighbours returned by :meth:`kneighbors` unless it is told otherwise.
    method : {"nn", "csls"}, default="nn"
        ``"nn"`` ranks index rows by cosine; ``"csls"`` by cross-domain
        similarity local scaling, which discounts index rows that are near
        every query ("hubs"); see :func:`skembed.kneighbors`.
    csls_k : int, default=10
        Neighbourhood size of the CSLS penalties.
    center : bool or "separate", default=False
        Which mean to subtract before cosines. False: none. True: the index
        rows' mean, from index rows and queries alike. Embeddings that share
        a large common direction (e5's do: random pairs have cosine 0.8)
        otherwise rank mostly by that direction; so do queries translated
        from another model's space. ``"separate"``: index rows lose their
        mean and queries *theirs*, estimated by :meth:`fit_queries` from a
        sample of queries (before any search), so that a single query is
        centred like a large batch. Queries and documents of one model often
        sit around different means (a word alone against its definition, or
        queries translated by a map fitted on documents); removing each
        side's own mean removes that offset from every score.
    backend : {"numpy", "faiss-flat", "faiss-hnsw"}, default="numpy"
        ``"numpy"``: exact search by skembed's engine, in blocks of queries
        (memory one block of scores). ``"faiss-flat"``: exact inner products
        by FAISS (``IndexFlatIP``). ``"faiss-hnsw"``: approximate search in
        an HNSW graph (``IndexHNSWFlat`` with inner products). The FAISS
        backends need the package ``faiss-cpu`` and search in float32.
    hnsw_neighbors : int, default=32
        ``"faiss-hnsw"`` only: links per node of the graph (FAISS's ``M``).
    ef_construction : int, default=200
        ``"faiss-hnsw"`` only: candidate list size while building the graph.
    ef_search : int, default=128
        ``"faiss-hnsw"`` only: candidate list size while searching; larger is
        slower and closer to exact.
    shortlist : int, default=100
        FAISS backends with ``method="csls"``: candidates per query fetched by
        cosine and re-ranked by CSLS (at least ``n_neighbors`` and
        ``csls_k`` are fetched). With ``"faiss-flat"`` the rows outside it
        that could still rank are scored as well (see Notes), so it changes
        the cost, not the result.
    batch_size : int, default=4096
        Queries per call of a FAISS backend (the numpy backend blocks queries
        by its memory budget).

    Attributes
    ----------
    n_features_in_ : int
        Width of the index rows.
    n_index_ : int
        Number of index rows.
    mean_ : ndarray of shape (n_features_in_,) or None
        Mean of the index rows (float64) when ``center``, else None.
    query_mean_ : ndarray of shape (n_features_in_,)
        ``center="separate"`` only: mean of the query sample (float64), set
        by :meth:`fit_queries`.
    penalties_ : ndarray of shape (n_index_,)
        ``method="csls"`` only: CSLS penalty of every index row, set by
        :meth:`fit_queries`.
    faiss_index_ : faiss.Index or None
        The FAISS index of the FAISS backends (None for ``"numpy"``).

    See Also
    --------
    skembed.kneighbors : One search of queries against an index, no state.
    skembed.csls_penalties : The CSLS penalties over a query pool.
    sklearn.neighbors.NearestNeighbors : Distances instead of similarities.

    Notes
    -----
    With :math:`\\mu_T` the index mean (0 without ``center``) and
    :math:`\\mu_Q` the query mean (:math:`\\mu_T` unless
    ``center="separate"``), index rows become
    :math:`u = (t - \\mu_T) / \\lVert t - \\mu_T \\rVert` and queries
    :math:`(q - \\mu_Q) / \\lVert q - \\mu_Q \\rVert`, so the ``"nn"``
    score is :math:`\\cos(q - \\mu_Q, t - \\mu_T)` and CSLS is
    :math:`2 \\cos(q, t) - r_T(q) - r_Q(t)` on those rows, where
    :math:`r_Q(t)` is the mean cosine of t to its ``csls_k`` nearest rows of
    the query sample given to :meth:`fit_queries` and :math:`r_T(q)` that
    of q to its ``csls_k`` nearest index rows. Estimating :math:`r_Q` and
    :math:`\\mu_Q` once from a representative sample (a few thousand
    queries mapped as the searched ones will be) makes the score of a query
    independent of the batch it comes in; :math:`r_T(q)` does not change a
    query's ranking. Centring each side on its own mean makes the cosine
    blind to the offset :math:`\\mu_Q - \\mu_T` between queries and
    documents, a direction that carries no information about which document
    a query wants but that, left in, pulls every query towards the
    documents lying furthest along it.

    The numpy backend is exact for the rows as stored: centred, at unit
    length, in the index's dtype. Storing them so rounds each row's
    direction (by about 1e-7 in float32), so two rows whose cosines with a
    query differ by less than that, such as a row and a scaled copy of it,
    may rank in either order; bitwise-equal rows always tie (use
    :func:`skembed.kneighbors` on the raw rows for cosines of the raw rows,
    ranked by their float64 cosines). ``"faiss-flat"`` computes the same cosines in
    float32 by FAISS's kernels, whose rounding depends on a row's place in
    the batch; FAISS's results are therefore a shortlist (a few rows more
    than asked, and more while the last is within rounding of the cut),
    re-scored in float64 from the stored float32 rows, each score a function
    of its query and row alone. Bitwise-equal rows then tie exactly, come in
    row order, and a query finds the same rows alone as in any batch. The
    re-scoring costs a fixed amount per query and shortlist row, which
    matters less the larger the index FAISS scans. With FAISS and CSLS, each
    query's ``shortlist`` best rows by cosine are re-ranked by CSLS, and
    :math:`r_T(q)` comes from that shortlist (its ``csls_k`` best cosines).
    A row outside the shortlist has a cosine below the shortlist's last,
    :math:`c`, so it can rank only if its penalty is below :math:`2c - s`,
    :math:`s` the k-th best CSLS score of the shortlist; ``"faiss-flat"``
    scores those rows too (the rows of lowest penalty, often none), so its
    CSLS results are the numpy backend's whatever ``shortlist`` is.
    ``"faiss-hnsw"`` re-ranks its approximate shortlist alone. The numpy
    backend keeps one prepared copy of the index (the memory of the index in
    its dtype, float32 for float16 rows); the FAISS backends keep theirs
    inside FAISS, in float32.

    References
    ----------
    Conneau, Lample, Ranzato, Denoyer and Jégou (2018). "Word translation
    without parallel data." ICLR.

    Malkov and Yashunin (2020). "Efficient and robust approximate nearest
    neighbor search using hierarchical navigable small world graphs." IEEE
    TPAMI 42(4).

    Examples
    --------
    >>> import numpy as np
    >>> from skembed import EmbeddingIndex
    >>> rng = np.random.default_rng(0)
    >>> documents = rng.normal(size=(1000, 16))
    >>> queries = documents[:5] + 0.1 * rng.normal(size=(5, 16))
    >>> index = EmbeddingIndex(n_neighbors=3).fit(documents)
    >>> scores, indices = index.kneighbors(queries)
    >>> indices[:, 0]
    array([0, 1, 2, 3, 4])
    >>> sample = documents[rng.permutation(1000)[:200]] + 0.1
    >>> index = EmbeddingIndex(method="csls").fit(documents).fit_queries(sample)
    >>> index.kneighbors(queries, 1)[1].ravel()
    array([0, 1, 2, 3, 4])

    Queries that sit around another mean than the documents, found by
    centring each side on its own mean:

    >>> shifted = queries + 2.0
    >>> index = EmbeddingIndex(n_neighbors=1, center="separate").fit(documents)
    >>> index.fit_queries(sample + 2.0).kneighbors(shifted)[1].ravel()
    array([0, 1, 2, 3, 4])
    """

    _parameter_constraints: dict = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"nn", "csls"})],
        "csls_k": [Interval(Integral, 1, None, closed="left")],
        "center": ["boolean", StrOptions({"separate"})],
        "backend": [StrOptions(set(_BACKENDS))],
        "hnsw_neighbors": [Interval(Integral, 2, None, closed="left")],
        "ef_construction": [Interval(Integral, 1, None, closed="left")],
        "ef_search": [Interval(Integral, 1, None, closed="left")],
        "shortlist": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_neighbors=10,
        *,
        method="nn",
        csls_k=10,
        center=False,
        backend="numpy",
        hnsw_neighbors=32,
        ef_construction=200,
        ef_search=128,
        shortlist=100,
        batch_size=4096,
    ):
        self.n_neighbors = n_neighbors
        self.method = method
        self.csls_k = csls_k
        self.center = center
        self.backend = backend
        self.hnsw_neighbors = hnsw_neighbors
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.shortlist = shortlist
        self.batch_size = batch_size

    # ------------------------------------------------------------------- fit
    def _prepare(self, X, dtype, mean):
        """Rows of X minus ``mean`` (None: no centring), at unit length, in dtype.

        Centred and scaled in X's own precision, then cast: float64 rows with
        entries beyond float32's range (about 3.4e38) would become inf in a
        cast made first, and their search would return no row.
        """
        X = np.asarray(X)
        if mean is None:
            out = X.copy()
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                out = X - mean.astype(X.dtype)
            # Finite rows and mean whose difference overflows (entries near
            # the dtype's largest value): x - mean points as (x - mean) / s
            # does for any s > 0, and with s the largest magnitude of both,
            # x / s - mean / s lies within [-2, 2].
            overflowed = ~np.isfinite(out).all(axis=1)
            if overflowed.any():
                rows = X[overflowed].astype(np.float64)
                scale = max(np.abs(rows).max(), np.abs(mean).max())
                out[overflowed] = rows / scale - mean / scale
        divide_by_row_norms(out)
        return out.astype(dtype, copy=False)

    def _row_step(self):
        return chunk_rows(self.n_features_in_ * 8, "transform")

    def _column_mean(self, X):
        """Mean of the rows of X in float64, summed in row blocks."""
        step = self._row_step()

        def total(scale=None):
            out = np.zeros(X.shape[1])
            for start in range(0, X.shape[0], step):
                block = X[start : start + step]
                if scale is not None:
                    block = block.astype(np.float64) / scale
                out += block.sum(axis=0, dtype=np.float64)
            return out

        with np.errstate(over="ignore"):
            unscaled = total()
        if np.isfinite(unscaled).all():
            return unscaled / X.shape[0]
        # Finite rows whose sum overflows float64 (entries near 1e308): sum
        # them scaled by the largest magnitude instead.
        peak = max(
            float(np.abs(X[start : start + step]).max())
            for start in range(0, X.shape[0], step)
        )
        return total(peak) / X.shape[0] * peak

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Prepare the index rows and build the backend's index.

        Parameters
        ----------
        X : array-like of shape (n_index, n_features)
            The vectors to search, e.g. an old model's embeddings of a corpus.
        y : None
            Ignored.

        Returns
        -------
        self : EmbeddingIndex
            The fitted index.
        """
        with state_kept_on_error(self):
            return self._fit(X)

    def _fit(self, X):
        array = check_vectors(X, "X")
        validate_data(self, X, skip_check_array=True, reset=True)
        X = array
        n_index = X.shape[0]
        if self.backend != "numpy":
            faiss = import_faiss(self.backend)
        step = self._row_step()
        self.mean_ = self._column_mean(X) if self._centres() else None
        self.n_index_ = n_index
        self._dtype = X.dtype if self.backend == "numpy" else np.dtype(np.float32)
        self._fitted_backend = self.backend
        # Estimated against the previous index rows: they do not apply.
        for name in ("penalties_", "query_mean_"):
            if hasattr(self, name):
                delattr(self, name)
        if self.backend == "numpy":
            rows = np.empty(X.shape, dtype=X.dtype)
            some_row_left = False
            for start in range(0, n_index, step):
                stop = min(start + step, n_index)
                rows[start:stop] = self._prepare(X[start:stop], X.dtype, self.mean_)
                # Checked while the block is in cache, not by another pass.
                some_row_left = some_row_left or bool(rows[start:stop].any())
            self._check_some_row_left(some_row_left)
            self._rows = rows
            self.faiss_index_ = None
            return self
        d = X.shape[1]
        if self.backend == "faiss-flat":
            index = faiss.IndexFlatIP(d)
        else:
            # Plain ints: FAISS's bindings refuse numpy integers.
            index = faiss.IndexHNSWFlat(
                d, int(self.hnsw_neighbors), faiss.METRIC_INNER_PRODUCT
            )
            index.hnsw.efConstruction = int(self.ef_construction)
        some_row_left = False
        for start in range(0, n_index, step):
            rows = self._prepare(X[start : start + step], np.float32, self.mean_)
            some_row_left = some_row_left or bool(rows.any())
            index.add(rows)
        self._check_some_row_left(some_row_left)
        self._rows = None
        self.faiss_index_ = index
        return self

    def _centres(self):
        """Whether ``center`` asks for centred rows (not "is not False": a
        numpy False from a grid or a config would centre)."""
        return isinstance(self.center, str) or bool(self.center)

    def _check_some_row_left(self, some_row_left):
        """Refuse an index whose every prepared row is zero.

        Zero rows have cosine 0 with every query: the search would return
        rows 0, 1, 2, ... for any query, each with score 0, and look like an
        answer.
        """
        if some_row_left:
            return
        if self.mean_ is None:
            raise ValueError(
                "Every row of X is zero: the index has no direction to search. "
                "Pass the embeddings themselves."
            )
        raise ValueError(
            f"Every row of X is zero once centred on their mean (center="
            f"{self.center!r}): the {self.n_index_} row(s) are all the same, so "
            "the index has no direction to search. Pass more distinct rows, or "
            "center=False to search the rows as they are."
        )

    def _index_rows(self):
        """Prepared index rows, block by block: ``(start, stop, rows)``."""
        if self._rows is not None:
            yield 0, self.n_index_, self._rows
            return
        step = self._row_step()
        for start in range(0, self.n_index_, step):
            count = min(step, self.n_index_ - start)
            yield start, start + count, self.faiss_index_.reconstruct_n(start, count)

    def _check_queries(self, queries, name):
        check_is_fitted(self, "n_index_")
        array = check_vectors(queries, name)
        if array.shape[1] != self.n_features_in_:
            raise ValueError(
                f"{name} has {array.shape[1]} columns, but the index rows have "
                f"{self.n_features_in_}: queries must be in the index's space. "
                "Translate them first (an aligner's translate) if they come from "
                "another model."
            )
        # Columns are matched by position: a DataFrame's names must be the
        # index's, in its order (scikit-learn's check, and its warning when
        # only one of the two has names).
        validate_data(self, queries, skip_check_array=True, reset=False)
        return array

    def _query_mean(self, sample_mean=None):
        """The mean subtracted from queries (None: no centring).

        ``sample_mean``: the mean of a query sample fit_queries is reading,
        used in place of ``query_mean_`` before it is stored.
        """
        # The rows were stored centred exactly when fit kept their mean.
        fitted = self.mean_ is not None
        if self._centres() != fitted:
            # Rows stored as they are with queries centred, or the reverse:
            # cosines between two frames, with no error.
            stored = "centred on their mean" if fitted else "as they are"
            raise ValueError(
                f"center={self.center!r}, but fit stored the index rows {stored}; "
                "the queries must be prepared as the rows were. Call fit again "
                "after changing center, or set it back."
            )
        if self.center != "separate":
            return self.mean_
        if sample_mean is not None:
            return sample_mean
        if not hasattr(self, "query_mean_"):
            raise ValueError(
                'center="separate" centres queries on the mean of a query sample: '
                "call fit_queries(queries) with a representative sample of "
                "queries first, or use center=True to centre them on the index "
                "mean."
            )
        return self.query_mean_

    def fit_queries(self, queries):
        """Estimate what the search needs to know about queries, from a sample.

        With ``center="separate"``, the query mean ``query_mean_``; with
        ``method="csls"``, the CSLS penalty of every index row,
        ``penalties_``, computed on the sample centred as queries will be.
        Otherwise nothing depends on the queries and the sample is only
        validated.

        Parameters
        ----------
        queries : array-like of shape (n_sample, n_features)
            A representative sample of queries, in the index's space and
            prepared as the searched queries will be (e.g. translated by the
            same aligner); for CSLS at least ``csls_k`` of them. A few
            thousand are usually enough. They need not be the searched
            queries: a log of past queries serves.

        Returns
        -------
        self : EmbeddingIndex
            The index, with ``query_mean_`` and ``penalties_`` set as needed.
        """
        with state_kept_on_error(self):
            # Interrupted between the query mean and the penalties, the
            # index would search with the one of a sample and the other of
            # the sample before.
            return self._fit_queries(queries)

    def _fit_queries(self, queries):
        self._check_search_parameters()
        queries = self._check_queries(queries, "queries")
        csls = self.method == "csls"
        if csls and queries.shape[0] < self.csls_k:
            raise ValueError(
                f"fit_queries needs at least csls_k={self.csls_k} queries, got "
                f"{queries.shape[0]}; pass a larger sample or lower csls_k."
            )
        if csls and self.csls_k > self.n_index_:
            # Each query's penalty is its mean cosine to its csls_k nearest
            # index rows: with fewer rows no search could use these
            # penalties, so say so here rather than at the first search.
            raise ValueError(
                f"csls_k={self.csls_k} exceeds the number of index rows "
                f"({self.n_index_}); lower csls_k."
            )
        sample_mean = None
        if self.center == "separate":
            if queries.shape[0] < 2:
                # A query minus the mean of itself alone is the zero vector.
                raise ValueError(
                    'center="separate" subtracts the mean of the query sample '
                    f"from queries; fit_queries got {queries.shape[0]} query, a "
                    "mean needs a sample of several (a few thousand are usually "
                    "enough)."
                )
            step = self._row_step()
            if not any(
                np.any(queries[start : start + step] != queries[:1])
                for start in range(0, queries.shape[0], step)
            ):
                # Every query minus their mean is the zero vector: all index
                # rows would tie at score 0 and come back in row order.
                raise ValueError(
                    'center="separate" subtracts the mean of the query sample '
                    f"from queries, but the {queries.shape[0]} queries of the "
                    "sample are all equal: such queries would become zero "
                    "vectors. Pass a sample of different queries, or use "
                    "center=True."
                )
            sample_mean = self._column_mean(queries)
        # Everything is computed first and stored at once: a search of
        # another thread during a refresh from a query log saw the new query
        # mean beside the old penalties, and every search failed.
        fitted = {}
        if sample_mean is not None:
            fitted["query_mean_"] = sample_mean
        if csls:
            mean = self._query_mean(sample_mean)
            pool = self._prepared_pool(queries, mean)
            penalties = np.empty(self.n_index_)
            for start, stop, rows in self._index_rows():
                penalties[start:stop] = unit_index_penalties(pool, rows, self.csls_k)
            # Index rows by increasing penalty: those CSLS favours most, for
            # the FAISS search's check of rows outside a query's shortlist.
            order = np.argsort(penalties, kind="stable")
            rank = np.empty(self.n_index_, dtype=np.int64)
            rank[order] = np.arange(self.n_index_)
            fitted.update(
                penalties_=penalties,
                _penalties_csls_k=self.csls_k,
                _penalties_query_mean=None if mean is None else mean.copy(),
                _penalty_order=order,
                _sorted_penalties=penalties[order],
                _penalty_rank=rank,
            )
        vars(self).update(fitted)
        return self

    def _prepared_pool(self, queries, mean):
        """The query sample prepared as queries are searched, in the index dtype.

        The penalties are a search of the index rows against this pool, and
        the engine searches against all of its rows at once: the pool is held
        whole, once, in the index's dtype. It is filled a block of
        :meth:`_row_step` rows at a time, so that preparing it costs one
        block more, not a centred copy of the whole sample in its own dtype
        (a float64 one for float64 queries, before the cast to a float32
        index). Each row is what preparing the whole sample gives it (see
        :meth:`_prepared_slices`).
        """
        pool = np.empty(queries.shape, dtype=self._dtype)
        for first, rows in self._prepared_slices(queries, mean, self._row_step()):
            pool[first : first + rows.shape[0]] = rows
        return pool

    # ---------------------------------------------------------------- search
    def kneighbors(self, queries, n_neighbors=None):
        """The best index rows for every query.

        Parameters
        ----------
        queries : array-like of shape (n_queries, n_features)
            Query vectors in the index's space.
        n_neighbors : int or None, default=None
            Neighbours per query, at most ``n_index_``; None uses the
            ``n_neighbors`` parameter.

        Returns
        -------
        scores : ndarray of shape (n_queries, n_neighbors), float64
            Cosine or CSLS score of each neighbour, best first (higher is
            nearer).
        indices : ndarray of shape (n_queries, n_neighbors), int64
            Index rows, best first; equal scores in the order of their rows.
            A query of zero length once prepared (all zeros, or equal to the
            mean it is centred on) ties with every row: its neighbours are
            the first rows (under CSLS, those of lowest penalty).
            An approximate graph walk (``"faiss-hnsw"``) can return fewer
            rows than asked for a query: the missing places hold index -1
            and score ``-inf``.
        """
        queries = self._check_queries(queries, "queries")
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if (
            not isinstance(k, Integral)
            or isinstance(k, bool)
            or not 1 <= k <= self.n_index_
        ):
            raise ValueError(
                f"n_neighbors={k!r} must be an integer between 1 and the number "
                f"of index rows ({self.n_index_})."
            )
        k = int(k)
        self._check_search_parameters()
        self._check_csls()
        return self._search_queries(queries, k)

    def _check_search_parameters(self, name=None):
        """Refuse parameters set after fit that the search cannot follow.

        ``set_params`` validates nothing: a typo (``method="CSLS"``) was
        searched by cosine, ``batch_size=0`` failed inside ``range``, and
        another backend was ignored or failed on the index built.
        """
        self._validate_params()
        fitted = getattr(self, "_fitted_backend", None)
        if fitted is not None and fitted != self.backend:
            where = "" if name is None else f"{name}: "
            raise ValueError(
                f"{where}backend={self.backend!r}, but fit built a {fitted!r} "
                "index; call fit again after changing backend, or set it back."
            )

    def _check_csls(self, name=None):
        """CSLS needs the rows' penalties and at most ``n_index_`` neighbours."""
        if self.method != "csls":
            return
        where = "" if name is None else f"{name}: "
        if not hasattr(self, "penalties_"):
            raise ValueError(
                f'{where}method="csls" needs the index rows\' penalties: call '
                "fit_queries(queries) with a sample of queries first, or use "
                'method="nn".'
            )
        estimated = getattr(self, "_penalties_csls_k", self.csls_k)
        if estimated != self.csls_k:
            # Penalties of one neighbourhood size, queries' of another: the
            # scores would be neither CSLS.
            raise ValueError(
                f"{where}csls_k={self.csls_k}, but penalties_ were estimated with "
                f"csls_k={estimated}; call fit_queries(queries) again after "
                "changing csls_k, or set it back."
            )
        if self.csls_k > self.n_index_:
            raise ValueError(
                f"{where}csls_k={self.csls_k} exceeds the number of index rows "
                f"({self.n_index_}); lower csls_k."
            )
        if hasattr(self, "_penalties_query_mean"):
            # Penalties of queries centred one way, queries centred another
            # (center changed, or the query mean refreshed by fit_queries
            # while method="nn"): every score off, with no error.
            used, now = self._penalties_query_mean, self._query_mean()
            if (used is None) != (now is None) or (
                used is not None and not np.array_equal(used, now)
            ):
                raise ValueError(
                    f"{where}penalties_ were estimated on queries centred "
                    f"otherwise than queries are now (center={self.center!r}; "
                    "a change of center, or a query mean refreshed by "
                    'fit_queries while method="nn"); call fit_queries(queries) '
                    'again with method="csls".'
                )

    def _search_prepared(self, prepared, k):
        """:meth:`kneighbors` of queries already prepared like the index rows."""
        if self.faiss_index_ is None:
            csls = self.method == "csls"
            return search_unit_index(
                prepared,
                self._rows,
                k,
                method=self.method,
                csls_k=self.csls_k,
                index_penalties=self.penalties_ if csls else None,
            )
        return self._faiss_search(prepared, k)

    def _prepared_slices(self, queries, mean, step, start=0, stop=None):
        """Queries ``start:stop`` prepared ``step`` rows at a time: ``(first,
        rows)`` with ``rows`` the prepared queries ``first, first + 1, ...``.

        Each row is what preparing every query at once gives it, to the bit.
        A slice keeps the memory layout of ``queries``, and its row norms are
        summed in that layout's order. A single row is summed in another
        order, so a slice is never one row of several: a last row is joined
        to the slice before it, and a range of one row is prepared with a
        neighbour (which ``rows`` then holds too).
        """
        n_queries = queries.shape[0]
        stop = n_queries if stop is None else stop
        if stop - start == 1 and n_queries > 1:
            start, stop = (start - 1, stop) if stop == n_queries else (start, stop + 1)
        bounds = list(range(start, stop, step)) + [stop]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
            del bounds[-2]
        for first, last in zip(bounds[:-1], bounds[1:], strict=True):
            yield first, self._prepare(queries[first:last], self._dtype, mean)

    def _search_queries(self, queries, k):
        """:meth:`kneighbors` of checked queries, prepared a block at a time.

        Memory holds one block of prepared (centred, unit-length) queries,
        not a prepared copy of them all. The blocks are those the search
        cuts from the whole prepared matrix, with the same rows in the same
        layout, so the blocking changes no bit of the result: the rounding
        of a matrix product may depend on the rows of its block, and the
        exact re-ranking and the copies looked for are a block's own. FAISS
        gets ``batch_size`` queries at a time. The numpy engine answers
        queries of zero length apart (they tie with every row) and cuts the
        others into blocks of :func:`search_chunk_rows` rows (two at least,
        see :meth:`_prepared_slices`), gathered row-major when zero queries
        lie between them; a first pass prepares every block to find the
        zero queries.
        """
        mean = self._query_mean()
        n_queries = queries.shape[0]
        scores = np.empty((n_queries, k))
        indices = np.empty((n_queries, k), dtype=np.int64)
        if self.faiss_index_ is not None:
            step, zero = self.batch_size, None
        else:
            step = max(2, search_chunk_rows(self.n_index_, self._dtype))
            zero = np.empty(n_queries, dtype=bool)
            for first, rows in self._prepared_slices(queries, mean, step):
                zero[first : first + rows.shape[0]] = ~rows.any(axis=1)
        if zero is None or not zero.any():
            for first, rows in self._prepared_slices(queries, mean, step):
                places = slice(first, first + rows.shape[0])
                scores[places], indices[places] = self._search_prepared(rows, k)
            return scores, indices
        # Every zero query has the neighbours of the zero vector.
        origin = np.zeros((1, self.n_features_in_), dtype=self._dtype)
        scores[zero], indices[zero] = self._search_prepared(origin, k)
        kept = np.flatnonzero(~zero)
        for start in range(0, kept.size, step):
            places = kept[start : start + step]
            rows = self._prepared_rows(queries, mean, places)
            scores[places], indices[places] = self._search_prepared(rows, k)
        return scores, indices

    def _prepared_rows(self, queries, mean, rows):
        """The prepared queries ``rows`` (increasing row numbers), gathered into
        one array as from the whole prepared matrix; the rows between them
        are prepared too, a slice at a time."""
        out = np.empty((rows.size, self.n_features_in_), dtype=self._dtype)
        if not rows.size:
            return out
        slices = self._prepared_slices(
            queries, mean, self._row_step(), rows[0], rows[-1] + 1
        )
        for first, prepared in slices:
            start, stop = np.searchsorted(rows, [first, first + prepared.shape[0]])
            out[start:stop] = prepared[rows[start:stop] - first]
        return out

    def _faiss_fetched(self, block, fetch):
        """The ``fetch`` best rows of every query, ties at the cut included,
        with exact float64 cosines, in groups: ``(queries, exact, rows)``
        for positions ``queries`` of ``block``.

        FAISS scores a large batch with a float32 matrix product, which
        rounds the scores of bitwise-equal rows differently by their place in
        the block: copies of a document came out an ulp apart, so a later copy
        could displace the original and a query's neighbours depended on its
        batch. FAISS's order is therefore only a shortlist. A few rows more
        than asked are fetched; a query whose last row lies within the rounding
        margin of its ``fetch``-th is searched again with twice as many, until
        the margin ends inside what was fetched or the whole index is. Every
        fetched row is then re-scored from the stored row
        (:func:`shortlist_dots`, a function of the two rows alone), and only
        rows at least as good as the ``fetch``-th exact score stay: the
        shortlist plus the rows that tie with its last. Missing places: row
        -1, score ``-inf``.

        The queries searched again come in groups of their own, sized for
        shortlists as wide as the index: next to many copies of one row a
        query's shortlist holds them all (at 50,000 rows, half of them
        copies, 200 such queries held 394 MiB at once).
        """
        index = self.faiss_index_
        n_index = self.n_index_
        margin = score_margin(block.shape[1], np.float32)
        # A few rows more than asked, so that the margin rarely ends beyond
        # them and a query is seldom searched twice.
        want = min(fetch + max(8, fetch // 8), n_index)
        cosines, rows = self._faiss_call(index, block, want)
        again = np.zeros(block.shape[0], dtype=bool)
        if want < n_index:
            again = _near_the_cut(cosines, rows, fetch, want, margin)
        if not again.any():
            yield np.arange(block.shape[0]), *self._exact_cut(block, rows, fetch)
            return
        done = np.flatnonzero(~again)
        if done.size:
            yield done, *self._exact_cut(block[done], rows[done], fetch)
        del cosines, rows
        again = np.flatnonzero(again)
        # Per query and row: FAISS's score and row, their padded copies, the
        # exact score and its masks.
        group = max(1, search_chunk_rows(n_index, np.float64) // 4)
        for start in range(0, again.size, group):
            queries = again[start : start + group]
            rows = self._widened(block[queries], fetch, min(2 * want, n_index))
            yield queries, *self._exact_cut(block[queries], rows, fetch)

    def _widened(self, block, fetch, want):
        """FAISS's rows of queries whose cut lies beyond their first ``want``:
        fetched with twice as many until it does not, or the index is."""
        index = self.faiss_index_
        n_index = self.n_index_
        margin = score_margin(block.shape[1], np.float32)
        cosines, rows = self._faiss_call(index, block, want)
        pending = np.arange(block.shape[0])
        while want < n_index:
            near = _near_the_cut(cosines[pending], rows[pending], fetch, want, margin)
            pending = pending[near]
            if pending.size == 0:
                break
            want = min(2 * want, n_index)
            more_cosines, more_rows = self._faiss_call(index, block[pending], want)
            width = more_rows.shape[1]
            cosines = np.pad(
                cosines,
                ((0, 0), (0, width - cosines.shape[1])),
                constant_values=-np.inf,
            )
            rows = np.pad(
                rows, ((0, 0), (0, width - rows.shape[1])), constant_values=-1
            )
            cosines[pending], rows[pending] = more_cosines, more_rows
        return rows

    def _exact_cut(self, block, rows, fetch):
        """Exact cosines of the fetched ``rows``, and the rows kept: those at
        least as good as each query's ``fetch``-th exact cosine."""
        exact = _stored_dots(self, block, rows)
        if exact.shape[1] > fetch:
            # What was fetched beyond the cut and does not tie with it is not
            # a candidate: CSLS re-ranks the shortlist, ties included, and a
            # copy of an unrelated row must not widen it.
            cut = -np.partition(-exact, fetch - 1, axis=1)[:, fetch - 1 : fetch]
            extra = exact < cut
            exact = np.where(extra, -np.inf, exact)
            rows = np.where(extra, -1, rows)
        return exact, rows

    def _faiss_call(self, index, block, fetch):
        # Plain ints: FAISS's bindings refuse numpy integers.
        fetch = int(fetch)
        params = None
        if self.backend == "faiss-hnsw":
            # The graph walk keeps ef candidates and returns the best `fetch`.
            # Passed with this call, not set on the shared index: a search of
            # another thread changed it between the setting and the walk
            # (k=1 beside a k=300 search: other answers in 54 of 100 runs).
            params = import_faiss(self.backend).SearchParametersHNSW(
                efSearch=int(max(self.ef_search, fetch))
            )
        cosines, rows = index.search(np.ascontiguousarray(block), fetch, params=params)
        return cosines.astype(np.float64), rows

    def _faiss_search(self, prepared, k):
        csls = self.method == "csls"
        fetch = k
        if csls:
            fetch = min(self.n_index_, max(k, self.csls_k, self.shortlist))
        scores = np.empty((prepared.shape[0], k))
        indices = np.empty((prepared.shape[0], k), dtype=np.int64)
        for start in range(0, prepared.shape[0], self.batch_size):
            batch = prepared[start : start + self.batch_size]
            for queries, cosines, rows in self._faiss_fetched(batch, fetch):
                places = start + queries
                if not csls:
                    best, where = _best_rows(cosines, rows, rows >= 0, k)
                    scores[places] = best
                    indices[places] = np.take_along_axis(rows, where, axis=1)
                    continue
                scores[places], indices[places] = self._faiss_csls(
                    batch[queries], cosines, rows, fetch, k
                )
        return scores, indices

    def _faiss_csls(self, block, cosines, rows, fetch, k):
        """CSLS's k best of each query, from its ``fetch`` best rows by cosine.

        A row outside a query's shortlist has a lower cosine than the
        shortlist's last, ``c``, so its score ``2 cos - r(t)`` is below
        ``2 c - r(t)``: it can reach the query's k-th score ``s`` only if its
        penalty is below ``2 c - s``. With ``"faiss-flat"`` those rows (the
        index's lowest penalties; often none) are scored as well, so the
        result is CSLS's exact k best whatever ``shortlist`` is. HNSW's
        shortlist is approximate: its rows are re-ranked alone.
        """
        found = rows >= 0
        # r_T(q) from the shortlist, which holds the csls_k best cosines.
        query_penalty = _mean_of_largest(cosines, found, self.csls_k)
        penalties = self.penalties_
        scores = np.where(found, 2 * cosines - penalties[np.maximum(rows, 0)], -np.inf)
        if self.backend == "faiss-flat" and fetch < self.n_index_:
            kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
            last = np.where(found, cosines, np.inf).min(axis=1)
            # A hair above the bound: a row tied with the k-th score competes
            # by its row number, and the scores are rounded in float64.
            limit = 2 * last - kth + 1e-9
            counts = np.searchsorted(self._sorted_penalties, limit, side="right")
            if counts.any():
                more_cosines, more_rows = self._outside_rows(
                    block, rows, counts, last, kth
                )
                more_scores = np.where(
                    more_rows >= 0,
                    2 * more_cosines - penalties[np.maximum(more_rows, 0)],
                    -np.inf,
                )
                scores = np.concatenate([scores, more_scores], axis=1)
                rows = np.concatenate([rows, more_rows], axis=1)
                found = rows >= 0
        best, where = _best_rows(scores, rows, found, k)
        return best - query_penalty[:, None], np.take_along_axis(rows, where, axis=1)

    def _outside_rows(self, block, rows, counts, last, kth):
        """The rows among the ``counts[i]`` of lowest penalty that lie outside
        query i's shortlist ``rows[i]`` (exact cosine below ``last[i]``) and
        whose CSLS score may reach ``kth[i]``, with their exact cosines: one
        row of each array per query, padded with row -1 and cosine ``-inf``.

        The candidates are taken in blocks of rows, each copied out of FAISS
        once for every query and scored by one float32 product; only the
        pairs that product cannot rule out (by its rounding margin), and that
        are not in the shortlist already, are scored exactly, a bounded
        number at a time. Memory is one block of candidates and its products.
        """
        margin = score_margin(block.shape[1], np.float32)
        top = int(counts.max())
        step = max(256, _CANDIDATE_SCORES // block.shape[0])
        # The shortlists' rows by rank in the penalty order: rows tied with a
        # shortlist's last cosine pass the float32 test, and next to many
        # copies of one row they are thousands per query (at 50,000 rows,
        # half of them copies, 200 queries scored 5 million such pairs,
        # holding 1.8 GiB).
        listed_query, column = np.nonzero(rows >= 0)
        listed_rank = self._penalty_rank[rows[listed_query, column]]
        keep = listed_rank < top
        listed_query, listed_rank = listed_query[keep], listed_rank[keep]
        place = np.empty(block.shape[0], dtype=np.int64)
        found = []
        for start in range(0, top, step):
            stop = min(start + step, top)
            active = np.flatnonzero(counts > start)
            candidates = self._penalty_order[start:stop]
            stored = self.faiss_index_.reconstruct_batch(candidates)
            approx = block[active] @ stored.T
            possible = (
                (np.arange(start, stop) < counts[active, None])
                & (approx < last[active, None] + margin)
                & (
                    2 * approx - self.penalties_[candidates]
                    >= kth[active, None] - 2 * margin
                )
            )
            del approx
            place[active] = np.arange(active.size)
            here = (listed_rank >= start) & (listed_rank < stop)
            here &= counts[listed_query] > start
            possible[place[listed_query[here]], listed_rank[here] - start] = False
            query, position = np.nonzero(possible)
            del possible
            query = active[query]
            for first in range(0, query.size, _CANDIDATE_PAIRS):
                pairs = slice(first, first + _CANDIDATE_PAIRS)
                pair_query, pair_position = query[pairs], position[pairs]
                cosines = shortlist_dots(
                    block[pair_query], stored[pair_position][:, None, :]
                )[:, 0]
                outside = cosines < last[pair_query]
                found.append(
                    (
                        pair_query[outside],
                        candidates[pair_position[outside]],
                        cosines[outside],
                    )
                )
        if not found:
            found.append((np.empty(0, np.int64),) * 2 + (np.empty(0),))
        query, rows, cosines = (
            np.concatenate(part) for part in zip(*found, strict=True)
        )
        order = np.argsort(query, kind="stable")
        query, rows, cosines = query[order], rows[order], cosines[order]
        # Each query's rows side by side.
        per_query = np.bincount(query, minlength=block.shape[0])
        first = np.cumsum(per_query) - per_query
        place = np.arange(query.size) - np.repeat(first, per_query)
        width = max(int(per_query.max(initial=0)), 1)
        more_cosines = np.full((block.shape[0], width), -np.inf)
        more_rows = np.full((block.shape[0], width), -1, dtype=np.int64)
        more_cosines[query, place] = cosines
        more_rows[query, place] = rows
        return more_cosines, more_rows

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags


def _near_the_cut(cosines, rows, fetch, want, margin):
    """Queries whose ``want``-th fetched row lies within the rounding
    ``margin`` of their ``fetch``-th: the cut may lie beyond what was fetched."""
    last = cosines[:, fetch - 1]
    return (rows[:, want - 1] >= 0) & (cosines[:, want - 1] >= last - margin)


# Float32 scores of candidate rows held at once by the exact FAISS CSLS search
# (16 MiB): the candidates of a block of queries are scored this many at a time.
_CANDIDATE_SCORES = 1 << 22
# Query-row pairs scored exactly at once (each copies its stored row).
_CANDIDATE_PAIRS = 1 << 14


def _stored_dots(index, prepared, rows):
    """Float64 dots of each prepared query with the stored index rows ``rows[i]``.

    For unit rows, the cosines. Each is a function of its query and row alone
    (:func:`shortlist_dots`), so it does not depend on the batch or on what
    scored it first. Missing rows (-1) get ``-inf``.
    """
    dots = np.empty(rows.shape)
    # Stored rows are copied out for a few thousand pairs at a time: a whole
    # batch's shortlists would be batch_size * shortlist rows.
    step = max(1, 4096 // max(rows.shape[1], 1))
    for start in range(0, rows.shape[0], step):
        part = np.maximum(rows[start : start + step], 0)
        if index.faiss_index_ is None:
            stored = index._rows[part]
        else:
            flat = index.faiss_index_.reconstruct_batch(part.ravel())
            stored = flat.reshape(*part.shape, -1)
        dots[start : start + step] = shortlist_dots(
            prepared[start : start + step], stored
        )
    dots[rows < 0] = -np.inf
    return dots


def _row_scores(index, prepared, rows):
    """Each query's score of the index rows ``rows[i]``, computed from the rows.

    Cosine, or for CSLS ``2 cos - r(t)``: :meth:`EmbeddingIndex.kneighbors`'
    score plus the query's own penalty, a constant along the query that ranks
    nothing. Missing rows (-1) score ``-inf``.
    """
    scores = _stored_dots(index, prepared, rows)
    if index.method == "csls":
        scores = 2 * scores - index.penalties_[np.maximum(rows, 0)]
    return scores


def _union_rows(shortlists):
    """Per query, the distinct rows of several shortlists; -1 pads each row."""
    rows = np.sort(np.concatenate(shortlists, axis=1), axis=1)
    repeated = np.zeros(rows.shape, dtype=bool)
    repeated[:, 1:] = rows[:, 1:] == rows[:, :-1]
    return np.where(repeated, -1, rows)


# Shortlisted rows per block of queries in fused_kneighbors, at most, and the
# bytes each holds while the block is fused (its row, scores in every search,
# the fused sum, sort keys and masks): a block of 2**22 held about 250 MiB.
_FUSED_BLOCK = 1 << 22
_FUSED_BYTES_PER_ROW = 64


def _fuse_block(indexes, searched, weights, block, fetch, k, out):
    """Fused top-k of the queries ``block`` from shortlists of ``fetch`` rows.

    ``searched`` holds each index's queries and the mean they are centred
    on; the block's are prepared here, so that prepared copies cost one
    block, not every query. Writes the fused top-k into ``out`` (scores,
    indices) and returns, per query, how far its k-th sum lies above the sum
    of the shortlists' last scores: the bound of any row in no shortlist.
    """
    prepared = [
        index._prepared_rows(queries, mean, block)
        for index, (queries, mean) in zip(indexes, searched, strict=True)
    ]
    lists = [
        index._search_prepared(rows, fetch)[1]
        for index, rows in zip(indexes, prepared, strict=True)
    ]
    union = _union_rows(lists)
    fused = np.zeros(union.shape)
    floor = np.zeros(block.size)
    for weight, index, rows, found in zip(
        weights, indexes, prepared, lists, strict=True
    ):
        fused += weight * _row_scores(index, rows, union)
        floor += weight * _row_scores(index, rows, found[:, -1:])[:, 0]
    # Best first, equal sums by row; padding (-1, -inf) last.
    order = np.lexsort((np.where(union >= 0, union, np.iinfo(np.int64).max), -fused))
    order = order[:, :k]
    best = np.take_along_axis(fused, order, axis=1)
    out[0][block] = best
    out[1][block] = np.take_along_axis(union, order, axis=1)
    return best[:, -1] - floor


def _exact_shortlists(index):
    """Whether the index's top-m holds every row scoring above its m-th.

    The numpy backend and a flat FAISS index rank the whole index (with CSLS,
    the flat index also scores the rows outside its cosine shortlist that
    could rank); HNSW walks a graph.
    """
    return index.backend in ("numpy", "faiss-flat")


@validate_params(
    {
        "searches": [list, tuple],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "weights": ["array-like", None],
        "shortlist": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def fused_kneighbors(searches, n_neighbors=10, *, weights=None, shortlist=100):
    """The best rows of one corpus for queries searched in several indexes at once.

    Each search is an :class:`EmbeddingIndex` of the same corpus (the same
    documents in the same row order, each in its own space: an old model's
    index, and the same index translated into a new model's space) with the
    queries in that index's space (the new model's queries translated into the
    old space, and the queries themselves). A row's fused score is the
    weighted sum of its scores in every index, so a document that two
    imperfect searches both place high beats one that only a single search
    likes: when the errors of two migrated setups differ, their sum ranks
    better than either (see the :ref:`User Guide <migration>`).

    Each index returns its ``shortlist`` best rows per query; every row of
    their union is scored in every index from the stored rows, and the best
    sums are kept. When every index ranks its whole index exactly (the numpy
    backend, or ``"faiss-flat"``), a row in no shortlist scores at most each
    index's last shortlisted score, so the result is exact once the
    ``n_neighbors``-th sum exceeds the sum of those; the shortlists of the
    queries where it does not are doubled until it does, up to the whole
    index. With an approximate index (``"faiss-hnsw"``) the result is as
    approximate as its shortlists.

    Read more in the :ref:`User Guide <migration>`.

    Parameters
    ----------
    searches : list of (EmbeddingIndex, array-like) pairs
        At least one fitted index and the queries to search in it, of shape
        (n_queries, n_features of that index); every index has the same
        number of rows, every query array the same number of rows (row i of
        each is the same query). CSLS indexes need their penalties
        (:meth:`EmbeddingIndex.fit_queries`).
    n_neighbors : int, default=10
        Rows returned per query, at most the number of index rows.
    weights : array-like of shape (n_searches,) or None, default=None
        Positive weight of each search's score; None weighs them equally.
    shortlist : int, default=100
        Rows each index contributes per query at first (at least
        ``n_neighbors``).

    Returns
    -------
    scores : ndarray of shape (n_queries, n_neighbors), float64
        Weighted sum of each row's scores, best first. An index's score is
        the cosine, or for CSLS ``2 cos(q, t) - r(t)``: the score of
        :meth:`EmbeddingIndex.kneighbors` plus the query's own penalty
        ``r(q)``, a constant for the query that changes no rank.
    indices : ndarray of shape (n_queries, n_neighbors), int64
        Index rows, best first; equal sums in the order of their rows. An
        approximate index can leave a query fewer rows: the missing places
        hold -1 and score ``-inf``.

    See Also
    --------
    EmbeddingIndex.kneighbors : The search of one index.

    Examples
    --------
    >>> import numpy as np
    >>> from skembed import EmbeddingIndex, fused_kneighbors
    >>> rng = np.random.default_rng(0)
    >>> old = rng.standard_normal((200, 16))
    >>> new = old @ rng.standard_normal((16, 12))
    >>> searches = [
    ...     (EmbeddingIndex().fit(old), old[:5] + 0.1 * rng.standard_normal((5, 16))),
    ...     (EmbeddingIndex().fit(new), new[:5] + 0.1 * rng.standard_normal((5, 12))),
    ... ]
    >>> scores, rows = fused_kneighbors(searches, n_neighbors=3)
    >>> rows[:, 0]
    array([0, 1, 2, 3, 4])
    """
    searches = list(searches)
    if not searches:
        raise ValueError("searches is empty: pass at least one (index, queries) pair.")
    searched = []
    for position, search in enumerate(searches):
        if not (isinstance(search, (tuple, list)) and len(search) == 2):
            raise TypeError(
                f"searches[{position}] must be a pair (index, queries), got "
                f"{type(search).__name__}."
            )
        index, queries = search
        if not isinstance(index, EmbeddingIndex):
            raise TypeError(
                f"searches[{position}][0] must be a fitted EmbeddingIndex, got "
                f"{type(index).__name__}."
            )
        queries = index._check_queries(queries, f"searches[{position}] queries")
        index._check_search_parameters(f"searches[{position}]")
        index._check_csls(f"searches[{position}]")
        searched.append((queries, index._query_mean()))
    indexes = [index for index, _ in searches]
    n_index = indexes[0].n_index_
    n_queries = searched[0][0].shape[0]
    for position, (index, (rows, _)) in enumerate(zip(indexes, searched, strict=True)):
        if index.n_index_ != n_index:
            raise ValueError(
                f"searches[{position}]'s index has {index.n_index_} rows and "
                f"searches[0]'s {n_index}: fused indexes must hold the same "
                "documents in the same order."
            )
        if rows.shape[0] != n_queries:
            raise ValueError(
                f"searches[{position}] has {rows.shape[0]} queries and "
                f"searches[0] {n_queries}: row i of every query array must be "
                "the same query."
            )
    if weights is None:
        weights = np.ones(len(searches))
    else:
        weights = check_numbers(weights, "weights")
        if weights.shape != (len(searches),) or not (weights > 0).all():
            raise ValueError(
                f"weights must hold one positive weight per search "
                f"({len(searches)}), got {weights.tolist()}."
            )
    k = n_neighbors
    if k > n_index:
        raise ValueError(
            f"n_neighbors={k} exceeds the number of index rows ({n_index})."
        )
    exact = all(_exact_shortlists(index) for index in indexes)
    # A row outside every shortlist can exceed the certified bound by the
    # rounding of the scores that ranked it (each index's margin, weighted).
    margin = sum(
        weight
        * score_margin(index.n_features_in_, index._dtype, csls=index.method == "csls")
        for weight, index in zip(weights, indexes, strict=True)
    )
    scores = np.full((n_queries, k), -np.inf)
    indices = np.full((n_queries, k), -1, dtype=np.int64)
    pending = np.arange(n_queries)
    fetch = min(max(k, shortlist), n_index)
    while pending.size:
        # Queries in blocks whose shortlists hold at most about 4 million
        # rows, fewer when scikit-learn's working_memory (MiB) asks for less,
        # so that memory stays bounded when shortlists widen to the whole
        # index.
        budget = get_config()["working_memory"] * 2**20 // _FUSED_BYTES_PER_ROW
        step = max(1, min(_FUSED_BLOCK, int(budget)) // (len(indexes) * fetch))
        widen = []
        for start in range(0, pending.size, step):
            block = pending[start : start + step]
            clearance = _fuse_block(
                indexes, searched, weights, block, fetch, k, out=(scores, indices)
            )
            if exact and fetch < n_index:
                widen.append(block[~(clearance > margin)])
        pending = np.concatenate(widen) if widen else pending[:0]
        fetch = min(2 * fetch, n_index)
    return scores, indices
