"""Similarity indices of two row-paired representations: CKA, Procrustes, CCA.

They say how much structure two sets of embeddings share (invariant to
rotations and, for CKA and CCA, more), not whether raw vectors of the two
can be compared: that is what :mod:`skembed.metrics._verdict` tells. Every
index reads its input in row chunks and accumulates in float64; none builds
an n x n matrix.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval

from skembed._linalg import canonical_correlations
from skembed._params import validate_params
from skembed._stats import CrossMoments, chunk_rows, unit_rows
from skembed._views import check_float_array

__all__ = [
    "cca_similarity",
    "check_paired",
    "linear_cka",
    "paired_cosine",
    "procrustes_distance",
]


def check_paired(
    A, B, names=("A", "B"), *, same_width=False, paired=True, one_dtype=True
):
    """Validate two embedding matrices and cast them to one float dtype.

    ``one_dtype=False`` leaves each in its own float dtype, for passes that
    convert every chunk to float64 anyway: a float32 side next to a float64
    one was copied whole to float64 first (200 MB for 100,000 x 256).
    """
    A = check_float_array(A, names[0])
    B = check_float_array(B, names[1])
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
    if not one_dtype:
        return A, B
    dtype = np.result_type(A.dtype, B.dtype)
    return A.astype(dtype, copy=False), B.astype(dtype, copy=False)


def _moment_rows(n_features):
    """Rows per chunk of the moment passes over both sides."""
    return chunk_rows(8 * max(1, n_features), "moments")


def _as_float64(blocks):
    return [np.asarray(block, dtype=np.float64) for block in blocks]


def _moments(A, B, **request):
    """The centred float64 moments of row-paired A and B, in one pass.

    Rows are shifted by a pilot mean before their products when they sit far
    from the origin (as e5 embeddings do), so centring afterwards does not
    cancel digits; see :class:`skembed._stats.CrossMoments`. Float32 chunks
    are multiplied in float64: the metrics compare a cross block with Gram
    blocks, and float32 products round them differently, so a rotated copy
    came out 1e-4 rad from its original and CKA slightly above 1 (the
    aligners' fits do not compare such quantities).
    """
    stats = CrossMoments(2, cross="all", sum_of_squares=True, **request)
    # Chunk rows are budgeted at 8 bytes a value already.
    stats.update(
        [A, B],
        chunk_size=_moment_rows(A.shape[1] + B.shape[1]),
        prepare=_as_float64,
    )
    for k, name in enumerate(("A", "B")):
        if not stats.centered_sum_of_squares(k, scaled=True) > 0:
            raise ValueError(
                f"{name} has zero variance (all rows are identical); the "
                "similarity of a constant representation is undefined."
            )
    return stats


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
    unrelated representations when the rows far outnumber the features.
    With few rows next to the widths it is biased upwards, towards 1 (see
    the examples), and says little; ``debiased=True`` removes the bias.
    Widths may differ.

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
        The linear CKA, in [0, 1]. The debiased value falls below 0 for
        unrelated data, slightly with many rows, but with a handful of rows
        it can reach -1 (its variance grows as the row count falls).

    See Also
    --------
    procrustes_distance : A metric that is invariant to the same maps.
    cca_similarity : With reg=0, invariant to all invertible linear maps.

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
    >>> round(abs(linear_cka(A, rng.normal(size=(500, 8)), debiased=True)), 2)
    0.0

    Unrelated 384-d samples of 100 rows look similar unless debiased:

    >>> A, B = rng.normal(size=(100, 384)), rng.normal(size=(100, 384))
    >>> bool(linear_cka(A, B) > 0.7), bool(abs(linear_cka(A, B, debiased=True)) < 0.1)
    (True, True)
    """
    A, B = check_paired(A, B, one_dtype=False)
    n = A.shape[0]
    if debiased and n < 4:
        raise ValueError(
            f"debiased=True needs at least 4 rows, got {n}; use debiased=False."
        )
    m = _moments(A, B, gram=True, row_moments=debiased)
    # CKA is invariant to a scale of either side: it reads the moments in the
    # units that keep them representable whatever the input's magnitude.
    hsic_ab = float(np.sum(m.centered_cross(0, 1, scaled=True) ** 2))
    hsic_aa = float(np.sum(m.centered_gram(0, scaled=True) ** 2))
    hsic_bb = float(np.sum(m.centered_gram(1, scaled=True) ** 2))
    if debiased:
        sa = m.centered_sum_of_squares(0, scaled=True)
        sb = m.centered_sum_of_squares(1, scaled=True)

        def fourth(i, j):
            return m.centered_row_products(i, j, scaled=True)

        hsic_ab = _debiased_hsic(hsic_ab, fourth(0, 1), sa, sb, n)
        hsic_aa = _debiased_hsic(hsic_aa, fourth(0, 0), sa, sa, n)
        hsic_bb = _debiased_hsic(hsic_bb, fourth(1, 1), sb, sb, n)
        if not (hsic_aa > 0 and hsic_bb > 0):
            raise ValueError(
                "The debiased self-similarity of A or B is not positive, which "
                f"happens with very few rows (n = {n}) or with almost all rows "
                "equal; use debiased=False."
            )
    # Rounding can leave an identical pair a few ulps above 1.
    return float(min(1.0, hsic_ab / math.sqrt(hsic_aa * hsic_bb)))


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
    0.79
    """
    A, B = check_paired(A, B, one_dtype=False)
    m = _moments(A, B)
    # Invariant to a scale of either side: read in representable units.
    cross = m.centered_cross(0, 1, scaled=True)
    nuclear = float(np.linalg.svd(cross, compute_uv=False).sum())
    squares = m.centered_sum_of_squares(0, scaled=True) * m.centered_sum_of_squares(
        1, scaled=True
    )
    cosine = nuclear / math.sqrt(squares)
    return float(math.acos(min(1.0, max(0.0, cosine))))


def _principal_axes(cov, variance):
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
        "reg": [Interval(Real, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def cca_similarity(A, B, *, n_components=None, svcca_variance=None, reg=0.0):
    """Mean canonical correlation between two row-paired representations.

    Canonical correlation analysis finds the pairs of directions (one per side)
    whose projections are most correlated. With ``reg=0`` and no
    ``svcca_variance``, the mean of the leading canonical correlations is
    invariant to every invertible linear map of either side, so it asks
    whether B is *some* linear transform of A, not whether it is a rotation
    of it. The ridge of ``reg > 0`` (a multiple of the identity) and SVCCA's
    principal directions keep only the invariance to rotations, isotropic
    scaling and translation; an anisotropic rescaling of one side changes
    them.

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
    reg : float, default=0.0
        Ridge regularisation of each covariance relative to its mean
        eigenvalue, exactly as in :class:`skembed.CCAAligner`. The default,
        0, is exact CCA; it needs both covariances to be of full rank
        (otherwise use ``svcca_variance`` or ``reg > 0``), judged at the
        precision of the input: float32 rows of a nearly rank-deficient model
        can be refused where their float64 copy is not, since directions of
        variance at float32's rounding level may be rounding alone.
        Regularised correlations shrink as ``reg`` grows.

    Returns
    -------
    similarity : float
        Mean of the leading canonical correlations, in [0, 1].

    See Also
    --------
    linear_cka : Sensitive to anisotropic rescaling, unlike CCA with reg=0.
    skembed.CCAAligner : Fit the canonical directions themselves.

    Notes
    -----
    With the covariance blocks :math:`\\Sigma_{aa}, \\Sigma_{bb}, \\Sigma_{ab}`
    (accumulated over row chunks in float64) the canonical correlations are
    the singular values of

    .. math::

        (\\Sigma_{aa} + \\epsilon_a I)^{-1/2} \\, \\Sigma_{ab} \\,
        (\\Sigma_{bb} + \\epsilon_b I)^{-1/2},

    with :math:`\\epsilon = \\mathrm{reg} \\operatorname{tr}(\\Sigma)/d`,
    computed by the same solver as :class:`skembed.CCAAligner` (so
    ``cca_similarity(A, B, reg=r)`` is the mean of
    ``CCAAligner(reg=r).fit([A, B]).canonical_correlations_``). SVCCA first
    restricts each covariance to its kept principal directions. With few
    rows (``n_samples`` not well above ``n_features_a + n_features_b``),
    sample canonical correlations are biased towards 1, with or without
    ``reg`` and SVCCA, and so is plain :func:`linear_cka`: unrelated data
    can score near 1 (see the examples). There, compare against a control
    (the same measure on rows paired at random) or use
    ``linear_cka(A, B, debiased=True)``, which stays near 0 for unrelated
    data.

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
    >>> round(cca_similarity(A, rng.normal(size=(1000, 5))), 2)
    0.06
    >>> round(cca_similarity(A, A @ M, svcca_variance=0.99), 3)
    1.0

    Unrelated 384-d samples of 100 rows, where the bias dominates:

    >>> A, B = rng.normal(size=(100, 384)), rng.normal(size=(100, 384))
    >>> bool(cca_similarity(A, B, reg=0.1) > 0.9)
    True
    """
    A, B = check_paired(A, B, one_dtype=False)
    n = A.shape[0]
    if n < 2:
        raise ValueError(f"cca_similarity needs at least 2 rows, got {n}.")
    m = _moments(A, B, gram=True)
    # Correlations are invariant to a scale of either side.
    covariances = [m.centered_gram(k, scaled=True) / (n - 1) for k in range(2)]
    cross = m.centered_cross(0, 1, scaled=True) / (n - 1)
    if svcca_variance is not None:
        # Restrict each side to its kept principal directions.
        axes = [_principal_axes(c, svcca_variance)[1] for c in covariances]
        covariances = [a.T @ c @ a for a, c in zip(axes, covariances, strict=True)]
        cross = axes[0].T @ cross @ axes[1]
    # Centred n rows span at most n - 1 directions: beyond them the
    # correlations are zeros of the data, not of the relation (with reg > 0
    # they would be averaged in), as CCAAligner stops there too.
    available = min(min(c.shape[0] for c in covariances), n - 1)
    if n_components is None:
        n_components = available
    elif n_components > available:
        kept = " kept by svcca_variance" if svcca_variance is not None else ""
        raise ValueError(
            f"n_components={n_components} exceeds the {available} canonical "
            f"pairs available (the smaller number of directions{kept}, and at "
            f"most n_samples - 1 = {n - 1}); use n_components <= {available}."
        )
    _, correlations, _, _ = canonical_correlations(
        covariances, cross, reg, view_names=("A", "B"), dtype=A.dtype, parameter="reg"
    )
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
    >>> round(float(paired_cosine(A, B).mean()), 6)
    0.0
    """
    A, B = check_paired(A, B, same_width=True, one_dtype=False)
    return partner_cosines(A, B)


def partner_cosines(A, B, partners=None):
    """:func:`paired_cosine` of checked inputs; with ``partners``, row i of A
    is paired with row ``partners[i]`` of B, gathered a chunk at a time
    rather than as a reordered copy of B."""
    out = np.empty(A.shape[0])
    rows = _moment_rows(2 * A.shape[1])
    for start in range(0, A.shape[0], rows):
        chunk = slice(start, start + rows)
        # Unit rows first: the dot products of raw rows may leave even
        # float64 (entries near 1e200 or 1e-200), their cosines never do.
        a = unit_rows(A[chunk].astype(np.float64))
        b = B[chunk] if partners is None else B[partners[chunk]]
        b = unit_rows(b.astype(np.float64))
        out[chunk] = np.einsum("ij,ij->i", a, b)
    # Rounding leaves identical rows a few ulps above 1 (then arccos is NaN).
    return np.clip(out, -1.0, 1.0, out=out)
