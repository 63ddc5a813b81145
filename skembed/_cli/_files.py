"""Reading embeddings and pairs from files, checking and writing outputs.

Every problem with a file or its content becomes a :class:`UserError` with a
one-line message that names the file (and the line, row or column when there
is one). Files are recognised by their suffix and checked against their
first bytes, so that a file that is not what its name says is named as what
it is. Array sizes are checked against the file before anything is
allocated.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import csv
import math
import os
import re
import shlex
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skembed._atomic import write_together as atomic_write_together
from skembed._cli._common import UserError, one_line
from skembed._io import HEADER_KEY
from skembed._views import frame_to_array

__all__ = [
    "EMBEDDING_SUFFIXES",
    "MODEL_SUFFIXES",
    "OUTPUT_SUFFIXES",
    "array_writer",
    "check_output",
    "check_paired",
    "parse_columns",
    "read_embeddings",
    "read_pairs",
    "split_member",
    "write_array",
    "write_atomically",
    "write_error",
    "write_together",
]

EMBEDDING_SUFFIXES = (".npy", ".npz", ".parquet", ".csv")
MODEL_SUFFIXES = (".npz",)
OUTPUT_SUFFIXES = (".npy", ".csv", ".parquet")

# Bytes read per step while copying an array out of a file (progress ticks).
_CHUNK_BYTES = 64 * 2**20
# Rows whose values are inspected to find id-like columns cheaply; suspects
# are then confirmed on every row.
_SAMPLE_ROWS = 1024

_MAGIC = {
    b"\x93NUMPY": "npy",
    b"PK\x03\x04": "npz",
    b"PK\x05\x06": "npz",
    b"PAR1": "parquet",
}
_KIND_NAMES = {
    "npy": "a NumPy .npy array",
    "npz": "a zip archive (.npz)",
    "parquet": "a Parquet file",
    "text": "a text file",
}
_ID_NAMES = {"id", "ids", "idx", "index", "key", "row", "rowid", "row_id", "uid"}


def split_member(text):
    """``FILE.npz:KEY`` -> (Path(FILE.npz), KEY); other names -> (Path, None)."""
    head, sep, key = text.rpartition(":")
    if sep and head.lower().endswith(".npz") and key:
        return Path(head), key
    return Path(text), None


def _sniff(path):
    """What the first bytes of a file say it is: npy, npz, parquet or text."""
    with open(path, "rb") as file:
        start = file.read(8)
    for magic, kind in _MAGIC.items():
        if start.startswith(magic):
            return kind
    if b"\x00" in start:
        return "binary"
    return "text"


def _expect_kind(path, where, expected):
    kind = _sniff(path)
    if kind == expected or (expected == "text" and kind == "text"):
        return
    suffix = {"npy": ".npy", "npz": ".npz", "parquet": ".parquet"}.get(kind)
    what = _KIND_NAMES.get(kind, "a binary file of unknown type")
    wanted = _KIND_NAMES[expected] if expected != "text" else "a CSV text file"
    rename = f"; rename it to {path.stem}{suffix}" if suffix else ""
    raise UserError(f"{where} is {what}, not {wanted} as its name says{rename}.")


# ----------------------------------------------------------------- .npy data
# NumPy refuses headers over 10,000 bytes unless told otherwise, for the cost
# of parsing them; a structured array of 768 named float fields (a
# DataFrame's to_records()) has a header of 15,000. Headers are parsed as
# literals, never unpickled, so a larger bound is safe.
_MAX_HEADER_BYTES = 1 << 20


def _npy_header(stream, where, available):
    """Shape, Fortran order and dtype of an ``.npy`` stream, checked.

    ``available`` is the number of bytes the file (or archive member) holds;
    a header that claims more data than that is refused before anything is
    allocated.
    """
    try:
        version = np.lib.format.read_magic(stream)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read(stream, max_header_size=_MAX_HEADER_BYTES)
        if version == (3, 0) and dtype.names is not None:
            # Version 3.0 differs from 2.0 only by a UTF-8 header, which the
            # 2.0 reader decodes as latin-1: the field names come back garbled.
            dtype = _utf8_field_names(dtype)
    except Exception as exc:  # a damaged header breaks its parser anywhere
        raise UserError(
            f"{where} is not a readable .npy array (damaged header: {one_line(exc)})."
        ) from None
    if any(n < 0 for n in shape):
        # NumPy's parser accepts them; allocating then fails without a name.
        raise UserError(
            f"{where} is not a readable .npy array (damaged header: negative "
            f"shape {shape})."
        )
    if dtype.hasobject:
        raise UserError(
            f"{where} holds Python objects, not numbers (a pickled object array "
            "cannot be read safely)."
        )
    count = math.prod(shape)
    needed = count * dtype.itemsize
    if needed > available - stream.tell():
        raise UserError(
            f"{where} is damaged or truncated: its header announces an array of "
            f"shape {shape} ({needed:,} bytes of {dtype}), but the file holds "
            f"{max(available - stream.tell(), 0):,} bytes of data."
        )
    extra = available - stream.tell() - needed
    if extra > 0:
        # Two files concatenated, or an appender that never rewrote the
        # header: read as announced, the rows after it would be lost.
        raise UserError(
            f"{where} is damaged: its header announces an array of shape {shape} "
            f"({needed:,} bytes of {dtype}), but {extra:,} more bytes follow it; "
            "rewrite the file with numpy.save."
        )
    return shape, fortran, dtype


def _utf8_field_names(dtype):
    """``dtype`` with its field names decoded as UTF-8 instead of latin-1."""
    names = [name.encode("latin-1").decode("utf-8") for name in dtype.names]
    return np.dtype(
        {
            "names": names,
            "formats": [dtype.fields[name][0] for name in dtype.names],
            "offsets": [dtype.fields[name][1] for name in dtype.names],
            "itemsize": dtype.itemsize,
        }
    )


def _read_npy(path, where, step):
    size = path.stat().st_size
    with open(path, "rb") as file:
        shape, fortran, dtype = _npy_header(file, where, size)
    if dtype.names is not None:
        array = np.load(path, allow_pickle=False, max_header_size=_MAX_HEADER_BYTES)
        return _Structured(array, where)
    array = np.lib.format.open_memmap(path, mode="r") if math.prod(shape) else None
    if array is None:
        return _Plain(np.empty(shape, dtype=dtype), where)
    return _Plain(_copy_rows(array, step), where)


def _copy_rows(array, step):
    """A copy of a (memory-mapped) array in RAM, in row chunks, with progress."""
    if array.ndim < 2:
        return np.array(array)
    out = np.empty(array.shape, dtype=array.dtype)
    rows = max(1, _CHUNK_BYTES // max(1, array[:1].nbytes))
    step.advance(0, array.shape[0])
    for start in range(0, array.shape[0], rows):
        out[start : start + rows] = array[start : start + rows]
        step.advance(min(start + rows, array.shape[0]))
    return out


# Deflate expands data at most about 1032 times.
_MAX_DEFLATE_RATIO = 1032


def _read_member(archive, info, where, step, archive_size):
    """One ``.npy`` member of a zip archive, checked before it is allocated."""
    if info.compress_size > archive_size or (
        info.compress_type == zipfile.ZIP_STORED
        and info.file_size != info.compress_size
    ):
        raise UserError(f"{where} is damaged: the archive's directory is wrong.")
    if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 1024:
        raise UserError(
            f"{where} is damaged: it claims {info.file_size:,} bytes from "
            f"{info.compress_size:,} compressed ones."
        )
    with archive.open(info) as stream:
        shape, fortran, dtype = _npy_header(stream, where, info.file_size)
        count = math.prod(shape)
        flat = np.empty(count, dtype=dtype)
        view = memoryview(flat.view(np.uint8).reshape(-1))
        step.advance(0, max(len(view), 1))
        position = 0
        while position < len(view):
            read = stream.readinto(view[position : position + _CHUNK_BYTES])
            if not read:
                raise UserError(f"{where} is truncated (the member ends early).")
            position += read
            step.advance(position)
        # Reading to the end makes zipfile check the member's CRC.
        stream.read()
    if dtype.names is None:
        return flat.reshape(shape, order="F" if fortran else "C")
    return flat.reshape(shape)


def _read_npz(path, key, where, step):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise UserError(f"{where} is not a readable .npz archive ({exc}).") from None
    with archive:
        members = {
            info.filename[: -len(".npy")]: info
            for info in archive.infolist()
            if info.filename.endswith(".npy")
        }
        names = list(members)
        if HEADER_KEY in names:
            raise UserError(
                f"{where} is an skembed model file, not embeddings; pass it to "
                "`skembed translate`."
            )
        if key is None:
            if not names:
                raise UserError(f"{where} holds no arrays; pass a file of embeddings.")
            if len(names) != 1:
                listed = ", ".join(names[:8])
                raise UserError(
                    f"{where} holds {len(names)} arrays ({listed}); name one as "
                    f"{path}:NAME."
                )
            key = names[0]
        if key not in members:
            raise UserError(f"{where} has no array {key!r}; it holds {names}.")
        try:
            data = _read_member(
                archive,
                members[key],
                f"{where} (array {key!r})",
                step,
                path.stat().st_size,
            )
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            OSError,
            RuntimeError,  # an encrypted member
            NotImplementedError,  # a compression method zipfile lacks
        ) as exc:
            raise UserError(
                f"{where} is damaged: array {key!r} cannot be read ({one_line(exc)})."
            ) from None
    if data.dtype.names is not None:
        return _Structured(data, where)
    return _Plain(data, where)


# ------------------------------------------------------------------ columns
@dataclass
class _Column:
    """One column of a table: its label, kind and (scalar columns) values."""

    label: str
    # "float", "int", "bool", "decimal", "vector", "text", "empty" (no value);
    # "bool" and "decimal" also stand for lists of them
    kind: str
    values: object = None  # callable returning the 1-D values of a scalar column
    type: str = ""  # the Arrow type of a Parquet column, for messages


class _Table:
    """An input's columns (``columns()``) and their data (``assemble(labels)``)."""

    plain = False
    # Messages about cells that are not numbers, then about cells that are
    # missing or not finite, by column label in file order: raised by
    # check_cells for the columns read, so that others never matter.
    problems = ()

    def __init__(self, where):
        self.where = where

    def check_cells(self, labels):
        """Raise the first problem found in a cell of the columns ``labels``."""
        labels = set(labels)
        for problems in self.problems:
            for label, message in problems.items():
                if label in labels:
                    raise UserError(message)


class _Plain(_Table):
    """A plain 2-D array; its columns are called by position, from 0."""

    plain = True

    def __init__(self, array, where):
        super().__init__(where)
        self.array = array

    def columns(self):
        array = self.array
        if array.ndim != 2:
            return []
        kind = {"f": "float", "i": "int", "u": "int", "b": "bool"}.get(
            array.dtype.kind, "text"
        )
        return [
            _Column(str(j), kind, lambda j=j: array[:, j])
            for j in range(array.shape[1])
        ]

    def assemble(self, labels):
        positions = [int(label) for label in labels]
        if positions == list(range(self.array.shape[1])):
            return self.array
        if positions == list(range(positions[0], positions[-1] + 1)):
            return self.array[:, positions[0] : positions[-1] + 1]
        return self.array[:, positions]


class _Structured(_Table):
    """A NumPy structured array: its fields are the columns."""

    def __init__(self, array, where):
        super().__init__(where)
        if array.ndim != 1:
            raise UserError(
                f"{where} holds a structured array of shape {array.shape}; a table "
                "of embeddings has one record per row (1-D)."
            )
        self.array = array

    def columns(self):
        out = []
        for name in self.array.dtype.names:
            field = self.array.dtype.fields[name][0]
            kind = {"f": "float", "i": "int", "u": "int", "b": "bool"}.get(
                field.base.kind, "text"
            )
            # A field of booleans is refused as a scalar one is, whatever its
            # shape: it was taken for a vector and suggested for --columns.
            if field.shape and kind not in ("text", "bool"):
                kind = "vector"
            out.append(_Column(name, kind, lambda name=name: self.array[name]))
        return out

    def assemble(self, labels):
        if self.array.shape[0] == 0:
            # reshape(0, -1) has no answer: numpy's error named no file.
            raise UserError(f"{self.where} has no rows.")
        blocks = []
        for label in labels:
            block = self.array[label]
            blocks.append(block.reshape(block.shape[0], -1))
        dtype = np.result_type(*[block.dtype for block in blocks])
        if dtype.kind not in "fiu":
            raise UserError(f"{self.where}: the selected fields are not numeric.")
        return np.hstack(blocks) if len(blocks) > 1 else blocks[0]


class _Frame(_Table):
    """A pandas DataFrame (from CSV) or a pyarrow Table (from Parquet)."""

    def __init__(self, frame, where, arrow, *, problems=(), empty=()):
        super().__init__(where)
        self.frame = frame
        self.arrow = arrow
        self.problems = problems
        self.empty = set(empty)  # CSV columns without a value on any line

    def columns(self):
        if self.arrow:
            return self._arrow_columns()
        import pandas as pd

        out = []
        for label in self.frame.columns:
            series = self.frame[label]
            dtype = series.dtype
            if label in self.empty:
                kind = "empty"
            elif pd.api.types.is_bool_dtype(dtype):
                kind = "bool"
            elif pd.api.types.is_integer_dtype(dtype):
                kind = "int"
            elif pd.api.types.is_float_dtype(dtype):
                kind = "float"
            else:
                first = series.iloc[0] if len(series) else None
                vector = isinstance(first, list | tuple | np.ndarray)
                kind = "vector" if vector else "text"
            out.append(
                _Column(str(label), kind, lambda s=series: s.to_numpy(dtype=float))
            )
        return out

    def _arrow_columns(self):
        import pyarrow as pa

        out = []
        for field in self.frame.schema:
            kind = "text"
            if pa.types.is_floating(field.type):
                kind = "float"
            elif pa.types.is_integer(field.type):
                kind = "int"
            elif pa.types.is_boolean(field.type):
                kind = "bool"
            elif pa.types.is_decimal(field.type):
                kind = "decimal"
            elif (
                pa.types.is_list(field.type)
                or pa.types.is_large_list(field.type)
                or pa.types.is_fixed_size_list(field.type)
            ):
                value = field.type.value_type
                if pa.types.is_floating(value) or pa.types.is_integer(value):
                    kind = "vector"
                elif pa.types.is_boolean(value):
                    kind = "bool"
                elif pa.types.is_decimal(value):
                    kind = "decimal"
            column = self.frame.column(field.name)
            out.append(
                _Column(
                    field.name,
                    kind,
                    lambda c=column: c.to_numpy().astype(float, copy=False),
                    type=str(field.type),
                )
            )
        return out

    def assemble(self, labels):
        frame = (
            self.frame.select(labels) if self.arrow else self.frame.loc[:, list(labels)]
        )
        if (frame.num_rows if self.arrow else len(frame)) == 0:
            raise UserError(f"{self.where} has no data rows.")
        # float16 columns are read in float32, as from a .npy file: the
        # dataframe reader keeps float32 and float64 only, and widened the
        # rest (float16 included) to float64.
        single = self.arrow and _single_precision(frame)
        dtype = ("float32",) if single else ("float64", "float32")
        try:
            return frame_to_array(frame, dtype=dtype, input_name=self.where)
        except (ValueError, TypeError) as exc:
            row = _first_non_finite_row(frame, self.arrow)
            if row is not None:
                raise UserError(
                    f"{self.where} holds non-finite values (NaN or inf), first in "
                    f"row {row[0]} (column {row[1]!r}); remove or repair them."
                ) from None
            raise UserError(" ".join(str(exc).split())) from None


def _single_precision(table):
    """Whether every column of an Arrow table holds floats of at most 32 bits,
    as scalars or in lists (float16 or float32, which float32 holds exactly)."""
    import pyarrow as pa

    for field in table.schema:
        kind = field.type
        if (
            pa.types.is_list(kind)
            or pa.types.is_large_list(kind)
            or pa.types.is_fixed_size_list(kind)
        ):
            kind = kind.value_type
        if not (pa.types.is_floating(kind) and kind.bit_width <= 32):
            return False
    return True


def _first_non_finite_row(frame, arrow):
    """(row, column) of the first NaN or infinity in a frame, or None."""
    best = None
    names = frame.column_names if arrow else list(frame.columns)
    for name in names:
        series = frame.column(name).to_pandas() if arrow else frame[name]
        for row, cell in enumerate(series):
            try:
                finite = np.isfinite(np.asarray(cell, dtype=float)).all()
            except (TypeError, ValueError):
                break
            if not finite:
                if best is None or row < best[0]:
                    best = (row, name)
                break
    return best


def parse_columns(spec):
    """``--columns`` text -> list of items: a name, or (first, last) of a range.

    Its messages do not name the option: argparse puts the one given
    (--columns, --columns-a, ...) before them.
    """
    items = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            raise ValueError(
                f"{spec!r} has an empty name; separate names with commas and write "
                "ranges as FIRST..LAST (e.g. embedding, or e0..e383)."
            )
        first, sep, last = item.partition("..")
        if sep and (not first or not last):
            raise ValueError(
                f"{item!r} is not a range; write FIRST..LAST "
                "(e.g. e0..e383, or 1..384 for columns by position)."
            )
        items.append((first, last) if sep else item)
    return items


def _select(columns, items, where, own_options=None, option="--columns"):
    labels = [column.label for column in columns]
    position = {label: j for j, label in enumerate(labels)}
    chosen = []
    for item in items:
        if isinstance(item, str) and item in position:
            chosen.append(position[item])
            continue
        if isinstance(item, tuple) and "..".join(item) in position:
            chosen.append(position["..".join(item)])
            continue
        ends = item if isinstance(item, tuple) else (item,)
        missing = [end for end in ends if end not in position]
        if missing:
            shared = ""
            if own_options:
                shared = (
                    "; --columns applies to every input: select the columns of "
                    f"one input alone with its own option ({own_options})"
                )
            raise UserError(
                f"{where} has no column {missing[0]!r}; its columns are "
                f"{_short(labels)}{shared}."
            )
        first, last = (position[end] for end in ends)
        if last < first:
            raise UserError(
                f"{option} {item[0]}..{item[1]}: {item[1]!r} comes before "
                f"{item[0]!r} in {where}."
            )
        chosen.extend(range(first, last + 1))
    seen = set()
    for j in chosen:
        if j in seen:
            raise UserError(f"{option} selects column {labels[j]!r} twice.")
        seen.add(j)
    return [columns[j] for j in chosen]


def _refuse_non_numbers(columns, where, option):
    """Refuse selected columns of booleans, decimals or text.

    Without this the dataframe reader took true/false values (scalars or
    lists) for 0/1 embedding values and widened decimals to float64 unasked.
    Decimals are refused rather than converted: decimal128 keeps up to 38
    digits, float64 about 16, so the conversion may round, and a decimal
    column is far more often an amount or a score than an embedding. Casting
    the column is one line for whoever knows it is safe.
    """
    for column in columns:
        name = f"column {column.label!r}"
        typed = f" (Arrow type {column.type})" if column.type else ""
        if column.kind == "bool":
            raise UserError(
                f"{where}: {name} holds booleans{typed}, not embedding vectors; "
                f"leave it out of {option}, or store it as numbers (0 and 1) if "
                "its true/false values are embedding values."
            )
        if column.kind == "decimal":
            raise UserError(
                f"{where}: {name} holds decimals{typed}, which are not read as "
                "embedding values because float64 may round them; cast it to "
                f"float64 (or float32) and write the file again, or leave it out "
                f"of {option}."
            )
        if column.kind == "text":
            raise UserError(
                f"{where}: {name} holds non-numeric values{typed or ' (text)'}, "
                f"not embedding vectors; leave it out of {option}."
            )


def _short(labels, limit=8):
    labels = [repr(label) for label in labels]
    if len(labels) > limit:
        return ", ".join(labels[: limit - 2]) + ", ..., " + labels[-1]
    return ", ".join(labels) or "none"


def _spec(labels, keep):
    """A --columns value selecting ``keep`` among ``labels`` (in file order)."""
    positions = [labels.index(label) for label in keep]
    if not positions:
        return None
    if len(positions) == 1:
        return keep[0]
    if positions == list(range(positions[0], positions[-1] + 1)):
        return f"{keep[0]}..{keep[-1]}"
    if len(keep) <= 6:
        return ",".join(keep)
    return None


def _index_like(values):
    """Whether values count 0, 1, 2, ... (or 1, 2, 3, ...) like a row index."""
    n = values.shape[0]
    if n < 3 or values[0] not in (0, 1) or values[1] != values[0] + 1:
        return False
    return bool(np.array_equal(values, np.arange(values[0], values[0] + n)))


def _whole(values):
    finite = values[np.isfinite(values)]
    return finite.size > 0 and bool(np.all(finite == np.round(finite)))


def _refuse_metadata(columns, where, *, plain, typed, option="--columns"):
    """Refuse id, index and other non-embedding columns (no --columns given).

    A column is refused when it is not numeric, when it has no value (a CSV
    column empty or NaN on every line), when its name says it is an id or an
    index, when it counts 0, 1, 2, ... like a row number, or when it
    holds integers (or only whole numbers, not all equal) next to columns of
    fractional values; in a file that stores column types (Parquet, a
    structured array) an integer column next to float columns is refused even
    if constant. The message names the first such column and the --columns
    value that selects the others. ``plain``: columns are known by position
    only.
    """
    reasons = {}
    floats = [c for c in columns if c.kind in ("float", "vector")]
    fractional = None  # whether some float column holds a fractional value

    def has_fraction():
        nonlocal fractional
        if fractional is None:
            fractional = any(c.kind == "vector" for c in floats) or any(
                not _whole(np.asarray(c.values()[:_SAMPLE_ROWS], dtype=float))
                for c in floats
            )
        return fractional

    for j, column in enumerate(columns):
        name = column.label.strip().lower()
        if column.kind in ("text", "bool"):
            what = "text" if column.kind == "text" else "true/false values"
            reasons[j] = f"holds non-numeric values ({what})"
        elif column.kind == "decimal":
            reasons[j] = f"holds decimals ({column.type})"
        elif column.kind == "empty":
            reasons[j] = "is empty or NaN on every line"
        elif not plain and (
            name in _ID_NAMES
            or name == ""
            or name.startswith("unnamed:")
            or name.startswith("__index_level_")
            or name.endswith("_id")
        ):
            reasons[j] = "is named like an id or index column"
    for j, column in enumerate(columns):
        if j in reasons or column.kind not in ("float", "int"):
            continue
        sample = np.asarray(column.values()[:_SAMPLE_ROWS], dtype=float)
        if column.kind == "float" and not _whole(sample):
            continue
        values = np.asarray(column.values(), dtype=float)
        # A NaN or an infinity is a damaged cell, not a second value: a column
        # of zeros (a dead dimension) holding one was called an id column, a
        # message that hid the value the read refuses once it is selected.
        head = values[: _SAMPLE_ROWS * 4]
        if _index_like(values):
            reasons[j] = (
                f"counts {values[0]:g}, {values[1]:g}, {values[2]:g}, ... like a "
                "row index"
            )
        elif (
            _whole(values)
            and (
                (typed and column.kind == "int")
                or np.unique(head[np.isfinite(head)]).size > 1
            )
            and has_fraction()
        ):
            what = "integers" if column.kind == "int" else "only whole numbers"
            reasons[j] = (
                f"holds {what} (an id, a label or a count?) next to columns of "
                "fractional embedding values"
            )
    if not reasons:
        return
    labels = [column.label for column in columns]
    keep = [label for j, label in enumerate(labels) if j not in reasons]
    first = min(reasons)
    name = f"column {first}" if plain else f"column {first} ({labels[first]!r})"
    others = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
    spec = _spec(labels, keep)
    if spec is not None:
        # Quoted: a suggestion pasted into a shell must select what it says.
        fix = f"select the embedding columns with {option} {shlex.quote(spec)}"
    elif keep:
        fix = f"select the embedding columns with {option}"
    else:
        fix = "no column looks like embedding values"
    if plain and spec is not None:
        fix += " (columns by position, from 0)"
    raise UserError(
        f"{where}: {name} {reasons[first]}{others}, not an embedding dimension; {fix}."
    )


# ---------------------------------------------------------------------- CSV
# A number written with digits, as pandas reads one from a cell; float()
# also takes 1_0, non-ASCII digits, nan and inf, which may be words of a
# header.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NOT_FINITE = ("nan", "inf", "infinity")


def _is_number(cell):
    """Whether a cell holds a number written with digits."""
    return _NUMBER.fullmatch(cell) is not None


def _is_not_finite(cell):
    """Whether a cell is NaN or an infinity (a number to pandas and float())."""
    return cell.lower().lstrip("+-") in _NOT_FINITE


def _first_row(path, where):
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            row = next(csv.reader(file), None)
    except UnicodeDecodeError:
        raise UserError(f"{where} is not a UTF-8 text (CSV) file.") from None
    except csv.Error as exc:
        raise UserError(f"{where}, line 1: not readable as CSV ({exc}).") from None
    if row is None:
        raise UserError(f"{where} is empty.")
    if len(row) == 1:
        # One cell holding another separator: a semicolon- or tab-separated
        # file (as spreadsheets write in many locales) read as one column,
        # whose first line would otherwise be quoted whole in the message.
        for separator, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if row[0].count(separator) >= 1:
                raise UserError(
                    f"{where}: line 1 is separated by {name}, not commas; "
                    "skembed reads comma-separated .csv files. Convert it, e.g. "
                    f"pandas.read_csv(path, sep={separator!r}).to_csv(new_path, "
                    "index=False), or save the vectors as .npy."
                )
    return [cell.strip() for cell in row]


def _has_header(cells, header, where, *, integer=False, option="--columns"):
    """Whether line 1 is a header, by the rule of ``--header``/``--no-header``.

    ``header`` is "yes", "no" or "auto". A line without any number written
    with digits is always a header (nan or inf there are names). Otherwise
    "no" reads it as data, "yes" drops it unless it is numbers only that do
    not count 0,1,...,d-1, or names among numbers that do not count columns
    (a data row, perhaps with text ids: an error, for --header holds for
    every CSV input and one saved without a header would lose a row), and
    "auto" decides only when the line is unambiguous: numbers only are data,
    except 0,1,...,d-1 or 1,2,...,d (the header pandas writes for unnamed
    columns, or one numbered from 1, or a data row?), an error;
    text among numbers that count 0,1,2,... is pandas's header of named and
    unnamed columns; text cells followed by numbers are ids of a data row
    (an error saying how to read them); other text among numbers is a typo
    in a data row, an error naming the cell.
    """
    if not any(cells):
        raise UserError(f"{where}, line 1 is empty.")
    # A comma ending the line adds an empty cell: no column (see _read_csv).
    while cells[-1] == "":
        cells = cells[:-1]
    # Without a number written with digits, the line is names, such as a
    # column called nan or inf.
    if not any(_is_number(cell) for cell in cells):
        return True
    if header == "no":
        return False
    # Among numbers, NaN and infinities are values of a data row.
    numeric = [_is_number(cell) or _is_not_finite(cell) for cell in cells]
    # 1, 2, 3, ... too for embeddings, not for a pairs file, whose first pair
    # may well be 1,2 (pandas writes 0,1 for unnamed columns).
    counts = all(numeric) and _column_numbers(
        [float(c) for c in cells], one_based=not integer
    )
    # The numbers among text cells: pandas numbers unnamed columns 0, 1, 2, ...
    counted = [float(c) for c, number in zip(cells, numeric, strict=True) if number]
    if header == "yes" and not all(numeric) and not _column_numbers(counted):
        # Names and numbers that do not count columns: a data row whose first
        # cells are ids. Dropped as a header, the file would lose that row.
        bad = numeric.index(True)
        raise UserError(
            f"{where}: --header, but line 1 holds {cells[bad]!r} (column {bad}) "
            "among its names, a number that does not count columns: a data row "
            "with text ids? " + _id_columns_fix(cells, numeric, option)
        )
    if header == "yes":
        if integer and counts:
            # In a file of row numbers, 0,1,... is as likely the first pair.
            raise UserError(
                f"{where}: --header, but line 1 is {','.join(cells)}: pandas' "
                "column numbers or the first pair? Give the file a header of "
                "names (such as a,b), or save it as .npy."
            )
        if all(numeric) and not counts:
            # --header holds for every CSV input: a file saved without one
            # would lose its first row, and every row number after it would
            # be off by one.
            raise UserError(
                f"{where}: --header, but line 1 is {','.join(cells[:3])},...: a "
                "row of numbers, not column names nor 0,1,2,...; every CSV input "
                "must have a header with --header. Save the inputs alike, or "
                "convert this one to .npy."
            )
        return True
    if all(numeric):
        if len(cells) >= 2 and counts:
            raise UserError(
                f"{where}: line 1 is {','.join(cells[:3])},...: column numbers, as "
                "pandas writes in a header, or a data row? Pass --header if it is "
                "a header, --no-header if it is data."
            )
        return False
    # Text cells (index names, maybe empty, or column names) among cells
    # numbering the unnamed columns 0, 1, 2, ...: the header pandas writes for
    # a frame with named and unnamed columns (or with its index).
    if len(counted) >= 2 and _column_numbers(counted):
        return True
    bad = numeric.index(False)
    if _leading_text(numeric):
        raise UserError(
            f"{where}, line 1 starts with {cells[bad]!r}, not a number, and goes on "
            "with numbers: a data row with text ids (a file without a header)? "
            + _id_columns_fix(cells, numeric, option)
            + " If line 1 is a header, pass --header."
        )
    raise UserError(
        f"{where}, line 1, column {bad}: {cells[bad]!r} is not a number, but other "
        "cells of the line are: a typo in a data row, or a header? Fix the cell, "
        "or pass --header if line 1 is a header."
    )


def _column_numbers(values, *, one_based=True):
    """Whether values count columns: 0, 1, 2, ... (or 1, 2, 3, ...)."""
    n = len(values)
    return values == list(range(n)) or (one_based and values == list(range(1, n + 1)))


def _leading_text(numeric):
    """Whether a line's text cells all come before its numbers (id columns)."""
    first_number = numeric.index(True)
    return first_number > 0 and all(numeric[first_number:])


# What a pairs file must be, for messages about one that is not: it has no
# option selecting its columns.
_PAIRS_LAYOUT = (
    "a pairs file holds only two columns of row numbers (row in A, row in B), "
    "with or without a header line; save those two columns alone"
)


def _id_columns_fix(cells, numeric, option="--columns"):
    """How to read a headerless CSV whose first cells are ids (``option``
    None: a file with no option selecting its columns, a pairs file)."""
    if option is None:
        return _PAIRS_LAYOUT[0].upper() + _PAIRS_LAYOUT[1:] + "."
    if not _leading_text(numeric):
        return "Fix the line, or save the file with a header of names."
    first = numeric.index(True)
    return (
        f"Pass --no-header {option} {first}..{len(cells) - 1} to read columns "
        f"{first} to {len(cells) - 1} as the embedding."
    )


def _trailing_blank_lines(path, window=1 << 16):
    """How many blank lines end a text file (its final newline aside)."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        file.seek(max(0, size - window))
        tail = file.read()
    lines = tail.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    count = 0
    for line in reversed(lines):
        if line.strip():
            break
        count += 1
    return count


def _read_csv(path, where, header, step, *, integer=False, option="--columns"):
    import pandas as pd

    _expect_kind(path, where, "text")
    cells = _first_row(path, where)
    skip = _has_header(cells, header, where, integer=integer, option=option)
    size = max(path.stat().st_size, 1)
    step.advance(0, size)
    chunks = []
    try:
        with open(path, "rb") as file:
            reader = pd.read_csv(
                file,
                header=None,
                skiprows=1 if skip else 0,
                skip_blank_lines=False,
                chunksize=2**16,
                encoding="utf-8-sig",
            )
            for chunk in reader:
                chunks.append(chunk)
                step.advance(file.tell())
    except pd.errors.EmptyDataError:
        raise UserError(f"{where} has no data rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        reason = one_line(exc)
        raise UserError(f"{where} is not a readable CSV file ({reason}).") from None
    if not chunks:
        raise UserError(f"{where} has no data rows.")
    frame = pd.concat(chunks) if len(chunks) > 1 else chunks[0]
    first_line = 2 if skip else 1
    # Blank lines read as rows of nothing, as do rows of empty cells or NaN
    # (",,," from pandas, "nan,nan" from numpy): only as many trailing rows
    # as the file has blank last lines are dropped; any other is an error.
    blank = _trailing_blank_lines(path)
    if blank:
        tail = frame.iloc[len(frame) - blank :].isna().to_numpy().all()
        frame = frame.iloc[: len(frame) - blank] if tail else frame
    empty = np.flatnonzero(frame.isna().all(axis=1).to_numpy())
    if empty.size:
        raise UserError(
            f"{where}, line {empty[0] + first_line} holds no number (it is empty, "
            "or every cell is empty or NaN); remove it or fill it in."
        )
    if frame.shape[0] == 0:
        raise UserError(f"{where} has no data rows.")
    # A comma ending every line reads as a last column without a name (or
    # beyond the header) and without a value on any line: no column at all.
    width = read = frame.shape[1]
    while (
        width > 1
        and (width > len(cells) or cells[width - 1] == "")
        and frame.iloc[:, width - 1].isna().all()
    ):
        width -= 1
    if width < read:
        frame = frame.iloc[:, :width]
        cells = cells[:width] + cells[read:]
    if skip:
        names = cells
        while len(names) > frame.shape[1] and names[-1] == "":
            names = names[:-1]  # a comma ending the header line alone
        if len(names) != frame.shape[1]:
            raise UserError(
                f"{where}: the header (line 1) names {len(names)} columns but the "
                f"data has {frame.shape[1]}."
            )
        if len(set(names)) != len(names):
            twice = next(name for name in names if names.count(name) > 1)
            raise UserError(f"{where}: the header names column {twice!r} twice.")
    else:
        names = [str(j) for j in range(frame.shape[1])]
    frame.columns = names
    # Cells that are not numbers, or missing or not finite, are an error only
    # in a column that is read (see check_cells): one that --columns leaves
    # out may hold anything, as in Parquet.
    not_numbers, not_finite = {}, {}
    text_columns, empty = set(), set()
    for position, name in enumerate(names):
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column.dtype):
            continue
        numbers = pd.to_numeric(column, errors="coerce")
        given = column.notna().to_numpy()
        bad = np.flatnonzero(numbers.isna().to_numpy() & given)
        if bad.size == np.count_nonzero(given):
            # No number at all: a column of text (labels, ids), judged with
            # the other columns.
            text_columns.add(name)
            continue
        if bad.size:
            row = bad[0]
            label = f"{name!r}" if skip else f"{position}"
            not_numbers[name] = (
                f"{where}, line {row + first_line}, column {label}: "
                f"{column.iloc[row]!r} is not a number."
            )
            continue
        frame[name] = numbers
    for position, name in enumerate(names):
        if name in text_columns or name in not_numbers:
            continue
        missing = np.flatnonzero(~np.isfinite(frame[name].to_numpy(dtype=float)))
        if missing.size:
            label = f"{name!r}" if skip else f"{position}"
            not_finite[name] = (
                f"{where}, line {missing[0] + first_line}, column {label}: the value "
                "is missing or not finite (NaN or inf)."
            )
            if len(frame) > 1 and frame[name].isna().all():
                empty.add(name)
    frame = frame.reset_index(drop=True)
    table = _Frame(
        frame, where, arrow=False, problems=(not_numbers, not_finite), empty=empty
    )
    return table, not skip


# ------------------------------------------------------------------ Parquet
def _read_parquet(path, where, step):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(
            f'reading {where} needs pyarrow: pip install "skembed[parquet]" '
            "(or pip install pyarrow)."
        ) from None
    import pyarrow as pa

    _expect_kind(path, where, "parquet")
    try:
        parquet = pq.ParquetFile(path)
        n_groups = parquet.num_row_groups
        step.advance(0, max(parquet.metadata.num_rows, 1))
        tables, rows = [], 0
        for group in range(n_groups):
            tables.append(parquet.read_row_group(group))
            rows += tables[-1].num_rows
            step.advance(rows)
        if tables:
            table = pa.concat_tables(tables)
        else:
            table = parquet.schema_arrow.empty_table()
    except (pa.ArrowException, OSError, ValueError, EOFError) as exc:
        raise UserError(
            f"{where} is not a readable Parquet file ({one_line(exc)})."
        ) from None
    names = table.column_names
    twice = [name for name in dict.fromkeys(names) if names.count(name) > 1]
    if twice:
        raise UserError(
            f"{where} names the column {twice[0]!r} twice; give its columns "
            "distinct names."
        )
    return _Frame(table, where, arrow=True)


# ---------------------------------------------------------------- read API
class _NoStep:
    def advance(self, done, total=None):
        pass

    def note(self, status):
        pass


def check_stream_columns(text, *, label="input"):
    """Refuse id, index and other non-embedding columns of a ``.npy`` file
    that will be streamed (read chunk by chunk, never whole), as
    :func:`read_embeddings` refuses them in files it reads whole.

    The file is memory-mapped: columns of fractional values are judged on
    their first rows; only a column of whole numbers is read to its end.
    """
    path, _ = split_member(text)
    where = f"{label} {text}" if label else text
    table = _Plain(np.lib.format.open_memmap(path, mode="r"), where)
    _refuse_metadata(table.columns(), where, plain=True, typed=False)


def check_input_file(path, where):
    """Refuse an input that is missing, a folder, or not a regular file.

    A pipe (``<(cat a.npy)``) or a device has no size and may never end:
    the readers need a file they can measure and read again.
    """
    if not path.exists():
        raise UserError(f"{where}: file not found.")
    if path.is_dir():
        raise UserError(f"{where} is a directory, not a file.")
    if not path.is_file():
        raise UserError(
            f"{where} is not a regular file (a pipe, a device or a socket); "
            "save its content to a file and pass that."
        )


def read_embeddings(
    text,
    *,
    label="input",
    integer=False,
    columns=None,
    header="auto",
    step=None,
    option="--columns",
    own_options=None,
):
    """Read a 2-D numeric matrix from ``.npy``, ``.npz``, ``.parquet`` or ``.csv``.

    Parameters
    ----------
    text : str
        The file, ``FILE.npz:NAME`` for one array of an archive.
    label : str
        How messages name the input ("A", "pairs file").
    integer : bool
        Read integer row indices (pair files): int64, no column checks.
    columns : list or None
        Parsed ``--columns`` items; None reads every column, refusing id,
        index and other non-embedding columns.
    header : {"auto", "yes", "no"}
        CSV header rule, see ``_has_header``.
    step : Step or None
        Progress of the read.
    option : str
        The option that selects this file's columns, as messages advise it.
    own_options : str or None
        When ``columns`` came from an option that applies to every input,
        the options of each input alone, for a message about a column this
        file lacks.

    Returns float32 when the file holds float32 (or float16), float64 otherwise,
    or int64 when ``integer``. Raises :class:`UserError` with a one-line message
    for any problem with the file or its content.
    """
    step = _NoStep() if step is None else step
    path, key = split_member(text)
    where = f"{label} {text}" if label else text
    check_input_file(path, where)
    if path.stat().st_size == 0:
        raise UserError(f"{where} is empty.")
    suffix = path.suffix.lower()
    unnamed = False  # whether a CSV file's columns are called by position
    if suffix == ".npy":
        _expect_kind(path, where, "npy")
        table = _read_npy(path, where, step)
    elif suffix == ".npz":
        _expect_kind(path, where, "npz")
        table = _read_npz(path, key, where, step)
    elif suffix == ".csv":
        table, unnamed = _read_csv(
            path, where, header, step, integer=integer, option=option
        )
    elif suffix == ".parquet":
        table = _read_parquet(path, where, step)
    else:
        raise UserError(
            f"{where}: unsupported file type {suffix or '(none)'!r}; use one of "
            f"{', '.join(EMBEDDING_SUFFIXES)}."
        )
    if table.plain:
        data = table.array
        if data.dtype.kind not in "iuf":
            raise UserError(
                f"{where} holds non-numeric data (dtype {data.dtype}); embeddings "
                "must be numbers."
            )
        if data.ndim != 2:
            raise UserError(
                f"{where} must hold a 2-D array (rows x features), got shape "
                f"{data.shape}."
            )
        if data.shape[0] == 0:
            # Before the columns are listed: a header of no rows costs no
            # data bytes, so a file of a hundred bytes can announce billions
            # of columns, and listing them took minutes or all the memory.
            raise UserError(f"{where} is empty (shape {data.shape}).")
    found = table.columns()
    if not found:
        raise UserError(f"{where} has no columns.")
    if columns is not None:
        # The option given: --columns itself when it applies to every input.
        given = "--columns" if own_options else option
        found = _select(found, columns, where, own_options, given)
        # Only the selected columns must hold finite numbers.
        table.check_cells(column.label for column in found)
        _refuse_non_numbers(found, where, given)
    elif integer:
        table.check_cells(column.label for column in found)
        text = [
            column.label
            for column in found
            if column.kind in ("text", "bool", "decimal")
        ]
        if text:
            raise UserError(
                f"{where}: column {text[0]!r} does not hold numbers; {_PAIRS_LAYOUT}."
            )
    else:
        # A column without any value is refused below, with a --columns value
        # that leaves it out.
        table.check_cells(column.label for column in found if column.kind != "empty")
        _refuse_metadata(
            found,
            where,
            plain=table.plain or unnamed,
            typed=isinstance(table, _Structured) or getattr(table, "arrow", False),
            option=option,
        )
    data = table.assemble([column.label for column in found])
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] == 0:
        raise UserError(f"{where} is empty (shape {data.shape}).")
    if data.dtype.kind not in "iuf":
        raise UserError(
            f"{where} holds non-numeric data (dtype {data.dtype}); embeddings must "
            "be numbers."
        )
    if integer:
        if data.dtype.kind == "f":
            if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
                raise UserError(f"{where} must hold integer row indices.")
        if data.dtype.kind in "fu":
            # Before the cast, which wraps 1e30 or a uint64 beyond 2**63 to a
            # negative row number that the file does not hold.
            large = data >= 2**63
            if data.dtype.kind == "f":
                large |= data < -(2**63)
            if large.any():
                value = data[large][0].item()
                shown = f"{value:g}" if isinstance(value, float) else str(value)
                raise UserError(
                    f"{where} holds the row number {shown}, beyond any file's rows."
                )
        return data.astype(np.int64)
    if data.dtype.kind == "f" and data.dtype.itemsize <= 4:
        data = data.astype(np.float32, copy=False)
    else:
        data = data.astype(np.float64, copy=False)
    finite = np.isfinite(data).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise UserError(
            f"{where} holds non-finite values (NaN or inf) in {bad.size} row(s), "
            f"first at row {bad[0]}; remove or repair them."
        )
    return data


def check_paired(A, B, a_name, b_name):
    if A.shape[0] != B.shape[0]:
        raise UserError(
            f"{a_name} has {A.shape[0]} rows but {b_name} has {B.shape[0]}; rows are "
            "paired by position, so both files need the same number of rows."
        )


def read_pairs(text, n_a, n_b, *, header="auto"):
    """Known pairs (row in A, row in B): two integer columns, no repeats."""
    pairs = read_embeddings(
        text, label="pairs file", integer=True, header=header, option=None
    )
    if pairs.shape[1] != 2:
        raise UserError(
            f"pairs file {text} has {pairs.shape[1]} columns; {_PAIRS_LAYOUT}."
        )
    for column, n, name in ((0, n_a, "A"), (1, n_b, "B")):
        outside = (pairs[:, column] < 0) | (pairs[:, column] >= n)
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise UserError(
                f"pairs file {text}, pair {row + 1} (a header line not counted): "
                f"row {pairs[row, column]} of {name} is outside [0, {n - 1}]."
            )
    _, first, counts = np.unique(pairs, axis=0, return_index=True, return_counts=True)
    if np.any(counts > 1):
        repeated = pairs[first[np.flatnonzero(counts > 1)[0]]]
        raise UserError(
            f"pairs file {text} lists the pair ({repeated[0]}, {repeated[1]}) more "
            "than once; a repeated pair would weigh twice in the fit."
        )
    return pairs


# ------------------------------------------------------------------ outputs
def input_at(path, inputs):
    """The input (``FILE.npz:NAME`` allowed) that is the file ``path``, or None."""
    path = Path(path)
    for source in inputs:
        if source is None:
            continue
        source_path = split_member(source)[0]
        if path.exists() and source_path.exists():
            same = os.path.samefile(path, source_path)
        else:
            same = path.resolve() == source_path.resolve()
        if same:
            return source
    return None


def check_output(text, suffixes, inputs, *, what, option="-o"):
    """Check an output path before any work: folder, suffix, not an input.

    ``inputs`` are the command's input file names (``FILE.npz:NAME`` allowed).
    """
    # A Path has lost its trailing separator already; only text can hold one.
    if isinstance(text, str) and text.endswith(
        tuple(s for s in (os.sep, os.altsep) if s)
    ):
        # Path() drops the separator, and a file would be written where a
        # folder was named.
        raise UserError(
            f"{option} {text} names a directory (it ends in {text[-1]}); give a "
            "file name."
        )
    path = Path(text)
    source = input_at(path, inputs)
    if source is not None:
        raise UserError(
            f"{option} {text} is also an input of this command ({source}); "
            "writing there would destroy it. Choose another output name."
        )
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        listed = ", ".join(suffixes[:-1]) + " or " if len(suffixes) > 1 else ""
        raise UserError(
            f"{option} {text}: use a {listed}{suffixes[-1]} file name for {what}, "
            f"not {suffix or 'a name without suffix'}."
        )
    if suffix == ".parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise UserError(
                f"{option} {text}: writing Parquet needs pyarrow: pip install "
                '"skembed[parquet]" (or pip install pyarrow).'
            ) from None
    if path.is_dir():
        raise UserError(f"{option} {text} is a directory; give a file name.")
    if path.exists() and not path.is_file():
        raise UserError(
            f"{option} {text} is not a regular file (a device, a pipe or a "
            "socket), which writing the output would replace; give a file name."
        )
    # Through a symbolic link the file it points to is written (its folder
    # must exist and be writable), as the atomic writer does.
    target = Path(os.path.realpath(path))
    folder = target.parent
    if not folder.exists():
        if target != Path(os.path.abspath(path)):
            raise UserError(
                f"{option} {text} links to {target}, whose folder does not exist; "
                "create it or fix the link."
            )
        raise UserError(
            f"{option} {text}: the folder {path.parent} does not exist; create it "
            "first."
        )
    if not folder.is_dir():
        raise UserError(f"{option} {text}: {folder} is not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{option} {text}: the folder {folder} is not writable.")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{option} {text} exists and is read-only.")
    return path


def write_atomically(path, write):
    """:func:`skembed._atomic.write_atomically`, a failure as a one-line error."""
    write_together([(path, write)])


def write_together(writes):
    """:func:`skembed._atomic.write_together`, a failure as a one-line error.

    The error names the file whose write failed (a full disk raises an
    OSError without a file name: the one being written is remembered).
    """
    writing = [None]

    def tracked(path, write):
        def run(file):
            writing[0] = path
            write(file)

        return run

    try:
        atomic_write_together([(path, tracked(path, write)) for path, write in writes])
    except OSError as exc:
        raise write_error(exc.filename or writing[0], exc) from None


def write_error(path, exc):
    """The UserError of a failed write (full disk, a size limit, ...)."""
    reason = exc.strerror or " ".join(str(exc).split())
    replaced = getattr(exc, "replaced", ())
    if replaced:
        # A rename failed after others succeeded: say which outputs are new.
        done = ", ".join(os.fspath(done) for done in replaced)
        return UserError(
            f"could not write {path} ({reason}) after {done} got the new results, "
            "so the outputs no longer belong together; run the command again."
        )
    return UserError(
        f"could not write {path} ({reason}); a file already there is left as it was."
    )


def _write_parquet(array, file):
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = pa.array(np.ascontiguousarray(array).reshape(-1))
    column = pa.FixedSizeListArray.from_arrays(values, array.shape[1])
    pq.write_table(pa.table({"embedding": column}), file)


def array_writer(array, text):
    """The function writing a 2-D array to a file object, as ``text`` is named.

    ``.npy``, ``.csv`` or ``.parquet``: CSV cells keep every significant
    digit (9 for float32, 17 for float64); Parquet holds one fixed-size list
    column ``embedding``.
    """
    suffix = Path(text).suffix.lower()
    if suffix == ".npy":
        return lambda file: np.save(file, array, allow_pickle=False)
    if suffix == ".csv":
        if array.dtype.kind in "iu":
            fmt = "%d"
        else:
            fmt = "%.9g" if array.dtype == np.float32 else "%.17g"
        return lambda file: np.savetxt(file, array, delimiter=",", fmt=fmt)
    if suffix == ".parquet":
        return lambda file: _write_parquet(array, file)
    raise UserError(f"output {text}: use a {', '.join(OUTPUT_SUFFIXES)} file name.")


def write_array(array, text):
    """Write a 2-D array as :func:`array_writer` says, atomically."""
    write_atomically(text, array_writer(array, text))
