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

from skembed._parallel import single_threaded_blas
from skembed._views import (
    BLOCK_SAMPLE_ROWS,
    check_split_follows_blocks,
    check_view_block,
    check_views,
    view_selections,
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
    """

    arrays: list
    selections: tuple | None
    dtype: np.dtype


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
        return _with_numpy_dtypes(item).to_dask_array()
    raise TypeError(
        f"{name} is a {type(item).__name__}, not a Dask array or Dask DataFrame; "
        "pass Dask arrays or Dask DataFrames only (a list X cannot mix Dask and "
        "other inputs)."
    )


def _with_numpy_dtypes(frame):
    """``frame`` with its pandas extension columns (nullable, Arrow) as NumPy floats.

    Their missing values become NaN, which the usual finiteness check then
    reports; converted as they are, they would fail inside a task.
    """
    import pandas as pd

    changes = {}
    for column, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.api.extensions.ExtensionDtype):
            numpy = np.dtype(getattr(dtype, "numpy_dtype", np.float64))
            changes[column] = numpy if numpy.kind == "f" else np.dtype(np.float64)
    return frame.astype(changes) if changes else frame


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
    (rows keep their chunks), so that every task sees whole rows.

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
    if selections is not None and reset and layout.kind == "array":
        # Only the first rows: rows spread over a Dask X would cost a pass
        # over all of it (in-memory X is judged by rows spread over it).
        head = _first_rows(arrays[0], BLOCK_SAMPLE_ROWS)
        check_split_follows_blocks(
            estimator,
            head.astype(dtype),
            layout.widths,
            rows=f"the first {head.shape[0]} rows of X",
        )
    return DaskViews(arrays, selections, dtype)


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
        scheduler (a distributed ``Client`` when one is active).
    """
    import dask

    block_task = partial(_block_task, function, views.selections, views.dtype)
    merge_task = partial(_merge_task, merge)
    columns = [array.to_delayed().ravel() for array in views.arrays]
    parts = [
        dask.delayed(block_task, pure=True)(*row) for row in zip(*columns, strict=True)
    ]
    while len(parts) > 1:
        parts = [
            dask.delayed(merge_task, pure=True)(*parts[i : i + split_every])
            for i in range(0, len(parts), split_every)
        ]
    (summary,) = dask.compute(parts[0])
    return summary


def map_views(views, function, width):
    """Apply ``function(blocks) -> ndarray (rows, width)`` to every row block.

    The function (typically a bound method of a fitted estimator) enters the
    graph once, as a shared dependency, rather than once per task. It enters
    as a deep copy: the lazy result is the estimator's as it is now, even if
    it is refitted or its parameters are set before ``compute``.

    Returns
    -------
    Z : dask array of shape (n_samples, width)
        Lazy; its row chunks are those of the input.
    """
    import dask
    import dask.array as da

    # pure=False: the copy's token would not tell two states of one estimator
    # apart, and equal keys would share one result.
    shared = dask.delayed(copy.deepcopy(function), pure=False)
    pairs = []
    for k, array in enumerate(views.arrays):
        pairs.extend([array, ("i", f"c{k}")])
    return da.blockwise(
        partial(_apply_shared, views.selections, views.dtype),
        ("i", "j"),
        shared,
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


def _apply_shared(selections, dtype, function, *arrays):
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
