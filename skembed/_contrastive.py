"""Contrastive (InfoNCE) alignment of embedding views.

Closed-form aligners fit second moments: they find the linear maps whose
outputs agree best in the least-squares or correlation sense. Retrieval asks
something else: that each item's mapped vector be *closer to its partner than
to every other item*. The symmetric InfoNCE loss of CLIP (Radford et al.,
2021) optimises exactly that ranking objective, with the other rows of a
minibatch as negatives. :class:`ContrastiveAligner` trains one small
projection head per view with that loss, starting from the closed-form (CCA or
Procrustes) solution so that training only has to improve on it.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from itertools import combinations
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if

from skembed._affine import AFFINE_STATE, AffineMapMixin
from skembed._base import VIEW_OPTIONAL, VIEW_STATE, BaseAligner, state_kept_on_error
from skembed._neighbors import alignment_score
from skembed._stats import centred_rows, chunk_rows
from skembed._views import check_training_views, check_y_is_not_a_view
from skembed._warnings import warn

__all__ = ["ContrastiveAligner"]

# Early stopping needs enough held-out rows for top-1 retrieval to mean
# something (chance level 1 / n_rows); with fewer, the training loss decides.
_MIN_VALIDATION_ROWS = 10

# Held-out retrieval is scored within blocks of at most this many rows, so that
# its cost per epoch grows linearly with the number of held-out rows.
_VALIDATION_BLOCK = 1024

# Ridge of the CCA start, relative to each view's mean variance. Weighted by
# the canonical correlations, CCA retrieves best with a strong ridge (chosen on
# a validation split of real embeddings, see benchmarks/bench_learned.py).
_CCA_INIT_REG = 0.1

_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPSILON = 1e-8


# ---------------------------------------------------------------------------
# The loss and its gradient
# ---------------------------------------------------------------------------
def unit_rows_with_norms(Z):
    """Rows of Z scaled to unit length, and the norms (zero rows stay zero)."""
    norms = np.sqrt(np.einsum("ij,ij->i", Z, Z))
    norms = np.maximum(norms, np.finfo(Z.dtype).tiny)[:, None]
    return Z / norms, norms


def unit_rows_backward(U, norms, dU):
    """Gradient through u = z / ||z||: (du - u <du, u>) / ||z||."""
    return (dU - U * np.einsum("ij,ij->i", dU, U)[:, None]) / norms


def _info_nce_value(params, blocks, temperature):
    """The value of :func:`_contrastive_loss` alone, without its gradient.

    A forward pass and the log-sum-exps: about a third of the cost of the
    loss with its gradient, for scoring weights rather than training them.
    """
    units = [
        unit_rows_with_norms(head_forward(p, X)[0])[0]
        for p, X in zip(params, blocks, strict=True)
    ]
    pairs = list(combinations(range(len(blocks)), 2))
    loss = 0.0
    for a, b in pairs:
        loss += _info_nce_terms(units[a], units[b], temperature)[0] / len(pairs)
    return loss


def _info_nce_terms(U, V, temperature):
    """The symmetric InfoNCE of unit rows U and V, and its softmax terms.

    Returns the loss and the exponentials of the row and column softmaxes of
    S = U V^T / t with their sums, which the gradient reuses.
    """
    n = U.shape[0]
    S = U @ V.T
    S /= temperature
    diagonal = np.diagonal(S).sum()
    row_max = S.max(axis=1, keepdims=True)
    rows = np.exp(S - row_max)
    row_sums = rows.sum(axis=1, keepdims=True)
    col_max = S.max(axis=0, keepdims=True)
    cols = np.exp(S - col_max)
    col_sums = cols.sum(axis=0, keepdims=True)
    loss = (np.sum(np.log(row_sums) + row_max) + np.sum(np.log(col_sums) + col_max)) / (
        2 * n
    ) - diagonal / n
    return float(loss), rows, row_sums, cols, col_sums


def _pair_info_nce(U, V, temperature):
    """Symmetric InfoNCE of row-paired unit vectors, with its gradient.

    Returns the loss and the gradients with respect to U and V. With
    S = U V^T / t, the loss is the mean of the cross-entropies of the row
    softmax and the column softmax of S against the diagonal, so
    dL/dS = (softmax_rows(S) + softmax_cols(S) - 2 I) / (2 n).
    """
    n = U.shape[0]
    loss, rows, row_sums, cols, col_sums = _info_nce_terms(U, V, temperature)
    rows /= row_sums
    cols /= col_sums
    grad_S = rows
    grad_S += cols
    grad_S[np.diag_indices(n)] -= 2.0
    grad_S /= 2 * n * temperature
    return loss, grad_S @ V, grad_S.T @ U


def head_forward(params, X):
    """Output of one head on (standardised) rows X; also the hidden activations.

    ``params`` is ``[P]`` for a linear head, ``[P, W1, b1, W2]`` for a head
    with a residual hidden layer: ``z = X P + relu(X W1 + b1) W2``.
    """
    Z = X @ params[0]
    if len(params) == 1:
        return Z, None
    H = X @ params[1]
    H += params[2]
    np.maximum(H, 0, out=H)
    Z += H @ params[3]
    return Z, H


def _hidden_mean(params, X):
    """Mean output of a head's hidden branch over the rows X (0 for a linear head).

    By row chunks: the activations of all rows at once would take
    n x hidden values.
    """
    if len(params) == 1:
        return 0.0
    step = chunk_rows(params[1].shape[1] * X.dtype.itemsize, "transform")
    total = np.zeros(params[1].shape[1])
    for start in range(0, X.shape[0], step):
        H = X[start : start + step] @ params[1]
        H += params[2]
        np.maximum(H, 0, out=H)
        total += H.sum(axis=0, dtype=np.float64)
    return (total / X.shape[0]) @ params[3]


def _centred_rms(params, X, centre):
    """RMS norm of a head's outputs over the rows X, less ``centre``.

    By row chunks: the outputs of all rows at once, and the hidden
    activations behind them, would take n x hidden values.
    """
    width = max(p.shape[-1] for p in params)
    step = chunk_rows(width * X.dtype.itemsize, "transform")
    squares = 0.0
    for start in range(0, X.shape[0], step):
        Z, _ = head_forward(params, X[start : start + step])
        Z = Z - centre
        squares += float(np.einsum("ij,ij->", Z, Z, dtype=np.float64))
    return np.sqrt(squares / X.shape[0])


def _head_backward(params, X, H, dZ):
    """Gradients of the head parameters given dL/dZ."""
    grads = [X.T @ dZ]
    if H is not None:
        dH = dZ @ params[3].T
        dH[H <= 0] = 0
        grads += [X.T @ dH, dH.sum(axis=0), H.T @ dZ]
    return grads


def _contrastive_loss(params, blocks, temperature):
    """Symmetric InfoNCE averaged over pairs of views, and its gradient.

    Parameters
    ----------
    params : list of list of ndarray
        Head parameters of every view (see ``head_forward``).
    blocks : list of ndarray of shape (n_rows, n_features_of_view)
        Row-paired inputs of the heads, one per view.
    temperature : float
        Softmax temperature.

    Returns
    -------
    loss : float
    grads : list of list of ndarray
        Same structure as ``params``.
    """
    outputs = [head_forward(p, X) for p, X in zip(params, blocks, strict=True)]
    units = [unit_rows_with_norms(Z) for Z, _ in outputs]
    grad_units = [np.zeros_like(U) for U, _ in units]
    pairs = list(combinations(range(len(blocks)), 2))
    loss = 0.0
    for a, b in pairs:
        pair_loss, dU, dV = _pair_info_nce(units[a][0], units[b][0], temperature)
        loss += pair_loss / len(pairs)
        grad_units[a] += dU / len(pairs)
        grad_units[b] += dV / len(pairs)
    grads = []
    for k, (p, X) in enumerate(zip(params, blocks, strict=True)):
        dZ = unit_rows_backward(units[k][0], units[k][1], grad_units[k])
        grads.append(_head_backward(p, X, outputs[k][1], dZ))
    return loss, grads


class Adam:
    """Adam (Kingma & Ba, 2015) updating a list of arrays in place."""

    def __init__(self, params, learning_rate):
        self.learning_rate = learning_rate
        self.first = [np.zeros_like(p) for p in params]
        self.second = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, params, grads):
        beta1, beta2 = _ADAM_BETAS
        self.t += 1
        rate = self.learning_rate * np.sqrt(1 - beta2**self.t) / (1 - beta1**self.t)
        for p, g, m, v in zip(params, grads, self.first, self.second, strict=True):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            p -= rate * m / (np.sqrt(v) + _ADAM_EPSILON)


def split_validation_rows(n_samples, rng, early_stopping, validation_fraction):
    """Training and held-out row indices (held-out is None without it)."""
    n_validation = int(validation_fraction * n_samples)
    if (
        not early_stopping
        or n_validation < _MIN_VALIDATION_ROWS
        or n_samples - n_validation < 2
    ):
        return np.arange(n_samples), None
    order = rng.permutation(n_samples)
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


def _orthonormal_columns(rng, n_rows, n_columns):
    Q, R = np.linalg.qr(rng.standard_normal((n_rows, n_columns)))
    # Sign fix so that the draw, not the QR implementation, decides Q.
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


class ContrastiveAligner(AffineMapMixin, BaseAligner):
    """Learn per-view projections with the symmetric InfoNCE (CLIP) loss.

    Every view gets a projection head into a shared space of width
    ``n_components``: a linear map by default, or a linear map plus a residual
    hidden ReLU layer. The heads are trained together on paired rows so that
    each row's mapped vector is closer (by cosine) to its partner in the other
    views than to the other rows of its minibatch. Training starts from a
    closed-form alignment (CCA by default) and keeps the held-out best, so the
    result is at least as good as the starting point on the held-out rows
    (without held-out rows: on the training loss).

    Parameters
    ----------
    n_components : int or None, default=None
        Width m of the shared space, at most the width of the narrowest view.
        None uses the width of the narrowest view; with ``init="cca"``, at
        most the number of training rows minus one (as PCA's None is bounded
        by the rows), since CCA has no more directions.
    views : None, int, list or dict, default=None
        How X splits into views; see :class:`ProcrustesAligner`.
    hidden : int or None, default=None
        Width of the residual hidden ReLU layer of every head. None gives
        linear heads, which keep the whole aligner surface (``translate``,
        ``inverse_transform_view``); a hidden layer makes the maps non-linear
        and those two methods unavailable.
    temperature : float, default=0.05
        Softmax temperature of the InfoNCE loss: smaller values weigh the
        hardest negatives more.
    max_iter : int, default=200
        Maximum number of epochs (passes over the training rows).
    batch_size : int, default=512
        Rows per minibatch, i.e. one positive and ``batch_size - 1`` negatives
        per row. Capped at the number of training rows; the rows of an epoch
        are split into ``n_train // batch_size`` batches of nearly equal size.
    learning_rate : float, default=1e-3
        Adam step size. Inputs are standardised and the heads start with unit
        column norm, so the step size does not depend on the scale of the
        embeddings.
    init : {"cca", "procrustes", "random"}, default="cca"
        Starting point of the linear part. ``"cca"``: the canonical
        projections of :class:`CCAAligner` (ridge ``reg=0.1``), each
        component scaled by its canonical correlation so that components the
        views barely agree on start with little weight (on real sentence
        embeddings this start alone retrieves far better than whitened CCA).
        ``"procrustes"``: the generalised Procrustes rotations of the
        standardised views followed by the principal axes of their consensus;
        it assumes the views differ by a rotation. ``"random"``: random
        orthonormal columns.
    tol : float, default=1e-4
        Minimum improvement of the monitored quantity (held-out retrieval
        accuracy with early stopping, otherwise the training loss) for an
        epoch to count as progress.
    n_iter_no_change : int, default=10
        Training stops after this many epochs without progress.
    random_state : int, RandomState instance or None, default=None
        Seed of the validation split, of the minibatch order and of random
        initial weights. Pass an int for reproducible results.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows, stop when their top-1
        cross-view retrieval accuracy stops improving and keep the best
        weights. When the held-out part would have fewer than 10 rows, or
        with ``early_stopping=False``, the training loss on all rows decides
        instead, and the weights kept are those with the lowest training loss
        at the end of an epoch (the start included).
    validation_fraction : float, default=0.1
        Share of the rows held out for early stopping.
    verbose : int, default=0
        Print the loss (and held-out accuracy) of every epoch when positive.
    combine : {"concat", "mean", "similarity"}, default="concat"
        How ``transform`` combines the mapped views.

    Attributes
    ----------
    projections_ : list of ndarray of shape (n_features_of_view, n_components_)
        The linear part of each head, acting on centred raw rows.
    hidden_weights_ : list of ndarray of shape (n_features_of_view, hidden) or None
        Input weights of each head's hidden layer (None for linear heads).
    hidden_intercepts_ : list of ndarray of shape (hidden,) or None
        Biases of each head's hidden layer.
    hidden_projections_ : list of ndarray of shape (hidden, n_components_) or None
        Output weights of each head's hidden layer.
    hidden_offsets_ : list of ndarray of shape (n_components_,) or None
        Mean output of each head's hidden layer over the training rows,
        subtracted so that the mapped training rows have mean zero.
    means_ : list of ndarray of shape (n_features_of_view,)
        Mean of each view's training rows.
    loss_curve_ : list of float
        Mean training loss of every epoch.
    validation_scores_ : list of float or None
        Held-out top-1 retrieval accuracy after every epoch (None without
        early stopping). Each held-out row is ranked among the held-out rows
        of its block of at most 1,024, so that the cost per epoch grows
        linearly: with more held-out rows than that, this is higher than
        :meth:`score` on the same rows, which ranks among all of them.
    best_validation_score_ : float or None
        Best held-out accuracy (as ``validation_scores_``), initial maps
        included; its weights are kept.
    n_iter_ : int
        Number of epochs run.
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
    CCAAligner : The closed-form starting point.
    ProcrustesAligner : Orthogonal maps onto a reference view.
    RelativeProjector : Compare views through similarities to anchor items.

    Notes
    -----
    For a minibatch of B row-paired items, let :math:`u_i` and :math:`v_i`
    be the unit-length outputs of the heads of views a and b, and
    :math:`S_{ij} = u_i^\\top v_j / \\tau`. The loss is

    .. math::

        L = \\frac{1}{2B} \\sum_i \\Big( \\log \\sum_j e^{S_{ij}} - S_{ii} \\Big)
          + \\frac{1}{2B} \\sum_j \\Big( \\log \\sum_i e^{S_{ij}} - S_{jj} \\Big),

    averaged over all pairs of views when K > 2. Its gradient,
    :math:`\\partial L / \\partial S = (\\mathrm{softmax}_{\\text{rows}}(S)
    + \\mathrm{softmax}_{\\text{cols}}(S) - 2I) / (2B)`, is propagated
    analytically through the row normalisation and the heads, and the heads
    are updated by minibatch Adam.

    A linear head maps a row as :math:`z = (x - \\mu) P`; with ``hidden`` it
    is :math:`z = (x - \\mu) P + \\mathrm{relu}((x - \\mu) W_1 + b_1) W_2 - c`,
    with :math:`W_2 = 0` at the start so that training begins exactly at the
    closed-form maps. Before training each view is centred and divided by its
    root-mean-square row norm; after training each view's outputs are
    centred (``c``, ``hidden_offsets_``, is the hidden branch's mean on the
    training rows) and scaled to unit root-mean-square norm on the training
    rows (the loss only sees directions, so this fixes an otherwise
    arbitrary scale).

    How much the epochs add depends on the start. On 5,000 pairs of real
    sentence embeddings the weighted-CCA start already gives almost all of
    the held-out retrieval (early stopping then keeps it); the epochs matter
    when the start is weak (``init="procrustes"`` on views that are not
    rotations of each other, ``init="random"``) or the relation between the
    views is non-linear (``hidden``).

    Training runs in the input's float dtype. For float32 embeddings (the
    usual case) that halves the memory of the one copy of the training rows
    that ``fit`` keeps and the time of the products, and loses nothing that
    matters: the gradients are differences of softmax probabilities of
    cosines, which float32 resolves far below the minibatch noise. Float64
    input trains in float64, where the analytic gradients match finite
    differences to rounding. Fitted weights are stored in float64; outputs
    keep the input dtype.

    ``partial_fit`` is not offered: unlike the closed-form aligners, the
    contrastive maps are not a function of mergeable sums, and every epoch
    draws negatives from all rows; training on one chunk after another would
    forget the earlier chunks. Fit on all rows at once.

    Examples
    --------
    >>> import numpy as np
    >>> from skembed import ContrastiveAligner, ProcrustesAligner
    >>> rng = np.random.default_rng(0)
    >>> latent = rng.normal(size=(1000, 4))
    >>> A = latent @ rng.normal(size=(4, 8)) + 0.5 * rng.normal(size=(1000, 8))
    >>> B = np.tanh(latent @ rng.normal(size=(4, 6))) + 0.2 * rng.normal(size=(1000, 6))
    >>> train, held_out = [A[:800], B[:800]], [A[800:], B[800:]]
    >>> aligner = ContrastiveAligner(n_components=4, random_state=0).fit(train)
    >>> aligner.transform(held_out).shape
    (200, 8)
    >>> aligner.translate(A[800:], source=0, target=1).shape
    (200, 6)
    >>> procrustes = ProcrustesAligner().fit(train)
    >>> bool(aligner.score(held_out) > procrustes.score(held_out))
    True
    """

    _saved_state = (
        *VIEW_STATE,
        *AFFINE_STATE,
        "projections_",
        "hidden_weights_",
        "hidden_intercepts_",
        "hidden_projections_",
        "hidden_offsets_",
        "n_iter_",
        "loss_curve_",
    )
    _saved_optional = (*VIEW_OPTIONAL, "best_validation_score_", "validation_scores_")
    # Files written before hidden_offsets_ existed map as they were fitted:
    # the hidden branch uncentred.
    _saved_defaults = {
        "hidden_offsets_": lambda estimator: (
            None
            if estimator.hidden_weights_ is None
            else [np.zeros(p.shape[1]) for p in estimator.hidden_projections_]
        )
    }

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "hidden": [Interval(Integral, 1, None, closed="left"), None],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "init": [StrOptions({"cca", "procrustes", "random"})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        views=None,
        hidden=None,
        temperature=0.05,
        max_iter=200,
        batch_size=512,
        learning_rate=1e-3,
        init="cca",
        tol=1e-4,
        n_iter_no_change=10,
        random_state=None,
        early_stopping=True,
        validation_fraction=0.1,
        verbose=0,
        combine="concat",
    ):
        self.n_components = n_components
        self.views = views
        self.hidden = hidden
        self.temperature = temperature
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.init = init
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.verbose = verbose
        self.combine = combine

    _absent_capabilities = {
        "partial_fit": (
            "its maps are not a function of mergeable sums, and training on one "
            "chunk after another would forget the earlier chunks. Call fit on all "
            "rows."
        )
    }

    # -------------------------------------------------------------------- fit
    def _check_n_components(self, widths):
        narrowest = min(widths)
        if self.n_components is None:
            return narrowest
        if self.n_components > narrowest:
            raise ValueError(
                f"n_components={self.n_components} exceeds the width of the "
                f"narrowest view ({narrowest}); a linear head cannot produce more "
                f"independent components than its input has. Pass n_components <= "
                f"{narrowest}."
            )
        return self.n_components

    def _initial_projections(self, blocks, m, rng):
        """Linear starting maps of the standardised training rows."""
        widths = [block.shape[1] for block in blocks]
        if self.init == "random":
            return [_orthonormal_columns(rng, d, m) for d in widths]
        if self.init == "cca":
            from skembed._cca import CCAAligner

            cca = CCAAligner(n_components=m, reg=_CCA_INIT_REG).fit(blocks)
            # Whitening gives every canonical component unit weight, noise
            # included; weigh each by how well the views agree on it.
            return [P * cca.canonical_correlations_ for P in cca._projections]
        from skembed._procrustes import GeneralizedProcrustesAligner

        closed = GeneralizedProcrustesAligner().fit(blocks)
        consensus = sum(
            block @ P.astype(block.dtype)
            for block, P in zip(blocks, closed._projections, strict=True)
        )
        consensus -= consensus.mean(axis=0)
        # Principal axes of the consensus: its top-m right singular vectors.
        _, _, Vt = np.linalg.svd(consensus, full_matrices=False)
        axes = Vt[:m].T
        if axes.shape[1] < m:
            # Fewer training rows than components: the consensus spans fewer
            # axes; any orthonormal completion serves (drawn from rng, so
            # random_state fixes it), training gives the rest their meaning.
            extra = rng.standard_normal((axes.shape[0], m - axes.shape[1]))
            extra -= axes @ (axes.T @ extra)
            Q, R = np.linalg.qr(extra)
            axes = np.hstack([axes, Q * np.where(np.diag(R) < 0, -1.0, 1.0)])
        return [P @ axes for P in closed._projections]

    def _initial_params(self, blocks, m, rng):
        dtype = blocks[0].dtype
        params = []
        for P, block in zip(
            self._initial_projections(blocks, m, rng), blocks, strict=True
        ):
            norm = np.linalg.norm(P)
            # Unit column norm on average: the step size is then scale-free.
            P = P * (np.sqrt(m) / norm) if norm > 0 else P
            head = [P.astype(dtype)]
            if self.hidden is not None:
                head += [
                    rng.standard_normal((block.shape[1], self.hidden)).astype(dtype),
                    np.zeros(self.hidden, dtype=dtype),
                    np.zeros((self.hidden, m), dtype=dtype),
                ]
            params.append(head)
        return params

    def _validation_score(self, params, blocks, train):
        """Mean top-1 cross-view retrieval of held-out rows, by blocks.

        The held-out rows are mapped as :meth:`transform` will map them: a
        hidden branch's mean over the training rows is subtracted (see
        ``_set_maps``), which moves every cosine and so the ranking.
        """
        outputs = [
            head_forward(p, X)[0] - _hidden_mean(p, T)
            for p, X, T in zip(params, blocks, train, strict=True)
        ]
        n = outputs[0].shape[0]
        n_blocks = max(1, -(-n // _VALIDATION_BLOCK))
        total = 0.0
        for rows in np.array_split(np.arange(n), n_blocks):
            total += alignment_score([out[rows] for out in outputs]) * len(rows)
        return total / n

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the projection heads on row-paired views.

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
            The fitted aligner.
        """
        check_y_is_not_a_view(self, X, y)
        with state_kept_on_error(self):
            blocks = check_training_views(self, X)
            n_samples = blocks[0].shape[0]
            m = self._check_n_components(self.n_features_per_view_)
            rng = check_random_state(self.random_state)
            train_rows, validation_rows = split_validation_rows(
                n_samples, rng, self.early_stopping, self.validation_fraction
            )
            n_train = n_samples if train_rows is None else len(train_rows)
            if self.init == "cca" and m > n_train - 1:
                # CCA of n rows has at most n - 1 canonical directions.
                if self.n_components is None and n_train >= 2:
                    m = n_train - 1
                else:
                    held = n_samples - n_train
                    raise ValueError(
                        f"init='cca' gives at most n_train - 1 = {n_train - 1} "
                        f"components from the {n_train} training rows ({held} of the "
                        f"{n_samples} rows are held out for early stopping), but "
                        f"n_components={m}; lower n_components, or use "
                        "init='procrustes' or init='random'."
                    )

            dtype = blocks[0].dtype
            means, scales, train = [], [], []
            for block in blocks:
                rows = block[train_rows]
                mean = rows.mean(axis=0, dtype=np.float64)
                rows = rows - mean.astype(dtype)
                # Root-mean-square row norm of the centred view.
                scale = np.sqrt(
                    np.mean(np.einsum("ij,ij->i", rows, rows, dtype=np.float64))
                )
                scale = scale if scale > 0 else 1.0
                rows /= dtype.type(scale)
                means.append(mean)
                scales.append(scale)
                train.append(rows)
            validation = None
            if validation_rows is not None:
                validation = [
                    (block[validation_rows] - mean.astype(dtype)) / dtype.type(s)
                    for block, mean, s in zip(blocks, means, scales, strict=True)
                ]

            params = self._initial_params(train, m, rng)
            params = self._train(params, train, validation, rng)
            self._set_maps(params, train, means, scales)
            return self

    def _train(self, params, train, validation, rng):
        n_train = train[0].shape[0]
        batch_size = min(self.batch_size, n_train)
        n_batches = max(1, n_train // batch_size)
        flat = [p for head in params for p in head]
        optimizer = Adam(flat, self.learning_rate)

        self.loss_curve_ = []
        self.validation_scores_ = None if validation is None else []
        if validation is not None:
            best = self._validation_score(params, validation, train)
        else:
            best = np.inf
            # Without held-out rows, the weights kept are those with the
            # lowest loss on all training rows (fixed batches in row order)
            # at the end of an epoch, the start included: a diverging run
            # returns no worse a map than it started from.
            fixed_batches = np.array_split(np.arange(n_train), n_batches)

            def training_loss():
                total = 0.0
                for rows in fixed_batches:
                    blocks = [block[rows] for block in train]
                    total += _info_nce_value(params, blocks, self.temperature) * (
                        len(rows)
                    )
                return total / n_train

            best_training = training_loss()
        best_params = [[p.copy() for p in head] for head in params]
        self.best_validation_score_ = None if validation is None else best
        no_change = 0
        converged = False
        for epoch in range(1, self.max_iter + 1):
            epoch_loss = 0.0
            for rows in np.array_split(rng.permutation(n_train), n_batches):
                loss, grads = _contrastive_loss(
                    params, [block[rows] for block in train], self.temperature
                )
                optimizer.step(flat, [g for head in grads for g in head])
                epoch_loss += loss * len(rows)
            epoch_loss /= n_train
            self.loss_curve_.append(epoch_loss)
            message = f"Epoch {epoch}, loss = {epoch_loss:.6f}"
            if validation is not None:
                score = self._validation_score(params, validation, train)
                self.validation_scores_.append(score)
                message += f", validation top-1 = {score:.4f}"
                improved = score > best + self.tol
                if score > best:
                    best = score
                    best_params = [[p.copy() for p in head] for head in params]
            else:
                improved = epoch_loss < best - self.tol
                best = min(best, epoch_loss)
                score = training_loss()
                if score < best_training:
                    best_training = score
                    best_params = [[p.copy() for p in head] for head in params]
            if self.verbose:
                print(message)
            no_change = 0 if improved else no_change + 1
            if no_change >= self.n_iter_no_change:
                converged = True
                if self.verbose:
                    print(
                        f"No improvement by more than tol={self.tol} in "
                        f"{self.n_iter_no_change} epochs; stopping."
                    )
                break
        self.n_iter_ = epoch
        if not converged:
            warn(
                f"ContrastiveAligner stopped at max_iter={self.max_iter} epochs "
                "while still improving; increase max_iter.",
                ConvergenceWarning,
            )
        if validation is not None:
            self.best_validation_score_ = best
        return best_params

    def _set_maps(self, params, train, means, scales):
        """Store the heads in raw-input units, outputs at unit RMS norm."""
        projections, hidden_weights, hidden_intercepts, hidden_projections = (
            [],
            [],
            [],
            [],
        )
        hidden_offsets = []
        for head, block, s in zip(params, train, scales, strict=True):
            # The linear part maps the centred training rows to mean zero; a
            # ReLU branch does not, and its mean would tilt every cosine of
            # the shared space: it is subtracted (as hidden_offsets_).
            # The per-epoch validation score subtracts the same mean.
            centre = _hidden_mean(head, block)
            rms = _centred_rms(head, block, centre)
            rms = rms if rms > 0 else 1.0
            head = [np.asarray(p, dtype=np.float64) for p in head]
            projections.append(head[0] / (s * rms))
            if self.hidden is not None:
                hidden_weights.append(head[1] / s)
                hidden_intercepts.append(head[2])
                hidden_projections.append(head[3] / rms)
                hidden_offsets.append(centre / rms)
        self.means_ = means
        self.projections_ = projections
        self._projections = projections
        self._offset = np.zeros(projections[0].shape[1])
        if self.hidden is None:
            self.hidden_weights_ = None
            self.hidden_intercepts_ = None
            self.hidden_projections_ = None
            self.hidden_offsets_ = None
        else:
            self.hidden_weights_ = hidden_weights
            self.hidden_intercepts_ = hidden_intercepts
            self.hidden_projections_ = hidden_projections
            self.hidden_offsets_ = hidden_offsets

    # -------------------------------------------------------------- transform
    def _map(self, block, k, *, offset=None):
        """Apply view k's head to raw rows, in the input dtype."""
        out = super()._map(block, k, offset=offset)
        if self.hidden_weights_ is None:
            return out
        dtype = block.dtype
        mean = np.asarray(self.means_[k], dtype=np.float64)
        W1 = self.hidden_weights_[k].astype(dtype, copy=False)
        bias = self.hidden_intercepts_[k].astype(dtype)
        W2 = self.hidden_projections_[k].astype(dtype, copy=False)
        # The hidden activations of all rows at once would cost n x hidden
        # (1 GB for a million float32 rows at hidden=256): by row chunks.
        step = chunk_rows((block.shape[1] + W1.shape[1]) * dtype.itemsize, "transform")
        for start in range(0, block.shape[0], step):
            # Centred before the product, not x W1 - m W1: rows far from the
            # origin next to their spread cancelled in float32 (outputs off
            # by 1e-2 at a mean of 1e4 and a spread of 0.01).
            H = centred_rows(block[start : start + step], mean) @ W1
            H += bias
            np.maximum(H, 0, out=H)
            out[start : start + step] += H @ W2
        out -= self.hidden_offsets_[k].astype(dtype)
        return out

    def _chunk_mapper(self, dtype, *, offset):
        if self.hidden_weights_ is None:
            return AffineMapMixin._chunk_mapper(self, dtype, offset=offset)
        # A hidden layer makes the map non-linear: apply it chunk by chunk.
        return BaseAligner._chunk_mapper(self, dtype, offset=offset)

    def _linear_heads(self):
        """Whether the heads are linear, so that their maps can be inverted."""
        if hasattr(self, "hidden_weights_"):
            fitted = self.hidden_weights_
            width = None if fitted is None else fitted[0].shape[1]
        else:
            width = self.hidden
        if width is None:
            return True
        raise AttributeError(
            "inverse_transform_view and translate need invertible linear maps, "
            f"but this ContrastiveAligner has hidden={width}, whose maps are "
            "non-linear. Compare views in the shared space (transform_view of both "
            "sides), or fit with hidden=None."
        )

    @available_if(_linear_heads)
    def inverse_transform_view(self, Z, view):
        """Map shared-space rows back into one view's own space (linear heads only).

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_components_)
            Rows in the shared space.
        view : int or str
            The view whose space to return to.

        Returns
        -------
        X_view : ndarray of shape (n_samples, n_features_of_view)
            Least-squares preimage of the rows in the view's space.
        """
        return super().inverse_transform_view(Z, view)

    @available_if(_linear_heads)
    def translate(self, X_view, source, target):
        """Map one view's embeddings into another view's space (linear heads only).

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
        return super().translate(X_view, source, target)
