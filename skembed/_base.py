"""The aligner base class: views in, per-view affine maps into a shared space.

Every aligner learns, for each view k, an affine map

.. math::

    f_k(x) = (x - \\mu_k) P_k + c

into a shared space of width m, where :math:`P_k` (d_k x m) already carries any
isotropic scale. Subclasses only say which sufficient statistics they need and
turn them into ``means_``, ``_projections`` and ``_offset``; the base class
does the rest of the public surface: ``fit``, ``partial_fit``, ``transform``
with its ``combine`` modes, ``transform_view``, ``translate``,
``inverse_transform_view``, ``score`` and feature names.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from functools import partial
from itertools import combinations
from numbers import Integral

import numpy as np
from sklearn import config_context, get_config
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skembed._dask import check_dask_views, is_dask_collection, map_views, reduce_views
from skembed._parallel import map_row_groups, row_groups
from skembed._stats import CrossMoments, chunk_rows, merge_moments, row_squared_norms
from skembed._views import check_view_block, check_views, resolve_view

__all__ = ["BaseAligner"]


def _row_norms(block):
    """Row norms in the block dtype, 1 for zero rows (which then stay zero)."""
    norms = np.sqrt(row_squared_norms(block))
    norms[norms == 0] = 1
    return norms.astype(block.dtype, copy=False)


def _unit_rows(block):
    """Rows scaled to unit length; zero rows stay zero."""
    return block / _row_norms(block)[:, None]


# Bytes of input and output in one row chunk of transform, per worker thread:
# small enough for the chunk to stay in cache between the product and the
# passes that follow it (offset, row scaling, finiteness check), large enough
# that per-call BLAS overheads vanish. Measured at 1M x 384 float32 on two
# threads, transform / floor: 0.98-1.04 at 4 MiB, 0.99-1.06 at 8 MiB,
# 1.02-1.10 at 16 MiB (two threads' chunks then no longer share the cache).
_TRANSFORM_BUDGET = 4 * 2**20


def _unit_row_blocks(blocks):
    return [_unit_rows(block) for block in blocks]


def _view_moments(blocks, *, n_views, request, l2_rows, n_threads=None):
    """The moments of row-paired view blocks, read in row chunks.

    A module-level function, so that Dask can ship it to the workers.
    """
    stats = CrossMoments(n_views, **request)
    prepare = _unit_row_blocks if l2_rows else None
    return stats.update(blocks, prepare=prepare, n_threads=n_threads)


def _non_finite_error(estimator, dtype):
    return ValueError(
        f"Input X contains NaN or infinity (or a value too large for {dtype}); "
        f"{type(estimator).__name__} needs finite embeddings. Drop or impute "
        "those rows."
    )


def _all_finite(chunk):
    """Whether a chunk is finite, from its row sums (one in-cache BLAS pass)."""
    return bool(np.isfinite(chunk @ np.ones(chunk.shape[1], chunk.dtype)).all())


def _affine_into(block, out, projection, bias, l2_rows):
    """Write ``(block / norms) @ projection - bias`` into ``out``.

    ``projection=None`` stands for the identity (the reference view of a
    Procrustes alignment), which needs a copy instead of a product;
    ``bias=None`` for a zero bias.
    """
    if projection is None:
        np.copyto(out, block)
    else:
        np.matmul(block, projection, out=out)
    if l2_rows:
        # Row scaling commutes with the right product: normalise the output
        # instead of copying the input.
        out /= _row_norms(block)[:, None]
    if bias is not None:
        out -= bias
    return out


class BaseAligner(TransformerMixin, BaseEstimator):
    """Base class for aligners (not for direct use).

    Subclasses define ``_statistics_request(widths)`` returning keyword
    arguments of :class:`~skembed._stats.CrossMoments`, and ``_solve(stats)``
    setting ``means_``, ``_projections`` and ``_offset``. A subclass whose
    parameters include ``normalize`` gets unit-length rows before any
    statistic is taken and before any map is applied.
    """

    _parameter_constraints: dict = {
        "views": [None, Interval(Integral, 2, None, closed="left"), list, dict],
        "combine": [StrOptions({"concat", "mean", "similarity"})],
    }

    # ------------------------------------------------------------------ hooks
    def _statistics_request(self, widths):  # pragma: no cover - abstract
        raise NotImplementedError

    def _solve(self, stats):  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_statistics(self, stats):
        """Data-dependent checks run before ``_solve``."""
        if stats.n_samples_ < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples, got "
                f"n_samples = {stats.n_samples_}."
            )

    @property
    def _l2_rows(self):
        return getattr(self, "normalize", None) == "l2"

    # -------------------------------------------------------------------- fit
    def _accumulate(self, X, *, reset):
        """Add the moments of X to ``self._stats`` (a new one when ``reset``).

        The moments of X are taken apart and checked before they are merged,
        so a chunk holding NaN leaves earlier ``partial_fit`` calls intact. A
        Dask X is reduced block by block with a tree of merges.
        """
        dask_input = is_dask_collection(X)
        if dask_input:
            views = check_dask_views(self, X, reset=reset)
            dtype = views.dtype
        else:
            # NaN and infinity reach the moments; checking them there saves
            # a pass over X.
            with config_context(assume_finite=True):
                blocks = check_views(self, X, reset=reset)
            dtype = blocks[0].dtype
        widths = self.n_features_per_view_
        moments = partial(
            _view_moments,
            n_views=len(widths),
            request=self._statistics_request(widths),
            l2_rows=self._l2_rows,
        )
        if dask_input:
            # Dask already runs one task per block on every core.
            moments = partial(moments, n_threads=1)
            stats = reduce_views(views, moments, merge_moments)
        else:
            stats = moments(blocks)
        if not stats.is_finite():
            raise _non_finite_error(self, dtype)
        if reset or not hasattr(self, "_stats"):
            self._stats = stats
        else:
            self._stats.merge(stats)
        self._fit_dtype = dtype
        return self._stats

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the per-view maps from row-paired views.

        Parameters
        ----------
        X : array-like, DataFrame or list of arrays
            The views, split as the ``views`` parameter says: row ``i`` of
            every view embeds the same item.
        y : None
            Ignored; present for Pipeline compatibility (class labels
            travel here, never a second embedding).

        Returns
        -------
        self : object
            The fitted aligner.
        """
        stats = self._accumulate(X, reset=True)
        self._check_statistics(stats)
        self._solve(stats)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Update the statistics with a chunk of rows and refit the maps.

        The accumulated statistics equal those of ``fit`` on all chunks
        stacked, up to float rounding: they are mergeable sums. The maps are
        computed from the statistics alone, so they equal ``fit``'s wherever
        the statistics determine them stably; where the fitted objective has
        several minimisers (e.g. a Procrustes rotation when the
        cross-covariance has zero singular values), rounding may select
        another one, with the same objective value. See each estimator's
        Notes.

        Parameters
        ----------
        X : array-like, DataFrame or list of arrays
            A chunk of row-paired views, laid out as in the first call.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The updated aligner.
        """
        first = not hasattr(self, "_stats")
        stats = self._accumulate(X, reset=first)
        self._check_statistics(stats)
        self._solve(stats)
        return self

    # -------------------------------------------------------------- transform
    @property
    def n_components_(self):
        """Width m of the shared space."""
        check_is_fitted(self, "means_")
        return self._projections[0].shape[1]

    def _affine_plan(self, k, dtype, *, offset):
        """Projection and bias of f_k in ``dtype``; None for identity and zero."""
        projection = self._projections[k]
        bias = self.means_[k] @ projection
        if offset:
            bias = bias - self._offset
        if projection.shape[0] == projection.shape[1] and np.array_equal(
            projection, np.eye(projection.shape[0])
        ):
            projection = None
        else:
            projection = projection.astype(dtype, copy=False)
        bias = bias.astype(dtype)
        return projection, (bias if bias.any() else None)

    def _row_step(self, width, dtype):
        return chunk_rows(width, np.dtype(dtype).itemsize, budget=_TRANSFORM_BUDGET)

    def _map(self, block, k, *, offset=True):
        """Apply f_k to raw rows, writing the output once in the input dtype."""
        projection, bias = self._affine_plan(k, block.dtype, offset=offset)
        m = self._projections[k].shape[1]
        out = np.empty((block.shape[0], m), dtype=block.dtype)
        step = self._row_step(block.shape[1] + m, block.dtype)

        def fill(start, stop):
            for first in range(start, stop, step):
                rows = slice(first, min(stop, first + step))
                _affine_into(block[rows], out[rows], projection, bias, self._l2_rows)

        for _ in map_row_groups(fill, row_groups(block.shape[0], step)):
            pass
        return out

    def _chunk_mapper(self, dtype, *, offset):
        """``map_chunk(block, k, out)`` writing f_k of a row chunk into ``out``."""
        if type(self)._map is not BaseAligner._map:
            # A subclass with its own map: its output is chunk-sized.
            def map_chunk(block, k, out):
                out[...] = self._map(block, k, offset=offset)

            return map_chunk
        plans = [
            self._affine_plan(k, dtype, offset=offset)
            for k in range(len(self._projections))
        ]

        def map_chunk(block, k, out):
            _affine_into(block, out, *plans[k], self._l2_rows)

        return map_chunk

    def _n_combined_features(self):
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
        map_chunk = self._chunk_mapper(dtype, offset=not similarity)
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
                if check_finite and not _all_finite(out[rows]):
                    raise _non_finite_error(self, dtype)

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
            norms = [_row_norms(z) for z in mapped]
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
            the mapped views of each pair, computed in the centred shared
            space.
        """
        check_is_fitted(self, "means_")
        # Non-finite rows are caught in the output chunks, still in cache,
        # instead of by a separate pass over X.
        check_finite = not get_config()["assume_finite"]
        if is_dask_collection(X):
            views = check_dask_views(self, X, reset=False)
            # Dask already runs one task per block on every core.
            combine = partial(self._combine, check_finite=check_finite, n_threads=1)
            return map_views(views, combine, self._n_combined_features())
        with config_context(assume_finite=True):
            blocks = check_views(self, X, reset=False)
        return self._combine(blocks, check_finite=check_finite)

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
            The embeddings in the shared space, in the input float dtype.
        """
        check_is_fitted(self, "means_")
        k = resolve_view(self, view)
        block = check_view_block(self, X_view, k)
        return self._map(block, k)

    def _back_projection(self, k):
        """Least-squares inverse of P_k (m x d_k); subclasses may refine it."""
        return np.linalg.pinv(self._projections[k])

    def inverse_transform_view(self, Z, view):
        """Map shared-space rows back into one view's own space.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_components_)
            Rows in the shared space.
        view : int or str
            The view whose space to return to.

        Returns
        -------
        X_view : ndarray of shape (n_samples, n_features_of_view)
            Rows in the view's space (with ``normalize="l2"``: in the space of
            its unit-length rows).
        """
        check_is_fitted(self, "means_")
        k = resolve_view(self, view)
        Z = self._check_shared(Z)
        back = self._back_projection(k)
        bias = self.means_[k] - self._offset @ back
        out = Z @ back.astype(Z.dtype)
        out += bias.astype(Z.dtype)
        return out

    def _check_shared(self, Z):
        from sklearn.utils import check_array

        Z = check_array(Z, dtype=[np.float64, np.float32], input_name="Z")
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"Z has {Z.shape[1]} columns, but the shared space of this "
                f"{type(self).__name__} has n_components_ = {self.n_components_}."
            )
        return Z

    def translate(self, X_view, source, target):
        """Map one view's embeddings into another view's own space.

        For example, queries embedded by a new model are translated into the
        space of an index built with the old model. Nearest-neighbour search
        works best in the centred shared space (``transform_view`` of both
        sides, minus the common offset) or with CSLS; searching in the
        target's raw space is also possible but cosine there is dominated by
        the target model's mean direction when it has one.

        Parameters
        ----------
        X_view : array-like of shape (n_samples, n_features_of_source)
            Embeddings from the source model.
        source, target : int or str
            Index or name of the source and target views.

        Returns
        -------
        X_target : ndarray of shape (n_samples, n_features_of_target)
            The rows expressed in the target view's space.
        """
        check_is_fitted(self, "means_")
        k = resolve_view(self, source)
        block = check_view_block(self, X_view, k)
        return self.inverse_transform_view(self._map(block, k), target)

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
        from skembed.metrics import _alignment_score

        return _alignment_score(self, X)

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored apart from validation; output names derive from the views.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``"<view>__<prefix><j>"`` for ``combine="concat"``,
            ``"<prefix><j>"`` for ``"mean"`` and ``"cosine__<a>__<b>"`` for
            ``"similarity"``.
        """
        check_is_fitted(self, "means_")
        prefix = type(self).__name__.lower()
        m = self.n_components_
        if self.combine == "similarity":
            names = [f"cosine__{a}__{b}" for a, b in combinations(self.view_names_, 2)]
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
