"""Relative representations: embeddings as similarities to shared anchor items.

Two models trained apart embed the same items in spaces related, to a good
approximation, by an angle-preserving map. The cosine between an item and a
fixed set of *anchor* items is then (nearly) the same in both spaces, so the
vector of those cosines is a coordinate system that every model shares
without any map being learnt (Moschella et al., ICLR 2023).
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skembed._base import VIEW_OPTIONAL, VIEW_STATE, BaseAligner, state_kept_on_error
from skembed._stats import centred_rows, divide_by_row_norms, unit_rows
from skembed._views import check_views, check_y_is_not_a_view
from skembed._warnings import warn

__all__ = ["RelativeProjector"]


def _kmeans_plusplus_rows(blocks, n_anchors, rng):
    """Row indices chosen by k-means++ seeding on all views at once.

    Each view is centred and its rows scaled to unit length, so that every
    view counts equally in the distance whatever its width or scale.
    """
    from sklearn.cluster import kmeans_plusplus

    joined = np.hstack(
        [unit_rows(block - block.mean(axis=0, dtype=np.float64)) for block in blocks]
    )
    _, indices = kmeans_plusplus(joined, n_anchors, random_state=rng)
    indices = np.asarray(indices, dtype=np.intp)
    # Seeding can only repeat a row when the remaining rows all coincide with
    # chosen ones; fill such repeats with unused rows.
    unique = np.unique(indices)
    if len(unique) < n_anchors:
        unused = np.setdiff1d(np.arange(joined.shape[0]), unique)
        extra = rng.choice(unused, n_anchors - len(unique), replace=False)
        indices = np.concatenate([unique, extra])
    return indices


class RelativeProjector(BaseAligner):
    """Represent every view by its cosine similarities to shared anchor items.

    At fit, ``n_anchors`` training rows are chosen as anchors: the same items
    in every view. A row of view k is then represented by its cosine
    similarities to the anchors' embeddings in view k. Two models that embed
    items at the same angles give the same representation, so the relative
    spaces of all views are directly comparable, with no map learnt.

    Parameters
    ----------
    n_anchors : int, default=1000
        Number of anchor rows. More anchors describe each item more finely:
        on real sentence embeddings, held-out cross-model retrieval rises
        steadily from 100 to 1000 anchors. With ``"random"`` or
        ``"kmeans++"`` anchors and fewer training rows than ``n_anchors``,
        every training row becomes an anchor, with a warning. When
        ``anchors`` is an array, it must equal the number of indices given.
    views : None, int, list or dict, default=None
        How X splits into views; see :class:`ProcrustesAligner`.
    anchors : {"random", "kmeans++"} or array-like of int, default="random"
        How to choose the anchors: uniformly at random among the training
        rows; by k-means++ seeding on all views together (centred, rows at
        unit length), which spreads the anchors over the data at a cost of
        about ``n_samples * n_anchors * log(n_anchors)`` distances; or the
        given distinct row indices of the training data.
    similarity : {"cosine"}, default="cosine"
        Similarity between a row and an anchor.
    center : bool, default=True
        Subtract each view's training mean from rows and anchors before
        taking cosines. Models whose vectors share a large common direction
        (mean cosine of random pairs 0.8 for e5) otherwise give every item
        nearly the same similarities.
    combine : {"concat", "mean", "similarity"}, default="concat"
        How ``transform`` combines the views: ``"concat"`` gives
        ``n_views * n_anchors`` columns, ``"mean"`` the ``n_anchors`` mean
        similarities, ``"similarity"`` the cosine between the relative
        representations of each pair of views.
    random_state : int, RandomState instance or None, default=None
        Seed of the anchor choice for ``"random"`` and ``"kmeans++"``.

    Attributes
    ----------
    anchor_indices_ : ndarray of shape (n_anchors,)
        Training rows used as anchors.
    anchor_embeddings_ : list of ndarray of shape (n_anchors, n_features_of_view)
        The anchors' raw embeddings in each view.
    means_ : list of ndarray of shape (n_features_of_view,)
        Mean of each view's training rows (zeros when ``center=False``).
    n_components_ : int
        Width of one view's relative representation (the number of anchors).
    view_names_ : list of str
        Names of the views.
    n_features_per_view_ : list of int
        Width of each view.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    ProcrustesAligner : Learn a rotation between the views instead.
    ContrastiveAligner : Learn projections with a contrastive loss.

    Notes
    -----
    With anchors :math:`a_1, \\dots, a_n` (rows of view k) and the view's mean
    :math:`\\mu_k`, a row x becomes

    .. math::

        r_k(x)_j = \\cos(x - \\mu_k,\\, a_j - \\mu_k), \\qquad j = 1, \\dots, n.

    If a view is replaced by :math:`c X Q + 1 t^\\top` (any orthogonal Q, scale
    :math:`c > 0`, shift t; the shift only with ``center=True``), its relative
    representation does not change at all, which is why it transfers between
    models whose spaces differ by such a map.

    The map is not affine and keeps only angles to the anchors, so there is no
    way back into a view's own space: ``translate``, ``inverse_transform_view``
    and ``partial_fit`` (the anchors are chosen once, at fit) are not offered.
    Compare views in the relative space instead (``transform_view`` of each
    side, or ``score``).

    References
    ----------
    .. [1] L. Moschella, V. Maiorca, M. Fumero, A. Norelli, F. Locatello and
       E. Rodolà, "Relative representations enable zero-shot latent space
       communication", ICLR 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import ortho_group
    >>> from skembed import RelativeProjector
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(200, 8))
    >>> B = 3.0 * A @ ortho_group.rvs(8, random_state=0) + 1.0
    >>> projector = RelativeProjector(n_anchors=20, random_state=0).fit([A, B])
    >>> projector.transform([A, B]).shape
    (200, 40)
    >>> Z_A, Z_B = projector.transform_view(A, 0), projector.transform_view(B, 1)
    >>> bool(np.allclose(Z_A, Z_B))
    True
    >>> projector.score([A, B])
    1.0
    """

    _saved_state = (
        *VIEW_STATE,
        "means_",
        "anchor_indices_",
        "anchor_embeddings_",
        "_unit_anchors",
    )
    _saved_optional = (*VIEW_OPTIONAL, "_fitted_center")

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "n_anchors": [Interval(Integral, 1, None, closed="left")],
        "anchors": [StrOptions({"random", "kmeans++"}), "array-like"],
        "similarity": [StrOptions({"cosine"})],
        "center": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_anchors=1000,
        *,
        views=None,
        anchors="random",
        similarity="cosine",
        center=True,
        combine="concat",
        random_state=None,
    ):
        self.n_anchors = n_anchors
        self.views = views
        self.anchors = anchors
        self.similarity = similarity
        self.center = center
        self.combine = combine
        self.random_state = random_state

    _absent_capabilities = {
        "partial_fit": (
            "its anchors are rows chosen once, at fit. Call fit on all rows."
        ),
        "translate": (
            "a relative representation keeps only each row's cosines to the "
            "anchors, so it cannot be mapped back into a view's own space. Compare "
            "the views in the relative space (transform_view of each side), or "
            "translate with an aligner such as ProcrustesAligner."
        ),
        "inverse_transform_view": (
            "a relative representation keeps only each row's cosines to the "
            "anchors, so it cannot be mapped back into a view's own space."
        ),
    }

    # -------------------------------------------------------------------- fit
    def _anchor_indices(self, blocks, n_samples):
        if isinstance(self.anchors, str):
            n_anchors = self.n_anchors
            if n_anchors > n_samples:
                warn(
                    f"n_anchors={self.n_anchors} exceeds the number of training "
                    f"rows (n_samples = {n_samples}); anchors are distinct "
                    f"training rows, so all {n_samples} are used. Pass "
                    f"n_anchors <= {n_samples} to silence this warning.",
                    UserWarning,
                )
                n_anchors = n_samples
            rng = check_random_state(self.random_state)
            if self.anchors == "random":
                indices = rng.choice(n_samples, n_anchors, replace=False)
            else:
                indices = _kmeans_plusplus_rows(blocks, n_anchors, rng)
            return np.sort(indices)
        indices = np.asarray(self.anchors)
        if indices.ndim != 1 or (
            indices.size and not np.issubdtype(indices.dtype, np.integer)
        ):
            raise ValueError(
                "anchors must be 'random', 'kmeans++' or a 1-D array of integer "
                f"row indices; got an array of shape {indices.shape} and dtype "
                f"{indices.dtype}."
            )
        if len(indices) == 0:
            raise ValueError(
                "anchors holds no row index; pass at least one training row "
                "index, or anchors='random' or 'kmeans++'."
            )
        if len(indices) != self.n_anchors:
            raise ValueError(
                f"anchors holds {len(indices)} row indices but n_anchors="
                f"{self.n_anchors}; pass n_anchors={len(indices)}."
            )
        outside = indices[(indices < 0) | (indices >= n_samples)]
        if outside.size:
            raise ValueError(
                f"anchors holds row indices outside [0, {n_samples - 1}] (the "
                f"training rows): {outside[:10].tolist()}. Pass indices of rows "
                "of X."
            )
        values, counts = np.unique(indices, return_counts=True)
        if np.any(counts > 1):
            raise ValueError(
                f"anchors holds repeated row indices {values[counts > 1][:10].tolist()}"
                "; every anchor must be a distinct row."
            )
        return indices.astype(np.intp)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Choose the anchor rows and store their embeddings in every view.

        Parameters
        ----------
        X : array-like, DataFrame or list of arrays
            The views, split as the ``views`` parameter says: row ``i`` of
            every view embeds the same item.
        y : None
            Ignored; present for Pipeline compatibility.

        Returns
        -------
        self : object
            The fitted projector.
        """
        check_y_is_not_a_view(self, X, y)
        with state_kept_on_error(self):
            blocks = check_views(self, X, reset=True)
            n_samples = blocks[0].shape[0]
            if n_samples < 2:
                raise ValueError(
                    "RelativeProjector needs at least 2 samples (its anchors are "
                    f"centred training rows), got n_samples = {n_samples}."
                )
            indices = self._anchor_indices(blocks, n_samples)
            if self.center:
                means = [block.mean(axis=0, dtype=np.float64) for block in blocks]
            else:
                means = [np.zeros(block.shape[1]) for block in blocks]
            self.anchor_indices_ = indices
            self.anchor_embeddings_ = [
                np.asarray(block[indices], dtype=np.float64) for block in blocks
            ]
            self.means_ = means
            self._fitted_center = bool(self.center)
            self._unit_anchors = [
                unit_rows(anchor - mean)
                for anchor, mean in zip(self.anchor_embeddings_, means, strict=True)
            ]
            return self

    # -------------------------------------------------------------- transform
    @property
    def n_components_(self):
        """Width of one view's relative representation (the number of anchors)."""
        check_is_fitted(self, "means_")
        return len(self.anchor_indices_)

    def _centred_at_fit(self):
        """Whether fit centred the anchors; refuses a center changed since.

        The anchors were centred (or not) as ``center`` said at fit: rows
        centred otherwise would be compared with them in another frame, a
        hybrid of the two settings, with no error. Models written before the
        record are judged by their means (all zero when fit did not centre).
        """
        fitted = getattr(
            self, "_fitted_center", any(np.any(mean) for mean in self.means_)
        )
        if hasattr(self, "_fitted_center") and fitted != bool(self.center):
            raise ValueError(
                f"This RelativeProjector was fitted with center={fitted} and "
                f"center is now {self.center}: its anchors were "
                f"{'centred on' if fitted else 'not centred on'} the training "
                "means at fit. Set center back with set_params, or call fit again."
            )
        return fitted

    def _map(self, block, k, *, offset=None):
        """Cosines of raw rows of view k to its anchors, in the input dtype."""
        dtype = block.dtype
        centred = (
            centred_rows(block, self.means_[k]) if self._centred_at_fit() else block
        )
        out = centred @ self._unit_anchors[k].T.astype(dtype)
        divide_by_row_norms(out, centred)
        return out
