"""Mergeable first and second moments of row-paired embedding views.

Every closed-form aligner in skembed needs only, per view, the row count, the
column sums and some blocks of :math:`X_i^\\top X_j`. :class:`CrossMoments`
accumulates exactly those blocks, in float64, from row chunks of any float
dtype, and merges two accumulators, so that ``fit``, ``partial_fit`` and a
Dask tree reduction all share one code path.

Accuracy. A float32 chunk is multiplied by the float32 BLAS and the chunk
product is added to a float64 accumulator. The rounding error of one chunk
product is about ``eps32 * sqrt(chunk_rows)`` relative to
:math:`\\sum_r |x_r| |y_r|`, a sum dominated by the mean when the data sit far
from the origin. Centring afterwards subtracts :math:`n \\mu_i \\mu_j^\\top` and
would leave that error relative to a much smaller covariance. To avoid the
cancellation, each view is shifted by a pilot mean (of rows spread evenly
over the input) before the product whenever the squared mean of one of its
columns is large compared with that column's variance; moments are kept
about that shift and converted exactly, in float64, when they are read. A
float32 chunk whose own mean still sits far from the shift (sorted or
grouped input, whose rows move away from the pilot's mean) is multiplied in
float64 instead. What float32 products cannot keep is a variance much smaller than
the largest one within a chunk (clusters far apart, shuffled): pass
float64 input there.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from functools import partial

import numpy as np
from sklearn import config_context

from skembed._dask import (
    DaskViews,
    check_dask_views,
    map_views,
    reduce_views,
)
from skembed._parallel import map_row_groups, row_groups
from skembed._views import check_views, is_dask_collection

__all__ = [
    "BUDGETS",
    "MAGNITUDE_ERROR",
    "MagnitudeError",
    "CrossMoments",
    "all_finite",
    "check_rows",
    "map_rows",
    "reduce_rows",
    "rows_dtype",
    "chunk_rows",
    "far_from_mean",
    "merge_moments",
    "row_norms",
    "row_squared_norms",
    "search_chunk_rows",
    "product_safe_rows",
    "unit_rows",
    "view_moments",
]

# Every pass over the rows reads them in chunks; one rule (chunk_rows) turns a
# named byte budget and the bytes a row costs into rows per chunk. Budgets are
# looked up by name when a pass starts.
BUDGETS = {
    # One view's row chunk in the moments of fit. Every worker thread reads a
    # chunk twice, for the column sums and for the products; at 2 MiB the two
    # views' chunks of both threads stay in cache between the two reads, so
    # the second read is nearly free. Measured at 1M x 384 float32 on two
    # threads, moments / one multi-threaded X.T @ Y: 1.04-1.06 with 2 MiB
    # chunks, 1.05-1.10 with 8 MiB. Much smaller chunks lose to the per-call
    # cost of adding each d x d chunk product into the float64 total.
    "moments": 2 * 2**20,
    # Input and output rows of one transform chunk, per worker: small enough
    # for the chunk to stay in cache between the product and the passes that
    # follow it (offset, row scaling, finiteness check), large enough that
    # per-call BLAS overheads vanish. Measured at 1M x 384 float32 on two
    # threads, transform / floor: 0.98-1.04 at 4 MiB, 0.99-1.06 at 8 MiB,
    # 1.02-1.10 at 16 MiB (two threads' chunks then no longer share the cache).
    "transform": 4 * 2**20,
    # One view's row chunk of a pass that reads it once for per-row numbers
    # only (the row counts of an l2 summary): no second read to keep in cache,
    # so a larger chunk only saves per-call costs. Measured at 1M x 384
    # float32, two views, two threads: 0.13-0.14 s at 8 MiB, 0.17-0.20 s at
    # the 2 MiB of "moments".
    "rows": 8 * 2**20,
    # Float64 copies of a chunk made by passes that need them (per-row float64
    # work of the metrics).
    "summary": 8 * 2**20,
    # One block of a queries x index score matrix with its temporaries, the
    # largest allocation of a neighbour search; scikit-learn's
    # ``working_memory`` lowers it.
    "search": 256 * 2**20,
}

# Rows, spread evenly over the input, whose mean becomes the pilot shift. The
# shift only has to bring the data within a few standard deviations of the
# origin; a thousand rows place it within about 3% of one.
_PILOT_ROWS = 1024

# Rows whose ||mean||^2 exceeds this many times their squared deviation from
# it sit far from the origin: their products would lose more than about three
# significant digits of the centred moments (see module docstring). Chunks of
# a fit that the pilot shift leaves that far are multiplied in float64, and
# transforms shift such rows first (far_from_mean).
_SHIFT_RATIO = {np.dtype(np.float32): 8.0, np.dtype(np.float64): 1e6}

# Shift a view by the pilot mean before its products when some column's
# squared mean exceeds this many times its variance (in the pilot rows): the
# products would then lose more than about three significant digits of that
# column's centred moments in float32, and ten in float64. Below it, the
# per-chunk test (_far_from_origin) judges the rows as they come.
_COLUMN_SHIFT_RATIO = 8.0

# Largest binary exponent of a view's entries that its products can take
# without leaving the range of the dtype (squares summed over a chunk of rows
# included). A view whose pilot rows go beyond it, either way, is multiplied
# by a power of two, which is exact, before its products: at 1e-25 float32
# products underflow to zero and at 1e20 they overflow, and both used to give
# arbitrary maps without a word.
_SAFE_EXPONENT = {np.dtype(np.float32): 30, np.dtype(np.float64): 240}


def chunk_rows(bytes_per_row, budget, *, minimum=256):
    """Rows per chunk so that a chunk costs at most ``budget``.

    ``budget`` is a name in ``BUDGETS`` or a number of bytes. ``minimum``
    rows are taken whatever the budget, so that per-call costs stay small
    next to the work of a chunk.
    """
    if isinstance(budget, str):
        budget = BUDGETS[budget]
    return int(max(minimum, budget // max(1, bytes_per_row)))


def search_chunk_rows(n_index, dtype, *, working_memory=None):
    """Query rows per block of a neighbour search against ``n_index`` rows.

    The cost model of every search: per score, the block itself and one
    partition copy in the input dtype, plus two boolean masks. The budget is
    ``BUDGETS["search"]``, or ``working_memory`` MiB (scikit-learn's setting by
    default) when that is smaller.
    """
    from sklearn import get_config

    if working_memory is None:
        working_memory = get_config()["working_memory"]
    budget = min(BUDGETS["search"], working_memory * 2**20)
    bytes_per_score = 2 * np.dtype(dtype).itemsize + 2
    return chunk_rows(n_index * bytes_per_score, budget, minimum=1)


def _pairs(n_views, spec, name):
    if spec is False or spec is None:
        return []
    if spec is True or spec == "all":
        if name == "gram":
            return list(range(n_views))
        return [(i, j) for i in range(n_views) for j in range(i + 1, n_views)]
    return list(spec)


def _gram_update(block):
    """Return ``block.T @ block`` through the symmetric rank-k BLAS kernel.

    numpy's matmul recognises ``A.T @ A`` (one buffer, transposed strides) and
    calls ``syrk`` itself, with the row stride of a column block as leading
    dimension: half the flops of a general product and no copy. Measured on a
    (5461, 384) float32 column block of a wider array: 0.55 x the time of the
    general product, against 0.69 x for an explicit ``ssyrk`` that first
    copies the strided block to contiguous memory.
    """
    return block.T @ block


def _column_sums(block):
    """Column sums of a chunk as a BLAS matrix-vector product, in float64.

    ``ones @ block`` runs at memory speed in the block dtype, where a float64
    reduction along axis 0 costs about a fifth of the chunk's cross-product.
    Its float32 rounding (about ``eps32 * sqrt(rows)`` relative, as for the
    products themselves) is harmless because the columns are already shifted
    close to zero when their mean is large.
    """
    return (np.ones(block.shape[0], dtype=block.dtype) @ block).astype(np.float64)


def row_squared_norms(block):
    """Squared Euclidean norm of every row, as float64.

    The d-term sums run in the block dtype: einsum's vectorised float32 loop
    keeps several partial sums, so the relative error stays a few float32
    ulps (at most 3.6e-7 measured at d = 384), which is the precision of the
    float32 output anyway, and it runs at memory speed, 5x faster than
    casting to float64 on the way. Squares can only leave the float32 range
    for rows with elements beyond about 1e19 or below 1e-19; those rows
    (and all-zero or non-finite rows, which look alike from here) are
    redone in float64, so that a finite row is never scaled by 0 or inf.
    """
    squared = np.einsum("ij,ij->i", block, block)
    if block.dtype == np.float64:
        return squared
    suspect = ~(squared >= np.finfo(block.dtype).tiny) | np.isinf(squared)
    squared = squared.astype(np.float64)
    if suspect.any():
        rows = block[suspect].astype(np.float64)
        squared[suspect] = np.einsum("ij,ij->i", rows, rows)
    return squared


def row_norms(block):
    """Row norms in the block dtype, 1 for zero rows (which then stay zero).

    Dividing by these normalises every non-zero row and leaves zero rows at
    zero; see :func:`row_squared_norms` for the accuracy. Rows whose squared
    norm leaves even float64 (entries beyond about 1e154 or below 1e-154)
    are measured from their largest entry instead. A finite float32 row can
    still have a norm beyond float32's range (about 3.4e38), returned as
    infinity: divide by :func:`divide_by_row_norms` or :func:`unit_rows`,
    which go through float64 for such rows.
    """
    with np.errstate(over="ignore"):
        return _row_norms_float64(block).astype(block.dtype, copy=False)


def _row_norms_float64(block):
    with np.errstate(over="ignore"):
        norms = np.sqrt(row_squared_norms(block))
    extreme = np.isinf(norms) | ((norms > 0) & (norms < 2.0**-500))
    underflowed = np.flatnonzero(norms == 0)
    if underflowed.size:
        # A zero norm is a zero row, or a row too small to square.
        extreme[underflowed] = np.any(block[underflowed] != 0, axis=1)
    if extreme.any():
        rows = np.asarray(block[extreme], dtype=np.float64)
        peak = np.max(np.abs(rows), axis=1)
        # A finite row can have a norm beyond float64: infinity says so.
        with np.errstate(invalid="ignore", over="ignore"):
            norms[extreme] = peak * np.sqrt(
                np.einsum("ij,ij->i", rows / peak[:, None], rows / peak[:, None])
            )
    norms[norms == 0] = 1
    return norms


def divide_by_row_norms(out, block=None):
    """Divide the rows of ``out`` in place by the row norms of ``block``.

    ``block`` defaults to ``out`` itself; zero rows of ``block`` leave their
    rows of ``out`` as they are. Rows of ``block`` whose norm lies beyond the
    normal range of ``out``'s dtype (finite float32 rows of entries near
    1e38, or subnormal ones near 1e-45) are divided in float64, where a
    division by the norm cast to float32 (infinity, or a subnormal of a few
    digits) would have zeroed them or left them far from unit length.

    Returns
    -------
    out : ndarray
        The same array, divided.
    """
    block = out if block is None else block
    return _divide_rows(out, block, out)


def _divide_rows(values, block, out):
    """``values / (row norms of block)`` into ``out`` (which may be ``values``)."""
    norms = _row_norms_float64(block)
    with np.errstate(over="ignore"):
        narrow = norms.astype(out.dtype, copy=False)
    # Beyond either end: norms over the dtype's largest value, and norms under
    # its smallest normal one (subnormal float32, where the cast keeps too
    # few digits to divide by).
    outside = np.isinf(narrow) | (narrow < np.finfo(out.dtype).tiny)
    beyond = np.flatnonzero(outside & np.isfinite(norms))
    saved = values[beyond].astype(np.float64) if beyond.size else None
    # Finite rows whose norm is beyond even float64 (entries near 1e307):
    # dividing by an infinite norm would zero them. Divided by their largest
    # entry first, their norm is at most sqrt(d).
    huge = np.flatnonzero(np.isinf(norms))
    if huge.size:
        huge = huge[np.isfinite(block[huge]).all(axis=1)]
    if huge.size:
        rows = np.asarray(block[huge], dtype=np.float64)
        peak = np.max(np.abs(rows), axis=1)[:, None]
        scaled = np.asarray(values[huge], dtype=np.float64) / peak
        huge_rows = (
            scaled / np.sqrt(np.einsum("ij,ij->i", rows / peak, rows / peak))[:, None]
        )
    out = np.divide(values, narrow[:, None], out=out)
    if beyond.size:
        out[beyond] = saved / norms[beyond, None]
    if huge.size:
        out[huge] = huge_rows
    return out


def product_safe_rows(block):
    """``block``, or its rows at unit length if their products leave the dtype.

    Cosines need only directions. Rows of ordinary embeddings are returned as
    they are (no copy); rows whose norms are far from 1 (float32 near 1e-25
    or 1e20, whose products underflow or overflow) are normalised first.
    """
    norms = row_norms(block)
    limit = 2.0 ** _SAFE_EXPONENT.get(block.dtype, _SAFE_EXPONENT[np.dtype(np.float32)])
    # An infinite norm is a finite row beyond the dtype's range (or a
    # non-finite row, which the callers refuse first): normalised too.
    if norms.size == 0 or (norms.max() <= limit and norms.min() >= 1 / limit):
        return block
    return unit_rows(block)


def all_finite(chunk):
    """Whether a chunk is finite, from its row sums (one in-cache BLAS pass).

    A NaN or an infinity anywhere in a row makes its sum non-finite; so can
    finite values whose sum overflows, which callers report as "too large".
    """
    # inf - inf in the sums is NaN, the answer sought: no warning for it.
    with np.errstate(invalid="ignore", over="ignore"):
        sums = chunk @ np.ones(chunk.shape[1], chunk.dtype)
    return bool(np.isfinite(sums).all())


def unit_rows(block, out=None):
    """Rows scaled to unit length in the block dtype; zero rows stay zero.

    Written into ``out`` (of the block's shape and dtype) when given.
    """
    if out is None:
        dtype = block.dtype if block.dtype.kind == "f" else np.dtype(np.float64)
        out = np.empty(block.shape, dtype=dtype)
    return _divide_rows(block, block, out)


class CrossMoments:
    """Float64 moments of K row-paired views, accumulated chunk by chunk.

    Parameters
    ----------
    n_views : int
        Number of views K.
    cross : "all", list of (int, int) or None, default=None
        Cross-product blocks :math:`X_i^\\top X_j` to accumulate. ``"all"``
        means every pair ``i < j``.
    gram : bool or list of int, default=False
        Views whose Gram matrix :math:`X_k^\\top X_k` is accumulated.
    sum_of_squares : bool, default=False
        Also accumulate the total sum of squares of every view (what an
        isotropic scale needs, at the cost of one memory pass).
    column_sums : bool, default=True
        Accumulate the column sums (the means). Without them nothing can be
        centred, no shift is used, and only ``nonzero_rows`` may be asked
        for: the cheapest summary, one pass of row norms.
    column_squares : bool, default=False
        Per-column sums of squares of every view (column variances).
    nonzero_rows : bool, default=False
        Count the rows of every view whose norm is not zero.
    row_moments : bool, default=False
        The fourth-order row moments that the unbiased HSIC of linear kernels
        needs: :math:`\\sum_i \\|x_i\\|^2 \\|y_i\\|^2` for every pair of
        views (a view with itself included), read centred by
        :meth:`centered_row_products`. Needs ``cross="all"`` and
        ``gram=True``, through which it is converted when moments about
        different shifts are merged.

    Attributes
    ----------
    n_samples_ : int
        Rows seen so far.
    """

    # State in model files (format 2, see skembed._io): the layout passed to
    # the constructor, then the accumulated sums.
    _saved_layout = (
        "n_views",
        "cross_pairs",
        "gram_views",
        "sum_of_squares",
        "column_sums",
        "column_squares",
        "nonzero_rows",
        "row_moments",
    )
    _saved_state = (
        "n_samples_",
        "_shift",
        "_scale",
        "_sums",
        "_cross",
        "_gram",
        "_squares",
        "_column_squares",
        "_nonzero",
        "_finite_rows",
        "_row",
    )

    def __init__(
        self,
        n_views,
        *,
        cross=None,
        gram=False,
        sum_of_squares=False,
        column_sums=True,
        column_squares=False,
        nonzero_rows=False,
        row_moments=False,
    ):
        self.n_views = n_views
        self.cross_pairs = [tuple(p) for p in _pairs(n_views, cross, "cross")]
        self.gram_views = [int(k) for k in _pairs(n_views, gram, "gram")]
        self.sum_of_squares = bool(sum_of_squares) or bool(row_moments)
        self.column_sums = bool(column_sums)
        self.column_squares = bool(column_squares)
        self.nonzero_rows = bool(nonzero_rows)
        self.row_moments = bool(row_moments)
        if not self.column_sums and (
            self.cross_pairs
            or self.gram_views
            or self.sum_of_squares
            or self.column_squares
        ):
            raise ValueError("Centred moments need column_sums=True.")
        if self.row_moments and (
            len(self.cross_pairs) != n_views * (n_views - 1) // 2
            or len(self.gram_views) != n_views
        ):
            raise ValueError("row_moments needs cross='all' and gram=True.")
        self.n_samples_ = 0
        self._shift = None
        self._scale = None
        self._sums = None
        self._cross = {}
        self._gram = {}
        self._squares = None
        self._column_squares = None
        self._nonzero = None
        self._finite_rows = True
        self._row = {}

    def _layout(self):
        return (
            self.n_views,
            self.cross_pairs,
            self.gram_views,
            self.sum_of_squares,
            self.column_sums,
            self.column_squares,
            self.nonzero_rows,
            self.row_moments,
        )

    def _empty_like(self):
        return CrossMoments(
            self.n_views,
            cross=self.cross_pairs,
            gram=self.gram_views,
            sum_of_squares=self.sum_of_squares,
            column_sums=self.column_sums,
            column_squares=self.column_squares,
            nonzero_rows=self.nonzero_rows,
            row_moments=self.row_moments,
        )

    # ------------------------------------------------------------------ update
    def _init_shift(self, blocks):
        shifts, scales = [], []
        # Column variances and fourth-order row moments lose digits to any
        # distance from the mean, so they always take the (cheap) pilot shift.
        always = self.column_squares or self.row_moments
        for block in blocks:
            if not self.column_sums:
                shifts.append(None)
                scales.append(1.0)
                continue
            # Non-finite input is reported once the moments are complete
            # (is_finite); here it only must not warn.
            with np.errstate(invalid="ignore", over="ignore"):
                mean = block.mean(axis=0, dtype=np.float64)
                deviation = block - mean.astype(block.dtype)
                # Whether the products would cancel depends on each column's
                # mean next to its own spread, not on the view's: one column
                # far from the origin (an outlier dimension of transformer
                # embeddings) among columns spread around it passed a test on
                # the whole view, and its float32 variance came out 5% wrong.
                # A column test implies the view's (if no column's squared
                # mean exceeds the ratio times its variance, neither do their
                # sums). Float64 rows take the same ratio: at 1e6 their
                # centred Gram kept only about 9 digits, and ridge maps of
                # nearly collinear columns differed from Ridge's by 2e-4.
                # Squared in float64: float32 deviations beyond about 1.8e19
                # square to infinity, which would hide that the rows sit far
                # from the origin (the pilot is at most a chunk of rows).
                wide = deviation.astype(np.float64)
                variances = np.einsum("ij,ij->j", wide, wide) / wide.shape[0]
                far = bool(np.any(mean * mean > _COLUMN_SHIFT_RATIO * variances))
            if (always or far) and np.isfinite(mean).all():
                # Keep the shift exactly representable in the block dtype, so
                # that the float64 bookkeeping matches what was subtracted.
                shifts.append(mean.astype(block.dtype).astype(np.float64))
                scales.append(_power_of_two_scale(deviation))
            else:
                shifts.append(None)
                scales.append(_power_of_two_scale(block))
        self._shift = shifts
        self._scale = scales
        self._allocate([b.shape[1] for b in blocks])

    def _allocate(self, widths):
        n_views = len(widths)
        self._sums = [np.zeros(w) for w in widths]
        self._squares = np.zeros(n_views)
        self._nonzero = np.zeros(n_views, dtype=np.int64)
        if self.column_squares:
            self._column_squares = [np.zeros(w) for w in widths]
        for i, j in self.cross_pairs:
            self._cross[(i, j)] = np.zeros((widths[i], widths[j]))
        for k in self.gram_views:
            self._gram[k] = np.zeros((widths[k], widths[k]))
        if self.row_moments:
            # Per pair i <= j: sum r_i r_j, sum r_i x_j and sum r_j x_i, with
            # r the squared norm of a shifted row.
            for i in range(n_views):
                for j in range(i, n_views):
                    self._row[(i, j)] = [
                        0.0,
                        np.zeros(widths[j]),
                        np.zeros(widths[i]),
                    ]

    def _spawn(self):
        """An empty accumulator with this one's layout and pilot shifts.

        Moments about the same shifts merge without any correction term, so
        row groups accumulated apart add up exactly as if read in one pass.
        """
        part = self._empty_like()
        part._shift = list(self._shift)
        part._scale = list(self._scale)
        part._allocate([s.shape[0] for s in self._sums])
        return part

    def update(self, blocks, *, chunk_size=None, prepare=None, n_threads=None):
        """Add row-paired view blocks (a list of K 2-D float arrays).

        Parameters
        ----------
        blocks : list of ndarray
            Row-paired 2-D float blocks, one per view.
        chunk_size : int or None
            Rows per chunk; by default from the "moments" budget per view
            ("rows" when only row counts are accumulated).
        prepare : callable or None
            Applied to every list of chunk blocks before its moments are
            taken (and to the pilot rows that choose the shifts), e.g. to
            give the rows unit length.
        n_threads : int or None
            Worker threads for the row groups (see :mod:`skembed._parallel`);
            None uses as many as the BLAS may.

        Blocks are read in row chunks; nothing larger than one chunk of one
        view per worker is allocated.
        """
        if len(blocks) != self.n_views:
            raise ValueError(f"Expected {self.n_views} view blocks, got {len(blocks)}.")
        n = blocks[0].shape[0]
        if n == 0:
            return self
        if chunk_size is None:
            widest = max(b.shape[1] for b in blocks)
            budget = "moments" if self.column_sums else "rows"
            chunk_size = chunk_rows(widest * blocks[0].dtype.itemsize, budget)
        if self._shift is None:
            # Rows spread evenly over the input, not its first rows: a sorted
            # or grouped input whose first rows sit near the origin and the
            # rest far from it took no shift, and its float32 products then
            # cancelled (canonical correlations off by 0.4 on such data).
            if n <= _PILOT_ROWS:
                pilot = blocks
            else:
                spread = np.linspace(0, n - 1, _PILOT_ROWS).astype(np.intp)
                pilot = [b[spread] for b in blocks]
            self._init_shift(pilot if prepare is None else prepare(pilot))

        def group_moments(start, stop):
            part = self._spawn()
            for first in range(start, stop, chunk_size):
                rows = slice(first, min(stop, first + chunk_size))
                chunk = [block[rows] for block in blocks]
                part._update_chunk(chunk if prepare is None else prepare(chunk))
            return part

        groups = row_groups(n, chunk_size)
        for part in map_row_groups(group_moments, groups, n_threads=n_threads):
            # The part is ours alone: the first one is adopted, not copied,
            # and none outlives its merge while the next group is computed
            # (each holds d x d blocks: at d = 4,096, 128 MB apiece).
            with np.errstate(invalid="ignore", over="ignore"):
                self._merge(part, adopt=True)
            del part
        return self

    def _moments_zero(self, k):
        """Whether every moment of view k accumulated so far is exactly 0."""
        if np.any(self._sums[k]) or self._squares[k] != 0:
            return False
        if k in self._gram and np.any(self._gram[k]):
            return False
        if self._column_squares is not None and np.any(self._column_squares[k]):
            return False
        return not any(
            np.any(acc) for (i, j), acc in self._cross.items() if k in (i, j)
        )

    def _update_chunk(self, blocks):
        # A NaN or an infinity in the rows makes the moments non-finite, which
        # is_finite reports as one clear error after the pass. Whether the
        # products warn on the way depends on the BLAS (numpy checks the
        # floating-point flags after a matmul, and not every kernel raises
        # them), so they are kept quiet here on every machine.
        with np.errstate(invalid="ignore", over="ignore"):
            self._accumulate_chunk(blocks)

    def _accumulate_chunk(self, blocks):
        shifted, norms = [], []
        for k, block in enumerate(blocks):
            if self.nonzero_rows:
                squared = row_squared_norms(block)
                # A square leaves float64 for entries beyond about 1e154 or
                # below 1e-162: such rows are judged by their entries.
                nonzero = squared != 0
                if not nonzero.all():
                    lost = ~nonzero
                    nonzero[lost] = np.any(block[lost] != 0, axis=1)
                self._nonzero[k] += np.count_nonzero(nonzero)
                finite = np.isfinite(squared)
                if not finite.all():
                    rows = block[~finite]
                    self._finite_rows &= bool(np.isfinite(rows).all())
            if not self.column_sums:
                continue
            shift = self._shift[k]
            if shift is not None:
                block = block - shift.astype(block.dtype)
            if self._scale[k] == 1.0 and self._moments_zero(k):
                # The pilot gave no scale (its rows were all equal, or all
                # zero): every moment so far is 0, so the scale is still
                # free, and the first chunk with a spread sets it.
                self._scale[k] = _power_of_two_scale(block)
            if self._scale[k] != 1.0:
                # Through float64, so that a factor beyond the range of the
                # block dtype (for subnormal float32 input) stays exact.
                block = np.multiply(block, self._scale[k], dtype=np.float64).astype(
                    block.dtype
                )
            sums = _column_sums(block)
            if block.dtype == np.float32 and _far_from_origin(block, sums):
                # The pilot's shift does not centre this chunk (its rows sit
                # elsewhere than the pilot's): float32 products would cancel
                # as the module docstring says, float64 ones do not.
                block = block.astype(np.float64)
                sums = _column_sums(block)
            shifted.append(block)
            self._sums[k] += sums
            if self.sum_of_squares:
                # Row norms in the block dtype (d terms each), summed in float64:
                # an n-vector temporary instead of a float64 copy of the chunk.
                rows = np.einsum("ij,ij->i", block, block)
                self._squares[k] += float(rows.sum(dtype=np.float64))
                if self.row_moments:
                    norms.append(row_squared_norms(block))
            if self.column_squares:
                self._column_squares[k] += np.einsum(
                    "ij,ij->j", block, block, dtype=np.float64
                )
        for (i, j), acc in self._cross.items():
            acc += shifted[i].T @ shifted[j]
        for k, acc in self._gram.items():
            acc += _gram_update(shifted[k])
        for (i, j), acc in self._row.items():
            acc[0] += float(norms[i] @ norms[j])
            acc[1] += norms[i] @ shifted[j]
            acc[2] += norms[j] @ shifted[i]
        self.n_samples_ += blocks[0].shape[0]

    def is_finite(self):
        """Whether every accumulated moment is finite.

        A NaN or an infinity anywhere in the rows reaches the column sums and
        the products, so this replaces a separate pass over the input (for
        accumulators without column sums, the row counts are all there is).
        """
        if self.n_samples_ == 0:
            return True
        if not self._finite_rows:
            return False
        parts = [*self._sums, self._squares, *self._cross.values()]
        parts += list(self._gram.values())
        parts += self._column_squares or []
        for value in self._row.values():
            parts += [np.asarray(value[0]), value[1], value[2]]
        return all(np.isfinite(part).all() for part in parts)

    # ------------------------------------------------------------------- merge
    def _shift_vector(self, k):
        shift = self._shift[k]
        return np.zeros(self._sums[k].shape[0]) if shift is None else shift

    def merge(self, other):
        """Add the moments of ``other`` (same views and blocks) to ``self``."""
        # Rows with a NaN or an infinity (or values whose squares overflow)
        # make the moments non-finite: is_finite reports it and every fit
        # turns it into a clear error, so the shift terms computed from them
        # must not warn first.
        with np.errstate(invalid="ignore", over="ignore"):
            return self._merge(other)

    def _merge(self, other, *, adopt=False):
        if other.n_samples_ == 0:
            return self
        if self.n_samples_ == 0:
            # ``adopt``: other is discarded after the merge, so its arrays
            # can become ours without a copy.
            self.__dict__.update(dict(other.__dict__) if adopt else _copy_state(other))
            return self
        if other._layout() != self._layout():
            raise ValueError("Cannot merge moments of different layouts.")
        self._nonzero += other._nonzero
        self._finite_rows &= other._finite_rows
        if not self.column_sums:
            self.n_samples_ += other.n_samples_
            return self
        n = other.n_samples_
        # Both at the smaller power-of-two scale of each view (exact): moving
        # the larger-magnitude moments to the scale of tiny rows would
        # overflow, while the other way at worst drops what is negligible
        # next to them. Then re-express the other's moments, taken about its
        # shifts b, about our shifts a: rows x' = (x - b) f become x' +
        # delta, delta = (b - a) f.
        common = [min(a, b) for a, b in zip(self._scale, other._scale, strict=True)]
        if common != list(self._scale):
            vars(self).update(vars(self._rescaled(common)))
        other = other._rescaled(common)
        delta = [
            (other._shift_vector(k) - self._shift_vector(k)) * self._scale[k]
            for k in range(self.n_views)
        ]
        moved = [bool(np.any(d)) for d in delta]
        sums, squares = other._sums, other._squares
        for (i, j), acc in self._cross.items():
            acc += other._cross[(i, j)]
            if moved[i] or moved[j]:
                acc += (
                    np.outer(sums[i], delta[j])
                    + np.outer(delta[i], sums[j])
                    + n * np.outer(delta[i], delta[j])
                )
        for k, acc in self._gram.items():
            acc += other._gram[k]
            if moved[k]:
                acc += (
                    np.outer(sums[k], delta[k])
                    + np.outer(delta[k], sums[k])
                    + n * np.outer(delta[k], delta[k])
                )
        if self.column_squares:
            for k, acc in enumerate(self._column_squares):
                acc += other._column_squares[k] + (
                    2 * delta[k] * sums[k] + n * delta[k] ** 2
                )
        for (i, j), acc in self._row.items():
            converted = _shifted_row_moments(other, i, j, delta)
            acc[0] += converted[0]
            acc[1] += converted[1]
            acc[2] += converted[2]
        for k in range(self.n_views):
            self._squares[k] += (
                squares[k]
                + 2 * float(sums[k] @ delta[k])
                + n * float(delta[k] @ delta[k])
            )
        for k in range(self.n_views):
            self._sums[k] += sums[k] + n * delta[k]
        self.n_samples_ += n
        return self

    def _rescaled(self, scales):
        """A copy of these moments at other power-of-two scales (exact)."""
        if list(scales) == list(self._scale):
            return self
        ratio = [new / old for new, old in zip(scales, self._scale, strict=True)]
        copy = CrossMoments.__new__(CrossMoments)
        copy.__dict__.update(_copy_state(self))
        copy._scale = list(scales)
        for k, r in enumerate(ratio):
            copy._sums[k] *= r
            copy._squares[k] *= r * r
            if copy._column_squares is not None:
                copy._column_squares[k] *= r * r
        for (i, j), acc in copy._cross.items():
            acc *= ratio[i] * ratio[j]
        for k, acc in copy._gram.items():
            acc *= ratio[k] ** 2
        for (i, j), acc in copy._row.items():
            ri, rj = ratio[i], ratio[j]
            acc[0] *= ri * ri * rj * rj
            acc[1] *= ri * ri * rj
            acc[2] *= rj * rj * ri
        return copy

    # ------------------------------------------------------------------- reads
    # Reads are in the units of the input unless ``scaled=True``: then in the
    # units of the rows multiplied by their view's power-of-two scale
    # (``scale(k)``), which stay representable whatever the input's magnitude;
    # scale-invariant quantities (correlations, CKA) read them so.
    def _check_ready(self):
        if self.n_samples_ == 0:
            raise ValueError("No samples have been accumulated.")

    def scale(self, k):
        """The power of two that view k's rows were multiplied by."""
        return self._scale[k]

    def mean(self, k):
        """Column means of view ``k`` (float64)."""
        self._check_ready()
        return self._shift_vector(k) + self._sums[k] / (
            self.n_samples_ * self._scale[k]
        )

    def centered_cross(self, i, j, *, scaled=False):
        """Centred cross-product of views i and j, not divided by n."""
        self._check_ready()
        if (i, j) in self._cross:
            raw = self._cross[(i, j)]
        elif (j, i) in self._cross:
            return self.centered_cross(j, i, scaled=scaled).T
        else:
            raise KeyError(f"The cross block ({i}, {j}) was not accumulated.")
        subtracted = np.outer(self._sums[i], self._sums[j]) / self.n_samples_
        out = raw - subtracted
        if scaled:
            return out
        noise = _cancellation_noise(self.n_samples_, raw, subtracted)
        return _unscaled(out, self._scale[i], self._scale[j], noise=noise)

    def uncentered_cross(self, i, j):
        """:math:`X_i^\\top X_j` about the origin, not divided by n."""
        centered = self.centered_cross(i, j)
        n = self.n_samples_
        return centered + n * np.outer(self.mean(i), self.mean(j))

    def centered_gram(self, k, *, scaled=False):
        """Centred Gram matrix of view k, not divided by n."""
        self._check_ready()
        if k not in self._gram:
            raise KeyError(f"The Gram block of view {k} was not accumulated.")
        sums = self._sums[k]
        subtracted = np.outer(sums, sums) / self.n_samples_
        out = self._gram[k] - subtracted
        if scaled:
            return out
        noise = _cancellation_noise(self.n_samples_, self._gram[k], subtracted)
        return _unscaled(out, self._scale[k], self._scale[k], noise=noise)

    def uncentered_gram(self, k):
        """:math:`X_k^\\top X_k` about the origin, not divided by n."""
        return self.centered_gram(k) + self.n_samples_ * np.outer(
            self.mean(k), self.mean(k)
        )

    def centered_sum_of_squares(self, k, *, scaled=False):
        """:math:`\\|X_k - 1\\mu_k^\\top\\|_F^2`."""
        self._check_ready()
        if not self.sum_of_squares:
            raise KeyError("Sums of squares were not accumulated.")
        sums = self._sums[k]
        subtracted = sums @ sums / self.n_samples_
        out = float(self._squares[k] - subtracted)
        if scaled:
            return out
        noise = _cancellation_noise(self.n_samples_, self._squares[k], subtracted)
        return float(_unscaled(out, self._scale[k], self._scale[k], noise=noise))

    def uncentered_sum_of_squares(self, k):
        """:math:`\\|X_k\\|_F^2`."""
        mean = self.mean(k)
        return self.centered_sum_of_squares(k) + self.n_samples_ * float(mean @ mean)

    def column_variance(self, k):
        """Biased (divided by n) variance of every column of view k."""
        self._check_ready()
        if not self.column_squares:
            raise KeyError("Column squares were not accumulated.")
        n = self.n_samples_
        subtracted = self._sums[k] ** 2 / n
        centred = self._column_squares[k] - subtracted
        noise = _cancellation_noise(n, self._column_squares[k], subtracted) / n
        return _unscaled(
            np.maximum(centred, 0.0) / n, self._scale[k], self._scale[k], noise=noise
        )

    def nonzero_row_count(self, k):
        """Rows of view k whose norm is not zero."""
        if not self.nonzero_rows:
            raise KeyError("Non-zero rows were not counted.")
        return int(self._nonzero[k])

    def centered_row_products(self, i, j, *, scaled=False):
        """:math:`\\sum_r \\|\\tilde x_r\\|^2 \\|\\tilde y_r\\|^2` of centred rows.

        ``i == j`` gives the sum of fourth powers of the centred row norms.
        With r, q the squared norms of the (shifted) rows, m, p the means of
        the shifted rows and C their cross-product, the centred sum expands
        exactly into accumulated moments:
        :math:`\\sum rq - 2p\\cdot\\sum r y - 2m\\cdot\\sum q x
        + 4 m^\\top C p + |p|^2 \\sum r + |m|^2 \\sum q - 3n|m|^2|p|^2`.
        """
        self._check_ready()
        if not self.row_moments:
            raise KeyError("Row moments were not accumulated.")
        if i > j:
            i, j = j, i
        n = self.n_samples_
        rr, r_y, q_x = self._row[(i, j)]
        m, p = self._sums[i] / n, self._sums[j] / n
        C = self._gram[i] if i == j else self._cross[(i, j)]
        total = (
            rr
            - 2 * float(p @ r_y)
            - 2 * float(m @ q_x)
            + 4 * float(m @ C @ p)
            + float(p @ p) * self._squares[i]
            + float(m @ m) * self._squares[j]
            - 3 * n * float(m @ m) * float(p @ p)
        )
        if scaled:
            return float(total)
        factors = (self._scale[i], self._scale[i], self._scale[j], self._scale[j])
        return float(_unscaled(total, *factors))


# The start of the error for moments float64 cannot hold; the command line
# looks for it to name the input file at fault.
MAGNITUDE_ERROR = (
    "The embeddings' magnitude puts their second moments outside the range of "
    "float64 (entries far below 1e-150 or above 1e150)"
)


class MagnitudeError(ValueError):
    """Moments of the embeddings that float64 cannot hold (``MAGNITUDE_ERROR``).

    A ValueError, as for any bad input; its own class lets a caller that
    names the offending input in its own terms (the command line names the
    file) tell it from other errors without reading the text.
    """


def _cancellation_noise(n_samples, *terms):
    """The rounding left by subtracting ``terms`` accumulated over
    ``n_samples`` rows: about n machine epsilons of the largest of them.

    A centred moment of a constant column is exactly 0, but computed as
    accumulated products minus the sums' outer product it keeps a residue of
    this size (1e-14 of unit-scale rows, 20 of them), which carries no
    information about the data.
    """
    largest = max(float(np.max(np.abs(term), initial=0.0)) for term in terms)
    return np.finfo(np.float64).eps * max(n_samples, 1) * largest


def _unscaled(value, *factors, noise=0.0):
    """``value`` divided by every factor, refusing a result float64 cannot hold.

    ``value`` is a moment of rows brought near unit scale; in the input's own
    units it may overflow, or sink into the subnormal range where it keeps
    only a few digits (products of float64 entries near 1e-170 or 1e200).
    Entries of ``value`` at most ``noise`` (:func:`_cancellation_noise`) are
    rounding residue of zero: that they underflow loses nothing. Without
    this, a constant column of entries near 1e-178 was refused although all
    its centred moments are 0.
    """
    result = np.asarray(value, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        # One power of two at a time: each division is exact while in range.
        for factor in factors:
            result = result / factor
    if np.all(np.isfinite(value)):
        significant = np.abs(np.asarray(value, dtype=np.float64)) > noise
        largest = np.max(np.abs(result[significant]), initial=0.0)
        lost = not np.all(np.isfinite(result)) or (
            np.any(significant) and largest < np.finfo(np.float64).tiny * 2**52
        )
        if lost:
            raise MagnitudeError(
                f"{MAGNITUDE_ERROR}; rescale them, for example to unit-length "
                "rows, before fitting."
            )
    return result


# Rows of a chunk whose squared deviations judge whether it sits far from the
# shift: the median of a sample is all the test needs, at a fraction of the
# cost of a pass over the chunk.
_FAR_SAMPLE_ROWS = 64


def _far_from_origin(block, sums):
    """Whether a float32 chunk's mean is far from 0 next to its rows' spread.

    The test of the pilot shift (``_SHIFT_RATIO``) against the *median*
    squared deviation of the rows from the chunk's mean: a chunk holding
    rows of two groups far apart (the boundary of sorted input) has a large
    mean deviation but most rows close to their own group, and its float32
    products would cancel as the module docstring says. ``sums`` are the
    chunk's column sums, which the moments need anyway; the deviations are
    taken in float64 on rows spread over the chunk.
    """
    ratio = _SHIFT_RATIO[np.dtype(np.float32)]
    sample = block[:: max(1, block.shape[0] // _FAR_SAMPLE_ROWS)]
    with np.errstate(invalid="ignore", over="ignore"):
        mean = sums / block.shape[0]
        centre = float(mean @ mean)
        deviations = sample.astype(np.float64)
        deviations -= mean
        squares = np.einsum("ij,ij->i", deviations, deviations)
        # The median of the squares, as np.median takes it, without its
        # checks: this runs on every chunk of a fit.
        middle = squares.shape[0] // 2
        if squares.shape[0] % 2:
            median = np.partition(squares, middle)[middle]
        else:
            part = np.partition(squares, [middle - 1, middle])
            median = (part[middle - 1] + part[middle]) / 2
        return bool(centre > ratio * median)


def centred_rows(block, mean, out=None):
    """``block - mean`` in the block's dtype, ``mean`` float64.

    The mean rounded to the block's dtype is subtracted first (exactly, for
    rows near it), then the rounding itself: rows far from the origin next
    to their spread keep their centred values to the dtype's precision
    instead of an error of half the mean's last digit (at a mean of 1e3 and
    a spread of 0.01, 3e-3 of the centred float32 rows).
    """
    dtype = block.dtype
    rounded = mean.astype(dtype)
    out = np.subtract(block, rounded, out=out)
    out -= (mean - rounded).astype(dtype)
    return out


def far_from_mean(block, mean):
    """Whether ``block @ P - mean @ P`` would cancel in the block's dtype.

    The test of the pilot shift of the moments (``_SHIFT_RATIO``), for rows
    mapped about a fitted ``mean`` (float64): true when the squared norm of
    the mean exceeds the ratio times the median squared distance of the
    rows from it, read in float64 on rows spread over the block. The
    product of rows far from the origin then rounds each entry to about
    ``eps * |x| |P|``, far more than the centred value it stands for.
    """
    ratio = _SHIFT_RATIO.get(block.dtype, _SHIFT_RATIO[np.dtype(np.float32)])
    if block.shape[0] == 0:
        return False
    sample = block[:: max(1, block.shape[0] // _FAR_SAMPLE_ROWS)]
    with np.errstate(invalid="ignore", over="ignore"):
        deviations = sample.astype(np.float64)
        deviations -= mean
        squares = np.einsum("ij,ij->i", deviations, deviations)
        median = np.partition(squares, squares.shape[0] // 2)[squares.shape[0] // 2]
        return bool(float(mean @ mean) > ratio * median)


def _power_of_two_scale(block):
    """1, or the power of two that brings the largest entry of ``block`` near 1.

    Only blocks whose largest entry has a binary exponent beyond the dtype's
    safe range (``_SAFE_EXPONENT``) are scaled, so that ordinary embeddings
    take no extra pass.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        peak = float(np.max(np.abs(block), initial=0.0))
    if not np.isfinite(peak) or peak == 0:
        return 1.0
    exponent = int(np.frexp(peak)[1])
    limit = _SAFE_EXPONENT.get(block.dtype, _SAFE_EXPONENT[np.dtype(np.float32)])
    if -limit <= exponent <= limit:
        return 1.0
    # A subnormal peak has an exponent below -1021, whose inverse power of two
    # does not exist in float64; 2**1021 still brings it into the normal range
    # (exactly), and _unscaled then tells whether its moments fit in float64.
    return float(np.ldexp(1.0, min(-exponent, 1021)))


def _shifted_row_moments(other, i, j, delta):
    """The row moments (i, j) of ``other`` re-expressed after shifting its rows.

    Rows x' (about the other's shifts) become x' + d; with r' = |x'|^2 the
    squared norms become r' + 2 x'.d + |d|^2, and the sums expand into the
    other's column sums, sums of squares, Gram and cross blocks.
    """
    n = other.n_samples_
    da, db = delta[i], delta[j]
    sa, sb = other._sums[i], other._sums[j]
    ra, rb = other._squares[i], other._squares[j]
    rr, r_y, q_x = other._row[(i, j)]
    C = other._gram[i] if i == j else other._cross[(i, j)]
    if not (np.any(da) or np.any(db)):
        return rr, r_y, q_x
    na, nb = float(da @ da), float(db @ db)
    new_r_y = r_y + db * ra + 2 * C.T @ da + 2 * db * float(da @ sa) + na * sb
    new_r_y = new_r_y + n * na * db
    new_q_x = q_x + da * rb + 2 * C @ db + 2 * da * float(db @ sb) + nb * sa
    new_q_x = new_q_x + n * nb * da
    new_rr = (
        rr
        + 2 * float(db @ r_y)
        + nb * ra
        + 2 * float(da @ q_x)
        + 4 * float(da @ C @ db)
        + 2 * nb * float(da @ sa)
        + na * rb
        + 2 * na * float(db @ sb)
        + n * na * nb
    )
    return new_rr, new_r_y, new_q_x


def view_moments(blocks, *, request, prepare=None, n_threads=None):
    """A new :class:`CrossMoments` of row-paired view blocks.

    ``request`` holds its keyword arguments, ``prepare`` and ``n_threads``
    are those of :meth:`CrossMoments.update`. A module-level function, so
    that Dask can ship it to the workers.
    """
    stats = CrossMoments(len(blocks), **request)
    return stats.update(blocks, prepare=prepare, n_threads=n_threads)


def merge_moments(left, right):
    """Return a new accumulator holding the moments of ``left`` and ``right``.

    Unlike :meth:`CrossMoments.merge` it changes neither argument, as a task
    of a Dask tree reduction must.
    """
    return left._empty_like().merge(left).merge(right)


def _copy_state(other):
    state = dict(other.__dict__)
    state["_sums"] = [s.copy() for s in other._sums]
    state["_squares"] = other._squares.copy()
    state["_nonzero"] = other._nonzero.copy()
    state["_cross"] = {key: v.copy() for key, v in other._cross.items()}
    state["_gram"] = {key: v.copy() for key, v in other._gram.items()}
    state["_shift"] = list(other._shift)
    state["_scale"] = list(other._scale)
    if other._column_squares is not None:
        state["_column_squares"] = [s.copy() for s in other._column_squares]
    state["_row"] = {
        key: [v[0], v[1].copy(), v[2].copy()] for key, v in other._row.items()
    }
    return state


# --------------------------------------------------------------------------
# The two verbs of every pass over the rows
# --------------------------------------------------------------------------
def check_rows(estimator, X, *, reset):
    """Validate X into the estimator's views, for :func:`reduce_rows` or
    :func:`map_rows`.

    Returns a list of numpy view blocks, or a ``DaskViews`` for a Dask X
    (never computed here). NaN and infinity are not looked for: every pass
    finds them in what it computes (sums, products, outputs) instead of
    reading X once more.
    """
    if is_dask_collection(X):
        return check_dask_views(estimator, X, reset=reset)
    with config_context(assume_finite=True):
        return check_views(estimator, X, reset=reset)


def rows_dtype(views):
    """The float dtype of the view blocks of :func:`check_rows`."""
    return views.dtype if isinstance(views, DaskViews) else views[0].dtype


def reduce_rows(views, summarize, merge):
    """One mergeable summary of all rows.

    ``summarize(blocks, n_threads=None)`` summarises numpy view blocks; on
    numpy input it runs once and spreads its row groups over the BLAS's
    threads itself (:func:`skembed._parallel.map_row_groups`). On Dask input
    every row block is summarised by one single-threaded task (Dask already
    runs one task per core) and the summaries are merged by a tree of
    ``merge`` tasks.
    """
    if isinstance(views, DaskViews):
        return reduce_views(views, partial(summarize, n_threads=1), merge)
    return summarize(views)


def map_rows(views, transform, width):
    """``transform(blocks, n_threads=None)`` of all rows: an array of ``width``.

    Numpy input is transformed at once (its row groups on the BLAS's threads);
    Dask input lazily, one single-threaded task per row block.
    """
    if isinstance(views, DaskViews):
        return map_views(views, partial(transform, n_threads=1), width)
    return transform(views)
