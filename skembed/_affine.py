"""Aligners whose every view map is a stored affine map.

For each view k the map into the shared space is

.. math::

    f_k(x) = (x - \\mu_k) P_k + c

with :math:`P_k` (d_k x m) carrying any isotropic scale and ``c`` an offset
common to all views (zero unless the aligner returns a reference view's raw
frame). :class:`AffineMapMixin` applies such maps fast, in cache-sized row
chunks written once into the output, and inverts them: ``translate`` and
``inverse_transform_view`` are offered by exactly the aligners whose maps are
affine.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from functools import partial

import numpy as np
from sklearn.utils.validation import check_is_fitted

from skembed._dask import map_dask_view
from skembed._parallel import map_row_groups, row_groups
from skembed._stats import divide_by_row_norms, far_from_mean
from skembed._views import (
    check_float_array,
    check_view_block,
    is_dask_collection,
    resolve_view,
)

__all__ = ["AffineMapMixin", "in_dtype"]

# Saved state of a stored affine map: view means, projections, common offset.
AFFINE_STATE = ("means_", "_projections", "_offset")


def _affine_into(block, out, projection, bias, l2_rows, centre=None):
    """Write ``(block / norms) @ projection - bias`` into ``out``.

    ``projection=None`` stands for the identity (the reference view of a
    Procrustes alignment), which needs a copy instead of a product;
    ``bias=None`` for a zero bias. ``centre`` is ``(mean, shift, rest)``:
    rows far from the fitted ``mean`` next to their spread (see
    :func:`skembed._stats.far_from_mean`) are shifted by ``shift`` (the mean
    in the block dtype) before the product, and ``rest`` (the bias left
    after it) subtracted after, so that the product does not cancel.
    """
    far = centre is not None and not l2_rows and far_from_mean(block, centre[0])
    if far:
        # (x - m) P - b = (x - s) P - ((m - s) P + b - m P): the centred rows,
        # not the raw ones, go through the product, and the mean's rounding
        # to the dtype is corrected in float64. At a mean of 1e4 and a spread
        # of 0.01, float32 outputs were off by 24% of their size.
        if projection is None:
            np.subtract(block, centre[1], out=out)
        else:
            np.matmul(block - centre[1], projection, out=out)
        bias = centre[2]
    elif projection is None:
        np.copyto(out, block)
    else:
        np.matmul(block, projection, out=out)
    if l2_rows:
        # Row scaling commutes with the right product: normalise the output
        # instead of copying the input.
        divide_by_row_norms(out, block)
    if bias is not None:
        out -= bias
    return out


def in_dtype(projection, dtype):
    """``projection`` in ``dtype``, or in float64 where ``dtype`` cannot hold it.

    The maps of rows of tiny or huge scale have entries of the inverse
    scale: CCA's whitening of float32 rows near 1e-40 (below float32's
    normal range) has entries near 1e40, beyond float32's largest value.
    Cast, they became infinite and every output NaN; kept in float64, the
    product of such a chunk runs in float64 and is rounded to ``dtype`` once.
    """
    if np.dtype(dtype).itemsize < 8:
        peak = float(np.max(np.abs(projection), initial=0.0))
        info = np.finfo(dtype)
        # Within the dtype's normal range, with room for the sums of a product.
        if peak and not float(info.tiny) * 2**24 <= peak <= float(info.max) / 2**24:
            return np.asarray(projection, dtype=np.float64)
    return projection.astype(dtype, copy=False)


def _centring(mean, projection, bias, dtype):
    """The ``centre`` of :func:`_affine_into` for ``x @ projection - bias``
    about a fitted ``mean`` (float64), or None for a mean of zero."""
    if not mean.any():
        return None
    shift = mean.astype(dtype)
    rest = bias - shift.astype(np.float64) @ projection
    return mean, shift, rest.astype(dtype)


class AffineMapMixin:
    """Stored affine maps: fast chunked transform, ``translate``, inverses.

    A subclass sets, when fitted, ``means_`` (one mean per view),
    ``_projections`` (one d_k x m matrix per view) and ``_offset`` (the
    common offset c, in the shared space); it may refine the least-squares
    back-map of a view (``_back_projection``).
    """

    @property
    def n_components_(self):
        """Width m of the shared space."""
        check_is_fitted(self, "means_")
        return self._projections[0].shape[1]

    def _affine_plan(self, k, dtype, *, offset):
        """Projection, bias and centring of f_k in ``dtype`` (see _affine_into).

        None stands for the identity, a zero bias, and no centring.
        """
        projection = self._projections[k]
        mean = np.asarray(self.means_[k], dtype=np.float64)
        bias = mean @ projection
        if offset:
            bias = bias - self._offset
        centre = _centring(mean, projection, bias, dtype)
        if projection.shape[0] == projection.shape[1] and np.array_equal(
            projection, np.eye(projection.shape[0])
        ):
            projection = None
        else:
            projection = in_dtype(projection, dtype)
        bias = bias.astype(dtype)
        return projection, (bias if bias.any() else None), centre

    def _map(self, block, k, *, offset=None):
        """Apply f_k to raw rows, writing the output once in the input dtype.

        ``offset=None`` follows the output frame (see ``_reference_frame``);
        True or False force the common offset in or out.
        """
        if offset is None:
            offset = self._reference_frame
        projection, bias, centre = self._affine_plan(k, block.dtype, offset=offset)
        width = self._projections[k].shape[1]
        return self._apply_affine(block, projection, bias, width, centre)

    def _apply_affine(self, block, projection, bias, width, centre=None):
        """``block @ projection + bias`` (None: identity, zero) in row chunks.

        The output is written once, in the input dtype; chunk groups run on
        the BLAS threads. ``centre``: see :func:`_affine_into`.
        """
        l2_rows = self._fitted_l2_rows()
        out = np.empty((block.shape[0], width), dtype=block.dtype)
        step = self._row_step(block.shape[1] + width, block.dtype)

        def fill(start, stop):
            for first in range(start, stop, step):
                rows = slice(first, min(stop, first + step))
                _affine_into(block[rows], out[rows], projection, bias, l2_rows, centre)

        for _ in map_row_groups(fill, row_groups(block.shape[0], step)):
            pass
        return out

    def _chunk_mapper(self, dtype, *, offset):
        """``map_chunk(block, k, out)`` writing f_k of a row chunk into ``out``."""
        l2_rows = self._fitted_l2_rows()
        plans = [
            self._affine_plan(k, dtype, offset=offset)
            for k in range(len(self._projections))
        ]

        def map_chunk(block, k, out):
            projection, bias, centre = plans[k]
            _affine_into(block, out, projection, bias, l2_rows, centre)

        return map_chunk

    def _back_projection(self, k):
        """Least-squares inverse of P_k (m x d_k); subclasses may refine it."""
        return np.linalg.pinv(self._projections[k])

    def _kept_back_projection(self, k):
        """``_back_projection(k)``, formed once per fitted map.

        The pseudo-inverse of the default took 14 ms for a 384 x 384 map,
        against 0.1 ms for the product of one row: inverse_transform_view
        paid it on every call. A refit replaces ``_projections[k]``, which
        invalidates the kept one, as for the translation plans. Subclasses
        with a refined back-map of their own keep their own.
        """
        if type(self)._back_projection is not AffineMapMixin._back_projection:
            return self._back_projection(k)
        projection = self._projections[k]
        kept = self.__dict__.setdefault("_kept_back_maps", {})
        entry = kept.get(k)
        if entry is None or entry[0] is not projection:
            entry = (projection, self._back_projection(k))
            kept[k] = entry
        return entry[1]

    def __getstate__(self):
        # The kept plans and back-maps are derived from the fitted maps, and
        # doubled the size of a pickle (8 -> 17 MB for a Procrustes model
        # whose every translation had run).
        state = super().__getstate__()
        if "_translation_plans" in state or "_kept_back_maps" in state:
            state = dict(state)
            state.pop("_translation_plans", None)
            state.pop("_kept_back_maps", None)
        return state

    def inverse_transform_view(self, Z, view):
        """Map shared-space rows back into one view's own space.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_components_)
            Rows in the shared space, in the frame ``transform_view`` returns.
        view : int or str
            The view whose space to return to.

        Returns
        -------
        X_view : ndarray of shape (n_samples, n_features_of_view)
            Rows in the view's raw space (with ``normalize="l2"``: in the
            space of its unit-length rows). A lazy Dask array for a Dask
            array or DataFrame ``Z``.
        """
        check_is_fitted(self, "means_")
        k = resolve_view(self, view)
        if is_dask_collection(Z):
            # Lazily, as transform_view and translate: check_array computed
            # the whole collection into memory.
            return map_dask_view(
                self,
                Z,
                k,
                partial(self.inverse_transform_view, view=k),
                self.n_features_per_view_[k],
                check=self._check_shared,
                name="Z",
            )
        Z = self._check_shared(Z)
        return self._unmap(Z, k, offset=self._reference_frame)

    def _unmap(self, Z, k, *, offset):
        """Least-squares preimage in view k of shared rows (with or without c)."""
        back = self._kept_back_projection(k)
        bias = self.means_[k] - self._offset @ back if offset else self.means_[k]
        out = np.asarray(Z @ in_dtype(back, Z.dtype), dtype=Z.dtype)
        out += bias.astype(Z.dtype)
        return out

    def _check_shared(self, Z):
        Z = check_float_array(Z, "Z")
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"Z has {Z.shape[1]} columns, but the shared space of this "
                f"{type(self).__name__} has n_components_ = {self.n_components_}."
            )
        return Z

    def translate(self, X_view, source, target):
        """Map one view's embeddings into another view's own space.

        For example, queries embedded by a new model are translated into the
        space of an index built with the old model. The result is in the
        target model's *raw* frame, where that index lives, mean included.
        When the target model's vectors share a large common direction (e5's
        do: random pairs have cosine 0.8), plain cosine search there is
        dominated by it; search with CSLS
        (:func:`skembed.metrics.retrieval_accuracy` with ``method="csls"``),
        or centre both the index and the translated queries on the index's
        mean, or compare both sides in the centred shared space
        (``transform_view``).

        Parameters
        ----------
        X_view : array-like of shape (n_samples, n_features_of_source)
            Embeddings from the source model.
        source, target : int or str
            Index or name of the source and target views.

        Returns
        -------
        X_target : ndarray of shape (n_samples, n_features_of_target)
            The rows expressed in the target view's space (a copy of
            ``X_view`` when ``target`` is ``source``). A lazy Dask array for
            a Dask array or DataFrame ``X_view``.
        """
        check_is_fitted(self, "means_")
        k = resolve_view(self, source, parameter="source")
        t = resolve_view(self, target, parameter="target")
        if is_dask_collection(X_view):
            return self._translated_lazily(X_view, k, t)
        block = check_view_block(self, X_view, k)
        if t == k:
            # A view's rows are already in its own space. Through the shared
            # space they would come back only as far as the back-map inverts
            # the map (a narrower shared space, or a ridge map, loses part).
            return np.array(block, copy=True)
        plan = self._translation_plan(k, t, block.dtype)
        if plan is None:
            # The common offset would be added by one map and removed by the
            # other: leave it out of both.
            return self._unmap(self._map(block, k, offset=False), t, offset=False)
        projection, bias, centre = plan
        return self._apply_affine(
            block, projection, bias, projection.shape[1], centre=centre
        )

    def _translation_plan(self, k, t, dtype):
        """The composed map of ``translate`` from view k to view t, or None.

        translate is :math:`x \\mapsto (x - \\mu_k) P_k B_t + \\mu_t`, with
        :math:`B_t` the back-map of view t: one product by
        :math:`P_k B_t` (d_k x d_t) and one bias, instead of two products
        through the shared space, when that costs fewer operations per row
        (always unless the shared space is narrower than the views, as CCA's
        may be). The plan is computed once per fitted state and dtype and
        kept: a search translates queries one batch at a time, and forming
        :math:`B_t` may need a pseudo-inverse. A refit replaces the maps and
        so invalidates the kept plan.
        """
        source, target = self._projections[k], self._projections[t]
        d_k, m, d_t = source.shape[0], source.shape[1], target.shape[0]
        if d_k * d_t > m * (d_k + d_t):
            return None
        fitted = (source, target, self.means_[k], self.means_[t])
        plans = self.__dict__.setdefault("_translation_plans", {})
        key = (k, t, np.dtype(dtype).str)
        kept = plans.get(key)
        if kept is not None and all(
            a is b for a, b in zip(kept[0], fitted, strict=True)
        ):
            return kept[1]
        composed = source @ self._kept_back_projection(t)
        mean = np.asarray(self.means_[k], dtype=np.float64)
        # Row normalisation (normalize="l2") scales x P_k B_t, not the bias.
        bias = mean @ composed - self.means_[t]
        # Rows far from the source mean go through the product centred, as
        # in transform: at a mean of 1e4 and a spread of 0.01, float32
        # translations were off by 12% of their size.
        plan = (
            in_dtype(composed, dtype),
            bias.astype(dtype) if bias.any() else None,
            _centring(mean, composed, bias, dtype),
        )
        plans[key] = (fitted, plan)
        return plan
