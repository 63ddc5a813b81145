"""Orthogonal Procrustes alignment of embedding views.

Two embedding models trained apart give vectors whose axes are not aligned,
even when the lengths match. When one space is (close to) a rotation of the
other, the best rotation in the least-squares sense has a closed form from the
cross-covariance of paired rows (Schönemann, 1966), and the generalised
problem for K views is solved by alternating such rotations towards a
consensus (Gower, 1975).
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from skembed._affine import AffineMapMixin
from skembed._base import BaseAligner
from skembed._linalg import orthogonal_factor
from skembed._moments import MomentsFitMixin
from skembed._views import resolve_view

__all__ = ["GeneralizedProcrustesAligner", "ProcrustesAligner"]


class ProcrustesAligner(MomentsFitMixin, AffineMapMixin, BaseAligner):
    """Rotate every embedding view onto a reference view.

    For each non-reference view k, learns the orthogonal (semi-orthogonal when
    the widths differ) map that best superimposes its rows on the reference
    view's rows of the same items. The shared space is the reference view's
    own space, so the reference passes through unchanged.

    Parameters
    ----------
    views : None, int, list or dict, default=None
        How X splits into views; see the user guide. None means two contiguous
        column blocks (the first one column wider when the width is odd).
    reference : int or str, default=0
        The view whose space is the shared space (index or view name).
    center : bool, default=True
        Subtract each view's mean before estimating the rotation, and map
        means onto means. Without centring, a model whose vectors share a
        large common direction (as e5 embeddings do) is aligned mostly by
        that direction, and retrieval suffers badly.
    scale : bool, default=False
        Also learn the least-squares isotropic scale of every non-reference
        view.
    normalize : {"l2"} or None, default=None
        ``"l2"`` scales every row to unit length before centring, as
        cross-lingual word-embedding mapping does; the same happens at
        transform time.
    allow_reflection : bool, default=True
        Whether the map may include a reflection (determinant -1). With
        ``False`` the map is a proper rotation; this requires views of equal
        width.
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

    Attributes
    ----------
    rotations_ : list of ndarray of shape (n_features_of_view, n_features_of_reference)
        The orthogonal map of each view (the identity for the reference).
    scales_ : ndarray of shape (n_views,)
        Isotropic scale of each view (ones unless ``scale=True``).
    means_ : list of ndarray of shape (n_features_of_view,)
        Mean of each view's (normalised) training rows; zeros when
        ``center=False``.
    reference_ : int
        Index of the reference view.
    singular_values_ : list of ndarray
        Singular values of each view's cross-covariance with the reference
        (empty for the reference); their spread tells how well a rotation
        explains the pairing.
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
    GeneralizedProcrustesAligner : K views into a consensus space.
    CCAAligner : Maximally correlated linear projections.
    scipy.linalg.orthogonal_procrustes : The bare rotation of two arrays.

    Notes
    -----
    With :math:`\\tilde X_k = X_k - 1\\mu_k^\\top` and the thin SVD
    :math:`\\tilde X_k^\\top \\tilde X_r = U S V^\\top`, the rotation is
    :math:`W_k = U V^\\top`, which minimises
    :math:`\\|s \\tilde X_k W - \\tilde X_r\\|_F` over (semi-)orthogonal W, and
    the scale is :math:`s_k = \\operatorname{tr}(S) / \\|\\tilde X_k\\|_F^2`.
    The view map is :math:`f_k(x) = s_k (x - \\mu_k) W_k + \\mu_r`.

    When the source is wider than the reference (d_k > d_r), W_k has
    orthonormal columns: the source is projected onto the d_r-dimensional
    subspace spanned by the left singular vectors U, the directions of the
    source that co-vary with the reference, then rotated. When it is
    narrower, W_k has orthonormal rows and embeds the source isometrically
    into the span of V in the reference space.

    Only the cross-products :math:`X_k^\\top X_r` and column sums are
    accumulated (in float64, chunk by chunk), so ``fit`` costs about one
    matrix product per view and ``partial_fit`` over chunks gives the same
    maps as ``fit`` on all rows.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import ortho_group
    >>> from skembed import ProcrustesAligner
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(200, 8))
    >>> Q = ortho_group.rvs(8, random_state=0)
    >>> B = A @ Q + 3.0
    >>> aligner = ProcrustesAligner().fit(np.hstack([A, B]))
    >>> bool(np.allclose(aligner.rotations_[1], Q.T))
    True
    >>> aligner.transform(np.hstack([A, B])).shape
    (200, 16)
    >>> aligner.score(np.hstack([A, B]))
    1.0
    """

    # Fitted state in model files (format 2, see skembed._io); optional entries
    # may be absent.
    _saved_state = (
        "n_features_in_",
        "n_features_per_view_",
        "view_names_",
        "_view_layout",
        "means_",
        "_projections",
        "_offset",
        "_fit_dtype",
        "reference_",
        "rotations_",
        "scales_",
        "singular_values_",
    )
    _saved_optional = ("feature_names_in_", "_stats", "_stats_normalize")

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "reference": [Integral, str],
        "center": ["boolean"],
        "scale": ["boolean"],
        "normalize": [StrOptions({"l2"}), None],
        "allow_reflection": ["boolean"],
        "output_frame": [StrOptions({"centered", "reference"})],
    }

    def __init__(
        self,
        views=None,
        *,
        reference=0,
        center=True,
        scale=False,
        normalize=None,
        allow_reflection=True,
        combine="concat",
        output_frame="centered",
    ):
        self.views = views
        self.reference = reference
        self.center = center
        self.scale = scale
        self.normalize = normalize
        self.allow_reflection = allow_reflection
        self.combine = combine
        self.output_frame = output_frame

    def _statistics_request(self, widths):
        r = resolve_view(self, self.reference)
        if not self.allow_reflection and len(set(widths)) > 1:
            raise ValueError(
                "allow_reflection=False needs views of equal width: a map between "
                f"spaces of widths {widths} has no determinant. Use "
                "allow_reflection=True."
            )
        return {
            "cross": [(k, r) for k in range(len(widths)) if k != r],
            "sum_of_squares": self.scale,
        }

    def _solve(self, stats):
        r = resolve_view(self, self.reference)
        n_views = len(self.n_features_per_view_)
        if self.center:
            means = [stats.mean(k) for k in range(n_views)]
        else:
            means = [np.zeros(w) for w in self.n_features_per_view_]
        rotations, scales, singular = [], np.ones(n_views), []
        for k in range(n_views):
            if k == r:
                rotations.append(np.eye(self.n_features_per_view_[r]))
                singular.append(np.empty(0))
                continue
            if self.center:
                cross = stats.centered_cross(k, r)
            else:
                cross = stats.uncentered_cross(k, r)
            W, S = orthogonal_factor(cross, allow_reflection=self.allow_reflection)
            rotations.append(W)
            singular.append(S)
            if self.scale:
                if self.center:
                    norm = stats.centered_sum_of_squares(k)
                else:
                    norm = stats.uncentered_sum_of_squares(k)
                scales[k] = S.sum() / norm if norm > 0 else 1.0
        self.reference_ = r
        self.rotations_ = rotations
        self.scales_ = scales
        self.singular_values_ = singular
        self.means_ = means
        self._projections = [s * W for s, W in zip(scales, rotations, strict=True)]
        self._offset = means[r].copy()


class GeneralizedProcrustesAligner(MomentsFitMixin, AffineMapMixin, BaseAligner):
    """Rotate K >= 2 embedding views into a common consensus space.

    Generalised Procrustes analysis: every view gets a (semi-)orthogonal map,
    and optionally an isotropic scale, such that the mapped views agree as
    well as possible with their mean, the consensus. No view is privileged.

    Parameters
    ----------
    views : None, int, list or dict, default=None
        How X splits into views; see :class:`ProcrustesAligner`.
    scale : bool, default=False
        Also learn one isotropic scale per view. The scales are normalised so
        that the total sum of squares of the mapped views equals that of the
        inputs (otherwise shrinking everything to zero would be optimal).
    center : bool, default=True
        Centre every view before estimating the maps.
    normalize : {"l2"} or None, default=None
        Unit-length rows before centring, at fit and transform time.
    max_iter : int, default=100
        Maximum number of alternating rounds.
    tol : float, default=1e-7
        Stop when the relative decrease of the residual sum of squares in one
        round falls below ``tol``.
    combine : {"concat", "mean", "similarity"}, default="concat"
        How ``transform`` combines the mapped views.

    Attributes
    ----------
    rotations_ : list of ndarray of shape (n_features_of_view, n_components_)
        The (semi-)orthogonal map of each view into the consensus space.
    scales_ : ndarray of shape (n_views,)
        Isotropic scale of each view.
    means_ : list of ndarray of shape (n_features_of_view,)
        Mean of each view's training rows (zeros when ``center=False``).
    n_iter_ : int
        Number of alternating rounds run.
    residual_ : float
        Final residual sum of squares of the mapped views about the consensus,
        relative to the total sum of squares.
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
    ProcrustesAligner : Rotate every view onto one reference view.

    Notes
    -----
    The objective is

    .. math::

        \\min_{W_k, s_k} \\sum_k \\| s_k \\tilde X_k W_k - G \\|_F^2, \\qquad
        G = \\frac{1}{K} \\sum_j s_j \\tilde X_j W_j,

    over W_k with orthonormal columns or rows (Gower, 1975; Ten Berge, 1977).
    Each round updates every W_k by the Procrustes solution against the
    consensus. Since :math:`\\tilde X_k^\\top G = \\frac1K \\sum_j s_j C_{kj} W_j`
    with :math:`C_{kj} = \\tilde X_k^\\top \\tilde X_j`, the rounds run on the
    d x d statistics alone and never touch the rows again. The consensus space
    has the width of the widest view; the iteration starts from the
    Procrustes maps onto the widest view.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import ortho_group
    >>> from skembed import GeneralizedProcrustesAligner
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(300, 6))
    >>> views = [A @ ortho_group.rvs(6, random_state=s) for s in range(3)]
    >>> gpa = GeneralizedProcrustesAligner().fit(views)
    >>> Z = [gpa.transform_view(v, k) for k, v in enumerate(views)]
    >>> bool(np.allclose(Z[0], Z[2]))
    True
    """

    _saved_state = (
        "n_features_in_",
        "n_features_per_view_",
        "view_names_",
        "_view_layout",
        "means_",
        "_projections",
        "_offset",
        "_fit_dtype",
        "rotations_",
        "scales_",
        "n_iter_",
        "residual_",
    )
    _saved_optional = ("feature_names_in_", "_stats", "_stats_normalize")

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "scale": ["boolean"],
        "center": ["boolean"],
        "normalize": [StrOptions({"l2"}), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        views=None,
        *,
        scale=False,
        center=True,
        normalize=None,
        max_iter=100,
        tol=1e-7,
        combine="concat",
    ):
        self.views = views
        self.scale = scale
        self.center = center
        self.normalize = normalize
        self.max_iter = max_iter
        self.tol = tol
        self.combine = combine

    def _statistics_request(self, widths):
        return {"cross": "all", "gram": True}

    @staticmethod
    def _optimal_scales(C, W, total):
        """Ten Berge's (1977) scales for fixed rotations.

        With n_k = ||X_k W_k||^2 and u_k = s_k sqrt(n_k), the residual is
        T - u^T R u / K under the constraint ||u||^2 = T, where
        R_jk = tr(W_j^T C_jk W_k) / sqrt(n_j n_k); so u is sqrt(T) times the
        leading eigenvector of R.
        """
        n_views = len(W)
        mapped = np.array([np.trace(W[k].T @ C[k][k] @ W[k]) for k in range(n_views)])
        mapped = np.maximum(mapped, np.finfo(np.float64).tiny)
        R = np.empty((n_views, n_views))
        for i in range(n_views):
            for j in range(n_views):
                R[i, j] = np.trace(W[i].T @ C[i][j] @ W[j])
        R /= np.sqrt(np.outer(mapped, mapped))
        _, vectors = np.linalg.eigh((R + R.T) / 2)
        u = vectors[:, -1]
        u = u if u.sum() >= 0 else -u
        return np.sqrt(total) * np.abs(u) / np.sqrt(mapped)

    def _solve(self, stats):
        n_views = len(self.n_features_per_view_)
        widths = self.n_features_per_view_
        m = max(widths)
        if self.center:
            means = [stats.mean(k) for k in range(n_views)]
            C = [[None] * n_views for _ in range(n_views)]
            for i in range(n_views):
                C[i][i] = stats.centered_gram(i)
                for j in range(i + 1, n_views):
                    C[i][j] = stats.centered_cross(i, j)
                    C[j][i] = C[i][j].T
        else:
            means = [np.zeros(w) for w in widths]
            C = [[None] * n_views for _ in range(n_views)]
            for i in range(n_views):
                C[i][i] = stats.uncentered_gram(i)
                for j in range(i + 1, n_views):
                    C[i][j] = stats.uncentered_cross(i, j)
                    C[j][i] = C[i][j].T
        norms = np.array([np.trace(C[k][k]) for k in range(n_views)])
        total = norms.sum()
        if total <= 0:
            raise ValueError(
                "All views are constant after centring; there is nothing to align."
            )

        base = int(np.argmax(widths))
        W = []
        for k in range(n_views):
            if k == base:
                W.append(np.eye(m))
            else:
                W.append(orthogonal_factor(C[k][base])[0])
        s = np.ones(n_views)

        def residual(W, s):
            # sum_k ||s_k X_k W_k - G||^2 = sum_k s_k^2 tr(W_k^T C_kk W_k) - K ||G||^2
            mapped = sum(
                s[k] ** 2 * np.trace(W[k].T @ C[k][k] @ W[k]) for k in range(n_views)
            )
            consensus = (
                sum(
                    s[i] * s[j] * np.trace(W[i].T @ C[i][j] @ W[j])
                    for i in range(n_views)
                    for j in range(n_views)
                )
                / n_views
            )
            return (mapped - consensus) / total

        previous = residual(W, s)
        converged = False
        iteration = 0
        while iteration < self.max_iter:
            iteration += 1
            for k in range(n_views):
                # X_k^T G without X_k: (1/K) sum_j s_j C_kj W_j.
                target = sum(s[j] * C[k][j] @ W[j] for j in range(n_views))
                W[k] = orthogonal_factor(target)[0]
            if self.scale:
                s = self._optimal_scales(C, W, total)
            current = residual(W, s)
            if previous - current <= self.tol * max(abs(previous), 1e-300):
                converged = True
                break
            previous = current
        if not converged:
            warnings.warn(
                f"GeneralizedProcrustesAligner did not converge in max_iter="
                f"{self.max_iter} rounds (relative residual {current:.3g}); increase "
                "max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.n_iter_ = iteration
        self.residual_ = float(current)
        self.rotations_ = W
        self.scales_ = s
        self.means_ = means
        self._projections = [s[k] * W[k] for k in range(n_views)]
        self._offset = np.zeros(m)
