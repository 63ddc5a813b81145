"""The search engine: nearest neighbours by cosine or CSLS, and retrieval.

Every neighbour search of skembed runs here: the aligners' ``score``,
self-learning's dictionary induction, early stopping of the contrastive
aligner, the metrics and the user's own searches of queries against an index.
Scores are computed in blocks of query rows against all index rows, in the
input dtype (float32 products for float32 input: ample for ranking), with the
block height from one memory budget (:func:`skembed._stats.search_chunk_rows`);
no queries x index matrix is ever held whole. Block scores carry the BLAS's
position-dependent rounding; wherever it could decide a rank (candidates
closer than it, CSLS penalties), the public searches and the retrieval
accuracy use float64 scores recomputed from each pair of rows alone, so that
the neighbours they find are the same on every machine and in every batch
(the scores they report may differ in the last bits of the input dtype).
A float32 index is searched in float32: float64 queries are rounded to it,
rather than the whole index copied to float64.

CSLS (cross-domain similarity local scaling, Conneau et al., 2018) scores a
query q and an index row t by

.. math::

    \\operatorname{CSLS}(q, t) = 2 \\cos(q, t) - r_T(q) - r_Q(t),

where :math:`r_T(q)` is the mean cosine of q to its ``csls_k`` nearest index
rows and :math:`r_Q(t)` that of t to its ``csls_k`` nearest rows of a query
*pool*. It discounts "hubs", index rows that are near everything. As in
MUSE's protocol, the pool that defines :math:`r_Q` may be larger than the
queries searched now: compute it once with :func:`csls_penalties` and pass it
as ``index_penalties``.

Input is validated once, at the public entry points; nothing here imports
from above :mod:`skembed._stats`.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions

from skembed._parallel import map_row_groups, row_groups
from skembed._params import validate_params
from skembed._stats import product_safe_rows, row_norms, search_chunk_rows, unit_rows
from skembed._views import check_float_array
from skembed._warnings import warn

__all__ = [
    "alignment_score",
    "check_numbers",
    "warn_trivial_k",
    "check_vectors",
    "csls_penalties",
    "first_copies",
    "first_pair_copies",
    "kneighbors",
    "mutual_matches",
    "neighbourhood_mean_operator",
    "retrieval_accuracy",
    "score_margin",
    "search_unit_index",
    "shortlist_dots",
    "unit_index_penalties",
]


# --------------------------------------------------------------------------
# Validation (public entry points only)
# --------------------------------------------------------------------------
def check_vectors(X, name, **check_params):
    """X as a 2-d float32 or float64 matrix with at least one row.

    float16 (a storage type: the shared corpora and many vector stores keep
    embeddings in it) is searched in float32, as :func:`translate_file`
    translates it, not widened to float64 at four times its memory.
    """
    _check_matrix(X, name)
    array = check_float_array(
        X,
        name,
        dtype=(np.float32,) if _half_precision(X) else (np.float64, np.float32),
        ensure_min_samples=0,
        **check_params,
    )
    if array.shape[0] == 0:
        raise ValueError(f"{name} has no rows; pass at least one vector.")
    return array


def _half_precision(X):
    """Whether X holds float16 values only: an array, or a frame's columns."""
    if getattr(X, "dtype", None) == np.float16:
        return True
    # A pandas DataFrame: one dtype per column (check_array widens a frame
    # of float16 columns to float64, as it does a float16 array).
    dtypes = getattr(X, "dtypes", None)
    if isinstance(dtypes, pd.Series) and len(dtypes):
        return all(dtype == np.float16 for dtype in dtypes)
    return False


def _check_matrix(X, name):
    """Refuse an array, or a flat list of numbers, that is not a matrix.

    scikit-learn's message names neither the input nor the search, and
    offers ``reshape(-1, 1)``, which makes one vector into rows of one
    feature each.
    """
    if sp.issparse(X):
        return
    if isinstance(X, list | tuple):
        # A list of numbers is one vector; a list of rows is read by check_array.
        ndim = 1 if X and all(np.ndim(item) == 0 for item in X) else None
        shape = (len(X),)
    else:
        ndim, shape = getattr(X, "ndim", None), getattr(X, "shape", None)
    if not isinstance(ndim, Integral) or ndim == 2:
        return
    if ndim == 1:
        raise ValueError(
            f"{name} is a 1-D array of shape {tuple(shape)}, but it must be a "
            "matrix of shape (n_rows, n_features), one vector per row; pass a "
            "single vector as one row: vector.reshape(1, -1), or [vector]."
        )
    raise ValueError(
        f"{name} is a {ndim}-D array of shape {tuple(shape)}, but it must be a "
        "matrix of shape (n_rows, n_features), one vector per row; stack the "
        "vectors into one 2-D array."
    )


def check_numbers(values, name):
    """``values`` as a 1-d float64 array; an error naming ``name`` otherwise."""
    try:
        return check_array(values, ensure_2d=False, dtype=np.float64, input_name=name)
    except (TypeError, ValueError) as exc:
        if name in str(exc):
            raise
        raise ValueError(f"{name} must be an array of numbers: {exc}") from None


def _check_pair(queries, index, names):
    """Two float matrices of one space and one dtype."""
    queries = check_vectors(queries, names[0])
    index = check_vectors(index, names[1])
    if queries.shape[1] != index.shape[1]:
        raise ValueError(
            f"{names[0]} has {queries.shape[1]} columns and {names[1]} has "
            f"{index.shape[1]}: nearest neighbours need vectors of one space. Map "
            "both into a shared space first, for example with an aligner's "
            "transform_view."
        )
    if index.dtype == np.float32 and queries.dtype == np.float64:
        # The index is the large side: a float64 copy of it would double or
        # triple the search's memory, for precision the index does not have.
        # Cosines ignore a row's scale, so a power of two (exact) first
        # brings every query row far outside float32's range into it.
        return _exactly_scaled(queries, limit=100).astype(np.float32), index
    dtype = np.result_type(queries.dtype, index.dtype)
    return queries.astype(dtype, copy=False), index.astype(dtype, copy=False)


def _check_csls_k(csls_k, pool, names):
    if not 1 <= csls_k <= pool:
        raise ValueError(
            f"csls_k={csls_k} must be between 1 and the number of rows of "
            f"{names} ({pool}); lower csls_k."
        )


# --------------------------------------------------------------------------
# Blocked kernels (validated, same-dtype inputs)
# --------------------------------------------------------------------------
def _cosine_blocks(Q, T, chunk_size=None, *, unit_q=False, unit_t=False):
    """Yield ``(start, stop, S)``: cosines of a block of Q rows with all T rows.

    Zero rows have cosine 0 with everything. ``unit_q`` and ``unit_t`` say
    that the rows of Q or T already have unit (or zero) length, which saves a
    pass over them (an index searched many times is normalised once). Every
    block is written into the same buffer: S is valid until the next one.
    Q's rows are normalised a block at a time before the product (a copy of
    the block's rows, not of the scores); T's columns, when they are not
    unit, scale the scores.
    """
    inverse_q = inverse_t = None
    if not unit_q:
        Q = product_safe_rows(Q)
        inverse_q = (1 / row_norms(Q)).astype(Q.dtype)
    if not unit_t:
        T = product_safe_rows(T)
        inverse_t = (1 / row_norms(T)).astype(T.dtype)
    rows = chunk_size or search_chunk_rows(T.shape[0], Q.dtype)
    # One buffer for every block: a fresh array each time costs its page
    # faults, about as much as a pass over the block.
    buffer = np.empty((min(rows, Q.shape[0]), T.shape[0]), dtype=Q.dtype)
    for start in range(0, Q.shape[0], rows):
        stop = min(start + rows, Q.shape[0])
        block = Q[start:stop]
        if inverse_q is not None:
            block = block * inverse_q[start:stop, None]
        S = np.matmul(block, T.T, out=buffer[: stop - start])
        if inverse_t is not None:
            S *= inverse_t[None, :]
        yield start, stop, S


# Pairs whose scores are recomputed per batch: two gathered float64 blocks of
# this many rows stay within a few MiB.
_RESCORE_PAIRS = 2048
# Pairs in doubt beyond which copies among their index rows are looked for
# (see _ExactScores.copies); fewer cost less to score than to group.
_GROUPED_PAIRS = 16 * _RESCORE_PAIRS


def _exactly_scaled(rows, limit=400):
    """Float64 copies of float64 ``rows``; a row whose largest entry lies
    beyond ``2**limit`` or below ``2**-limit`` (by default: whose squares
    would leave float64) is multiplied by the power of two (exact) that
    brings that entry into [0.5, 1)."""
    rows = np.array(rows, dtype=np.float64)
    peak = np.max(np.abs(rows), axis=1, initial=0.0)
    extreme = (peak > 2.0**limit) | ((peak < 2.0**-limit) & (peak > 0))
    if extreme.any():
        _, exponent = np.frexp(peak[extreme])
        rows[extreme] = np.ldexp(rows[extreme], -exponent[:, None])
    return rows


def _pair_dots(q, t):
    """Float64 dot products of the row pairs of q and t (broadcast over the
    leading axes), one fixed sequence of operations per pair (NumPy's
    pairwise sum along the last axis): a function of the two rows alone.
    Products of float32 entries are exact in float64."""
    return np.add.reduce(np.multiply(q, t, dtype=np.float64), axis=-1)


def _gathered(X, index):
    """Rows ``X[index]`` ready for :func:`_pair_dots`: float32 rows as they are
    (their products are exact in float64), float64 rows through
    :func:`_exactly_scaled`."""
    rows = X[index]
    return rows if rows.dtype == np.float32 else _exactly_scaled(rows)


class _ExactScores:
    """Float64 cosine (or CSLS) scores of chosen pairs of Q rows and T rows.

    A BLAS product rounds a row's scores differently by its position in the
    block (by up to about ``d * eps``), so two equal index rows can differ in
    the last bits, in a way that depends on the machine and on the batch.
    Here every score is a function of its two rows alone (:func:`_pair_dots`).
    Row norms are computed once per row, when first needed; ``unit_q`` /
    ``unit_t`` say the rows are already normalised (float32 rows then count as
    norm 1). ``penalties`` (float64), when given, turn cosines into CSLS
    scores ``2 cos - penalty``. Zero rows have cosine 0.
    """

    def __init__(self, Q, T, penalties=None, *, unit_q=False, unit_t=False):
        self.Q, self.T, self.penalties = Q, T, penalties
        # float64 rows may have been rescaled (_exactly_scaled): measure them
        self.q_norms = None if unit_q and Q.dtype == np.float32 else _LazyNorms(Q)
        self.t_norms = None if unit_t and T.dtype == np.float32 else _LazyNorms(T)

    def __call__(self, rows, cols):
        if len(rows) > _GROUPED_PAIRS:
            # So many pairs in doubt at once come from rows tied over much of
            # the index, most often copies of one document. Copies (equal rows
            # with equal penalties, see copies) score alike: each query row is
            # scored once against each group of them.
            distinct = np.unique(cols)
            firsts = self.copies(distinct)
            if np.count_nonzero(firsts == distinct) < distinct.size // 2:
                scored = firsts[np.searchsorted(distinct, cols)]
                keys, inverse = np.unique(
                    rows.astype(np.int64) * self.T.shape[0] + scored,
                    return_inverse=True,
                )
                q_rows, t_rows = np.divmod(keys, self.T.shape[0])
                return self(q_rows, t_rows)[inverse.ravel()]
        out = np.empty(len(rows))
        for start in range(0, len(rows), _RESCORE_PAIRS):
            stop = min(start + _RESCORE_PAIRS, len(rows))
            q_index, t_index = rows[start:stop], cols[start:stop]
            dots = _pair_dots(_gathered(self.Q, q_index), _gathered(self.T, t_index))
            norms = np.ones(stop - start)
            if self.q_norms is not None:
                norms *= self.q_norms(q_index)
            if self.t_norms is not None:
                norms *= self.t_norms(t_index)
            norms[norms == 0] = np.inf  # a zero row: cosine 0
            out[start:stop] = dots / norms
        if self.penalties is not None:
            out *= 2
            out -= self.penalties[cols]
        return out

    def block(self, offset):
        """The scores of a block whose first row is ``offset`` in Q."""
        return _BlockScores(self, offset)

    def copies(self, cols):
        """For sorted distinct T rows ``cols``, the first of them that is a copy
        of each (itself when none before it is): bitwise equal, and with a
        bitwise-equal penalty under CSLS (penalties a caller passed need not
        be equal for equal rows). Copies have equal exact scores."""
        return _first_copies_among(self.T, cols, self.penalties)


class _BlockScores:
    """:class:`_ExactScores` of a block of queries (rows counted from its start)."""

    def __init__(self, scores, offset):
        self.scores, self.offset = scores, offset

    def __call__(self, rows, cols):
        return self.scores(rows + self.offset, cols)

    def copies(self, cols):
        return self.scores.copies(cols)

    def row_copies(self, n_rows):
        """For each of the block's ``n_rows`` rows, its first copy in the block."""
        rows = np.arange(self.offset, self.offset + n_rows)
        return _first_copies_among(self.scores.Q, rows) - self.offset


# Rows hashed or compared per step of _first_copies_among.
_HASHED_ROWS = 4096
# Odd 64-bit multipliers of the row hash, one per 8-byte word (repeated).
_HASH_WORDS = np.random.default_rng(0).integers(
    1, 2**63, size=64, dtype=np.uint64
) * np.uint64(2) + np.uint64(1)


def _row_words(rows, extra=None):
    """The bytes of each row (and of its ``extra`` entry) as unsigned words."""
    parts = [np.ascontiguousarray(rows)]
    if extra is not None:
        parts.append(np.ascontiguousarray(extra)[:, None])
    words = []
    for part in parts:
        raw = part.view(np.uint8).reshape(part.shape[0], -1)
        width = 8 if raw.shape[1] % 8 == 0 else 4 if raw.shape[1] % 4 == 0 else 1
        kind = {8: np.uint64, 4: np.uint32, 1: np.uint8}[width]
        words.append(raw.view(kind).astype(np.uint64, copy=False))
    return np.hstack(words) if len(words) > 1 else words[0]


def _row_hashes(X, rows, extra=None):
    """A 64-bit hash of the bytes of each row ``rows`` of X (and of its
    ``extra`` entry), hashed a few thousand rows at a time."""
    hashes = np.empty(rows.size, dtype=np.uint64)
    for start in range(0, rows.size, _HASHED_ROWS):
        index = rows[start : start + _HASHED_ROWS]
        part = _row_words(X[index], None if extra is None else extra[index])
        weights = np.resize(_HASH_WORDS, part.shape[1])
        # Wrapping products and sums: a 64-bit hash of the bytes.
        hashes[start : start + part.shape[0]] = (part * weights).sum(axis=1)
    return hashes


def _first_copies_among(X, rows, extra=None):
    """For sorted distinct row numbers ``rows`` of X, the first of them whose
    row (and ``extra`` entry) is bitwise equal to each one's.

    Rows are hashed and then compared with their group's first row, a few
    thousand at a time: memory O(len(rows)) beyond a step, never a copy of
    all the rows (the rows tied with a query can be most of the index). A
    row whose hash matches but whose bytes differ counts as its own first:
    it is then ranked alone, which is never wrong, only slower.
    """

    def words(index):
        return _row_words(X[index], None if extra is None else extra[index])

    hashes = _row_hashes(X, rows, extra)
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    firsts = rows[first[inverse.ravel()]]
    grouped = np.flatnonzero(firsts != rows)
    for start in range(0, grouped.size, _HASHED_ROWS):
        step = grouped[start : start + _HASHED_ROWS]
        differ = np.any(words(rows[step]) != words(firsts[step]), axis=1)
        firsts[step[differ]] = rows[step[differ]]
    return firsts


def shortlist_dots(Q, T):
    """Float64 dot products of each row ``Q[i]`` with each row ``T[i, j]``.

    ``Q`` has shape (n, d) and ``T`` (n, m, d), both float32 (their products
    are exact in float64). Every dot is one fixed sequence of operations on
    its two rows, as in :func:`_pair_dots` (NumPy's pairwise sum along a
    contiguous row), so bitwise-equal rows get equal dots whatever block,
    batch or library scored them first. For unit rows these are the cosines.
    """
    return _pair_dots(Q[:, None, :], T)


class _LazyNorms:
    """Norms of the rows of X as :func:`_pair_dots` measures them, each
    computed once, when first asked for."""

    def __init__(self, X):
        self.X = X
        self.norms = np.full(X.shape[0], np.nan)

    def __call__(self, index):
        missing = np.unique(index[np.isnan(self.norms[index])])
        if missing.size:
            rows = _gathered(self.X, missing)
            self.norms[missing] = np.sqrt(_pair_dots(rows, rows))
        return self.norms[index]


def score_margin(d, dtype, *, csls=False):
    """Twice the largest distance between a block score and its exact value.

    A cosine of unit rows from a product of length d is within ``(d + 8) *
    eps`` of the float64 one (normalising the rows adds a few eps); a CSLS
    score doubles that and adds the rounding of its penalty and of
    ``2 cos - penalty``. Twice the bound: a score can only beat another by
    more than this if its exact value does too.
    """
    eps = np.finfo(dtype).eps + np.finfo(np.float64).eps
    cosine = (d + 8) * eps
    return 2 * (2 * cosine + 8 * eps if csls else cosine)


def _window(S, k, margin, scratch):
    """Mask of the entries of S that may be among their row's k best.

    Every entry within ``margin`` of the row's k-th largest block score: by
    the margin, the exact k best are among them.
    """
    n_cols = S.shape[1]
    copy = scratch.copy_of(S)
    copy.partition(n_cols - k, axis=1)
    floor = copy[:, n_cols - k] - S.dtype.type(margin)
    return S >= floor[:, None]


def _row_groups_within(counts, budget):
    """Consecutive row ranges whose candidates add up to at most ``budget``
    (a range of one row may exceed it)."""
    ends = np.cumsum(counts)
    start = 0
    while start < counts.size:
        base = ends[start - 1] if start else 0
        stop = int(np.searchsorted(ends, base + budget, side="right"))
        stop = max(stop, start + 1)
        yield start, stop
        start = stop


# Candidates of one row beyond which its block is searched for copies of
# index rows (see _exact_topk); near-ties of a few hundred rows are ranked
# as they are.
_CROWDED_ROW = 1024


def _group_ranks(groups):
    """Rank of every entry among the earlier entries of its group (0 first)."""
    order = np.argsort(groups, kind="stable")
    grouped = groups[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    sizes = np.diff(np.r_[starts, grouped.size])
    rank = np.empty(groups.size, dtype=np.int64)
    rank[order] = np.arange(grouped.size) - np.repeat(starts, sizes)
    return rank


def _drop_crowding_copies(within, counts, k, exact):
    """Drop from ``within`` the index rows that cannot be among any row's k best.

    Only rows with more than ``_CROWDED_ROW`` candidates, tied over much of
    the index, are looked at; most often they are near a document copied
    many times. A copy with k copies before it is never among the k best:
    copies score exactly alike and ties go to the lower index. Measured once,
    outside the benchmarks: 300 queries near a document copied into half of
    an index of 200,000 x 64 took 8.2 s to rank before (nearest neighbours).
    """
    crowded = counts > _CROWDED_ROW
    if not crowded.any():
        return counts
    columns = np.flatnonzero(within[crowded].any(axis=0))
    later = _group_ranks(exact.copies(columns)) >= k
    if not later.any():
        return counts
    within[:, columns[later]] = False
    return within.sum(axis=1)


def _copied_rows(within, counts, k, exact):
    """Rows of the block that copy an earlier one (None when it is not worth
    looking): they get that row's neighbours, which are exactly the same.

    Looked for when the rows have many more candidates than k between them,
    as rows of an index copied many times do when their CSLS penalties are
    ranked against the queries.
    """
    if counts.sum() <= max(_GROUPED_PAIRS, 4 * k * counts.size):
        return None
    firsts = exact.row_copies(counts.size)
    copied = firsts != np.arange(counts.size)
    if not copied.any():
        return None
    within[copied] = False
    counts[copied] = 0
    return firsts


def _exact_topk(S, k, margin, exact, scratch, *, all_exact=False):
    """Top-k columns of each row of S, best first, ties to the lower index,
    ranked as their exact scores rank them; returns (float64 scores, columns).

    The candidates (within the margin of the k-th block score) are sorted by
    block score; a run of candidates closer than the margin to the next is
    in doubt and re-scored exactly, while a candidate farther than the margin
    from both neighbours keeps its block score, which ranks it as its exact
    score would. With ``all_exact``, every candidate is re-scored. Where
    rows tie over much of the index, copies of index rows that cannot rank
    are dropped first, and copied rows are ranked once.

    A candidate costs about 40 bytes (its row, column, scores and sort
    order) where the block spends 4 or 8 per score; rows tied over much of
    the index (a zero query ties with every row) are therefore ranked a few
    at a time, so that their candidates stay within the block's memory.
    """
    within = _window(S, k, margin, scratch)
    counts = _drop_crowding_copies(within, within.sum(axis=1), k, exact)
    firsts = _copied_rows(within, counts, k, exact)
    budget = max(S.shape[1], S.size // 8)
    scores = np.empty((S.shape[0], k))
    columns = np.empty((S.shape[0], k), dtype=np.int64)
    for start, stop in _row_groups_within(counts, budget):
        flat = np.flatnonzero(within[start:stop])
        if not flat.size:
            continue
        local, cols = np.divmod(flat, S.shape[1])
        rows = local + start
        vals = S[rows, cols].astype(np.float64)
        if all_exact:
            vals = exact(rows, cols)
        else:
            order = np.lexsort((cols, -vals, rows))
            rows, cols, vals = rows[order], cols[order], vals[order]
            close = (rows[1:] == rows[:-1]) & (vals[:-1] - vals[1:] <= margin)
            doubt = np.zeros(len(vals), dtype=bool)
            doubt[:-1] |= close
            doubt[1:] |= close
            if doubt.any():
                vals[doubt] = exact(rows[doubt], cols[doubt])
        order = np.lexsort((cols, -vals, rows))
        # Every ranked row has at least k candidates (the copied rows have
        # none); keep its first k in that order.
        ranked = start + np.flatnonzero(counts[start:stop])
        first = np.searchsorted(rows[order], ranked)
        take = order[(first[:, None] + np.arange(k)).ravel()]
        scores[ranked] = vals[take].reshape(-1, k)
        columns[ranked] = cols[take].reshape(-1, k)
    if firsts is not None:
        scores, columns = scores[firsts], columns[firsts]
    return scores, columns


def _exact_mean_top(S, k, margin, exact, scratch):
    """Mean of the k largest exact scores of each row (the block's candidates)."""
    values = _exact_topk(S, k, margin, exact, scratch, all_exact=True)[0]
    # Summed best first: equal rows give bit-equal means.
    return values.mean(axis=1)


class _Scratch:
    """A reusable array for the partition copies of a sequence of blocks."""

    def __init__(self):
        self.array = None

    def copy_of(self, S):
        if (
            self.array is None
            or self.array.shape[0] < S.shape[0]
            or self.array.shape[1:] != S.shape[1:]
            or self.array.dtype != S.dtype
        ):
            self.array = np.empty_like(S)
        copy = self.array[: S.shape[0]]
        np.copyto(copy, S)
        return copy


def _mean_top(S, k, scratch):
    """Mean of the k largest values of each row of S, in float64."""
    n_cols = S.shape[1]
    copy = scratch.copy_of(S)
    copy.partition(n_cols - k, axis=1)
    return copy[:, n_cols - k :].mean(axis=1, dtype=np.float64)


def _penalties(pool, T, csls_k, chunk_size=None, *, unit_index=False):
    """r_pool(t): mean cosine of each T row to its csls_k nearest pool rows.

    From exact cosines (:class:`_ExactScores`), so that equal T rows get
    equal penalties wherever they sit.
    """
    out = np.empty(T.shape[0])
    scratch = _Scratch()
    margin = score_margin(T.shape[1], T.dtype, csls=False)
    exact = _ExactScores(T, pool, unit_q=unit_index)
    for start, stop, S in _cosine_blocks(T, pool, chunk_size, unit_q=unit_index):
        out[start:stop] = _exact_mean_top(
            S, csls_k, margin, exact.block(start), scratch
        )
    return out


def _kneighbors(
    Q, T, k, method, csls_k, index_penalties, chunk_size=None, *, unit_index=False
):
    """Top-k by cosine or CSLS, ranked as exact scores rank them, so that equal
    rows tie exactly and ties go to the lower row on every machine and in
    every batch (see :func:`_exact_topk`)."""
    scores = np.empty((Q.shape[0], k))
    indices = np.empty((Q.shape[0], k), dtype=np.int64)
    csls = method == "csls"
    exact_penalties = None
    if csls and index_penalties is None:
        index_penalties = _penalties(Q, T, csls_k, chunk_size, unit_index=unit_index)
    if csls:
        exact_penalties = np.asarray(index_penalties, dtype=np.float64)
        index_penalties = exact_penalties.astype(T.dtype)
    zero = ~Q.any(axis=1)
    if zero.any():
        # A row of zeros has cosine 0 with every index row: every row ties,
        # and ranking them exactly took seconds a query (29 s for 300 such
        # queries against 200,000 rows). Its neighbours are known: the first
        # k rows, or under CSLS (score -r_T(t), its own penalty 0) the k of
        # lowest penalty, ties to the lower row.
        order = (
            np.arange(k) if not csls else np.argsort(exact_penalties, kind="stable")[:k]
        )
        scores[zero] = 0.0 if not csls else -exact_penalties[order]
        indices[zero] = order
        kept = np.flatnonzero(~zero)
        if kept.size:
            scores[kept], indices[kept] = _kneighbors(
                Q[kept],
                T,
                k,
                method,
                csls_k,
                exact_penalties if csls else None,
                chunk_size,
                unit_index=unit_index,
            )
        return scores, indices
    margin = score_margin(T.shape[1], T.dtype, csls=csls)
    exact = _ExactScores(Q, T, exact_penalties, unit_t=unit_index)
    scratch = _Scratch()
    for start, stop, S in _cosine_blocks(Q, T, chunk_size, unit_t=unit_index):
        query_penalty = None
        if csls:
            # r_T(q) comes from the same cosine block before it becomes CSLS;
            # a constant along the query's row, it cannot change a rank.
            query_penalty = _mean_top(S, csls_k, scratch)
            S *= 2
            S -= index_penalties
        scores[start:stop], indices[start:stop] = _exact_topk(
            S, k, margin, exact.block(start), scratch
        )
        if csls:
            scores[start:stop] -= query_penalty[:, None]
    return scores, indices


# Columns of a block whose maximum bounds its row's k-th largest value from
# below (see _row_top_mean).
_ROW_CHUNK = 64


def _chunk_floor(S, k, width):
    """The k-th largest of each row's maxima over chunks of ``width`` columns.

    Each of those maxima is one of the row's values, so the floor is at
    most the row's k-th largest value (columns past the last whole chunk
    are left out; the bound holds all the same).
    """
    n_rows, n_cols = S.shape
    n_chunks = n_cols // width
    maxima = S[:, : n_chunks * width].reshape(n_rows, n_chunks, width).max(axis=2)
    return np.partition(maxima, n_chunks - k, axis=1)[:, n_chunks - k]


def _row_top_mean(S, k):
    """Row means of the k largest values of S; S may be overwritten.

    Each of a row's k largest chunk maxima (chunks of ``_ROW_CHUNK`` columns)
    is one of its values, so the k-th largest of them is at most the row's
    k-th largest value: only the entries at or above that floor, about k a
    row on embeddings, are ranked, instead of a partition of every row
    (measured once on 1,000 x 10,000 cosines of WordNet glosses, k = 10:
    0.019 s against 0.066 s). The k values are the same, so the means are
    equal to the bit. Rows with many ties at the top (copies of a row) have
    many entries at the floor; past ``4 k`` a row on average, every row is
    partitioned instead.
    """
    n_rows, n_cols = S.shape
    if n_cols // _ROW_CHUNK >= 2 * k:
        floor = _chunk_floor(S, k, _ROW_CHUNK)
        above = S >= floor[:, None]
        if np.count_nonzero(above) <= 4 * k * n_rows:
            flat = np.flatnonzero(above)
            top = _top_per_group(S.ravel()[flat], flat // n_cols, n_rows, k)
            return np.sort(top, axis=1).mean(axis=1, dtype=np.float64)
    S.partition(n_cols - k, axis=1)
    return np.sort(S[:, n_cols - k :], axis=1).mean(axis=1, dtype=np.float64)


# Candidates per row that a single-pass matching keeps for its best CSLS
# match (see mutual_matches). On 10,000 WordNet glosses, e5 mapped onto
# minilm, the best of the 40 largest cosines was provably the best CSLS match
# for 0.92-1.00 of the rows, from a random rotation to the supervised map.
_SHORTLIST = 40


def _row_shortlist(S, k, m):
    """Row means of the k largest values of S, and a shortlist of every row.

    The shortlist of row i is every entry at or above a floor ``t_i`` that
    is at most the row's m-th largest value (m >= k), found as in
    :func:`_row_top_mean` from the m-th largest maximum of chunks of columns
    (at least 2 m chunks, so about m entries a row on embeddings). Returns
    ``(means, floors, counts, columns, values)``, the entries in row-major
    order and ``counts`` of them per row; None where ties at the top (copies
    of a row) would list more than ``4 m`` entries a row on average. S is
    left unchanged.
    """
    n_rows, n_cols = S.shape
    width = min(_ROW_CHUNK, n_cols // (2 * m))
    if width < 1:
        # Rows shorter than 2 m: the whole row is its shortlist.
        floor = S.min(axis=1)
    else:
        floor = _chunk_floor(S, m, width)
    above = S >= floor[:, None]
    counts = np.count_nonzero(above, axis=1)
    if width >= 1 and counts.sum() > 4 * m * n_rows:
        return None
    flat = np.flatnonzero(above)
    rows, columns = np.divmod(flat, n_cols)
    values = S.ravel()[flat]
    top = _top_per_group(values, rows, n_rows, k)
    means = np.sort(top, axis=1).mean(axis=1, dtype=np.float64)
    index_type = np.int32 if n_cols <= np.iinfo(np.int32).max else np.int64
    return means, floor, counts, columns.astype(index_type), values


def _first_best_rows(S, best):
    """For every column of S, the lowest row holding the column's maximum ``best``."""
    # Flat indices (a 2-D np.nonzero is several times slower); they run row
    # by row, and minimum.at keeps each column's lowest row whatever the order.
    rows, cols = np.divmod(np.flatnonzero(S == best), S.shape[1])
    first = np.full(S.shape[1], S.shape[0], dtype=np.int64)
    np.minimum.at(first, cols, rows)
    return first


def _column_candidates(S, floor):
    """Entries of S at or above the floor of their column: (values, columns)."""
    flat = np.flatnonzero(S >= floor)
    return S.ravel()[flat], flat % S.shape[1]


def _order_key(values):
    """uint32 keys of float32 values, in the values' order (NaN-free input)."""
    bits = values.view(np.uint32)
    # Negative floats order backwards by their bits, positive ones forwards:
    # flip all bits of the first, set the sign bit of the second.
    return np.where(bits >> 31, ~bits, bits | np.uint32(0x80000000))


def _from_order_key(keys):
    """The float32 values of ``_order_key`` keys."""
    return np.where(keys >> 31, keys & np.uint32(0x7FFFFFFF), ~keys).view(np.float32)


def _top_per_group(values, groups, n_groups, k):
    """The k largest values of every group, as (n_groups, k).

    ``groups`` names the group (a column or a row of a block of scores) of
    each value; every group holds at least k values.
    """
    counts = np.bincount(groups, minlength=n_groups)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    take = (first[:, None] + np.arange(k)).ravel()
    if values.dtype == np.float32:
        # One sort of 64-bit integers (group, then value, largest first)
        # is several times faster than a lexsort of the two arrays, and the
        # values come back exactly from the keys.
        keys = groups.astype(np.uint64) << np.uint64(32)
        keys |= (~_order_key(values)).astype(np.uint64)
        keys.sort()
        low = keys[take] & np.uint64(0xFFFFFFFF)
        return _from_order_key(~low.astype(np.uint32)).reshape(n_groups, k)
    order = np.lexsort((-values, groups))
    return values[order[take]].reshape(n_groups, k)


# Rows of one random stream in stochastic matching. Streams belong to fixed
# tiles of rows, not to blocks, so the entries dropped do not depend on where
# the blocks (sized by memory) start.
_DROP_TILE = 64


def _tile_uniforms(seed, which, start, stop, n_columns, dtype):
    """Uniforms for rows start..stop that depend on (seed, which, row) alone.

    Tile t (rows 64 t to 64 t + 63) draws its rows in order from the stream
    ``[seed, which, t]``; a block that starts inside a tile skips the
    stream past the tile's earlier rows without drawing them, so that a
    block of a few rows (a large pool, or a small ``working_memory``) costs
    its own rows only.
    """
    out = np.empty((stop - start, n_columns), dtype=dtype)
    for tile in range(start // _DROP_TILE, (stop - 1) // _DROP_TILE + 1):
        stream = np.random.default_rng([seed, which, tile])
        first = tile * _DROP_TILE
        lo, hi = max(first, start), min(first + _DROP_TILE, stop)
        _skip_uniforms(stream, (lo - first) * n_columns, dtype)
        stream.random(out=out[lo - start : hi - start], dtype=dtype)
    return out


def _skip_uniforms(stream, count, dtype):
    """Move ``stream`` past ``count`` uniforms of ``dtype`` without drawing them.

    A float64 uniform takes one 64-bit output of the generator; a float32
    one takes half of one, numpy keeping the other half for the next
    float32 draw.
    """
    if np.dtype(dtype) == np.float32:
        stream.bit_generator.advance(count // 2)
        if count % 2:
            stream.random(dtype=np.float32)
    else:
        stream.bit_generator.advance(count)


def _dropped(S, keep_prob, uniforms):
    """S with -inf wherever the uniform is ``keep_prob`` or more."""
    return np.where(uniforms < keep_prob, S, -np.inf)


def mutual_matches(
    A, B, csls_k, *, keep_prob=1.0, generator=None, chunk_size=None, working_memory=None
):
    """Best CSLS match of every row of A among B and of every row of B among A.

    The kernel of self-learning's dictionary induction (validated inputs of
    one dtype, ``csls_k`` at most the smaller number of rows). One blockwise
    product of A with B instead of the four of two :func:`kneighbors` calls:
    each block gives its rows' penalties, so their best rows for every
    column, and a shortlist of each row's largest cosines, which decides
    the row's best match once B's penalties are known, except for the few
    rows (searched again) whose shortlist cannot bound the rest (see
    :func:`_forward_from_shortlists`; measured once on 10,000 x 10,000 WordNet
    glosses, e5 mapped onto minilm, 0.84-0.95 s against 1.31-1.35 s for the
    two passes before, with the same matches). With ``keep_prob < 1`` every
    score is dropped with probability ``1 - keep_prob`` before the best is
    taken, independently in the two directions (stochastic dictionary
    induction, Artetxe et al., 2018), which takes a second pass; a row whose
    scores are all dropped keeps its best. Equal scores go to the lower row.

    Row blocks run on the BLAS's threads (:mod:`skembed._parallel`), each
    holding its own block of at most ``working_memory`` MiB. Penalties of
    B's rows need the ``csls_k`` best rows of A for every column: the first
    block gives each column a floor (its ``csls_k``-th best value there,
    which the final one cannot be below), and the other blocks pass on only
    the entries at or above it, a few per column instead of a transposed
    copy of every block. Blocks are merged in row order, and the random
    number of every score depends on its row and the draw from ``generator``
    alone, not on the blocks, so the matches depend neither on the number of
    threads nor on ``chunk_size`` or ``working_memory``.

    Returns ``forward`` (best row of B for each row of A), ``backward`` (best
    row of A for each row of B) and their CSLS scores (float64).
    ``generator`` is a :class:`numpy.random.Generator`, needed with
    ``keep_prob < 1``.
    """
    n_a, n_b = A.shape[0], B.shape[0]
    # Up to five blocks of scores (cosines, two rankings, two dropped copies)
    # live at once per thread; the budget of one search covers about two.
    rows = chunk_size or max(
        1, search_chunk_rows(n_b, A.dtype, working_memory=working_memory) // 3
    )
    # Rows normalised once (zero rows stay zero): a block of cosines is then
    # one product, with no pass to scale it.
    A, B = unit_rows(product_safe_rows(A)), unit_rows(product_safe_rows(B))
    # Without dropping, one pass does it all: each block's rows have their
    # penalties at once, so the block gives every column its best row of the
    # block (backward), and each row keeps a shortlist of its largest
    # cosines. After the pass, a row's best shortlisted CSLS score that
    # beats any score from below its shortlist's floor (2 floor - the
    # smallest penalty of B) is its best match; the few other rows are
    # searched again in full. Dropped scores need every score: two passes.
    fused = keep_prob >= 1
    shortlist = max(_SHORTLIST, csls_k)

    def cosines(start, stop):
        return A[start:stop] @ B.T

    def rows_of(S):
        """Penalties of the block's rows; fused, also their shortlists and
        the block's best row of every column (S is overwritten)."""
        if not fused:
            return _row_top_mean(S, csls_k), None, None
        listed = _row_shortlist(S, csls_k, shortlist)
        if listed is None:
            row_mean = _row_top_mean(S.copy(), csls_k)
        else:
            row_mean, listed = listed[0], listed[1:]
        S *= 2
        np.subtract(S, row_mean[:, None].astype(S.dtype), out=S)
        column_best = S.max(axis=0)
        return row_mean, listed, (_first_best_rows(S, column_best), column_best)

    backward = np.zeros(n_b, dtype=np.int64)
    backward_score = np.full(n_b, -np.inf)
    floors = np.full(n_a, np.nan, dtype=A.dtype)
    counts, listed_columns, listed_values = [], [], []

    def merge(start, stop, listed, best_rows):
        if listed is not None:
            floors[start:stop] = listed[0]
            counts.append(listed[1])
            listed_columns.append(listed[2])
            listed_values.append(listed[3])
        elif fused:
            # Ties listed too many entries: every row is searched again.
            counts.append(np.zeros(stop - start, dtype=np.int64))
        if best_rows is not None:
            # Blocks arrive in row order and only a strictly better score
            # replaces an earlier one: ties keep the lower row.
            column_rows, column_best = best_rows
            column_best = column_best.astype(np.float64)
            better = column_best > backward_score
            backward_score[better] = column_best[better]
            backward[better] = start + column_rows[better]

    # Pass 1. The first block (at least csls_k rows) is searched in full for
    # every column's top values; the k-th of them is the column's floor.
    first_stop = min(n_a, max(rows, csls_k))
    S = cosines(0, first_stop)
    cut = S.shape[0] - csls_k
    top = np.partition(S, cut, axis=0)[cut:].T.copy()
    penalty_of_a = np.empty(n_a)
    penalty_of_a[:first_stop], listed, best_rows = rows_of(S)
    merge(0, first_stop, listed, best_rows)
    del S
    # Candidates of later blocks wait in a list; once they outnumber the
    # kept values a few times over, they are merged and the floors rise, so
    # the list stays O(n_b csls_k) however many blocks follow. A floor only
    # needs to be a lower bound of the final k-th value, so which floor a
    # block saw (threads read it as they start) never changes the result.
    state = {"floor": top.min(axis=1)}
    values, columns = [top.ravel()], [np.repeat(np.arange(n_b), csls_k)]
    waiting = 0

    def penalties(start, stop):
        S = cosines(start, stop)
        found = _column_candidates(S, state["floor"])
        return start, stop, found, *rows_of(S)

    groups = row_groups(n_a - first_stop, rows, group_chunks=1)
    groups = [(first_stop + a, first_stop + b) for a, b in groups]
    for start, stop, (vals, cols), row_mean, listed, best_rows in map_row_groups(
        penalties, groups
    ):
        penalty_of_a[start:stop] = row_mean
        merge(start, stop, listed, best_rows)
        values.append(vals)
        columns.append(cols)
        waiting += vals.shape[0]
        if waiting > 4 * n_b * csls_k:
            top = _top_per_group(
                np.concatenate(values), np.concatenate(columns), n_b, csls_k
            )
            state["floor"] = top.min(axis=1)
            values, columns = [top.ravel()], [np.repeat(np.arange(n_b), csls_k)]
            waiting = 0
    top = _top_per_group(np.concatenate(values), np.concatenate(columns), n_b, csls_k)
    penalty_of_b = np.sort(top, axis=1).mean(axis=1, dtype=np.float64)
    del values, columns, top
    penalty_b = penalty_of_b.astype(A.dtype)

    if fused:
        forward, forward_score = _forward_from_shortlists(
            A,
            B,
            penalty_b,
            floors,
            np.concatenate(counts),
            listed_columns,
            listed_values,
            rows,
        )
    else:
        forward, forward_score, backward, backward_score = _dropped_matches(
            cosines, penalty_of_a, penalty_b, keep_prob, generator, rows
        )
    forward_score -= penalty_of_a
    backward_score -= penalty_of_b
    # Copies of one row score equally in exact arithmetic, but a BLAS product
    # rounds a row's scores by its place in the block, so which copy won
    # depended on the threads and the block height (and a fit on pools with
    # repeated texts swapped copies every round). The first copy is taken,
    # as equal scores go to the lower row.
    return (
        first_copies(B)[forward],
        first_copies(A)[backward],
        forward_score,
        backward_score,
    )


def _forward_from_shortlists(A, B, penalty_b, floors, counts, columns, values, rows):
    """Best CSLS match in B of every row of A, from the rows' shortlists.

    ``floors``, ``counts``, ``columns`` and ``values`` are the shortlists of
    :func:`_row_shortlist` (a NaN floor and a count of 0 for a row without
    one). A score ``2 cos - penalty`` is monotone in the rounded cosine and
    the rounded penalty, so no entry below the floor can score above
    ``2 floor - min(penalty_b)``: a row whose best listed score is above it
    has its match (ties to the lower column, as the listed entries run in
    column order). Other rows are searched again in blocks of ``rows``.
    Returns the matches and their scores ``2 cos - penalty_b`` (float64).
    """
    n_a = A.shape[0]
    forward = np.zeros(n_a, dtype=np.int64)
    forward_score = np.empty(n_a)
    doubt = np.ones(n_a, dtype=bool)
    listed = np.flatnonzero(counts)
    if listed.size:
        columns = np.concatenate(columns)
        score = np.concatenate(values)
        score *= 2
        score -= penalty_b[columns]
        starts = np.concatenate([[0], np.cumsum(counts[listed])[:-1]])
        best = np.maximum.reduceat(score, starts)
        # The first entry of each row that holds the row's best.
        hit = np.flatnonzero(score == np.repeat(best, counts[listed]))
        owner = np.repeat(np.arange(listed.size), counts[listed])[hit]
        first = hit[np.concatenate([[True], owner[1:] != owner[:-1]])]
        sure = best > floors[listed] * 2 - penalty_b.min()
        forward[listed[sure]] = columns[first[sure]]
        forward_score[listed[sure]] = best[sure]
        doubt[listed[sure]] = False
    left = np.flatnonzero(doubt)

    def search(start, stop):
        S = A[left[start:stop]] @ B.T
        S *= 2
        S -= penalty_b
        best = S.argmax(axis=1)
        return start, stop, best, S[np.arange(stop - start), best]

    groups = row_groups(left.size, rows, group_chunks=1)
    for start, stop, best, score in map_row_groups(search, groups):
        forward[left[start:stop]] = best
        forward_score[left[start:stop]] = score
    return forward, forward_score


def _dropped_matches(cosines, penalty_of_a, penalty_b, keep_prob, generator, rows):
    """Pass 2 of stochastic matching: best matches among the kept scores.

    Returns the forward matches and their scores ``2 cos - penalty_b``, and
    the backward ones (best row of A for every column) and their scores
    ``2 cos - penalty_of_a``. Random numbers come from streams of
    fixed row tiles seeded by one draw of ``generator`` (see
    _tile_uniforms).
    """
    n_a, n_b = penalty_of_a.shape[0], penalty_b.shape[0]
    seed = int(generator.integers(np.iinfo(np.int64).max))

    def matches(start, stop):
        S = cosines(start, stop)
        S *= 2
        forward_block = S - penalty_b
        np.subtract(S, penalty_of_a[start:stop, None].astype(S.dtype), out=S)
        backward_block = S
        best = backward_block.max(axis=0)
        fallback = (_first_best_rows(backward_block, best), best)
        kept = _dropped(
            forward_block,
            keep_prob,
            _tile_uniforms(seed, 0, start, stop, n_b, S.dtype),
        )
        # A row dropped entirely keeps its best score.
        lost = np.isneginf(kept).all(axis=1)
        kept[lost] = forward_block[lost]
        forward_block = kept
        backward_block = _dropped(
            backward_block,
            keep_prob,
            _tile_uniforms(seed, 1, start, stop, n_b, S.dtype),
        )
        best = forward_block.argmax(axis=1)
        score = forward_block[np.arange(stop - start), best]
        column_best = backward_block.max(axis=0)
        column_rows = _first_best_rows(backward_block, column_best)
        return start, stop, best, score, column_rows, column_best, fallback

    forward = np.empty(n_a, dtype=np.int64)
    forward_score = np.empty(n_a)
    backward = np.zeros(n_b, dtype=np.int64)
    backward_score = np.full(n_b, -np.inf)
    # The deterministic best of every column, for columns dropped everywhere.
    fallback_row = np.zeros(n_b, dtype=np.int64)
    fallback_score = np.full(n_b, -np.inf)
    groups = row_groups(n_a, rows, group_chunks=1)
    for start, stop, best, score, column_rows, column_best, fallback in map_row_groups(
        matches, groups
    ):
        forward[start:stop] = best
        forward_score[start:stop] = score
        # Blocks arrive in row order and only a strictly better score
        # replaces an earlier one: ties keep the lower row.
        column_best = column_best.astype(np.float64)
        better = column_best > backward_score
        backward_score[better] = column_best[better]
        backward[better] = start + column_rows[better]
        value = fallback[1].astype(np.float64)
        better = value > fallback_score
        fallback_score[better] = value[better]
        fallback_row[better] = start + fallback[0][better]
    lost = np.isneginf(backward_score)
    backward[lost], backward_score[lost] = fallback_row[lost], fallback_score[lost]
    return forward, forward_score, backward, backward_score


def first_copies(X):
    """For every row of X, the index of the first row bitwise equal to it.

    Rows are hashed and compared with the first row of their hash a few
    thousand at a time (as in :func:`_first_copies_among`): memory O(n)
    beyond a step. Sorting the rows' bytes instead held three copies of X
    (check_same_space of two 20,000 x 384 float32 inputs peaked at 88 MiB
    for its 1,000 sampled rows). The rows of a hash that rows differing in
    their bytes share are grouped by their bytes among themselves, so the
    result is exact whatever the hash.
    """
    n = X.shape[0]
    hashes = _row_hashes(X, np.arange(n))
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    firsts = first[inverse]
    grouped = np.flatnonzero(firsts != np.arange(n))
    differ = np.zeros(n, dtype=bool)
    for start in range(0, grouped.size, _HASHED_ROWS):
        step = grouped[start : start + _HASHED_ROWS]
        differ[step] = np.any(
            _row_words(X[step]) != _row_words(X[firsts[step]]), axis=1
        )
    if differ.any():
        members = np.flatnonzero(np.isin(inverse, inverse[differ]))
        rows = np.ascontiguousarray(X[members])
        keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))
        _, first, exact = np.unique(
            keys.ravel(), return_index=True, return_inverse=True
        )
        firsts[members] = members[first[exact.ravel()]]
    return firsts


def first_pair_copies(A, B):
    """For every row pair (A[i], B[i]), the index of the first pair equal to it.

    Each side is hashed on its own and the pairs of first-copy indices then,
    so no copy of the two sides side by side is made.
    """
    return first_copies(np.column_stack([first_copies(A), first_copies(B)]))


# Query blocks per budget of neighbourhood_mean_operator: up to this many
# threads stay within its working memory, and a call with few queries still
# gives this many threads a block each.
_OPERATOR_SPLIT = 4


def neighbourhood_mean_operator(Q, T, k, *, chunk_size=None, working_memory=None):
    """Sparse row-stochastic A such that ``A @ V`` averages V over neighbourhoods.

    Row i of A weighs equally the rows of T whose cosine with row i of Q is
    at least the k-th largest: normally k of them, more when some are tied
    with the k-th. Keeping every tied row, instead of breaking ties by
    position, makes the mean independent of how a partition orders equal
    values, and it needs one partition and one comparison per block, no sort
    (the cost of ranking neighbours that :func:`kneighbors` must pay).

    The kernel of mean-of-neighbours matching: validated inputs of one dtype
    whose rows have unit (or zero) length, so that a block of cosines is one
    product; ``1 <= k <= len(T)``. A has T's dtype: its entries are 1 / m for
    a neighbourhood of m rows.

    Blocks of at most ``chunk_size`` query rows run on the BLAS's threads
    (:mod:`skembed._parallel`), each holding its own block of scores and its
    partition copy. By default a block takes at most a quarter of what
    ``working_memory`` MiB hold and at most a quarter of the query rows, so
    that up to ``_OPERATOR_SPLIT`` threads share the budget and all get
    work. The cut depends on the rows and the budget only, never on the
    number of threads: a row's cosines can differ in the last bit with the
    number of rows of its block, and at a near-tie with the k-th so can its
    neighbourhood. The partition, which numpy runs on one core, took about
    48 of the 78 ms of one call (1,000 queries against 5,000 rows of 384
    columns) before the blocks ran on both.
    """
    n_q, n_t = Q.shape[0], T.shape[0]
    rows = chunk_size or max(
        1,
        search_chunk_rows(n_t, Q.dtype, working_memory=working_memory)
        // _OPERATOR_SPLIT,
    )
    rows = max(1, min(rows, -(-n_q // _OPERATOR_SPLIT)))

    def neighbourhoods(start, stop):
        S = Q[start:stop] @ T.T
        kth = np.partition(S, n_t - k, axis=1)[:, n_t - k]
        # Flat indices run row by row, so each row's columns come out sorted,
        # as CSR wants them.
        block_rows, columns = np.divmod(np.flatnonzero(S >= kth[:, None]), n_t)
        return np.bincount(block_rows, minlength=stop - start), columns

    groups = row_groups(n_q, rows, group_chunks=1)
    counts, columns = [np.zeros(0, dtype=np.intp)], [np.zeros(0, dtype=np.intp)]
    for block_counts, block_columns in map_row_groups(neighbourhoods, groups):
        counts.append(block_counts)
        columns.append(block_columns)
    counts = np.concatenate(counts)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    weights = np.repeat((1 / counts).astype(T.dtype), counts)
    return sp.csr_array((weights, np.concatenate(columns), indptr), shape=(n_q, n_t))


def _retrieval_hits(Q, T, k, method, csls_k, chunk_size=None):
    """Number of rows i of Q with row i of T among their k best targets.

    Targets within the margin of the partner's block score (normally the
    partner alone) are ranked against it by exact scores, so that equal
    targets tie exactly (see :func:`_kneighbors`).
    """
    csls = method == "csls"
    exact_penalties = penalties = None
    if csls:
        # r_T(q) is constant along a query's row, so it cannot change a rank.
        exact_penalties = _penalties(Q, T, csls_k, chunk_size)
        penalties = exact_penalties.astype(T.dtype)
    margin = T.dtype.type(score_margin(T.shape[1], T.dtype, csls=csls))
    scores = _ExactScores(Q, T, exact_penalties)
    hits = 0
    for start, stop, S in _cosine_blocks(Q, T, chunk_size):
        if csls:
            S *= 2
            S -= penalties
        rows = np.arange(stop - start)
        partners = start + rows
        own = S[rows, partners]
        high, low = (own + margin)[:, None], (own - margin)[:, None]
        rank = np.count_nonzero(S > high, axis=1)
        # Rows with a target other than the partner within the margin.
        doubt = np.flatnonzero(np.count_nonzero(S >= low, axis=1) - rank > 1)
        if doubt.size:
            block = S[doubt]
            near = (block >= low[doubt]) & (block <= high[doubt])
            near_rows, near_cols = np.divmod(np.flatnonzero(near), S.shape[1])
            near_rows = doubt[near_rows]
            exact = scores.block(start)
            near_scores = exact(near_rows, near_cols)
            own_scores = exact(rows, partners)[near_rows]
            # Ahead of the partner: a larger exact score, or an equal one at a
            # lower index (the tie rule of kneighbors).
            ahead = (near_scores > own_scores) | (
                (near_scores == own_scores) & (near_cols < partners[near_rows])
            )
            rank += np.bincount(near_rows[ahead], minlength=stop - start)
        hits += int(np.count_nonzero(rank < k))
    return hits


def search_unit_index(Q, T, k, *, method="nn", csls_k=10, index_penalties=None):
    """:func:`kneighbors` of checked, same-dtype inputs whose T rows have unit length.

    For an index that is searched many times (:class:`skembed.EmbeddingIndex`
    normalises its rows once, at fit); nothing is validated here.
    """
    return _kneighbors(Q, T, k, method, csls_k, index_penalties, unit_index=True)


def unit_index_penalties(pool, T, csls_k):
    """:func:`csls_penalties` of checked inputs whose T rows have unit length."""
    return _penalties(pool, T, csls_k, unit_index=True)


# --------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------
@validate_params(
    {
        "queries": ["array-like"],
        "index": ["array-like"],
        "k": [Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"nn", "csls"})],
        "csls_k": [Interval(Integral, 1, None, closed="left")],
        "index_penalties": ["array-like", None],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def kneighbors(
    queries,
    index,
    k=1,
    *,
    method="nn",
    csls_k=10,
    index_penalties=None,
    chunk_size=None,
):
    """The k best index rows for every query, by cosine or by CSLS.

    Queries and index may have any numbers of rows (an index is usually
    much larger); both must be in one space (same width), for example the
    shared space of an aligner or the target space of ``translate``.

    Parameters
    ----------
    queries : array-like of shape (n_queries, n_features)
        The query vectors.
    index : array-like of shape (n_index, n_features)
        The vectors searched.
    k : int, default=1
        Neighbours per query, at most ``n_index``.
    method : {"nn", "csls"}, default="nn"
        ``"nn"`` ranks index rows by cosine; ``"csls"`` by cross-domain
        similarity local scaling (see Notes), which discounts index rows
        that are near every query ("hubs").
    csls_k : int, default=10
        Neighbourhood size of the CSLS penalties.
    index_penalties : array-like of shape (n_index,) or None, default=None
        CSLS only: :math:`r_Q(t)` of every index row, from
        :func:`csls_penalties` over a query pool (MUSE's protocol, where the
        pool is larger than the batch searched). None computes it from
        ``queries`` themselves, which suits a large batch of queries.
    chunk_size : int or None, default=None
        Query rows per block. None derives it from a memory budget of 256
        MiB (or scikit-learn's ``working_memory``, if smaller).

    Returns
    -------
    scores : ndarray of shape (n_queries, k), float64
        The cosine or the full CSLS score of each neighbour, best first.
        Like :meth:`sklearn.neighbors.NearestNeighbors.kneighbors` but with
        similarities: higher is nearer. Computed in the input's precision
        (float32 for a float32 index, float64 queries included), so they may
        differ in their last bits from batch to batch; the neighbours do not.
    indices : ndarray of shape (n_queries, k), int64
        Index rows, best first; equal scores are ordered by index row. A
        query of zero length (all zeros, or equal to the mean it is centred
        on) has no direction and ties with every row: its neighbours are the
        first ``k`` rows (under CSLS, those of lowest penalty). Such queries,
        an encoder's output for an empty text for example, are worth
        finding before their results are used.

    See Also
    --------
    csls_penalties : The index rows' CSLS penalties over a query pool.
    retrieval_accuracy : Whether row-paired partners are found.

    Notes
    -----
    With :math:`r_T(q)` the mean cosine of q to its ``csls_k`` nearest index
    rows and :math:`r_Q(t)` that of t to its ``csls_k`` nearest queries of
    the pool, :math:`\\operatorname{CSLS}(q, t) = 2\\cos(q, t) - r_T(q) -
    r_Q(t)` (Conneau et al., 2018). Costs one blockwise product of the
    queries with the index for ``"nn"``, and one more for ``"csls"`` unless
    ``index_penalties`` is given. Memory is one block of scores.

    A BLAS product rounds the score of an index row by its position in the
    block, so two equal rows can differ in the last bits, differently on
    another machine or in another batch. Candidates whose block scores lie
    within that rounding of each other are therefore ranked by their float64
    scores recomputed from the two rows alone, as are the penalties: equal
    rows tie exactly and come in row order, and the neighbours found do not
    depend on the batch, the block size or the machine's BLAS.

    References
    ----------
    Conneau, Lample, Ranzato, Denoyer and Jégou (2018). "Word translation
    without parallel data." ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> from skembed import kneighbors
    >>> index = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> scores, indices = kneighbors([[2.0, 0.1], [0.0, 3.0]], index, k=2)
    >>> indices
    array([[0, 2],
           [1, 2]])
    >>> scores.round(3)
    array([[0.999, 0.742],
           [1.   , 0.707]])
    """
    queries, index = _check_pair(queries, index, ("queries", "index"))
    n_index = index.shape[0]
    if k > n_index:
        raise ValueError(
            f"k={k} must be at most the number of index rows ({n_index}); lower k."
        )
    if method != "csls" and index_penalties is not None:
        # Ignored, they made a search that looked like CSLS without a word.
        raise ValueError(
            f"index_penalties are CSLS penalties, but method={method!r}; pass "
            "method='csls', or leave index_penalties out."
        )
    if method == "csls":
        _check_csls_k(csls_k, n_index, "index")
        if index_penalties is None:
            _check_csls_k(csls_k, queries.shape[0], "queries")
        else:
            index_penalties = check_numbers(index_penalties, "index_penalties")
            if index_penalties.shape != (n_index,):
                raise ValueError(
                    f"index_penalties has shape {index_penalties.shape}, but the "
                    f"index has {n_index} rows; pass one penalty per index row, "
                    "from csls_penalties."
                )
            # Penalties are mean cosines. The float32 search bounds its
            # rounding by scores of magnitude at most 3 (2 cos - r), so a
            # larger penalty could reorder rows unseen; allow rounding above 1.
            spread = np.abs(index_penalties).max(initial=0.0)
            if spread > 1.0 + 1e-6:
                raise ValueError(
                    "index_penalties must be mean cosines, within [-1, 1], but "
                    f"one has magnitude {spread:.6g}; pass the penalties "
                    "csls_penalties computes."
                )
    return _kneighbors(
        queries, index, k, method, csls_k, index_penalties, chunk_size=chunk_size
    )


@validate_params(
    {
        "queries": ["array-like"],
        "index": ["array-like"],
        "csls_k": [Interval(Integral, 1, None, closed="left")],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def csls_penalties(queries, index, *, csls_k=10, chunk_size=None):
    """CSLS penalty of every index row over a pool of queries.

    :math:`r_Q(t)`, the mean cosine of index row t to its ``csls_k``
    nearest rows of the query pool. Compute it once, from a representative
    sample of (mapped) queries, and pass it to :func:`kneighbors` as
    ``index_penalties``, so that later batches of any size, a single query
    included, are scored as MUSE scores them.

    Parameters
    ----------
    queries : array-like of shape (n_pool, n_features)
        The query pool, in the index's space.
    index : array-like of shape (n_index, n_features)
        The vectors searched.
    csls_k : int, default=10
        Neighbourhood size, at most ``n_pool``.
    chunk_size : int or None, default=None
        Index rows per block; None derives it from the memory budget.

    Returns
    -------
    penalties : ndarray of shape (n_index,), float64
        Mean cosines, one per index row.

    See Also
    --------
    kneighbors : The search that uses them.

    Examples
    --------
    >>> import numpy as np
    >>> from skembed import csls_penalties
    >>> pool = np.array([[1.0, 0.0], [0.8, 0.6]])
    >>> csls_penalties(pool, [[1.0, 0.0], [0.0, 1.0]], csls_k=1)
    array([1. , 0.6])
    """
    queries, index = _check_pair(queries, index, ("queries", "index"))
    _check_csls_k(csls_k, queries.shape[0], "queries")
    return _penalties(queries, index, csls_k, chunk_size)


@validate_params(
    {
        "Q": ["array-like"],
        "T": ["array-like"],
        "k": [Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"nn", "csls"})],
        "csls_k": [Interval(Integral, 1, None, closed="left")],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def retrieval_accuracy(Q, T, *, k=1, method="nn", csls_k=10, chunk_size=None):
    """Fraction of queries whose own partner is among their k nearest targets.

    Row i of Q and row i of T embed the same item. For every i, the rows of T
    are ranked by similarity to Q[i]; a hit is row i among the first k. This
    is the cross-model retrieval accuracy reported for embedding alignment
    (chance level ``k / n_samples``).

    Parameters
    ----------
    Q : array-like of shape (n_samples, n_features)
        Queries.
    T : array-like of shape (n_samples, n_features)
        Targets, row-paired with Q (``n_samples`` must match) and in the same
        space (same width).
    k : int, default=1
        Size of the shortlist; ``k=1`` is top-1 accuracy (precision@1).
    method : {"nn", "csls"}, default="nn"
        ``"nn"`` ranks targets by cosine. ``"csls"`` ranks by cross-domain
        similarity local scaling (Conneau et al., 2018), which discounts
        "hub" targets that are close to many queries.
    csls_k : int, default=10
        Neighbourhood size of the CSLS penalties (ignored for ``"nn"``).
    chunk_size : int, default=None
        Query rows per block. None derives it from a memory budget of 256 MiB
        (or scikit-learn's ``working_memory``, if smaller), so that even
        100,000 x 100,000 searches need only a few hundred MB.

    Returns
    -------
    accuracy : float
        Fraction of hits, in [0, 1].

    See Also
    --------
    kneighbors : The neighbours themselves, for unpaired sets.
    skembed.metrics.paired_cosine : Similarity of each pair, without ranking.
    skembed.metrics.make_alignment_scorer : This accuracy as a scorer.

    Notes
    -----
    CSLS scores a query q and a target t by

    .. math::

        \\operatorname{CSLS}(q, t) = 2 \\cos(q, t) - r_T(q) - r_Q(t),

    where :math:`r_T(q)` is the mean cosine of q to its ``csls_k`` nearest
    targets and :math:`r_Q(t)` that of t to its ``csls_k`` nearest queries.
    :math:`r_T(q)` does not change a query's ranking and is skipped here.

    Scores are computed block by block (float32 products for float32 input),
    never as a full n x n matrix. A target tied with the partner counts as
    ranked before it when its index is lower, so results are deterministic.

    References
    ----------
    Conneau, Lample, Ranzato, Denoyer and Jégou (2018). "Word translation
    without parallel data." ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> from skembed.metrics import retrieval_accuracy
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.normal(size=(1000, 16))
    >>> T = Q + 0.5 * rng.normal(size=Q.shape)
    >>> round(retrieval_accuracy(Q, T), 2)
    0.98
    >>> round(retrieval_accuracy(Q, rng.normal(size=Q.shape), k=10), 1)
    0.0
    >>> round(retrieval_accuracy(Q, T, method="csls", chunk_size=100), 2)
    0.98
    """
    Q, T = _check_pair(Q, T, ("Q", "T"))
    if Q.shape[0] != T.shape[0]:
        raise ValueError(
            "Q and T must be row-paired (row i of Q's partner is row i of T), but "
            f"Q has {Q.shape[0]} rows and T has {T.shape[0]}. For unpaired pools "
            "search neighbours (skembed.kneighbors) instead of measuring retrieval."
        )
    n = Q.shape[0]
    if k > n:
        raise ValueError(f"k={k} must be at most the number of rows ({n}).")
    if method == "csls":
        _check_csls_k(csls_k, n, "the smaller set")
    return _retrieval_hits(Q, T, k, method, csls_k, chunk_size) / n


def warn_trivial_k(k, n_rows):
    """Warn when every one of ``n_rows`` rows is among any query's top ``k``.

    Retrieval at k is then 1 whatever the map: small cross-validation folds
    (40 held-out rows at k=50) scored every candidate perfectly.
    """
    if k >= n_rows:
        warn(
            f"The retrieval score at k={k} is taken over {n_rows} row(s): every "
            "row is among the top k, so the score is 1 whatever the map. Score "
            f"on more than {k} rows (larger folds), or lower k.",
            UserWarning,
        )


def alignment_score(views, *, k=1, method="nn", csls_k=10):
    """Mean cross-view retrieval accuracy of row-paired, already mapped views.

    For every ordered pair of views (a, b), the rows of view a retrieve among
    those of view b (:func:`retrieval_accuracy`); ``k`` and ``csls_k`` are
    capped at the number of rows, so that small cross-validation folds work.

    Parameters
    ----------
    views : list of ndarray of shape (n_samples, n_components)
        The views in one shared space, row-paired.
    k, method, csls_k
        As in :func:`retrieval_accuracy`.

    Returns
    -------
    score : float
        The mean over the K (K - 1) ordered pairs, in [0, 1].
    """
    views = [check_array(v, dtype=[np.float64, np.float32]) for v in views]
    dtype = np.result_type(*(v.dtype for v in views))
    views = [v.astype(dtype, copy=False) for v in views]
    n = views[0].shape[0]
    k, csls_k = min(k, n), min(csls_k, n)
    scores = [
        _retrieval_hits(views[a], views[b], k, method, csls_k) / n
        for a in range(len(views))
        for b in range(len(views))
        if a != b
    ]
    return float(np.mean(scores))
