"""Small dense linear algebra shared by the solvers (d x d, never n x d).

Every closed-form aligner and the CCA similarity end in the same few kernels
on covariance blocks: a regularised eigendecomposition, its inverse square
root (whitening), the orthogonal factor of a cross-covariance, sign-fixed
canonical directions and a least-squares back-map. They live here once.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from scipy import linalg
from sklearn.utils.extmath import svd_flip

__all__ = [
    "canonical_correlations",
    "flip_signs",
    "inverse_sqrt",
    "least_squares_back_projection",
    "orthogonal_factor",
    "regularized_eigh",
    "whitening",
]


def regularized_eigh(gram, ridge, *, view_name, dtype, parameter, value):
    """Eigendecomposition of ``gram + ridge * I``, refusing a singular result.

    ``ridge`` is the absolute shift derived from ``parameter=value``. Returns
    the eigenvalues (ascending, tiny negative rounding clipped to 0, then
    shifted by ``ridge``) and eigenvectors. Without regularisation, a view
    whose smallest eigenvalue is below ``d * eps * largest`` is numerically
    rank-deficient at the precision of the input ``dtype`` (the statistics of
    float32 rows are no more accurate than that) and is refused. With
    regularisation, only a result that is singular in float64
    is refused.
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
        tolerance = d * np.finfo(dtype).eps * largest
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
    ridge = reg * np.trace(covariance) / covariance.shape[0]
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
    U, S, Vt = np.linalg.svd(cross, full_matrices=False)
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
