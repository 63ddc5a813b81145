"""Save and load fitted skembed estimators as portable, pickle-free files.

A fitted aligner is only matrices plus a few parameters, so it never needs a
pickle, and a pickle from a stranger runs code when it is loaded. A model file
is one NumPy ``.npz`` archive: every array of the estimator is stored as an
``.npy`` member, and one member, ``__skembed_model__``, holds a UTF-8 JSON
document with the format version, the class name, the parameters and every
other attribute, referring to the arrays by member name. Files are read back
with ``allow_pickle=False``, and only classes from a fixed list of skembed's
own estimators are reconstructed; a file never names code to import.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import dataclasses
import json
import math
import os
import uuid
import zipfile

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from skembed._registry import ESTIMATORS
from skembed._stats import CrossMoments
from skembed._version import __version__
from skembed._views import ViewLayout

__all__ = ["load_aligner", "save_aligner"]

FORMAT_NAME = "skembed-model"
FORMAT_VERSION = 2
HEADER_KEY = "__skembed_model__"

# Per-instance configuration that scikit-learn keeps on an estimator
# (set_output, set_..._request): saved with the fitted state when present.
_CONFIGURATION = ("_sklearn_output_config", "_metadata_request")

# Plain helper objects stored attribute by attribute (no estimator API).
_HELPERS = {"CrossMoments": CrossMoments}
_ARRAY_KINDS = "biufcU"
_SAVABLE = (
    "numbers, strings, None, NumPy arrays and dtypes, slices, lists, tuples, "
    "dicts and skembed estimators"
)


def _upgrade_params_from_1(cls, params):
    """Parameters of a format-1 file (skembed 0.1) as this version reads them.

    Format 1 predates ``output_frame``: its aligners returned the reference
    view's raw frame, which ``output_frame="reference"`` keeps.
    """
    if "output_frame" in cls().get_params() and "output_frame" not in params:
        params = {**params, "output_frame": "reference"}
    return params


class _Encoder:
    """Turn an estimator's state into JSON-able values plus named arrays."""

    def __init__(self, statistics=True):
        self.arrays = {}
        self.statistics = statistics
        self.layout_class = ViewLayout

    def _store(self, array, where):
        array = np.asarray(array)
        is_object = array.dtype == object
        if is_object:
            flat = array.ravel()
            if not all(isinstance(item, str) for item in flat):
                raise TypeError(
                    f"Cannot save {where}: an object array may hold only strings "
                    "in a model file."
                )
            array = array.astype(str) if flat.size else array.astype("U1")
        elif array.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(
                f"Cannot save {where}: arrays of dtype {array.dtype} are not "
                "supported; a model file holds numeric, boolean and string arrays."
            )
        key = f"array{len(self.arrays)}"
        self.arrays[key] = np.ascontiguousarray(array)
        return key, is_object

    def encode(self, value, where):
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int) and not isinstance(value, np.generic):
            return int(value)
        if isinstance(value, float) and not isinstance(value, np.generic):
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, np.generic):
            key, _ = self._store(np.asarray(value), where)
            return {"__scalar__": key}
        if isinstance(value, np.ndarray):
            key, is_object = self._store(value, where)
            return {"__array__": [key, is_object]}
        if isinstance(value, np.dtype):
            if value.kind not in _ARRAY_KINDS:
                raise TypeError(f"Cannot save {where}: dtype {value} is not numeric.")
            return {"__dtype__": value.str}
        if isinstance(value, slice):
            return {
                "__slice__": [
                    self.encode(part, f"{where}.{name}")
                    for name, part in zip(
                        ("start", "stop", "step"),
                        (value.start, value.stop, value.step),
                        strict=True,
                    )
                ]
            }
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {
                "__tuple__": [
                    self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)
                ]
            }
        if isinstance(value, dict):
            return {
                "__dict__": [
                    [self.encode(k, f"{where} key"), self.encode(v, f"{where}[{k!r}]")]
                    for k, v in value.items()
                ]
            }
        if type(value) is self.layout_class:
            return {
                "__view_layout__": {
                    field.name: self.encode(
                        getattr(value, field.name), f"{where}.{field.name}"
                    )
                    for field in dataclasses.fields(value)
                }
            }
        if isinstance(value, BaseEstimator):
            return {"__estimator__": self.estimator_state(value, where)}
        name = type(value).__name__
        if _HELPERS.get(name) is type(value):
            names = (*value._saved_layout, *value._saved_state)
            return {
                "__object__": [
                    name,
                    {k: self.encode(getattr(value, k), f"{where}.{k}") for k in names},
                ]
            }
        hint = ""
        if isinstance(value, np.random.RandomState | np.random.Generator):
            hint = " Set random_state to an int or None before saving."
        elif callable(value):
            hint = (
                " A callable is code, not data: pass the views as slices, index "
                "arrays or column names to make the estimator savable."
            )
        raise TypeError(
            f"Cannot save {where}: a {name} object cannot be stored without "
            f"pickle; a model file holds {_SAVABLE}.{hint}"
        )

    def estimator_state(self, estimator, where):
        name = type(estimator).__name__
        if ESTIMATORS.get(name) is not type(estimator):
            raise TypeError(
                f"Cannot save {where}: {name} is not one of skembed's estimators "
                f"({', '.join(sorted(ESTIMATORS))}); only those can be stored in "
                "a model file."
            )
        params = estimator.get_params(deep=False)
        fitted = any(hasattr(estimator, k) for k in estimator._saved_state)
        missing = [k for k in estimator._saved_state if not hasattr(estimator, k)]
        if fitted and missing:
            raise TypeError(
                f"Cannot save {where}: it has no {missing[0]}, which a fitted "
                f"{name} always has; fit it again."
            )
        # The declared state, plus scikit-learn's per-instance configuration,
        # in the estimator's own attribute order.
        kept = {*estimator._saved_state, *estimator._saved_optional, *_CONFIGURATION}
        state = {k: v for k, v in vars(estimator).items() if k in kept}
        if not self.statistics and "_stats" in state:
            # Kept as an explicit None, so that partial_fit knows they are missing.
            state["_stats"] = None
        return {
            "class": name,
            "params": {
                k: self.encode(v, f"{where} parameter {k}") for k, v in params.items()
            },
            "fitted": fitted,
            "state": {k: self.encode(v, f"{where}.{k}") for k, v in state.items()},
        }


class _Decoder:
    """Rebuild values written by :class:`_Encoder` from JSON and arrays."""

    def __init__(self, arrays, source, version):
        self.arrays = arrays
        self.source = source
        self.version = version
        self.layout_class = ViewLayout

    def _corrupt(self, what):
        return ValueError(f"{self.source} is a damaged skembed model file: {what}.")

    def _array(self, key):
        if not isinstance(key, str) or key not in self.arrays:
            raise self._corrupt(f"the array {key!r} is missing")
        return self.arrays[key]

    def decode(self, value):
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict) or len(value) != 1:
            raise self._corrupt(f"unexpected entry {str(value)[:60]!r}")
        ((tag, content),) = value.items()
        if tag == "__float__":
            if content not in ("nan", "inf", "-inf"):
                raise self._corrupt(f"unexpected float {content!r}")
            return float(content)
        if tag == "__scalar__":
            return self._array(content)[()]
        if tag == "__array__":
            key, is_object = content
            array = self._array(key)
            return array.astype(object) if is_object else array
        if tag == "__dtype__":
            dtype = np.dtype(str(content))
            if dtype.kind not in _ARRAY_KINDS:
                raise self._corrupt(f"unexpected dtype {content!r}")
            return dtype
        if tag == "__slice__":
            return slice(*(self.decode(part) for part in content))
        if tag == "__tuple__":
            return tuple(self.decode(v) for v in content)
        if tag == "__dict__":
            return {self.decode(k): self.decode(v) for k, v in content}
        if tag == "__view_layout__":
            names = {field.name for field in dataclasses.fields(self.layout_class)}
            if not set(content) <= names:
                raise self._corrupt("unexpected view layout fields")
            return self.layout_class(**{k: self.decode(v) for k, v in content.items()})
        if tag == "__estimator__":
            return self.estimator(content)
        if tag == "__object__":
            name, state = content
            cls = _HELPERS.get(name) if isinstance(name, str) else None
            if cls is None:
                raise self._corrupt(f"unknown helper object {name!r}")
            return self.helper(cls, {k: self.decode(v) for k, v in state.items()})
        raise self._corrupt(f"unknown entry type {tag!r}")

    def helper(self, cls, state):
        """A CrossMoments rebuilt from its saved layout and sums.

        Statistics added to the accumulator after a file was written keep the
        values of an accumulator that never asked for them.
        """
        layout = {k: state[k] for k in cls._saved_layout if k in state}
        if "n_views" not in layout:
            raise self._corrupt("statistics without their number of views")
        n_views = layout.pop("n_views")
        layout["cross"] = layout.pop("cross_pairs", None)
        layout["gram"] = layout.pop("gram_views", False)
        obj = cls(n_views, **layout)
        unknown = set(state) - set(cls._saved_layout) - set(cls._saved_state)
        if self.version > 1 and unknown:
            raise self._corrupt(f"unexpected statistics {sorted(unknown)[:3]}")
        for key in cls._saved_state:
            if key in state:
                setattr(obj, key, state[key])
        if obj._sums is not None:
            if obj._nonzero is None:
                obj._nonzero = np.zeros(n_views, dtype=np.int64)
            if obj._scale is None:
                obj._scale = [1.0] * n_views
        return obj

    def estimator(self, content):
        name = content.get("class") if isinstance(content, dict) else None
        cls = ESTIMATORS.get(name) if isinstance(name, str) else None
        if cls is None:
            known = ", ".join(sorted(ESTIMATORS))
            raise ValueError(
                f"{self.source} holds a {name!r}, which is not an skembed estimator "
                f"this installation can load (known: {known}). Upgrade skembed, or "
                "check where the file came from."
            )
        params = {k: self.decode(v) for k, v in content.get("params", {}).items()}
        if self.version == 1:
            stored = content.get("attributes", {})
            params = _upgrade_params_from_1(cls, params)
        else:
            stored = content.get("state", {})
        try:
            estimator = cls(**params)
        except TypeError as exc:
            raise ValueError(
                f"{self.source} was saved with parameters of {name} that this "
                f"version of skembed does not know ({exc}). Upgrade skembed."
            ) from None
        declared = {*cls._saved_state, *cls._saved_optional, *_CONFIGURATION}
        if self.version > 1:
            unknown = sorted(set(stored) - declared)
            if unknown:
                raise self._corrupt(
                    f"{name} does not save {', '.join(map(repr, unknown[:3]))}"
                )
        # Version 1 files held every attribute (vars); only the declared state
        # is read back. The file's order is the estimator's attribute order.
        for key, value in stored.items():
            if key in declared:
                setattr(estimator, key, self.decode(value))
        fitted = content.get("fitted", True) if self.version > 1 else bool(stored)
        missing = [k for k in cls._saved_state if k not in stored]
        if fitted and missing:
            raise self._corrupt(f"the {name} in it lacks {', '.join(missing[:3])}")
        return estimator


def save_aligner(aligner, path, *, statistics=True):
    """Save a fitted skembed estimator to a portable, pickle-free ``.npz`` file.

    The file holds the estimator's arrays and, as JSON, its class name,
    parameters, fitted attributes and the view layout seen at fit; nothing in
    it is executable. :func:`load_aligner` rebuilds an estimator that
    transforms exactly as the saved one (the arrays are stored bit for bit).

    Parameters
    ----------
    aligner : estimator
        A fitted skembed estimator: any aligner of the library (for example
        :class:`~skembed.ProcrustesAligner`, :class:`~skembed.CCAAligner`) or
        :class:`~skembed.EmbeddingConcatenator`. Parameters must be data:
        numbers, strings, arrays, slices, lists, tuples, dicts or skembed
        estimators (a callable ``views`` selector or a ``RandomState``
        instance cannot be saved).
    path : str, path-like or file-like
        Where to write. The name is used as given (no ``.npz`` is appended);
        ``.npz`` is the conventional suffix. A file at that path is replaced
        only once the new one is complete: the model is written to a
        temporary file in the same folder, then renamed over it, so a failed
        write (full disk, a size limit, an interruption) leaves the old file
        as it was.
    statistics : bool, default=True
        Also save the sufficient statistics that ``partial_fit`` continues
        from (closed-form aligners only): d x d blocks per pair of views.
        With ``False`` the file is smaller by those blocks and transforms
        alike, and a loaded aligner refuses ``partial_fit`` with a message
        instead of silently starting over.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    TypeError
        If the estimator is not one of skembed's, or holds a value that cannot
        be stored without pickle; the message names it.

    See Also
    --------
    load_aligner : Read the file back.

    Notes
    -----
    Format (version 2): a NumPy ``.npz`` archive whose member
    ``__skembed_model__`` is a ``uint8`` array of UTF-8 JSON with keys
    ``format`` (``"skembed-model"``), ``format_version``, ``skembed_version``
    and ``estimator``: ``{"class", "params", "state"}``. ``state`` holds
    exactly the fitted attributes the class declares it saves (its
    ``_saved_state``, always, and ``_saved_optional``, when present), so
    renaming any other attribute never breaks a file; renaming a saved one
    needs a new format version and a conversion of the older files, which
    :func:`load_aligner` keeps reading (version 1, written by skembed 0.1,
    stored every attribute). Arrays are members ``array0``, ``array1``, ...
    referred to from the JSON; other values are tagged (``__tuple__``,
    ``__slice__``, ``__dtype__``, ...). Sufficient statistics kept for
    ``partial_fit`` are saved too, so a loaded aligner can keep learning.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from skembed import ProcrustesAligner
    >>> from skembed._io import load_aligner, save_aligner
    >>> rng = np.random.default_rng(0)
    >>> A, B = rng.normal(size=(100, 4)), rng.normal(size=(100, 4))
    >>> aligner = ProcrustesAligner().fit([A, B])
    >>> buffer = io.BytesIO()
    >>> save_aligner(aligner, buffer)
    >>> _ = buffer.seek(0)
    >>> loaded = load_aligner(buffer)
    >>> loaded
    ProcrustesAligner()
    >>> bool(np.array_equal(loaded.transform([A, B]), aligner.transform([A, B])))
    True
    """
    check_is_fitted(aligner)
    encoder = _Encoder(statistics=statistics)
    state = encoder.estimator_state(aligner, type(aligner).__name__)
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "skembed_version": __version__,
        "estimator": state,
    }
    text = json.dumps(header, allow_nan=False, separators=(",", ":"))
    members = {HEADER_KEY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    members.update(encoder.arrays)
    if isinstance(path, str | os.PathLike):
        _write_atomically(path, lambda file: np.savez(file, **members))
    else:
        np.savez(path, **members)


def _write_atomically(path, write):
    """``write(file)`` into a temporary file beside ``path``, then rename it.

    The rename is atomic on one file system, so ``path`` holds either its
    old content or the complete new one, never a truncated file. The new file
    gets the old one's permissions, or the default ones of a new file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(
        folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.part"
    )
    # Created like any new file (mode 0o666 less the umask), exclusively.
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, os.stat(path).st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


def load_aligner(path):
    """Load a fitted skembed estimator saved by :func:`save_aligner`.

    The file is read with ``allow_pickle=False``, and only skembed's own
    estimator classes are rebuilt: loading a model file never runs code from
    the file.

    Parameters
    ----------
    path : str, path-like or file-like
        A model file written by :func:`save_aligner`.

    Returns
    -------
    aligner : estimator
        The fitted estimator, with the same parameters and fitted attributes;
        its ``transform``, ``transform_view`` and ``translate`` give the same
        results as the saved one's.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not an skembed model file, was written by a newer format
        version, or names a class that is not one of skembed's estimators.

    See Also
    --------
    save_aligner : Write a model file.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from skembed import ProcrustesAligner
    >>> from skembed._io import load_aligner, save_aligner
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(50, 3))
    >>> buffer = io.BytesIO()
    >>> save_aligner(ProcrustesAligner().fit([A, A + 1]), buffer)
    >>> _ = buffer.seek(0)
    >>> load_aligner(buffer).view_names_
    ['view0', 'view1']
    """
    source = os.fspath(path) if isinstance(path, str | os.PathLike) else "the file"
    not_model = f"{source} is not an skembed model file"
    try:
        archive = np.load(path, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise ValueError(
            f"{not_model} (not a NumPy .npz archive); write one with "
            "skembed.save_aligner or `skembed align ... -o model.npz`."
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{not_model}: it holds a single NumPy array, not a model; write one "
            "with skembed.save_aligner or `skembed align ... -o model.npz`."
        )
    with archive:
        if HEADER_KEY not in archive.files:
            raise ValueError(
                f"{not_model}: this .npz archive has no {HEADER_KEY} entry (it "
                f"holds {', '.join(archive.files[:5]) or 'nothing'}); write one "
                "with skembed.save_aligner."
            )
        try:
            raw = archive[HEADER_KEY]
            header = json.loads(np.asarray(raw, dtype=np.uint8).tobytes())
        except (ValueError, TypeError, UnicodeDecodeError):
            raise ValueError(f"{not_model}: its header is not valid JSON.") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
            raise ValueError(f"{not_model}: its header has another format.")
        version = header.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(
                f"{source} uses model format version {version!r}, but this "
                f"skembed reads versions up to {FORMAT_VERSION}; upgrade skembed."
            )
        try:
            arrays = {key: archive[key] for key in archive.files if key != HEADER_KEY}
        except ValueError:
            raise ValueError(
                f"{source} holds a pickled object array, which skembed never "
                "writes; refusing to load it."
            ) from None
    try:
        return _Decoder(arrays, source, version).estimator(header.get("estimator"))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"{source} is a damaged skembed model file ({type(exc).__name__}: {exc})."
        ) from None
