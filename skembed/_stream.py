"""Translate a stored index between model spaces in one streaming pass.

An index embedded by an old model may be far larger than memory. Its rows are
read chunk by chunk (a ``.npy`` file through a memory map, a Parquet file one
batch of rows at a time), translated, and appended to the output, so memory
holds a few chunks whatever the size of the file: the next chunk is read and
the previous one written on two more threads while one is translated.
The output is written to a temporary file next to its destination and
renamed at the end: an interrupted pass never leaves a truncated file under
the output name.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import functools
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.utils._param_validation import HasMethods, Hidden, Interval

from skembed._atomic import start_writeback, write_atomically
from skembed._params import validate_params
from skembed._stats import all_finite, chunk_rows

__all__ = ["translate_file"]

_SUFFIXES = (".npy", ".parquet")
# Input bytes per chunk: large enough that reading and the product run at
# full speed, small enough to keep memory flat.
_CHUNK_BYTES = 32 * 2**20
# Parquet is read through a buffer of this size, a page or a few at a time.
_READ_BUFFER_BYTES = 2**20


class _Rate:
    """Rows per second, the ETA, and a progress line on stderr.

    The line is redrawn at most every ``interval`` seconds (and once at the
    end), so small chunks do not flood the terminal.
    """

    def __init__(self, total, enabled, label, interval=0.5):
        # ``enabled`` may be a callable progress(done, total) instead: the
        # caller's own display.
        self.report = enabled if callable(enabled) else None
        self.total, self.enabled, self.label = total, bool(enabled), label
        self.interval = interval
        self.done = 0
        self.start = time.perf_counter()
        self.shown = -float("inf")

    def update(self, n):
        self.done += n
        if self.report is not None:
            self.report(self.done, self.total)
            return
        now = time.perf_counter()
        finished = self.done >= self.total
        if not self.enabled or (now - self.shown < self.interval and not finished):
            return
        self.shown = now
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        sys.stderr.write(
            f"\r{self.label}: {self.done:,}/{self.total:,} rows "
            f"({100 * self.done / max(self.total, 1):.0f}%), {rate:,.0f} rows/s, "
            f"ETA {eta:.0f} s "
        )
        if finished:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def close(self):
        """End a line left open by a pass that stopped early (an error, an
        interrupt), so that what is printed next starts on its own line."""
        if self.report is None and self.enabled and self.shown > -float("inf"):
            if self.done < self.total:
                sys.stderr.write("\n")
                sys.stderr.flush()

    @property
    def seconds(self):
        return time.perf_counter() - self.start


def _suffix(path, name):
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValueError(
            f"{name} {os.fspath(path)!r} has the unsupported suffix "
            f"{suffix or '(none)'!r}; use a .npy or .parquet file."
        )
    return suffix


def _import_parquet():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(
            'Parquet files need pyarrow; install it with `pip install "skembed'
            '[parquet]"` or use .npy files.'
        ) from exc
    return pa, pq


# ------------------------------------------------------------------- readers
def _npy_problem(path, exc):
    """What np.load's refusal means, without its advice to unpickle.

    NumPy takes any file that is not a .npy array for a pickle, and offers
    ``allow_pickle=True``: never safe for a file of unknown origin.
    """
    with open(path, "rb") as file:
        magic = file.read(6)
    if magic != b"\x93NUMPY":
        return "it is not a .npy file; save the vectors with numpy.save"
    message = str(exc)
    # "Object arrays cannot be loaded ...", "Python objects in dtype" (a
    # memory map), or an object header read as a pickle.
    if "pickle" in message or "object" in message.lower():
        return "it holds Python objects; save numeric vectors with numpy.save"
    return message


class _NpyReader:
    def __init__(self, path):
        try:
            self.array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError) as exc:
            # EOFError: an empty file.
            raise ValueError(
                f"input {os.fspath(path)!r} is not a numeric .npy array "
                f"({_npy_problem(path, exc)})."
            ) from None
        if not isinstance(self.array, np.ndarray):
            # np.load reads a .npz archive whatever its file's name says.
            self.array.close()
            raise ValueError(
                f"input {os.fspath(path)!r} is a .npz archive, not a .npy array; "
                "translate_file streams .npy and .parquet files: save the "
                "vectors with numpy.save."
            )
        if self.array.ndim != 2 or self.array.dtype.kind != "f":
            raise ValueError(
                f"input {os.fspath(path)!r} holds a {self.array.ndim}-D "
                f"{self.array.dtype} array; translate_file needs a 2-D float array "
                "(rows x features)."
            )
        self.n_rows, self.width = self.array.shape
        if self.n_rows == 0 or self.width == 0:
            raise ValueError(
                f"input {os.fspath(path)!r} is empty (shape {self.array.shape})."
            )
        # Bytes beyond the array the header announces: two files concatenated,
        # or an appender that never rewrote the header. Read as announced,
        # the rows after it would be lost without a word.
        extra = os.path.getsize(path) - self.array.offset - self.array.nbytes
        if extra > 0:
            raise ValueError(
                f"input {os.fspath(path)!r} is damaged: its header announces "
                f"{self.n_rows} rows ({self.array.nbytes:,} bytes of "
                f"{self.array.dtype}), but {extra:,} more bytes follow them; rewrite "
                "it with numpy.save."
            )
        self.dtype = self.array.dtype
        self.schema = None
        self.column = None

    def chunks(self, rows, *, other_columns=True):
        # Copies, not views of the memory map: read ahead on another thread
        # (``_ahead``), a chunk's pages are read there, and the translation
        # gets an array it may keep.
        for start in range(0, self.n_rows, rows):
            yield np.array(self.array[start : start + rows]), None


def _vector_column_name(schema, column, pa, where):
    vector_types = (
        pa.types.is_list,
        pa.types.is_large_list,
        pa.types.is_fixed_size_list,
    )
    candidates = [
        field.name for field in schema if any(test(field.type) for test in vector_types)
    ]
    if column is None:
        if len(candidates) != 1:
            raise ValueError(
                f"{where} has {len(candidates)} vector (list) columns "
                f"{candidates}; name the one to translate with column=..."
            )
        return candidates[0]
    if column not in schema.names:
        raise ValueError(f"{where} has no column {column!r}; it has {schema.names}.")
    if column not in candidates:
        raise ValueError(
            f"{where}: column {column!r} has type {schema.field(column).type}, not "
            "a list of numbers (one vector per row)."
        )
    return column


def _vectors_of(array, width, pa, where, first_row=0):
    """A 2-D numpy view of a list column whose every cell has ``width`` values.

    ``first_row`` is the file row of the column's first cell, for errors.
    """
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    if array.null_count:
        raise ValueError(f"{where}: the vector column has missing (null) rows.")
    if not pa.types.is_fixed_size_list(array.type):
        offsets = np.asarray(array.offsets)
        lengths = np.diff(offsets)
        if len(lengths) and (lengths != width).any():
            row = int(np.flatnonzero(lengths != width)[0])
            raise ValueError(
                f"{where}: the vectors do not all have {width} values (row "
                f"{first_row + row} has {lengths[row]})."
            )
    values = array.flatten()
    if values.null_count:
        raise ValueError(f"{where}: the vector column has missing values inside rows.")
    if not pa.types.is_floating(values.type):
        raise ValueError(
            f"{where}: the vector column holds {values.type}, not floating-point "
            "numbers."
        )
    # Writable: translate receives an array of its own (see translate_file),
    # not a read-only view of pyarrow's buffer.
    return values.to_numpy(zero_copy_only=False, writable=True).reshape(-1, width)


class _ParquetReader:
    def __init__(self, path, column):
        pa, pq = _import_parquet()
        self.pa = pa
        self.where = f"input {os.fspath(path)!r}"
        try:
            # Neither pre-buffered nor unbuffered: with pyarrow's defaults a
            # pass read ahead every row group (116 MiB of Arrow memory for a
            # 111 MiB file read in chunks of 1 MiB), or a whole column chunk
            # at once (a file written as one row group, pandas' default up
            # to a million rows, was read whole by the width probe below).
            self.file = pq.ParquetFile(
                path, pre_buffer=False, buffer_size=_READ_BUFFER_BYTES
            )
        except Exception as exc:  # pyarrow raises several unrelated types
            raise ValueError(
                f"{self.where} is not a readable Parquet file ({exc})."
            ) from exc
        self.schema = self.file.schema_arrow
        self.column = _vector_column_name(self.schema, column, pa, self.where)
        self.n_rows = self.file.metadata.num_rows
        if self.n_rows == 0:
            raise ValueError(f"{self.where} has no rows.")
        first = next(self.file.iter_batches(batch_size=1, columns=[self.column]))
        if first.column(0).null_count:
            raise ValueError(
                f"{self.where}: the vector column has missing (null) rows."
            )
        self.width = len(first.column(0)[0])
        if self.width == 0:
            raise ValueError(
                f"{self.where}: row 0 of column {self.column!r} holds no values; "
                "every row needs one vector of the embeddings' width."
            )
        value_type = self.schema.field(self.column).type.value_type
        if not pa.types.is_floating(value_type):
            raise ValueError(
                f"{self.where}: column {self.column!r} holds {value_type}, not "
                "floating-point numbers."
            )
        self.dtype = np.dtype(value_type.to_pandas_dtype())

    def chunks(self, rows, *, other_columns=True):
        # The other columns only for an output that keeps them: decoded,
        # long texts beside short vectors cost more than the vectors.
        columns = None if other_columns else [self.column]
        first_row = 0
        for batch in self.file.iter_batches(batch_size=rows, columns=columns):
            vectors = _vectors_of(
                batch.column(self.column), self.width, self.pa, self.where, first_row
            )
            first_row += batch.num_rows
            yield vectors, batch


# ------------------------------------------------------------------- writers
def _pandas_metadata(metadata, source, name, dtype):
    """The input's schema ``metadata`` for the output, whose vector column
    ``source`` is now ``name`` and holds ``dtype`` values.

    A file written by pandas describes its columns (and its index, which
    the output keeps) in a "pandas" entry; left as it was, that entry named
    a column the output no longer has, or the input's value type. Metadata
    that is not pandas', or that cannot be read, is kept as it is.
    """
    if not metadata or b"pandas" not in metadata:
        return metadata
    try:
        described = json.loads(metadata[b"pandas"])
        columns = described["columns"]
        for column in columns:
            if column.get("field_name", column.get("name")) == source:
                column["name"] = column["field_name"] = name
                column["pandas_type"] = f"list[{np.dtype(dtype).name}]"
    except (ValueError, TypeError, KeyError, AttributeError):
        return metadata
    return {**metadata, b"pandas": json.dumps(described).encode()}


class _NpyWriter:
    """A .npy file written row chunk by row chunk (header first)."""

    def __init__(self, file, n_rows, width, dtype):
        self.file = file
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
        np.lib.format.write_array_header_2_0(
            self.file, {**header, "shape": (n_rows, width)}
        )

    def write(self, vectors, batch):
        self.file.write(np.ascontiguousarray(vectors).data)

    def close(self):
        """Nothing to release: the caller owns the file, flushes and renames it."""


class _ParquetWriter:
    """A Parquet file written one row group per chunk, other columns kept."""

    def __init__(self, file, reader, width, dtype, output_column):
        pa, pq = _import_parquet()
        self.pa = pa
        self.value_type = pa.from_numpy_dtype(dtype)
        vector_type = pa.list_(self.value_type, width)
        if reader.schema is None:
            self.name = output_column or "embedding"
            schema = pa.schema([(self.name, vector_type)])
        else:
            self.name = output_column or reader.column
            if self.name != reader.column and self.name in reader.schema.names:
                raise ValueError(
                    f"output_column={self.name!r} is a column of the input "
                    "already; the translated vectors would replace it. Pick "
                    "another name, or None to replace the input's vector column "
                    f"{reader.column!r}."
                )
            fields = []
            for field in reader.schema:
                if field.name == reader.column:
                    fields.append(pa.field(self.name, vector_type))
                else:
                    fields.append(field)
            metadata = _pandas_metadata(
                reader.schema.metadata, reader.column, self.name, dtype
            )
            schema = pa.schema(fields, metadata=metadata)
        self.source = reader.column
        self.schema = schema
        # A file object: the writer leaves it open for the caller.
        self.writer = pq.ParquetWriter(file, schema)

    def write(self, vectors, batch):
        pa = self.pa
        flat = pa.array(np.ascontiguousarray(vectors).ravel(), type=self.value_type)
        column = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
        if batch is None:
            table = pa.Table.from_arrays([column], schema=self.schema)
        else:
            arrays = []
            for field in self.schema:
                if field.name == self.name:
                    arrays.append(column)
                else:
                    arrays.append(batch.column(field.name))
            table = pa.Table.from_arrays(arrays, schema=self.schema)
        self.writer.write_table(table)

    def close(self):
        self.writer.close()


_END = object()


def _returns_new_arrays(translate):
    """Whether ``translate`` is the ``translate`` method of a fitted skembed
    aligner (bare or in :func:`functools.partial`): it returns a new array
    at every call and keeps none, so its chunks need no copy before they
    are written (a 500,000 x 384 float32 copy takes about 0.1 s of a pass
    of about 1.2 s)."""
    from skembed._base import BaseAligner

    function = translate
    while isinstance(function, functools.partial):
        function = function.func
    owner = getattr(function, "__self__", None)
    return isinstance(owner, BaseAligner) and (
        getattr(function, "__name__", None) == "translate"
    )


def _ahead(chunks):
    """The items of the iterator ``chunks``, each made on a second thread
    while the previous one is used.

    Reading a chunk (page faults of a memory map, decoding of a Parquet
    batch) then overlaps the translation of the one before. Closed early, it
    waits for the chunk being read.
    """
    with ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="skembed-translate-file-read"
    ) as pool:
        coming = pool.submit(next, chunks, _END)
        while (item := coming.result()) is not _END:
            coming = pool.submit(next, chunks, _END)
            yield item


class _WriteBehind:
    """Writes each translated chunk on a second thread while the next chunk
    is read and translated.

    The chunk is first copied into a buffer of this object's own:
    ``translate`` may hand back an array it reuses (a buffer of its own, a
    view of its input), which the next call would change while it is being
    written. The copy costs less than the write it takes off the
    translation's thread (see ``_written``). One buffer is enough: a chunk
    is copied once the one before it is written. ``copy=False`` hands the
    chunk over as it is, for a ``translate`` known to return a new array
    at every call (:func:`_returns_new_arrays`).
    """

    def __init__(self, file, *, copy=True):
        self.file = file
        self.copy = copy
        # Bytes whose writeback to disk has been asked for (``_written``).
        self.flushed = 0
        self.buffer = None
        self.pending = None
        self.executor = None

    def write(self, writer, out, dtype, batch):
        self.wait()
        if self.copy:
            buffer = self.buffer
            if (
                buffer is None
                or buffer.shape[0] < out.shape[0]
                or buffer.dtype != dtype
            ):
                buffer = self.buffer = np.empty(out.shape, dtype=dtype)
            chunk = buffer[: out.shape[0]]
            np.copyto(chunk, out, casting="unsafe")
        else:
            chunk = out.astype(dtype, copy=False)
        if self.executor is None:
            self.executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="skembed-translate-file"
            )
        self.pending = self.executor.submit(self._written, writer, chunk, batch)

    def _written(self, writer, chunk, batch):
        writer.write(chunk, batch)
        # The file is synced before its rename; writing each chunk back while
        # the next is translated leaves that sync little to wait for. A
        # 500,000 x 384 float32 .npy index (Procrustes, one thread, side by
        # side): 337-351k rows/s, against 289-302k with the whole sync at the
        # end (one GEMM of the same rows: 488-508k rows/s), before the chunks
        # were written on their own thread.
        self.flushed = start_writeback(self.file, self.flushed)

    def wait(self):
        """Wait for the chunk being written; its error, if any, is raised."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def close(self):
        """Wait for the chunk being written, whatever became of it."""
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self.executor = None
        self.pending = None


@validate_params(
    {
        # An aligner is let through to be told how to pass its translate.
        "translate": [callable, Hidden(HasMethods(["translate"]))],
        "input": [str, os.PathLike],
        "output": [str, os.PathLike],
        "column": [str, None],
        "output_column": [str, None],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "progress": ["boolean", callable],
    },
    prefer_skip_nested_validation=True,
)
def translate_file(
    translate,
    input,
    output,
    *,
    column=None,
    output_column=None,
    chunk_size=None,
    progress=False,
):
    """Translate every row of an embeddings file, streaming, into a new file.

    For re-indexing gradually: an index embedded by the old model is carried
    into the new model's space without re-embedding its documents and without
    ever holding the file in memory. Rows are read in chunks (a ``.npy``
    file through a memory map, a Parquet file batch by batch), translated and
    appended to the output.

    Read more in the :ref:`User Guide <migration>`.

    Parameters
    ----------
    translate : callable
        Maps a chunk of rows, an ndarray of shape (n_rows, n_features), to
        its translation, of shape (n_rows, n_features_out), such as
        ``functools.partial(aligner.translate, source="old", target="new")``
        for a fitted aligner whose views are the old and the new model.
    input : str or path-like
        A ``.npy`` file holding a 2-D float array, or a ``.parquet`` file
        with one vector column (a list of floats per row).
    output : str or path-like
        The translated rows: a ``.npy`` file, or a ``.parquet`` file (other
        columns of a Parquet input, such as document ids, are kept; the
        vectors become a fixed-size list column).
    column : str or None, default=None
        Parquet input only: the vector column; None takes the only list
        column.
    output_column : str or None, default=None
        Parquet output only: the name of the translated column (default: the
        input's, or ``"embedding"`` for a ``.npy`` input).
    chunk_size : int or None, default=None
        Rows per chunk; None reads about 32 MiB of input at a time.
    progress : bool or callable, default=False
        Show rows done, rate and estimated time left on stderr; or a callable
        ``progress(rows_done, rows_total)``, called after every chunk, for a
        display of the caller's own.

    Returns
    -------
    summary : dict
        ``rows``, ``n_features_in``, ``n_features_out``, ``seconds`` and
        ``rows_per_second`` of the pass.

    See Also
    --------
    EmbeddingIndex : The other direction: search the old index with
        translated new queries.

    Notes
    -----
    Float16 input is translated in float32; otherwise the output keeps the
    dtype ``translate`` returns for the input's dtype. The output goes to a
    temporary file in the output's folder, renamed to ``output`` once every
    row is written (a file it replaces keeps its permissions); a failure
    leaves an existing ``output`` as it was. An input without rows is
    refused (ValueError): an empty index has nothing to translate, and the
    width of its translation would be unknown.

    ``translate`` runs in the calling thread, one chunk at a time; the next
    chunk is read and the previous one written on two other threads
    meanwhile. Each chunk ``translate`` receives is an array of its own, and
    what it returns is copied before it is written (unless it is an
    aligner's own ``translate``, which returns a new array at every call),
    so it may keep its input or return a buffer it reuses.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from skembed import translate_file
    >>> temporary = tempfile.TemporaryDirectory()
    >>> folder = Path(temporary.name)
    >>> np.save(folder / "old.npy", np.eye(3, dtype=np.float32))
    >>> double = lambda X: 2 * X
    >>> summary = translate_file(double, folder / "old.npy", folder / "new.npy")
    >>> summary["rows"], np.load(folder / "new.npy")[1]
    (3, array([0., 2., 0.], dtype=float32))
    >>> temporary.cleanup()
    """
    if not callable(translate):
        names = getattr(translate, "view_names_", None) or ["SOURCE", "TARGET"]
        raise TypeError(
            f"translate must be a function of a chunk of rows, got the aligner "
            f"{type(translate).__name__}; pass functools.partial("
            f"aligner.translate, source={names[0]!r}, target={names[-1]!r}) "
            "with the views to translate from and to."
        )
    input, output = Path(input), Path(output)
    in_suffix = _suffix(input, "input")
    out_suffix = _suffix(output, "output")
    if not input.is_file():
        raise FileNotFoundError(f"input {os.fspath(input)!r}: file not found.")
    if input.resolve() == output.resolve():
        raise ValueError(
            "output is the input file; write the translation to a new file."
        )
    if in_suffix == ".npy":
        if column is not None:
            raise ValueError("column names a Parquet column; the input is a .npy file.")
        reader = _NpyReader(input)
    else:
        reader = _ParquetReader(input, column)
    if output_column is not None and out_suffix != ".parquet":
        raise ValueError("output_column names a Parquet column; the output is .npy.")
    work_dtype = np.float32 if reader.dtype.itemsize <= 4 else np.float64
    rows = chunk_size or chunk_rows(reader.width * reader.dtype.itemsize, _CHUNK_BYTES)
    # No more than the file holds: pyarrow takes a batch size below 2**63 only.
    rows = min(rows, reader.n_rows)
    rate = _Rate(reader.n_rows, progress, f"translating {input.name}")
    shape = {}

    def write(file):
        writer = None
        chunks = _ahead(reader.chunks(rows, other_columns=out_suffix == ".parquet"))
        behind = _WriteBehind(file, copy=not _returns_new_arrays(translate))
        try:
            for vectors, batch in chunks:
                vectors = np.asarray(vectors, dtype=work_dtype)
                out = np.asarray(translate(vectors))
                if out.ndim != 2 or out.shape[0] != vectors.shape[0]:
                    raise ValueError(
                        f"translate returned shape {out.shape} for a chunk of "
                        f"{vectors.shape[0]} rows; it must return one row per "
                        "input row."
                    )
                if out.shape[1] == 0:
                    raise ValueError(
                        f"translate returned shape {out.shape}: vectors without "
                        "a column; it must return at least one value per row."
                    )
                if out.dtype.kind != "f":
                    raise TypeError(
                        f"translate returned {out.dtype} values; it must return "
                        "floating-point vectors."
                    )
                if not all_finite(out) and not np.isfinite(out).all():
                    # Written as they came, NaN rows went into the new index.
                    # (The row sums can overflow for finite rows: then every
                    # entry is read.)
                    raise ValueError(
                        f"translate returned NaN or infinity for a chunk of "
                        f"{vectors.shape[0]} rows (starting at row "
                        f"{rate.done}); the output would hold them. Check the "
                        "input rows, or the translate function."
                    )
                if writer is None:
                    shape["width"], dtype = out.shape[1], out.dtype
                    if out_suffix == ".npy":
                        writer = _NpyWriter(file, reader.n_rows, out.shape[1], dtype)
                    else:
                        writer = _ParquetWriter(
                            file, reader, out.shape[1], dtype, output_column
                        )
                elif out.shape[1] != shape["width"]:
                    raise ValueError(
                        f"translate returned {out.shape[1]} columns for one chunk and "
                        f"{shape['width']} for an earlier one."
                    )
                elif out.dtype != dtype:
                    # The output's dtype is fixed by the first chunk: a later
                    # float64 chunk cast to float32 may overflow to inf.
                    raise TypeError(
                        f"translate returned {out.dtype} values for one chunk and "
                        f"{dtype} for an earlier one; it must return one dtype "
                        "for every chunk."
                    )
                behind.write(writer, out, dtype, batch)
                # Copied: let the next translation reuse its memory.
                del out
                rate.update(vectors.shape[0])
            behind.wait()
        finally:
            # Also on a failure: the chunk being written is waited for (its
            # own error, if any, is superseded), and a Parquet writer holds
            # the file until closed.
            chunks.close()
            behind.close()
            if writer is not None:
                writer.close()
            rate.close()

    # The shared atomic writer: a temporary file beside the output, synced,
    # given the permissions of a file it replaces, renamed at the end, and
    # removed on any failure.
    write_atomically(output, write, suffix=".partial")
    width = shape["width"]
    return {
        "rows": reader.n_rows,
        "n_features_in": reader.width,
        "n_features_out": width,
        "seconds": rate.seconds,
        "rows_per_second": reader.n_rows / max(rate.seconds, 1e-12),
    }
