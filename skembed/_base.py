"""The view surface every aligner shares: views in, one shared space out.

An aligner maps each of its K views (embeddings of the same items by K
models) into one shared space of width ``n_components_``. :class:`BaseAligner`
is that contract and the public surface built on it: ``transform`` with its
``combine`` modes, ``transform_view``, ``score`` and feature names. A
subclass provides the per-view map, ``_map(block, k, offset=...)``, and
``n_components_``; what else it offers it inherits from a mixin that really
provides it:

- :class:`~skembed._affine.AffineMapMixin`: stored affine maps, with a fast
  chunked ``transform``, ``translate`` and ``inverse_transform_view``;
- :class:`~skembed._moments.MomentsFitMixin`: ``fit`` and ``partial_fit``
  from one pass of mergeable statistics.

So ``hasattr(aligner, "partial_fit")`` and ``hasattr(aligner, "translate")``
tell the truth.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import inspect
from abc import abstractmethod
from functools import partial
from itertools import combinations
from numbers import Integral

import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from skembed._dask import map_dask_view
from skembed._neighbors import alignment_score, warn_trivial_k
from skembed._parallel import map_row_groups, row_groups
from skembed._params import NumbersAreNotFlagsMixin
from skembed._stats import (
    all_finite,
    check_rows,
    chunk_rows,
    map_rows,
    row_norms,
)
from skembed._views import (
    check_view_block,
    check_views,
    is_dask_collection,
    keep_list_index,
    non_finite_error,
    resolve_view,
)

__all__ = ["BaseAligner", "state_kept_on_error"]

# Fitted state every aligner saves in model files (see skembed._io): how X
# splits into views. Each class lists these first, then what it adds.
VIEW_STATE = ("n_features_in_", "n_features_per_view_", "view_names_", "_view_layout")
VIEW_OPTIONAL = ("feature_names_in_",)


@contextlib.contextmanager
def state_kept_on_error(estimator):
    """Leave ``estimator`` as it was if the block raises.

    A fit that fails after storing part of its new state (the views' layout,
    say) would otherwise leave a mix that still looks fitted: ``transform``
    then fails with an unrelated error, or runs on the old maps under the
    new layout. A failed refit keeps the last fitted model instead.
    """
    before = dict(vars(estimator))
    try:
        yield
    except BaseException:
        vars(estimator).clear()
        vars(estimator).update(before)
        raise


class BaseAligner(NumbersAreNotFlagsMixin, TransformerMixin, BaseEstimator):
    """Base class of aligners (not for direct use): the view surface.

    A subclass defines ``fit``, the per-view map ``_map(block, k, *,
    offset=None)`` (raw rows of view k to the shared space, in the input
    dtype) and the ``n_components_`` property. A subclass whose parameters
    include ``normalize`` gets unit-length rows before any map is applied.
    """

    _parameter_constraints: dict = {
        "views": [None, Interval(Integral, 2, None, closed="left"), list, dict],
        "combine": [StrOptions({"concat", "mean", "similarity"})],
    }

    # Capabilities other aligners have and this one does not, with the reason:
    # only the message of the AttributeError changes, ``hasattr`` stays False.
    _absent_capabilities: dict = {}

    def __getattr__(self, name):
        # Called when normal lookup failed, including when a descriptor such as
        # available_if refused: let that descriptor raise its own reason.
        descriptor = inspect.getattr_static(type(self), name, None)
        if descriptor is not None and hasattr(descriptor, "__get__"):
            try:
                return descriptor.__get__(self, type(self))
            except AttributeError as exc:
                # available_if keeps its check's own message as the cause.
                cause = exc.__cause__
                raise (cause if isinstance(cause, AttributeError) else exc) from None
        reason = type(self)._absent_capabilities.get(name)
        if reason is None:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}"
            )
        raise AttributeError(f"{type(self).__name__} has no {name}: {reason}")

    @abstractmethod
    def _map(self, block, k, *, offset=None):
        """Rows of view k in the shared space; ``offset`` adds the common c."""

    @property
    def _l2_rows(self):
        return getattr(self, "normalize", None) == "l2"

    def _fitted_l2_rows(self):
        """Whether the fitted maps apply to unit rows; refuses a changed normalize.

        The maps were fitted on rows normalised as ``normalize`` said at fit:
        applied to rows normalised otherwise they give a hybrid, neither map,
        with no error (raw rows through a map fitted on unit rows come out
        scaled by their norms). Models without the record (written before it)
        follow the parameter.
        """
        now = self._l2_rows
        if not hasattr(self, "_stats_normalize"):
            return now
        fitted = self._stats_normalize == "l2"
        if fitted != now:
            raise ValueError(
                f"This {type(self).__name__} was fitted with "
                f"normalize={self._stats_normalize!r} and normalize is now "
                f"{self.normalize!r}: its maps only apply to rows normalised as "
                "at fit. Set normalize back with set_params, or call fit again."
            )
        return fitted

    @property
    def _reference_frame(self):
        """Whether mapped rows carry the common offset ``c`` of every map.

        Only aligners whose shared space is a reference view's own space have
        an ``output_frame`` parameter; every other shared space is centred by
        construction (``c = 0``).
        """
        return getattr(self, "output_frame", "centered") == "reference"

    def _non_finite_error(self, dtype):
        return non_finite_error(self, dtype)

    # -------------------------------------------------------------- transform
    def _row_step(self, width, dtype):
        return chunk_rows(width * np.dtype(dtype).itemsize, "transform")

    def _chunk_mapper(self, dtype, *, offset):
        """``map_chunk(block, k, out)`` writing the map of a row chunk into ``out``."""

        def map_chunk(block, k, out):
            out[...] = self._map(block, k, offset=offset)

        return map_chunk

    def _n_combined_features(self):
        if self.combine not in ("concat", "mean", "similarity"):
            # combine is read at transform, after any set_params: a bare
            # KeyError came out of the chunk loop.
            raise ValueError(
                "The 'combine' parameter must be 'concat', 'mean' or "
                f"'similarity'; got {self.combine!r}. Set it with set_params."
            )
        n_views = len(self.n_features_per_view_)
        if self.combine == "similarity":
            return n_views * (n_views - 1) // 2
        if self.combine == "mean":
            return self.n_components_
        return n_views * self.n_components_

    def _combine(self, blocks, *, check_finite=True, n_threads=None):
        """Map and combine numpy view blocks into one preallocated output.

        Rows are processed in chunks small enough to stay in cache: each view's
        product is written straight into its slice of the output (or, for
        ``"mean"`` and ``"similarity"``, into a chunk-sized buffer), so no
        temporary of the size of X or of the output is ever made. Groups of
        chunks run on the BLAS's threads (:mod:`skembed._parallel`).
        """
        n, dtype, n_views = blocks[0].shape[0], blocks[0].dtype, len(blocks)
        m = self.n_components_
        similarity = self.combine == "similarity"
        map_chunk = self._chunk_mapper(
            dtype, offset=self._reference_frame and not similarity
        )
        out = np.empty((n, self._n_combined_features()), dtype=dtype)
        n_buffers = {"concat": 0, "mean": 1, "similarity": n_views}[self.combine]
        # The chunk budget covers the input rows, the output rows and the
        # per-view buffers of "mean" and "similarity".
        widths = sum(block.shape[1] for block in blocks) + out.shape[1] + n_buffers * m
        step = self._row_step(widths, dtype)

        def fill(start, stop):
            size = min(step, stop - start)
            buffers = [np.empty((size, m), dtype=dtype) for _ in range(n_buffers)]
            for first in range(start, stop, step):
                rows = slice(first, min(stop, first + step))
                chunk = [block[rows] for block in blocks]
                # Non-finite input must not warn on its way to the output,
                # where it is found and reported.
                with np.errstate(invalid="ignore", over="ignore"):
                    self._combine_chunk(chunk, out[rows], map_chunk, buffers)
                if check_finite and not all_finite(out[rows]):
                    raise self._non_finite_error(dtype)

        for _ in map_row_groups(fill, row_groups(n, step), n_threads=n_threads):
            pass
        return out

    def _combine_chunk(self, chunk, target, map_chunk, buffers):
        """Write the combined views of one row chunk into ``target``."""
        n_views, m, size = len(chunk), self.n_components_, target.shape[0]
        if self.combine == "concat":
            for k in range(n_views):
                map_chunk(chunk[k], k, target[:, k * m : (k + 1) * m])
        elif self.combine == "mean":
            map_chunk(chunk[0], 0, target)
            buffer = buffers[0][:size]
            for k in range(1, n_views):
                map_chunk(chunk[k], k, buffer)
                target += buffer
            target /= n_views
        else:
            mapped = [buffers[k][:size] for k in range(n_views)]
            for k in range(n_views):
                map_chunk(chunk[k], k, mapped[k])
            norms = [row_norms(z) for z in mapped]
            for p, (a, b) in enumerate(combinations(range(n_views), 2)):
                num = np.einsum("ij,ij->i", mapped[a], mapped[b])
                target[:, p] = num / (norms[a] * norms[b])

    def _transform_views(self, X, *, offset=False):
        """Every view of X in the shared space, as a list (for scoring).

        Without ``offset`` the shared space is centred, which is where cosine
        comparisons are meaningful: the offset ``c`` is common to all views and
        would otherwise dominate the angles.
        """
        check_is_fitted(self, "means_")
        blocks = check_views(self, X, reset=False)
        return [self._map(block, k, offset=offset) for k, block in enumerate(blocks)]

    def transform(self, X):
        """Map every view into the shared space and combine them.

        Parameters
        ----------
        X : array-like, DataFrame, list of arrays, or Dask array/DataFrame
            Row-paired views, laid out as at fit.

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_features_out)
            In the input float dtype (a lazy Dask array for Dask input).
            ``combine="concat"``: the K mapped views side by side;
            ``"mean"``: their average; ``"similarity"``: the cosine between
            the mapped views of each pair. Mapped views are in the centred
            shared space (the training rows' image has mean zero), where
            cosines and nearest neighbours are meaningful; an aligner with
            ``output_frame="reference"`` adds the reference view's training
            mean back to ``"concat"`` and ``"mean"``.
        """
        check_is_fitted(self, "means_")
        # Non-finite rows are caught in the output chunks, still in cache,
        # instead of by a separate pass over X.
        check_finite = not get_config()["assume_finite"]
        views = check_rows(self, X, reset=False)
        combine = partial(self._combine, check_finite=check_finite)
        out = map_rows(views, combine, self._n_combined_features())
        return keep_list_index(self, X, out)

    def transform_view(self, X_view, view):
        """Map one view's raw embeddings into the shared space.

        Parameters
        ----------
        X_view : array-like of shape (n_samples, n_features_of_view)
            Embeddings produced by the model of ``view``.
        view : int or str
            Index or name of the view.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components_)
            The embeddings in the shared space, in the input float dtype:
            centred (the training rows' image has mean zero), so that cosine
            search between views works as it is; with
            ``output_frame="reference"``, in the reference view's raw frame.
            A lazy Dask array for a Dask array or DataFrame ``X_view``.
        """
        check_is_fitted(self, "means_")
        k = resolve_view(self, view)
        if is_dask_collection(X_view):
            return map_dask_view(
                self,
                X_view,
                k,
                partial(self.transform_view, view=k),
                self.n_components_,
            )
        block = check_view_block(self, X_view, k)
        return self._map(block, k)

    def _translated_lazily(self, X_view, k, t):
        """``translate`` of one view's Dask rows from view k to view t, lazily."""
        return map_dask_view(
            self,
            X_view,
            k,
            partial(self.translate, source=k, target=t),
            self.n_features_per_view_[t],
        )

    def score(self, X, y=None):
        """Held-out alignment quality: mean top-1 cross-view retrieval accuracy.

        For every ordered pair of views (a, b), each row of view a, mapped into
        the centred shared space, looks for its nearest row (cosine) among the
        mapped rows of view b; a hit is the row of the same item. Higher is
        better, so ``GridSearchCV(aligner, grid)`` selects alignment options
        without labels.

        Parameters
        ----------
        X : array-like, DataFrame or list of arrays
            Row-paired views, laid out as at fit.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean top-1 retrieval accuracy over ordered view pairs, in [0, 1].
        """
        views = self._transform_views(X)
        warn_trivial_k(1, views[0].shape[0])
        return alignment_score(views)

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only validated: it must equal `feature_names_in_` when that is
            defined, and have `n_features_in_` entries otherwise; output names
            derive from the views.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``"<view>__<prefix><j>"`` for ``combine="concat"``,
            ``"<prefix><j>"`` for ``"mean"`` and ``"cosine__<a>__<b>"`` for
            ``"similarity"`` (``"cosine__view<i>__view<j>"``, by the views'
            positions, when view names holding ``"__"`` would repeat a name).
        """
        check_is_fitted(self, "means_")
        _check_feature_names_in(self, input_features)
        self._n_combined_features()  # refuses an unknown combine
        prefix = type(self).__name__.lower()
        m = self.n_components_
        if self.combine == "similarity":
            names = [f"cosine__{a}__{b}" for a, b in combinations(self.view_names_, 2)]
            if len(set(names)) < len(names):
                # View names holding "__" can join into one name twice ("a",
                # "b__c" and "a__b", "c"): the views' positions cannot.
                pairs = combinations(range(len(self.view_names_)), 2)
                names = [f"cosine__view{a}__view{b}" for a, b in pairs]
        elif self.combine == "mean":
            names = [f"{prefix}{j}" for j in range(m)]
        else:
            names = [f"{v}__{prefix}{j}" for v in self.view_names_ for j in range(m)]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.target_tags.required = False
        return tags
