"""Dask input: fit by a tree reduction over row blocks, transform lazily.

A closed-form estimator needs only mergeable sums of its rows, so a Dask array
(or DataFrame) is fitted without ever being held in memory: every row block
is turned into its small summary (a :class:`~skembed._stats.CrossMoments`
for the aligners) by one task, and the summaries are merged by a tree of
tasks. Only the d x d summaries travel between workers, and the graph runs
unchanged on the threaded scheduler or on a ``dask.distributed`` cluster of
any number of machines. ``transform`` maps every row block with the fitted,
numpy-only code and returns a lazy Dask array.

Dask is optional: this module imports it only when it is handed a Dask
collection, which can exist only if Dask is already imported.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import copy
from dataclasses import dataclass
from functools import partial

import numpy as np
from sklearn import config_context
from sklearn.base import BaseEstimator

from skembed._parallel import single_threaded_blas
from skembed._views import (
    BLOCK_SAMPLE_ROWS,
    check_split_follows_blocks,
    check_view_block,
    check_views,
    partition_index,
    row_order_message,
    split_is_checked,
    view_selections,
    with_numpy_dtypes,
)

__all__ = ["check_dask_views", "map_dask_view", "map_views", "reduce_views"]


@dataclass(eq=False)
class DaskViews:
    """Dask arrays holding the views, split inside each row block.

    Attributes
    ----------
    arrays : list of dask arrays
        One 2-D array (columns in one chunk) whose column blocks are the views
        given by ``selections``, or one array per view when ``selections`` is
        None. All arrays share their row chunks.
    selections : tuple of (slice or ndarray of int) or None
        Column positions of each view in ``arrays[0]``.
    dtype : numpy dtype
        Float dtype of every view block handed to the numpy code.
    row_check : dask.delayed object or None
        A task that raises when the Dask DataFrames of a list X hold the same
        row labels in different orders (see :func:`_row_order_check`); every
        pass over the rows depends on it. None when there is nothing to check.
    """

    arrays: list
    selections: tuple | None
    dtype: np.dtype
    row_check: object = None


def _as_dask_array(item, name):
    """A dask array from a Dask array or a Dask DataFrame of numeric columns."""
    import dask.array as da

    if isinstance(item, da.Array):
        if item.ndim != 2:
            raise ValueError(
                f"{name} is a {item.ndim}-D Dask array; pass a 2-D array of shape "
                "(n_samples, n_features)."
            )
        if np.isnan(item.shape[1]):
            raise ValueError(
                f"{name} is a Dask array with an unknown number of columns; "
                "compute its chunk sizes first (X.compute_chunk_sizes())."
            )
        return item
    from dask.delayed import Delayed

    if isinstance(item, Delayed):
        # A Delayed answers every attribute, so it must be told apart first.
        raise TypeError(
            f"{name} is a dask.delayed object, whose shape is unknown; compute it, "
            "or make it a Dask array with dask.array.from_delayed(obj, shape, dtype)."
        )
    if hasattr(item, "to_dask_array") and getattr(item, "ndim", 2) == 1:
        raise ValueError(
            f"{name} is a Dask Series (one column of values); pass a Dask DataFrame "
            "or a 2-D Dask array of shape (n_samples, n_features), e.g. "
            "series.to_frame()."
        )
    if hasattr(item, "to_dask_array") and hasattr(item, "dtypes"):
        bad = [c for c, d in item.dtypes.items() if not _is_numeric(d)]
        if bad:
            raise ValueError(
                f"{name} is a Dask DataFrame with non-numeric columns {bad}; only "
                "scalar numeric columns are supported with Dask (array-valued "
                "columns are not). Convert or drop those columns."
            )
        frame = with_numpy_dtypes(item)
        # Built from the frame's partition tasks, which the index of a
        # pandas output shares (keep_list_index of _views): to_dask_array's
        # tasks are its own, and the index read every partition a second time.
        values, _ = _values_and_index(frame, frame.to_dask_array())
        return values
    raise TypeError(
        f"{name} is a {type(item).__name__}, not a Dask array or Dask DataFrame; "
        "pass Dask arrays or Dask DataFrames only (a list X cannot mix Dask and "
        "other inputs)."
    )


def _is_numeric(dtype) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def _proxy(item, array):
    """A one-row in-memory stand-in with the columns, names and dtype of ``item``.

    One row for every kind of item: a list of stand-ins is checked like a
    list of views, and stand-ins of different lengths (a Dask DataFrame's
    sample has two rows) were refused as views of different numbers of rows.
    """
    if hasattr(item, "_meta_nonempty"):
        return item._meta_nonempty.iloc[:1]
    return np.zeros((1, array.shape[1]), dtype=array.dtype)


def check_dask_views(estimator, X, *, reset):
    """Validate a Dask X against ``estimator.views`` without computing it.

    The layout rules, names and error messages are those of
    :func:`~skembed._views.check_views`, which runs on a one-row stand-in of X
    with the same columns and dtype. Columns are rechunked into one chunk
    (rows keep their chunks), so that every task sees whole rows. The row
    labels of a list of Dask DataFrames, which a stand-in does not hold, are
    checked by a task that the passes over the rows depend on
    (:func:`_row_order_check`).

    Parameters
    ----------
    estimator : estimator instance
        The estimator whose ``views`` parameter splits X.
    X : dask Array, dask DataFrame, or list/tuple of them
        The input.
    reset : bool
        Whether to record the layout (fit) or check against it.

    Returns
    -------
    views : DaskViews
    """
    if isinstance(X, list | tuple):
        arrays = [_as_dask_array(item, f"X[{k}]") for k, item in enumerate(X)]
        proxies = [_proxy(item, a) for item, a in zip(X, arrays, strict=True)]
    else:
        arrays = [_as_dask_array(X, "X")]
        proxies = _proxy(X, arrays[0])
    with config_context(assume_finite=True):
        blocks = check_views(estimator, proxies, reset=reset)
    dtype = blocks[0].dtype
    row_check = None
    if isinstance(X, list | tuple):
        row_check, arrays = _row_order_check(X, arrays)
    rows = arrays[0].chunks[0]
    for k, array in enumerate(arrays[1:], start=1):
        # Unknown sizes first: tuples of the same nan object compare equal.
        if any(np.isnan(rows)) or any(np.isnan(array.chunks[0])):
            if array.numblocks[0] != arrays[0].numblocks[0]:
                raise ValueError(
                    f"X[{k}] and X[0] have unknown row chunks and different numbers "
                    "of row blocks, so their rows cannot be paired; compute their "
                    "chunk sizes first (X.compute_chunk_sizes(), or "
                    "to_dask_array(lengths=True) for a Dask DataFrame)."
                )
            continue  # block row counts are compared when computed (_split)
        if array.shape[0] != arrays[0].shape[0]:
            n_rows = [a.shape[0] for a in arrays]
            raise ValueError(
                f"The arrays in X have different numbers of rows ({n_rows}), but "
                f"{type(estimator).__name__} pairs views row by row; pass arrays "
                "with the same number of rows (row i of every view must describe "
                "the same item)."
            )
        if array.chunks[0] != rows:
            arrays[k] = array.rechunk({0: rows})
    arrays = [a if a.numblocks[1] == 1 else a.rechunk({1: -1}) for a in arrays]
    selections = None if isinstance(X, list | tuple) else view_selections(estimator)
    layout = estimator._view_layout
    if (
        selections is not None
        and reset
        and layout.kind == "array"
        and split_is_checked(estimator)
    ):
        # Only the first rows: rows spread over a Dask X would cost a pass
        # over all of it (in-memory X is judged by rows spread over it).
        # Explicit views are not checked, and their first rows not read: a
        # compute of its own, which read the first block twice per fit.
        head = _first_rows(arrays[0], BLOCK_SAMPLE_ROWS)
        check_split_follows_blocks(
            estimator,
            head.astype(dtype),
            layout.widths,
            rows=f"the first {head.shape[0]} rows of X",
        )
    return DaskViews(arrays, selections, dtype, row_check)


@dataclass(frozen=True)
class _IndexSummary:
    """Order-independent summary of the row labels of Dask DataFrames.

    One entry per DataFrame of X (``equal`` and ``sized``: per DataFrame
    after the first), over the partitions summarised so far.
    """

    counts: tuple  # rows
    hashes: tuple  # sum of the labels' 64-bit hashes, modulo 2**64
    unique: tuple  # labels unique within every partition
    heads: tuple  # first labels, for the message
    equal: tuple  # every partition equal, label by label, to the first's
    sized: tuple  # every partition as long as the first's


_HEAD_LABELS = 3


def _index_summary(*indexes):
    """The :class:`_IndexSummary` of one partition of every DataFrame."""
    import pandas as pd

    first = indexes[0]
    return _IndexSummary(
        counts=tuple(len(index) for index in indexes),
        hashes=tuple(
            int(
                pd.util.hash_pandas_object(index, index=False)
                .to_numpy()
                .sum(dtype=np.uint64)
            )
            for index in indexes
        ),
        unique=tuple(index.is_unique for index in indexes),
        heads=tuple(list(index[:_HEAD_LABELS]) for index in indexes),
        equal=tuple(index.equals(first) for index in indexes[1:]),
        sized=tuple(len(index) == len(first) for index in indexes[1:]),
    )


def _merge_index_summaries(a, b):
    """The summary of the partitions of ``a`` followed by those of ``b``."""
    return _IndexSummary(
        counts=tuple(x + y for x, y in zip(a.counts, b.counts, strict=True)),
        hashes=tuple((x + y) % 2**64 for x, y in zip(a.hashes, b.hashes, strict=True)),
        unique=tuple(x and y for x, y in zip(a.unique, b.unique, strict=True)),
        heads=tuple(
            (x + y)[:_HEAD_LABELS] for x, y in zip(a.heads, b.heads, strict=True)
        ),
        equal=tuple(x and y for x, y in zip(a.equal, b.equal, strict=True)),
        sized=tuple(x and y for x, y in zip(a.sized, b.sized, strict=True)),
    )


def _check_row_order(positions, summary):
    """Raise if a DataFrame holds the first one's row labels in another order.

    The rule of a list of pandas items: unique labels, the same set, another
    order. Here the sets are compared by their counts and hash sums, and
    uniqueness is that within each partition (labels repeated across
    partitions, as a RangeIndex restarting in each, are not looked for). A
    DataFrame whose partitions are not as long as the first one's is left to
    the row count check of its blocks.
    """
    for j in range(1, len(positions)):
        if summary.equal[j - 1] or not summary.sized[j - 1]:
            continue
        if (
            summary.hashes[j] == summary.hashes[0]
            and summary.unique[0]
            and summary.unique[j]
        ):
            raise ValueError(
                row_order_message(
                    "Dask DataFrames",
                    (f"X[{positions[j]}]", summary.heads[j]),
                    (f"X[{positions[0]}]", summary.heads[0]),
                    "give them one order first, e.g. build them from one table "
                    "(one DataFrame split by the views parameter), or sort each "
                    "on one shared key (set_index).",
                )
            )


def _row_order_check(X, arrays, *, split_every=8):
    """A task refusing Dask DataFrames of X with their labels in other orders.

    A list of pandas items is refused when two hold the same unique row
    labels in different orders (views are paired by position); the one-row
    stand-ins of :func:`check_dask_views` cannot tell. DataFrames that all
    have known divisions are sorted on their index, so equal label sets are
    in one order: nothing is checked. Otherwise every partition's index is
    summarised by one task (:func:`_index_summary`) and the summaries are
    merged by a tree of tasks, the last of which raises. The DataFrames'
    arrays are rebuilt from the same partition tasks as their indexes, so
    that a pass over the rows that depends on the check reads every
    partition once, not once for its values and once for its index.

    Parameters
    ----------
    X : list or tuple
        The items of X.
    arrays : list of dask arrays
        Their arrays, from :func:`_as_dask_array`.

    Returns
    -------
    check : dask.delayed object or None
        Computes to None, or raises ValueError. None when there is nothing to
        check.
    arrays : list of dask arrays
        ``arrays``, those of the checked DataFrames rebuilt.
    """
    frames = [k for k, item in enumerate(X) if hasattr(item, "known_divisions")]
    if len(frames) < 2 or all(X[k].known_divisions for k in frames):
        return None, arrays
    if len({X[k].npartitions for k in frames}) > 1:
        return None, arrays  # refused already: the blocks cannot be paired
    import dask

    arrays = list(arrays)
    indexes = []
    for k in frames:
        arrays[k], index = _values_and_index(X[k], arrays[k])
        indexes.append(index)
    parts = [
        dask.delayed(_index_summary, pure=True)(*blocks)
        for blocks in zip(*indexes, strict=True)
    ]
    summary = _tree(parts, partial(_merge_task, _merge_index_summaries), split_every)
    return dask.delayed(_check_row_order, pure=True)(frames, summary), arrays


def _values_and_index(frame, array):
    """``array`` (``frame``'s values) and ``frame``'s index blocks, both read
    from one task per partition of ``frame``."""
    import dask
    import dask.array as da

    partitions = with_numpy_dtypes(frame).to_delayed()
    width, dtype = array.shape[1], array.dtype
    values = da.concatenate(
        [
            da.from_delayed(
                dask.delayed(_partition_values, pure=True)(part),
                (np.nan, width),
                dtype=dtype,
            )
            for part in partitions
        ]
    )
    index = [dask.delayed(partition_index, pure=True)(part) for part in partitions]
    return values, index


def _partition_values(partition):
    return partition.to_numpy()


def _tree(parts, merge_task, split_every):
    """One delayed object merging ``parts`` by a tree of ``merge_task`` tasks."""
    import dask

    while len(parts) > 1:
        parts = [
            dask.delayed(merge_task, pure=True)(*parts[i : i + split_every])
            for i in range(0, len(parts), split_every)
        ]
    return parts[0]


def _first_rows(array, n_rows):
    """Up to ``n_rows`` first rows of a dask array, as a numpy array.

    Read from as few leading row blocks as hold them, computed a few at a
    time (1, 2, 4, ... blocks): a filtered collection often starts with
    empty or small blocks, and a first block alone then held too few rows
    for any check on them to run.
    """
    import dask

    blocks = array.to_delayed()[:, 0]
    known = array.chunks[0]
    heads, found, start, batch = [], 0, 0, 1
    while found < n_rows and start < len(blocks):
        chosen = [
            i
            for i in range(start, min(start + batch, len(blocks)))
            if np.isnan(known[i]) or known[i] > 0
        ]
        tasks = [dask.delayed(_head)(blocks[i], n_rows) for i in chosen]
        for head in dask.compute(*tasks):
            heads.append(head[: n_rows - found])
            found += heads[-1].shape[0]
        start, batch = start + batch, 2 * batch
    if not heads:
        return np.empty((0, array.shape[1]), dtype=array.dtype)
    return np.concatenate(heads)


def _head(block, n_rows):
    """The first rows of one row block, as a numpy array."""
    return np.asarray(block[:n_rows])


def _split(selections, dtype, arrays):
    """The numpy view blocks of one row block (column views, no copy)."""
    if selections is None:
        blocks = [np.asarray(a, dtype=dtype) for a in arrays]
        n_rows = [block.shape[0] for block in blocks]
        if len(set(n_rows)) > 1:
            # Only views of unknown row chunks get here unpaired.
            raise ValueError(
                f"The views' row blocks hold different numbers of rows ({n_rows}): "
                "their row chunks were unknown, and the views are not paired row "
                "by row. Compute their chunk sizes first (X.compute_chunk_sizes(), "
                "or to_dask_array(lengths=True) for a Dask DataFrame)."
            )
        return blocks
    whole = np.asarray(arrays[0], dtype=dtype)
    return [whole[:, selection] for selection in selections]


def _block_task(function, selections, dtype, *arrays):
    return function(_split(selections, dtype, arrays))


def _merge_task(merge, *parts):
    result = parts[0]
    for part in parts[1:]:
        result = merge(result, part)
    return result


def reduce_views(views, function, merge, *, split_every=8):
    """Summarise every row block and merge the summaries with a tree of tasks.

    Parameters
    ----------
    views : DaskViews
        The views, from :func:`check_dask_views`.
    function : callable
        ``function(blocks) -> summary`` on a list of numpy view blocks. It
        and ``merge`` must be picklable (module-level functions or partials)
        to run on a distributed cluster.
    merge : callable
        ``merge(a, b) -> summary``, associative, leaving its arguments intact.
    split_every : int, default=8
        Summaries merged by one task of the tree.

    Returns
    -------
    summary : object
        The merged summary of all rows, computed with the current Dask
        scheduler (a distributed ``Client`` when one is active), together
        with ``views.row_check`` (which raises if it fails).
    """
    import dask

    block_task = partial(_block_task, function, views.selections, views.dtype)
    merge_task = partial(_merge_task, merge)
    # Unoptimised beside a row check: fusing would rename the partition
    # tasks the check shares with the blocks, and read every partition twice.
    optimize = views.row_check is None
    columns = [
        array.to_delayed(optimize_graph=optimize).ravel() for array in views.arrays
    ]
    parts = [
        dask.delayed(block_task, pure=True)(*row) for row in zip(*columns, strict=True)
    ]
    # One compute: the partitions the data and the row check both read are
    # read once when the two graphs share them.
    summary, _ = dask.compute(_tree(parts, merge_task, split_every), views.row_check)
    return summary


def map_views(views, function, width):
    """Apply ``function(blocks) -> ndarray (rows, width)`` to every row block.

    The function (typically a bound method of a fitted estimator) enters the
    graph once, as a shared dependency, rather than once per task. It enters
    as a deep copy: the lazy result is the estimator's as it is now, even if
    it is refitted or its parameters are set before ``compute``.

    Every output block depends on ``views.row_check`` (when not None), so
    computing any part of Z runs it, and fails if it fails.

    Returns
    -------
    Z : dask array of shape (n_samples, width)
        Lazy; its row chunks are those of the input.
    """
    import dask
    import dask.array as da

    # pure=False: the copy's token would not tell two states of one estimator
    # apart, and equal keys would share one result.
    shared = dask.delayed(_copy_for_graph(function), pure=False)
    pairs = []
    for k, array in enumerate(views.arrays):
        pairs.extend([array, ("i", f"c{k}")])
    return da.blockwise(
        partial(_apply_shared, views.selections, views.dtype),
        ("i", "j"),
        shared,
        None,
        views.row_check,
        None,
        *pairs,
        new_axes={"j": width},
        concatenate=True,
        # The views' row blocks are paired already (check_dask_views): equal
        # known chunks, or the same number of unknown ones, whose sizes
        # _split compares when they are computed. Aligning would fail on
        # known chunks beside unknown ones.
        align_arrays=False,
        dtype=views.dtype,
        meta=np.empty((0, 0), dtype=views.dtype),
    )


def _fit_statistics(item, found, seen):
    """Collect the partial_fit statistics (``_stats``) reachable from ``item``.

    Followed: partials, bound methods, estimators' attributes (fitted
    sub-estimators included) and the lists, tuples and dicts among them.
    """
    if id(item) in seen:
        return
    seen.add(id(item))
    if isinstance(item, partial):
        children = [item.func, *item.args, *item.keywords.values()]
    elif hasattr(item, "__self__") and hasattr(item, "__func__"):
        children = [item.__self__]
    elif isinstance(item, (list, tuple)):
        children = list(item)
    elif isinstance(item, dict):
        children = list(item.values())
    elif isinstance(item, BaseEstimator):
        stats = getattr(item, "_stats", None)
        if stats is not None:
            found.append(stats)
        children = list(vars(item).values())
    else:
        return
    for child in children:
        _fit_statistics(child, found, seen)


def _copy_for_graph(function):
    """A deep copy of ``function`` without the statistics partial_fit keeps.

    Mapping rows needs only the fitted maps. The statistics (``_stats``, the
    views' sums and their d x d Gram and cross products, 32 MB for two views
    of 1,024 columns) serve only a later partial_fit; they are left out of
    the copy that the graph carries to every worker.
    """
    found = []
    _fit_statistics(function, found, set())
    # deepcopy returns memo[id(x)] for an object already in the memo.
    return copy.deepcopy(function, {id(stats): None for stats in found})


def _apply_shared(selections, dtype, function, row_check, *arrays):
    # row_check: None once computed (it raises otherwise)
    return function(_split(selections, dtype, arrays))


def map_dask_view(
    estimator, X_view, view, function, width, *, check=None, name="X_view"
):
    """``function(block)`` of every row block of one view's Dask rows, lazily.

    For the one-view methods (``transform_view``, ``translate``,
    ``inverse_transform_view``): the layout is checked now, on a one-row
    stand-in of ``X_view``, as :func:`check_dask_views` checks X (by
    ``check(stand_in)`` when given, for rows that are not of the view);
    ``function`` (the method itself, for numpy blocks) then checks each
    block's values when it runs. Each task runs single-threaded, as
    ``transform``'s do.

    Returns
    -------
    Z : dask array of shape (n_samples, width)
        Lazy; its row chunks are those of ``X_view``.
    """
    array = _as_dask_array(X_view, name)
    if check is None:
        check = partial(check_view_block, estimator, view=view)
    with config_context(assume_finite=True):
        dtype = check(_proxy(X_view, array)).dtype
    if array.numblocks[1] != 1:
        array = array.rechunk({1: -1})
    views = DaskViews([array], None, dtype)
    return map_views(views, partial(_one_view, function, width), width)


def _one_view(function, width, blocks):
    (block,) = blocks
    if block.shape[0] == 0:
        # An empty row block (a filtered collection has them) is no input
        # error, as it would be on its own.
        return np.empty((0, width), dtype=block.dtype)
    with single_threaded_blas():
        return function(block)
