"""Least-squares linear maps between embedding views.

The translation-matrix baseline (Mikolov et al., 2013): learn, for every view,
the ridge-regularised linear map that best predicts the reference view's
embedding of the same item. The maps are closed-form functions of the views'
Gram and cross-product blocks, so they come from the shared sufficient
statistics without another pass over the rows.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral, Real

import numpy as np
from scipy import linalg
from sklearn.utils._param_validation import Interval, StrOptions

from skembed._affine import AFFINE_STATE, AffineMapMixin
from skembed._base import VIEW_OPTIONAL, VIEW_STATE, BaseAligner
from skembed._linalg import null_tolerance, regularized_eigh
from skembed._moments import MOMENTS_OPTIONAL, MOMENTS_STATE, MomentsFitMixin
from skembed._views import resolve_view
from skembed._warnings import warn
from skembed.exceptions import ConstantViewWarning

__all__ = ["RidgeAligner"]


def _ridge_solution(eigenvalues, eigenvectors, cross, rank):
    """The ridge map ``(G + alpha I)^+ C``, of rank at most ``rank`` if given.

    ``eigenvalues`` (already shifted by alpha; zeros stand for directions
    left out, a minimum-norm least-squares solution) and ``eigenvectors``
    decompose ``G + alpha I``. Returns the map and, with a rank, the r
    directions V of the reduced-rank solution ``W V V^T`` (else None).
    """
    inverse = np.divide(
        1.0, eigenvalues, out=np.zeros_like(eigenvalues), where=eigenvalues > 0
    )
    # (G + alpha I)^{-1} C through the eigendecomposition of G.
    rotated = eigenvectors.T @ cross
    ridge_map = eigenvectors @ (rotated * inverse[:, None])
    if rank is None:
        return ridge_map, None
    # W^T (G + alpha I) W = H^T H with H = E^T C / sqrt(lambda): the leading
    # right singular vectors of H span the best rank-r fit.
    _, _, right = linalg.svd(rotated * np.sqrt(inverse)[:, None], full_matrices=False)
    directions = right[:rank].T
    return (ridge_map @ directions) @ directions.T, directions


def _pseudo_eigh(gram, alpha, dtype):
    """Eigendecomposition of ``gram + alpha I`` with numerically null values zeroed.

    For the back-maps, which regress a view on the reference view: unlike
    the maps the user asked for, they do not refuse a singular reference
    view at ``alpha=0`` but fall back to the minimum-norm solution. Without
    regularisation, what lies below the rounding of the input ``dtype``
    counts as null (as in ``regularized_eigh``).
    """
    eigenvalues, eigenvectors = linalg.eigh(gram)
    eigenvalues = np.maximum(eigenvalues, 0.0) + alpha
    precision = dtype if alpha == 0 else np.float64
    tolerance = null_tolerance(gram.shape[0], precision) * max(eigenvalues[-1], 0.0)
    eigenvalues[eigenvalues <= tolerance] = 0.0
    return eigenvalues, eigenvectors


def warn_constant_maps(aligner, constant, reference):
    """Warn that the views numbered ``constant`` map every row to one point.

    Their regressions are zero maps (of a constant reference, every map onto
    it is): retrieval across views is at chance, as with an encoder that
    returns one vector for every text.
    """
    names = [aligner.view_names_[k] for k in constant]
    if not names:
        return
    message = (
        f"{type(aligner).__name__}: view(s) {names} are constant over the "
        "training rows (no variance about their mean), so their maps send "
        "every row to one point"
        + (" and every map onto the reference is zero" if reference in constant else "")
        + ": retrieval across views will be at chance. Check the embeddings of "
        "those views."
    )
    warn(ConstantViewWarning(message, names))


class RidgeAligner(MomentsFitMixin, AffineMapMixin, BaseAligner):
    """Map every embedding view onto a reference view by ridge regression.

    For each non-reference view k, learns the affine map that predicts the
    reference view's embedding of an item from view k's embedding of it, by
    regularised least squares. The shared space is the reference view's own
    space, so the reference passes through unchanged. Each map equals
    :class:`sklearn.linear_model.Ridge` fitted with view k as X and the
    reference view as the (multi-output) target. For float32 views the Gram
    matrices are summed in float64 from float32 products of row chunks: a
    direction of a view whose variance is below about 1e-6 of the largest
    (near-duplicate columns, with a small ``alpha``) is resolved only to
    that precision, and the map along it can differ from Ridge's. Pass
    float64 views for such data.

    Parameters
    ----------
    alpha : float, default=1.0
        Ridge penalty, as in :class:`sklearn.linear_model.Ridge`: added to the
        diagonal of the (centred when ``fit_intercept``) Gram matrix
        :math:`X_k^\\top X_k`, which is not divided by the number of rows.
        ``alpha=0`` is ordinary least squares and needs full-rank views.
    views : None, int, list or dict, default=None
        How X splits into views; see the user guide. None means two contiguous
        column blocks (the first one column wider when the width is odd).
    reference : int or str, default=0
        The view whose space is the shared space (index or view name).
    fit_intercept : bool, default=True
        Whether to fit an intercept, i.e. to centre the views before the
        regression and map means onto means. Without it, the maps are
        linear (through the origin).
    output_frame : {"centered", "reference"}, default="centered"
        Frame of the rows ``transform`` and ``transform_view`` return.
        ``"centered"``: the shared space centred on the image of the training
        rows' mean, as PCA and CCA return it; cosine search across views
        works there as it is. ``"reference"``: the reference view's raw
        frame, i.e. its training mean added back, so that mapped rows sit
        beside the reference model's own raw vectors (what
        ``translate(..., target=<reference>)`` returns; search it with CSLS
        or after centring, see ``translate``).
    combine : {"concat", "mean", "similarity"}, default="concat"
        How ``transform`` combines the mapped views.
    rank : int or None, default=None
        Largest rank of every map (reduced-rank ridge regression, the
        "low-rank affine" adapter): the ridge map projected on the ``rank``
        leading directions of its fitted values (see Notes). At most the
        smaller width of a view and the reference; None keeps full rank.
        A low rank has fewer parameters to estimate from few pairs, and its
        map factors into ``rank * (d_k + d_r)`` numbers.

    Attributes
    ----------
    maps_ : list of ndarray of shape (n_features_of_view, n_features_of_reference)
        The linear map of each view (the identity for the reference):
        ``maps_[k]`` is ``Ridge(...).fit(X_k, X_reference).coef_.T``.
    intercepts_ : list of ndarray of shape (n_features_of_reference,)
        The intercept of each view's map (zeros for the reference), so that
        view k maps to ``X_k @ maps_[k] + intercepts_[k]``.
    means_ : list of ndarray of shape (n_features_of_view,)
        Mean of each view's training rows; zeros when ``fit_intercept=False``.
    reference_ : int
        Index of the reference view.
    n_components_ : int
        Width of the shared space (the reference view's width).
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
    ProcrustesAligner : Orthogonal maps onto a reference view.
    CCAAligner : Maximally correlated projections of every view.
    sklearn.linear_model.Ridge : The same regression, one view pair at a time.

    Notes
    -----
    With :math:`\\tilde X_k = X_k - 1\\mu_k^\\top` (or :math:`X_k` itself when
    ``fit_intercept=False``, with :math:`\\mu_k = 0`), the map of view k onto
    the reference r minimises

    .. math::

        \\|\\tilde X_k W - \\tilde X_r\\|_F^2 + \\alpha \\|W\\|_F^2, \\qquad
        W_k = (\\tilde X_k^\\top \\tilde X_k + \\alpha I)^{-1}
        \\tilde X_k^\\top \\tilde X_r,

    and the view map is :math:`f_k(x) = (x - \\mu_k) W_k + \\mu_r`. This is the
    translation matrix that Mikolov et al. (2013) learnt between word-vector
    spaces of two languages. Unlike an orthogonal map it may stretch and
    shrink directions, which helps when the models differ by more than a
    rotation and hurts (hubness) when few pairs are available, where
    ``alpha`` matters.

    Only :math:`X_k^\\top X_k`, :math:`X_k^\\top X_r` and column sums are
    accumulated, so ``partial_fit`` over chunks gives the same maps as
    ``fit``. ``translate`` into a non-reference view j (and
    ``inverse_transform_view``) uses the back-map
    :math:`B_j = (\\tilde X_r^\\top \\tilde X_r + \\alpha I)^{-1}
    \\tilde X_r^\\top \\tilde X_j`, the ridge regression (same ``alpha``
    and ``rank``) of view j on the reference view, from the same kind of
    statistics. So between the reference and another view, ``translate`` is
    the ridge regression in the direction asked, whichever of the two is the
    reference; between two other views it predicts the reference view's
    rows, then regresses the target view on them.

    With ``rank=r``, each map minimises the same objective among maps of
    rank at most r. Ridge is least squares on the augmented rows
    :math:`[\\tilde X_k; \\sqrt{\\alpha} I]` with targets
    :math:`[\\tilde X_r; 0]`, so the constrained solution is reduced-rank
    regression there [2]_: :math:`W_k V V^\\top`, with V the r leading
    eigenvectors of the augmented fitted values' second moment
    :math:`W_k^\\top (\\tilde X_k^\\top \\tilde X_k + \\alpha I) W_k =
    W_k^\\top \\tilde X_k^\\top \\tilde X_r` (d_r x d_r, from the same
    statistics).

    References
    ----------
    .. [1] T. Mikolov, Q. V. Le and I. Sutskever, "Exploiting similarities
       among languages for machine translation", arXiv:1309.4168, 2013.
    .. [2] A. Mukherjee and J. Zhu, "Reduced rank ridge regression and its
       kernel extensions", Statistical Analysis and Data Mining 4(6),
       612-622, 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from skembed import RidgeAligner
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(300, 6))
    >>> M = rng.normal(size=(6, 4))
    >>> B = A @ M + 1.0
    >>> aligner = RidgeAligner(alpha=1e-6, reference=1).fit([A, B])
    >>> bool(np.allclose(aligner.maps_[0], M, atol=1e-6))
    True
    >>> Z = aligner.transform_view(A, 0)  # centred shared space
    >>> bool(np.allclose(Z, B - B.mean(axis=0), atol=1e-6))
    True
    >>> aligner.transform([A, B]).shape
    (300, 8)
    """

    _saved_state = (
        *VIEW_STATE,
        *AFFINE_STATE,
        *MOMENTS_STATE,
        "reference_",
        "maps_",
        "intercepts_",
        "_back_projections",
    )
    _saved_optional = (*VIEW_OPTIONAL, *MOMENTS_OPTIONAL)

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="left")],
        "reference": [Integral, str],
        "fit_intercept": ["boolean"],
        "output_frame": [StrOptions({"centered", "reference"})],
        "rank": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        alpha=1.0,
        *,
        views=None,
        reference=0,
        fit_intercept=True,
        combine="concat",
        output_frame="centered",
        rank=None,
    ):
        self.alpha = alpha
        self.views = views
        self.reference = reference
        self.fit_intercept = fit_intercept
        self.combine = combine
        self.output_frame = output_frame
        self.rank = rank

    def _statistics_request(self, widths):
        r = resolve_view(self, self.reference, parameter="reference")
        others = [k for k in range(len(widths)) if k != r]
        # The reference view's Gram matrix serves the back-maps (regressions
        # of the other views on it).
        return {"cross": [(k, r) for k in others], "gram": list(range(len(widths)))}

    def _solve(self, stats):
        r = resolve_view(self, self.reference, parameter="reference")
        widths = self.n_features_per_view_
        n_views = len(widths)
        if self.fit_intercept:
            means = [stats.mean(k) for k in range(n_views)]
        else:
            means = [np.zeros(w) for w in widths]
        if self.rank is not None:
            for k in range(n_views):
                if k != r and self.rank > min(widths[k], widths[r]):
                    raise ValueError(
                        f"rank={self.rank} exceeds the largest rank of the map of "
                        f"view {self.view_names_[k]!r} onto the reference, "
                        f"min({widths[k]}, {widths[r]}) = "
                        f"{min(widths[k], widths[r])}; lower rank, or use "
                        "rank=None for full-rank maps."
                    )
        if self.fit_intercept:
            gram_of, cross_of = stats.centered_gram, stats.centered_cross
        else:
            gram_of, cross_of = stats.uncentered_gram, stats.uncentered_cross

        # With alpha = 0 the solver refuses a constant view other than the
        # reference. Otherwise the maps are defined but zero: every row of a
        # constant view goes to one point, and a constant reference leaves
        # nothing to predict, so retrieval across views is at chance (an
        # encoder that returns one vector for every text, say).
        def is_constant(k):
            try:
                return not np.any(gram_of(k))
            except ValueError:
                # Moments out of float64's range: not constant; the solves
                # below decide what to do with them.
                return False

        constant = [
            k for k in range(n_views) if (self.alpha > 0 or k == r) and is_constant(k)
        ]
        # An aligner built on this one (KernelResidualAligner) names itself
        # and its own views in the warning, not an inner RidgeAligner's.
        warn_constant_maps(getattr(self, "_warn_as", self), constant, r)
        try:
            reference = _pseudo_eigh(gram_of(r), self.alpha, self._fit_dtype)
        except ValueError:
            # The reference view's second moments leave float64. If they sink
            # below it (entries under about 1e-150, rows scaled up to be read)
            # and alpha > 0, the forward maps, which need only its cross
            # moments, are well defined, and at this precision every ridge
            # regression on the reference view is the zero map. Least squares
            # does not shrink with the scale, and moments above float64 are
            # no zero: both keep the error, which says to rescale.
            if self.alpha == 0 or stats.scale(r) <= 1:
                raise
            reference = None
        maps, back = [], []
        for k in range(n_views):
            if k == r:
                maps.append(np.eye(widths[r]))
                back.append(np.eye(widths[r]))
                continue
            cross = cross_of(k, r)
            eigenvalues, eigenvectors = regularized_eigh(
                gram_of(k),
                self.alpha,
                view_name=self.view_names_[k],
                dtype=self._fit_dtype,
                parameter="alpha",
                value=self.alpha,
            )
            maps.append(_ridge_solution(eigenvalues, eigenvectors, cross, self.rank)[0])
            # The back-map of view k is the ridge regression (same alpha and
            # rank) of view k on the reference view: translating out of the
            # reference predicts the target view from the rows as they are,
            # where inverting the forward regression would undo its
            # shrinkage and amplify what it discarded.
            if reference is None:
                back.append(np.zeros((widths[r], widths[k])))
            else:
                back.append(_ridge_solution(*reference, cross.T, self.rank)[0])
        self.reference_ = r
        self.maps_ = maps
        self.means_ = means
        self.intercepts_ = [means[r] - means[k] @ maps[k] for k in range(n_views)]
        self._projections = maps
        self._offset = means[r].copy()
        self._back_projections = back

    def _back_projection(self, k):
        return self._back_projections[k]
