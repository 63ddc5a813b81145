"""Regularised canonical correlation analysis of two or more embedding views.

Two models embed the same items in spaces whose axes, scales and even widths
differ. Canonical correlation analysis (Hotelling, 1936) finds, in each space,
the linear directions whose projections are most correlated across the views;
the canonical space keeps what the models agree on and whitens it. The
solution has a closed form from the views' covariance blocks, so it is
computed from the shared sufficient statistics in a few small dense
decompositions, whatever the number of rows.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral, Real

import numpy as np
from scipy import linalg
from sklearn.utils._param_validation import Interval

from skembed._affine import AFFINE_STATE, AffineMapMixin
from skembed._base import VIEW_OPTIONAL, VIEW_STATE, BaseAligner
from skembed._linalg import (
    canonical_correlations,
    flip_signs,
    least_squares_back_projection,
    whitening,
)
from skembed._moments import MOMENTS_OPTIONAL, MOMENTS_STATE, MomentsFitMixin

__all__ = ["CCAAligner"]


def _maxvar_directions(whitened_cross, widths, n_components):
    """Kettenring's MAXVAR directions in the whitened coordinates of K views.

    ``whitened_cross[i][j]`` is :math:`D_i^{-1/2} C_{ij} D_j^{-1/2}` for
    ``i < j``. Returns the per-view unit-norm blocks of the top
    ``n_components`` eigenvectors of the block matrix
    :math:`D^{-1/2} C D^{-1/2}` (identity diagonal blocks), a list of
    (d_k, m) arrays (a block whose norm vanishes stays zero), and the
    per-component mean pairwise correlation of the canonical variates.
    """
    n_views = len(widths)
    offsets = np.concatenate([[0], np.cumsum(widths)])
    total = int(offsets[-1])
    M = np.eye(total)
    for i in range(n_views):
        for j in range(i + 1, n_views):
            block = whitened_cross[i][j]
            M[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]] = block
            M[offsets[j] : offsets[j + 1], offsets[i] : offsets[i + 1]] = block.T
    _, vectors = linalg.eigh(M, subset_by_index=[total - n_components, total - 1])
    vectors = flip_signs(vectors[:, ::-1], widths[0])
    blocks = []
    for k in range(n_views):
        block = vectors[offsets[k] : offsets[k + 1]]
        norms = np.linalg.norm(block, axis=0)
        # A view with (almost) no weight on a component has no variate for it.
        keep = norms > np.sqrt(np.finfo(np.float64).eps)
        blocks.append(np.where(keep, block / np.where(keep, norms, 1), 0.0))
    correlations = np.zeros(n_components)
    for i in range(n_views):
        for j in range(i + 1, n_views):
            correlations += np.einsum(
                "ds,ds->s", blocks[i], whitened_cross[i][j] @ blocks[j]
            )
    correlations /= n_views * (n_views - 1) / 2
    return blocks, correlations


class CCAAligner(MomentsFitMixin, AffineMapMixin, BaseAligner):
    """Project embedding views onto their maximally correlated directions.

    Regularised canonical correlation analysis, solved in closed form from
    the views' covariance blocks. Every view gets a linear map into a common
    canonical space of width ``n_components`` in which the paired rows of
    different views are as correlated as possible and each view is whitened.
    With more than two views the generalisation is Kettenring's MAXVAR.

    Unlike :class:`sklearn.cross_decomposition.CCA`, which runs an iterative
    NIPALS algorithm over the rows for every component, this estimator reads
    the rows once (chunk by chunk, in float64 accumulators), so ``fit`` costs
    about three matrix products plus decompositions of d x d matrices, and
    supports ``partial_fit``.

    Parameters
    ----------
    n_components : int or None, default=None
        Width m of the canonical space. None keeps every canonical direction
        the training data allow: the width of the narrowest view, or
        ``n_samples - 1`` when that is smaller. An int must respect both
        bounds.
    views : None, int, list or dict, default=None
        How X splits into views; see the user guide. None means two contiguous
        column blocks (the first one column wider when the width is odd).
    reg : float, default=0.1
        Ridge regularisation of each view's covariance, relative to its mean
        eigenvalue: :math:`C_{kk} + \\mathrm{reg} \\cdot
        (\\operatorname{tr} C_{kk} / d_k) I`. Being relative, it does not
        depend on the scale of the embeddings. ``reg=0`` is plain CCA and
        needs every view to be of full rank. On real sentence embeddings the
        default retrieves better on held-out rows than smaller values, most
        of all with few pairs (whitening the weak directions of a covariance
        estimated from few rows amplifies noise); tune it with
        ``GridSearchCV`` and the aligner's ``score``.
    combine : {"concat", "mean", "similarity"}, default="concat"
        How ``transform`` combines the mapped views.

    Attributes
    ----------
    canonical_correlations_ : ndarray of shape (n_components,)
        Correlation of the canonical variates, per component, in [0, 1]. For
        two views these are the canonical correlations (descending); for more
        views, the mean over pairs of views of the correlations of their
        variates, in the order of the MAXVAR objective (see Notes). They are
        computed with the regularised variances, so they shrink slightly as
        ``reg`` grows.
    weights_ : list of ndarray of shape (n_features_of_view, n_components)
        Canonical weights of each view: ``(x - means_[k]) @ weights_[k]`` is
        the view's canonical variate.
    means_ : list of ndarray of shape (n_features_of_view,)
        Mean of each view's training rows.
    n_components_ : int
        Width of the canonical space.
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
    RidgeAligner : Least-squares maps of every view onto a reference view.
    ProcrustesAligner : Rotations onto a reference view.
    sklearn.cross_decomposition.CCA : Iterative (NIPALS) two-block CCA.

    Notes
    -----
    With centred views :math:`\\tilde X_k`, covariance blocks
    :math:`C_{kj} = \\tilde X_k^\\top \\tilde X_j / (n - 1)` and regularised
    diagonal blocks :math:`D_k = C_{kk} + \\epsilon_k I`,
    :math:`\\epsilon_k = \\mathrm{reg} \\operatorname{tr}(C_{kk}) / d_k`, two-view
    CCA solves

    .. math::

        \\max_{P_1, P_2} \\operatorname{tr}(P_1^\\top C_{12} P_2)
        \\quad \\text{s.t.} \\quad P_k^\\top D_k P_k = I_m .

    With the thin SVD :math:`D_1^{-1/2} C_{12} D_2^{-1/2} = U S V^\\top`
    (inverse symmetric square roots from eigendecompositions), the weights are
    :math:`P_1 = D_1^{-1/2} U_{:, :m}` and :math:`P_2 = D_2^{-1/2} V_{:, :m}`,
    and the canonical correlations are the singular values :math:`S`. Signs
    follow :func:`sklearn.utils.extmath.svd_flip`. On the training rows the
    variates :math:`Z_k = \\tilde X_k P_k` satisfy
    :math:`Z_1^\\top Z_2 / (n - 1) = \\operatorname{diag}(S)` and
    :math:`Z_k^\\top Z_k / (n - 1) = I - \\epsilon_k P_k^\\top P_k`, the
    identity up to the regularisation.

    For K > 2 views the estimator uses the MAXVAR criterion of Kettenring
    (1971): each component maximises the largest eigenvalue of the K x K
    correlation matrix of the views' variates, equivalently the total variance
    :math:`\\operatorname{var}(\\sum_k \\tilde X_k a_k)` under
    :math:`\\sum_k a_k^\\top D_k a_k = 1`, equivalently the summed squared
    multiple correlation of a common variate with every view (Carroll, 1968).
    Its closed form takes the top m eigenvectors :math:`b` of
    :math:`D^{-1/2} C D^{-1/2}`, where C is the regularised covariance of all
    views together and D its block diagonal; the weights of view k are
    :math:`D_k^{-1/2} b_k / \\|b_k\\|`, so every view's variate has unit
    (regularised) variance, and ``canonical_correlations_`` holds, per
    component, the mean over the K(K-1)/2 pairs of views of the correlations
    of their variates. For K = 2 the eigenvectors are
    :math:`(u_s, v_s) / \\sqrt 2` with eigenvalues :math:`1 \\pm s`, so the
    construction reduces exactly to two-view CCA; for K > 2 the variates of
    one view are unit-variance but not exactly uncorrelated across components.

    ``translate`` maps through the canonical space and back by least squares:
    the back-map of view k, :math:`B_k = (P_k^\\top C_{kk} P_k)^{+} P_k^\\top
    C_{kk}`, regresses the view on its own canonical variates, computed from
    the stored statistics.

    References
    ----------
    .. [1] H. Hotelling, "Relations between two sets of variates",
       Biometrika 28(3/4), 321-377, 1936.
    .. [2] J. R. Kettenring, "Canonical analysis of several sets of variables",
       Biometrika 58(3), 433-451, 1971.
    .. [3] J. D. Carroll, "Generalization of canonical correlation analysis to
       three or more sets of variables", Proc. 76th Annual Convention of the
       APA, 227-228, 1968.

    Examples
    --------
    >>> import numpy as np
    >>> from skembed import CCAAligner
    >>> rng = np.random.default_rng(0)
    >>> latent = rng.normal(size=(500, 2))
    >>> A = latent @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(500, 6))
    >>> B = latent @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(500, 5))
    >>> cca = CCAAligner(n_components=2).fit([A, B])
    >>> cca.canonical_correlations_.round(2)  # shrunk by the default reg=0.1
    array([0.96, 0.91])
    >>> CCAAligner(n_components=2, reg=0).fit([A, B]).canonical_correlations_.round(2)
    array([1.  , 0.99])
    >>> cca.transform([A, B]).shape
    (500, 4)
    >>> B_hat = cca.translate(A, source=0, target=1)
    >>> bool(np.mean((B_hat - B) ** 2) < 0.1 * np.var(B))
    True
    """

    _saved_state = (
        *VIEW_STATE,
        *AFFINE_STATE,
        *MOMENTS_STATE,
        "canonical_correlations_",
        "weights_",
        "_back_projections",
    )
    _saved_optional = (*VIEW_OPTIONAL, *MOMENTS_OPTIONAL)

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "reg": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, n_components=None, *, views=None, reg=0.1, combine="concat"):
        self.n_components = n_components
        self.views = views
        self.reg = reg
        self.combine = combine

    def _statistics_request(self, widths):
        return {"cross": "all", "gram": True}

    def _n_components(self, n_samples):
        """The width m of the canonical space for ``n_samples`` training rows."""
        if self.n_components is None:
            return min(min(self.n_features_per_view_), n_samples - 1)
        return self.n_components

    def _check_statistics(self, stats):
        super()._check_statistics(stats)
        if self.n_components is None:
            return
        narrowest = min(self.n_features_per_view_)
        if self.n_components > narrowest:
            raise ValueError(
                f"n_components={self.n_components} must be at most the width of "
                f"the narrowest view, min(n_features_per_view_) = {narrowest}; "
                f"set n_components <= {narrowest}."
            )
        if self.n_components > stats.n_samples_ - 1:
            raise ValueError(
                f"n_components={self.n_components} must be at most n_samples - 1 "
                f"= {stats.n_samples_ - 1}; set n_components <= "
                f"{stats.n_samples_ - 1} or fit on more samples."
            )

    def _solve(self, stats):
        widths = self.n_features_per_view_
        n_views = len(widths)
        m = self._n_components(stats.n_samples_)
        denominator = stats.n_samples_ - 1
        covariances = [stats.centered_gram(k) / denominator for k in range(n_views)]
        names = {"dtype": self._fit_dtype, "parameter": "reg"}
        if n_views == 2:
            cross = stats.centered_cross(0, 1) / denominator
            U, S, Vt, inverse_roots = canonical_correlations(
                covariances, cross, self.reg, view_names=self.view_names_, **names
            )
            directions = [U[:, :m], Vt[:m].T]
            correlations = S[:m]
        else:
            inverse_roots = [
                whitening(
                    covariances[k], self.reg, view_name=self.view_names_[k], **names
                )
                for k in range(n_views)
            ]
            whitened = [[None] * n_views for _ in range(n_views)]
            for i in range(n_views):
                for j in range(i + 1, n_views):
                    cross = stats.centered_cross(i, j) / denominator
                    whitened[i][j] = inverse_roots[i] @ cross @ inverse_roots[j]
            directions, correlations = _maxvar_directions(whitened, widths, m)
        weights = [inverse_roots[k] @ directions[k] for k in range(n_views)]
        self.canonical_correlations_ = np.clip(correlations, 0.0, 1.0)
        self.weights_ = weights
        self.means_ = [stats.mean(k) for k in range(n_views)]
        self._projections = weights
        self._offset = np.zeros(m)
        self._back_projections = [
            least_squares_back_projection(weights[k], covariances[k])
            for k in range(n_views)
        ]

    def _back_projection(self, k):
        return self._back_projections[k]
