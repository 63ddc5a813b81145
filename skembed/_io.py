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

import dataclasses
import io
import json
import math
import os
import zipfile
import zlib

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.base import BaseEstimator
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from skembed._atomic import write_atomically
from skembed._params import validate_params
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
    "dicts and skembed estimators (also wrapped in FrozenEstimator)"
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
            # NumPy's fixed-width strings drop trailing NULs: refuse rather
            # than load other names than were saved.
            ending = next((item for item in flat if item.endswith("\x00")), None)
            if ending is not None:
                raise ValueError(
                    f"Cannot save {where}: the string {ending!r} ends with a NUL "
                    "character, which a model file cannot keep. Rename it (e.g. "
                    "the DataFrame column) and fit again."
                )
            array = array.astype(str) if flat.size else array.astype("U1")
        elif array.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(
                f"Cannot save {where}: arrays of dtype {array.dtype} are not "
                "supported; a model file holds numeric, boolean and string arrays."
            )
        key = f"array{len(self.arrays)}"
        # Not ascontiguousarray: it turns a 0-d array (a NumPy scalar) into
        # shape (1,).
        self.arrays[key] = np.asarray(array, order="C")
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
            # Bounds from NumPy arithmetic (np.cumsum of widths) are stored as
            # plain integers, as the loader expects them.
            return {
                "__slice__": [
                    self.encode(
                        int(part) if isinstance(part, np.integer) else part,
                        f"{where}.{name}",
                    )
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
        if isinstance(value, FrozenEstimator):
            # A fitted model kept through clone (a warm start); its content is
            # an estimator like any other.
            return {"__frozen__": self.estimator_state(value.estimator, where)}
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
        elif isinstance(value, pd.Series):
            hint = (
                " Set it to the Series as a dict (dict(series)) or a NumPy array "
                "(series.to_numpy()) before saving; it means the same."
            )
        elif isinstance(value, pd.Index):
            hint = (
                " Set it to the Index as a list (index.tolist()) before saving; "
                "it means the same."
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
        if "_metadata_request" in state:
            # A MetadataRequest object, stored as what set_{method}_request
            # was given: {method: {parameter: True, False, None or an alias}}.
            state["_metadata_request"] = estimator._get_metadata_request()._serialize()
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
    """Rebuild values written by :class:`_Encoder` from JSON and arrays.

    Every tagged entry is checked for the form the encoder gives it, so that
    a damaged or forged header is reported as such, whatever it holds.
    """

    def __init__(self, archive, source, version):
        self.archive = archive
        self.source = source
        self.version = version
        self.layout_class = ViewLayout
        self.arrays = {}

    def _corrupt(self, what):
        return ValueError(f"{self.source} is a damaged skembed model file: {what}.")

    def _array(self, key):
        if not isinstance(key, str):
            raise self._corrupt(f"an array is named by {key!r}, not a string")
        if key not in self.arrays:
            self.arrays[key] = self.archive.array(key)
        return self.arrays[key]

    def _expect(self, tag, content, kind, length=None):
        if not isinstance(content, kind) or (
            length is not None and len(content) != length
        ):
            raise self._corrupt(f"the {tag} entry {str(content)[:60]!r} is malformed")

    def _restore_requests(self, estimator, requests):
        """Replay the saved ``set_{method}_request`` calls on ``estimator``."""
        if not isinstance(requests, dict):
            raise self._corrupt("its metadata requests are not a mapping")
        # set_*_request refuses to run unless routing is on; the requests are
        # only used where the user has turned it on.
        with config_context(enable_metadata_routing=True):
            for method, parameters in requests.items():
                setter = getattr(estimator, f"set_{method}_request", None)
                if setter is None or not isinstance(parameters, dict):
                    raise self._corrupt(f"it requests metadata of {method!r}")
                try:
                    setter(**parameters)
                except (TypeError, ValueError) as exc:
                    raise self._corrupt(
                        f"its {method} metadata requests ({exc})"
                    ) from None

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
            array = self._array(content)
            # Shape (1,): a NumPy scalar as earlier versions wrote it (they
            # could not read it back).
            if array.ndim != 0 and array.shape != (1,):
                raise self._corrupt(f"the scalar {content!r} is an array")
            return array.reshape(())[()]
        if tag == "__array__":
            self._expect(tag, content, list, 2)
            key, is_object = content
            array = self._array(key)
            if is_object and array.dtype.kind != "U":
                raise self._corrupt(f"the string array {key!r} holds numbers")
            return array.astype(object) if is_object else array
        if tag == "__dtype__":
            try:
                dtype = np.dtype(str(content))
            except TypeError:
                raise self._corrupt(f"unexpected dtype {content!r}") from None
            if dtype.kind not in _ARRAY_KINDS:
                raise self._corrupt(f"unexpected dtype {content!r}")
            return dtype
        if tag == "__slice__":
            self._expect(tag, content, list, 3)
            parts = [self.decode(part) for part in content]
            # Earlier versions stored NumPy integer bounds as NumPy scalars.
            if not all(
                p is None
                or (isinstance(p, int | np.integer) and not isinstance(p, bool))
                for p in parts
            ):
                raise self._corrupt(f"the slice {content!r} is malformed")
            return slice(*(None if p is None else int(p) for p in parts))
        if tag == "__tuple__":
            self._expect(tag, content, list)
            return tuple(self.decode(v) for v in content)
        if tag == "__dict__":
            self._expect(tag, content, list)
            for item in content:
                self._expect(tag, item, list, 2)
            return {self.decode(k): self.decode(v) for k, v in content}
        if tag == "__view_layout__":
            self._expect(tag, content, dict)
            names = {field.name for field in dataclasses.fields(self.layout_class)}
            if not set(content) <= names:
                raise self._corrupt("unexpected view layout fields")
            return self.layout_class(**{k: self.decode(v) for k, v in content.items()})
        if tag == "__estimator__":
            self._expect(tag, content, dict)
            return self.estimator(content)
        if tag == "__frozen__":
            self._expect(tag, content, dict)
            return FrozenEstimator(self.estimator(content))
        if tag == "__object__":
            self._expect(tag, content, list, 2)
            name, state = content
            self._expect(tag, state, dict)
            cls = _HELPERS.get(name) if isinstance(name, str) else None
            if cls is None:
                raise self._corrupt(f"unknown helper object {name!r}")
            return self.helper(cls, {k: self.decode(v) for k, v in state.items()})
        raise self._corrupt(f"unknown entry type {str(tag)[:40]!r}")

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

    def estimator(self, content, top=False):
        name = content.get("class") if isinstance(content, dict) else None
        cls = ESTIMATORS.get(name) if isinstance(name, str) else None
        if cls is None:
            known = ", ".join(sorted(ESTIMATORS))
            raise ValueError(
                f"{self.source} holds a {name!r}, which is not an skembed estimator "
                f"this installation can load (known: {known}). Upgrade skembed, or "
                "check where the file came from."
            )
        self._expect("params", content.get("params", {}), dict)
        params = {k: self.decode(v) for k, v in content.get("params", {}).items()}
        if self.version == 1:
            stored = content.get("attributes", {})
            params = _upgrade_params_from_1(cls, params)
        else:
            stored = content.get("state", {})
        self._expect("state", stored, dict)
        try:
            estimator = cls(**params)
        except TypeError as exc:
            raise ValueError(
                f"{self.source} was saved with parameters of {name} that this "
                f"version of skembed does not know ({exc}). Upgrade skembed."
            ) from None
        if hasattr(estimator, "_validate_params"):
            # An edited parameter would otherwise fail only in use, deep inside
            # transform (an unknown option is a KeyError there).
            try:
                estimator._validate_params()
            except InvalidParameterError as exc:
                raise self._corrupt(f"a parameter is invalid ({exc})") from None
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
            if key == "_metadata_request":
                self._restore_requests(estimator, self.decode(value))
            elif key in declared:
                setattr(estimator, key, self.decode(value))
        fitted = top or (
            content.get("fitted", True) if self.version > 1 else bool(stored)
        )
        defaults = getattr(cls, "_saved_defaults", {})
        missing = [k for k in cls._saved_state if k not in stored and k not in defaults]
        if fitted and missing:
            raise self._corrupt(f"the {name} in it lacks {', '.join(missing[:3])}")
        if fitted:
            for key, value in defaults.items():
                if key not in stored:
                    # A callable derives the value from the state read so far.
                    setattr(
                        estimator, key, value(estimator) if callable(value) else value
                    )
        return estimator


def _model_path(path, *, writing):
    """``path`` as a file name (str) or the binary file object it is.

    A name may be a str, bytes or path-like; a file object must have the
    methods that reading or writing the archive calls (NumPy's writer, too,
    tells a file object from a name by its ``read`` method).
    """
    if isinstance(path, str | bytes | os.PathLike):
        return os.fsdecode(os.fspath(path))
    mode = "writing" if writing else "reading"
    if isinstance(path, io.TextIOBase):
        raise TypeError(
            f"path is a text file object; a model file is binary: open it in "
            f"binary mode ({'wb' if writing else 'rb'!r}) for {mode}."
        )
    needed = ("write", "read") if writing else ("read", "seek")
    if all(callable(getattr(path, name, None)) for name in needed):
        return path
    raise TypeError(
        f"path must be a file name (str or path-like) or a binary file object "
        f"open for {mode}, got {type(path).__name__}."
    )


@validate_params(
    {"aligner": "no_validation", "path": "no_validation", "statistics": ["boolean"]},
    prefer_skip_nested_validation=True,
)
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
    path : str, bytes, path-like or file-like
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
        be stored without pickle (the message names it), or if ``path`` is
        neither a file name nor a binary file object.
    ValueError
        If ``path`` names something other than a file or a folder (a device,
        a pipe or a socket), which the rename would remove.

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
    >>> from skembed import load_aligner, save_aligner
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
    path = _model_path(path, writing=True)
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
    if isinstance(path, str):
        write_atomically(path, lambda file: np.savez(file, **members))
    else:
        np.savez(path, **members)


def load_aligner(path):
    """Load a fitted skembed estimator saved by :func:`save_aligner`.

    The file is read with ``allow_pickle=False``, and only skembed's own
    estimator classes are rebuilt: loading a model file never runs code from
    the file.

    Parameters
    ----------
    path : str, bytes, path-like or file-like
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
    TypeError
        If ``path`` is neither a file name nor a binary file object.
    ValueError
        If the file is not an skembed model file, was written by a newer format
        version, names a class that is not one of skembed's estimators, or is
        damaged or forged: every array's header is checked against its size
        before it is read (only the arrays the estimator saves are read), and
        the rebuilt state must fit together (widths, shapes, finite values).

    See Also
    --------
    save_aligner : Write a model file.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from skembed import ProcrustesAligner
    >>> from skembed import load_aligner, save_aligner
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(50, 3))
    >>> buffer = io.BytesIO()
    >>> save_aligner(ProcrustesAligner().fit([A, A + 1]), buffer)
    >>> _ = buffer.seek(0)
    >>> load_aligner(buffer).view_names_
    ['view0', 'view1']
    """
    path = _model_path(path, writing=False)
    source = path if isinstance(path, str) else "the file"
    with _ModelArchive(path, source) as archive:
        archive.check_members()
        header = archive.header()
        version = header["format_version"]
        decoder = _Decoder(archive, source, version)
        try:
            estimator = decoder.estimator(header.get("estimator"), top=True)
        except RecursionError:
            raise decoder._corrupt("its header is nested too deeply") from None
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise decoder._corrupt(f"{type(exc).__name__}: {exc}") from None
    try:
        _check_consistency(estimator, source)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        # An edited header can put a list where the view layout belongs.
        raise decoder._corrupt(f"{type(exc).__name__}: {exc}") from None
    return estimator


def _check_consistency(estimator, source, where=None):
    """Check that a loaded estimator's state fits together, before any use.

    A file passes the format checks and can still be edited: one changed
    width would make ``get_feature_names_out`` build gigabytes, one changed
    shape would fail deep in ``transform``. Every per-view attribute must
    match the view layout, and every map the width of the shared space.
    """
    where = where or type(estimator).__name__

    def fail(what):
        raise ValueError(
            f"{source} is a damaged skembed model file: in the {where}, {what}."
        )

    if not hasattr(estimator, "view_names_"):
        return  # an unfitted estimator given as a parameter
    names = estimator.view_names_
    widths = estimator.n_features_per_view_
    layout = estimator._view_layout
    if (
        not isinstance(names, list)
        or len(names) < 2
        or len(set(names)) != len(names)
        or not all(isinstance(n, str) for n in names)
    ):
        fail(f"view_names_ {str(names)[:60]} are not distinct names of 2+ views")
    if (
        not isinstance(widths, list)
        or len(widths) != len(names)
        or not all(isinstance(w, int) and w > 0 for w in widths)
        or tuple(widths) != tuple(layout.widths)
    ):
        fail(f"n_features_per_view_ {str(widths)[:60]} disagree with the view layout")
    n_in = estimator.n_features_in_
    if not isinstance(n_in, int) or n_in < 1:
        fail(f"n_features_in_ {str(n_in)[:30]} is not a positive integer")
    if layout.kind == "list":
        if n_in != sum(widths) or layout.selections is not None:
            fail("the list layout does not add up")
    elif layout.kind in ("array", "frame"):
        columns = n_in
        # Checked before any array of that many entries is made: a forged
        # count must not allocate beyond what the layout describes.
        if layout.kind == "array" and n_in != sum(widths):
            fail("n_features_in_ disagrees with the view widths")
        if layout.kind == "frame" and (
            not isinstance(layout.column_widths, list | tuple | np.ndarray)
            or n_in != len(layout.column_widths)
        ):
            fail("n_features_in_ disagrees with the frame's columns")
        counts = np.zeros(columns, dtype=np.int64)
        for selection in layout.selections:
            if isinstance(selection, slice):
                positions = np.arange(*selection.indices(columns))
            else:
                positions = np.asarray(selection)
                if positions.dtype.kind not in "iu" or positions.ndim != 1:
                    fail("a view selection is not column positions")
                if positions.size and (
                    positions.min() < 0 or positions.max() >= columns
                ):
                    fail("a view selects columns outside the input")
            counts[positions] += 1
        if not (counts == 1).all():
            fail("the views do not cover every input column exactly once")
        per_view = [len(np.arange(columns)[s]) for s in layout.selections]
        if layout.kind == "array" and per_view != list(widths):
            fail("the view widths disagree with their selections")
        if layout.kind == "frame":
            column_widths = np.asarray(layout.column_widths)
            if column_widths.shape != (columns,) or (column_widths < 1).any():
                fail("the frame's column widths are malformed")
            totals = [int(column_widths[s].sum()) for s in layout.selections]
            if totals != list(widths):
                fail("the view widths disagree with the frame's columns")
    else:
        fail(f"the view layout kind {layout.kind!r} is unknown")
    feature_names = getattr(estimator, "feature_names_in_", None)
    if feature_names is not None and len(feature_names) != n_in:
        fail("feature_names_in_ does not name every input feature")

    n_views, shared = len(widths), None
    # Per-view attributes and which of their axes are the view's width ("d"),
    # the shared space's ("m") or free ("n").
    rules = {
        "means_": "d",
        "_projections": "dm",
        "rotations_": "dm",
        "maps_": "dm",
        "projections_": "dm",
        "_back_projections": "md",
        "intercepts_": "m",
        "anchor_embeddings_": "nd",
        "_unit_anchors": "nd",
        "view_means_": "d",
        "view_scales_": "d",
        "weights_": "dm",
        "coefs_": "dm",
        "hidden_weights_": "dn",
        "hidden_intercepts_": "n",
        "hidden_projections_": "nm",
        "hidden_offsets_": "n",
        "keys_": "nd",
        "residuals_": "nm",
    }
    # Per-view attributes whose entry is None for a view without that part
    # (the reference view of a residual map, a linear head).
    optional_entries = {
        "hidden_weights_",
        "hidden_intercepts_",
        "hidden_projections_",
        "hidden_offsets_",
        "keys_",
        "residuals_",
    }
    # Attributes every file of the class holds: None there is an edit, and
    # would fail later inside transform.
    required = set(getattr(type(estimator), "_saved_state", ()))
    for name, axes in rules.items():
        value = getattr(estimator, name, None)
        if value is None:
            # A model without that part (linear heads) holds None for all.
            if name in required and name not in optional_entries:
                fail(f"{name} is missing")
            continue
        if name == "weights_" and not isinstance(value, list):
            continue
        if not isinstance(value, list) or len(value) != n_views:
            fail(f"{name} does not hold one array per view")
        for k, array in enumerate(value):
            if array is None and name in optional_entries:
                continue
            array = np.asarray(array)
            if array.ndim != len(axes) or array.dtype.kind != "f":
                fail(f"{name}[{k}] is not a {len(axes)}-D float array")
            if not np.isfinite(array).all():
                fail(f"{name}[{k}] holds NaN or infinity")
            for size, axis in zip(array.shape, axes, strict=True):
                if axis == "d" and size != widths[k]:
                    fail(f"{name}[{k}] has {size} rows for a view of width {widths[k]}")
                if axis == "m":
                    shared = size if shared is None else shared
                    if size != shared:
                        fail(f"{name}[{k}] disagrees on the shared space's width")
    # Parts of one view's map that must agree with each other: the hidden
    # layer's width, and the rows of a kernel's keys and residuals.
    for names_, axis_of in (
        (("hidden_weights_", "hidden_intercepts_", "hidden_projections_"), (1, 0, 0)),
        (("keys_", "residuals_"), (0, 0)),
    ):
        values = [getattr(estimator, name, None) for name in names_]
        if any(v is None for v in values):
            continue
        for k in range(n_views):
            parts = [v[k] for v in values]
            if all(part is None for part in parts):
                continue
            if (
                any(part is None for part in parts)
                or len(
                    {
                        np.shape(part)[axis]
                        for part, axis in zip(parts, axis_of, strict=True)
                    }
                )
                != 1
            ):
                fail(f"{', '.join(names_)} of view {k} do not fit together")
    anchors = getattr(estimator, "anchor_indices_", None)
    if anchors is not None or "anchor_indices_" in required:
        anchors = np.asarray(anchors)
        n_anchors = np.shape(estimator.anchor_embeddings_[0])[0]
        if (
            anchors.dtype.kind not in "iu"
            or anchors.shape != (n_anchors,)
            or (anchors.size and anchors.min() < 0)
        ):
            fail("anchor_indices_ are not one row index per anchor")
    offset = getattr(estimator, "_offset", None)
    if offset is None and "_offset" in required:
        fail("_offset is missing")
    if offset is not None and np.asarray(offset).shape != (shared,):
        fail("_offset does not match the shared space")
    for name in ("weights_", "scales_", "view_mean_squared_norms_"):
        value = getattr(estimator, name, None)
        if name == "weights_" and isinstance(value, list):
            continue  # per-view maps, checked above
        if value is None and name not in required:
            continue
        if (
            not isinstance(value, np.ndarray)
            or value.dtype.kind != "f"
            or value.shape != (n_views,)
            or not np.isfinite(value).all()
        ):
            fail(f"{name} does not hold one finite value per view")
    if "reference_" in required:
        reference = getattr(estimator, "reference_", None)
        if (
            not isinstance(reference, int)
            or isinstance(reference, bool)
            or not 0 <= reference < n_views
        ):
            fail(f"reference_ {str(reference)[:30]} is not a view index")
    if "aligner_" in required and not isinstance(
        getattr(estimator, "aligner_", None), BaseEstimator
    ):
        fail("aligner_ is not a fitted skembed estimator")
    stats = getattr(estimator, "_stats", None)
    if stats is not None:
        if stats.n_views != n_views or (
            stats._sums is not None and [len(s) for s in stats._sums] != list(widths)
        ):
            fail("the statistics do not match the views")
    for name, value in vars(estimator).items():
        if isinstance(value, BaseEstimator) and name.endswith("_"):
            _check_consistency(value, source, f"{where}.{name}")


# Largest header a model file may have (the JSON of the biggest real model is
# a few kB), and the most a deflated member may expand relative to its stored
# size (deflate itself cannot exceed about 1,032).
_MAX_HEADER_BYTES = 64 * 2**20
_MAX_EXPANSION = 1100


# What zipfile and the .npy reader raise for a damaged member. zipfile also
# raises NotImplementedError (an unknown compression method or zip version)
# and RuntimeError (a member flagged as encrypted) for one flipped byte.
_UNREADABLE = (
    ValueError,
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
)


class _ModelArchive:
    """A model file's zip archive, read member by member, each one checked.

    An array is read only when the header refers to it, and only after its
    ``.npy`` header (dtype, shape) agrees with the member's size: a forged
    header cannot make the reader allocate more than the file holds.
    """

    def __init__(self, path, source):
        self.path = path
        self.source = source
        self.not_model = f"{source} is not an skembed model file"

    def __enter__(self):
        try:
            self.zip = zipfile.ZipFile(self.path)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except _UNREADABLE:
            raise ValueError(self._what_instead()) from None
        return self

    def __exit__(self, *exc):
        self.zip.close()

    def _what_instead(self):
        if isinstance(self.path, str):
            try:
                with open(self.path, "rb") as file:
                    magic = file.read(6)
            except OSError:
                magic = b""
        else:
            self.path.seek(0)
            magic = self.path.read(6)
        if magic.startswith(b"PK"):
            return (
                f"{self.source} is a damaged skembed model file: its zip archive "
                "cannot be read."
            )
        if magic == b"\x93NUMPY":
            return (
                f"{self.not_model}: it holds a single NumPy array, not a model; "
                "write one with skembed.save_aligner or `skembed align ... -o "
                "model.npz`."
            )
        return (
            f"{self.not_model} (not a NumPy .npz archive); write one with "
            "skembed.save_aligner or `skembed align ... -o model.npz`."
        )

    def _corrupt(self, what):
        return ValueError(f"{self.source} is a damaged skembed model file: {what}.")

    def has(self, key):
        return f"{key}.npy" in self.zip.NameToInfo

    def _member_header(self, info, key):
        """(shape, dtype, data offset) of a member, from its .npy header only."""
        if info.file_size > _MAX_EXPANSION * max(info.compress_size, 1) + 2**20:
            raise self._corrupt(f"the member {key!r} expands beyond any real array")
        try:
            with self.zip.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
                offset = member.tell()
        except _UNREADABLE as exc:
            raise self._corrupt(f"the member {key!r} cannot be read ({exc})") from None
        if any(n < 0 for n in shape):
            raise self._corrupt(f"the member {key!r} has a negative shape {shape}")
        if dtype.hasobject:
            raise ValueError(
                f"{self.source} holds a pickled object array ({key!r}), which "
                "skembed never writes; refusing to load it."
            )
        if dtype.kind not in _ARRAY_KINDS:
            raise self._corrupt(
                f"the member {key!r} holds {dtype} values; model files hold only "
                "numbers, booleans and strings"
            )
        return shape, dtype, offset

    def check_members(self):
        """Refuse any member that is not a plain array (pickles above all).

        Reads only the .npy headers; data is read later, and only for the
        arrays the estimator's declared state refers to.
        """
        for info in self.zip.infolist():
            if not info.filename.endswith(".npy"):
                raise self._corrupt(f"the member {info.filename!r} is not an array")
            self._member_header(info, info.filename[:-4])

    def array(self, key, *, limit=None):
        """The array of member ``key``, after checking its header and size."""
        name = f"{key}.npy"
        info = self.zip.NameToInfo.get(name)
        if info is None:
            raise self._corrupt(f"the array {key!r} is missing")
        shape, dtype, offset = self._member_header(info, key)
        nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if nbytes != info.file_size - offset:
            raise self._corrupt(
                f"the member {key!r} claims {nbytes:,} bytes of data ({shape} "
                f"{dtype}) but holds {info.file_size - offset:,}"
            )
        if limit is not None and nbytes > limit:
            raise self._corrupt(f"the member {key!r} is too large ({nbytes:,} bytes)")
        try:
            with self.zip.open(info) as member:
                array = np.lib.format.read_array(member, allow_pickle=False)
        except _UNREADABLE as exc:
            raise self._corrupt(f"the member {key!r} cannot be read ({exc})") from None
        return array

    def header(self):
        """The JSON header, checked for format and version."""
        if not self.has(HEADER_KEY):
            raise ValueError(
                f"{self.not_model}: this .npz archive has no {HEADER_KEY} entry (it "
                f"holds {', '.join(self.zip.namelist()[:5]) or 'nothing'}); write "
                "one with skembed.save_aligner."
            )
        raw = self.array(HEADER_KEY, limit=_MAX_HEADER_BYTES)
        try:
            header = json.loads(np.asarray(raw, dtype=np.uint8).tobytes())
        except (ValueError, TypeError, UnicodeDecodeError):
            raise ValueError(
                f"{self.not_model}: its header is not valid JSON."
            ) from None
        except RecursionError:
            raise self._corrupt("its header is nested too deeply") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
            raise ValueError(f"{self.not_model}: its header has another format.")
        version = header.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise self._corrupt(f"the format version {version!r} is not a number")
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{self.source} uses model format version {version!r}, but this "
                f"skembed reads versions up to {FORMAT_VERSION}; upgrade skembed."
            )
        return header
