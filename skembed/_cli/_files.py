"""Reading embeddings and pairs from files, and writing arrays."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from pathlib import Path

import numpy as np

from skembed._cli._common import UserError
from skembed._io import HEADER_KEY

__all__ = [
    "check_paired",
    "read_embeddings",
    "read_pairs",
    "split_member",
    "write_array",
]

SUFFIXES = (".npy", ".npz", ".parquet", ".csv")


def split_member(text):
    """``FILE.npz:KEY`` -> (Path(FILE.npz), KEY); other names -> (Path, None)."""
    head, sep, key = text.rpartition(":")
    if sep and head.lower().endswith(".npz") and key:
        return Path(head), key
    return Path(text), None


def _frame_to_array(frame, where):
    """Numeric scalar columns and/or columns of equal-length vectors -> 2-D."""
    import pandas as pd

    if frame.shape[1] == 0:
        raise UserError(f"{where} has no columns.")
    pieces = []
    for name in frame.columns:
        column = frame[name]
        first = column.iloc[0] if len(column) else None
        if column.dtype == object and isinstance(first, list | tuple | np.ndarray):
            try:
                pieces.append(np.vstack([np.asarray(cell) for cell in column]))
            except ValueError:
                raise UserError(
                    f"{where}: column {name!r} holds vectors of different lengths."
                ) from None
            continue
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(
            column
        ):
            raise UserError(
                f"{where}: column {name!r} is not numeric (dtype {column.dtype}); "
                "embeddings must be numbers."
            )
        pieces.append(column.to_numpy()[:, None])
    return np.hstack(pieces) if len(pieces) > 1 else pieces[0]


def _read_csv(path, where):
    import pandas as pd

    try:
        frame = pd.read_csv(path, header=None, low_memory=False)
    except pd.errors.EmptyDataError:
        raise UserError(f"{where} is empty.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"{where} is not a readable CSV file ({exc}).") from None
    first = frame.iloc[0].map(lambda cell: pd.to_numeric(cell, errors="coerce"))
    text_header = first.isna().any() and frame.iloc[0].notna().all()
    # pandas writes unnamed columns as the header 0, 1, 2, ...
    index_header = len(frame) > 1 and np.array_equal(
        first.to_numpy(dtype=float, na_value=np.nan), np.arange(frame.shape[1])
    )
    if text_header or index_header:
        frame = frame.iloc[1:]
    for name in frame.columns:
        try:
            frame[name] = pd.to_numeric(frame[name])
        except (ValueError, TypeError):
            raise UserError(
                f"{where}: column {name} holds non-numeric values; embeddings must "
                "be numbers."
            ) from None
    return _frame_to_array(frame, where)


def _read_parquet(path, where):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UserError(
            f'reading {where} needs pyarrow: pip install "skembed[parquet]" '
            "(or pip install pyarrow)."
        ) from None
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types
        raise UserError(f"{where} is not a readable Parquet file ({exc}).") from None
    return _frame_to_array(frame, where)


def _read_npz(path, key, where):
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise UserError(f"{where} is not a NumPy .npz archive.") from None
    with archive:
        names = archive.files
        if HEADER_KEY in names:
            raise UserError(
                f"{where} is an skembed model file, not embeddings; pass it to "
                "`skembed translate`."
            )
        if key is None:
            if len(names) != 1:
                listed = ", ".join(names[:8]) or "nothing"
                raise UserError(
                    f"{where} holds {len(names)} arrays ({listed}); name one as "
                    f"{path}:NAME."
                )
            key = names[0]
        if key not in names:
            raise UserError(f"{where} has no array {key!r}; it holds {names}.")
        try:
            return archive[key]
        except ValueError:
            raise UserError(
                f"{where}: array {key!r} holds Python objects, not numbers."
            ) from None


def read_embeddings(text, *, label="input", integer=False):
    """Read a 2-D numeric matrix from ``.npy``, ``.npz``, ``.parquet`` or ``.csv``.

    Returns float32 when the file holds float32 (or float16), float64 otherwise,
    or int64 when ``integer`` (for pair files). Raises :class:`UserError` with a
    one-line message for any problem with the file or its content.
    """
    path, key = split_member(text)
    where = f"{label} {text}" if label else text
    if not path.exists():
        raise UserError(f"{where}: file not found.")
    if path.is_dir():
        raise UserError(f"{where} is a directory, not a file.")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError:
            raise UserError(
                f"{where} is not a numeric .npy array (it holds Python objects or "
                "is damaged)."
            ) from None
        except (OSError, EOFError):
            raise UserError(f"{where} is not a readable .npy file.") from None
    elif suffix == ".npz":
        data = _read_npz(path, key, where)
    elif suffix == ".csv":
        data = _read_csv(path, where)
    elif suffix == ".parquet":
        data = _read_parquet(path, where)
    else:
        raise UserError(
            f"{where}: unsupported file type {suffix or '(none)'!r}; use one of "
            f"{', '.join(SUFFIXES)}."
        )
    data = np.asarray(data)
    if data.dtype.kind not in "iuf":
        raise UserError(
            f"{where} holds non-numeric data (dtype {data.dtype}); embeddings must "
            "be numbers."
        )
    if data.ndim != 2:
        raise UserError(
            f"{where} must hold a 2-D array (rows x features), got shape {data.shape}."
        )
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise UserError(f"{where} is empty (shape {data.shape}).")
    if integer:
        if data.dtype.kind == "f":
            if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
                raise UserError(f"{where} must hold integer row indices.")
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


def read_pairs(text, n_a, n_b):
    pairs = read_embeddings(text, label="pairs file", integer=True)
    if pairs.shape[1] != 2:
        raise UserError(
            f"pairs file {text} must have 2 columns (row in A, row in B), got "
            f"{pairs.shape[1]}."
        )
    for column, n, name in ((0, n_a, "A"), (1, n_b, "B")):
        outside = (pairs[:, column] < 0) | (pairs[:, column] >= n)
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise UserError(
                f"pairs file {text}, line {row}: row {pairs[row, column]} of {name} "
                f"is outside [0, {n - 1}]."
            )
    return pairs


def write_array(array, text):
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        with open(path, "wb") as file:
            np.save(file, array, allow_pickle=False)
    elif suffix == ".csv":
        np.savetxt(path, array, delimiter=",", fmt="%.9g")
    else:
        raise UserError(f"output {text}: use a .npy or .csv file name.")
