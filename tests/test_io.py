"""Tests for the pickle-free model files of skembed._io."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import importlib
import io
import json
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator
from sklearn.compose import make_column_selector
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skembed import (
    CCAAligner,
    ContrastiveAligner,
    EmbeddingConcatenator,
    KernelResidualAligner,
    RelativeProjector,
    ResidualMLPAligner,
    SelfLearningAligner,
)
from skembed._io import (
    HEADER_KEY,
    load_aligner,
    save_aligner,
)
from skembed._procrustes import ProcrustesAligner
from skembed._registry import ESTIMATORS as _ESTIMATORS

# Fast settings for the estimators that train iteratively or need a size.
_FAST_PARAMS = {
    "ContrastiveAligner": {"max_iter": 3, "n_components": 4, "random_state": 0},
    "RelativeProjector": {"n_anchors": 12, "random_state": 0},
    "CCAAligner": {"n_components": 4},
    "ResidualMLPAligner": {"hidden": 4, "max_iter": 5, "random_state": 0},
}
ESTIMATORS = sorted(_ESTIMATORS.items())


def _paired(seed=0, n=240, dtype=np.float64):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, 6))
    B = np.tanh(A @ rng.normal(size=(6, 5))) + 0.1 * rng.normal(size=(n, 5))
    return A.astype(dtype), B.astype(dtype)


def _fit(estimator, X):
    if type(estimator).__name__ == "SelfLearningAligner":
        pairs = np.column_stack([np.arange(40)] * 2)
        return estimator.fit(X, pairs=pairs)
    return estimator.fit(X)


def _make(cls, **params):
    return cls(**{**_FAST_PARAMS.get(cls.__name__, {}), **params})


def _round_trip(estimator, tmp_path, name="model.npz"):
    path = tmp_path / name
    save_aligner(estimator, path)
    return load_aligner(path)


def _assert_same_value(left, right, where):
    assert type(left) is type(right), where
    if isinstance(left, np.ndarray):
        assert left.dtype == right.dtype, where
        assert_array_equal(left, right, err_msg=where)
    elif isinstance(left, list | tuple):
        assert len(left) == len(right), where
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            _assert_same_value(a, b, f"{where}[{i}]")
    elif isinstance(left, dict):
        assert list(left) == list(right), where
        for key in left:
            _assert_same_value(left[key], right[key], f"{where}[{key!r}]")
    elif isinstance(left, BaseEstimator):
        _assert_same_state(left, right, where)
    elif hasattr(left, "__dict__"):
        _assert_same_value(vars(left), vars(right), where)
    elif isinstance(left, float) and np.isnan(left):
        assert np.isnan(right), where
    else:
        assert left == right, where


def _assert_same_state(left, right, where="estimator"):
    assert type(left) is type(right)
    _assert_same_value(vars(left), vars(right), where)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=[n for n, _ in ESTIMATORS])
def test_round_trip_transforms_identically(name, cls, tmp_path):
    """Check that every skembed estimator loads back with the same output."""
    A, B = _paired()
    X = np.hstack([A, B])
    estimator = _fit(_make(cls, views=[slice(0, 6), slice(6, 11)]), X)
    loaded = _round_trip(estimator, tmp_path)
    assert type(loaded) is cls
    assert repr(loaded) == repr(estimator)
    assert_array_equal(loaded.transform(X), estimator.transform(X))
    if hasattr(estimator, "transform_view"):
        for k in range(2):
            block = [A, B][k]
            assert_array_equal(
                loaded.transform_view(block, k), estimator.transform_view(block, k)
            )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=[n for n, _ in ESTIMATORS])
def test_round_trip_restores_every_attribute(name, cls, tmp_path):
    """Check that parameters and all fitted and private state come back exactly."""
    A, B = _paired(dtype=np.float32)
    estimator = _fit(_make(cls), [A, B])
    loaded = _round_trip(estimator, tmp_path)
    _assert_same_state(estimator, loaded)
    out = loaded.transform([A, B])
    assert out.dtype == np.float32
    assert_array_equal(out, estimator.transform([A, B]))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=[n for n, _ in ESTIMATORS])
def test_round_trip_translate(name, cls, tmp_path):
    """Check that translate gives the same rows after loading, where offered."""
    A, B = _paired()
    estimator = _fit(_make(cls), [A, B])
    try:
        expected = estimator.translate(B, 1, 0)
    except AttributeError:
        pytest.skip(f"{name} has no translate")
    loaded = _round_trip(estimator, tmp_path)
    assert_array_equal(loaded.translate(B, 1, 0), expected)


def test_round_trip_dataframe_with_vector_columns(tmp_path):
    """Check that a DataFrame layout (array-valued columns) is restored."""
    A, B = _paired()
    frame = pd.DataFrame({"minilm": list(A), "e5": list(B), "other": 1.0})
    aligner = ProcrustesAligner(views={"mini": "minilm", "e5": "e5"})
    aligner.fit(frame[["minilm", "e5"]])
    loaded = _round_trip(aligner, tmp_path)
    subset = frame[["minilm", "e5"]]
    assert_array_equal(loaded.transform(subset), aligner.transform(subset))
    assert_array_equal(loaded.feature_names_in_, aligner.feature_names_in_)
    assert loaded.feature_names_in_.dtype == object
    assert_array_equal(loaded.get_feature_names_out(), aligner.get_feature_names_out())
    assert loaded.translate(B, "e5", "mini").shape == A.shape


def test_round_trip_named_scalar_columns_and_index_views(tmp_path):
    """Check views given as column names, int arrays and boolean masks."""
    A, B = _paired()
    columns = [f"a{j}" for j in range(6)] + [f"b{j}" for j in range(5)]
    frame = pd.DataFrame(np.hstack([A, B]), columns=columns)
    mask = np.zeros(11, dtype=bool)
    mask[6:] = True
    for views in (
        {"a": columns[:6], "b": columns[6:]},
        [np.array([0, 2, 4, 1, 3, 5]), mask],
    ):
        aligner = ProcrustesAligner(views=views).fit(frame)
        loaded = _round_trip(aligner, tmp_path)
        _assert_same_state(aligner, loaded)
        assert_array_equal(loaded.transform(frame), aligner.transform(frame))


def test_round_trip_keeps_output_config(tmp_path):
    """Check that set_output(transform="pandas") survives a round trip."""
    A, B = _paired()
    aligner = ProcrustesAligner().set_output(transform="pandas").fit(np.hstack([A, B]))
    loaded = _round_trip(aligner, tmp_path)
    out = loaded.transform(np.hstack([A, B]))
    assert isinstance(out, pd.DataFrame)
    pd.testing.assert_frame_equal(out, aligner.transform(np.hstack([A, B])))


def test_partial_fit_continues_after_loading(tmp_path):
    """Check that the saved statistics let partial_fit continue where it stopped."""
    A, B = _paired(n=300)
    first = [A[:150], B[:150]]
    second = [A[150:], B[150:]]
    aligner = ProcrustesAligner().partial_fit(first)
    loaded = _round_trip(aligner, tmp_path)
    aligner.partial_fit(second)
    loaded.partial_fit(second)
    assert_array_equal(loaded.rotations_[1], aligner.rotations_[1])


def test_nested_estimator_parameter_round_trip(tmp_path):
    """Check that an estimator-valued parameter (SelfLearningAligner.base) is saved."""
    from skembed import SelfLearningAligner

    A, B = _paired()
    aligner = SelfLearningAligner(base=ProcrustesAligner(scale=True))
    _fit(aligner, [A, B])
    loaded = _round_trip(aligner, tmp_path)
    assert isinstance(loaded.base, ProcrustesAligner)
    assert loaded.base.scale is True
    assert_array_equal(loaded.transform([A, B]), aligner.transform([A, B]))


def test_save_writes_exactly_the_given_path(tmp_path):
    """Check that no suffix is appended and a file object works too."""
    A, B = _paired()
    aligner = ProcrustesAligner().fit([A, B])
    path = tmp_path / "model.bin"
    save_aligner(aligner, path)
    assert path.exists() and not (tmp_path / "model.bin.npz").exists()
    buffer = io.BytesIO()
    save_aligner(aligner, buffer)
    buffer.seek(0)
    assert_array_equal(
        load_aligner(buffer).transform([A, B]), aligner.transform([A, B])
    )
    assert_array_equal(
        load_aligner(str(path)).transform([A, B]), aligner.transform([A, B])
    )


def test_model_file_is_plain_arrays_and_json(tmp_path):
    """Check the format: npy members without objects, and a versioned JSON header."""
    A, B = _paired()
    path = tmp_path / "model.npz"
    save_aligner(ProcrustesAligner().fit([A, B]), path)
    with zipfile.ZipFile(path) as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
    with np.load(path, allow_pickle=False) as stored:
        for key in stored.files:
            assert stored[key].dtype != object
        header = json.loads(stored[HEADER_KEY].tobytes())
    assert header["format"] == "skembed-model"
    assert header["format_version"] == 2
    assert header["estimator"]["class"] == "ProcrustesAligner"
    assert header["estimator"]["params"]["center"] is True


def test_save_refuses_an_unfitted_estimator(tmp_path):
    """Check that saving an unfitted aligner raises NotFittedError."""
    with pytest.raises(NotFittedError):
        save_aligner(ProcrustesAligner(), tmp_path / "model.npz")


def test_save_refuses_foreign_estimators(tmp_path):
    """Check that only skembed's own classes (not subclasses) can be saved."""

    class MyAligner(ProcrustesAligner):
        pass

    X = np.hstack(_paired())
    with pytest.raises(TypeError, match="not one of skembed's estimators"):
        save_aligner(PCA(n_components=2).fit(X), tmp_path / "model.npz")
    with pytest.raises(TypeError, match="MyAligner is not one of skembed's"):
        save_aligner(MyAligner().fit(X), tmp_path / "model.npz")


def test_save_refuses_values_that_need_pickle(tmp_path):
    """Check clear errors for a callable views selector and a RandomState."""
    A, B = _paired()
    columns = [f"a{j}" for j in range(6)] + [f"b{j}" for j in range(5)]
    frame = pd.DataFrame(np.hstack([A, B]), columns=columns)
    selectors = [make_column_selector(pattern="^a"), make_column_selector(pattern="^b")]
    aligner = ProcrustesAligner(views=selectors).fit(frame)
    with pytest.raises(TypeError, match="parameter views.*callable is code"):
        save_aligner(aligner, tmp_path / "model.npz")
    relative = _ESTIMATORS.get("RelativeProjector")
    if relative is not None:
        projector = relative(n_anchors=5, random_state=np.random.RandomState(0))
        projector.fit([A, B])
        with pytest.raises(TypeError, match="random_state to an int or None"):
            save_aligner(projector, tmp_path / "model.npz")
    # A Series of weights (documented) and an Index of names: the error says
    # what to set instead, and that works.
    from skembed import EmbeddingConcatenator

    X = np.hstack([A, B])
    views = {"a": list(range(6)), "b": list(range(6, 11))}
    concat = EmbeddingConcatenator(views=views, weights=pd.Series({"a": 1.0, "b": 2.0}))
    concat.fit(X)
    with pytest.raises(TypeError, match=r"parameter weights.*dict\(series\)"):
        save_aligner(concat, tmp_path / "model.npz")
    concat.set_params(weights=dict(concat.weights))
    save_aligner(concat, tmp_path / "model.npz")
    assert_allclose(
        load_aligner(tmp_path / "model.npz").transform(X), concat.transform(X)
    )
    named = ProcrustesAligner(views=[pd.Index(columns[:6]), pd.Index(columns[6:])])
    named.fit(frame)
    with pytest.raises(TypeError, match=r"views\[0\].*index.tolist\(\)"):
        save_aligner(named, tmp_path / "model.npz")


def test_save_refuses_names_ending_in_nul(tmp_path):
    """Check a column name ending in NUL is refused, not saved without it."""
    A, B = _paired()
    columns = [f"a{j}" for j in range(6)] + [f"b{j}" for j in range(4)] + ["b4\x00"]
    aligner = ProcrustesAligner(views=[slice(0, 6), slice(6, 11)]).fit(
        pd.DataFrame(np.hstack([A, B]), columns=columns)
    )
    with pytest.raises(
        ValueError, match=r"feature_names_in_.*'b4\\x00' ends with a NUL"
    ):
        save_aligner(aligner, tmp_path / "model.npz")
    assert not (tmp_path / "model.npz").exists()
    # a NUL inside a name survives the file
    columns[-1] = "b\x004"
    aligner.fit(pd.DataFrame(np.hstack([A, B]), columns=columns))
    save_aligner(aligner, tmp_path / "model.npz")
    loaded = load_aligner(tmp_path / "model.npz")
    assert list(loaded.feature_names_in_) == columns


def _write_model_like(path, header, **arrays):
    text = json.dumps(header).encode("utf-8")
    np.savez(path, **{HEADER_KEY: np.frombuffer(text, dtype=np.uint8)}, **arrays)


def test_numpy_scalar_parameters_round_trip(tmp_path):
    """Check NumPy scalars as parameters (grids of np.logspace), old files too."""
    from skembed import RidgeAligner

    A, B = _paired()
    aligner = RidgeAligner(alpha=np.float64(2.0), rank=np.int64(2)).fit([A, B])
    path = tmp_path / "model.npz"
    loaded = _round_trip(aligner, tmp_path)
    assert loaded.alpha == 2.0 and isinstance(loaded.alpha, np.float64)
    assert loaded.rank == 2 and isinstance(loaded.rank, np.integer)
    assert_array_equal(loaded.transform([A, B]), aligner.transform([A, B]))
    # Earlier versions stored a scalar with shape (1,).
    save_aligner(aligner, path)
    with np.load(path) as stored:
        header = json.loads(stored[HEADER_KEY].tobytes())
    member = header["estimator"]["params"]["alpha"]["__scalar__"] + ".npy"

    def widen(name, data):
        if name != member:
            return data
        buffer = io.BytesIO()
        np.save(buffer, np.array([2.0]))
        return buffer.getvalue()

    old = tmp_path / "old.npz"
    _rewrite(path, old, widen)
    assert load_aligner(old).alpha == 2.0


def test_load_refuses_files_that_are_not_model_files(tmp_path):
    """Check one clear ValueError for each kind of wrong file."""
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not an skembed model file .not a NumPy"):
        load_aligner(text)
    single = tmp_path / "single.npy"
    np.save(single, np.ones((2, 2)))
    with pytest.raises(ValueError, match="single NumPy array"):
        load_aligner(single)
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.ones(3))
    with pytest.raises(ValueError, match="no __skembed_model__ entry"):
        load_aligner(plain)
    garbled = tmp_path / "garbled.npz"
    np.savez(garbled, **{HEADER_KEY: np.frombuffer(b"{not json", dtype=np.uint8)})
    with pytest.raises(ValueError, match="header is not valid JSON"):
        load_aligner(garbled)
    other = tmp_path / "other.npz"
    _write_model_like(other, {"format": "something-else", "format_version": 1})
    with pytest.raises(ValueError, match="another format"):
        load_aligner(other)
    newer = tmp_path / "newer.npz"
    _write_model_like(newer, {"format": "skembed-model", "format_version": 99})
    with pytest.raises(ValueError, match="version 99.*upgrade skembed"):
        load_aligner(newer)
    with pytest.raises(FileNotFoundError):
        load_aligner(tmp_path / "missing.npz")


def test_load_refuses_unknown_classes_and_pickled_members(tmp_path):
    """Check that a file naming other code, or holding a pickle, is refused."""
    for name in ("Pipeline", "os.system", "sklearn.decomposition.PCA"):
        path = tmp_path / "evil.npz"
        header = {
            "format": "skembed-model",
            "format_version": 1,
            "estimator": {"class": name, "params": {}, "attributes": {}},
        }
        _write_model_like(path, header)
        with pytest.raises(ValueError, match="not an skembed estimator"):
            load_aligner(path)
    path = tmp_path / "pickled.npz"
    header = {
        "format": "skembed-model",
        "format_version": 1,
        "estimator": {"class": "ProcrustesAligner", "params": {}, "attributes": {}},
    }
    _write_model_like(path, header, array0=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickled object array"):
        load_aligner(path)


def test_load_imports_only_whitelisted_modules(tmp_path, monkeypatch):
    """Check that loading imports no module at all, whatever the file names.

    Every class a model file may name is in skembed's registry, imported with
    skembed itself.
    """
    A, B = _paired()
    path = tmp_path / "model.npz"
    save_aligner(ProcrustesAligner().fit([A, B]), path)
    imported = []
    real_import = importlib.import_module

    def recording_import(name, *args, **kwargs):
        imported.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", recording_import)
    load_aligner(path)
    assert imported == []


def test_load_reports_a_damaged_file(tmp_path):
    """Check that a header referring to a missing array is a clear error."""
    path = tmp_path / "damaged.npz"
    header = {
        "format": "skembed-model",
        "format_version": 1,
        "estimator": {
            "class": "ProcrustesAligner",
            "params": {},
            "attributes": {"means_": [{"__array__": ["array7", False]}]},
        },
    }
    _write_model_like(path, header)
    with pytest.raises(ValueError, match="damaged skembed model file.*array7"):
        load_aligner(path)


MODEL_FILES = Path(__file__).resolve().parent / "data" / "model_files"
VERSIONS = sorted(
    (p.name for p in MODEL_FILES.glob("v*") if p.is_dir()), key=lambda v: int(v[1:])
)
# Estimators added after format 1 have files from the version they came in.
_ADDED_IN_VERSION = {"ResidualMLPAligner": 2, "KernelResidualAligner": 2}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", sorted(_ESTIMATORS))
def test_model_files_of_every_format_version_load(name):
    """Check that files written by every format version give the same maps.

    Files of one estimator in all versions encode one fitted model: they must
    transform bit for bit alike here, and like the outputs the writing version
    recorded (to rounding: those were computed on another machine).
    """
    results = []
    first = _ADDED_IN_VERSION.get(name, 1)
    versions = [v for v in VERSIONS if int(v[1:]) >= first]
    for version in versions:
        path = MODEL_FILES / version / f"{name}.npz"
        estimator = load_aligner(path)
        with np.load(MODEL_FILES / version / f"{name}.expected.npz") as expected:
            A, B = expected["A"], expected["B"]
            got = {"transform": estimator.transform([A, B])}
            if "transform_view_0" in expected:
                got["transform_view_0"] = estimator.transform_view(A, 0)
                got["transform_view_1"] = estimator.transform_view(B, 1)
            if "translate_1_0" in expected:
                got["translate_1_0"] = estimator.translate(B, 1, 0)
            assert set(got) == set(expected.files) - {"A", "B"}
            for key, value in got.items():
                assert_allclose(value, expected[key], rtol=1e-9, atol=1e-12)
        results.append(got)
    assert len(results) == len(versions) >= 1 and len(VERSIONS) >= 2
    for later in results[1:]:
        for key, value in results[0].items():
            assert_array_equal(later[key], value)


def test_files_before_the_wider_source_solver_have_n_iter():
    """Check that older Procrustes files load with n_iter_ of a closed form."""
    for version in VERSIONS:
        path = MODEL_FILES / version / "ProcrustesAligner.npz"
        if path.exists():
            estimator = load_aligner(path)
            assert_array_equal(
                estimator.n_iter_, np.zeros(len(estimator.n_features_per_view_))
            )
            assert estimator.n_iter_.dtype == np.int64


def test_saved_state_covers_every_fitted_attribute(tmp_path):
    """Check that each class declares all its fitted attributes, saved or not."""
    A, B = _paired()
    for name, cls in ESTIMATORS:
        estimator = _fit(_make(cls), [A, B])
        params = set(estimator.get_params(deep=False))
        fitted = set(vars(estimator)) - params
        declared = set(cls._saved_state) | set(cls._saved_optional)
        assert fitted <= declared, (name, sorted(fitted - declared))


def test_partial_fit_continues_a_format_1_model():
    """Check that statistics saved by skembed 0.1 still let partial_fit go on."""
    aligner = load_aligner(MODEL_FILES / "v1" / "ProcrustesAligner.npz")
    with np.load(MODEL_FILES / "v1" / "ProcrustesAligner.expected.npz") as expected:
        A, B = expected["A"], expected["B"]
    before = aligner._stats.n_samples_
    aligner.partial_fit([A, B])
    assert aligner._stats.n_samples_ == 2 * before
    refit = ProcrustesAligner(output_frame="reference").fit(
        [np.vstack([A, A]), np.vstack([B, B])]
    )
    assert_allclose(aligner.rotations_[1], refit.rotations_[1], atol=1e-10)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_model_files_without_sums_of_squares_continue(version):
    """Check files kept before ProcrustesAligner took sums of squares.

    It takes them (for equal widths) only to warn of a constant view; a file
    without them continues partial_fit with the statistics it kept, unchecked.
    """
    aligner = load_aligner(MODEL_FILES / version / "ProcrustesAligner.npz")
    with np.load(MODEL_FILES / version / "ProcrustesAligner.expected.npz") as expected:
        A, B = expected["A"], expected["B"]
    assert not aligner._stats.sum_of_squares
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aligner.partial_fit([A, np.full_like(B, 0.1)])
    assert not aligner._stats.sum_of_squares
    with pytest.warns(UserWarning, match=r"\['view1'\] are constant"):
        ProcrustesAligner().fit([A, np.full_like(B, 0.1)])


def test_failed_write_keeps_the_old_model(tmp_path, monkeypatch):
    """Check that a write that fails midway leaves the existing file intact."""
    A, B = _paired()
    path = tmp_path / "model.npz"
    save_aligner(ProcrustesAligner().fit([A, B]), path)
    before = path.read_bytes()

    def failing_savez(file, **members):
        file.write(b"partial")
        raise OSError(27, "File too large")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="File too large"):
        save_aligner(ProcrustesAligner(scale=True).fit([A, B]), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


@pytest.mark.slow
def test_write_under_a_file_size_limit_keeps_the_old_model(tmp_path):
    """Check the adversarial case: `ulimit -f 2` used to truncate the model."""
    resource = pytest.importorskip("resource")
    A, B = _paired(n=2000)
    path = tmp_path / "model.npz"
    save_aligner(ProcrustesAligner().fit([A, B]), path)
    before = path.read_bytes()
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "B.npy", B)
    files = [str(tmp_path / name) for name in ("A.npy", "B.npy")]
    code = (
        "import numpy as np, skembed\n"
        f"A, B = np.load({files[0]!r}), np.load({files[1]!r})\n"
        "model = skembed.ProcrustesAligner(scale=True).fit([A, B])\n"
        f"skembed.save_aligner(model, {str(path)!r})\n"
    )

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    completed = subprocess.run(
        [sys.executable, "-c", code], preexec_fn=limit, capture_output=True
    )
    assert completed.returncode != 0
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_save_without_statistics(tmp_path):
    """Check small files that transform alike and refuse to continue partial_fit."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(300, 96))
    B = A @ np.linalg.qr(rng.normal(size=(96, 96)))[0]
    aligner = ProcrustesAligner().fit([A, B])
    full, small = tmp_path / "full.npz", tmp_path / "small.npz"
    save_aligner(aligner, full)
    save_aligner(aligner, small, statistics=False)
    # At least the 96 x 96 float64 cross-product block is left out.
    assert full.stat().st_size - small.stat().st_size >= 96 * 96 * 8
    loaded = load_aligner(small)
    assert_array_equal(loaded.transform([A, B]), aligner.transform([A, B]))
    with pytest.raises(ValueError, match="saved without its statistics"):
        loaded.partial_fit([A, B])
    assert_array_equal(loaded.transform([A, B]), aligner.transform([A, B]))


def _rewrite(source, target, edit):
    """Copy a model file, passing every member's bytes through ``edit``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            new.writestr(name, edit(name, old.read(name)))


def _header_bytes(header):
    buffer = io.BytesIO()
    text = json.dumps(header).encode("utf-8")
    np.save(buffer, np.frombuffer(text, dtype=np.uint8))
    return buffer.getvalue()


@pytest.fixture
def model_file(tmp_path):
    A, B = _paired()
    path = tmp_path / "model.npz"
    save_aligner(ProcrustesAligner().fit([A, B]), path)
    with np.load(path) as stored:
        header = json.loads(stored[HEADER_KEY].tobytes())
    return path, header


def test_forged_member_header_is_refused_before_any_allocation(tmp_path, model_file):
    """Check a member claiming 1e12 elements: a clear error, not a MemoryError."""
    path, _ = model_file

    def forge(name, data):
        if name != "array0.npy":
            return data
        buffer = io.BytesIO()
        header = {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
        np.lib.format.write_array_header_1_0(buffer, header)
        return buffer.getvalue() + data[128:]

    forged = tmp_path / "forged.npz"
    _rewrite(path, forged, forge)
    with pytest.raises(ValueError, match=r"claims 8,000,000,000,000 bytes"):
        load_aligner(forged)


def test_negative_member_shape_is_damage(tmp_path, model_file):
    """Check a member whose header claims a negative shape of the right size."""
    path, _ = model_file

    def forge(name, data):
        if name != "array0.npy":
            return data
        with io.BytesIO(data) as stream:
            np.lib.format.read_magic(stream)
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
            body = data[stream.tell() :]
        buffer = io.BytesIO()
        header = {
            "descr": dtype.str,
            "fortran_order": False,
            "shape": (-1, -len(body) // dtype.itemsize),
        }
        np.lib.format.write_array_header_1_0(buffer, header)
        return buffer.getvalue() + body

    forged = tmp_path / "negative.npz"
    _rewrite(path, forged, forge)
    with pytest.raises(ValueError, match=r"damaged.*'array0' has a negative shape"):
        load_aligner(forged)


def test_damaged_members_give_one_clear_error(tmp_path, model_file):
    """Check a bad CRC and a truncated member: damaged, never "pickled"."""
    path, _ = model_file
    corrupt = tmp_path / "crc.npz"
    with zipfile.ZipFile(path) as archive:
        largest = max(archive.infolist(), key=lambda info: info.file_size)
    data = bytearray(path.read_bytes())
    position = data.find(largest.filename.encode())
    data[position + 200] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged skembed model file.*CRC"):
        load_aligner(corrupt)
    truncated = tmp_path / "truncated.npz"
    _rewrite(
        path,
        truncated,
        lambda n, d: d[: len(d) // 2] if n == largest.filename else d,
    )
    with pytest.raises(ValueError, match="damaged.*claims .* bytes .* but holds"):
        load_aligner(truncated)


def test_nested_and_malformed_headers(tmp_path, model_file):
    """Check deep nesting (RecursionError) and malformed tags are damaged files."""
    path, header = model_file
    deep = "[" * 100_000 + "]" * 100_000
    forged = tmp_path / "nested.npz"
    text = json.dumps(header, separators=(",", ":")).replace(
        '"views":null', f'"views":{deep}'
    )
    assert deep in text
    _rewrite(path, forged, lambda n, d: _raw_header(text) if n.startswith("__") else d)
    with pytest.raises(ValueError, match="nested too deeply"):
        load_aligner(forged)
    malformed = json.loads(json.dumps(header))
    malformed["estimator"]["state"]["means_"] = {"__array__": ["array1", 0, 7]}
    bad = tmp_path / "malformed.npz"
    _rewrite(
        path, bad, lambda n, d: _header_bytes(malformed) if n.startswith("__") else d
    )
    with pytest.raises(ValueError, match="__array__ entry .* is malformed"):
        load_aligner(bad)


def _raw_header(text):
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(text.encode("utf-8"), dtype=np.uint8))
    return buffer.getvalue()


def test_state_a_class_does_not_declare_is_refused(tmp_path, model_file):
    """Check that a file cannot shadow a method or add unknown attributes."""
    path, header = model_file
    forged_header = json.loads(json.dumps(header))
    forged_header["estimator"]["state"]["transform"] = "not code, but not allowed"
    forged = tmp_path / "shadow.npz"
    _rewrite(
        path,
        forged,
        lambda n, d: _header_bytes(forged_header) if n.startswith("__") else d,
    )
    with pytest.raises(ValueError, match="does not save 'transform'"):
        load_aligner(forged)


def test_edited_width_is_caught_before_use(tmp_path):
    """Check an edited integer that made get_feature_names_out exceed 3 GB."""
    A, B = _paired()
    path = tmp_path / "concat.npz"
    save_aligner(EmbeddingConcatenator().fit([A, B]), path)
    with np.load(path) as stored:
        header = json.loads(stored[HEADER_KEY].tobytes())
    header["estimator"]["state"]["n_features_per_view_"] = [6, 10**9]
    forged = tmp_path / "edited.npz"
    _rewrite(
        path, forged, lambda n, d: _header_bytes(header) if n.startswith("__") else d
    )
    with pytest.raises(ValueError, match="n_features_per_view_ .* disagree"):
        load_aligner(forged)


def test_loading_reads_only_the_declared_arrays(tmp_path, model_file):
    """Check bounded memory: an unreferenced 64 MB member is never read."""
    path, _ = model_file
    padded = tmp_path / "padded.npz"
    with (
        zipfile.ZipFile(path) as old,
        zipfile.ZipFile(padded, "w", compression=zipfile.ZIP_DEFLATED) as new,
    ):
        for name in old.namelist():
            new.writestr(name, old.read(name))
        buffer = io.BytesIO()
        np.save(buffer, np.zeros(8 * 2**20))
        new.writestr("unused.npy", buffer.getvalue())
    assert padded.stat().st_size < 2**20
    tracemalloc.start()
    load_aligner(padded)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 * 2**20


@pytest.mark.parametrize(
    "offset, value, said",
    [(10, 99, "compression method"), (8, 1, "encrypted")],
)
def test_flipped_zip_flags_are_damage(tmp_path, model_file, offset, value, said):
    """Check an unknown compression method or an encryption flag: damaged file."""
    path, _ = model_file
    data = bytearray(path.read_bytes())
    directory = data.find(b"PK\x01\x02")  # the first central directory entry
    data[directory + offset : directory + offset + 2] = struct.pack("<H", value)
    damaged = tmp_path / "flags.npz"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"damaged skembed model file.*{said}"):
        load_aligner(damaged)


def test_edited_parameters_and_state_types_are_damage(tmp_path, model_file):
    """Check an invalid parameter and a list for the view layout: damaged file."""
    path, header = model_file
    for place, name, value, said in [
        ("params", "combine", "bogus", "a parameter is invalid .*'combine'"),
        ("state", "_view_layout", 0, "AttributeError"),
    ]:
        edited = json.loads(json.dumps(header))
        edited["estimator"][place][name] = value
        forged = tmp_path / f"{name}.npz"
        header_of = _header_bytes(edited)
        _rewrite(path, forged, lambda n, d, h=header_of: h if n[:2] == "__" else d)
        with pytest.raises(ValueError, match=f"damaged skembed model file: {said}"):
            load_aligner(forged)


def test_save_through_a_symbolic_link_replaces_its_target(tmp_path):
    """Check that saving to a link writes the linked file and keeps the link."""
    A, B = _paired()
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "v1.npz"
    target.write_bytes(b"old")
    link = tmp_path / "current.npz"
    link.symlink_to(target)
    aligner = ProcrustesAligner().fit([A, B])
    save_aligner(aligner, link)
    assert link.is_symlink()
    loaded = load_aligner(target)
    assert_array_equal(loaded.transform([A, B]), aligner.transform([A, B]))
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["v1.npz"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_metadata_requests_round_trip(tmp_path):
    """Check set_fit_request(pairs=True) survives saving, with routing on or off."""
    import sklearn

    from skembed import SelfLearningAligner

    A, B = _paired(n=200)
    pairs = np.c_[np.arange(40), np.arange(40)]
    with sklearn.config_context(enable_metadata_routing=True):
        aligner = SelfLearningAligner(n_iter=3, random_state=0)
        aligner.set_fit_request(pairs=True).fit([A, B], pairs=pairs)
        loaded = _round_trip(aligner, tmp_path)
        requests = loaded._get_metadata_request()._serialize()
    assert requests == {"fit": {"pairs": True}}
    assert_array_equal(loaded.transform([A, B]), aligner.transform([A, B]))
    # Loading needs no routing; the requests are kept for when it is on.
    again = load_aligner(tmp_path / "model.npz")
    assert again._get_metadata_request()._serialize() == requests


def test_paths_of_every_kind_and_clear_errors_for_the_rest(tmp_path):
    """Check str, bytes and path-like names, and a TypeError for anything else."""
    rng = np.random.default_rng(0)
    aligner = ProcrustesAligner().fit([rng.normal(size=(20, 3))] * 2)
    for name in (str(tmp_path / "a.npz"), bytes(tmp_path / "b.npz"), tmp_path / "c"):
        save_aligner(aligner, name)
        assert_array_equal(load_aligner(name).rotations_[1], aligner.rotations_[1])
    for path in (12, None, ["model.npz"]):
        with pytest.raises(TypeError, match="path must be a file name.*writing"):
            save_aligner(aligner, path)
        with pytest.raises(TypeError, match="path must be a file name.*reading"):
            load_aligner(path)
    with pytest.raises(TypeError, match="text file object.*'wb'"):
        save_aligner(aligner, io.StringIO())
    with pytest.raises(TypeError, match="text file object.*'rb'"):
        load_aligner(io.StringIO("model"))

    with open(tmp_path / "d.npz", "wb") as file:
        save_aligner(aligner, file)
    with open(tmp_path / "d.npz", "rb") as file:
        assert_array_equal(load_aligner(file).rotations_[1], aligner.rotations_[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.npz",
        "b.npz",
        "c",
        "d.npz",
    ]


def _edited_state(tmp_path, estimator, X, name, value):
    """A model file of ``estimator`` fitted on X with state ``name`` edited."""
    return _edited_entries(tmp_path, estimator, X, _set(name, None, value))


@pytest.mark.parametrize(
    "estimator, name, value",
    [
        (ProcrustesAligner(), "means_", None),
        (CCAAligner(n_components=2), "_back_projections", None),
        (ProcrustesAligner(), "_offset", None),
        (ResidualMLPAligner(hidden=3, max_iter=2, random_state=0), "reference_", -1),
        (ProcrustesAligner(), "reference_", "0"),
        (EmbeddingConcatenator(), "weights_", None),
        (EmbeddingConcatenator(), "view_mean_squared_norms_", [1.0, 2.0]),
        (SelfLearningAligner(n_iter=2, random_state=0), "aligner_", 0),
    ],
    ids=[
        "means",
        "back_projections",
        "offset",
        "reference_out_of_range",
        "reference_string",
        "weights",
        "norms_list",
        "aligner",
    ],
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_edited_required_state_is_a_damaged_file(tmp_path, estimator, name, value):
    """Check None or a wrong type in state every file holds: refused at load.

    Such files loaded and failed later with a TypeError or AttributeError in
    transform, which the CLI reported as a bug in skembed.
    """
    edited = _edited_state(tmp_path, estimator, list(_paired()), name, value)
    with pytest.raises(ValueError, match=f"damaged skembed model file.*{name}"):
        load_aligner(edited)


def test_edited_feature_count_is_refused_before_any_allocation(tmp_path):
    """Check n_features_in_ of 1e18 in a file: a clear error, not a MemoryError."""
    A, B = _paired()
    X = np.hstack([A, B])
    edited = _edited_state(
        tmp_path, ProcrustesAligner(views=2), X, "n_features_in_", 10**18
    )
    with pytest.raises(ValueError, match="n_features_in_ disagrees with the view"):
        load_aligner(edited)


def test_an_unreadable_zip_directory_is_a_damaged_file(tmp_path, model_file):
    """Check a zip needing an unknown version: damaged, not NotImplementedError."""
    path, _ = model_file
    data = bytearray(path.read_bytes())
    # "version needed to extract" of the first central directory entry.
    central = data.find(b"PK\x01\x02")
    data[central + 6] = 0xFF
    damaged = tmp_path / "version.npz"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged skembed model file: its zip"):
        load_aligner(damaged)


def test_views_sliced_by_numpy_integers_load_back(tmp_path):
    """Check a model whose view slices come from NumPy arithmetic.

    ``np.cumsum(widths)`` gives NumPy integers; the slices were saved with
    them as NumPy scalars, and the loader refused its own file as damaged.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 7))
    bounds = np.cumsum([0, 3, 4])
    views = [slice(bounds[0], bounds[1]), slice(bounds[1], bounds[2])]
    model = ProcrustesAligner(views=views).fit(X)
    save_aligner(model, tmp_path / "m.npz")
    loaded = load_aligner(tmp_path / "m.npz")
    assert all(type(v.start) is int and type(v.stop) is int for v in loaded.views)
    assert_allclose(loaded.transform(X), model.transform(X))


@pytest.mark.parametrize("statistics", ["False", "no", None, 0.0, 1])
def test_save_aligner_statistics_must_be_a_bool(statistics):
    """Check a non-bool: 'False' kept the statistics, None or 0.0 dropped them."""
    A, B = _paired()
    aligner = ProcrustesAligner().fit([A, B])
    with pytest.raises(InvalidParameterError, match="'statistics' parameter"):
        save_aligner(aligner, io.BytesIO(), statistics=statistics)
    save_aligner(aligner, io.BytesIO(), statistics=np.bool_(False))


def _edited_entries(tmp_path, estimator, X, edit):
    """A model file of ``estimator`` fitted on X, its header state edited in place."""
    path = tmp_path / "model.npz"
    save_aligner(_fit(estimator, X), path)
    with np.load(path) as stored:
        header = json.loads(stored[HEADER_KEY].tobytes())
    edit(header["estimator"]["state"])
    edited = tmp_path / "edited.npz"
    _rewrite(
        path, edited, lambda n, d: _header_bytes(header) if n.startswith("__") else d
    )
    return edited


def _point(name, k, to, j):
    """Make entry k of ``name`` (all of it if k is None) refer to entry j of ``to``."""

    def edit(state):
        if k is None:
            state[name] = state[to][j]
        else:
            state[name][k] = state[to][j]

    return edit


def _set(name, k, value):
    def edit(state):
        if k is None:
            state[name] = value
        else:
            state[name][k] = value

    return edit


@pytest.mark.parametrize(
    "estimator, edit, match",
    [
        (KernelResidualAligner(), _point("coefs_", 1, "means_", 1), "coefs_.1. is not"),
        (KernelResidualAligner(), _point("keys_", 1, "residuals_", 1), "keys_.1. has"),
        (KernelResidualAligner(), _set("residuals_", 1, None), "keys_, residuals_"),
        (
            ResidualMLPAligner(hidden=3, max_iter=2, random_state=0),
            _set("hidden_intercepts_", 1, None),
            "hidden_weights_, hidden_intercepts_",
        ),
        (
            ResidualMLPAligner(hidden=3, max_iter=2, random_state=0),
            _point("hidden_weights_", 1, "coefs_", 1),
            "hidden_weights_, hidden_intercepts_",
        ),
        (
            ContrastiveAligner(hidden=3, n_components=2, max_iter=2, random_state=0),
            _point("hidden_weights_", 0, "means_", 0),
            "hidden_weights_.0. is not",
        ),
        (
            RelativeProjector(n_anchors=5, random_state=0),
            _point("anchor_indices_", None, "means_", 0),
            "anchor_indices_",
        ),
        (KernelResidualAligner(), _set("reference_", None, True), "reference_ True"),
    ],
    ids=[
        "coefs_1d",
        "keys_width",
        "residuals_missing",
        "hidden_intercepts_missing",
        "hidden_width",
        "contrastive_hidden_1d",
        "anchor_indices_float",
        "reference_bool",
    ],
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_edited_map_parts_are_a_damaged_file(tmp_path, estimator, edit, match):
    """Check parts of the residual, contrastive and relative maps at load.

    Edited so, files loaded and then failed in transform with an IndexError
    or TypeError, or blamed the user's data for a NaN of the file.
    """
    edited = _edited_entries(tmp_path, estimator, list(_paired()), edit)
    with pytest.raises(ValueError, match=f"damaged skembed model file.*{match}"):
        load_aligner(edited)


def test_a_nan_in_a_residual_map_is_a_damaged_file(tmp_path):
    """Check a NaN written into coefs_: it was blamed on the user's X."""
    path = tmp_path / "model.npz"
    save_aligner(_fit(KernelResidualAligner(), list(_paired())), path)
    with np.load(path) as stored:
        header = json.loads(stored[HEADER_KEY].tobytes())
    member = header["estimator"]["state"]["coefs_"][1]["__array__"][0] + ".npy"

    def poisoned(name, data):
        if name != member:
            return data
        array = np.load(io.BytesIO(data))
        array.flat[0] = np.nan
        out = io.BytesIO()
        np.save(out, array)
        return out.getvalue()

    edited = tmp_path / "edited.npz"
    _rewrite(path, edited, poisoned)
    with pytest.raises(ValueError, match=r"damaged.*coefs_\[1\] holds NaN"):
        load_aligner(edited)
