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

from itertools import combinations
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skembed._stats import CrossMoments, chunk_rows
from skembed._views import check_view_block, check_views, resolve_view

__all__ = ["BaseAligner"]


def _row_norms(block):
    norms = np.sqrt(np.einsum("ij,ij->i", block, block))
    # A zero row stays zero rather than becoming NaN.
    norms[norms == 0] = 1
    return norms


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

    def _preprocess(self, blocks):
        if not self._l2_rows:
            return blocks
        return [block / _row_norms(block)[:, None] for block in blocks]

    # -------------------------------------------------------------------- fit
    def _accumulate(self, X, *, reset):
        blocks = check_views(self, X, reset=reset)
        if reset:
            self._stats = CrossMoments(
                len(blocks), **self._statistics_request(self.n_features_per_view_)
            )
        chunk = chunk_rows(max(self.n_features_per_view_), blocks[0].dtype.itemsize)
        for start in range(0, blocks[0].shape[0], chunk):
            chunk_blocks = [block[start : start + chunk] for block in blocks]
            self._stats.update(self._preprocess(chunk_blocks), chunk_size=chunk)
        self._fit_dtype = blocks[0].dtype
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

        The result equals ``fit`` on all chunks stacked, up to float
        rounding, because the maps depend on the data only through
        mergeable sums.

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

    def _map(self, block, k, *, offset=True):
        """Apply f_k to raw rows, writing the output once in the input dtype."""
        projection = self._projections[k].astype(block.dtype, copy=False)
        out = block @ projection
        if self._l2_rows:
            # Row scaling commutes with the right product: normalise the
            # output instead of copying the input.
            out /= _row_norms(block)[:, None]
        bias = self.means_[k] @ self._projections[k]
        if offset:
            bias = bias - self._offset
        out -= bias.astype(block.dtype)
        return out

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
        X : array-like, DataFrame or list of arrays
            Row-paired views, laid out as at fit.

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_features_out)
            ``combine="concat"``: the K mapped views side by side;
            ``"mean"``: their average; ``"similarity"``: the cosine between
            the mapped views of each pair, computed in the centred shared
            space.
        """
        if self.combine == "similarity":
            mapped = self._transform_views(X, offset=False)
            columns = []
            for a, b in combinations(range(len(mapped)), 2):
                num = np.einsum("ij,ij->i", mapped[a], mapped[b])
                den = _row_norms(mapped[a]) * _row_norms(mapped[b])
                columns.append(num / den)
            return np.stack(columns, axis=1)
        mapped = self._transform_views(X, offset=True)
        if self.combine == "mean":
            out = mapped[0]
            for other in mapped[1:]:
                out += other
            out /= len(mapped)
            return out
        return np.hstack(mapped)

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
