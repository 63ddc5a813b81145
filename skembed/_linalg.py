"""Small dense linear algebra shared by the solvers (d x d, never n x d).

Every closed-form aligner and the CCA similarity end in the same few kernels
on covariance blocks: a regularised eigendecomposition, its inverse square
root (whitening), the orthogonal factor of a cross-covariance, sign-fixed
canonical directions and a least-squares back-map. They live here once, with
the one iterative solver among them: Procrustes for a source wider than the
reference, which has no closed form.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from contextlib import nullcontext

import numpy as np
from scipy import linalg
from sklearn.utils.extmath import svd_flip

from skembed._parallel import single_threaded_blas

__all__ = [
    "canonical_correlations",
    "flip_signs",
    "inverse_sqrt",
    "least_squares_back_projection",
    "null_tolerance",
    "orthogonal_factor",
    "regularized_eigh",
    "unbalanced_procrustes",
    "whitening",
]


def null_tolerance(d, dtype):
    """Relative size below which an eigenvalue of a d x d Gram matrix is null.

    ``d * eps`` of the input dtype (the statistics of float32 rows are no
    more accurate than that), but never below ``32 * eps``: the symmetric
    eigensolver puts an exact zero of a small matrix a few eps of the
    largest eigenvalue away (measured up to 5.3 eps at d = 5), which a
    tolerance of ``d * eps`` would count as a rank or not depending on the
    rounding of one machine.
    """
    return max(d, 32) * np.finfo(dtype).eps


def regularized_eigh(gram, ridge, *, view_name, dtype, parameter, value):
    """Eigendecomposition of ``gram + ridge * I``, refusing a singular result.

    ``ridge`` is the absolute shift derived from ``parameter=value``. Returns
    the eigenvalues (ascending, tiny negative rounding clipped to 0, then
    shifted by ``ridge``) and eigenvectors. Without regularisation, a view
    whose smallest eigenvalue is below ``null_tolerance(d, dtype) * largest``
    is numerically rank-deficient at the precision of the input ``dtype`` and
    is refused. With regularisation, only a result that is singular in
    float64 is refused.
    """
    d = gram.shape[0]
    eigenvalues, eigenvectors = linalg.eigh(gram)
    largest = max(eigenvalues[-1], 0.0)
    if largest == 0 and ridge == 0:
        raise ValueError(
            f"View {view_name!r} is constant over the training rows: it has no "
            "variance to align. Remove the view or check the input."
        )
    if value == 0:
        tolerance = null_tolerance(d, dtype) * largest
        if eigenvalues[0] <= tolerance:
            rank = int(np.sum(eigenvalues > tolerance))
            raise ValueError(
                f"View {view_name!r} is rank-deficient (numerical rank {rank} < "
                f"{d} features: collinear or constant features, or fewer samples "
                f"than features), so {parameter}=0 leaves it singular. Set "
                f"{parameter} > 0, e.g. {parameter}=1e-3."
            )
    eigenvalues = np.maximum(eigenvalues, 0) + ridge
    if eigenvalues[0] <= d * np.finfo(np.float64).eps * eigenvalues[-1]:
        raise ValueError(
            f"View {view_name!r} is rank-deficient and {parameter}={value!r} is "
            f"too small to make it invertible in float64; increase {parameter}."
        )
    return eigenvalues, eigenvectors


def inverse_sqrt(eigenvalues, eigenvectors):
    """Symmetric inverse square root from an eigendecomposition."""
    return (eigenvectors / np.sqrt(eigenvalues)) @ eigenvectors.T


def whitening(covariance, reg, *, view_name, dtype, parameter="reg"):
    """Inverse square root of ``covariance + reg * (tr / d) I``.

    The ridge is relative to the mean eigenvalue, so it does not depend on
    the scale of the embeddings; ``reg=0`` whitens exactly and refuses a
    numerically rank-deficient covariance (see :func:`regularized_eigh`).
    """
    with np.errstate(over="ignore"):
        ridge = reg * (np.trace(covariance) / covariance.shape[0])
    if not np.isfinite(ridge):
        raise ValueError(
            f"{parameter}={reg!r} times the mean variance of view {view_name!r} "
            f"overflows float64; lower {parameter}, or rescale the embeddings "
            "(for example to unit-length rows)."
        )
    eigenvalues, eigenvectors = regularized_eigh(
        covariance,
        ridge,
        view_name=view_name,
        dtype=dtype,
        parameter=parameter,
        value=reg,
    )
    return inverse_sqrt(eigenvalues, eigenvectors)


def canonical_correlations(covariances, cross, reg, *, view_names, dtype, parameter):
    """Two-view (regularised) CCA from covariance blocks.

    With :math:`D_k` the regularised covariances and :math:`C_{12}` the
    cross-covariance, the thin SVD :math:`D_1^{-1/2} C_{12} D_2^{-1/2} = U S
    V^\\top`, signs fixed by :func:`sklearn.utils.extmath.svd_flip`.

    Returns
    -------
    U, S, Vt : ndarray
        The SVD of the whitened cross-covariance; S holds the canonical
        correlations, descending.
    inverse_roots : list of ndarray
        :math:`D_k^{-1/2}`, so that the canonical weights are
        ``inverse_roots[0] @ U`` and ``inverse_roots[1] @ Vt.T``.
    """
    inverse_roots = [
        whitening(c, reg, view_name=name, dtype=dtype, parameter=parameter)
        for c, name in zip(covariances, view_names, strict=True)
    ]
    whitened = inverse_roots[0] @ cross @ inverse_roots[1]
    U, S, Vt = linalg.svd(whitened, full_matrices=False)
    U, Vt = svd_flip(U, Vt)
    return U, S, Vt, inverse_roots


def orthogonal_factor(cross, *, allow_reflection=True):
    """Semi-orthogonal W maximising trace(W^T cross); also returns the singular values.

    With cross = U S V^T (thin SVD), W = U V^T. Forbidding reflections flips the
    direction of the smallest singular pair when det(U V^T) < 0, the closest
    proper rotation (Umeyama, 1991).
    """
    U, S, Vt = _svd(cross)
    if not allow_reflection and np.linalg.det(U @ Vt) < 0:
        U[:, -1] = -U[:, -1]
        S = S.copy()
        S[-1] = -S[-1]
    return U @ Vt, S


def flip_signs(directions, first_width):
    """Make each column's largest entry in the first view's block positive.

    For two views this is exactly :func:`sklearn.utils.extmath.svd_flip` on the
    first view's singular vectors. A column with no weight on the first view
    is signed by its largest entry overall.
    """
    first = directions[:first_width]
    columns = np.arange(directions.shape[1])
    signs = np.sign(first[np.argmax(np.abs(first), axis=0), columns])
    overall = np.sign(directions[np.argmax(np.abs(directions), axis=0), columns])
    signs = np.where(signs == 0, overall, signs)
    signs[signs == 0] = 1
    return directions * signs


def least_squares_back_projection(projection, covariance):
    """Regression coefficients of a view on its own mapped variates.

    With :math:`Z = \\tilde X P`, the least-squares ``B`` minimising
    :math:`\\|\\tilde X - Z B\\|_F` is :math:`(P^\\top C P)^{+} P^\\top C`, with
    C the view's (unregularised) covariance: it needs no rows.
    """
    CP = covariance @ projection
    return linalg.pinvh(projection.T @ CP) @ CP.T


# Largest side of a matrix whose SVD runs on one BLAS thread. A factorisation
# this small is a long chain of small, dependent steps that a second thread
# barely shares, and a multi-threaded OpenBLAS whose threads wait for a core
# held by another process spins at every step. On two cores, idle: 0.025 s
# on either count at 256 x 384, 0.70 s on one thread against 0.63 s on two at
# 1024 x 1024; with one core busy: 1.3 s on two threads against 0.026 s on
# one at 256 x 384, 6.3 s against 0.92 s at 1024 x 1024. Below
# _SERIAL_SVD_ENTRIES the 30 us of setting the limit would dominate.
_SERIAL_SVD_SIZE = 1024
_SERIAL_SVD_ENTRIES = 4096


def _svd(matrix, *, compute_uv=True):
    """Thin SVD of a small dense matrix, robust to clustered tiny singular values.

    LAPACK's divide-and-conquer driver (numpy's) can fail to converge on a
    rank-deficient matrix whose zero singular values sit in a cluster at
    rounding level; the QR-iteration driver then still succeeds.
    """
    serial = (
        matrix.size >= _SERIAL_SVD_ENTRIES and max(matrix.shape) <= _SERIAL_SVD_SIZE
    )
    with single_threaded_blas() if serial else nullcontext():
        try:
            return np.linalg.svd(matrix, full_matrices=False, compute_uv=compute_uv)
        except np.linalg.LinAlgError:
            return linalg.svd(
                matrix,
                full_matrices=False,
                compute_uv=compute_uv,
                lapack_driver="gesvd",
            )


def _sym(matrix):
    return (matrix + matrix.T) / 2


def _skew(matrix):
    return (matrix - matrix.T) / 2


class _UnbalancedProblem:
    """``min ||s X W - Y||_F^2`` over W (d x p, d > p) with orthonormal columns.

    Only ``G = X^T X``, ``C = X^T Y`` and ``||Y||_F^2`` are used, in the
    eigenbasis of G, where G is the diagonal ``eigenvalues`` and a product
    with it costs d p instead of d^2 p. With ``a = tr(W^T C)`` and
    ``b = tr(W^T G W)``, the residual is ``s^2 b - 2 s a + ||Y||^2``: with
    ``scale=False`` s = 1 and the objective is ``b - 2 a``; with
    ``scale=True`` the least-squares scale ``s = a / b`` is eliminated and
    the objective is ``-a^2 / b``.
    """

    def __init__(self, gram, cross, reference_sum_of_squares, scale):
        eigenvalues, self.eigenvectors = np.linalg.eigh(_sym(gram))
        self.eigenvalues = np.maximum(eigenvalues, 0.0)
        self.cross = self.eigenvectors.T @ cross
        self.reference_sum_of_squares = float(reference_sum_of_squares)
        self.scale = scale

    def objective(self, a, b):
        if self.scale:
            # a / b first: a * a underflows for entries near 1e-100.
            return -(a / b) * a if b > 0 else 0.0
        return b - 2.0 * a

    def spread(self, basis):
        """``tr(W^T G W)``, the same for every rotation of the basis."""
        return float(self.eigenvalues @ np.einsum("ij,ij->i", basis, basis))

    def value_of_span(self, basis):
        """Objective of the best rotation of span(basis) (orthonormal columns)."""
        a = float(_svd(basis.T @ self.cross, compute_uv=False).sum())
        return self.objective(a, self.spread(basis))


class _UnbalancedPoint:
    """A column space with its best rotation, and the derivatives there.

    For a fixed column space, ``tr(W^T G W)`` does not depend on the rotation
    and ``tr(W^T C)`` is largest, equal to the nuclear norm of ``P^T C``, at
    the polar factor of ``P^T C`` (balanced Procrustes within the subspace).
    So the objective is a function of the subspace alone (variable
    projection) and W is the basis in its best rotation.
    """

    def __init__(self, basis, problem):
        U, S, Vt = _svd(basis.T @ problem.cross)
        self.problem = problem
        self.W = basis @ (U @ Vt)
        self.a = float(S.sum())
        self.b = problem.spread(self.W)
        self.s = self.a / self.b if problem.scale and self.b > 0 else 1.0
        self.value = problem.objective(self.a, self.b)
        # The residual sum of squares from the moments: its rounding is about
        # eps * (||Y||^2 + s^2 b), which is all an exact fit leaves.
        self.raw_residual = self.value + problem.reference_sum_of_squares
        self.magnitude = problem.reference_sum_of_squares + self.s**2 * self.b
        # Floored so that relative tolerances stay meaningful for an exact fit.
        self.residual = max(self.raw_residual, 1e-12 * self.magnitude)

    def prepare(self):
        """Gradient, Hessian and preconditioner of the objective at this subspace.

        A tangent direction is ``W_perp K R^T``: ``W_perp`` completes W to an
        orthonormal basis and R holds the eigenvectors of the symmetric (at the
        best rotation) ``H = W^T C = R diag(kappa) R^T``. For a fixed s, half
        the Hessian of ``s^2 b - 2 s a`` with the rotation re-optimised to
        second order is the Schur complement
        ``K -> G22 K - K L - (G21 - g) A(K)`` with
        ``A = skew(G21^T K + K^T g) / (s (kappa_i + kappa_j) / 2)`` the
        rotation that follows K, ``g`` the half-gradient, ``G21``, ``G22`` the
        blocks of ``s^2 G`` and ``L = s^2 W^T G W - s H`` the Lagrange
        multipliers of the orthonormality constraint. Eliminating s adds the
        rank-one term ``-u u^T / b`` with u the derivative of ``a - s b``.
        """
        W, s, problem = self.W, self.s, self.problem
        p = W.shape[1]
        complement = np.linalg.qr(W, mode="complete")[0][:, p:]
        spread = problem.eigenvalues[:, None]
        GW = spread * W
        H = _sym(W.T @ problem.cross)
        kappa, R = np.linalg.eigh(H)
        G21 = complement.T @ GW @ R
        CR = complement.T @ problem.cross @ R
        self.complement, self.rotation = complement, R
        self.G21 = s * s * G21
        self.G22 = s * s * _sym(complement.T @ (spread * complement))
        self.multipliers = R.T @ (s * s * _sym(W.T @ GW) - s * H) @ R
        self.gradient = s * s * G21 - s * CR
        self.scale_direction = CR - 2 * s * G21 if problem.scale else None
        # Rotations between output directions that the data do not correlate
        # with the source (kappa_i + kappa_j = 0) leave the objective unchanged.
        pair = s * (kappa[:, None] + kappa[None, :]) / 2
        floor = 1e-10 * max(s * kappa[-1], np.finfo(np.float64).tiny)
        # Divided only where kept: the floor can be subnormal (a constant
        # reference leaves kappa at 0), and 1 / floor would overflow.
        self.inverse_pair = np.divide(
            1.0, pair, out=np.zeros_like(pair), where=pair > floor
        )
        # Preconditioner: the Sylvester part K -> G22 K - K L, made positive.
        gamma, self.G22_vectors = np.linalg.eigh(self.G22)
        mu, self.multiplier_vectors = np.linalg.eigh(self.multipliers)
        span = max(np.abs(gamma).max(), np.abs(mu).max(), np.finfo(np.float64).tiny)
        self.inverse_curvature = 1 / np.maximum(
            np.abs(gamma[:, None] - mu[None, :]), 1e-4 * span
        )
        return self

    def hessian(self, K):
        A = _skew(self.G21.T @ K + K.T @ self.gradient) * self.inverse_pair
        out = self.G22 @ K - K @ self.multipliers - (self.G21 - self.gradient) @ A
        if self.scale_direction is not None:
            u = self.scale_direction
            out -= (np.sum(u * K) / self.b) * u
        return out

    def precondition(self, K):
        U, V = self.G22_vectors, self.multiplier_vectors
        return U @ (((U.T @ K) @ V) * self.inverse_curvature) @ V.T

    def basis_after(self, K):
        """Orthonormal basis of the column space moved along ``K``."""
        moved = self.W + self.complement @ (K @ self.rotation.T)
        return np.linalg.qr(moved)[0]


def _newton_step(point, forcing, max_inner):
    """Preconditioned truncated CG on the Newton equation (Steihaug's rule).

    Stops when the preconditioned residual has shrunk by ``forcing``, or at
    the first direction of non-positive curvature, where it returns the step
    so far (the preconditioned steepest descent if there is none yet).
    Returns the step and whether it solves the Newton equation to that
    accuracy.
    """
    residual = point.gradient.copy()
    step = np.zeros_like(residual)
    z = point.precondition(residual)
    direction = -z
    rz = float(np.sum(residual * z))
    target = forcing * np.sqrt(rz)
    for inner in range(max_inner):
        curved = point.hessian(direction)
        curvature = float(np.sum(direction * curved))
        if curvature <= 0:
            return (direction if inner == 0 else step), False
        alpha = rz / curvature
        step += alpha * direction
        residual += alpha * curved
        z = point.precondition(residual)
        rz_next = float(np.sum(residual * z))
        if np.sqrt(rz_next) <= target:
            return step, True
        direction = -z + (rz_next / rz) * direction
        rz = rz_next
    return step, False


# Tangent spaces up to this size get their Hessian built and diagonalised
# (one product per dimension); larger ones are probed by Lanczos steps.
_DENSE_HESSIAN = 256
_LANCZOS_STEPS = 40

# Curvature below -_NEGATIVE_CURVATURE times the largest curvature is a saddle,
# not rounding: at real saddles of few-row problems the smallest eigenvalue of
# the Hessian was -0.01 to -0.33 of the largest.
_NEGATIVE_CURVATURE = 1e-6


def _lanczos_extremes(apply, size, steps):
    """Ritz values and vectors of a symmetric operator after ``steps`` steps.

    Lanczos with full reorthogonalisation from a fixed start (the same
    directions on every run): extreme eigenvalues are found first, so a few
    dozen products tell a clearly negative one, where ARPACK's convergence
    to the smallest eigenvalue of a tangent space of 32,768 dimensions took
    minutes.
    """
    steps = min(steps, size)
    basis = np.empty((steps, size))
    vector = np.random.RandomState(0).standard_normal(size)
    vector /= np.linalg.norm(vector)
    diagonal, off_diagonal = [], []
    for j in range(steps):
        basis[j] = vector
        product = apply(vector)
        diagonal.append(float(vector @ product))
        product -= basis[: j + 1].T @ (basis[: j + 1] @ product)
        norm = float(np.linalg.norm(product))
        if j == steps - 1 or norm <= 1e-12 * max(abs(diagonal[-1]), 1e-300):
            break
        off_diagonal.append(norm)
        vector = product / norm
    m = len(diagonal)
    values, vectors = linalg.eigh_tridiagonal(
        np.array(diagonal), np.array(off_diagonal[: m - 1])
    )
    return values, basis[:m].T @ vectors


def _negative_curvature(point):
    """A unit direction of clearly negative curvature at a prepared point, or None.

    Newton's method stops where the gradient vanishes, which is a saddle as
    well as a minimum: with few rows the objective has saddles that the inner
    solve, started from the vanishing gradient, never leaves (about 20 of 24
    random problems of 4 rows, 10 source and 4 reference columns ended at
    one, 3 of 24 at 10 rows, none at 40). The Hessian of the Grassmann
    objective is symmetric; its smallest eigenvector points away.
    """
    shape = point.gradient.shape
    size = shape[0] * shape[1]
    if size == 0:
        return None

    def apply(vector):
        return point.hessian(vector.reshape(shape)).ravel()

    if size <= _DENSE_HESSIAN:
        hessian = np.column_stack([apply(e) for e in np.eye(size)])
        values, vectors = np.linalg.eigh(_sym(hessian))
    else:
        values, vectors = _lanczos_extremes(apply, size, _LANCZOS_STEPS)
    largest = max(abs(values[0]), abs(values[-1]))
    if not values[0] < -_NEGATIVE_CURVATURE * largest:
        return None
    direction = vectors[:, 0]
    return direction.reshape(shape) / np.linalg.norm(direction)


def _escape(point, problem, direction):
    """A point of lower objective along ``direction`` or its opposite, or None."""
    for sign in (1.0, -1.0):
        # At most a 45 degree turn, halved until the objective drops.
        length = 1.0 / max(np.linalg.norm(direction, 2), 1.0)
        for _ in range(30):
            basis = point.basis_after(sign * length * direction)
            # A real gain, not rounding: escapes are not repeated for nothing.
            if problem.value_of_span(basis) < point.value - 1e-9 * point.residual:
                return _UnbalancedPoint(basis, problem)
            length /= 2
    return None


def _newton_decrement(point):
    """Preconditioned steepest descent and the decrease it promises, g^T M g."""
    descent = point.precondition(point.gradient)
    return descent, float(np.sum(point.gradient * descent))


def _anderson_mix(history):
    """Anderson-extrapolated fixed point from (iterate, update) pairs."""
    iterates = np.array([x.ravel() for x, _ in history])
    updates = np.array([f.ravel() for _, f in history])
    d_iterates, d_updates = np.diff(iterates, axis=0).T, np.diff(updates, axis=0).T
    weights = np.linalg.lstsq(d_updates, updates[-1], rcond=None)[0]
    mixed = iterates[-1] + updates[-1] - (d_iterates + d_updates) @ weights
    return mixed.reshape(history[-1][0].shape)


# Iterates kept by the Anderson mixing of the warm start.
_ANDERSON_DEPTH = 3


def _warm_start(point, problem, max_iter):
    """Self-consistent-field steps from ``point``; returns the point and steps.

    At a stationary W, span(W) is an invariant subspace of
    ``E(W) = s^2 G - s (C W^T + W C^T)`` (then ``G W - C = W L`` with L
    symmetric); stepping to the span of its p smallest eigenvectors is the
    self-consistent-field iteration of the eigenvalue-based approach (Zhang
    et al., 2020). It makes large early gains but converges slowly, so it
    stops once a step gains less than 1e-3 of the residual. Anderson mixing
    (kept only when it does better) speeds it up.
    """
    p = problem.cross.shape[1]
    history, n_iter = [], 0
    while n_iter < max_iter:
        W, s = point.W, point.s
        shifted = -s * (problem.cross @ W.T)
        shifted += shifted.T
        shifted[np.diag_indices_from(shifted)] += s * s * problem.eigenvalues
        candidate = _UnbalancedPoint(np.linalg.eigh(shifted)[1][:, :p], problem)
        n_iter += 1
        history = [*history, (W, candidate.W - W)][-(_ANDERSON_DEPTH + 1) :]
        if len(history) > 1:
            mixed = np.linalg.qr(_anderson_mix(history))[0]
            if problem.value_of_span(mixed) < candidate.value:
                candidate = _UnbalancedPoint(mixed, problem)
        gain = point.value - candidate.value
        if not gain > 0:
            break
        point = candidate
        if gain <= 1e-3 * point.residual:
            break
    return point, n_iter


def unbalanced_procrustes(
    gram, cross, reference_sum_of_squares, *, scale, tol, max_iter, precision=0.0
):
    """Map with orthonormal columns minimising ``||s X W - Y||_F^2``, from moments.

    Parameters
    ----------
    gram : ndarray of shape (d, d)
        ``X^T X`` of the (centred) source.
    cross : ndarray of shape (d, p), d > p
        ``X^T Y``.
    reference_sum_of_squares : float
        ``||Y||_F^2``.
    scale : bool
        Also optimise the isotropic scale s (else s = 1).
    tol : float
        Stop when a Newton step promises to lower the residual sum of squares
        by less than ``tol`` times its value.
    max_iter : int
        Maximum number of iterations (warm start and Newton together).
    precision : float, default=0.0
        Relative precision of the moments (the machine epsilon of the data
        they were computed from). Where the Newton equation has no solution
        (flat directions: fewer rows than p), the iterations stop once the
        preconditioned steepest descent promises less than ``max(tol,
        precision)`` times the residual.

    Returns
    -------
    W : ndarray of shape (d, p)
        The map, with orthonormal columns.
    s : float
        The least-squares scale of W (1.0 when ``scale=False``).
    n_iter : int
        Iterations run.
    converged : bool
        Whether ``tol`` was reached.
    """
    problem = _UnbalancedProblem(gram, cross, reference_sum_of_squares, scale)
    U, _, Vt = _svd(problem.cross)
    # Start from U V^T, the map of largest cross-covariance tr(W^T C).
    point = _UnbalancedPoint(U @ Vt, problem)
    if point.b <= 0:
        # A constant source: every map gives the same residual.
        return problem.eigenvectors @ point.W, point.s, 0, True
    # Newton's method on the Grassmann manifold of column spaces, with the
    # rotation eliminated, a preconditioned truncated-CG inner solve and a
    # backtracking line search (Absil, Mahony & Sepulchre, 2008, ch. 6).
    max_inner = min(500, (cross.shape[0] - cross.shape[1]) * cross.shape[1])
    n_iter, converged, warm = 0, False, True
    while True:
        # A residual at the rounding level of the moments is an exact fit (a
        # wider copy of the reference, or a constant reference with scale):
        # no step can lower it, and steps taken on rounding noise would walk
        # away from it.
        if point.raw_residual <= 64 * precision * max(point.magnitude, 0.0):
            converged = True
            break
        descent, decrement = _newton_decrement(point.prepare())
        # Inexact Newton: a loose inner solve far from the solution,
        # superlinear convergence near it.
        forcing = min(0.5, (decrement / point.residual) ** 0.25)
        step, is_newton = _newton_step(point, forcing, max_inner)
        slope = float(np.sum(point.gradient * step))
        # The decrease the quadratic model promises at the Newton step.
        stationary = is_newton and -slope <= tol * point.residual
        if not (stationary or is_newton or warm):
            stationary = decrement <= max(tol, precision) * point.residual
        if stationary and not warm and n_iter < max_iter:
            # A vanishing gradient at a saddle as well as at a minimum.
            direction = _negative_curvature(point)
            escaped = None if direction is None else _escape(point, problem, direction)
            if escaped is not None:
                point = escaped
                n_iter += 1
                continue
        if is_newton and -slope <= tol * point.residual:
            converged = True
            break
        if (
            not (is_newton or warm)
            and decrement <= max(tol, precision) * point.residual
        ):
            # No Newton step: with fewer rows than p, whole families of maps
            # share the residual and the Hessian is singular along them, so
            # the test above never applies. The point is stationary to the
            # precision of the moments (float32 rounding in float32 moments
            # keeps the steepest descent promising about 1e-7 of the residual
            # forever: 300 iterations and 84-126 s for 200-300 WordNet glosses,
            # wordllama256 and minilm, against 33-61 iterations and 3-6 s).
            # Not before the warm start, whose start U V^T can be stationary
            # far from the minimum.
            converged = True
            break
        if n_iter >= max_iter:
            break
        if warm:
            warm = False
            point, n_warm = _warm_start(point, problem, max_iter - n_iter)
            n_iter += n_warm
            continue
        n_iter += 1
        if not slope < 0:
            step, slope = -descent, -decrement
        # Steps are capped at a 45 degree turn of the column space.
        length = min(1.0, 1.0 / np.linalg.norm(step, 2))
        for _ in range(50):
            basis = point.basis_after(length * step)
            if problem.value_of_span(basis) <= point.value + 2e-4 * length * slope:
                break
            length /= 2
        else:
            # No decrease left at this precision: at a residual the moments
            # cannot resolve from zero (relative to the reference, their
            # cancellation error is far above the machine epsilon), an exact
            # fit has been found, not a failure.
            converged = point.residual <= np.sqrt(precision) * max(
                problem.reference_sum_of_squares, 0.0
            )
            break
        point = _UnbalancedPoint(basis, problem)
    return problem.eigenvectors @ point.W, point.s, n_iter, converged
