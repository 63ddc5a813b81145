"""Tests for skembed.translate_file: streaming translation of a stored index."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import functools
import tracemalloc

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from skembed import ProcrustesAligner, RidgeAligner, translate_file


def _aligner(seed=0, widths=(12, 8), dtype=np.float32):
    """A ridge map fitted on paired random data, and a stored index of view 0."""
    rng = np.random.default_rng(seed)
    old = rng.normal(size=(300, widths[0]))
    new = old @ rng.normal(size=(widths[0], widths[1])) + 0.1 * rng.normal(
        size=(300, widths[1])
    )
    aligner = RidgeAligner(alpha=1.0).fit([old.astype(dtype), new.astype(dtype)])
    stored = rng.normal(size=(1037, widths[0])).astype(dtype)
    return aligner, stored


class _Recorder:
    """A translate callable that records the size of every chunk it is given."""

    def __init__(self, function):
        self.function, self.sizes = function, []

    def __call__(self, X):
        self.sizes.append(X.shape[0])
        return self.function(X)


def test_npy_in_chunks_equals_the_in_memory_translate(tmp_path):
    """Check that a .npy read in several chunks gives translate of the whole array."""
    aligner, stored = _aligner()
    np.save(tmp_path / "old.npy", stored)
    translate = _Recorder(functools.partial(aligner.translate, source=0, target=1))
    summary = translate_file(
        translate, tmp_path / "old.npy", tmp_path / "new.npy", chunk_size=100
    )
    result = np.load(tmp_path / "new.npy")
    expected = aligner.translate(stored, 0, 1)
    assert result.dtype == np.float32
    assert_allclose(result, expected, rtol=1e-6, atol=1e-6)
    assert translate.sizes == [100] * 10 + [37]
    assert summary["rows"] == 1037
    assert (summary["n_features_in"], summary["n_features_out"]) == (12, 8)
    assert summary["rows_per_second"] > 0


def test_float64_and_float16_inputs(tmp_path):
    """Check float64 stays float64 and float16 is translated in float32."""
    aligner, stored = _aligner(dtype=np.float64)
    translate = functools.partial(aligner.translate, source=0, target=1)
    np.save(tmp_path / "f64.npy", stored)
    translate_file(translate, tmp_path / "f64.npy", tmp_path / "o64.npy")
    out = np.load(tmp_path / "o64.npy")
    assert out.dtype == np.float64
    assert_allclose(out, aligner.translate(stored, 0, 1), rtol=1e-12, atol=1e-12)
    np.save(tmp_path / "f16.npy", stored.astype(np.float16))
    translate_file(translate, tmp_path / "f16.npy", tmp_path / "o16.npy")
    out = np.load(tmp_path / "o16.npy")
    assert out.dtype == np.float32
    expected = aligner.translate(stored.astype(np.float16).astype(np.float32), 0, 1)
    assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_memory_stays_one_chunk(tmp_path):
    """Check that peak Python-side memory is a few chunks, not the whole file.

    A few: the chunk translated, its translation, the next chunk (read
    meanwhile) and the copy of the previous translation being written.
    """
    rng = np.random.default_rng(0)
    n_rows, width = 80_000, 64  # 20 MiB of float32
    np.save(tmp_path / "old.npy", rng.normal(size=(n_rows, width)).astype(np.float32))
    rotation = np.linalg.qr(rng.normal(size=(width, width)))[0].astype(np.float32)
    tracemalloc.start()
    try:
        translate_file(
            lambda X: X @ rotation,
            tmp_path / "old.npy",
            tmp_path / "new.npy",
            chunk_size=1000,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    file_bytes, chunk_bytes = n_rows * width * 4, 1000 * width * 4
    assert peak < file_bytes / 10
    assert peak < 6 * chunk_bytes
    out = np.load(tmp_path / "new.npy", mmap_mode="r")
    assert out.shape == (n_rows, width)


@pytest.mark.parametrize("row_group_rows", [160_000, 5_000])
@pytest.mark.parametrize("out_suffix", [".npy", ".parquet"])
def test_parquet_memory_stays_a_few_chunks(tmp_path, row_group_rows, out_suffix):
    """Check Arrow's memory while a Parquet file is translated chunk by chunk.

    With pyarrow's defaults every row group was read ahead, or a whole
    column chunk at once: Arrow held about the file (24-37 MiB of 21-30).
    """
    pa = pytest.importorskip("pyarrow", reason="Parquet files need pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n_rows, width = 160_000, 64  # 40 MiB of float32 vectors
    X = np.random.default_rng(0).normal(size=(n_rows, width)).astype(np.float32)
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), width)
    pq.write_table(
        pa.table({"id": np.arange(n_rows), "v": vectors}),
        tmp_path / "old.parquet",
        compression="none",
        row_group_size=row_group_rows,
    )
    del X, vectors
    start, peak = pa.total_allocated_bytes(), [0]

    def translate(chunk):
        # Sampled while a chunk is held: the reader's buffers are allocated.
        peak[0] = max(peak[0], pa.total_allocated_bytes() - start)
        return 2 * chunk

    translate_file(
        translate,
        tmp_path / "old.parquet",
        tmp_path / f"new{out_suffix}",
        chunk_size=1000,
    )
    file_bytes = n_rows * width * 4
    assert peak[0] < file_bytes / 3
    if out_suffix == ".npy":
        assert np.load(tmp_path / "new.npy", mmap_mode="r").shape == (n_rows, width)
    else:
        table = pq.read_table(tmp_path / "new.parquet")
        assert table.column_names == ["id", "v"]
        assert table.num_rows == n_rows


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_translate_may_reuse_its_output_and_keep_its_input(
    tmp_path, monkeypatch, suffix
):
    """Check that chunks are written while the next is translated, safely.

    The translation returns one buffer it overwrites at every call, and the
    writer is slowed down so that the next call happens before the previous
    chunk is written: the output must still be the translation of every row,
    and the chunks the translation kept must still be the input's rows.
    """
    if suffix == ".parquet":
        pytest.importorskip("pyarrow", reason="Parquet files need pyarrow")
    import time

    import skembed._stream as stream

    def slowed(write):
        def slow_write(self, vectors, batch):
            time.sleep(0.02)
            write(self, vectors, batch)

        return slow_write

    for writer in (stream._NpyWriter, stream._ParquetWriter):
        monkeypatch.setattr(writer, "write", slowed(writer.write))
    rng = np.random.default_rng(0)
    stored = rng.normal(size=(1000, 6)).astype(np.float32)
    np.save(tmp_path / "old.npy", stored)
    buffer = np.empty((100, 6), dtype=np.float32)
    kept = []

    def translate(X):
        kept.append(X)
        np.multiply(X, 2, out=buffer[: len(X)])
        return buffer[: len(X)]

    translate_file(
        translate, tmp_path / "old.npy", tmp_path / f"new{suffix}", chunk_size=100
    )
    if suffix == ".npy":
        written = np.load(tmp_path / "new.npy")
    else:
        import pyarrow.parquet as pq

        column = pq.read_table(tmp_path / "new.parquet").column("embedding")
        written = np.array(column.to_pylist(), dtype=np.float32)
    assert_array_equal(written, 2 * stored)
    assert_array_equal(np.concatenate(kept), stored)


def test_parquet_in_chunks_keeps_other_columns(tmp_path):
    """Check Parquet in and out: vectors translated, ids kept, order kept."""
    pa = pytest.importorskip("pyarrow", reason="Parquet files need pyarrow")
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet files need pyarrow")
    aligner, stored = _aligner()
    ids = [f"doc{i}" for i in range(len(stored))]
    vectors = pa.array(list(stored), type=pa.list_(pa.float32()))
    table = pa.table({"id": ids, "vector": vectors})
    pq.write_table(table, tmp_path / "old.parquet", row_group_size=250)
    translate = _Recorder(functools.partial(aligner.translate, source=0, target=1))
    translate_file(
        translate,
        tmp_path / "old.parquet",
        tmp_path / "new.parquet",
        chunk_size=128,
        output_column="vector_new",
    )
    assert len(translate.sizes) > 1 and max(translate.sizes) <= 128
    result = pq.read_table(tmp_path / "new.parquet")
    assert result.column_names == ["id", "vector_new"]
    assert result.column("id").to_pylist() == ids
    got = np.asarray(result.column("vector_new").to_pylist(), dtype=np.float32)
    assert_allclose(got, aligner.translate(stored, 0, 1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("output_column", [None, "vec"])
def test_parquet_output_describes_its_columns_to_pandas(tmp_path, output_column):
    """Check the pandas description that a Parquet output keeps.

    A file written by pandas describes its columns and index in its schema
    metadata. The output kept the input's description as it was: with
    output_column it named the vector column the output no longer has, and
    the input's value type. The index it describes is kept either way.
    """
    pytest.importorskip("pyarrow", reason="Parquet files need pyarrow")
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet files need pyarrow")
    import json

    import pandas as pd

    frame = pd.DataFrame(
        {"id": [10, 11, 12], "embedding": list(np.eye(3, dtype=np.float32))},
        index=pd.Index(["a", "b", "c"], name="key"),
    )
    frame.to_parquet(tmp_path / "old.parquet")
    translate_file(
        lambda X: np.hstack([X, X]).astype(np.float64),
        tmp_path / "old.parquet",
        tmp_path / "new.parquet",
        output_column=output_column,
    )
    name = output_column or "embedding"
    metadata = pq.read_schema(tmp_path / "new.parquet").metadata
    described = json.loads(metadata[b"pandas"])["columns"]
    assert [c["name"] for c in described] == ["id", name, "key"]
    assert [c["field_name"] for c in described] == ["id", name, "key"]
    assert described[1]["pandas_type"] == "list[float64]"
    read = pd.read_parquet(tmp_path / "new.parquet")
    assert list(read.columns) == ["id", name]
    assert read.index.name == "key" and list(read.index) == ["a", "b", "c"]
    assert_array_equal(np.stack(read[name]), np.hstack([np.eye(3), np.eye(3)]))


def test_npy_to_parquet_and_parquet_to_npy(tmp_path):
    """Check the two mixed directions give the same rows."""
    pytest.importorskip("pyarrow", reason="Parquet files need pyarrow")
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet files need pyarrow")
    aligner, stored = _aligner()
    translate = functools.partial(aligner.translate, source=0, target=1)
    np.save(tmp_path / "old.npy", stored)
    translate_file(translate, tmp_path / "old.npy", tmp_path / "mid.parquet")
    table = pq.read_table(tmp_path / "mid.parquet")
    assert table.column_names == ["embedding"]
    # Identity through Parquet back to .npy: the stored rows come back exactly.
    translate_file(lambda X: X, tmp_path / "mid.parquet", tmp_path / "back.npy")
    assert_array_equal(np.load(tmp_path / "back.npy"), aligner.translate(stored, 0, 1))


def test_failure_leaves_no_partial_output(tmp_path):
    """Check that an error mid-way keeps the old output and removes the temporary."""
    _, stored = _aligner()
    np.save(tmp_path / "old.npy", stored)
    np.save(tmp_path / "new.npy", np.zeros((2, 2)))
    calls = []

    def failing(X):
        calls.append(len(X))
        if len(calls) == 3:
            raise RuntimeError("model server went away")
        return X

    with pytest.raises(RuntimeError, match="went away"):
        translate_file(
            failing, tmp_path / "old.npy", tmp_path / "new.npy", chunk_size=50
        )
    assert_array_equal(np.load(tmp_path / "new.npy"), np.zeros((2, 2)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.npy", "old.npy"]


@pytest.mark.parametrize("chunk", [1, 3, 21])
def test_a_failed_write_is_raised_and_leaves_no_partial_output(
    tmp_path, monkeypatch, chunk
):
    """Check that an error of the writing thread (a full disk) reaches the
    caller, whether it comes from the first, a middle or the last chunk,
    and that the old output is kept and the temporary removed."""
    import errno

    import skembed._stream as stream

    _, stored = _aligner()
    np.save(tmp_path / "old.npy", stored)
    np.save(tmp_path / "new.npy", np.zeros((2, 2)))
    write, calls = stream._NpyWriter.write, []

    def full_disk(self, vectors, batch):
        calls.append(len(vectors))
        if len(calls) == chunk:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, vectors, batch)

    monkeypatch.setattr(stream._NpyWriter, "write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        translate_file(
            lambda X: X, tmp_path / "old.npy", tmp_path / "new.npy", chunk_size=50
        )
    assert len(calls) == chunk
    assert_array_equal(np.load(tmp_path / "new.npy"), np.zeros((2, 2)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.npy", "old.npy"]


def test_replaced_output_keeps_its_permissions(tmp_path):
    """Check that a translated file replacing another keeps its mode bits."""
    aligner, stored = _aligner()
    np.save(tmp_path / "old.npy", stored)
    np.save(tmp_path / "new.npy", np.zeros((2, 2)))
    (tmp_path / "new.npy").chmod(0o600)
    translate = functools.partial(aligner.translate, source=0, target=1)
    translate_file(translate, tmp_path / "old.npy", tmp_path / "new.npy")
    assert (tmp_path / "new.npy").stat().st_mode & 0o777 == 0o600
    assert_allclose(np.load(tmp_path / "new.npy"), translate(stored), atol=1e-6)


def test_output_column_must_not_replace_another_column(tmp_path):
    """Check that the translated column cannot silently overwrite, e.g., the ids."""
    pa = pytest.importorskip("pyarrow", reason="Parquet files need pyarrow")
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet files need pyarrow")
    aligner, stored = _aligner()
    vectors = pa.array(list(stored), type=pa.list_(pa.float32()))
    ids = [f"doc{i}" for i in range(len(stored))]
    pq.write_table(pa.table({"id": ids, "vector": vectors}), tmp_path / "in.parquet")
    translate = functools.partial(aligner.translate, source=0, target=1)
    with pytest.raises(ValueError, match="output_column='id' is a column"):
        translate_file(
            translate,
            tmp_path / "in.parquet",
            tmp_path / "out.parquet",
            output_column="id",
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]
    # Naming the vector column itself replaces it, as without output_column.
    translate_file(
        translate,
        tmp_path / "in.parquet",
        tmp_path / "out.parquet",
        output_column="vector",
    )
    result = pq.read_table(tmp_path / "out.parquet")
    assert result.column_names == ["id", "vector"]
    assert result.column("id").to_pylist() == ids


def test_progress_shows_rate_and_eta(tmp_path, capsys):
    """Check the progress line: rows done, rate and ETA on stderr."""
    _, stored = _aligner()
    np.save(tmp_path / "old.npy", stored)
    translate_file(
        lambda X: X, tmp_path / "old.npy", tmp_path / "new.npy", progress=True
    )
    err = capsys.readouterr().err
    assert "1,037/1,037 rows (100%)" in err
    assert "rows/s" in err and "ETA" in err
    translate_file(lambda X: X, tmp_path / "old.npy", tmp_path / "quiet.npy")
    assert capsys.readouterr().err == ""


def test_works_with_a_procrustes_aligner_by_view_name(tmp_path):
    """Check named views: the aligner's translate by name, as the docs show it."""
    rng = np.random.default_rng(1)
    old = rng.normal(size=(200, 6)).astype(np.float32)
    new = old @ np.linalg.qr(rng.normal(size=(6, 6)))[0].astype(np.float32)
    aligner = ProcrustesAligner(views={"old": slice(0, 6), "new": slice(6, 12)})
    aligner.fit(np.hstack([old, new]))
    np.save(tmp_path / "old.npy", old)
    translate = functools.partial(aligner.translate, source="old", target="new")
    translate_file(translate, tmp_path / "old.npy", tmp_path / "new.npy")
    assert_allclose(np.load(tmp_path / "new.npy"), new, atol=1e-4)


@pytest.mark.parametrize(
    "setup, kwargs, error, match",
    [
        ("npy", {"output": "out.csv"}, ValueError, "unsupported suffix '.csv'"),
        ("none", {}, FileNotFoundError, "file not found"),
        ("npy", {"output": "old.npy"}, ValueError, "output is the input file"),
        ("npy", {"column": "vector"}, ValueError, "the input is a .npy file"),
        ("npy", {"output_column": "v"}, ValueError, "the output is .npy"),
        ("1d", {}, ValueError, "needs a 2-D float array"),
        ("int", {}, ValueError, "needs a 2-D float array"),
        ("npy", {"translate": lambda X: X[:-1]}, ValueError, "one row per input"),
        ("npy", {"translate": lambda X: X[:, :0]}, ValueError, "without a column"),
        ("npy", {"translate": lambda X: X.astype(int)}, TypeError, "floating-point"),
        ("empty", {}, ValueError, "is not a numeric .npy array"),
        ("npz", {}, ValueError, "is a .npz archive, not a .npy array"),
        ("csv", {}, ValueError, r"array \(it is not a .npy file; save the vectors"),
        ("object", {}, ValueError, r"array \(it holds Python objects; save numeric"),
        ("npy", {"output": "missing/new.npy"}, FileNotFoundError, "missing.new\\.npy'"),
    ],
)
def test_bad_input_is_refused(tmp_path, setup, kwargs, error, match):
    """Check clear errors for bad files, arguments and translate callables."""
    arrays = {
        "npy": np.ones((5, 3), dtype=np.float32),
        "1d": np.ones(5),
        "int": np.ones((5, 3), dtype=np.int64),
    }
    if setup in arrays:
        np.save(tmp_path / "old.npy", arrays[setup])
    elif setup == "empty":
        (tmp_path / "old.npy").write_bytes(b"")
    elif setup == "csv":
        # NumPy took it for a pickle and advised allow_pickle=True.
        (tmp_path / "old.npy").write_text("1.0,2.0\n3.0,4.0\n")
    elif setup == "object":
        np.save(tmp_path / "old.npy", np.array([[1.0, "a"]], dtype=object))
    elif setup == "npz":
        # np.load reads an archive whatever its name: it used to fail with an
        # AttributeError on the archive's missing ndim.
        with open(tmp_path / "old.npy", "wb") as file:
            np.savez(file, x=np.ones((5, 3), dtype=np.float32))
    kwargs = {"translate": lambda X: X, "output": "new.npy", **kwargs}
    translate = kwargs.pop("translate")
    output = tmp_path / kwargs.pop("output")
    with pytest.raises(error, match=match) as caught:
        translate_file(translate, tmp_path / "old.npy", output, **kwargs)
    assert "allow_pickle" not in str(caught.value)


def test_chunks_of_different_dtypes_are_refused(tmp_path):
    """Check that translate changing its output dtype between chunks is an error.

    The output's dtype is fixed by the first chunk: a later float64 chunk of
    1e39 was cast to float32 infinities, with only a RuntimeWarning.
    """
    np.save(tmp_path / "old.npy", np.ones((10, 3), dtype=np.float32))
    calls = iter([False, True])

    def translate(X):
        return X.astype(np.float64) * 1e39 if next(calls) else X

    with pytest.raises(TypeError, match="float64 values for one chunk and float32"):
        translate_file(
            translate, tmp_path / "old.npy", tmp_path / "new.npy", chunk_size=5
        )
    assert not (tmp_path / "new.npy").exists()


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_each_chunk_translate_receives_is_writable(tmp_path, suffix):
    """Check that translate may work in place on the chunk it receives.

    Parquet chunks used to be read-only views of pyarrow's buffers, unlike
    .npy ones, against the documented "an array of its own".
    """
    if suffix == ".parquet":
        pytest.importorskip("pyarrow", reason="Parquet files need pyarrow")
    stored = np.arange(60, dtype=np.float32).reshape(20, 3)
    np.save(tmp_path / "old.npy", stored)
    if suffix == ".parquet":
        translate_file(lambda X: X, tmp_path / "old.npy", tmp_path / "old.parquet")

    def halve_in_place(X):
        X /= 2
        return X

    translate_file(
        halve_in_place, tmp_path / f"old{suffix}", tmp_path / "new.npy", chunk_size=7
    )
    assert_array_equal(np.load(tmp_path / "new.npy"), stored / 2)
    assert_array_equal(np.load(tmp_path / "old.npy"), stored)


def test_ragged_chunk_widths_are_refused(tmp_path):
    """Check that translate changing its output width between chunks is an error."""
    np.save(tmp_path / "old.npy", np.ones((10, 3)))
    widths = iter([3, 2])
    with pytest.raises(ValueError, match="2 columns for one chunk and 3"):
        translate_file(
            lambda X: X[:, : next(widths)],
            tmp_path / "old.npy",
            tmp_path / "new.npy",
            chunk_size=5,
        )
    assert not (tmp_path / "new.npy").exists()


def test_bad_parquet_columns_are_refused(tmp_path):
    """Check Parquet errors: two vector columns, a non-vector, ragged, null rows."""
    pa = pytest.importorskip("pyarrow", reason="Parquet files need pyarrow")
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet files need pyarrow")
    two = pa.table({"a": [[1.0, 2.0]], "b": [[3.0, 4.0]], "id": ["x"]})
    pq.write_table(two, tmp_path / "two.parquet")
    with pytest.raises(ValueError, match="name the one to translate"):
        translate_file(lambda X: X, tmp_path / "two.parquet", tmp_path / "o.npy")
    with pytest.raises(ValueError, match="not a list of numbers"):
        translate_file(
            lambda X: X, tmp_path / "two.parquet", tmp_path / "o.npy", column="id"
        )
    ragged = pa.table({"v": [[1.0, 2.0], [3.0]]})
    pq.write_table(ragged, tmp_path / "ragged.parquet")
    with pytest.raises(ValueError, match="do not all have 2 values"):
        translate_file(lambda X: X, tmp_path / "ragged.parquet", tmp_path / "o.npy")
    # the row is counted in the file, not in the batch read
    late = pa.table({"v": [[1.0, 2.0]] * 5 + [[3.0]]})
    pq.write_table(late, tmp_path / "late.parquet")
    with pytest.raises(ValueError, match=r"row 5 has 1\)"):
        translate_file(
            lambda X: X, tmp_path / "late.parquet", tmp_path / "o.npy", chunk_size=2
        )
    nulls = pa.table({"v": pa.array([[1.0, 2.0], None], type=pa.list_(pa.float64()))})
    pq.write_table(nulls, tmp_path / "nulls.parquet")
    with pytest.raises(ValueError, match="missing"):
        translate_file(lambda X: X, tmp_path / "nulls.parquet", tmp_path / "o.npy")
    ints = pa.table({"v": [[1, 2], [3, 4]]})
    pq.write_table(ints, tmp_path / "ints.parquet")
    with pytest.raises(ValueError, match="not floating-point"):
        translate_file(lambda X: X, tmp_path / "ints.parquet", tmp_path / "o.npy")
    assert not (tmp_path / "o.npy").exists()


def test_an_empty_first_vector_is_named_by_its_row(tmp_path):
    """Check a Parquet file whose first vector alone is empty.

    The width is read from row 0: an empty vector there was reported as
    "the vectors of column 'v' are empty", though every other row had two.
    """
    pa = pytest.importorskip("pyarrow", reason="Parquet files need pyarrow")
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet files need pyarrow")
    first = pa.table({"v": pa.array([[], [1.0, 2.0]], type=pa.list_(pa.float32()))})
    pq.write_table(first, tmp_path / "first.parquet")
    with pytest.raises(ValueError, match=r"row 0 of column 'v' holds no values"):
        translate_file(lambda X: X, tmp_path / "first.parquet", tmp_path / "o.npy")
    assert not (tmp_path / "o.npy").exists()


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_a_chunk_size_beyond_the_file_reads_it_whole(tmp_path, suffix):
    """Check a chunk_size above 2**63: one chunk, not pyarrow's OverflowError."""
    if suffix == ".parquet":
        pa = pytest.importorskip("pyarrow", reason="Parquet files need pyarrow")
        pq = pytest.importorskip("pyarrow.parquet", reason="Parquet files need pyarrow")
    rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    if suffix == ".npy":
        np.save(tmp_path / "in.npy", rows)
    else:
        vectors = pa.array(list(rows), type=pa.list_(pa.float32()))
        pq.write_table(pa.table({"v": vectors}), tmp_path / "in.parquet")
    seen = []

    def double(X):
        seen.append(len(X))
        return 2 * X

    translate_file(
        double, tmp_path / f"in{suffix}", tmp_path / "o.npy", chunk_size=2**64
    )
    assert seen == [4]
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), 2 * rows)


def test_progress_to_a_callable_and_a_line_ended_on_failure(tmp_path, capsys):
    """Check progress(done, total) per chunk, and that a failure ends the line."""
    np.save(tmp_path / "in.npy", np.ones((50, 3), dtype=np.float32))
    calls = []
    translate_file(
        lambda X: X,
        tmp_path / "in.npy",
        tmp_path / "out.npy",
        chunk_size=20,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(20, 50), (40, 50), (50, 50)]
    capsys.readouterr()
    seen = []

    def fails_second(X):
        seen.append(len(X))
        if len(seen) == 2:
            raise ValueError("broken chunk")
        return X

    with pytest.raises(ValueError, match="broken chunk"):
        translate_file(
            fails_second,
            tmp_path / "in.npy",
            tmp_path / "again.npy",
            chunk_size=20,
            progress=True,
        )
    err = capsys.readouterr().err
    assert "20/50 rows" in err and err.endswith("\n")


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_each_chunk_is_handed_to_the_disk_as_it_is_written(
    tmp_path, monkeypatch, suffix
):
    """Check that the writeback of every chunk is asked for, in order, once.

    The output is synced before its rename; asking for each chunk's writeback
    as it is written (``posix_fadvise``, where it exists) spreads that work
    over the pass. The ranges asked for must cover the temporary file from
    its first byte to its last, without a gap or a repeat.
    """
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    aligner, stored = _aligner()
    np.save(tmp_path / "old.npy", stored)
    calls = []

    def advise(fd, offset, length, advice):
        calls.append((offset, length, advice))

    monkeypatch.setattr("os.posix_fadvise", advise, raising=False)
    monkeypatch.setattr("os.POSIX_FADV_DONTNEED", 4, raising=False)
    translate = functools.partial(aligner.translate, source=0, target=1)
    output = tmp_path / f"new{suffix}"
    translate_file(translate, tmp_path / "old.npy", output, chunk_size=100)
    assert len(calls) >= 2
    assert {advice for _, _, advice in calls} == {4}
    ends = np.cumsum([length for _, length, _ in calls])
    assert [offset for offset, _, _ in calls] == [0, *ends[:-1].tolist()]
    # Every byte was asked for, but the footer a Parquet writer adds when it
    # closes, after the last chunk.
    unasked = output.stat().st_size - ends[-1]
    assert unasked == 0 if suffix == ".npy" else 0 < unasked < 4096


@pytest.mark.parametrize("failure", ["refused", "absent"])
def test_writeback_advice_refused_or_absent_changes_nothing(
    tmp_path, monkeypatch, failure
):
    """Check that the output is the same where the advice fails or does not exist."""
    aligner, stored = _aligner()
    np.save(tmp_path / "old.npy", stored)
    translate = functools.partial(aligner.translate, source=0, target=1)
    translate_file(translate, tmp_path / "old.npy", tmp_path / "plain.npy")
    if failure == "refused":

        def advise(fd, offset, length, advice):
            raise OSError(22, "Invalid argument")

        monkeypatch.setattr("os.posix_fadvise", advise, raising=False)
        monkeypatch.setattr("os.POSIX_FADV_DONTNEED", 4, raising=False)
    else:
        monkeypatch.delattr("os.posix_fadvise", raising=False)
    translate_file(
        translate, tmp_path / "old.npy", tmp_path / "new.npy", chunk_size=100
    )
    assert_array_equal(np.load(tmp_path / "new.npy"), np.load(tmp_path / "plain.npy"))


def test_an_aligner_in_place_of_translate_is_told_how_to_pass_it(tmp_path):
    """Check translate_file(aligner, ...): it said only "must be a callable"."""
    aligner, stored = _aligner()
    np.save(tmp_path / "old.npy", stored)
    with pytest.raises(TypeError, match=r"functools.partial\(aligner.translate"):
        translate_file(aligner, tmp_path / "old.npy", tmp_path / "new.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.npy"]


def test_an_aligners_translate_is_written_without_a_copy(tmp_path, monkeypatch):
    """Check that the chunks of an aligner's own translate, a new array at
    every call, are written as they are, and those of another callable from
    one buffer that copies them."""
    import skembed._stream as stream

    aligner, stored = _aligner()
    np.save(tmp_path / "old.npy", stored)
    write, seen = stream._NpyWriter.write, []

    def record(self, vectors, batch):
        seen.append(vectors)
        write(self, vectors, batch)

    monkeypatch.setattr(stream._NpyWriter, "write", record)
    translate = functools.partial(aligner.translate, source=0, target=1)
    for function, copied in ((translate, False), (lambda X: translate(X), True)):
        seen.clear()
        translate_file(
            function, tmp_path / "old.npy", tmp_path / "new.npy", chunk_size=100
        )
        assert len(seen) == 11
        shared = np.shares_memory(seen[0], seen[1])
        assert shared == copied
        assert_allclose(np.load(tmp_path / "new.npy"), translate(stored), atol=1e-6)
    assert stream._returns_new_arrays(aligner.translate)
    assert not stream._returns_new_arrays(aligner.transform_view)


def test_a_translation_with_nan_writes_nothing(tmp_path):
    """Check NaN or infinity from translate stops the pass, and no file is left.

    The shape and dtype of each chunk were checked, not its values: NaN rows
    went into the new index.
    """
    source = tmp_path / "old.npy"
    np.save(source, np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32))

    def broken(rows):
        out = rows.copy()
        out[3, 1] = np.nan
        return out

    with pytest.raises(ValueError, match="translate returned NaN or infinity"):
        translate_file(broken, source, tmp_path / "new.npy", chunk_size=20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.npy"]
