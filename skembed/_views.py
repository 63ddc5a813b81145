"""Split one input ``X`` into several embedding views.

Every skembed estimator receives all its embeddings in one ``X`` (a Pipeline passes
class labels as ``y``) and a ``views`` parameter that says how ``X`` splits into
``K >= 2`` views:

- ``None``: two contiguous blocks; with an odd width the first has one more column.
- ``int K``: ``K`` contiguous blocks whose widths differ by at most one (the first
  blocks are the wider ones).
- a list of selectors, one per view: a ``slice``, an int array, a boolean mask, a
  list of column names, one column name (a dataframe column whose cells are
  equal-length vectors, or a list/array column), or a callable such as
  :func:`sklearn.compose.make_column_selector` that returns one of those. When
  every selector is one column name, the views are named after their columns
  (``views=["minilm", "e5"]``); otherwise they are ``view0``, ``view1``, ... (a
  view made of several columns has no single name: use a dict to name it).
- a dict ``name -> selector``: the same, with view names.

``X`` may be a 2-D array-like; a dataframe of scalar numeric columns and/or
array-valued columns (pandas, polars, a pyarrow Table or any eager frame that
narwhals reads: object cells holding vectors, Arrow list and fixed-size list
columns, polars ``List`` and ``Array`` columns); or a list/tuple of ``K`` 2-D
arrays, dataframes or columns of vectors (then ``views`` must be ``None``). When
``X`` is a dataframe with array-valued columns, selectors and the contiguous
blocks of ``views=None`` / ``views=K`` count dataframe columns, not vector
entries: a dataframe with two array-valued columns and ``views=None`` gives two
views, one per column.

A list/tuple is read as views when its first item is 2-D, and as the rows of
one 2-D X when its items are Python lists or tuples of scalars (scikit-learn's
nested lists). A list holding a 1-D array object (``[a, b]`` with two numpy
vectors) is refused with a ValueError: numpy would read it as two rows, while
someone holding one vector per model means two views, and nothing in the data
tells which.

``views=None`` and ``views=K`` are checked at fit against X that holds the
embeddings of models of different widths side by side (384 + 256 columns split
320/320). Most models return rows of one norm, so in an evenly spaced sample of
at most 256 rows the squared row norms of the columns before (or after) a model
boundary are all equal, and one column more or less breaks that equality: the
relative spread of those norms dips by orders of magnitude exactly at the
boundary. A boundary the contiguous split does not follow raises a ValueError
that names it and gives the explicit ``views``. It raises rather than warns
because such a split mixes two models in one view while the scores still look
good, and a warning is easily lost in a pipeline or a search. Unnormalised
models show no such boundary and pass unchecked; Dask input is checked on the
first rows of its first block.

The layout found at fit time is stored on the estimator and checked by every later
call with ``reset=False``. Column blocks of an input that already is a float array
are numpy views of it, and fixed-size float vectors in Arrow memory (polars,
pyarrow, pandas Arrow dtypes) are read in place: nothing is copied.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import sys
from dataclasses import dataclass, replace
from numbers import Integral

import narwhals.stable.v2 as nw
import numpy as np
import pandas as pd
from scipy import sparse
from sklearn import get_config
from sklearn.utils import check_array
from sklearn.utils.validation import (
    _check_feature_names,
    check_is_fitted,
    validate_data,
)

__all__ = [
    "BLOCK_SAMPLE_ROWS",
    "non_finite_error",
    "ViewLayout",
    "check_split_follows_blocks",
    "check_training_views",
    "check_view_block",
    "check_views",
    "frame_to_array",
    "is_dask_collection",
    "resolve_view",
    "partition_index",
    "row_order_message",
    "split_is_checked",
    "view_feature_names",
    "view_selections",
    "with_numpy_dtypes",
]


def non_finite_error(estimator, dtype, input_name="X"):
    """The error for NaN or infinity in an estimator's input, one wording for
    every path (fit, transform, transform_view, translate)."""
    return ValueError(
        f"Input {input_name} contains NaN or infinity (or a value too large for "
        f"{np.dtype(dtype)}); {_estimator_name(estimator)} needs finite "
        "embeddings. Drop or impute those rows."
    )


def _checked_array(X, *, estimator, input_name, **params):
    """:func:`sklearn.utils.check_array` whose non-finite error is
    :func:`non_finite_error` (scikit-learn's advises other estimators)."""
    block = check_array(
        X,
        estimator=estimator,
        input_name=input_name,
        ensure_all_finite=False,
        **params,
    )
    return _refuse_non_finite(block, estimator, input_name)


def _refuse_non_finite(block, estimator, input_name):
    """``block``, or :func:`non_finite_error` if it holds NaN or infinity
    (unless scikit-learn's ``assume_finite`` is set)."""
    if not _finite(block):
        raise non_finite_error(estimator, block.dtype, input_name)
    return block


def _finite(block):
    """Whether a numeric ``block`` holds no NaN or infinity (True when
    scikit-learn's ``assume_finite`` is set)."""
    if get_config()["assume_finite"] or block.dtype.kind != "f":
        return True
    # The sum is finite in the common case: one pass, no temporary (a
    # boolean copy of the block took twice as long at 500,000 x 384).
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(block.sum()) or np.isfinite(block).all())


_SELECTOR_HELP = (
    "a slice, an int array, a boolean mask, a list of column names, one column name "
    "or a callable returning one of those (e.g. sklearn.compose.make_column_selector)"
)
_MAX_LISTED = 10


@dataclass(eq=False)
class ViewLayout:
    """Layout of the input seen at fit time, used to re-split later inputs.

    Attributes
    ----------
    kind : {"array", "frame", "list"}
        ``"array"``: a 2-D array-like or a dataframe of scalar columns, validated by
        ``validate_data``; ``"frame"``: a dataframe with array-valued columns;
        ``"list"``: a list/tuple of ``K`` 2-D arrays.
    selections : tuple of (slice or ndarray of int) or None
        Per view, the positions of its input columns (features for ``"array"``,
        dataframe columns for ``"frame"``). None for ``"list"``.
    widths : tuple of int
        Number of features of each view.
    column_widths : ndarray of int or None
        For ``"frame"``, the number of values per row of each dataframe column.
    vector_columns : ndarray of bool or None
        For ``"frame"``, which dataframe columns are array-valued; for
        ``"list"``, which items were (None for layouts fitted before it was
        kept).
    feature_names : ndarray of str or None
        String names of the input columns, when ``X`` had string column names.
    """

    kind: str
    selections: tuple | None
    widths: tuple
    column_widths: np.ndarray | None = None
    vector_columns: np.ndarray | None = None
    feature_names: np.ndarray | None = None


def _estimator_name(estimator) -> str:
    """Return the class name of ``estimator`` for error messages."""
    return type(estimator).__name__


def _short_list(values) -> str:
    """Format at most ``_MAX_LISTED`` values of a sequence for an error message."""
    values = list(values)
    shown = ", ".join(
        repr(v.item() if isinstance(v, np.generic) else v) for v in values[:_MAX_LISTED]
    )
    if len(values) > _MAX_LISTED:
        shown += f", ... ({len(values)} in total)"
    return f"[{shown}]"


def _allowed_dtypes(dtype) -> list:
    """Normalise the ``dtype`` argument to a non-empty list of numpy dtypes."""
    if isinstance(dtype, list | tuple):
        allowed = [np.dtype(d) for d in dtype]
    else:
        allowed = [np.dtype(dtype)]
    if not allowed:
        raise ValueError("dtype must name at least one floating dtype.")
    return allowed


def _as_frame(X):
    """Return ``X`` as a narwhals eager DataFrame if it is a dataframe, else None.

    pandas, polars, pyarrow Tables and the other libraries narwhals knows are all
    read through this one interface, as scikit-learn reads them. Lazy frames are
    refused: reading them would run a query behind the user's back.
    """
    if isinstance(X, np.ndarray):
        # The common case, and the one the zero-pair search repeats hundreds
        # of times: narwhals' checks cost more than a small fit's arithmetic.
        return None
    if nw.dependencies.is_into_dataframe(X):
        try:
            return nw.from_native(X, eager_only=True)
        except nw.exceptions.DuplicateError:
            columns = pd.Index(getattr(X, "columns", []))
            repeated = list(dict.fromkeys(columns[columns.duplicated()]))
            raise ValueError(
                f"X has {len(repeated)} column names used more than once "
                f"({_short_list([str(name) for name in repeated])}), as "
                "pd.concat([A, B], axis=1) makes of two unnamed frames; columns "
                "are selected by name, so give each its own, e.g. "
                "pd.concat([A.add_prefix('a_'), B.add_prefix('b_')], axis=1), "
                "or pass the embeddings as a list [A, B]."
            ) from None
    if isinstance(nw.from_native(X, pass_through=True), nw.LazyFrame):
        raise TypeError(
            f"X is a lazy frame ({type(X).__module__}.{type(X).__name__}); "
            "materialise it first (X.collect() for polars, X.compute() for "
            "Dask) and pass the resulting DataFrame."
        )
    return None


def _frame_schema(frame):
    """Return the narwhals schema of a narwhals DataFrame.

    narwhals converts the dtype of each pandas column on its own (tens of
    microseconds each, 30 ms for 1,000 columns), while a wide frame of embedding
    columns has one or two distinct dtypes: for pandas-like frames each distinct
    dtype is converted once. Object columns, whose narwhals dtype depends on their
    values, are converted one by one.
    """
    if not frame.implementation.is_pandas_like() or frame.shape[1] < 2:
        return frame.schema
    native = frame.to_native()
    position_of = {}
    positions = []
    for j, dtype in enumerate(native.dtypes):
        if getattr(dtype, "kind", None) == "O":
            positions.append(j)
            continue
        try:
            positions.append(position_of.setdefault(dtype, j))
        except TypeError:  # an unhashable extension dtype
            positions.append(j)
    distinct = sorted(set(positions))
    if len(distinct) == len(positions):
        return frame.schema
    converted = dict(zip(distinct, frame[:, distinct].schema.values(), strict=True))
    return nw.Schema(zip(frame.columns, (converted[j] for j in positions), strict=True))


def _as_series(X):
    """Return ``X`` as a narwhals Series if it is a dataframe column, else None."""
    if isinstance(X, np.ndarray):
        return None
    if nw.dependencies.is_into_series(X):
        return nw.from_native(X, series_only=True)
    return None


_FLOAT_DTYPES = ((nw.Float32, np.dtype(np.float32)), (nw.Float64, np.dtype(np.float64)))


def _frame_float_dtype(dtypes) -> np.dtype | None:
    """Return the float dtype shared by all these narwhals column dtypes, or None.

    Only float32 and float64 are reported (the only dtypes that may be kept); any
    other column dtype means a conversion anyway.
    """
    dtypes = list(dtypes)
    for nw_dtype, np_dtype in _FLOAT_DTYPES:
        if dtypes and all(d == nw_dtype for d in dtypes):
            return np_dtype
    return None


def _native_dtype(obj):
    """Return the one numpy dtype of a raw 2-D input, or None if unknown or mixed."""
    frame = _as_frame(obj)
    if frame is not None:
        return _frame_float_dtype(_frame_schema(frame).values())
    obj_dtype = getattr(obj, "dtype", None)
    try:
        return None if obj_dtype is None else np.dtype(obj_dtype)
    except TypeError:
        return None


def _target_dtype(natives, allowed):
    """Choose the single output dtype of all blocks.

    The inputs keep their dtype only when they all share it and it is allowed
    (float32 stays float32 only if every input is float32); otherwise every block is
    converted to the first allowed dtype.
    """
    natives = list(natives)
    if natives and natives[0] is not None and natives[0] in allowed:
        if all(d is not None and d == natives[0] for d in natives):
            return natives[0]
    return allowed[0]


def _frame_allowed(schema, allowed):
    """The one dtype a frame of this schema is read in, as a dtype list.

    scikit-learn reads the dtypes of plain pandas frames only: a float32
    polars, pyarrow or nullable pandas frame would become float64.
    """
    return [_target_dtype([_frame_float_dtype(schema.values())], allowed)]


def _ambiguous_list_error(X, k) -> ValueError:
    """Return the error for a list/tuple X holding a 1-D array at position ``k``."""
    return ValueError(
        f"X is a {type(X).__name__} of {len(X)} items and X[{k}] is a 1-D array "
        f"(shape {np.shape(X[k])}), so X could be the rows of one 2-D X or one view "
        "per item; skembed does not guess. For rows of one X pass np.vstack(X); for "
        "one view per item pass 2-D arrays of shape (n_samples, n_features_k), "
        "e.g. [a.reshape(1, -1), b.reshape(1, -1)] if each vector is one sample or "
        "[a[:, None], b[:, None]] if each entry is one sample."
    )


def _is_list_of_views(X) -> bool:
    """Tell a list/tuple of 2-D view arrays from a nested-list 2-D array.

    The items are views when the first is 2-D: an array, a nested list, a
    dataframe, a sparse matrix or a column of vectors (a Series of lists/arrays).
    They are the rows of one X when they are Python lists or tuples of scalars, as
    everywhere in scikit-learn. A 1-D array object (numpy array, Series, tensor,
    ...) first or among Python-list rows raises a ValueError: numpy would read
    ``[a, b]`` as two rows, while someone who holds one vector per model means two
    views, and nothing in the data tells the two apart.
    """
    if not isinstance(X, list | tuple) or len(X) == 0:
        return False
    first = X[0]
    if not isinstance(first, list | tuple):
        if _as_frame(first) is not None or sparse.issparse(first):
            return True
        series = _as_series(first)
        if series is not None and _is_vector_series(series):
            return True
        _refuse_plain_arrow_vectors(first, 0)
        ndim = getattr(first, "ndim", None)
        # A polars Series or a pyarrow Array has no ndim, and was read as a
        # row: two Series of 50 values became two rows of one 50-column X.
        if ndim == 1 or series is not None or _is_arrow_array(first):
            raise _ambiguous_list_error(X, 0)
        # A list of 3-D arrays is a list of views of the wrong shape, which
        # check_views reports by item (as one array it would be 4-D).
        return ndim is not None and ndim >= 2
    try:
        if np.ndim(first) >= 2:
            return True
    except ValueError:
        return False  # a ragged first row: check_array reports it
    for k, item in enumerate(X):
        if not isinstance(item, list | tuple) and (
            getattr(item, "ndim", None) == 1
            or _as_series(item) is not None
            or _is_arrow_array(item)
        ):
            raise _ambiguous_list_error(X, k)
    return False


def _is_arrow_array(item) -> bool:
    """Whether ``item`` is a 1-D pyarrow array (plain or chunked)."""
    pa = sys.modules.get("pyarrow")
    return pa is not None and isinstance(item, pa.Array | pa.ChunkedArray)


def _refuse_plain_arrow_vectors(item, k):
    """Refuse a plain pyarrow Array of vectors, which is read as no view.

    A ChunkedArray of lists is a column of vectors (a view); a plain Array
    failed with "setting an array element with a sequence".
    """
    pa = sys.modules.get("pyarrow")
    if pa is None or not isinstance(item, pa.Array):
        return
    if (
        pa.types.is_list(item.type)
        or pa.types.is_fixed_size_list(item.type)
        or (pa.types.is_large_list(item.type))
    ):
        raise TypeError(
            f"X[{k}] is a pyarrow Array of vectors; pass it as a column, "
            "pyarrow.chunked_array([X[k]]), or as a 2-D numpy array."
        )


def _is_vector_cell(cell) -> bool:
    """Tell whether one cell of an object column holds a vector."""
    return isinstance(cell, list | tuple | np.ndarray | pd.Series)


def _may_hold_vectors(dtype) -> bool:
    """Tell whether a column of this narwhals dtype may be array-valued."""
    return isinstance(dtype, nw.List | nw.Array) or dtype == nw.Object


def _is_vector_series(series, dtype=None) -> bool:
    """Tell whether a narwhals Series holds one vector per row (array-valued).

    List and fixed-size Array columns (polars, pyarrow, pandas Arrow dtypes) always
    do; an object column does when its first non-missing cell is a list, a tuple or
    an array. Ragged or mixed cells are reported later, when it is stacked.
    ``dtype``, the series' narwhals dtype when already known, saves looking it up.
    """
    dtype = series.dtype if dtype is None else dtype
    if isinstance(dtype, nw.List | nw.Array):
        return True
    if dtype != nw.Object or len(series) == 0:
        return False
    cells = series.to_numpy()
    if _is_vector_cell(cells[0]):
        return True
    present = np.flatnonzero(~series.is_null().to_numpy())
    return bool(len(present)) and _is_vector_cell(cells[present[0]])


def _has_vector_columns(frame, schema=None) -> bool:
    """Tell whether a narwhals DataFrame has at least one array-valued column.

    ``schema``, the frame's schema when already known, saves computing it again
    (for pandas that costs tens of microseconds per column).
    """
    schema = _frame_schema(frame) if schema is None else schema
    return any(
        _is_vector_series(frame.get_column(name), dtype)
        for name, dtype in schema.items()
        if _may_hold_vectors(dtype)
    )


def _check_equal_lengths(lengths: np.ndarray, label, input_name) -> None:
    """Raise a ValueError naming the first row whose vector length differs."""
    if len(lengths) and np.any(lengths != lengths[0]):
        row = int(np.flatnonzero(lengths != lengths[0])[0])
        raise ValueError(
            f"{input_name} column {label!r} holds vectors of different lengths "
            f"({lengths[0]} in row 0, {lengths[row]} in row {row}); every cell of an "
            "array-valued column must have the same length. Pad, truncate or drop "
            "those rows."
        )


def _arrow_to_2d(array, label, input_name) -> np.ndarray:
    """Convert an Arrow list array to a raw 2-D numpy array (one row per cell).

    Values without missing entries are handed over without a copy (the result is
    then read-only, as Arrow memory is immutable).
    """
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()
    if array.null_count:
        row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValueError(
            f"{input_name} column {label!r} has a missing vector in row {row}; every "
            "cell of an array-valued column must hold a vector. Drop or impute "
            "those rows."
        )
    value_type = array.type.value_type
    if pa.types.is_nested(value_type):
        raise ValueError(
            f"{input_name} column {label!r} holds nested vectors (Arrow type "
            f"{array.type}); every cell of an array-valued column must be a 1-D "
            "vector."
        )
    if not (
        pa.types.is_integer(value_type)
        or pa.types.is_floating(value_type)
        or pa.types.is_boolean(value_type)
    ):
        raise ValueError(
            f"{input_name} column {label!r} holds non-numeric vectors (Arrow type "
            f"{array.type}); every view must be numeric. Encode or drop that column."
        )
    n_rows = len(array)
    if pa.types.is_fixed_size_list(array.type):
        width = array.type.list_size
    else:
        lengths = array.value_lengths().to_numpy(zero_copy_only=False)
        _check_equal_lengths(lengths, label, input_name)
        width = int(lengths[0]) if n_rows else 0
    # flatten() honours the array's offset (sliced columns), unlike .values
    values = array.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(n_rows, width)


def _vector_series_to_2d(series, label, input_name) -> np.ndarray:
    """Stack an array-valued narwhals Series into a raw 2-D numpy array."""
    if isinstance(series.dtype, nw.List | nw.Array):
        # a pyarrow column already is Arrow; to_arrow() would combine its chunks
        # into a copy even when there is only one
        if series.implementation.is_pyarrow():
            return _arrow_to_2d(series.to_native(), label, input_name)
        return _arrow_to_2d(series.to_arrow(), label, input_name)
    cells = series.to_numpy()
    if len(cells) == 0:
        return np.empty((0, 0))
    is_vector = np.fromiter(map(_is_vector_cell, cells), dtype=bool, count=len(cells))
    if not is_vector.all():
        row = int(np.flatnonzero(~is_vector)[0])
        raise ValueError(
            f"{input_name} column {label!r} mixes vectors and other values (row "
            f"{row} holds {cells[row]!r}); every cell of an array-valued column must "
            "hold a vector of the same length. Drop or impute those rows."
        )
    lengths = np.fromiter(map(len, cells), dtype=np.intp, count=len(cells))
    _check_equal_lengths(lengths, label, input_name)
    raw = np.stack([np.asarray(cell) for cell in cells])
    if raw.ndim != 2:
        raise ValueError(
            f"{input_name} column {label!r} holds cells of shape {raw.shape[1:]}; "
            "every cell of an array-valued column must be a 1-D vector."
        )
    if raw.dtype.kind not in "biufO":
        raise ValueError(
            f"{input_name} column {label!r} holds non-numeric vectors (dtype "
            f"{raw.dtype}); every view must be numeric. Encode or drop that column."
        )
    return raw


def _numeric_like(dtype) -> bool:
    """Tell whether a narwhals column dtype may be converted to float by check_array.

    Object columns (pandas) and dtypes narwhals does not know (e.g. pandas sparse)
    are left to check_array and its usual messages.
    """
    return (
        dtype.is_numeric()
        or dtype == nw.Boolean
        or dtype == nw.Object
        or dtype == nw.Unknown
    )


class _FrameColumns:
    """The columns of a dataframe with array-valued columns, as float blocks.

    Consecutive scalar columns are converted together into one 2-D array (a *part*);
    each array-valued column is its own part. A view made of adjacent columns of one
    part is then a slice of it (no copy); other views are concatenated.

    Parameters
    ----------
    X : dataframe or narwhals DataFrame
        The dataframe to convert (pandas, polars, pyarrow Table, ...).
    allowed : list of numpy dtypes
        Allowed output dtypes (see :func:`_target_dtype`).
    estimator : estimator instance or None
        Used in check_array's messages.
    input_name : str, default="X"
        How messages name the input.
    schema : narwhals Schema, default=None
        The schema of ``X`` when already known.

    Attributes
    ----------
    labels : list
        The column labels.
    widths : ndarray of int
        The number of values per row of each column.
    is_vector : ndarray of bool
        Which columns are array-valued.
    """

    def __init__(self, X, allowed: list, estimator, input_name="X", schema=None):
        frame = X if isinstance(X, nw.DataFrame) else nw.from_native(X, eager_only=True)
        schema = _frame_schema(frame) if schema is None else schema
        self.labels = list(frame.columns)
        dtypes = list(schema.values())
        is_vector = [
            _may_hold_vectors(dtype)
            and _is_vector_series(frame.get_column(label), dtype)
            for label, dtype in zip(self.labels, dtypes, strict=True)
        ]
        scalars = [
            (label, dtype)
            for label, dtype, vector in zip(self.labels, dtypes, is_vector, strict=True)
            if not vector
        ]
        _check_numeric_columns(scalars, frame.shape[0], input_name)
        # (start, stop, raw 2-D data, its one float dtype or None) of every part
        raw_parts = []
        run_start = None
        for j, label in enumerate(self.labels):
            if is_vector[j]:
                if run_start is not None:
                    raw = frame[:, run_start:j].to_native()
                    native = _frame_float_dtype(dtypes[run_start:j])
                    raw_parts.append((run_start, j, raw, native))
                    run_start = None
                raw = _vector_series_to_2d(frame.get_column(label), label, input_name)
                raw_parts.append((j, j + 1, raw, _native_dtype(raw)))
            elif run_start is None:
                run_start = j
        if run_start is not None:
            raw = frame[:, run_start:].to_native()
            native = _frame_float_dtype(dtypes[run_start:])
            raw_parts.append((run_start, len(self.labels), raw, native))

        target = _target_dtype([native for *_, native in raw_parts], allowed)
        n_columns = len(self.labels)
        self.part = np.empty(n_columns, dtype=np.intp)
        self.offset = np.empty(n_columns, dtype=np.intp)
        self.widths = np.empty(n_columns, dtype=np.intp)
        self.is_vector = np.zeros(n_columns, dtype=bool)
        self.parts = []
        for index, (start, stop, raw, _) in enumerate(raw_parts):
            is_scalar_run = not isinstance(raw, np.ndarray)
            block = _checked_array(
                raw,
                dtype=target,
                estimator=estimator,
                input_name=input_name,
                ensure_min_features=1 if is_scalar_run else 0,
            )
            self.parts.append(block)
            self.part[start:stop] = index
            if is_scalar_run:
                self.offset[start:stop] = np.arange(stop - start)
                self.widths[start:stop] = 1
            else:
                self.offset[start] = 0
                self.widths[start] = block.shape[1]
                self.is_vector[start] = True

    def take(self, selection) -> np.ndarray:
        """Return the block of the dataframe columns in ``selection``."""
        columns = _positions(selection, len(self.widths))
        parts = self.part[columns]
        offsets = self.offset[columns]
        if np.all(parts == parts[0]) and (
            len(columns) == 1
            or (not self.is_vector[columns].any() and np.all(np.diff(offsets) == 1))
        ):
            block = self.parts[parts[0]]
            if self.is_vector[columns[0]]:
                return block
            return block[:, offsets[0] : offsets[-1] + 1]
        pieces = [
            self.parts[p] if self.is_vector[c] else self.parts[p][:, o : o + 1]
            for c, p, o in zip(columns, parts, offsets, strict=True)
        ]
        return np.hstack(pieces)


def frame_to_array(X, *, dtype=("float64", "float32"), input_name="X"):
    """Read a dataframe of numeric and/or array-valued columns into one 2-D array.

    The reader behind every dataframe ``X`` of :func:`check_views`, for callers
    that need the whole frame as one matrix (e.g. a file of embeddings). Scalar
    numeric columns give one feature each, an array-valued column (cells holding
    equal-length vectors: pandas object cells, Arrow/pandas list and fixed-size
    list columns, polars ``List`` and ``Array`` columns) one feature per vector
    entry, in column order.

    Parameters
    ----------
    X : dataframe
        A pandas or polars DataFrame, a pyarrow Table or any eager dataframe that
        narwhals reads.

    dtype : dtype or list of dtypes, default=("float64", "float32")
        Allowed output dtypes. The data keeps its dtype only if all of it has one
        allowed dtype; otherwise it is converted to the first one.

    input_name : str, default="X"
        How error messages name the input (e.g. a file name).

    Returns
    -------
    array : ndarray of shape (n_samples, n_features)
        A finite 2-D float array. When X is a single fixed-size list column of
        floats, or scalar columns numpy can view as one block, no data is copied
        (Arrow memory stays read-only).

    Examples
    --------
    >>> import pandas as pd
    >>> from skembed._views import frame_to_array
    >>> frame = pd.DataFrame({"emb": [[1.0, 2.0], [3.0, 4.0]], "len": [5, 6]})
    >>> frame_to_array(frame)
    array([[1., 2., 5.],
           [3., 4., 6.]])
    """
    frame = _as_frame(X)
    if frame is None:
        raise TypeError(
            f"{input_name} is a {type(X).__name__}, not a dataframe; pass a pandas "
            "or polars DataFrame or a pyarrow Table."
        )
    if frame.shape[1] == 0:
        raise ValueError(f"{input_name} has no columns; it holds no embeddings.")
    allowed = _allowed_dtypes(dtype)
    return _FrameColumns(frame, allowed, None, input_name).take(slice(None))


def _as_slice(positions: np.ndarray):
    """Return a slice equivalent to ``positions`` when they step evenly upwards.

    Slicing a numpy array returns a view, fancy indexing a copy; other positions are
    returned unchanged.
    """
    if len(positions) == 1:
        return slice(int(positions[0]), int(positions[0]) + 1, 1)
    steps = np.diff(positions)
    if len(steps) and steps[0] > 0 and np.all(steps == steps[0]):
        return slice(int(positions[0]), int(positions[-1]) + 1, int(steps[0]))
    return positions


def _positions(selection, n_columns: int) -> np.ndarray:
    """Return the int positions of a stored selection (slice or int array)."""
    if isinstance(selection, slice):
        return np.arange(*selection.indices(n_columns), dtype=np.intp)
    return np.asarray(selection, dtype=np.intp)


def _contiguous_slices(widths) -> list:
    """Return contiguous slices of the given widths, in order."""
    stops = np.cumsum(widths)
    return [
        slice(int(stop - w), int(stop), 1)
        for w, stop in zip(widths, stops, strict=True)
    ]


def _balanced_widths(n_columns: int, n_views: int) -> list:
    """Split ``n_columns`` into ``n_views`` widths differing by at most one.

    The first ``n_columns % n_views`` views get the extra column.
    """
    return [n_columns // n_views + (k < n_columns % n_views) for k in range(n_views)]


# Most embedding models return rows of one fixed norm (usually unit rows), so in
# the side-by-side embeddings of several models the squared row norm of the
# columns before (or after) a model boundary is the same for every row (up to
# rounding), whereas one column more or less makes it vary by about 1/d. That
# sharp dip in the relative spread of the norms finds the boundaries from one
# bounded sample of rows.
BLOCK_SAMPLE_ROWS = 256
_BLOCK_MIN_ROWS = 16
_BLOCK_MIN_WIDTH = 2
# float32 unit rows have a spread near 1e-7, float16- or bfloat16-stored ones
# 1e-5 to 1e-4; a block of random columns would need millions of columns to get
# below 1e-3.
_BLOCK_NORM_SPREAD = 1e-3
# ... and the spread must be this many times below that of one column more and
# of one column less: near a boundary the spread only drifts down towards it
# (ratios up to 1.5 measured), while at the boundary it falls by orders of
# magnitude (ratios above 250 for float32 rows, 25 for float16, 3.5 for bfloat16).
_BLOCK_DIP = 3.0
# a block whose rows (almost) do not vary is constant, not a model's embeddings
_BLOCK_MIN_VARIATION = 1e-3


@dataclass(frozen=True)
class _NormBlock:
    """One side of a model boundary found in X: columns of equal row norms.

    Attributes
    ----------
    boundary : int
        The first column after the boundary.
    prefix : bool
        Whether the equal-norm columns are ``X[:, :boundary]`` (else
        ``X[:, boundary:]``).
    norm : float
        The common row norm of those columns.
    spread : float
        Relative spread (std / mean) of their squared row norms in the sample.
    """

    boundary: int
    prefix: bool
    norm: float
    spread: float

    def describe(self, rows="the rows of X") -> str:
        """Say which columns have rows of equal norm, for an error message."""
        columns = f":{self.boundary}" if self.prefix else f"{self.boundary}:"
        return f"{rows}[:, {columns}] all have norm {self.norm:.4g}"


def _norm_sample(X: np.ndarray) -> np.ndarray:
    """The evenly spaced sample of at most ``BLOCK_SAMPLE_ROWS`` rows of X, in
    float64, whose row norms :func:`_norm_blocks` and :func:`_common_row_norm`
    read."""
    step = max(1, X.shape[0] // BLOCK_SAMPLE_ROWS)
    return np.asarray(X[::step][:BLOCK_SAMPLE_ROWS], dtype=np.float64)


def _norm_blocks(X: np.ndarray) -> list:
    """Find boundaries between embedding blocks of equal row norms in X.

    For every prefix ``X[:, :p]`` and suffix ``X[:, p:]`` of an evenly spaced
    sample of at most ``BLOCK_SAMPLE_ROWS`` rows, the relative spread (std / mean)
    of the squared row norms is computed with cumulative sums: one pass over
    ``O(n_sample * n_features)`` values, nothing of size n x n. A boundary is a
    ``p`` whose spread is below ``_BLOCK_NORM_SPREAD`` and ``_BLOCK_DIP`` times
    below those of ``p - 1`` and ``p + 1``; blocks narrower than
    ``_BLOCK_MIN_WIDTH`` and blocks whose rows do not vary are ignored.

    Returns
    -------
    blocks : list of _NormBlock
        At most one per boundary (the sharpest), sorted by boundary.
    """
    n_samples, n_features = X.shape
    if n_samples < _BLOCK_MIN_ROWS or n_features < 2 * _BLOCK_MIN_WIDTH:
        return []
    sample = _norm_sample(X)
    with np.errstate(invalid="ignore", over="ignore"):
        # Non-finite rows are refused after the split, with a clear error.
        variances = sample.var(axis=0)
    found = {}
    for prefix in (True, False):
        order = slice(None) if prefix else slice(None, None, -1)
        # energy[:, w - 1]: squared row norms of the first (or last) w columns
        # (entries beyond 1e154 square to infinity: no boundary is read there)
        with np.errstate(over="ignore", invalid="ignore"):
            energy = np.cumsum(sample[:, order] ** 2, axis=1)
            mean = energy.mean(axis=0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            spread = energy.std(axis=0) / mean
            # widths 2 .. n_features - 1, each against one column less and more
            inner = spread[1:-1]
            dip = (
                (inner < _BLOCK_NORM_SPREAD)
                & (_BLOCK_DIP * inner < np.minimum(spread[:-2], spread[2:]))
                & (np.cumsum(variances[order]) > _BLOCK_MIN_VARIATION * mean)[1:-1]
            )
        for width in np.flatnonzero(dip) + 2:
            boundary = int(width if prefix else n_features - width)
            if not (_BLOCK_MIN_WIDTH <= boundary <= n_features - _BLOCK_MIN_WIDTH):
                continue
            block = _NormBlock(
                boundary,
                prefix,
                float(np.sqrt(mean[width - 1])),
                float(spread[width - 1]),
            )
            near = [b for b in found if abs(b - boundary) < _BLOCK_MIN_WIDTH]
            if all(found[b].spread > block.spread for b in near):
                for b in near:
                    del found[b]
                found[boundary] = block
    return [found[b] for b in sorted(found)]


def _common_row_norm(X: np.ndarray):
    """The norm every row of X has (as :func:`_norm_blocks` reads it), or None.

    Measured on the same evenly spaced sample of rows; None when the squared
    row norms spread more than ``_BLOCK_NORM_SPREAD`` or the rows do not vary.
    """
    n_samples = X.shape[0]
    if n_samples < _BLOCK_MIN_ROWS:
        return None
    sample = _norm_sample(X)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        energy = (sample**2).sum(axis=1)
        mean = energy.mean()
        spread = energy.std() / mean
        varies = sample.var(axis=0).sum() > _BLOCK_MIN_VARIATION * mean
    if not (spread < _BLOCK_NORM_SPREAD and varies):
        return None
    return float(np.sqrt(mean))


def split_is_checked(estimator) -> bool:
    """Whether :func:`check_split_follows_blocks` looks at the rows for the
    estimator's ``views``: only for ``views=None`` and ``views=K`` (explicit
    selectors say where the models are), so callers that must read rows
    for it (a Dask X) read them only then."""
    views = estimator.views
    return views is None or (
        isinstance(views, Integral) and not isinstance(views, bool | np.bool_)
    )


def check_split_follows_blocks(
    estimator, X: np.ndarray, widths, rows="the rows of X"
) -> None:
    """Refuse a contiguous default split that cuts through a model's embeddings.

    Called at fit on a 2-D float array X (or a sample of its rows, which
    ``rows`` names in the errors) split into contiguous views of the given
    widths. Only ``views=None`` and ``views=K`` are
    checked: explicit selectors say where the models are. When X shows
    boundaries between blocks of equal row norms (see :func:`_norm_blocks`) that
    are not boundaries of the split, some view would hold parts of two models.
    """
    if not split_is_checked(estimator):
        return
    views = estimator.views
    blocks = _norm_blocks(X)
    cuts = set(np.cumsum(widths)[:-1].tolist())
    missed = [block for block in blocks if block.boundary not in cuts]
    if views is None and not blocks:
        # An explicit views=K says the split is meant; the default may be a
        # single model's embeddings passed alone (fit(A), or A and y).
        norm = _common_row_norm(X)
        if norm is not None:
            raise ValueError(
                f"views={estimator.views!r} splits the {X.shape[1]} columns of X "
                f"into contiguous views of widths {list(widths)}, but {rows} "
                f"all have norm {norm:.4g} across its columns and no block of "
                "columns does, as with one model's normalised embeddings: X looks "
                "like the embeddings of a single model, and each view would hold "
                "a piece of it. Pass the other model's embeddings too, side by side "
                "in X or as a list (fit([A, B])); if X really holds several "
                "models, give views explicitly."
            )
    if not missed:
        return
    boundaries = [0, *(block.boundary for block in blocks), X.shape[1]]
    block_widths = np.diff(boundaries).tolist()

    def slices(stops):
        """Format the views=[slice(...), ...] that split X at ``stops``."""
        edges = [0, *stops]
        parts = [f"slice({a}, {b})" for a, b in zip(edges[:-1], edges[1:], strict=True)]
        return "[" + ", ".join([*parts, f"slice({edges[-1]}, None)"]) + "]"

    raise ValueError(
        f"views={estimator.views!r} splits the {X.shape[1]} columns of X into "
        f"contiguous views of widths {list(widths)}, but {missed[0].describe(rows)}, "
        "as normalised embeddings do: X looks like the embeddings of "
        f"{len(block_widths)} models side by side, of widths {block_widths}, and "
        "this split would mix models in one view. Pass the views explicitly: "
        f"views={slices(boundaries[1:-1])} (or a dict naming them); if the split "
        f"is intended, views={slices(np.cumsum(widths)[:-1].tolist())}."
    )


def _names_to_positions(names_selected, names, label, X) -> np.ndarray:
    """Map column names to positions, with errors naming the view and the names."""
    if names is None:
        raise ValueError(
            f"views[{label}] selects columns by name ({_short_list(names_selected)}), "
            f"but X has no string column names (got a {type(X).__name__}). Pass a "
            "pandas DataFrame with string column names, or select columns by "
            "position (a slice, an int array or a boolean mask)."
        )
    positions_of = {name: position for position, name in enumerate(names)}
    positions = [positions_of.get(name, -1) for name in names_selected]
    missing = [n for n, p in zip(names_selected, positions, strict=True) if p < 0]
    if missing:
        raise ValueError(
            f"views[{label}] names columns that X does not have: "
            f"{_short_list(missing)}. X has columns {_short_list(names)}; change "
            "`views` or pass the missing columns."
        )
    return np.asarray(positions, dtype=np.intp)


def _resolve_selector(selector, X, n_columns: int, names, label) -> np.ndarray:
    """Turn one view selector into an array of column positions.

    ``names`` holds the column labels when selection by name is possible (a pandas
    DataFrame, or a container with string column names), None otherwise. Ints are
    always positions, strings always names, as in ColumnTransformer.
    """
    if callable(selector):
        try:
            selector = selector(X)
        except Exception as exc:
            # The user's own error would not say that it came from a view
            # selector, nor which one; keep TypeError a TypeError so that code
            # catching it still does, and report the rest as bad values.
            error = TypeError if isinstance(exc, TypeError) else ValueError
            raise error(
                f"views[{label}] is a callable that raised {type(exc).__name__} "
                f"({exc}) when called on X (a {type(X).__name__}); it must accept X "
                "and return a slice, an int array, a boolean mask or column names."
            ) from exc
        if callable(selector):
            raise TypeError(
                f"views[{label}] is a callable that returned another callable; it must "
                "return a slice, an int array, a boolean mask or column names."
            )
    if isinstance(selector, slice):
        if selector.step == 0:
            raise ValueError(
                f"views[{label}] is the slice {selector!r}, whose step is 0; "
                "use a step of None or 1 (or another nonzero step)."
            )
        bounds = (selector.start, selector.stop)
        if any(isinstance(bound, str) for bound in bounds):
            if not all(bound is None or isinstance(bound, str) for bound in bounds):
                raise TypeError(
                    f"views[{label}] is the slice {selector!r}, which mixes a "
                    "column name and a position; give both bounds as names or "
                    "both as positions."
                )
            if names is None:
                _names_to_positions([selector.start, selector.stop], None, label, X)
            present = [b for b in bounds if b is not None]
            # A missing label is refused by name first: on unsorted columns
            # pandas raises a bare KeyError for it.
            _names_to_positions(present, names, label, X)
            # label slices include their stop, as DataFrame.loc does
            selector = pd.Index(names).slice_indexer(
                selector.start, selector.stop, selector.step
            )
        try:
            bounds = [b for b in (selector.start, selector.stop) if b is not None]
            if any(not -n_columns <= b <= n_columns for b in bounds):
                raise ValueError(
                    f"views[{label}] is the slice {selector!r}, but X has "
                    f"{n_columns} columns; a view's slice must lie within them "
                    "(slice(start, None) runs to the last column)."
                )
            return np.arange(*selector.indices(n_columns), dtype=np.intp)
        except TypeError:
            raise TypeError(
                f"views[{label}] is the slice {selector!r}; slice bounds and step "
                "must be integers (column positions) or column names."
            ) from None
    if isinstance(selector, str):
        return _names_to_positions([selector], names, label, X)
    if isinstance(selector, Integral) and not isinstance(selector, bool | np.bool_):
        selector = [selector]
    if isinstance(selector, list | tuple):
        items = list(selector)
        if items and all(isinstance(v, bool | np.bool_) for v in items):
            selector = np.asarray(items, dtype=bool)
        elif all(
            isinstance(v, Integral) and not isinstance(v, bool | np.bool_)
            for v in items
        ):
            selector = np.asarray(items, dtype=np.intp)
        elif all(isinstance(v, str) for v in items):
            return _names_to_positions(items, names, label, X)
        else:
            raise TypeError(
                f"views[{label}] mixes kinds of column selectors "
                f"({_short_list(items)}); use only column positions, only column "
                "names or a boolean mask."
            )
    elif isinstance(selector, pd.Index | pd.Series):
        selector = selector.to_numpy()
    if not isinstance(selector, np.ndarray) or selector.ndim != 1:
        raise TypeError(
            f"views[{label}] is not a column selector skembed understands (got "
            f"{type(selector).__name__}); use {_SELECTOR_HELP}."
        )
    if selector.dtype.kind == "b":
        if len(selector) != n_columns:
            raise ValueError(
                f"views[{label}] is a boolean mask of length {len(selector)}, but X "
                f"has {n_columns} columns; pass one boolean per column."
            )
        return np.flatnonzero(selector).astype(np.intp)
    if selector.dtype.kind in "iu":
        out_of_range = selector[(selector >= n_columns) | (selector < -n_columns)]
        if len(out_of_range):
            raise ValueError(
                f"views[{label}] selects column positions {_short_list(out_of_range)}, "
                f"but X has {n_columns} columns; change `views`."
            )
        return np.where(selector < 0, selector + n_columns, selector).astype(np.intp)
    if len(selector) == 0:
        return np.empty(0, dtype=np.intp)
    if selector.dtype.kind in "UO" and all(isinstance(v, str) for v in selector):
        return _names_to_positions(list(selector), names, label, X)
    raise TypeError(
        f"views[{label}] is not a column selector skembed understands (an array of "
        f"dtype {selector.dtype}); use {_SELECTOR_HELP}."
    )


def _view_specs(views, n_columns: int, *, columns_word: str):
    """Return the view names, the labels and the selectors described by ``views``.

    ``labels`` name each selector in messages (``0``, ``1``, ... for a list,
    ``'name'`` for a dict); None and int ``views`` give contiguous slices.
    """
    if views is None or (
        isinstance(views, Integral) and not isinstance(views, bool | np.bool_)
    ):
        n_views = 2 if views is None else int(views)
        if n_views < 2:
            raise ValueError(
                f"views={views!r} defines fewer than 2 views; pass an int >= 2, a list "
                "of column selectors or a dict of them."
            )
        if n_views > n_columns:
            raise ValueError(
                f"views={views!r} needs at least {n_views} {columns_word} (one per "
                f"view), but X has {n_columns}; pass fewer views or more columns."
            )
        selectors = _contiguous_slices(_balanced_widths(n_columns, n_views))
        return [f"view{k}" for k in range(n_views)], list(range(n_views)), selectors
    if isinstance(views, dict):
        bad_keys = [key for key in views if not isinstance(key, str)]
        if bad_keys:
            raise TypeError(
                f"views is a dict whose keys {_short_list(bad_keys)} are not strings; "
                "the keys are view names and must be str."
            )
        names = list(views)
        labels = [repr(name) for name in names]
        selectors = list(views.values())
    elif isinstance(views, list | tuple):
        if views and all(isinstance(selector, str) for selector in views):
            # one column per view (typically a column of vectors): named after it
            names = list(views)
        else:
            names = [f"view{k}" for k in range(len(views))]
        labels = list(range(len(views)))
        selectors = list(views)
    else:
        raise TypeError(
            "views must be None, an int >= 2, a list of column selectors or a dict "
            f"mapping view names to selectors; got {type(views).__name__}."
        )
    if len(selectors) < 2:
        raise ValueError(
            f"views defines {len(selectors)} view(s), but at least 2 are needed; give "
            "one selector per embedding in X."
        )
    return names, labels, selectors


def _resolve_views(estimator, X, n_columns: int, names, *, columns_word: str):
    """Resolve ``estimator.views`` against X into per-view column positions.

    Checks that no view is empty and that every column belongs to exactly one view.
    Returns ``(view_names, labels, positions)``.
    """
    view_names, labels, selectors = _view_specs(
        estimator.views, n_columns, columns_word=columns_word
    )
    selected = [
        _resolve_selector(selector, X, n_columns, names, label)
        for label, selector in zip(labels, selectors, strict=True)
    ]
    for label, positions in zip(labels, selected, strict=True):
        if len(positions) == 0:
            raise ValueError(
                f"views[{label}] selects no columns of X; every view needs at least "
                "one column. Change this selector in `views`."
            )

    def describe(positions):
        """Name columns by label when X has labels, by position otherwise."""
        if names is None:
            return _short_list(int(p) for p in positions)
        return _short_list(names[p] for p in positions)

    counts = np.bincount(np.concatenate(selected), minlength=n_columns)
    overlap = np.flatnonzero(counts > 1)
    if len(overlap):
        owners = [
            name
            for name, positions in zip(view_names, selected, strict=True)
            if np.isin(positions, overlap).any()
        ]
        raise ValueError(
            f"views overlap: X column(s) {describe(overlap)} are selected more than "
            f"once (by views {_short_list(owners)}). Every column must belong to "
            "exactly one view; change `views` so that the selections are disjoint."
        )
    unassigned = np.flatnonzero(counts == 0)
    if len(unassigned):
        raise ValueError(
            f"X column(s) {describe(unassigned)} belong to no view. Every column of X "
            "must belong to exactly one view: add them to a view in `views`, or "
            "drop them before this estimator (e.g. with a ColumnTransformer that "
            "passes the other columns around it)."
        )
    return view_names, labels, selected


def _one_feature_error(estimator, *, frame: bool) -> ValueError:
    """Return the error for an X with a single feature (column)."""
    hint = (
        " A DataFrame column of vectors counts as one feature here and is never "
        "split; pass one column per view."
        if frame
        else " Pass the embeddings of at least two models."
    )
    return ValueError(
        f"{_estimator_name(estimator)} splits X into at least 2 views, so X needs at "
        f"least 2 features, got n_features = 1.{hint}"
    )


def _store_layout(estimator, layout: ViewLayout, view_names) -> None:
    """Set the fitted view attributes on the estimator."""
    estimator.view_names_ = list(view_names)
    estimator.n_features_per_view_ = [int(w) for w in layout.widths]
    estimator._view_layout = layout


def _check_widths(estimator, widths, *, what: str) -> None:
    """Check per-view widths against the fitted ones."""
    for k, (width, expected) in enumerate(
        zip(widths, estimator._view_layout.widths, strict=True)
    ):
        if width != expected:
            raise ValueError(
                f"{what.format(k=k)} (view {estimator.view_names_[k]!r}) has {width} "
                f"features, but {_estimator_name(estimator)} is expecting {expected} "
                "features for this view."
            )


def _expanded_names(labels, widths, is_vector) -> list | None:
    """Feature names of dataframe columns, entry ``j`` of a vector column ``c`` as
    ``f"{c}{j}"``; None unless every label is a string (scikit-learn's rule)."""
    if not all(isinstance(label, str) for label in labels):
        return None
    pairs = zip(labels, is_vector, strict=True)
    if any(label == "" and vector for label, vector in pairs):
        return None  # an unnamed polars Series of vectors, as pandas' None
    names = []
    for label, width, vector in zip(labels, widths, is_vector, strict=True):
        if vector:
            names.extend(f"{label}{j}" for j in range(int(width)))
        else:
            names.append(label)
    return names


def _convert_list(X, allowed: list, estimator) -> tuple[list, list, np.ndarray]:
    """Validate every item of a list/tuple X; return 2-D arrays of one dtype.

    An item may be a 2-D array-like, a dataframe (numeric and/or array-valued
    columns, concatenated in order) or one column of vectors (a Series). Also
    returns, per item, its feature names (see :func:`_expanded_names`), None for
    items without string column names, and whether it held vector columns.
    """
    frames = {}
    names = [None] * len(X)
    for k, item in enumerate(X):
        if sparse.issparse(item):
            raise TypeError(
                f"X[{k}] is a sparse matrix, but dense data is required. Use "
                "'.toarray()' to convert to a dense numpy array."
            )
        series = _as_series(item)
        frame = None if series is not None else _as_frame(item)
        schema = None if frame is None else _frame_schema(frame)
        if series is not None and _is_vector_series(series):
            frames[k] = _FrameColumns(series.to_frame(), allowed, estimator)
        elif frame is not None and _has_vector_columns(frame, schema):
            frames[k] = _FrameColumns(frame, allowed, estimator, schema=schema)
        elif frame is not None:
            labels = list(frame.columns)
            names[k] = _expanded_names(labels, [1] * len(labels), [False] * len(labels))
            continue
        if k in frames:
            columns = frames[k]
            names[k] = _expanded_names(
                columns.labels, columns.widths, columns.is_vector
            )
            continue
        ndim = getattr(item, "ndim", None)
        if ndim is None:
            try:
                ndim = np.ndim(item)
            except ValueError:
                ndim = 2  # ragged nested list: let check_array report it
        if ndim != 2:
            raise ValueError(
                f"X is a list of views, but X[{k}] is a {ndim}-D array; every item of "
                "a list X must be a 2-D array of shape (n_samples, n_features_k)."
            )
    natives = [
        frames[k].parts[0].dtype if k in frames else _native_dtype(item)
        for k, item in enumerate(X)
    ]
    target = _target_dtype(natives, allowed)
    blocks = []
    for k, item in enumerate(X):
        if k in frames:
            item = frames[k].take(slice(None))
        else:
            # Dates and strings would be cast to floats without a word (a
            # single array or frame X is refused the same way).
            _check_numeric(item, f"X[{k}]")
        blocks.append(
            _checked_array(item, dtype=target, estimator=estimator, input_name="X")
        )
    vectors = np.array([k in frames for k in range(len(X))], dtype=bool)
    return blocks, names, vectors


def _check_same_row_labels(X):
    """Refuse pandas items of a list whose rows hold the same labels in
    another order: the views are paired by position, so row i of one would
    be paired with another item's row of another label (and output rows,
    labelled by the first item, would name the wrong items)."""
    indexes = [item.index for item in X if isinstance(item, pd.DataFrame | pd.Series)]
    if len(indexes) < 2:
        return
    first = indexes[0]
    for position, index in enumerate(indexes[1:], start=1):
        if index.equals(first) or len(index) != len(first):
            continue
        if first.is_unique and index.is_unique and first.isin(index).all():
            raise ValueError(
                row_order_message(
                    "pandas items",
                    (f"item {position}", index[:3]),
                    ("item 0", first[:3]),
                    "reorder them alike first, e.g. [a, b.loc[a.index]].",
                )
            )


def row_order_message(items, item, first, fix) -> str:
    """The message refusing items of a list X that hold the same row labels
    in different orders (pandas items here, Dask DataFrames in ``_dask``).

    ``item`` and ``first`` are ``(name, first labels)`` of the two items,
    ``fix`` the sentence saying how to give them one order.
    """
    (name, labels), (first_name, first_labels) = item, first
    return (
        f"The {items} of X hold the same row labels in different orders "
        f"({name}'s first rows are {_short_list([str(v) for v in labels])}, "
        f"{first_name}'s {_short_list([str(v) for v in first_labels])}), but "
        f"views are paired by position; {fix}"
    )


def _split_list(estimator, X, allowed: list, *, reset, allow_unequal_rows) -> list:
    """Validate a list/tuple X of 2-D arrays, one per view."""
    name = _estimator_name(estimator)
    if reset:
        if estimator.views is not None:
            raise ValueError(
                f"X is a list of {len(X)} arrays, so it already holds one array per "
                f"view, but views={estimator.views!r}; set views=None, or pass one "
                "2-D array or DataFrame for `views` to split."
            )
        if len(X) < 2:
            # cross_validate, GridSearchCV and train_test_split take a list
            # for rows and index its items: a fold of [A, B] is [A] or [B].
            raise ValueError(
                f"X is a list of {len(X)} array; pass at least 2 arrays, one per "
                "view. scikit-learn's splitters (cross_validate, GridSearchCV, "
                "train_test_split) take a list for rows and give each fold some of "
                "its arrays: under them pass the views side by side as one array "
                "or DataFrame, e.g. X=np.hstack([A, B]) with "
                "views=[slice(0, d), slice(d, None)] where d = A.shape[1]."
            )
    elif len(X) != len(estimator._view_layout.widths):
        raise ValueError(
            f"X is a list of {len(X)} arrays, but {name} was fitted with "
            f"{len(estimator._view_layout.widths)} views "
            f"{_short_list(estimator.view_names_)}; pass one array per view."
        )
    blocks, names, vectors = _convert_list(X, allowed, estimator)
    n_rows = [block.shape[0] for block in blocks]
    if not allow_unequal_rows and len(set(n_rows)) > 1:
        raise ValueError(
            f"The arrays in X have different numbers of rows ({n_rows}), but {name} "
            "pairs views row by row; pass arrays with the same number of rows (row i "
            "of every view must describe the same item)."
        )
    if not allow_unequal_rows:
        _check_same_row_labels(X)
    widths = tuple(block.shape[1] for block in blocks)
    if reset:
        _check_feature_names(estimator, X, reset=True)
        estimator.n_features_in_ = int(sum(widths))
        feature_names = None
        # A list of dataframes names its features as their concatenation would;
        # repeated names across items could not tell the views apart.
        if all(item_names is not None for item_names in names):
            joined = [name for item_names in names for name in item_names]
            if len(set(joined)) == len(joined):
                feature_names = np.asarray(joined, dtype=object)
                estimator.feature_names_in_ = feature_names
        view_names = [f"view{k}" for k in range(len(X))]
        layout = ViewLayout(
            "list", None, widths, vector_columns=vectors, feature_names=feature_names
        )
        _store_layout(estimator, layout, view_names)
    else:
        _check_widths(estimator, widths, what="X[{k}]")
        _check_list_names(estimator, names)
    return blocks


def _check_list_names(
    estimator, names, what="X[{k}]", *, vector_items_only=False
) -> None:
    """Check the feature names of a list X against those seen in fit.

    As scikit-learn's rule for one dataframe, different names are an error. An
    item without names (an array) is taken as it is: skembed passes lists of
    arrays between its own estimators.
    """
    if estimator._view_layout.feature_names is None:
        return
    name = _estimator_name(estimator)
    vectors = estimator._view_layout.vector_columns
    for k, item_names in enumerate(names):
        if item_names is None:
            continue
        if vector_items_only and (vectors is None or not vectors[k]):
            # A view fitted on scalar columns takes a vector column of its
            # width under any name (see _check_view_vector_names), except the
            # names of another view: columns "b", "a" expanded to b0..b2 and
            # a0..a2 were mapped as views a and b, swapped.
            others = [
                j
                for j in range(len(estimator.view_names_))
                if j != k and list(item_names) == list(view_feature_names(estimator, j))
            ]
            if others:
                raise ValueError(
                    f"The feature names of {what.format(k=k)} are those of view "
                    f"{estimator.view_names_[others[0]]!r}, not of view "
                    f"{estimator.view_names_[k]!r}: {name} was fitted with "
                    f"{_short_list(list(view_feature_names(estimator, k)))} for "
                    "it. Pass the views in the same order as in fit."
                )
            continue
        # The view's own names, whatever X was at fit: a frame's columns in
        # the order the view selects them, or a vector column's entries.
        expected = list(view_feature_names(estimator, k))
        if list(item_names) != expected:
            raise ValueError(
                f"The feature names of {what.format(k=k)} should match those that "
                "were passed "
                f"during fit: {name} was fitted with {_short_list(expected)} for "
                f"view {k}, got {_short_list(item_names)}. Pass the views in the "
                "same order as in fit."
            )


def _check_numeric_columns(columns, n_rows: int, input_name) -> None:
    """Reject dataframe columns of strings, dates, categories, structs, ...

    ``columns`` holds (label, narwhals dtype) pairs. Frames without rows are left
    to check_array (narwhals reports their object columns as strings).
    """
    bad = [label for label, dtype in columns if not _numeric_like(dtype)]
    if bad and n_rows > 0:
        raise ValueError(
            f"{input_name} columns {_short_list(bad)} are not numeric; every "
            f"column of {input_name} must be numeric or hold numeric vectors. "
            "Encode or drop them (a ColumnTransformer can pass other columns "
            "around this estimator)."
        )


def _check_numeric(X, input_name="X", *, frame=None, schema=None) -> None:
    """Reject string, date and categorical data before check_array tries to cast it.

    Object arrays are left to check_array and its usual messages. Complex
    data is refused here: check_array's message names neither the input nor
    the fix, and prints the values.
    ``frame`` and ``schema``, X as a narwhals DataFrame and its schema, save
    computing them again.
    """
    _refuse_complex(X, input_name)
    frame = _as_frame(X) if frame is None else frame
    if frame is not None:
        schema = _frame_schema(frame) if schema is None else schema
        _check_numeric_columns(schema.items(), frame.shape[0], input_name)
    elif isinstance(X, np.ndarray) and X.dtype.kind not in "biufcO":
        raise ValueError(
            f"{input_name} holds non-numeric values (dtype {X.dtype}); embeddings "
            f"must be numeric. Convert {input_name} to floats before passing it."
        )


def _refuse_complex(X, input_name) -> None:
    """Refuse complex arrays and pandas frames with complex columns.

    The message keeps check_array's opening words, which scikit-learn's
    estimator checks look for.
    """
    if isinstance(X, np.ndarray):
        complex_data = X.dtype.kind == "c"
    else:
        dtypes = getattr(X, "dtypes", None)
        complex_data = isinstance(dtypes, pd.Series) and any(
            getattr(dtype, "kind", None) == "c" for dtype in dtypes
        )
    if complex_data:
        raise ValueError(
            f"Complex data not supported: {input_name} holds complex values, "
            "and embeddings must be real. Pass the real part "
            f"({input_name}.real) if the imaginary parts are zero."
        )


def _refuse_list_of_blocks(X, input_name):
    """Refuse a list of 2-D arrays where one matrix is expected.

    numpy would read it as one 3-D array, or fail on its widths with
    "inhomogeneous shape": views passed where one view's rows go.
    """
    if not isinstance(X, list | tuple) or not X:
        return
    if all(getattr(item, "ndim", None) == 2 for item in X):
        raise ValueError(
            f"{input_name} is a list of {len(X)} 2-D arrays, but one matrix of "
            "rows is expected here (one view's rows); pass the array of one "
            "view, or for several views use transform (or fit) on the list."
        )


def check_float_array(X, input_name, *, dtype=(np.float64, np.float32), **params):
    """``check_array`` of one matrix of embeddings, as the views are checked.

    Dates, durations and strings are refused (check_array would cast them to
    floats without a word, as ``fit`` refuses them), and a float32 frame of
    any library (a nullable pandas ``Float32``, polars, pyarrow) stays
    float32: scikit-learn reads the dtypes of plain pandas frames only.
    """
    allowed = list(dtype)
    frame = _as_frame(X)
    schema = None
    if frame is not None:
        schema = _frame_schema(frame)
        allowed = _frame_allowed(schema, allowed)
    _check_numeric(X, input_name, frame=frame, schema=schema)
    _refuse_list_of_blocks(X, input_name)
    return check_array(X, dtype=allowed, input_name=input_name, **params)


def _one_view_hint(estimator, X, error, reset):
    """``error``, with a pointer to the per-view methods when X is as wide as
    one view of a fitted estimator: one model's rows, where all were
    expected (``transform(B)`` for ``transform_view(B, 1)``)."""
    widths = getattr(estimator, "n_features_per_view_", None)
    width = getattr(X, "shape", (0, 0))[-1] if np.ndim(X) == 2 else None
    if reset or not widths or len(widths) < 2 or width not in widths:
        return error
    names = estimator.view_names_
    views = [name for name, w in zip(names, widths, strict=True) if w == width]
    methods = [
        method
        for method in ("transform_view", "translate")
        if hasattr(estimator, method)
    ]
    if not methods:
        return error
    uses = " or ".join(
        f"{method}(X, {views[0]!r})"
        if method == "transform_view"
        else f"translate(X, source={views[0]!r}, target=...)"
        for method in methods
    )
    return ValueError(
        f"{error} X is as wide as view {', '.join(map(repr, views))} alone, but "
        f"{type(estimator).__name__} takes the rows of every view side by side, "
        f"as at fit; for one model's rows use {uses}."
    )


def _split_array(estimator, X, allowed: list, *, reset, frame=None, schema=None):
    """Validate a 2-D array-like (or a dataframe of scalar columns) and split it.

    ``frame`` and ``schema`` are X as a narwhals DataFrame and its schema, if X is a
    dataframe.
    """
    _check_numeric(X, frame=frame, schema=schema)
    if frame is not None:
        allowed = _frame_allowed(schema, allowed)
    try:
        X_checked = validate_data(
            estimator,
            X,
            reset=reset,
            dtype=allowed,
            ensure_min_features=1,
            ensure_all_finite=False,
        )
    except ValueError as exc:
        raise _one_view_hint(estimator, X, exc, reset) from None
    _refuse_non_finite(X_checked, estimator, "X")
    if not reset:
        layout = estimator._view_layout
        if layout.kind == "list":
            selections = _contiguous_slices(layout.widths)
        else:
            selections = layout.selections
        return [X_checked[:, selection] for selection in selections]

    n_features = X_checked.shape[1]
    if n_features == 1:
        raise _one_feature_error(estimator, frame=False)
    feature_names = getattr(estimator, "feature_names_in_", None)
    if frame is not None:
        names = list(frame.columns)
    else:
        names = None if feature_names is None else list(feature_names)
    view_names, _, selected = _resolve_views(
        estimator, X, n_features, names, columns_word="features"
    )
    selections = tuple(_as_slice(positions) for positions in selected)
    widths = tuple(len(positions) for positions in selected)
    check_split_follows_blocks(estimator, X_checked, widths)
    layout = ViewLayout("array", selections, widths, feature_names=feature_names)
    _store_layout(estimator, layout, view_names)
    return [X_checked[:, selection] for selection in selections]


def _split_frame(estimator, X, frame, schema, allowed: list, *, reset) -> list:
    """Validate and split a dataframe that has array-valued columns.

    ``X`` is the dataframe as passed (for feature names), ``frame`` the same as a
    narwhals DataFrame and ``schema`` its schema.
    """
    name = _estimator_name(estimator)
    n_columns = frame.shape[1]
    layout = None if reset else estimator._view_layout
    if reset:
        _check_feature_names(estimator, X, reset=True)
        estimator.n_features_in_ = n_columns
    elif layout.kind == "array":
        raise ValueError(
            f"X is a DataFrame with array-valued columns, but {name} was fitted on an "
            f"X without them ({estimator.n_features_in_} features); pass X in the "
            f"same form as in fit, or a list of {len(layout.widths)} arrays, one per "
            "view."
        )
    elif layout.kind == "frame":
        _check_feature_names(estimator, X, reset=False)
        if n_columns != estimator.n_features_in_:
            raise ValueError(
                f"X has {n_columns} features, but {name} is expecting "
                f"{estimator.n_features_in_} features as input."
            )
    elif n_columns != len(layout.widths):
        raise ValueError(
            f"X is a DataFrame with {n_columns} columns, but {name} was fitted on a "
            f"list of {len(layout.widths)} arrays; pass one column (or array) per "
            "view."
        )
    columns = _FrameColumns(frame, allowed, estimator, schema=schema)

    if reset:
        if n_columns == 1:
            raise _one_feature_error(estimator, frame=True)
        labels = columns.labels
        views = estimator.views
        n_views = 2 if views is None else views
        if (
            views is None
            or (isinstance(views, Integral) and not isinstance(views, bool | np.bool_))
        ) and n_columns > n_views:
            # Each array-valued column is one model's embedding, so n_views
            # views of contiguous columns would put two models in one view.
            vector_labels = [
                label
                for label, vector in zip(labels, columns.is_vector, strict=True)
                if vector
            ]
            every = (
                f" (or views={n_columns})"
                if len(vector_labels) == n_columns
                else ", and place the other columns in views or drop them"
            )
            raise ValueError(
                f"X is a DataFrame of {n_columns} columns, with array-valued columns "
                f"{_short_list(vector_labels)}, but views={views!r} makes "
                f"{n_views} views of contiguous columns, which would put more than "
                "one model in a view; name one column per view, "
                f"views={[str(label) for label in vector_labels]!r}{every}."
            )
        view_names, view_labels, selected = _resolve_views(
            estimator, X, n_columns, labels, columns_word="DataFrame columns"
        )
        widths = tuple(int(columns.widths[positions].sum()) for positions in selected)
        for view_label, width in zip(view_labels, widths, strict=True):
            if width == 0:
                raise ValueError(
                    f"views[{view_label}] selects only empty vectors; every view needs "
                    "at least one feature."
                )
        selections = tuple(_as_slice(positions) for positions in selected)
        layout = ViewLayout(
            "frame",
            selections,
            widths,
            column_widths=columns.widths,
            vector_columns=columns.is_vector,
            feature_names=getattr(estimator, "feature_names_in_", None),
        )
        _store_layout(estimator, layout, view_names)
        return [columns.take(selection) for selection in selections]

    if layout.kind == "list":
        _check_widths(estimator, columns.widths, what="X column {k}")
        # Each column stands for one item of the list seen in fit: its names
        # must be that item's, as they must be when X is a list again.
        _check_list_names(
            estimator,
            [
                None if label == "" else _expanded_names([label], [width], [vector])
                for label, width, vector in zip(
                    columns.labels, columns.widths, columns.is_vector, strict=True
                )
            ],
            what="X's column {k}",
            vector_items_only=True,
        )
        return [columns.take(slice(k, k + 1)) for k in range(n_columns)]
    mismatch = np.flatnonzero(
        (columns.widths != layout.column_widths)
        | (columns.is_vector != layout.vector_columns)
    )
    if len(mismatch):
        j = int(mismatch[0])
        kind = "vectors of length" if columns.is_vector[j] else "a scalar, width"
        raise ValueError(
            f"X column {columns.labels[j]!r} holds {kind} {columns.widths[j]}, but "
            f"{name} was fitted with {layout.column_widths[j]} values per row "
            f"({'array-valued' if layout.vector_columns[j] else 'scalar'}); pass the "
            "same columns as in fit."
        )
    return [columns.take(selection) for selection in layout.selections]


def with_numpy_dtypes(frame):
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


def partition_index(partition):
    """The row labels of a pandas partition (a task of a Dask DataFrame)."""
    return partition.index


def _compute_with_index(out, frame):
    """A pandas DataFrame of the lazy ``out`` on the row labels of ``frame``.

    ``out`` is an output computed from the rows of the Dask DataFrame
    ``frame``, whose array ``skembed._dask`` built from its partition tasks:
    its values and the index are computed together, from the same partition
    tasks, so every partition is read once for both. Unoptimised:
    optimising would fuse the partition tasks into the array's and into the
    index's tasks separately, and read every partition twice.
    """
    import dask
    import pandas as pd

    parts = with_numpy_dtypes(frame).to_delayed()
    index = [dask.delayed(partition_index, pure=True)(part) for part in parts]
    values, index = dask.compute(out, index, optimize_graph=False)
    return pd.DataFrame(values, index=index[0].append(index[1:]), copy=False)


def keep_list_index(estimator, X, out):
    """``out`` on the index of X's rows, under pandas output.

    scikit-learn's ``set_output`` takes the output's index from X when X is
    a pandas DataFrame. A list has no index, nor is a Dask DataFrame one
    scikit-learn reads: both came out numbered 0..n-1 and could not be
    joined back to their rows. Views pair rows by position, so the first
    pandas (or Dask) item's index is the rows'; a lazy output is computed
    together with that Dask index, in one pass over X's graph. Other
    outputs are returned as they are.
    """
    from sklearn.utils._set_output import _get_output_config

    dense = _get_output_config("transform", estimator)["dense"]
    if dense == "default":
        return out
    if is_dask_collection(out) and dense != "pandas":
        # A frame library reads arrays, not lazy collections (polars refused
        # a Dask array): the output is computed, as under pandas output.
        return out.compute()
    if dense != "pandas":
        return out
    items = X if isinstance(X, list | tuple) else [X]
    if is_dask_collection(out):
        for item in items:
            if is_dask_collection(item) and hasattr(item, "divisions"):
                return _compute_with_index(out, item)
        return out
    if not isinstance(X, list | tuple) or not isinstance(out, np.ndarray):
        return out
    for item in items:
        if isinstance(item, pd.DataFrame | pd.Series):
            return pd.DataFrame(out, index=item.index, copy=False)
    return out


def is_dask_collection(X) -> bool:
    """Tell whether X (or an item of a list/tuple X) is a Dask collection.

    Dask is never imported for it: an X of Dask needs Dask loaded already.
    """
    if "dask" not in sys.modules:
        return False
    from dask.base import is_dask_collection as _is_dask

    if isinstance(X, list | tuple):
        return any(_is_dask(item) for item in X)
    return _is_dask(X)


def check_views(
    estimator,
    X,
    *,
    reset,
    dtype=("float64", "float32"),
    allow_unequal_rows=False,
):
    """Validate ``X`` and split it into the estimator's views.

    Reads ``estimator.views`` (None, an int ``K >= 2``, a list of column selectors or a
    dict ``name -> selector``). On ``reset=True`` it sets ``n_features_in_``,
    ``feature_names_in_`` (string dataframe column names only, of one dataframe or
    of the distinct columns of a list of dataframes; deleted otherwise),
    ``view_names_``, ``n_features_per_view_`` and the private ``_view_layout``; on
    ``reset=False`` it checks ``X`` against them.

    Parameters
    ----------
    estimator : estimator instance
        The estimator whose ``views`` parameter splits ``X``.

    X : {array-like, dataframe} of shape (n_samples, n_features) or list of arrays
        A 2-D array-like; a dataframe (pandas, polars, pyarrow Table, ...) of
        numeric columns and/or array-valued columns (object cells holding
        equal-length vectors, Arrow list columns, polars List/Array columns); or a
        list/tuple of ``K`` 2-D arrays, dataframes or columns of vectors, one per
        view (then ``views`` must be None). A list of 1-D arrays is refused as
        ambiguous (rows or views?). With array-valued columns, ``n_features_in_``
        counts dataframe columns and the contiguous blocks of ``views=None`` or
        ``views=K`` are made of whole dataframe columns (``views=None`` needs
        exactly two columns then, one model each); for a list,
        ``n_features_in_`` is the total width. At ``reset=False`` a list of ``K``
        arrays of the fitted widths is accepted whatever the form of X at fit time,
        and a 2-D array of the total width is accepted after fitting on a list.

    reset : bool
        Whether to record the layout (fit) or check against it (transform).

    dtype : dtype or list of dtypes, default=("float64", "float32")
        Allowed output dtypes. The input keeps its dtype only if all of it has one
        allowed dtype; otherwise every block is converted to the first one.

    allow_unequal_rows : bool, default=False
        Let the arrays of a list X have different numbers of rows (unpaired pools).

    Returns
    -------
    blocks : list of ndarray of shape (n_samples, n_features_k)
        One 2-D float array per view, all of one dtype. When ``X`` already is a
        float array of an allowed dtype, the blocks selected by slices (and by int
        positions forming an evenly spaced increasing range) are views of ``X``.

    Raises
    ------
    ValueError
        If ``X`` does not fit ``views`` or the fitted layout; and at fit, if
        ``views`` is None or an int and ``X`` shows a boundary between two models'
        embeddings (columns whose rows all have one norm) that the contiguous
        split would cut through. The message names the boundary and the
        ``views`` that follow it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator
    >>> from skembed._views import check_views
    >>> class Splitter(BaseEstimator):
    ...     def __init__(self, views=None):
    ...         self.views = views
    ...     def fit(self, X, y=None):
    ...         return self
    >>> X = np.arange(10.0).reshape(2, 5)
    >>> splitter = Splitter()
    >>> [block.shape for block in check_views(splitter, X, reset=True)]
    [(2, 3), (2, 2)]
    >>> splitter.view_names_, splitter.n_features_per_view_
    (['view0', 'view1'], [3, 2])
    >>> splitter = Splitter(views={"text": [0, 1], "image": slice(2, 5)})
    >>> blocks = check_views(splitter, X, reset=True)
    >>> splitter.view_names_, np.shares_memory(blocks[1], X)
    (['text', 'image'], True)
    """
    allowed = _allowed_dtypes(dtype)
    if not reset:
        check_is_fitted(estimator, "_view_layout")
    if is_dask_collection(X):
        # Only the estimators that hold their rows in memory come here with
        # Dask input (the others split it lazily, check_dask_views): a Dask
        # array or DataFrame is computed, as the Dask guide says, a DataFrame
        # into pandas with its column names.
        import dask

        (X,) = dask.compute(X)
    if isinstance(X, dict):
        # The views parameter takes a dict; X does not (its keys would be
        # read as the values of one float).
        names = ", ".join(repr(name) for name in list(X)[:3])
        raise TypeError(
            f"X is a dict ({names}{', ...' if len(X) > 3 else ''}); pass the views "
            "as a list of arrays, list(X.values()), or as a DataFrame with one "
            "vector column per model, pandas.DataFrame({name: list(array) for "
            "name, array in X.items()}), which names the views."
        )
    if isinstance(X, list | tuple) and len(X) == 0:
        # scikit-learn read it as a 1-D array and suggested a reshape.
        raise ValueError(
            f"X is an empty {type(X).__name__}; pass the views as a list of 2-D "
            "arrays, one per view (row i of each embedding the same item), or as "
            "one 2-D array or DataFrame split by the views parameter."
        )
    if _is_list_of_views(X):
        return _split_list(
            estimator, X, allowed, reset=reset, allow_unequal_rows=allow_unequal_rows
        )
    series = _as_series(X)
    if series is not None and _is_vector_series(series):
        # One column of vectors holds one model's embeddings: it is never
        # split into views (a polars Array series was read as a 2-D array).
        raise ValueError(
            f"X is a single column of vectors (one model's embeddings), but "
            f"{_estimator_name(estimator)} needs at least 2 views. Pass a "
            "DataFrame with one column per view, or a list of columns or arrays, "
            "one per view."
        )
    if _is_vector_cell_array(X):
        # What a ColumnTransformer returns around vector columns without
        # set_output(transform="pandas"): read as the frame it stands for
        # (numpy's "setting an array element with a sequence" said nothing).
        X = pd.DataFrame(X).infer_objects()
    frame = _as_frame(X)
    schema = None if frame is None else _frame_schema(frame)
    if frame is not None and _has_vector_columns(frame, schema):
        return _split_frame(estimator, X, frame, schema, allowed, reset=reset)
    if not reset and estimator._view_layout.kind == "frame":
        raise ValueError(
            f"{_estimator_name(estimator)} was fitted on a DataFrame with "
            "array-valued columns, but X has none; pass a DataFrame with the same "
            f"columns as in fit, or a list of {len(estimator._view_layout.widths)} "
            "arrays, one per view."
        )
    return _split_array(estimator, X, allowed, reset=reset, frame=frame, schema=schema)


def _is_vector_cell_array(X):
    """Whether X is a 2-D object ndarray whose first row holds 1-D vectors
    (beside numbers, perhaps)."""
    if not (isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 2):
        return False
    if X.shape[0] == 0 or X.shape[1] == 0:
        return False
    return any(
        isinstance(cell, np.ndarray | list | tuple) and np.ndim(cell) == 1
        for cell in X[0]
    )


def check_y_is_not_a_view(estimator, X, y):
    """Refuse ``fit(A, B)``: a second embedding passed as ``y``.

    scikit-learn's CCA and PLS take the second block as ``Y``, so someone used
    to them writes ``fit(A, B)``. Here ``y`` is ignored (class labels travel
    there in a Pipeline) and the default ``views=None`` would split ``A`` alone
    into two halves: a fitted model of the wrong thing, with no error. A float
    ``y`` of several columns with non-integer values next to a single array
    ``X`` is taken for that mistake, whatever its rows (a ``y`` of other rows
    than ``X`` is never a target: ``fit(A, B[:100])`` fitted A's halves).
    Multi-output regression targets for a later Pipeline step look the same,
    so giving ``views`` explicitly, or ``X`` as a list of views, says the
    layout is meant and skips the check.
    """
    if y is None or getattr(estimator, "views", None) is not None:
        return
    try:
        if _is_list_of_views(X):
            return
    except ValueError:
        return  # an ambiguous list: check_views reports it
    # A Dask DataFrame is lazy (never read here); its columns are scalars.
    frame = None if is_dask_collection(X) else _as_frame(X)
    if frame is not None and _has_vector_columns(frame):
        return
    if not isinstance(y, np.ndarray | pd.DataFrame) and not is_dask_collection(y):
        # polars, pyarrow and the other frames narwhals reads: as numbers if
        # every column is a float (pandas frames are checked below).
        other = _as_frame(y)
        if other is not None:
            if not all(dtype.is_float() for dtype in _frame_schema(other).values()):
                return
            y = other.to_numpy()
    shape = getattr(y, "shape", None)
    if shape is None:
        if not isinstance(y, list | tuple) or not y:
            return
        try:
            y = np.asarray(y)
        except (TypeError, ValueError):
            return  # ragged: not an embedding
        shape = y.shape
    if len(shape) != 2 or not isinstance(shape[1], Integral) or shape[1] < 2:
        return
    dtypes = getattr(y, "dtypes", None)
    if dtypes is not None:  # a DataFrame: every column a float
        if not all(pd.api.types.is_float_dtype(dtype) for dtype in dtypes):
            return
    elif not np.issubdtype(np.dtype(getattr(y, "dtype", object)), np.floating):
        return
    if not is_dask_collection(y):
        # Integer-valued floats are labels (a multilabel indicator, say); an
        # embedding has fractional entries in its first rows already.
        head = y.iloc[:1024] if hasattr(y, "iloc") else y[:1024]
        head = np.asarray(head, dtype=np.float64)
        finite = head[np.isfinite(head)]
        if not np.any(finite != np.round(finite)):
            return
    name = _estimator_name(estimator)
    raise ValueError(
        f"y has shape {tuple(shape)}, like a second embedding, but {name} takes "
        "every view from X and ignores y (a Pipeline passes class labels "
        "there); with views=None it would split X alone into two views. Pass "
        "the embeddings together as X, e.g. fit([A, B]). If y really holds "
        "multi-output targets for a later step, set views (e.g. views=2) to say "
        "how X splits."
    )


def check_training_views(estimator, X, *, min_samples=2):
    """:func:`check_views` at fit time, refusing fewer than ``min_samples`` rows.

    For the estimators that train on the rows themselves (not on their
    moments), where a single row leaves nothing to learn or to validate on.
    """
    blocks = check_views(estimator, X, reset=True)
    n_samples = blocks[0].shape[0]
    if n_samples < min_samples:
        raise ValueError(
            f"{type(estimator).__name__} needs at least {min_samples} samples, got "
            f"n_samples = {n_samples}."
        )
    return blocks


def resolve_view(estimator, view, *, parameter="view"):
    """Return the index of a view given by position or by name.

    Parameters
    ----------
    estimator : fitted estimator instance
        An estimator on which :func:`check_views` ran with ``reset=True``.

    view : int or str
        A view index (negative values count from the end, as in Python) or a view
        name from ``estimator.view_names_``.

    parameter : str, default="view"
        The name the error message gives ``view`` (e.g. ``"reference"``).

    Returns
    -------
    index : int
        The view index in ``range(len(estimator.view_names_))``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator
    >>> from skembed._views import check_views, resolve_view
    >>> class Splitter(BaseEstimator):
    ...     def __init__(self, views=None):
    ...         self.views = views
    ...     def fit(self, X, y=None):
    ...         return self
    >>> splitter = Splitter(views={"text": [0, 1], "image": [2, 3]})
    >>> _ = check_views(splitter, np.ones((3, 4)), reset=True)
    >>> resolve_view(splitter, "image"), resolve_view(splitter, -2)
    (1, 0)
    """
    check_is_fitted(estimator, "view_names_")
    names = estimator.view_names_
    n_views = len(names)
    if isinstance(view, Integral) and not isinstance(view, bool | np.bool_):
        if -n_views <= view < n_views:
            return int(view) % n_views
    elif isinstance(view, str) and view in names:
        return names.index(view)
    raise ValueError(
        f"{parameter}={view!r} is not a view of this {_estimator_name(estimator)}; "
        f"pass an int in [{-n_views}, {n_views - 1}] or one of the view names "
        f"{names}."
    )


def check_view_block(estimator, X_k, view, *, dtype=("float64", "float32")):
    """Validate the raw embeddings of one view.

    Parameters
    ----------
    estimator : fitted estimator instance
        An estimator on which :func:`check_views` ran with ``reset=True``.

    X_k : {array-like, dataframe, Series} of shape (n_samples, n_features_k)
        The embeddings of one view: a 2-D array-like, a dataframe (numeric and/or
        array-valued columns, concatenated in order) or an array-valued Series.

    view : int or str
        The view, by index or name (see :func:`resolve_view`).

    dtype : dtype or list of dtypes, default=("float64", "float32")
        Allowed output dtypes; other inputs are converted to the first one.

    Returns
    -------
    X_k : ndarray of shape (n_samples, n_features_k)
        A finite 2-D float array (no copy if ``X_k`` already is one).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator
    >>> from skembed._views import check_views, check_view_block
    >>> class Splitter(BaseEstimator):
    ...     def __init__(self, views=None):
    ...         self.views = views
    ...     def fit(self, X, y=None):
    ...         return self
    >>> splitter = Splitter(views={"text": [0, 1], "image": [2, 3, 4]})
    >>> _ = check_views(splitter, np.ones((3, 5)), reset=True)
    >>> check_view_block(splitter, [[1, 2, 3]], "image")
    array([[1., 2., 3.]])
    """
    index = resolve_view(estimator, view)
    allowed = _allowed_dtypes(dtype)
    expected = estimator.n_features_per_view_[index]
    if (
        type(X_k) is np.ndarray
        and X_k.ndim == 2
        and X_k.dtype in allowed
        and X_k.shape[0] > 0
        and X_k.shape[1] == expected
        and _finite(X_k)
    ):
        # A plain, finite float array is what check_array would return as it
        # is: skip the dataframe probes, which dominate the cost of
        # translating one query at a time.
        return X_k
    series = _as_series(X_k)
    frame = _as_frame(X_k)
    if series is not None and _is_vector_series(series):
        frame = series.to_frame()
    schema = None if frame is None else _frame_schema(frame)
    if frame is not None and _has_vector_columns(frame, schema):
        columns = _FrameColumns(frame, allowed, estimator, schema=schema)
        _check_view_vector_names(estimator, index, columns)
        block = columns.take(slice(None))
    else:
        if frame is not None and hasattr(estimator, "feature_names_in_"):
            _check_view_columns(estimator, index, frame)
        if frame is not None:
            allowed = _frame_allowed(schema, allowed)
        # Dates and strings, refused by fit and transform, were cast to floats
        # by the one-view methods.
        _check_numeric(X_k, "X", frame=frame, schema=schema)
        _refuse_list_of_blocks(X_k, "X")
        block = _checked_array(X_k, dtype=allowed, estimator=estimator, input_name="X")
    if block.shape[1] != expected:
        raise ValueError(
            f"X has {block.shape[1]} features, but view "
            f"{estimator.view_names_[index]!r} of {_estimator_name(estimator)} is "
            f"expecting {expected} features."
        )
    return block


def _check_view_vector_names(estimator, index, columns):
    """Refuse named vector columns that are not the view's own.

    A view fitted on named vector columns (of one dataframe, or named items of
    a list) would map another view's column of the same width without any
    error. A view fitted on scalar columns or on unnamed arrays takes any
    vector column of its width, as a view fitted on vectors takes any block of
    scalars (:func:`_check_view_columns`).
    """
    layout = estimator._view_layout
    if layout.feature_names is None or layout.kind == "array":
        return
    if any(label == "" for label in columns.labels):
        return  # an unnamed polars Series: no name to check
    given = _expanded_names(columns.labels, columns.widths, columns.is_vector)
    if given is None:
        return
    expected = list(view_feature_names(estimator, index))
    if layout.kind == "frame":
        positions = _positions(layout.selections[index], len(layout.column_widths))
        if not layout.vector_columns[positions].all():
            # A view of scalar columns (or of scalar and vector ones) takes
            # columns of other names, but not the view's own, or another
            # view's, in another arrangement: those reordered were mapped
            # (outputs off by up to 5), while transform refused them.
            fitted = {str(name) for name in estimator.feature_names_in_}
            if given != expected and {str(label) for label in columns.labels} & fitted:
                raise ValueError(
                    f"X's columns {_short_list(columns.labels)} are not those "
                    f"view {estimator.view_names_[index]!r} of "
                    f"{_estimator_name(estimator)} was fitted on, in that order "
                    f"(features {_short_list(expected)}); select that view's "
                    "columns in their order."
                )
            return
    elif layout.vector_columns is None or not layout.vector_columns[index]:
        return
    if given == expected:
        return
    raise ValueError(
        f"X's columns {_short_list(columns.labels)} are not those view "
        f"{estimator.view_names_[index]!r} of {_estimator_name(estimator)} was "
        f"fitted on (features {_short_list(expected)}); pass that view's own "
        "column(s)."
    )


def _check_view_columns(estimator, index, frame):
    """Refuse a frame of scalar columns that are not the view's, in order.

    Fitted on named scalar columns, a view's maps weigh each column by its name's
    place: the same columns in another order, or another view's columns of
    the same width, would be mapped without any error. Fitted on a vector
    column ``"a"``, scalar columns named after its entries (``a0``, ``a1``,
    ...) or another view's are held to the same rule.
    """
    expected = list(view_feature_names(estimator, index))
    columns = [str(c) for c in frame.columns]
    if columns == expected:
        return
    if not set(expected) <= set(estimator.feature_names_in_):
        # Fitted on a column of vectors: any block of scalars of its width
        # is its entries, under other names, but not under the names of the
        # entries of this view or another one in another arrangement (a0..a2
        # reversed, or b0..b2, were mapped as a0..a2 without a word).
        entries = {
            str(name)
            for k in range(len(estimator.view_names_))
            for name in view_feature_names(estimator, k)
        }
        if not set(columns) & entries:
            return
    name = estimator.view_names_[index]
    if sorted(columns) == sorted(expected):
        problem = "in another order"
    else:
        problem = f"{_short_list(columns)}, not {_short_list(expected)}"
    raise ValueError(
        f"X's columns are {problem}: view {name!r} of "
        f"{_estimator_name(estimator)} was fitted on the columns "
        f"{_short_list(expected)}, in that order; select those columns of X, "
        "in that order."
    )


def view_feature_names(estimator, k, *, positional=False):
    """Return the input feature names of view ``k``.

    Names are the DataFrame column names for scalar columns, ``f"{column}{j}"`` for
    entry ``j`` of an array-valued column, and ``f"x{i}"`` (``i`` the global column
    index, as in scikit-learn) when ``X`` had no string column names (arrays, lists).

    Parameters
    ----------
    estimator : fitted estimator instance
        An estimator on which :func:`check_views` ran with ``reset=True``.

    k : int or str
        The view, by index or name.

    positional : bool, default=False
        Return the ``f"x{i}"`` names whatever the column names: unlike those,
        they never repeat (vector column ``"a"`` of 12 entries and column
        ``"a1"`` both give ``"a10"``).

    Returns
    -------
    names : ndarray of str objects of shape (n_features_k,)
        The input feature names of the view.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator
    >>> from skembed._views import check_views, view_feature_names
    >>> class Splitter(BaseEstimator):
    ...     def __init__(self, views=None):
    ...         self.views = views
    ...     def fit(self, X, y=None):
    ...         return self
    >>> splitter = Splitter()
    >>> _ = check_views(splitter, np.ones((2, 5)), reset=True)
    >>> view_feature_names(splitter, 1)
    array(['x3', 'x4'], dtype=object)
    """
    index = resolve_view(estimator, k)
    layout = estimator._view_layout
    if positional:
        layout = replace(layout, feature_names=None)
    if layout.kind == "list":
        start = int(sum(layout.widths[:index]))
        stop = start + layout.widths[index]
        if layout.feature_names is not None:
            return np.asarray(layout.feature_names[start:stop], dtype=object)
        return np.asarray([f"x{i}" for i in range(start, stop)], dtype=object)
    if layout.kind == "array":
        n_features = estimator.n_features_in_
        positions = _positions(layout.selections[index], n_features)
        if layout.feature_names is None:
            return np.asarray([f"x{i}" for i in positions], dtype=object)
        return np.asarray(layout.feature_names[positions], dtype=object)
    offsets = np.concatenate([[0], np.cumsum(layout.column_widths)])
    names = []
    for column in _positions(layout.selections[index], len(layout.column_widths)):
        width = int(layout.column_widths[column])
        if layout.feature_names is None:
            names.extend(
                f"x{i}" for i in range(offsets[column], offsets[column] + width)
            )
        elif layout.vector_columns[column]:
            label = layout.feature_names[column]
            names.extend(f"{label}{j}" for j in range(width))
        else:
            names.append(str(layout.feature_names[column]))
    return np.asarray(names, dtype=object)


def view_selections(estimator):
    """Per view, the input columns it was fitted on (slices or int arrays).

    For an estimator fitted on a list of arrays, the contiguous column blocks
    that the same views take in a 2-D array of their total width.
    """
    layout = estimator._view_layout
    if layout.kind == "list":
        return tuple(_contiguous_slices(layout.widths))
    return tuple(layout.selections)
