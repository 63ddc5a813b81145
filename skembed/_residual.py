"""A ridge map plus a correction of its residuals, onto a reference view.

Drift-Adapter (Vejendla, 2025) upgrades the embedding model of a vector index
without re-embedding it by mapping the new model's queries into the old
model's space with a small adapter fitted on a few thousand items embedded by
both. Its third and most flexible adapter is a residual MLP,
``y = A x + b + MLP(x)``: an affine map that carries most of the relation,
plus a small non-linear correction. :class:`ResidualMLPAligner` is that
adapter: it starts from the closed-form ridge map of :class:`RidgeAligner`
(the MLP's output layer starts at zero, so training begins exactly there) and
trains the MLP by minibatch Adam on what the ridge map leaves, keeping the
weights that predict held-out pairs best. :class:`KernelResidualAligner`
corrects the same ridge map without training: each row gets the residuals of
the fitting pairs near it, averaged by a kernel on their cosines.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skembed._base import VIEW_OPTIONAL, VIEW_STATE, BaseAligner, state_kept_on_error
from skembed._contrastive import (
    Adam,
    head_forward,
    split_validation_rows,
    unit_rows_backward,
    unit_rows_with_norms,
)
from skembed._linear import RidgeAligner, warn_constant_maps
from skembed._stats import centred_rows, chunk_rows, search_chunk_rows
from skembed._views import (
    check_training_views,
    check_view_block,
    check_y_is_not_a_view,
    is_dask_collection,
    resolve_view,
)
from skembed._warnings import warn

__all__ = ["KernelResidualAligner", "ResidualMLPAligner"]


def _regression_loss(Z, Y, loss):
    """Mean loss of predictions Z against targets Y, and dL/dZ.

    ``"mse"``: mean squared error per entry. ``"cosine"``: mean of
    ``1 - cos(z, y)``; Y must then hold unit rows.
    """
    n = Z.shape[0]
    if loss == "mse":
        residual = Z - Y
        value = np.einsum("ij,ij->", residual, residual, dtype=np.float64) / Z.size
        residual *= 2.0 / Z.size
        return float(value), residual
    U, norms = unit_rows_with_norms(Z)
    cosines = np.einsum("ij,ij->i", U, Y, dtype=np.float64)
    grad = unit_rows_backward(U, norms, Y * Y.dtype.type(-1.0 / n))
    return float(1.0 - cosines.mean()), grad


def _residual_backward(params, X, H, dZ):
    """Gradients of the hidden layer's W1, b1 and W2 given dL/dZ."""
    dH = dZ @ params[3].T
    dH[H <= 0] = 0
    return [X.T @ dH, dH.sum(axis=0), H.T @ dZ]


def _root_mean_square_norm(Z):
    value = np.sqrt(np.mean(np.einsum("ij,ij->i", Z, Z, dtype=np.float64)))
    return value if value > 0 else 1.0


def _constant(standardised, mean, scale):
    """Whether rows (standardised: centred, at unit RMS by ``scale``) were constant.

    Rows all equal are exactly zero once centred, or keep the rounding of
    their mean (0.3 in every row: a mean 1e-17 off), a spread of a few
    roundings of their magnitude (the test of ``_constant_views``).
    """
    if not np.any(standardised):
        return True
    eps = float(np.finfo(standardised.dtype).eps)
    spread = scale**2 * standardised.shape[1]
    return bool(spread <= (8 * eps) ** 2 * (spread + float(mean @ mean)))


def _head_chunks(params, X):
    """Outputs of a head on the rows of X, by row chunks: (rows, Z) pairs.

    The hidden activations of every training row at once take n x hidden
    values (1 GB at a million float32 rows and hidden=256, twice that once
    the weights are float64), where an epoch needs only a batch's.
    """
    hidden = params[1].shape[1] if len(params) > 1 else 0
    step = chunk_rows(
        (X.shape[1] + hidden + params[0].shape[1]) * 8, "summary", minimum=1
    )
    for start in range(0, X.shape[0], step):
        rows = slice(start, start + step)
        yield rows, head_forward(params, X[rows])[0]


def _head_loss(params, X, Y, loss):
    """The value of :func:`_regression_loss` of the head on X, by row chunks."""
    total = 0.0
    for rows, Z in _head_chunks(params, X):
        if loss == "mse":
            Z -= Y[rows]
            total += float(np.einsum("ij,ij->", Z, Z, dtype=np.float64))
        else:
            U, _ = unit_rows_with_norms(Z)
            total += float(np.einsum("ij,ij->i", U, Y[rows], dtype=np.float64).sum())
    if loss == "mse":
        return total / Y.size
    return 1.0 - total / Y.shape[0]


def _head_root_mean_square_norm(params, X):
    """:func:`_root_mean_square_norm` of the head's outputs on X, by chunks."""
    total = 0.0
    for _, Z in _head_chunks(params, X):
        total += float(np.einsum("ij,ij->", Z, Z, dtype=np.float64))
    value = np.sqrt(total / X.shape[0])
    return value if value > 0 else 1.0


class _ReferenceMapAligner(BaseAligner):
    """Maps onto a reference view: an affine part plus a non-linear term.

    Subclasses fit ``means_``, ``coefs_`` (the affine part, the identity for
    the reference) and ``reference_``, and give the non-linear term of view
    k's map by ``_correction(k, dtype)``: a function of a chunk's centred
    rows adding it to their affine image, and the floats it needs per row.
    """

    # What every such map keeps and accepts; subclasses add their own.
    _saved_state = (*VIEW_STATE, "means_", "reference_", "coefs_")
    _saved_optional = VIEW_OPTIONAL

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "reference": [Integral, str],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "output_frame": [StrOptions({"centered", "reference"})],
    }

    @property
    def n_components_(self):
        """Width of the shared space: the reference view's width."""
        check_is_fitted(self, "means_")
        return self.n_features_per_view_[self.reference_]

    def _map(self, block, k, *, offset=None):
        """f_k of raw rows, in the input dtype, in row chunks."""
        if offset is None:
            offset = self._reference_frame
        dtype = block.dtype
        mean = self.means_[k]
        shift = self.means_[self.reference_] if offset else None
        if k == self.reference_:
            if shift is not None:
                return np.array(block, dtype=dtype, copy=True)
            return centred_rows(block, mean)
        A = self.coefs_[k].astype(dtype, copy=False)
        correct, width = self._correction(k, dtype)
        out = np.empty((block.shape[0], A.shape[1]), dtype=dtype)
        step = chunk_rows(
            (2 * block.shape[1] + A.shape[1] + width) * dtype.itemsize, "transform"
        )
        # The kernel's rows x pairs score block is bounded like a neighbour
        # search's (and by scikit-learn's working_memory): at the minimum
        # chunk of 256 rows, a million pairs took 1 GB per thread.
        step = min(step, search_chunk_rows(width, dtype)) if width else step
        for start in range(0, block.shape[0], step):
            rows = slice(start, start + step)
            target = out[rows]
            # Centred before the product, not x A - m A: rows far from the
            # origin next to their spread would cancel in the input dtype
            # (float32 outputs off by 8% at a mean of 1e4 and a spread of 0.01).
            centred = centred_rows(block[rows], mean)
            np.matmul(centred, A, out=target)
            if shift is not None:
                target += shift.astype(dtype)
            correct(centred, target)
        return out

    def translate(self, X_view, source, target):
        """Map one view's embeddings into the reference view's raw space.

        For example, queries embedded by a new model (``source``) are
        translated into the space of an index built with the old model, the
        reference. The maps are non-linear and run only into the reference:
        ``target`` must be the reference view (or ``source`` itself).

        Parameters
        ----------
        X_view : array-like of shape (n_samples, n_features_of_source)
            Embeddings from the source model.
        source, target : int or str
            Index or name of the source view and of the target view (the
            reference).

        Returns
        -------
        X_target : ndarray of shape (n_samples, n_features_of_target)
            The rows in the target view's raw frame, its mean included. A
            lazy Dask array for a Dask array or DataFrame ``X_view``.
        """
        check_is_fitted(self, "means_")
        k = resolve_view(self, source, parameter="source")
        t = resolve_view(self, target, parameter="target")
        if t not in (k, self.reference_):
            name = type(self).__name__
            raise ValueError(
                f"{name} translates only into its reference view "
                f"{self.view_names_[self.reference_]!r}, got "
                f"target={target!r}: its maps are non-linear and have no "
                f"inverse. Fit another {name} with reference={target!r} to "
                "translate into that view."
            )
        if is_dask_collection(X_view):
            return self._translated_lazily(X_view, k, t)
        block = check_view_block(self, X_view, k)
        if t == k:
            return np.array(block, copy=True)
        return self._map(block, k, offset=True)


class ResidualMLPAligner(_ReferenceMapAligner):
    """Map every view onto a reference view by ridge plus a residual MLP.

    For each non-reference view k, learns the map

    .. math::

        f_k(x) = (x - \\mu_k) A_k + \\mathrm{relu}((x - \\mu_k) W_1 + b_1) W_2
        + \\mu_r

    that predicts the reference view's embedding of an item from view k's
    embedding of it: the affine part of :class:`RidgeAligner` plus a hidden
    ReLU layer that corrects what a linear map cannot express. This is the
    residual-MLP adapter of Drift-Adapter: fitted on pairs of items embedded
    by a new model (view k) and an old one (the reference), it translates new
    queries into the space of an index built with the old model. Training
    starts at the ridge solution and keeps the weights that predict held-out
    pairs best, so on those pairs it does at least as well as the ridge map.

    Read more in the :ref:`User Guide <migration>`.

    Parameters
    ----------
    hidden : int, default=256
        Width of the hidden ReLU layer of every map.
    views : None, int, list or dict, default=None
        How X splits into views; see :class:`ProcrustesAligner`.
    reference : int or str, default=0
        The view whose space is the shared space (index or view name): the
        old model's, when migrating an index.
    alpha : float, default=1.0
        Ridge penalty of the starting affine map, as in :class:`RidgeAligner`.
    loss : {"mse", "cosine"}, default="mse"
        What training minimises, on the standardised centred reference rows:
        ``"mse"`` the mean squared error of the prediction, ``"cosine"`` the
        mean of ``1 - cos(prediction, target)``, which ignores the length of
        the prediction (cosine search does too); the outputs are then scaled
        to the reference rows' root-mean-square norm.
    max_iter : int, default=200
        Maximum number of epochs (passes over the training rows).
    batch_size : int, default=256
        Rows per minibatch, capped at the number of training rows.
    learning_rate : float, default=1e-3
        Adam step size of the hidden layer. Inputs and targets are
        standardised, so the step size does not depend on the scale of the
        embeddings.
    tol : float, default=1e-4
        Minimum decrease of the monitored loss (held-out with early stopping,
        otherwise training) for an epoch to count as progress. The losses are
        relative to the reference rows' variance: ``"mse"`` starts near the
        share of it that ridge leaves unexplained.
    n_iter_no_change : int, default=10
        Training of a map stops after this many epochs without progress.
    random_state : int, RandomState instance or None, default=None
        Seed of the validation split, of the minibatch order and of the
        hidden layer's initial weights. Pass an int for reproducible results.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the pairs, stop when their loss
        stops decreasing and keep the best weights. When the held-out part
        would have fewer than 10 rows, or with ``early_stopping=False``, the
        training loss decides instead, on all rows: training stops when it
        stops decreasing, and the weights with the lowest training loss at
        the end of an epoch (the ridge start included) are kept.
    validation_fraction : float, default=0.1
        Share of the pairs held out for early stopping.
    verbose : int, default=0
        Print the losses of every epoch when positive.
    combine : {"concat", "mean", "similarity"}, default="concat"
        How ``transform`` combines the mapped views.
    output_frame : {"centered", "reference"}, default="centered"
        Frame of the rows ``transform`` and ``transform_view`` return: the
        reference space centred on the reference's training mean, or its raw
        frame (mean added back, what ``translate`` returns); see
        :class:`RidgeAligner`.

    Attributes
    ----------
    reference_ : int
        Index of the reference view.
    coefs_ : list of ndarray of shape (n_features_of_view, n_features_of_reference)
        The affine part :math:`A_k` of each map (the identity for the
        reference).
    hidden_weights_ : list of ndarray of shape (n_features_of_view, hidden) or None
        :math:`W_1` of each map (None for the reference).
    hidden_intercepts_ : list of ndarray of shape (hidden,) or None
        :math:`b_1` of each map (None for the reference).
    hidden_projections_ : list of ndarray of shape (hidden, n_features_of_reference)
        :math:`W_2` of each map (None for the reference).
    means_ : list of ndarray of shape (n_features_of_view,)
        Mean of each view's training rows.
    loss_curves_ : list of list of float or None
        Mean training loss of every epoch, per view (None for the reference).
    validation_losses_ : list of list of float or None
        Held-out loss, the ridge start first and then after every epoch, per
        view (None for the reference and without early stopping).
    n_iter_ : int
        The largest number of epochs any map was trained for.
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
    RidgeAligner : The affine start, in closed form, with ``partial_fit``.
    ProcrustesAligner : Orthogonal maps onto a reference view.
    ContrastiveAligner : Heads into a new shared space, trained to rank pairs.

    Notes
    -----
    Before training, view k's training rows are centred and divided by the
    root-mean-square of their entries :math:`s_k`, and so are the
    reference's (:math:`s_r`); in those units the map is
    :math:`z = x P + \\mathrm{relu}(x W_1 + b_1) W_2` with P the ridge map
    (penalty :math:`\\alpha / s_k^2`, the same map as ``RidgeAligner(alpha)``
    fitted on the training part), :math:`W_1` drawn from a normal
    distribution of variance :math:`2 / d_k` (He initialisation),
    :math:`b_1 = 0` and :math:`W_2 = 0`. P stays fixed: it is already the
    best affine map of the training rows, and the hidden layer
    (:math:`W_1, b_1, W_2`) is trained by minibatch Adam with analytic
    gradients on what it leaves. The weights are stored in raw units
    (:math:`A_k = P s_r / s_k`, :math:`W_1 / s_k`, :math:`W_2 s_r`). The
    maps of several non-reference views are trained one after the other,
    from one random stream: a view's map depends on the views before it.

    A residual MLP is a new estimator rather than an option of
    :class:`RidgeAligner`: its maps are not a function of mergeable sums (no
    ``partial_fit``) and are not invertible (no ``inverse_transform_view``).
    ``translate`` exists in the one direction the maps define, into the
    reference view. Unlike :class:`ContrastiveAligner`, which trains heads of
    every view into a new space to rank pairs, it regresses onto the
    reference's own space, where an existing index lives.

    The adapter costs :math:`d_k (d_r + h) + h d_r` multiply-adds per row
    (h = ``hidden``), about twice a linear map for ``hidden`` equal to the
    views' width.

    References
    ----------
    .. [1] V. Vejendla, "Drift-Adapter: A practical approach to near
       zero-downtime embedding model upgrades in vector databases", EMNLP
       2025, arXiv:2509.23471.

    Examples
    --------
    >>> import numpy as np
    >>> from skembed import ResidualMLPAligner, RidgeAligner
    >>> rng = np.random.default_rng(0)
    >>> new = rng.normal(size=(3000, 8))
    >>> old = np.tanh(new @ rng.normal(size=(8, 6))) + 0.05 * rng.normal(size=(3000, 6))
    >>> train, test = slice(0, 2500), slice(2500, None)
    >>> mlp = ResidualMLPAligner(hidden=64, learning_rate=1e-2, random_state=0)
    >>> mlp = mlp.fit([old[train], new[train]])
    >>> ridge = RidgeAligner().fit([old[train], new[train]])
    >>> def error(aligner):
    ...     predicted = aligner.translate(new[test], 1, 0)
    ...     return float(np.mean((predicted - old[test]) ** 2))
    >>> bool(error(mlp) < 0.5 * error(ridge))
    True
    """

    _saved_state = (
        *_ReferenceMapAligner._saved_state,
        "hidden_weights_",
        "hidden_intercepts_",
        "hidden_projections_",
        "loss_curves_",
        "validation_losses_",
        "n_iter_",
    )

    _parameter_constraints: dict = {
        **_ReferenceMapAligner._parameter_constraints,
        "hidden": [Interval(Integral, 1, None, closed="left")],
        "loss": [StrOptions({"mse", "cosine"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "verbose": ["verbose"],
    }

    _absent_capabilities = {
        "partial_fit": (
            "its maps are trained by gradient descent on all pairs, not computed "
            "from mergeable sums. Call fit on all pairs, or use RidgeAligner, "
            "whose partial_fit gives the affine part of this map."
        ),
        "inverse_transform_view": (
            "its maps are non-linear and have no inverse. To map the other way, "
            "fit another ResidualMLPAligner with the other view as reference."
        ),
    }

    def __init__(
        self,
        hidden=256,
        *,
        views=None,
        reference=0,
        alpha=1.0,
        loss="mse",
        max_iter=200,
        batch_size=256,
        learning_rate=1e-3,
        tol=1e-4,
        n_iter_no_change=10,
        random_state=None,
        early_stopping=True,
        validation_fraction=0.1,
        verbose=0,
        combine="concat",
        output_frame="centered",
    ):
        self.hidden = hidden
        self.views = views
        self.reference = reference
        self.alpha = alpha
        self.loss = loss
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.verbose = verbose
        self.combine = combine
        self.output_frame = output_frame

    # -------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the map of every view onto the reference view.

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
            r = resolve_view(self, self.reference, parameter="reference")
            rng = check_random_state(self.random_state)
            train_rows, validation_rows = split_validation_rows(
                n_samples, rng, self.early_stopping, self.validation_fraction
            )
            dtype = blocks[0].dtype
            Y, mean_r, scale_r = self._standardised(blocks[r], train_rows)
            Y_validation = None
            if validation_rows is not None:
                Y_validation = self._scaled(blocks[r], validation_rows, mean_r, scale_r)
            # The cosine loss compares directions: its targets are unit rows.
            Y_loss, Y_validation_loss = Y, Y_validation
            if self.loss == "cosine":
                Y_loss = unit_rows_with_norms(Y)[0]
                if Y_validation is not None:
                    Y_validation_loss = unit_rows_with_norms(Y_validation)[0]

            self.reference_ = r
            self.means_, self.coefs_ = [], []
            self.hidden_weights_, self.hidden_intercepts_ = [], []
            self.hidden_projections_ = []
            self.loss_curves_, self.validation_losses_ = [], []
            self.n_iter_ = 0
            # Views constant over the training rows (the reference first):
            # their maps send every row to one point, which went without a
            # word, while RidgeAligner warns.
            constant = [r] if _constant(Y, mean_r, scale_r) else []
            for k, block in enumerate(blocks):
                if k == r:
                    self.means_.append(mean_r)
                    self.coefs_.append(np.eye(block.shape[1]))
                    for name in (
                        "hidden_weights_",
                        "hidden_intercepts_",
                        "hidden_projections_",
                        "loss_curves_",
                        "validation_losses_",
                    ):
                        getattr(self, name).append(None)
                    continue
                X_k, mean_k, scale_k = self._standardised(block, train_rows)
                if _constant(X_k, mean_k, scale_k):
                    constant.append(k)
                X_validation = None
                if validation_rows is not None:
                    X_validation = self._scaled(block, validation_rows, mean_k, scale_k)
                params = self._initial_params(X_k, Y, scale_k, rng, dtype)
                params, curve, held_out = self._train(
                    params, X_k, Y_loss, X_validation, Y_validation_loss, rng, k
                )
                params = [np.asarray(p, dtype=np.float64) for p in params]
                # Outputs of the cosine loss have an arbitrary length: give them
                # the reference rows' root-mean-square norm.
                rms = 1.0
                if self.loss == "cosine":
                    rms = _head_root_mean_square_norm(params, X_k)
                    rms /= _root_mean_square_norm(Y)
                self.means_.append(mean_k)
                self.coefs_.append(params[0] * (scale_r / (scale_k * rms)))
                self.hidden_weights_.append(params[1] / scale_k)
                self.hidden_intercepts_.append(params[2])
                self.hidden_projections_.append(params[3] * (scale_r / rms))
                self.loss_curves_.append(curve)
                self.validation_losses_.append(held_out)
            warn_constant_maps(self, sorted(constant), r)
            return self

    @staticmethod
    def _standardised(block, rows):
        """Training rows centred, entries at unit RMS; mean (float64), scale."""
        selected = block[rows]
        mean = selected.mean(axis=0, dtype=np.float64)
        selected = selected - mean.astype(block.dtype)
        scale = _root_mean_square_norm(selected) / np.sqrt(block.shape[1])
        selected /= block.dtype.type(scale)
        return selected, mean, scale

    @staticmethod
    def _scaled(block, rows, mean, scale):
        return (block[rows] - mean.astype(block.dtype)) / block.dtype.type(scale)

    def _initial_params(self, X, Y, scale, rng, dtype):
        """Ridge start of the affine part; a hidden layer whose output is zero."""
        X64 = X.astype(np.float64)
        gram = X64.T @ X64
        cross = X64.T @ Y.astype(np.float64)
        # alpha penalises the raw map; in standardised units it is alpha / s^2.
        gram[np.diag_indices_from(gram)] += self.alpha / scale**2
        if self.alpha == 0:
            start = np.linalg.lstsq(gram, cross, rcond=None)[0]
        else:
            start = np.linalg.solve(gram, cross)
        width, m = X.shape[1], Y.shape[1]
        # He initialisation: pre-activations of unit-RMS inputs have variance 2.
        return [
            start.astype(dtype),
            (rng.standard_normal((width, self.hidden)) * np.sqrt(2 / width)).astype(
                dtype
            ),
            np.zeros(self.hidden, dtype=dtype),
            np.zeros((self.hidden, m), dtype=dtype),
        ]

    def _train(self, params, X, Y, X_validation, Y_validation, rng, k):
        """Adam on minibatches; the best weights on held-out (or training) rows."""
        n_train = X.shape[0]
        batch_size = min(self.batch_size, n_train)
        n_batches = max(1, n_train // batch_size)
        # The affine part stays the ridge map, optimal among affine maps on
        # these rows: the hidden layer learns what it leaves.
        trained = params[1:]
        optimizer = Adam(trained, self.learning_rate)
        validation = X_validation is not None

        def held_out_loss():
            return _head_loss(params, X_validation, Y_validation, self.loss)

        def training_loss():
            return _head_loss(params, X, Y, self.loss)

        curve = []
        held_out = [held_out_loss()] if validation else None
        best = held_out[0] if validation else np.inf
        best_params = [p.copy() for p in params]
        # Without held-out rows, the weights kept are those with the lowest
        # loss on all training rows at the end of an epoch, the ridge start
        # included: a diverging run (a large learning rate) returns no worse
        # a map than it started from.
        best_training = None if validation else training_loss()
        no_change, converged = 0, False
        for epoch in range(1, self.max_iter + 1):
            total = 0.0
            for rows in np.array_split(rng.permutation(n_train), n_batches):
                Z, H = head_forward(params, X[rows])
                value, dZ = _regression_loss(Z, Y[rows], self.loss)
                optimizer.step(trained, _residual_backward(params, X[rows], H, dZ))
                total += value * len(rows)
            curve.append(total / n_train)
            message = f"View {k}, epoch {epoch}, loss = {curve[-1]:.6f}"
            if validation:
                score = held_out_loss()
                held_out.append(score)
                message += f", held-out loss = {score:.6f}"
                improved = score < best - self.tol
                if score < best:
                    best = score
                    best_params = [p.copy() for p in params]
            else:
                improved = curve[-1] < best - self.tol
                best = min(best, curve[-1])
                score = training_loss()
                if score < best_training:
                    best_training = score
                    best_params = [p.copy() for p in params]
            if self.verbose:
                print(message)
            no_change = 0 if improved else no_change + 1
            if no_change >= self.n_iter_no_change:
                converged = True
                break
        self.n_iter_ = max(self.n_iter_, epoch)
        if not converged:
            warn(
                f"ResidualMLPAligner stopped at max_iter={self.max_iter} epochs "
                "while still improving; increase max_iter.",
                ConvergenceWarning,
            )
        return best_params, curve, held_out

    # -------------------------------------------------------------- transform
    def _correction(self, k, dtype):
        """The hidden layer's term of view k's map, and its width per row."""
        W1 = self.hidden_weights_[k].astype(dtype, copy=False)
        W2 = self.hidden_projections_[k].astype(dtype, copy=False)
        hidden_bias = self.hidden_intercepts_[k].astype(dtype)

        def correct(centred, target):
            H = centred @ W1
            H += hidden_bias
            np.maximum(H, 0, out=H)
            target += H @ W2

        return correct, W1.shape[1]


class KernelResidualAligner(_ReferenceMapAligner):
    """Map every view onto a reference view by ridge plus a kernel correction.

    For each non-reference view k, the map

    .. math::

        f_k(x) = g_k(x) + \\lambda \\sum_i w_i(x) \\, (y_i - g_k(x_i)),
        \\qquad w_i(x) = \\frac{\\exp(\\cos(x - \\mu_k, x_i - \\mu_k) / \\tau)}
        {\\sum_j \\exp(\\cos(x - \\mu_k, x_j - \\mu_k) / \\tau)},

    where :math:`g_k` is the ridge map of :class:`RidgeAligner` fitted on the
    pairs :math:`(x_i, y_i)` (view k, reference), :math:`\\tau` is
    ``temperature`` and :math:`\\lambda` is ``shrinkage``. The second term is a
    kernel regression (Nadaraya-Watson) of what the ridge map gets wrong:
    each row is moved by the errors the ridge map makes on the fitting rows
    most like it. A linear map fitted on documents errs in the same way on
    every row of a region its pairs hardly cover (short queries, for example);
    the pairs nearest such a row, if any are query-like, say how.

    Fitted on pairs of items embedded by a new model (view k) and an old one
    (the reference), it translates new queries into the space of an index
    built with the old model (see the user guide's migration page). It keeps
    the fitting pairs: a row costs a product with every fitting row.

    Read more in the :ref:`User Guide <migration>`.

    Parameters
    ----------
    temperature : float, default=0.05
        Width :math:`\\tau` of the kernel, in units of cosine between centred
        rows: a fitting row whose cosine to x is lower than the best one by
        ``temperature`` weighs e times less. Smaller values average fewer
        neighbours.
    shrinkage : float, default=0.5
        Weight :math:`\\lambda` of the correction, from 0 (the ridge map
        alone) to 1 (the full kernel estimate of the residual). The residuals
        of the fitting rows are those of a map fitted on them, smaller than
        on new rows, but their kernel average is noisy. Both defaults were
        chosen on the word queries of the WordNet migration benchmark, the
        shrinkage among 0.3, 0.5, 0.7 and 1.0 and the temperature among
        0.02, 0.03, 0.05 and 0.1; check them on queries of your own.
    views : None, int, list or dict, default=None
        How X splits into views; see :class:`ProcrustesAligner`.
    reference : int or str, default=0
        The view whose space is the shared space (index or view name): the
        old model's, when migrating an index.
    alpha : float, default=1.0
        Ridge penalty of the affine map, as in :class:`RidgeAligner`.
    combine : {"concat", "mean", "similarity"}, default="concat"
        How ``transform`` combines the mapped views.
    output_frame : {"centered", "reference"}, default="centered"
        Frame of the rows ``transform`` and ``transform_view`` return: the
        reference space centred on the reference's training mean, or its raw
        frame (mean added back, what ``translate`` returns); see
        :class:`RidgeAligner`.

    Attributes
    ----------
    reference_ : int
        Index of the reference view.
    coefs_ : list of ndarray of shape (n_features_of_view, n_features_of_reference)
        The ridge map of each view (the identity for the reference).
    keys_ : list of ndarray of shape (n_corrections, n_features_of_view) or None
        The fitting rows of each view that make the correction (all, or
        ``correction_rows``), centred on the view's mean and at unit length,
        in the training dtype (None for the reference).
    residuals_ : list of ndarray of shape (n_corrections, n_features_of_reference)
        What the ridge map of each view leaves of the reference rows of those
        pairs, :math:`y_i - g_k(x_i)`, in the training dtype (None for the
        reference); entries below :math:`2^{-64}` times the largest are zero.
    means_ : list of ndarray of shape (n_features_of_view,)
        Mean of each view's training rows.
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
    RidgeAligner : The affine part alone, in closed form, with ``partial_fit``.
    ResidualMLPAligner : The same ridge map corrected by a trained hidden layer.

    Notes
    -----
    The kernel is the von Mises-Fisher kernel on the unit sphere of centred
    rows, every fitting row weighed (no cut-off at a number of neighbours),
    so the map is a smooth function of its input: a row translated alone
    and the same row in any batch agree up to rounding, and copies of a
    fitting row weigh alike. A row equal to the mean has no direction; it
    weighs every fitting row alike. The residuals are computed in float64
    and stored in the training dtype.

    The correction moves a row part of the way towards the reference rows of
    the fitting pairs nearest it. That is its use where those pairs are
    like the rows to translate and the systematic error is large (query-like
    pairs for queries), and its risk where the fitting rows' partners are in
    a searched index and the translated rows resemble them: searches then
    find those fitting rows more often than they should (the user guide
    measures both). ``fit(X, correction_rows=...)`` keeps the correction to
    the pairs given (query-like pairs, say) while the ridge map uses all.

    Unlike :class:`ResidualMLPAligner`, nothing is trained: the correction
    is read off the fitting pairs, so it needs no learning rate, epochs or
    random state, and reacts to the pairs a user adds (query-like pairs, for
    example) without retraining. The price is memory and time: the
    correcting pairs are kept (:math:`n (d_k + d_r)` numbers per
    non-reference view, n the number of correcting pairs, all or
    ``correction_rows``) and a row costs :math:`n (d_k + d_r)` multiply-adds
    beyond the ridge map. Maps are non-linear: there is no
    ``inverse_transform_view`` and ``translate`` runs into the reference
    view only; there is no ``partial_fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from skembed import KernelResidualAligner, RidgeAligner
    >>> rng = np.random.default_rng(0)
    >>> new = rng.normal(size=(3000, 4))
    >>> old = np.sin(2 * new) + 0.05 * rng.normal(size=(3000, 4))
    >>> train, test = slice(0, 2500), slice(2500, None)
    >>> kernel = KernelResidualAligner(temperature=0.02, shrinkage=1.0)
    >>> kernel = kernel.fit([old[train], new[train]])
    >>> ridge = RidgeAligner().fit([old[train], new[train]])
    >>> def error(aligner):
    ...     predicted = aligner.translate(new[test], 1, 0)
    ...     return float(np.mean((predicted - old[test]) ** 2))
    >>> bool(error(kernel) < 0.8 * error(ridge))
    True
    """

    _saved_state = (*_ReferenceMapAligner._saved_state, "keys_", "residuals_")

    _parameter_constraints: dict = {
        **_ReferenceMapAligner._parameter_constraints,
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "shrinkage": [Interval(Real, 0, 1, closed="both")],
    }

    _absent_capabilities = {
        "partial_fit": (
            "its correction keeps the fitting rows themselves, not mergeable "
            "sums. Call fit on all pairs, or use RidgeAligner, whose partial_fit "
            "gives the affine part of this map."
        ),
        "inverse_transform_view": (
            "its maps are non-linear and have no inverse. To map the other way, "
            "fit another KernelResidualAligner with the other view as reference."
        ),
    }

    def __init__(
        self,
        temperature=0.05,
        shrinkage=0.5,
        *,
        views=None,
        reference=0,
        alpha=1.0,
        combine="concat",
        output_frame="centered",
    ):
        self.temperature = temperature
        self.shrinkage = shrinkage
        self.views = views
        self.reference = reference
        self.alpha = alpha
        self.combine = combine
        self.output_frame = output_frame

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, correction_rows=None):
        """Fit the ridge map of every view onto the reference, keep the pairs.

        Parameters
        ----------
        X : array-like, DataFrame or list of arrays
            The views, split as the ``views`` parameter says: row ``i`` of
            every view embeds the same item.
        y : None
            Ignored; present for Pipeline compatibility.
        correction_rows : array-like of bool or int, default=None
            The pairs whose residuals make the correction: a boolean mask of
            the rows of X or their integer indices. The ridge map is fitted
            on every pair either way. None uses every pair. For example the
            query-like pairs of a migration, so that the correction never
            pulls a query towards a document of the index (see Notes).

        Returns
        -------
        self : object
            The fitted aligner.
        """
        check_y_is_not_a_view(self, X, y)
        with state_kept_on_error(self):
            blocks = check_training_views(self, X)
            kept = _check_correction_rows(correction_rows, blocks[0].shape[0])
            r = resolve_view(self, self.reference, parameter="reference")
            ridge = RidgeAligner(alpha=self.alpha, reference=r)
            ridge._warn_as = self
            ridge.fit(blocks)
            self.reference_ = r
            self.means_ = [np.asarray(m, dtype=np.float64) for m in ridge.means_]
            self.coefs_, self.keys_, self.residuals_ = [], [], []
            for k, block in enumerate(blocks):
                if k == r:
                    self.coefs_.append(np.eye(block.shape[1]))
                    self.keys_.append(None)
                    self.residuals_.append(None)
                    continue
                coef = np.asarray(ridge.maps_[k], dtype=np.float64)
                keys, residuals = self._correcting_pairs(blocks, k, kept, coef)
                self.coefs_.append(coef)
                self.keys_.append(keys)
                self.residuals_.append(residuals)
            return self

    def _correcting_pairs(self, blocks, k, kept, coef):
        """View k's unit keys and residuals of the pairs ``kept``, in X's dtype.

        Computed in float64 a chunk of rows at a time: whole, the float64
        rows, keys and residuals held seven times one view's float32 rows
        beyond the two arrays kept (281 MiB to fit 20,000 x 384 pairs). The
        residuals are computed twice, first for their largest entry, which
        sets the entries that are flushed to zero (:func:`_flush_negligible`).
        """
        r = self.reference_
        dtype = blocks[0].dtype
        width = blocks[k].shape[1] + blocks[r].shape[1]
        step = chunk_rows(width * 8, "summary")

        def chunks():
            for start in range(0, kept.size, step):
                rows = kept[start : start + step]
                target = blocks[r][rows].astype(np.float64) - self.means_[r]
                centred = blocks[k][rows].astype(np.float64) - self.means_[k]
                yield start, centred, target - centred @ coef

        largest = max(
            (np.abs(residuals).max(initial=0.0) for _, _, residuals in chunks()),
            default=0.0,
        )
        keys = np.empty((kept.size, blocks[k].shape[1]), dtype=dtype)
        out = np.empty((kept.size, blocks[r].shape[1]), dtype=dtype)
        for start, centred, residuals in chunks():
            stop = start + centred.shape[0]
            _flush_negligible(residuals, largest)
            keys[start:stop] = _unit_rows(centred)
            out[start:stop] = residuals
        return keys, out

    # -------------------------------------------------------------- transform
    def _correction(self, k, dtype):
        """The kernel term of view k's map, and its width per row."""
        keys = self.keys_[k].astype(dtype, copy=False)
        residuals = self.residuals_[k].astype(dtype, copy=False)
        scale = dtype.type(1.0 / self.temperature)
        shrinkage = dtype.type(self.shrinkage)

        def correct(centred, target):
            # Kernel weights: a softmax of the scaled cosines, shifted by each
            # row's largest so that the exponentials cannot overflow.
            scores = _unit_rows(centred) @ keys.T
            scores *= scale
            scores -= scores.max(axis=1, keepdims=True)
            np.exp(scores, out=scores)
            scores *= (shrinkage / scores.sum(axis=1, keepdims=True)).astype(dtype)
            target += scores @ residuals

        return correct, keys.shape[0]


# Residual entries below this fraction of the largest one are set to zero.
# A reference model can have dead dimensions: two of minilm's 384 hold values
# near 1e-33 in every embedding, and so do their residuals. In float32, the
# kernel weights times such entries fall below the normal range, and every
# product that does costs the processor many times an ordinary one: for e5
# queries into minilm's space, with 29,627 correcting pairs, the weighted sum
# of residuals took 560 microseconds a query against 165 with those entries
# zeroed (one thread, batches of 256). Zeroing changes a translated row by at
# most 2^-64 of the largest residual (times shrinkage), far below the
# resolution of float32 and float64 alike.
_NEGLIGIBLE = 2.0**-64


def _flush_negligible(residuals, largest):
    """Zero, in place, the entries of ``residuals`` below ``_NEGLIGIBLE`` of
    ``largest``, the largest magnitude of all the residuals."""
    residuals[np.abs(residuals) < _NEGLIGIBLE * largest] = 0.0


def _check_correction_rows(rows, n_samples):
    """``correction_rows`` as sorted unique row indices (all rows for None)."""
    if rows is None:
        return np.arange(n_samples)
    if isinstance(rows, str | bytes):
        raise TypeError(
            "correction_rows must be a boolean mask of the rows of X or integer "
            f"row indices, got the string {rows!r}."
        )
    array = np.asarray(rows)
    if array.size == 0:
        raise ValueError(
            "correction_rows selects no row; select at least one pair, or use "
            "RidgeAligner for the map without correction."
        )
    if (
        array.dtype.kind in "iu"
        and array.shape == (n_samples,)
        and n_samples > 2
        and np.isin(array, (0, 1)).all()
    ):
        # One 0/1 flag per row (df.is_query.astype(int)) read as the indices
        # {0, 1} kept two pairs without a word.
        raise ValueError(
            f"correction_rows holds only 0 and 1, one entry per row of X "
            f"({n_samples}): flags, not row indices. Pass them as a boolean mask "
            "(for example flags.astype(bool)), or pass the indices of the rows."
        )
    if array.dtype == bool:
        if array.shape != (n_samples,):
            raise ValueError(
                f"correction_rows is a boolean mask of shape {array.shape}, but X "
                f"has {n_samples} rows; pass one flag per row of X."
            )
        indices = np.flatnonzero(array)
    elif array.dtype.kind in "iu" and array.ndim == 1:
        if array.size and (array.min() < 0 or array.max() >= n_samples):
            raise ValueError(
                f"correction_rows holds row indices outside [0, {n_samples - 1}] "
                f"(X has {n_samples} rows); pass indices of rows of X."
            )
        indices = np.unique(array)
    else:
        raise TypeError(
            "correction_rows must be a 1-d boolean mask of the rows of X or 1-d "
            f"integer row indices, got an array of dtype {array.dtype} and shape "
            f"{array.shape}."
        )
    if indices.size == 0:
        raise ValueError(
            "correction_rows selects no row; select at least one pair, or use "
            "RidgeAligner for the map without correction."
        )
    return indices


def _unit_rows(Z):
    """Rows of Z at unit length; rows of zeros stay zero (no direction)."""
    norms = np.sqrt(np.einsum("ij,ij->i", Z, Z, dtype=np.float64))
    norms[norms == 0] = 1.0
    return Z / norms.astype(Z.dtype)[:, None]
