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

from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from skembed._affine import AFFINE_STATE, AffineMapMixin
from skembed._base import VIEW_OPTIONAL, VIEW_STATE, BaseAligner
from skembed._linalg import orthogonal_factor, unbalanced_procrustes
from skembed._moments import MOMENTS_OPTIONAL, MOMENTS_STATE, MomentsFitMixin
from skembed._views import resolve_view
from skembed._warnings import warn
from skembed.exceptions import ConstantViewWarning

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
        Also learn an isotropic scale ``s_k >= 0`` for every non-reference
        view, jointly with its map. The scale is the least-squares one for the
        returned map: ``s_k = tr(W_k^T Xc_k^T Xc_r) / ||Xc_k W_k||_F^2`` (Xc:
        centred rows), the value at which the residual's derivative in
        ``s_k`` vanishes.
    normalize : {"l2"} or None, default=None
        ``"l2"`` scales every row to unit length before centring, as
        cross-lingual word-embedding mapping does; the same happens at
        transform time. Changed after fit, it takes effect at the next fit
        (until then the fitted maps refuse to transform).
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
    unbalanced : {"least_squares", "max_covariance"}, default="least_squares"
        The map of a view wider than the reference (see Notes).
        ``"least_squares"``: the map that minimises the residual, found by an
        iterative solver. ``"max_covariance"``: the closed form that
        maximises the cross-covariance, i.e. the transpose of the
        least-squares map of the reference into the wider view; the wider
        view's rows are projected onto the image of the reference's space.
        It does not trade cross-covariance for a smaller image of the wider
        view: on noisy pairs (self-learning's dictionaries in small pools) it
        retrieves better, on many right pairs the least-squares map does (see
        Notes). Views no wider than the reference have one closed form either
        way.
    max_iter : int, default=300
        Maximum number of iterations of the solver for a view wider than the
        reference with ``unbalanced="least_squares"`` (the other views have a
        closed form).
    tol : float, default=1e-10
        The solver for a wider view stops when a Newton step promises to
        lower the residual sum of squares by less than ``tol`` times its
        value. When the Newton equation has no solution (a wider view fitted
        on fewer pairs than the reference's width leaves a family of maps
        with the same residual), it stops instead once the steepest descent
        promises less than ``tol``, or than the machine epsilon of the input's
        dtype, times the value: for float32 input the moments carry float32
        rounding, and smaller promises are that rounding.
    combine : {"concat", "mean", "similarity"}, default="concat"
        How ``transform`` combines the mapped views.

    Attributes
    ----------
    rotations_ : list of ndarray of shape (n_features_of_view, n_features_of_reference)
        The orthogonal map of each view (the identity for the reference):
        orthonormal columns for a view at least as wide as the reference,
        orthonormal rows for a narrower one.
    scales_ : ndarray of shape (n_views,)
        Isotropic scale of each view (ones unless ``scale=True``).
    means_ : list of ndarray of shape (n_features_of_view,)
        Mean of each view's (normalised) training rows; zeros when
        ``center=False``.
    reference_ : int
        Index of the reference view.
    singular_values_ : list of ndarray
        Singular values of each view's centred cross-product with the
        reference, :math:`\\tilde X_k^\\top \\tilde X_r` (empty for the
        reference): sums over the rows, not divided by their number, so
        they grow with it; divide by ``n_samples - 1`` for those of the
        cross-covariance. Their spread tells how well a rotation explains
        the pairing. With ``allow_reflection=False`` the last one is
        negated when the closest proper rotation flips its direction.
    n_iter_ : ndarray of shape (n_views,)
        Iterations the solver ran for each view wider than the reference
        (0 for the other views, and for every view with
        ``unbalanced="max_covariance"``, solved in closed form).
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
    With the centred rows :math:`\\tilde X_k = X_k - 1\\mu_k^\\top` (no
    centring when ``center=False``), every non-reference view k gets the map
    and scale that minimise the residual sum of squares

    .. math::

        \\min_{W_k, s_k} \\|s_k \\tilde X_k W_k - \\tilde X_r\\|_F^2

    over :math:`W_k` with orthonormal columns (:math:`d_k \\ge d_r`) or
    orthonormal rows (:math:`d_k < d_r`), and over :math:`s_k \\ge 0` when
    ``scale=True`` (else :math:`s_k = 1`). For any :math:`W_k` the
    least-squares scale is
    :math:`s_k = \\operatorname{tr}(W_k^\\top \\tilde X_k^\\top \\tilde X_r) /
    \\|\\tilde X_k W_k\\|_F^2`. The view map is
    :math:`f_k(x) = s_k (x - \\mu_k) W_k + \\mu_r`.

    *Equal widths or a narrower source* (:math:`d_k \\le d_r`): then
    :math:`W_k W_k^\\top = I`, so :math:`\\|\\tilde X_k W_k\\|_F =
    \\|\\tilde X_k\\|_F` whatever :math:`W_k`, and the problem is the classical
    orthogonal Procrustes problem. With the thin SVD
    :math:`\\tilde X_k^\\top \\tilde X_r = U S V^\\top`, the minimiser is
    :math:`W_k = U V^\\top` (Schönemann, 1966) and
    :math:`s_k = \\operatorname{tr}(S) / \\|\\tilde X_k\\|_F^2`. With
    ``allow_reflection=False`` the minimiser over proper rotations flips the
    smallest singular pair when :math:`\\det(U V^\\top) < 0` (Umeyama,
    1991), and that singular value counts negatively in the scale. A
    narrower source is embedded isometrically into the span of V.

    *A wider source* (:math:`d_k > d_r`): the map keeps a
    :math:`d_r`-dimensional part of the source, and the size
    :math:`\\|\\tilde X_k W_k\\|_F` of the mapped rows depends on which part.
    :math:`U V^\\top` still maximises the cross-covariance
    :math:`\\operatorname{tr}(W^\\top \\tilde X_k^\\top \\tilde X_r)` (Ten Berge
    and Knol, 1984) but in general does not minimise the residual; this
    unbalanced Procrustes problem has no closed form (Eldén and Park, 1999).
    The solver starts from :math:`U V^\\top`; a few steps of the
    eigenvalue-based self-consistent-field iteration (Zhang, Yang, Shen and
    Ying, 2020), accelerated by Anderson mixing, move it towards the
    solution, and Newton's method on the Grassmann manifold of column spaces
    (Absil, Mahony and Sepulchre, 2008) converges to it: for a fixed column
    space the best rotation is a polar factor, so the rotation is
    eliminated, and each Newton step is solved by preconditioned truncated
    conjugate gradients, with a backtracking line search. With ``scale=True``
    the scale is eliminated too (the objective becomes
    :math:`-\\operatorname{tr}(W^\\top \\tilde X_k^\\top \\tilde X_r)^2 /
    \\|\\tilde X_k W\\|_F^2`). The problem is not convex; the result is the
    local minimiser this path reaches. On minilm (384) -> wordllama (256)
    embeddings of the fortunes data (5,000 training pairs) it lowers the
    residual of :math:`U V^\\top` by 22% without scale and by 6% with it.

    With ``unbalanced="max_covariance"`` the wider source keeps the closed
    form :math:`W_k = U V^\\top`: :math:`W_k^\\top` is the least-squares map
    of the reference into the source's space (the classical problem in that
    direction), and :math:`\\tilde X_k W_k` is the source projected onto
    the image of the reference there. The residual is larger, but the map
    does not give up cross-covariance for a smaller image of the source,
    which the least-squares map does more the weaker the pairing. On the
    dictionaries that :class:`SelfLearningAligner` finds without pairs in
    pools of a couple of thousand rows, or in pools of different texts, it
    retrieves better by cosine across the views; on many right pairs the
    least-squares map retrieves as well or better (see the zero-pair user
    guide).

    When the centred source rows span fewer than :math:`d_k` dimensions
    (constant columns, fewer rows than columns), the minimiser may point
    part of a column into directions the training rows never visit; those
    parts change nothing on the training rows and are not unique.

    Only :math:`X_k^\\top X_r`, the column sums, and, for a wider source
    (least squares, or with a scale), :math:`X_k^\\top X_k` and the
    reference's sum of squares are accumulated (in float64, chunk by chunk),
    so ``fit`` reads the data once: about one matrix product per view, plus,
    for a wider source with the least-squares map, iterations on the
    d x d statistics that cost :math:`O(d_k^3)` each (about a second to a few
    seconds of one core at :math:`d_k = 384`).

    ``partial_fit`` over chunks accumulates the same statistics as ``fit`` on
    all rows, up to float rounding, so it reaches the same residual. The
    maps agree wherever the statistics determine them: :math:`U V^\\top` is
    unique when the cross-covariance has full rank (with
    ``allow_reflection=False``, also a simple smallest singular value);
    within the singular subspace of a zero singular value the rotation is
    arbitrary and rounding decides it, without changing the residual. For a
    wider source the same holds at an isolated minimiser.

    References: Schönemann, P. H. (1966), Psychometrika 31, 1-10. Ten Berge,
    J. M. F. and Knol, D. L. (1984), Psychometrika 49, 49-55. Umeyama, S.
    (1991), IEEE Trans. Pattern Anal. Mach. Intell. 13, 376-380. Eldén, L. and
    Park, H. (1999), Numerische Mathematik 82, 599-619. Zhang, L.-H., Yang,
    W. H., Shen, C. and Ying, J. (2020), SIAM J. Matrix Anal. Appl. 41,
    957-983. Absil, P.-A., Mahony, R. and Sepulchre, R. (2008), Optimization
    Algorithms on Matrix Manifolds, Princeton University Press.

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
        *VIEW_STATE,
        *AFFINE_STATE,
        *MOMENTS_STATE,
        "reference_",
        "rotations_",
        "scales_",
        "singular_values_",
        "n_iter_",
    )
    _saved_optional = (*VIEW_OPTIONAL, *MOMENTS_OPTIONAL)
    # Files written before the wider-source solver hold maps from the closed
    # form, which takes no iteration.
    _saved_defaults = {
        "n_iter_": lambda aligner: np.zeros(
            len(aligner.n_features_per_view_), dtype=np.int64
        )
    }

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "reference": [Integral, str],
        "center": ["boolean"],
        "scale": ["boolean"],
        "normalize": [StrOptions({"l2"}), None],
        "allow_reflection": ["boolean"],
        "output_frame": [StrOptions({"centered", "reference"})],
        "unbalanced": [StrOptions({"least_squares", "max_covariance"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
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
        unbalanced="least_squares",
        max_iter=300,
        tol=1e-10,
        combine="concat",
        output_frame="centered",
    ):
        self.views = views
        self.reference = reference
        self.center = center
        self.scale = scale
        self.normalize = normalize
        self.allow_reflection = allow_reflection
        self.unbalanced = unbalanced
        self.max_iter = max_iter
        self.tol = tol
        self.combine = combine
        self.output_frame = output_frame

    def _statistics_request(self, widths):
        r = resolve_view(self, self.reference, parameter="reference")
        if not self.allow_reflection and len(set(widths)) > 1:
            raise ValueError(
                "allow_reflection=False needs views of equal width: a map between "
                f"spaces of widths {widths} has no determinant. Use "
                "allow_reflection=True."
            )
        wider = [k for k, width in enumerate(widths) if width > widths[r]]
        solved = self.unbalanced == "least_squares"
        return {
            "cross": [(k, r) for k in range(len(widths)) if k != r],
            # The least-squares map of a view wider than the reference needs
            # its Gram matrix (the size of its mapped rows depends on the map)
            # and the residual's scale; the closed form needs the Gram matrix
            # only for the scale of its mapped rows.
            "gram": wider if solved or self.scale else [],
            "sum_of_squares": self.scale or (solved and bool(wider)),
        }

    def _checking_request(self, widths):
        # For _constant_views: a few flops a row, against d^2 for the cross
        # moments.
        return {"sum_of_squares": True}

    def _solve(self, stats):
        r = resolve_view(self, self.reference, parameter="reference")
        _warn_constant_views(self, _constant_views(self, stats), r)
        widths = self.n_features_per_view_
        n_views = len(widths)
        if self.center:
            means = [stats.mean(k) for k in range(n_views)]
            gram, cross_of = stats.centered_gram, stats.centered_cross
            sum_of_squares = stats.centered_sum_of_squares
        else:
            means = [np.zeros(w) for w in widths]
            gram, cross_of = stats.uncentered_gram, stats.uncentered_cross
            sum_of_squares = stats.uncentered_sum_of_squares
        rotations, scales, singular = [], np.ones(n_views), []
        n_iter = np.zeros(n_views, dtype=np.int64)
        for k in range(n_views):
            if k == r:
                rotations.append(np.eye(widths[r]))
                singular.append(np.empty(0))
                continue
            cross = cross_of(k, r)
            W, S = orthogonal_factor(cross, allow_reflection=self.allow_reflection)
            singular.append(S)
            if widths[k] > widths[r] and self.unbalanced == "max_covariance":
                if self.scale:
                    # ||X W||^2 = tr(W^T G W) depends on W for a wider view.
                    norm = float(np.einsum("ij,ij->", W, gram(k) @ W))
                    scales[k] = S.sum() / norm if norm > 0 else 1.0
            elif widths[k] > widths[r]:
                W, scales[k], n_iter[k], converged = unbalanced_procrustes(
                    gram(k),
                    cross,
                    sum_of_squares(r),
                    scale=self.scale,
                    tol=self.tol,
                    max_iter=self.max_iter,
                    precision=self._fit_precision,
                )
                if not converged:
                    warn(
                        f"ProcrustesAligner did not converge for view "
                        f"{self.view_names_[k]!r} (wider than the reference) in "
                        f"max_iter={self.max_iter} iterations; increase max_iter "
                        "or tol.",
                        ConvergenceWarning,
                    )
            elif self.scale:
                # W has orthonormal rows, so ||X W|| = ||X|| and tr(W^T C) is
                # the sum of the (sign-corrected) singular values. That sum
                # is negative only for a single column whose sign a proper
                # rotation may not flip: the best s >= 0 is then 0 (a
                # negative s would be the reflection refused).
                norm = sum_of_squares(k)
                scales[k] = max(S.sum(), 0.0) / norm if norm > 0 else 1.0
                if S.sum() < 0:
                    warn(
                        f"ProcrustesAligner: view {self.view_names_[k]!r} "
                        "correlates with the reference only through a "
                        "reflection, which allow_reflection=False refuses, so "
                        "its least-squares scale is 0 and every row of it maps "
                        "to one point. Set allow_reflection=True.",
                        UserWarning,
                    )
            rotations.append(W)
        self.reference_ = r
        self.rotations_ = rotations
        self.scales_ = scales
        self.singular_values_ = singular
        self.n_iter_ = n_iter
        self.means_ = means
        self._projections = [s * W for s, W in zip(scales, rotations, strict=True)]
        self._offset = means[r].copy()


def _constant_views(aligner, stats):
    """The views constant over the rows fitted, within the rounding of their moments.

    A constant view keeps rounding noise of its centring (0.1 * ones: a Gram
    of 1e-34, not 0). The statistics are taken about a pilot mean, so that
    noise is a few roundings of each entry, in the input's precision: the
    spread it leaves is at most (a few eps)^2 times the view's magnitude.
    Below that a view is what it is, constant. (A bound of eps, not eps^2,
    times the magnitude called a float64 view at 1e6 with a spread of 0.06
    constant.) Views of which neither the sum of squares nor the Gram
    matrix was kept (a model file from before) are not tested.
    """
    noise = (8 * aligner._fit_precision) ** 2
    constant = []
    for k in range(len(aligner.n_features_per_view_)):
        if stats.sum_of_squares:
            spread = stats.centered_sum_of_squares(k)
        elif k in stats.gram_views:
            spread = float(np.trace(stats.centered_gram(k)))
        else:
            continue
        mean = stats.mean(k)
        if spread <= noise * (spread + stats.n_samples_ * float(mean @ mean)):
            constant.append(k)
    return constant


def _warn_constant_views(aligner, constant, reference=None):
    """Warn that the views numbered ``constant`` map every row to one point.

    An encoder that returns one vector for every text gives such a view; its
    map (a rotation onto a constant reference too) is then arbitrary, and
    retrieval across views is at chance.
    """
    constant = [aligner.view_names_[k] for k in constant]
    if not constant:
        return
    name = type(aligner).__name__
    onto = (
        " and every rotation onto the reference is arbitrary"
        if reference is not None and aligner.view_names_[reference] in constant
        else ""
    )
    message = (
        f"{name}: view(s) {constant} are constant over the training rows (no "
        f"variance about their mean), so every row of them maps to one point{onto}:"
        " retrieval across views will be at chance. Check the embeddings of "
        "those views."
    )
    warn(ConstantViewWarning(message, constant))


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
        Unit-length rows before centring, at fit and transform time; a
        change takes effect at the next fit.
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
        *VIEW_STATE,
        *AFFINE_STATE,
        *MOMENTS_STATE,
        "rotations_",
        "scales_",
        "n_iter_",
        "residual_",
    )
    _saved_optional = (*VIEW_OPTIONAL, *MOMENTS_OPTIONAL)

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
        # One square root at a time: the outer product of the mapped sums of
        # squares leaves float64's range for entries near 1e77 or 1e-100.
        root = np.sqrt(mapped)
        R /= root[:, None]
        R /= root[None, :]
        _, vectors = np.linalg.eigh((R + R.T) / 2)
        u = vectors[:, -1]
        u = u if u.sum() >= 0 else -u
        return np.sqrt(total) * np.abs(u) / np.sqrt(mapped)

    def _solve(self, stats):
        n_views = len(self.n_features_per_view_)
        widths = self.n_features_per_view_
        m = max(widths)
        constant = _constant_views(self, stats)
        if self.center:
            means = [stats.mean(k) for k in range(n_views)]
            C = [[None] * n_views for _ in range(n_views)]
            for i in range(n_views):
                C[i][i] = stats.centered_gram(i)
                for j in range(i + 1, n_views):
                    C[i][j] = stats.centered_cross(i, j)
                    C[j][i] = C[i][j].T
            # A constant view's blocks keep rounding noise of its centring
            # (see _constant_views); its optimal scale divided by that noise
            # (scales_ of 4e154, residual NaN).
            for k in constant:
                for j in range(n_views):
                    C[k][j] = np.zeros_like(C[k][j])
                    C[j][k] = np.zeros_like(C[j][k])
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
        _warn_constant_views(self, constant)

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
            warn(
                f"GeneralizedProcrustesAligner did not converge in max_iter="
                f"{self.max_iter} rounds (relative residual {current:.3g}); increase "
                "max_iter or tol.",
                ConvergenceWarning,
            )
        self.n_iter_ = iteration
        self.residual_ = float(current)
        self.rotations_ = W
        self.scales_ = s
        self.means_ = means
        self._projections = [s[k] * W[k] for k in range(n_views)]
        self._offset = np.zeros(m)
