"""Compare embedding spaces: similarity indices, retrieval, a verdict and scorers.

Two embedding models map the same texts to vectors whose axes mean different
things, so cosines *between* their vectors are meaningless until the spaces are
aligned. This module measures how far apart two row-paired sets of embeddings
are (:func:`linear_cka`, :func:`procrustes_distance`, :func:`cca_similarity`),
how well one retrieves the other (:func:`paired_cosine`,
:func:`retrieval_accuracy`), and gives a verdict with the numbers behind it
(:func:`compare_spaces`, :func:`check_same_space`). :func:`make_alignment_scorer`
turns cross-view retrieval into a scorer for model selection of aligners.

Every function reads its input in row chunks and accumulates in float64; none
builds an n x n matrix. Nearest-neighbour searches run in blocks of query rows
whose size follows a memory budget (256 MiB, or scikit-learn's
``working_memory`` when that is smaller), with float32 products for float32
input.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import math
import textwrap
import warnings
from dataclasses import asdict, dataclass
from numbers import Integral, Real

import numpy as np
from scipy.stats import binom
from sklearn import get_config
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from skembed._stats import row_squared_norms

__all__ = [
    "OutOfSpaceWarning",
    "SpaceComparison",
    "cca_similarity",
    "check_same_space",
    "compare_spaces",
    "linear_cka",
    "make_alignment_scorer",
    "paired_cosine",
    "procrustes_distance",
    "retrieval_accuracy",
]

# Upper bound, in MiB, of the temporaries of one block of a neighbour search.
_WORKING_MEMORY_MB = 256

# Byte budget of one row chunk in the moment passes (float64 copies of both
# sides and their row norms).
_MOMENT_CHUNK_BYTES = 32 * 2**20

# Ridge added to each covariance in cca_similarity, relative to its mean
# eigenvalue: it only matters for directions that carry less than about this
# fraction of the average variance (rank deficiency, rounding noise).
_CCA_RIDGE = 1e-10

# compare_spaces / check_same_space: significance level of "above chance", and
# the share of the best alignment's above-chance skill that raw vectors must
# reach to be called the same space.
_CHANCE_ALPHA = 1e-3
_SAME_SPACE_SHARE = 0.9


class OutOfSpaceWarning(UserWarning):
    """Two sets of embeddings that should share a space do not seem to.

    Raised as a warning by :func:`check_same_space` (``action="warn"``) when
    paired rows of A and B are no more similar than random pairs, or do not
    retrieve each other better than chance: typically embeddings from two
    different models compared directly. Fit an aligner (for example
    :class:`skembed.ProcrustesAligner`) on paired rows and compare the aligned
    outputs instead.
    """


# --------------------------------------------------------------------------
# Validation and chunking helpers
# --------------------------------------------------------------------------
def _check_embeddings(X, name):
    return check_array(X, dtype=[np.float64, np.float32], input_name=name)


def _check_pair(A, B, names=("A", "B"), *, same_width=False, paired=True):
    """Validate two embedding matrices and cast them to one float dtype."""
    A = _check_embeddings(A, names[0])
    B = _check_embeddings(B, names[1])
    if paired and A.shape[0] != B.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must be row-paired (row i of both embeds "
            f"the same item), but {names[0]} has {A.shape[0]} rows and "
            f"{names[1]} has {B.shape[0]}."
        )
    if same_width and A.shape[1] != B.shape[1]:
        raise ValueError(
            f"{names[0]} has {A.shape[1]} columns and {names[1]} has "
            f"{B.shape[1]}: cosines need vectors of one space. Map both into a "
            "shared space first, for example with "
            "skembed.ProcrustesAligner().fit([A, B]).transform_view."
        )
    dtype = np.result_type(A.dtype, B.dtype)
    return A.astype(dtype, copy=False), B.astype(dtype, copy=False)


def _block_rows(bytes_per_row, n_rows, chunk_size=None):
    """Rows per block: ``chunk_size`` if given, else from the memory budget."""
    if chunk_size is not None:
        return int(max(1, min(chunk_size, n_rows)))
    budget = min(_WORKING_MEMORY_MB, get_config()["working_memory"]) * 2**20
    return int(max(1, min(n_rows, budget // max(1, bytes_per_row))))


def _moment_rows(n_features):
    return int(max(256, _MOMENT_CHUNK_BYTES // (8 * 3 * max(1, n_features))))


def _centered_moments(A, B, *, grams=True, row_fourth=False):
    """Centred float64 moments of row-paired A and B, in two chunked passes.

    The means come first, so that every chunk is centred before its product
    (subtracting :math:`n \\mu \\mu^\\top` afterwards would cancel digits when the
    data sit far from the origin, as e5 embeddings do).
    """
    n = A.shape[0]
    mean_a = A.mean(axis=0, dtype=np.float64)
    mean_b = B.mean(axis=0, dtype=np.float64)
    p, q = A.shape[1], B.shape[1]
    out = {
        "n": n,
        "cross": np.zeros((p, q)),
        "squares_a": 0.0,
        "squares_b": 0.0,
    }
    if grams:
        out["gram_a"] = np.zeros((p, p))
        out["gram_b"] = np.zeros((q, q))
    if row_fourth:
        out["fourth_ab"] = out["fourth_aa"] = out["fourth_bb"] = 0.0
    rows = _moment_rows(p + q)
    for start in range(0, n, rows):
        a = A[start : start + rows].astype(np.float64) - mean_a
        b = B[start : start + rows].astype(np.float64) - mean_b
        out["cross"] += a.T @ b
        row_a = np.einsum("ij,ij->i", a, a)
        row_b = np.einsum("ij,ij->i", b, b)
        out["squares_a"] += row_a.sum()
        out["squares_b"] += row_b.sum()
        if grams:
            out["gram_a"] += a.T @ a
            out["gram_b"] += b.T @ b
        if row_fourth:
            out["fourth_ab"] += row_a @ row_b
            out["fourth_aa"] += row_a @ row_a
            out["fourth_bb"] += row_b @ row_b
    return out


def _require_spread(moments, names=("A", "B")):
    for key, name in zip(("squares_a", "squares_b"), names, strict=True):
        if not moments[key] > 0:
            raise ValueError(
                f"{name} has zero variance (all rows are identical); the "
                "similarity of a constant representation is undefined."
            )


def _inverse_row_norms(X):
    """1 / ||x_i|| in float64, 0 for zero rows (whose cosines are then 0)."""
    norms = np.sqrt(row_squared_norms(X))
    inverse = np.zeros_like(norms)
    np.divide(1.0, norms, out=inverse, where=norms > 0)
    return inverse


# --------------------------------------------------------------------------
# Similarity indices
# --------------------------------------------------------------------------
def _debiased_hsic(cross_sq, fourth, squares_x, squares_y, n):
    # Song et al. (2012) unbiased HSIC of the linear kernels, up to the factor
    # 1 / (n (n - 3)) that cancels in CKA; written with feature-space sums as
    # in Kornblith et al. (2019).
    return (
        cross_sq
        - n / (n - 2.0) * fourth
        + squares_x * squares_y / ((n - 1.0) * (n - 2.0))
    )


@validate_params(
    {"A": ["array-like"], "B": ["array-like"], "debiased": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def linear_cka(A, B, *, debiased=False):
    """Linear centred kernel alignment between two row-paired representations.

    CKA compares the similarity structure of the rows: it is 1 when B is a
    rotation and isotropic rescaling of A (after centring), and near 0 for
    unrelated representations. Widths may differ.

    Parameters
    ----------
    A : array-like of shape (n_samples, n_features_a)
        First representation.
    B : array-like of shape (n_samples, n_features_b)
        Second representation; row i embeds the same item as row i of A.
    debiased : bool, default=False
        Use the unbiased HSIC estimator of Song et al. (2012), as proposed for
        CKA by Kornblith et al. (2019); it removes the upward bias of CKA when
        the number of features is large compared with the number of rows.
        Needs at least 4 rows.

    Returns
    -------
    cka : float
        The linear CKA, in [0, 1] (the debiased value can fall slightly below
        0 for unrelated data).

    See Also
    --------
    procrustes_distance : A metric that is invariant to the same maps.
    cca_similarity : Invariant to all invertible linear maps.

    Notes
    -----
    With :math:`\\tilde A, \\tilde B` the column-centred inputs,

    .. math::

        \\operatorname{CKA}(A, B) = \\frac{\\|\\tilde A^\\top \\tilde B\\|_F^2}
        {\\|\\tilde A^\\top \\tilde A\\|_F \\, \\|\\tilde B^\\top \\tilde B\\|_F},

    the feature-space form of the kernel expression
    :math:`\\langle HKH, HLH \\rangle / (\\|HKH\\|\\,\\|HLH\\|)` with
    :math:`K = AA^\\top, L = BB^\\top`. All three products are d x d and are
    accumulated over row chunks in float64, so memory is
    :math:`O(d_a^2 + d_b^2 + d_a d_b)` whatever n.

    The debiased form replaces each :math:`\\langle K, L \\rangle` by the
    unbiased estimator, which for linear kernels also reduces to
    feature-space sums (no n x n matrix):

    .. math::

        \\|\\tilde A^\\top \\tilde B\\|_F^2 - \\frac{n}{n-2} \\sum_i
        \\|\\tilde a_i\\|^2 \\|\\tilde b_i\\|^2 + \\frac{\\|\\tilde A\\|_F^2
        \\|\\tilde B\\|_F^2}{(n-1)(n-2)}.

    CKA is invariant to orthogonal maps and isotropic scaling of either side,
    but not to general invertible linear maps.

    References
    ----------
    Kornblith, Norouzi, Lee and Hinton (2019). "Similarity of neural network
    representations revisited." ICML.

    Song, Smola, Gretton, Bedo and Borgwardt (2012). "Feature selection via
    dependence maximization." JMLR 13.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import ortho_group
    >>> from skembed.metrics import linear_cka
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(500, 8))
    >>> round(linear_cka(A, 3.0 * A @ ortho_group.rvs(8, random_state=0)), 6)
    1.0
    >>> round(linear_cka(A, rng.normal(size=(500, 8)), debiased=True), 1)
    0.0
    """
    A, B = _check_pair(A, B)
    n = A.shape[0]
    if debiased and n < 4:
        raise ValueError(
            f"debiased=True needs at least 4 rows, got {n}; use debiased=False."
        )
    m = _centered_moments(A, B, grams=True, row_fourth=debiased)
    _require_spread(m)
    hsic_ab = float(np.sum(m["cross"] ** 2))
    hsic_aa = float(np.sum(m["gram_a"] ** 2))
    hsic_bb = float(np.sum(m["gram_b"] ** 2))
    if debiased:
        sa, sb = m["squares_a"], m["squares_b"]
        hsic_ab = _debiased_hsic(hsic_ab, m["fourth_ab"], sa, sb, n)
        hsic_aa = _debiased_hsic(hsic_aa, m["fourth_aa"], sa, sa, n)
        hsic_bb = _debiased_hsic(hsic_bb, m["fourth_bb"], sb, sb, n)
        if not (hsic_aa > 0 and hsic_bb > 0):
            raise ValueError(
                "The debiased self-similarity of A or B is not positive, which "
                f"happens with very few rows (n = {n}); use debiased=False."
            )
    return float(hsic_ab / math.sqrt(hsic_aa * hsic_bb))


@validate_params(
    {"A": ["array-like"], "B": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def procrustes_distance(A, B):
    """Angular Procrustes shape distance between two row-paired representations.

    The angle between the centred, unit-norm representations after the best
    orthogonal alignment (Williams et al., 2021). It is a true metric on
    representations modulo translation, isotropic scaling and orthogonal maps:
    symmetric, zero exactly when one is a rotated, rescaled, shifted copy of
    the other, and obeying the triangle inequality. Widths may differ (the
    narrower side is conceptually padded with zero columns).

    Parameters
    ----------
    A : array-like of shape (n_samples, n_features_a)
        First representation.
    B : array-like of shape (n_samples, n_features_b)
        Second representation; row i embeds the same item as row i of A.

    Returns
    -------
    distance : float
        The angle in radians, in [0, pi/2].

    See Also
    --------
    linear_cka : A similarity index with the same invariances.
    skembed.ProcrustesAligner : Fit the aligning rotation itself.

    Notes
    -----
    With :math:`\\tilde A, \\tilde B` centred and scaled to unit Frobenius
    norm,

    .. math::

        d(A, B) = \\arccos \\max_{Q^\\top Q = I}
        \\operatorname{tr}(\\tilde A^\\top \\tilde B Q)
        = \\arccos \\|\\tilde A^\\top \\tilde B\\|_*,

    where :math:`\\|\\cdot\\|_*` is the nuclear norm (sum of singular values).
    Only the :math:`d_a \\times d_b` cross-product is formed, accumulated over
    row chunks in float64. Near 0 the arccos amplifies rounding: two copies
    that agree to float64 precision are about 1e-8 apart.

    References
    ----------
    Williams, Kunz, Kornblith and Linderman (2021). "Generalized shape metrics
    on neural representations." NeurIPS.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import ortho_group
    >>> from skembed.metrics import procrustes_distance
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(300, 6))
    >>> B = 2.0 * A @ ortho_group.rvs(6, random_state=1) + 5.0
    >>> round(procrustes_distance(A, B), 6)
    0.0
    >>> round(procrustes_distance(A, A + rng.normal(size=A.shape)), 2)
    0.8...
    """
    A, B = _check_pair(A, B)
    m = _centered_moments(A, B, grams=False)
    _require_spread(m)
    nuclear = float(np.linalg.svd(m["cross"], compute_uv=False).sum())
    cosine = nuclear / math.sqrt(m["squares_a"] * m["squares_b"])
    return float(math.acos(min(1.0, max(0.0, cosine))))


def _principal_axes(cov, variance, name):
    """Eigenvalues (descending) and eigenvectors of a covariance, maybe truncated."""
    values, vectors = np.linalg.eigh(cov)
    values, vectors = np.clip(values[::-1], 0, None), vectors[:, ::-1]
    if variance is not None:
        explained = np.cumsum(values) / values.sum()
        keep = int(np.searchsorted(explained, variance * (1 - 1e-12))) + 1
        values, vectors = values[:keep], vectors[:, :keep]
    return values, vectors


@validate_params(
    {
        "A": ["array-like"],
        "B": ["array-like"],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "svcca_variance": [Interval(Real, 0, 1, closed="right"), None],
    },
    prefer_skip_nested_validation=True,
)
def cca_similarity(A, B, *, n_components=None, svcca_variance=None):
    """Mean canonical correlation between two row-paired representations.

    Canonical correlation analysis finds the pairs of directions (one per side)
    whose projections are most correlated. The mean of the leading canonical
    correlations is invariant to every invertible linear map of either side,
    so it asks whether B is *some* linear transform of A, not whether it is a
    rotation of it.

    Parameters
    ----------
    A : array-like of shape (n_samples, n_features_a)
        First representation.
    B : array-like of shape (n_samples, n_features_b)
        Second representation; row i embeds the same item as row i of A.
    n_components : int, default=None
        Average the leading ``n_components`` canonical correlations. None uses
        all of them: ``min(n_features_a, n_features_b)``, or the smaller of the
        two kept dimensions with ``svcca_variance``.
    svcca_variance : float in (0, 1], default=None
        None computes plain CCA on all features. A value switches to SVCCA
        (Raghu et al., 2017): each side is first reduced to its leading
        principal directions explaining this fraction of its variance (0.99
        in the paper), which drops noise directions that CCA would otherwise
        correlate.

    Returns
    -------
    similarity : float
        Mean of the leading canonical correlations, in [0, 1].

    See Also
    --------
    linear_cka : Sensitive to anisotropic rescaling, unlike CCA.
    skembed.CCAAligner : Fit the canonical directions themselves.

    Notes
    -----
    With the covariance blocks :math:`\\Sigma_{aa}, \\Sigma_{bb}, \\Sigma_{ab}`
    (accumulated over row chunks in float64) the canonical correlations are
    the singular values of

    .. math::

        (\\Sigma_{aa} + \\epsilon_a I)^{-1/2} \\, \\Sigma_{ab} \\,
        (\\Sigma_{bb} + \\epsilon_b I)^{-1/2},

    with a tiny ridge :math:`\\epsilon = 10^{-10} \\operatorname{tr}(\\Sigma)/d`
    for numerical stability. SVCCA first restricts each covariance to its
    kept principal directions. With few rows (``n_samples`` not well above
    ``n_features_a + n_features_b``), sample canonical correlations are biased
    towards 1; prefer SVCCA or :func:`linear_cka` there.

    References
    ----------
    Hotelling (1936). "Relations between two sets of variates." Biometrika.

    Raghu, Gilmer, Yosinski and Sohl-Dickstein (2017). "SVCCA: Singular vector
    canonical correlation analysis for deep learning dynamics and
    interpretability." NeurIPS.

    Examples
    --------
    >>> import numpy as np
    >>> from skembed.metrics import cca_similarity
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(1000, 5))
    >>> M = rng.normal(size=(5, 5))
    >>> round(cca_similarity(A, A @ M + 1.0), 6)
    1.0
    >>> round(cca_similarity(A, rng.normal(size=(1000, 5))), 1)
    0.0
    >>> round(cca_similarity(A, A @ M, svcca_variance=0.99), 3)
    1.0
    """
    A, B = _check_pair(A, B)
    n = A.shape[0]
    if n < 2:
        raise ValueError(f"cca_similarity needs at least 2 rows, got {n}.")
    m = _centered_moments(A, B, grams=True)
    _require_spread(m)
    axes = []
    for key, name in (("gram_a", "A"), ("gram_b", "B")):
        values, vectors = _principal_axes(m[key] / (n - 1), svcca_variance, name)
        ridge = _CCA_RIDGE * m[key].trace() / (n - 1) / m[key].shape[0]
        axes.append(vectors / np.sqrt(values + ridge))
    available = min(axes[0].shape[1], axes[1].shape[1])
    if n_components is None:
        n_components = available
    elif n_components > available:
        kept = " kept by svcca_variance" if svcca_variance is not None else ""
        raise ValueError(
            f"n_components={n_components} exceeds the {available} canonical "
            f"pairs available (the smaller number of directions{kept}); use "
            f"n_components <= {available}."
        )
    whitened_cross = axes[0].T @ (m["cross"] / (n - 1)) @ axes[1]
    correlations = np.linalg.svd(whitened_cross, compute_uv=False)
    return float(np.clip(correlations[:n_components], 0.0, 1.0).mean())


@validate_params(
    {"A": ["array-like"], "B": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def paired_cosine(A, B):
    """Cosine similarity between each row of A and the same row of B.

    Meaningful only when A and B live in one space (same model, or both
    mapped by an aligner): across two models' raw spaces the axes do not
    correspond and the values are noise.

    Parameters
    ----------
    A : array-like of shape (n_samples, n_features)
        First set of embeddings.
    B : array-like of shape (n_samples, n_features)
        Second set, row-paired with A and of the same width.

    Returns
    -------
    cosines : ndarray of shape (n_samples,)
        ``cos(A[i], B[i])`` in float64; 0 where either row is zero. Their
        mean, ``paired_cosine(A, B).mean()``, is the usual summary; compare it
        with the mean cosine of random pairs, e.g.
        ``paired_cosine(A, np.roll(B, 1, axis=0)).mean()``, since some models
        give every pair a large cosine.

    See Also
    --------
    retrieval_accuracy : Whether each row's partner is also its nearest row.

    Examples
    --------
    >>> import numpy as np
    >>> from skembed.metrics import paired_cosine
    >>> A = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    >>> B = np.array([[2.0, 0.0], [1.0, 0.0], [-1.0, -1.0]])
    >>> paired_cosine(A, B)
    array([ 1.,  0., -1.])
    >>> float(paired_cosine(A, B).mean())
    0.0
    """
    A, B = _check_pair(A, B, same_width=True)
    out = np.empty(A.shape[0])
    rows = _moment_rows(2 * A.shape[1])
    for start in range(0, A.shape[0], rows):
        a = A[start : start + rows].astype(np.float64)
        b = B[start : start + rows].astype(np.float64)
        dots = np.einsum("ij,ij->i", a, b)
        out[start : start + rows] = dots * _inverse_row_norms(a) * _inverse_row_norms(b)
    return out


# --------------------------------------------------------------------------
# Nearest-neighbour engine
# --------------------------------------------------------------------------
def _search_inputs(Q, T, method, csls_k):
    Q, T = _check_pair(Q, T, ("Q", "T"), paired=False)
    if Q.shape[1] != T.shape[1]:
        raise ValueError(
            f"Q has {Q.shape[1]} columns and T has {T.shape[1]}: nearest "
            "neighbours need vectors of one space. Map both into a shared "
            "space first, for example with an aligner's transform_view."
        )
    if method not in ("nn", "csls"):
        raise ValueError(f"method must be 'nn' or 'csls', got {method!r}.")
    if method == "csls":
        smaller = min(Q.shape[0], T.shape[0])
        if not 1 <= csls_k <= smaller:
            raise ValueError(
                f"csls_k={csls_k} must be between 1 and the number of rows of "
                f"the smaller set ({smaller}); lower csls_k."
            )
    return Q, T


def _bytes_per_score(dtype):
    # The block of scores, one partition copy of it and two boolean masks.
    return 2 * np.dtype(dtype).itemsize + 2


def _cosine_blocks(Q, T, *, chunk_size=None):
    """Yield ``(start, stop, S)``: cosines of a block of Q rows with all T rows.

    ``S`` is computed in the input dtype (float32 products for float32 input:
    ample for ranking), with the block height taken from the memory budget.
    """
    inv_q = _inverse_row_norms(Q).astype(Q.dtype)
    inv_t = _inverse_row_norms(T).astype(T.dtype)
    rows = _block_rows(T.shape[0] * _bytes_per_score(Q.dtype), Q.shape[0], chunk_size)
    for start in range(0, Q.shape[0], rows):
        stop = min(start + rows, Q.shape[0])
        S = Q[start:stop] @ T.T
        S *= inv_q[start:stop, None]
        S *= inv_t[None, :]
        yield start, stop, S


def _mean_top(S, k):
    """Mean of the k largest values of each row of S, in float64."""
    n_cols = S.shape[1]
    return np.partition(S, n_cols - k, axis=1)[:, n_cols - k :].mean(
        axis=1, dtype=np.float64
    )


def _csls_penalty(Q, T, csls_k, chunk_size=None):
    """Mean cosine of each T row to its ``csls_k`` nearest Q rows.

    This is :math:`r_Q(t)` of Conneau et al. (2018), the hubness term of CSLS
    for targets; ``_csls_penalty(T, Q, k)`` gives :math:`r_T(q)`.

    Parameters
    ----------
    Q : array-like of shape (n_q, d)
        The set whose neighbours are averaged.
    T : array-like of shape (n_t, d)
        The rows that get a penalty.
    csls_k : int
        Number of neighbours, at most ``n_q``.
    chunk_size : int, default=None
        Rows of T per block; None derives it from the memory budget.

    Returns
    -------
    penalty : ndarray of shape (n_t,)
        Float64 mean cosines.
    """
    Q, T = _search_inputs(Q, T, "nn", csls_k)
    if not 1 <= csls_k <= Q.shape[0]:
        raise ValueError(
            f"csls_k={csls_k} must be between 1 and the number of Q rows "
            f"({Q.shape[0]})."
        )
    out = np.empty(T.shape[0])
    for start, stop, S in _cosine_blocks(T, Q, chunk_size=chunk_size):
        out[start:stop] = _mean_top(S, csls_k)
    return out


def _block_topk(S, k):
    """Top-k columns of each row of S, best first, ties to the lower index.

    The k-th largest value of each row comes from a partition (linear time);
    the columns at or above it, normally exactly k per row, are then sorted
    by score and index. Unlike argpartition alone, this keeps ties
    deterministic.
    """
    n_rows, n_cols = S.shape
    kth = np.partition(S, n_cols - k, axis=1)[:, n_cols - k]
    rows, cols = np.nonzero(S >= kth[:, None])
    vals = S[rows, cols]
    order = np.lexsort((cols, -vals, rows))
    # Every row has at least k candidates; keep its first k in that order.
    first = np.searchsorted(rows[order], np.arange(n_rows))
    take = order[(first[:, None] + np.arange(k)).ravel()]
    return cols[take].reshape(n_rows, k), vals[take].reshape(n_rows, k)


def _topk_neighbors(Q, T, k, *, method="nn", csls_k=10, chunk_size=None):
    """The k best rows of T for every row of Q, by cosine or CSLS.

    Q and T may have different numbers of rows (unpaired pools). Costs one
    blockwise product Q T^T for ``"nn"`` and two for ``"csls"``.

    Parameters
    ----------
    Q : array-like of shape (n_q, d)
        Queries.
    T : array-like of shape (n_t, d)
        Targets, of the same width.
    k : int
        Neighbours per query, at most ``n_t``.
    method : {"nn", "csls"}, default="nn"
        ``"nn"`` ranks by cosine; ``"csls"`` by
        ``2 cos(q, t) - r_T(q) - r_Q(t)`` (Conneau et al., 2018).
    csls_k : int, default=10
        Neighbourhood size of the CSLS penalties, at most ``min(n_q, n_t)``.
    chunk_size : int, default=None
        Query rows per block; None derives it from the memory budget.

    Returns
    -------
    indices : ndarray of shape (n_q, k), int64
        Target rows, best first; equal scores are ordered by target index.
    scores : ndarray of shape (n_q, k), float64
        Their cosine or full CSLS score.
    """
    Q, T = _search_inputs(Q, T, method, csls_k)
    n_t = T.shape[0]
    if not 1 <= k <= n_t:
        raise ValueError(f"k={k} must be between 1 and the number of targets ({n_t}).")
    penalty_t = None
    if method == "csls":
        penalty_t = _csls_penalty(Q, T, csls_k, chunk_size).astype(T.dtype)
    indices = np.empty((Q.shape[0], k), dtype=np.int64)
    scores = np.empty((Q.shape[0], k))
    for start, stop, S in _cosine_blocks(Q, T, chunk_size=chunk_size):
        if penalty_t is None:
            indices[start:stop], scores[start:stop] = _block_topk(S, k)
            continue
        # r_T(q) comes from the same cosine block before it becomes CSLS.
        penalty_q = _mean_top(S, csls_k)
        S *= 2
        S -= penalty_t
        indices[start:stop], scores[start:stop] = _block_topk(S, k)
        scores[start:stop] -= penalty_q[:, None]
    return indices, scores


def _retrieval_hits(Q, T, k, method, csls_k, chunk_size=None):
    """Number of rows i of Q with row i of T among their k best targets."""
    penalty_t = None
    if method == "csls":
        # r_T(q) is constant along a query's row, so it cannot change a rank.
        penalty_t = _csls_penalty(Q, T, csls_k, chunk_size).astype(T.dtype)
    columns = np.arange(T.shape[0])
    hits = 0
    for start, stop, S in _cosine_blocks(Q, T, chunk_size=chunk_size):
        if penalty_t is not None:
            S *= 2
            S -= penalty_t
        rows = np.arange(stop - start)
        own = S[rows, start + rows][:, None]
        # Rank of the partner under the tie rule of _topk_neighbors: targets
        # with a larger score, plus equal scores at a lower index.
        rank = np.count_nonzero(S > own, axis=1)
        tied = S == own
        if np.count_nonzero(tied) > stop - start:
            rank += np.count_nonzero(tied & (columns < (start + rows)[:, None]), axis=1)
        hits += int(np.count_nonzero(rank < k))
    return hits


@validate_params(
    {
        "Q": ["array-like"],
        "T": ["array-like"],
        "k": [Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"nn", "csls"})],
        "csls_k": [Interval(Integral, 1, None, closed="left")],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def retrieval_accuracy(Q, T, *, k=1, method="nn", csls_k=10, chunk_size=None):
    """Fraction of queries whose own partner is among their k nearest targets.

    Row i of Q and row i of T embed the same item. For every i, the rows of T
    are ranked by similarity to Q[i]; a hit is row i among the first k. This
    is the cross-model retrieval accuracy reported for embedding alignment
    (chance level ``k / n_samples``).

    Parameters
    ----------
    Q : array-like of shape (n_samples, n_features)
        Queries.
    T : array-like of shape (n_samples, n_features)
        Targets, row-paired with Q (``n_samples`` must match) and in the same
        space (same width).
    k : int, default=1
        Size of the shortlist; ``k=1`` is top-1 accuracy (precision@1).
    method : {"nn", "csls"}, default="nn"
        ``"nn"`` ranks targets by cosine. ``"csls"`` ranks by cross-domain
        similarity local scaling (Conneau et al., 2018), which discounts
        "hub" targets that are close to many queries.
    csls_k : int, default=10
        Neighbourhood size of the CSLS penalties (ignored for ``"nn"``).
    chunk_size : int, default=None
        Query rows per block. None derives it from a memory budget of 256 MiB
        (or scikit-learn's ``working_memory``, if smaller), so that even
        100,000 x 100,000 searches need only a few hundred MB.

    Returns
    -------
    accuracy : float
        Fraction of hits, in [0, 1].

    See Also
    --------
    paired_cosine : Similarity of each pair, without ranking.
    make_alignment_scorer : This accuracy as a model-selection scorer.

    Notes
    -----
    CSLS scores a query q and a target t by

    .. math::

        \\operatorname{CSLS}(q, t) = 2 \\cos(q, t) - r_T(q) - r_Q(t),

    where :math:`r_T(q)` is the mean cosine of q to its ``csls_k`` nearest
    targets and :math:`r_Q(t)` that of t to its ``csls_k`` nearest queries.
    :math:`r_T(q)` does not change a query's ranking and is skipped here.

    Scores are computed block by block (float32 products for float32 input),
    never as a full n x n matrix. A target tied with the partner counts as
    ranked before it when its index is lower, so results are deterministic.

    References
    ----------
    Conneau, Lample, Ranzato, Denoyer and Jégou (2018). "Word translation
    without parallel data." ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> from skembed.metrics import retrieval_accuracy
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.normal(size=(1000, 16))
    >>> T = Q + 0.5 * rng.normal(size=Q.shape)
    >>> retrieval_accuracy(Q, T)
    1.0
    >>> round(retrieval_accuracy(Q, rng.normal(size=Q.shape), k=10), 1)
    0.0
    >>> retrieval_accuracy(Q, T, method="csls", chunk_size=100)
    1.0
    """
    Q, T = _search_inputs(Q, T, method, csls_k)
    if Q.shape[0] != T.shape[0]:
        raise ValueError(
            "Q and T must be row-paired (row i of Q's partner is row i of T), but "
            f"Q has {Q.shape[0]} rows and T has {T.shape[0]}. For unpaired pools "
            "search neighbours instead of measuring retrieval."
        )
    n = Q.shape[0]
    if k > n:
        raise ValueError(f"k={k} must be at most the number of rows ({n}).")
    return _retrieval_hits(Q, T, k, method, csls_k, chunk_size) / n


# --------------------------------------------------------------------------
# Same space or not
# --------------------------------------------------------------------------
def _random_partners(n, rng):
    """A random derangement: row i is paired with partner[i] != i (n >= 2)."""
    order = rng.permutation(n)
    partner = np.empty(n, dtype=np.int64)
    partner[order] = np.roll(order, -1)
    return partner


def _above_chance(accuracy, n):
    """Whether a top-1 accuracy among n candidates shows a real pairing.

    Two conditions, both relative to chance c = 1/n: the accuracy reaches the
    geometric midpoint sqrt(c) between chance and perfect retrieval (the
    partner is found with at least half of the log2(n) bits that identify it),
    and its hit count is significant against Binomial(n, c) at level 1e-3
    (which only binds for small n).
    """
    chance = 1.0 / n
    hits = int(round(accuracy * n))
    significant = hits > 0 and binom.sf(hits - 1, n, chance) < _CHANCE_ALPHA
    return bool(accuracy >= math.sqrt(chance) and significant)


def _two_way_retrieval(A, B):
    return 0.5 * (retrieval_accuracy(A, B) + retrieval_accuracy(B, A))


@validate_params(
    {
        "A": ["array-like"],
        "B": ["array-like"],
        "action": [StrOptions({"warn", "raise"})],
        "n_samples": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def check_same_space(A, B, *, action="warn", n_samples=1000, random_state=0):
    """Check cheaply whether row-paired embeddings A and B share one space.

    A guard for user code that is about to compare vectors of A with vectors
    of B directly (cosine, nearest neighbours), which is meaningful only when
    both come from the same model or were mapped into one space by an
    aligner. On a random subsample of paired rows it checks that

    1. A and B have the same width;
    2. paired rows are more similar than random pairs: the mean of
       ``cos(a_i, b_i) - cos(a_i, b_j)`` over rows, for a random partner j,
       exceeds three standard errors;
    3. raw top-1 retrieval (mean of A -> B and B -> A) is above chance by
       the rule of :func:`compare_spaces`: at least ``sqrt(1 / m)`` among the
       ``m`` subsampled rows and significant at level 1e-3.

    Embeddings of two different models fail 2 and 3 (their raw retrieval is
    at chance level). Whether an aligner would still improve embeddings that
    pass is what :func:`compare_spaces` tells.

    Parameters
    ----------
    A : array-like of shape (n_rows, n_features_a)
        First set of embeddings.
    B : array-like of shape (n_rows, n_features_b)
        Second set; row i embeds the same item as row i of A.
    action : {"warn", "raise"}, default="warn"
        What to do when they do not look like one space: emit an
        :class:`OutOfSpaceWarning`, or raise a ValueError with the same
        message.
    n_samples : int, default=1000
        Number of paired rows to subsample (all rows if fewer).
    random_state : int, RandomState instance or None, default=0
        Subsample and random pairs; fixed by default so that a guard gives
        the same answer on every run.

    Returns
    -------
    same_space : bool
        True when all checks pass.

    Warns
    -----
    OutOfSpaceWarning
        With ``action="warn"`` when a check fails; the message gives the
        numbers and says what to do.

    See Also
    --------
    compare_spaces : The full comparison, including fitted alignments.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from scipy.stats import ortho_group
    >>> from skembed.metrics import check_same_space
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(500, 16))
    >>> check_same_space(A, A + 0.1 * rng.normal(size=A.shape))
    True
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_same_space(A, A @ ortho_group.rvs(16, random_state=0))
    False
    >>> print(caught[0].message)
    A and B do not look like embeddings of one space: ...
    """
    A, B = _check_pair(A, B)
    rng = check_random_state(random_state)
    n, p, q = A.shape[0], A.shape[1], B.shape[1]
    if n < 2:
        raise ValueError(f"check_same_space needs at least 2 paired rows, got {n}.")
    advice = (
        "Vectors from different models must not be compared directly: fit an "
        "aligner on paired rows, e.g. aligner = skembed.ProcrustesAligner()"
        ".fit([A, B]), and compare aligner.transform_view(A, 0) with "
        "aligner.transform_view(B, 1); skembed.metrics.compare_spaces tells "
        "whether that works."
    )
    if p != q:
        reasons = f"A has {p} columns and B has {q}"
        same = False
    else:
        m = min(n, n_samples)
        rows = np.sort(rng.choice(n, size=m, replace=False)) if m < n else slice(None)
        A_sub, B_sub = A[rows], B[rows]
        paired = paired_cosine(A_sub, B_sub)
        unpaired = paired_cosine(A_sub, B_sub[_random_partners(m, rng)])
        gap = paired - unpaired
        standard_error = gap.std(ddof=1) / math.sqrt(m) if m > 1 else 0.0
        cosine_ok = bool(gap.mean() > 3 * standard_error)
        retrieval = _two_way_retrieval(A_sub, B_sub)
        retrieval_ok = _above_chance(retrieval, m)
        same = cosine_ok and retrieval_ok
        reasons = (
            f"paired rows have mean cosine {paired.mean():.3f} against "
            f"{unpaired.mean():.3f} for random pairs, and raw top-1 retrieval "
            f"is {retrieval:.4f} among {m} rows (chance {1 / m:.4f}, needed "
            f">= {math.sqrt(1 / m):.4f})"
        )
    if not same:
        message = f"A and B do not look like embeddings of one space: {reasons}. "
        message += advice
        if action == "raise":
            raise ValueError(message)
        # stacklevel 3: past the validate_params wrapper, to the caller.
        warnings.warn(message, OutOfSpaceWarning, stacklevel=3)
    return same


_VERDICTS = ("same space", "different spaces, alignable", "not linearly alignable")


def _skill(accuracy, chance):
    """Share of the way from chance to perfect retrieval."""
    return (accuracy - chance) / (1.0 - chance)


def _decide(raw, aligned, n_test):
    """The verdict of compare_spaces from held-out top-1 accuracies."""
    chance = 1.0 / n_test
    if raw is not None and _above_chance(raw, n_test):
        if _skill(raw, chance) >= _SAME_SPACE_SHARE * _skill(aligned, chance):
            return _VERDICTS[0]
    if _above_chance(aligned, n_test):
        return _VERDICTS[1]
    return _VERDICTS[2]


@dataclass(frozen=True)
class SpaceComparison:
    """Result of :func:`compare_spaces`: a verdict and the numbers behind it.

    ``str(result)`` prints a table; :meth:`to_dict` gives plain Python values
    for JSON.

    Attributes
    ----------
    verdict : str
        ``"same space"``, ``"different spaces, alignable"`` or
        ``"not linearly alignable"``.
    explanation : str
        One paragraph: why this verdict, and what to do.
    n_samples, n_train, n_test : int
        Paired rows in all, used to fit the aligners, and held out.
    n_features : tuple of int
        Widths of A and B.
    chance : float
        Top-1 retrieval accuracy of a random ranking, ``1 / n_test``.
    signal_threshold : float
        ``sqrt(chance)``: the retrieval accuracy above which a pairing counts
        as recovered.
    paired_cosine, random_pair_cosine : float or None
        Mean raw cosine of paired rows and of random pairs (None when the
        widths differ).
    raw_retrieval : float or None
        Held-out top-1 retrieval between raw vectors (None when the widths
        differ).
    procrustes_retrieval : float
        Held-out top-1 retrieval after a centred :class:`ProcrustesAligner`.
    cca_retrieval : float
        The same after a :class:`CCAAligner` with as many components as the
        narrower width allows.
    linear_cka : float
        Linear CKA of A and B on all rows.
    """

    verdict: str
    explanation: str
    n_samples: int
    n_train: int
    n_test: int
    n_features: tuple
    chance: float
    signal_threshold: float
    paired_cosine: float | None
    random_pair_cosine: float | None
    raw_retrieval: float | None
    procrustes_retrieval: float
    cca_retrieval: float
    linear_cka: float

    def to_dict(self):
        """The fields as a dict of plain Python values (JSON-serialisable).

        Returns
        -------
        result : dict
            Field name to value; ``n_features`` becomes a list.
        """
        out = asdict(self)
        out["n_features"] = list(self.n_features)
        return out

    def __str__(self):
        def fmt(value, digits=3):
            return "n/a" if value is None else f"{value:.{digits}f}"

        widths_differ = self.raw_retrieval is None
        raw_note = "widths differ" if widths_differ else ""
        rows = [
            (
                "paired cosine, raw (all rows)",
                fmt(self.paired_cosine),
                raw_note or f"random pairs {fmt(self.random_pair_cosine)}",
            ),
            (
                "top-1 retrieval, raw",
                fmt(self.raw_retrieval),
                f"chance {self.chance:.4f}" + (f", {raw_note}" if raw_note else ""),
            ),
            (
                "top-1 retrieval, Procrustes",
                fmt(self.procrustes_retrieval),
                f"pairing recovered if >= {self.signal_threshold:.4f}",
            ),
            (
                "top-1 retrieval, CCA",
                fmt(self.cca_retrieval),
                "",
            ),
            ("linear CKA (all rows)", fmt(self.linear_cka), ""),
        ]
        rule = "-" * 72
        lines = [
            f"A: {self.n_features[0]} features, B: {self.n_features[1]} features, "
            f"{self.n_samples} paired rows",
            f"aligners fit on {self.n_train} rows; retrieval on {self.n_test} "
            "held-out rows, mean of A->B and B->A",
            rule,
            f"{'':32}{'value':>8}   reference",
        ]
        lines += [f"{name:32}{value:>8}   {ref}".rstrip() for name, value, ref in rows]
        lines += [rule, f"verdict: {self.verdict}"]
        lines += textwrap.wrap(self.explanation, 72)
        return "\n".join(lines)


def _aligned_retrieval(aligner, A_train, B_train, A_test, B_test):
    """Held-out two-way top-1 retrieval in an aligner's centred shared space."""
    aligner.fit([A_train, B_train])
    # transform_view returns the centred shared space, where cosines compare
    # directions about the shared mean.
    Z_a = aligner.transform_view(A_test, 0)
    Z_b = aligner.transform_view(B_test, 1)
    return _two_way_retrieval(Z_a, Z_b)


def _explain(
    verdict,
    *,
    raw,
    aligned,
    method,
    chance,
    bar,
    n_train,
    n_test,
    widths,
    paired,
    unpaired,
    cka,
):
    if widths[0] != widths[1]:
        raw_clause = (
            f"their widths differ ({widths[0]} vs {widths[1]}), so raw vectors "
            "cannot be compared at all"
        )
    else:
        raw_clause = (
            f"raw top-1 retrieval between paired rows is {raw:.3f} (chance "
            f"{chance:.4f}) and paired rows have mean cosine {paired:.3f} against "
            f"{unpaired:.3f} for random pairs"
        )
    fit_clause = (
        f"a {method} map fitted on {n_train} pairs retrieves the partner of "
        f"{aligned:.1%} of {n_test} held-out rows"
    )
    if verdict == _VERDICTS[0]:
        return (
            f"A and B look like one embedding space: {raw_clause}. Raw retrieval "
            f"reaches at least {_SAME_SPACE_SHARE:.0%} of the above-chance retrieval "
            f"of the best linear alignment on the same held-out rows ({aligned:.3f}, "
            f"{method}), so aligning would not improve it materially. Comparing "
            "their vectors directly (cosine, nearest neighbours) is meaningful; "
            f"linear CKA is {cka:.3f}."
        )
    if verdict == _VERDICTS[1]:
        text = (
            f"A and B are different embedding spaces: {raw_clause}. But {fit_clause} "
            f"(chance {chance:.4f}), so a linear alignment recovers the pairing. Do "
            "not compare raw vectors across the two models: fit an aligner such as "
            f"skembed.{method}Aligner on paired rows and compare in its shared "
            "space (transform_view, or translate one model's vectors into the "
            f"other's space); linear CKA is {cka:.3f}."
        )
        if aligned < 0.5:
            text += (
                " The held-out accuracy is still modest: more training pairs or a "
                "non-linear aligner may help."
            )
        return text
    return (
        f"No linear relation between A and B was found: {raw_clause}, and {fit_clause}"
        f", not clearly above chance ({chance:.4f}; a recovered pairing needs at "
        f"least {bar:.4f} and significance at level {_CHANCE_ALPHA:g}); linear CKA is "
        f"{cka:.3f}. Check that the rows are paired (row i of A and of B embed the "
        "same item). If they are, the two models disagree beyond any linear map, "
        "and their vectors cannot be compared; a non-linear aligner or more pairs "
        "may still help."
    )


@validate_params(
    {
        "A": ["array-like"],
        "B": ["array-like"],
        "test_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def compare_spaces(A, B, *, test_size=0.25, random_state=None):
    """Tell whether two row-paired embeddings share a space, or can be aligned.

    Row i of A and row i of B embed the same item with two models (or the
    same model twice). The function measures how well raw vectors retrieve
    their partners, fits linear aligners on a training split and measures
    retrieval on the held-out rows, and returns a verdict:

    - ``"same space"``: raw vectors can be compared directly;
    - ``"different spaces, alignable"``: raw comparisons are meaningless, but
      a linear map fitted on paired rows recovers the pairing;
    - ``"not linearly alignable"``: neither works.

    Parameters
    ----------
    A : array-like of shape (n_samples, n_features_a)
        Embeddings of the first model.
    B : array-like of shape (n_samples, n_features_b)
        Embeddings of the second model, row-paired with A. Widths may differ;
        then raw comparisons are impossible and so is ``"same space"``.
    test_size : float or int, default=0.25
        Held-out share (float in (0, 1)) or number (int) of rows on which
        every retrieval accuracy is measured; at least 10 rows.
    random_state : int, RandomState instance or None, default=None
        Train/test split and random pairs.

    Returns
    -------
    result : SpaceComparison
        The verdict, a one-paragraph explanation, and the numbers;
        ``print(result)`` shows a table.

    See Also
    --------
    check_same_space : A cheap guard without fitting aligners.
    retrieval_accuracy : The accuracy used throughout.

    Notes
    -----
    Numbers (retrievals are top-1, cosine, the mean of A -> B and B -> A, on
    the ``n_test`` held-out rows, chance ``c = 1 / n_test``):

    - raw paired cosine against the mean cosine of random pairs (all rows);
    - raw retrieval (equal widths only);
    - retrieval after a centred :class:`ProcrustesAligner` fitted on the
      training rows, and after a :class:`CCAAligner` with ``min(widths)``
      components when that aligner is available, both measured in the
      aligner's shared space about its common offset; ``aligned`` is the
      better of the two;
    - linear CKA on all rows (reported, not used by the verdict).

    Rules, all relative to chance or to the other numbers, none tuned to a
    data set:

    - an accuracy shows a *recovered pairing* when it reaches
      :math:`\\sqrt{c}`, the geometric midpoint between chance and perfect
      retrieval (in information terms: more than half of the
      :math:`\\log_2 n_{test}` bits that single out the partner), and its hit
      count is significant against Binomial(n_test, c) at level 1e-3 (which
      only binds for small test sets);
    - ``"same space"``: widths equal, raw retrieval shows a recovered
      pairing, and its skill :math:`(acc - c)/(1 - c)` is at least 90% of the
      skill of ``aligned``: the alignment would not improve the raw vectors
      materially;
    - ``"different spaces, alignable"``: otherwise, when ``aligned`` shows a
      recovered pairing;
    - ``"not linearly alignable"``: otherwise.

    Because retrieval among more candidates is harder, the bar
    :math:`\\sqrt{c}` falls as the test set grows; the explanation flags an
    alignable verdict whose held-out accuracy is below 0.5.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import ortho_group
    >>> from skembed.metrics import compare_spaces
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(800, 16))
    >>> B = A @ ortho_group.rvs(16, random_state=0) + 0.3 * rng.normal(size=A.shape)
    >>> result = compare_spaces(A, B, random_state=0)
    >>> result.verdict
    'different spaces, alignable'
    >>> compare_spaces(A, A + 0.3 * rng.normal(size=A.shape), random_state=0).verdict
    'same space'
    >>> compare_spaces(A, rng.normal(size=A.shape), random_state=0).verdict
    'not linearly alignable'
    >>> print(result)
    A: 16 features, B: 16 features, 800 paired rows
    aligners fit on 600 rows; retrieval on 200 held-out rows, mean of A->B and B->A
    ...
    verdict: different spaces, alignable
    A and B are different embedding spaces: ...
    """
    from sklearn.model_selection import train_test_split

    from skembed._cca import CCAAligner
    from skembed._procrustes import ProcrustesAligner

    A, B = _check_pair(A, B)
    n = A.shape[0]
    widths = (A.shape[1], B.shape[1])
    rng = check_random_state(random_state)
    train, test = train_test_split(
        np.arange(n), test_size=test_size, random_state=rng.randint(2**31 - 1)
    )
    if test.size < 10 or train.size < 2:
        raise ValueError(
            f"compare_spaces needs at least 10 held-out and 2 training rows; "
            f"test_size={test_size!r} on {n} rows gives {test.size} and "
            f"{train.size}. Pass more rows or change test_size."
        )
    train.sort()
    test.sort()
    A_train, B_train, A_test, B_test = A[train], B[train], A[test], B[test]
    n_test = test.size
    chance = 1.0 / n_test

    paired = unpaired = raw = None
    if widths[0] == widths[1]:
        paired = float(paired_cosine(A, B).mean())
        unpaired = float(paired_cosine(A, B[_random_partners(n, rng)]).mean())
        raw = _two_way_retrieval(A_test, B_test)

    procrustes = _aligned_retrieval(
        ProcrustesAligner(), A_train, B_train, A_test, B_test
    )
    # CCA has at most min(widths, n_train - 1) canonical directions.
    cca = _aligned_retrieval(
        CCAAligner(n_components=min(*widths, train.size - 1)),
        A_train,
        B_train,
        A_test,
        B_test,
    )
    if cca > procrustes:
        aligned, method = cca, "CCA"
    else:
        aligned, method = procrustes, "Procrustes"
    cka = linear_cka(A, B)
    verdict = _decide(raw, aligned, n_test)
    explanation = _explain(
        verdict,
        raw=raw,
        aligned=aligned,
        method=method,
        chance=chance,
        bar=math.sqrt(chance),
        n_train=train.size,
        n_test=n_test,
        widths=widths,
        paired=paired,
        unpaired=unpaired,
        cka=cka,
    )
    return SpaceComparison(
        verdict=verdict,
        explanation=explanation,
        n_samples=n,
        n_train=int(train.size),
        n_test=int(n_test),
        n_features=widths,
        chance=chance,
        signal_threshold=math.sqrt(chance),
        paired_cosine=paired,
        random_pair_cosine=unpaired,
        raw_retrieval=raw,
        procrustes_retrieval=procrustes,
        cca_retrieval=cca,
        linear_cka=cka,
    )


# --------------------------------------------------------------------------
# Scorers
# --------------------------------------------------------------------------
def _alignment_score(estimator, X, *, k=1, method="nn", csls_k=10):
    """Mean cross-view retrieval accuracy of a fitted aligner on X.

    For every ordered pair of views (a, b), the rows of view a in the centred
    shared space retrieve among those of view b. ``k`` and ``csls_k`` are
    capped at the number of rows, so that small cross-validation folds work.
    """
    views = estimator._transform_views(X)
    n = views[0].shape[0]
    scores = [
        retrieval_accuracy(
            views[a],
            views[b],
            k=min(k, n),
            method=method,
            csls_k=min(csls_k, n),
        )
        for a in range(len(views))
        for b in range(len(views))
        if a != b
    ]
    return float(np.mean(scores))


class _AlignmentScorer:
    """Callable ``scorer(estimator, X, y=None)`` for model selection."""

    def __init__(self, *, k, method, csls_k):
        self.k = k
        self.method = method
        self.csls_k = csls_k

    def __call__(self, estimator, X, y=None):
        return _alignment_score(
            estimator, X, k=self.k, method=self.method, csls_k=self.csls_k
        )

    def __repr__(self):
        return (
            f"make_alignment_scorer(metric='retrieval', k={self.k}, "
            f"method={self.method!r}, csls_k={self.csls_k})"
        )


@validate_params(
    {
        "metric": [StrOptions({"retrieval"})],
        "k": [Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"nn", "csls"})],
        "csls_k": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def make_alignment_scorer(metric="retrieval", *, k=1, method="csls", csls_k=10):
    """Make a scorer of alignment quality for ``GridSearchCV(scoring=...)``.

    The scorer maps every view of the held-out fold into the aligner's
    shared space and returns the mean, over ordered pairs of views, of
    :func:`retrieval_accuracy`: higher is better, no labels needed.

    Parameters
    ----------
    metric : {"retrieval"}, default="retrieval"
        What to measure; only cross-view retrieval accuracy so far.
    k : int, default=1
        A hit is the partner within the first ``k`` targets (capped at the
        number of rows of the fold).
    method : {"nn", "csls"}, default="csls"
        Rank targets by cosine or by CSLS, which discounts hub targets. The
        aligners' default ``score`` uses ``"nn"`` and ``k=1``.
    csls_k : int, default=10
        Neighbourhood size of CSLS (capped at the number of rows).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None) -> float``, for a fitted skembed
        aligner and views laid out as at fit.

    See Also
    --------
    retrieval_accuracy : The accuracy of one pair of views.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import ortho_group
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skembed import ProcrustesAligner
    >>> from skembed.metrics import make_alignment_scorer
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(300, 8))
    >>> B = A @ ortho_group.rvs(8, random_state=0) + 0.2 * rng.normal(size=A.shape)
    >>> search = GridSearchCV(
    ...     ProcrustesAligner(),
    ...     {"center": [False, True]},
    ...     scoring=make_alignment_scorer(k=1, method="csls"),
    ...     cv=3,
    ... ).fit(np.hstack([A, B + 2.0]))
    >>> search.best_params_
    {'center': True}
    >>> bool(search.best_score_ > 0.9)
    True
    """
    return _AlignmentScorer(k=k, method=method, csls_k=csls_k)
