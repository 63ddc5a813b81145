"""Tests for the bundled datasets."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import hashlib
import json
import re
import zipfile
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from _corpora import corpus_dir, missing
from numpy.testing import assert_allclose, assert_array_equal

from skembed.datasets import load_fortunes
from skembed.datasets._build_fortunes import select_rows

VIEW_WIDTHS = {"minilm": 384, "e5": 384, "wordllama256": 256}
N_TEXTS = 3000
N_CORPUS = 8004


def _data_file(name):
    return resources.files("skembed.datasets").joinpath("data").joinpath(name)


@pytest.fixture(scope="module")
def fortunes():
    return load_fortunes()


def test_load_fortunes_shapes_and_dtypes(fortunes):
    """Check the shapes and dtypes of every returned array."""
    assert list(fortunes.views) == list(VIEW_WIDTHS)
    for name, width in VIEW_WIDTHS.items():
        X = fortunes.views[name]
        assert X.shape == (N_TEXTS, width)
        assert X.dtype == np.float32
        assert X.flags.c_contiguous
        assert np.isfinite(X).all()
    assert fortunes.target.shape == (N_TEXTS,)
    assert fortunes.target.dtype == np.int64
    assert fortunes.texts.shape == fortunes.ids.shape == (N_TEXTS,)
    assert fortunes.corpus_rows.shape == (N_TEXTS,)
    assert fortunes.corpus_rows.dtype == np.int64
    assert all(isinstance(text, str) and text for text in fortunes.texts)
    assert isinstance(fortunes.DESCR, str) and "SHA256" in fortunes.DESCR
    assert "frame" not in fortunes


def test_load_fortunes_rows_are_unit_norm(fortunes):
    """Check that every embedding row has unit L2 norm."""
    for X in fortunes.views.values():
        assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-3)


def test_load_fortunes_labels_are_consistent(fortunes):
    """Check that label codes, names, ids and corpus rows agree."""
    target_names = list(fortunes.target_names)
    assert len(target_names) == 38
    assert target_names == sorted(set(target_names))
    assert fortunes.target.min() == 0
    assert fortunes.target.max() == len(target_names) - 1
    # Ids are "fortune:<label>:<entry>".
    labels_from_ids = [text_id.split(":")[1] for text_id in fortunes.ids]
    assert_array_equal(labels_from_ids, fortunes.target_names[fortunes.target])
    assert len(set(fortunes.ids)) == N_TEXTS
    assert np.all(np.diff(fortunes.corpus_rows) > 0)
    assert 0 <= fortunes.corpus_rows[0] and fortunes.corpus_rows[-1] < N_CORPUS
    # Stratified: every label keeps about 3000 / 8004 of its texts.
    counts = np.bincount(fortunes.target)
    assert counts.min() >= 16 and counts.max() == 113


def test_load_fortunes_views_selects_and_orders():
    """Check that views picks the models and keeps the order asked for."""
    data = load_fortunes(views=("wordllama256", "minilm"))
    assert list(data.views) == ["wordllama256", "minilm"]
    assert data.views["wordllama256"].shape == (N_TEXTS, 256)


@pytest.mark.parametrize(
    "views, match",
    [
        (["minilm", "bert"], "'bert'.* is not a bundled model"),
        (["e5", "e5"], "distinct view names"),
        ([], "non-empty list"),
    ],
)
def test_load_fortunes_rejects_bad_views(views, match):
    """Check that unknown, repeated or no view names raise a clear error."""
    with pytest.raises(ValueError, match=match):
        load_fortunes(views=views)


def test_load_fortunes_rejects_bad_parameter_types():
    """Check that a string for views or a non-boolean as_frame is rejected."""
    with pytest.raises(ValueError, match="'views' parameter"):
        load_fortunes(views="e5")
    with pytest.raises(ValueError, match="'as_frame' parameter"):
        load_fortunes(as_frame="yes")


def test_load_fortunes_as_frame_layout(fortunes):
    """Check the frame: one array-valued column per view, then text and label."""
    data = load_fortunes(as_frame=True)
    frame = data.frame
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == [*VIEW_WIDTHS, "text", "label"]
    assert frame.shape == (N_TEXTS, len(VIEW_WIDTHS) + 2)
    for name, width in VIEW_WIDTHS.items():
        cell = frame[name].iloc[0]
        assert isinstance(cell, np.ndarray)
        assert cell.shape == (width,) and cell.dtype == np.float32
        assert_array_equal(np.vstack(frame[name].to_numpy()), fortunes.views[name])
    assert_array_equal(frame["text"].to_numpy(dtype=object), fortunes.texts)
    assert isinstance(frame["label"].dtype, pd.CategoricalDtype)
    assert list(frame["label"].cat.categories) == list(fortunes.target_names)
    assert_array_equal(frame["label"].cat.codes.to_numpy(), fortunes.target)


def test_load_fortunes_returns_fresh_arrays():
    """Check that changing returned arrays does not change a later load."""
    first = load_fortunes()
    first.views["e5"][:] = 0.0
    first.target[:] = 0
    second = load_fortunes()
    assert_allclose(np.linalg.norm(second.views["e5"], axis=1), 1.0, atol=1e-3)
    assert second.target.max() > 0


def test_fortunes_npz_has_no_object_arrays():
    """Check that the npz holds only plain .npy arrays, none of them objects."""
    with _data_file("fortunes.npz").open("rb") as file:
        with zipfile.ZipFile(file) as archive:
            assert all(name.endswith(".npy") for name in archive.namelist())
    with _data_file("fortunes.npz").open("rb") as file:
        with np.load(file, allow_pickle=False) as stored:
            for key in stored.files:
                assert stored[key].dtype.kind != "O", key
            for name in VIEW_WIDTHS:
                assert stored[name].dtype == np.float16


def test_fortunes_files_match_readme_and_size_limit():
    """Check the README checksum, the provenance TSV and the 8 MB budget."""
    data_dir = resources.files("skembed.datasets").joinpath("data")
    readme = _data_file("README.md").read_text(encoding="utf-8")
    npz_bytes = _data_file("fortunes.npz").read_bytes()
    listed = re.search(r"^([0-9a-f]{64})  fortunes\.npz$", readme, re.M)
    assert listed is not None
    assert hashlib.sha256(npz_bytes).hexdigest() == listed.group(1)
    total = sum(len(entry.read_bytes()) for entry in data_dir.iterdir())
    assert total < 8 * 1024 * 1024

    data = load_fortunes()
    with _data_file("fortunes_provenance.tsv").open("r", encoding="utf-8") as file:
        provenance = pd.read_csv(file, sep="\t", dtype=str)
    assert list(provenance.columns) == [
        "row",
        "corpus_row",
        "id",
        "package",
        "version",
        "file",
    ]
    assert_array_equal(provenance["row"].astype(int), np.arange(N_TEXTS))
    assert_array_equal(provenance["corpus_row"].astype(int), data.corpus_rows)
    assert_array_equal(provenance["id"].to_numpy(dtype=object), data.ids)
    assert_array_equal(
        provenance["file"].to_numpy(dtype=object), data.target_names[data.target]
    )
    assert set(provenance["package"]) <= {"fortunes", "fortunes-min"}


def test_select_rows_is_stratified_and_deterministic():
    """Check the subset rule: proportional quotas, fixed draws, sorted rows."""
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    labels = [labels[(7 * i) % 100] for i in range(100)]
    rows = select_rows(labels, n_texts=11, seed=3)
    assert_array_equal(rows, select_rows(labels, n_texts=11, seed=3))
    assert rows.shape == (11,) and np.all(np.diff(rows) > 0)
    kept = [labels[row] for row in rows]
    # Quotas 5.5, 3.3, 2.2: floors 5, 3, 2 and the largest remainder goes to "a".
    assert (kept.count("a"), kept.count("b"), kept.count("c")) == (6, 3, 2)
    assert not np.array_equal(rows, select_rows(labels, n_texts=11, seed=4))


def test_fortunes_rows_match_full_corpus(fortunes):
    """Check bundled rows against the full corpus, to float16 precision."""
    source = corpus_dir("fortunes")
    if not (source / "texts.jsonl").exists():
        pytest.skip(missing("fortunes", probe="texts.jsonl"))
    with open(source / "texts.jsonl", encoding="utf-8") as file:
        records = [json.loads(line) for line in file]
    rows = fortunes.corpus_rows
    labels = [record["label"] for record in records]
    assert_array_equal(select_rows(labels), rows)
    assert_array_equal([records[row]["text"] for row in rows], fortunes.texts)
    assert_array_equal([records[row]["id"] for row in rows], fortunes.ids)
    assert_array_equal(
        [labels[row] for row in rows], fortunes.target_names[fortunes.target]
    )
    for name, X in fortunes.views.items():
        full = np.load(source / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        # float16 keeps 11 significant bits: relative error <= 2**-11.
        assert_allclose(X, full[rows], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    "content", [b"PK\x03\x04 truncated", b"\x93NUMPY garbage" * 10, b"random bytes"]
)
def test_a_damaged_data_file_gives_one_clear_error(tmp_path, monkeypatch, content):
    """Check a damaged fortunes.npz says so, without advising allow_pickle."""
    import skembed.datasets._fortunes as fortunes

    damaged = tmp_path / "fortunes.npz"
    damaged.write_bytes(content)
    real = fortunes._data_file

    def data_file(name):
        return damaged if name == fortunes.FORTUNES_DATA_FILE else real(name)

    monkeypatch.setattr(fortunes, "_data_file", data_file)
    with pytest.raises(ValueError, match="is damaged: .*reinstall skembed") as caught:
        fortunes.load_fortunes()
    assert "allow_pickle" not in str(caught.value)


def test_building_the_bundled_files_reproduces_them_and_never_half_writes(
    tmp_path, monkeypatch
):
    """Check the maintainer's build: same bytes, and a failure changes nothing.

    The build wrote the archive, the table and the README in place, one
    after the other, and checked the size limit last: an interruption left
    an archive without texts or target.
    """
    from skembed.datasets import _build_fortunes

    source = corpus_dir("fortunes")
    if not (source / "texts.jsonl").exists():
        pytest.skip(missing("fortunes", probe="texts.jsonl"))
    shipped = resources.files("skembed.datasets") / "data"
    names = ["fortunes.npz", "fortunes_provenance.tsv", "README.md"]
    _build_fortunes.build(source, tmp_path)
    for name in names:
        assert (tmp_path / name).read_bytes() == (shipped / name).read_bytes()
    before = {name: (tmp_path / name).read_bytes() for name in names}

    writestr = zipfile.ZipFile.writestr
    calls = []

    def interrupted_midway(self, *args, **kwargs):
        # The third array of the archive never comes.
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return writestr(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", interrupted_midway)
    with pytest.raises(KeyboardInterrupt):
        _build_fortunes.build(source, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    assert {name: (tmp_path / name).read_bytes() for name in names} == before
    monkeypatch.undo()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_build_fortunes, "_readme", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _build_fortunes.build(source, tmp_path)
    assert {name: (tmp_path / name).read_bytes() for name in names} == before
