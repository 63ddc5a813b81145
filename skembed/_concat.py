"""Combine several embedding views into one feature matrix, without aligning them."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from functools import partial
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn import get_config
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_is_fitted,
)

from skembed._affine import in_dtype
from skembed._base import VIEW_OPTIONAL, VIEW_STATE, state_kept_on_error
from skembed._parallel import map_row_groups, row_groups
from skembed._params import NumbersAreNotFlagsMixin
from skembed._stats import (
    all_finite,
    centred_rows,
    check_rows,
    chunk_rows,
    map_rows,
    merge_moments,
    reduce_rows,
    unit_rows,
    view_moments,
)
from skembed._views import (
    check_y_is_not_a_view,
    keep_list_index,
    resolve_view,
    view_feature_names,
)

__all__ = ["EmbeddingConcatenator"]


def _constant_columns(mean: np.ndarray, variance: np.ndarray, n_samples: int):
    """Columns whose variance is only float64 rounding noise of a constant."""
    # Same bound as scikit-learn's StandardScaler: the error of the variance of
    # a constant column is at most n eps var + (n eps mean)^2.
    eps = np.finfo(np.float64).eps
    upper_bound = n_samples * eps * variance + (n_samples * mean * eps) ** 2
    return variance <= upper_bound


# What fit needs of the rows for each normalisation, as CrossMoments options:
# the number of non-zero rows ("l2", one pass of row norms), the column means
# and variances ("standard"), or the mean squared row norm (None).
_SUMMARIES = {
    "l2": {"column_sums": False, "nonzero_rows": True},
    "standard": {"column_squares": True},
    None: {"sum_of_squares": True},
}


class EmbeddingConcatenator(NumbersAreNotFlagsMixin, TransformerMixin, BaseEstimator):
    r"""Normalise every embedding view, weight it and concatenate the views.

    Embeddings from different models live in different spaces with different
    widths and scales. Concatenating them raw lets the widest or largest model
    dominate every distance and every regularised linear model downstream. This
    transformer first normalises each view, then multiplies it by a per-view
    weight chosen so that every model contributes the same expected squared norm
    (or by explicit weights), and finally stacks the views side by side. It does
    not align the spaces: use an aligner when the views must be compared with
    each other.

    Parameters
    ----------
    views : None, int, list or dict, default=None
        How the columns of `X` split into views (at least two). `None`: two
        contiguous blocks, the first one column wider when the width is odd.
        An int `K`: `K` contiguous blocks of almost equal widths. A list of
        selectors (slice, integer array, boolean mask, list of column names, the
        name of an array-valued DataFrame column, or a callable such as
        :func:`~sklearn.compose.make_column_selector`), one per view. A dict
        mapping view names to selectors names the views, and so does a list of
        single column names (``["minilm", "e5"]``); the names are used in the
        output feature names and as keys of `weights`. `X` may also be a list
        or tuple of 2-D arrays, one per view, when `views=None`. Unnamed views
        are called `"view0"`, `"view1"`, ...

    normalize : {"l2", "standard"} or None, default="l2"
        Normalisation applied to each view separately before weighting.

        - `"l2"`: scale every row of the view to unit Euclidean length (rows of
          zeros stay zero). Usual for embeddings compared by cosine similarity.
        - `"standard"`: centre and scale every column of the view to unit
          variance, with means and standard deviations learnt at fit (columns
          that are constant at fit are only centred).
        - `None`: keep the raw values.

        Changed after fit, it takes effect at the next fit: until then
        transform refuses, as `weights_` were learnt for the old one.

    weights : "balanced", None, list or dict, default="balanced"
        Multiplier of each normalised view.

        - `"balanced"`: learn at fit the mean squared row norm of each
          normalised view and use the inverse of its square root, so that each
          view contributes the same expected squared norm (one) to the output,
          whatever its width and scale (see Notes).
        - `None`: every weight is one (plain concatenation of the normalised
          views).
        - a list of `K` non-negative numbers, one per view in order, or a dict
          (or a pandas Series, read by its labels) mapping every view name
          (or index) to a non-negative number. Explicit
          weights *replace* balancing: they are applied as given to the
          normalised views, not multiplied with the balanced weights. At least
          one weight must be positive; a view with weight zero is output as
          zeros. Being plain values, they can be tuned with
          :class:`~sklearn.model_selection.GridSearchCV`.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    view_names_ : list of str
        Name of each view, in output order.

    n_features_per_view_ : list of int
        Width of each view, which is also its width in the output.

    view_mean_squared_norms_ : ndarray of shape (n_views,)
        Mean squared row norm of each view after normalisation, on the training
        data (float64). One for `normalize="l2"` unless the view has rows of
        zeros; the number of non-constant columns for `normalize="standard"`.

    weights_ : ndarray of shape (n_views,)
        Weight multiplied to each normalised view (float64), balanced or
        explicit.

    view_means_ : list of ndarray of shape (n_features_k,)
        Column means of each view learnt at fit (float64). Only with
        `normalize="standard"`.

    view_scales_ : list of ndarray of shape (n_features_k,)
        Column standard deviations of each view learnt at fit (float64), one
        for constant columns. Only with `normalize="standard"`.

    See Also
    --------
    sklearn.preprocessing.Normalizer : Row-wise l2 normalisation of a whole
        matrix.
    sklearn.preprocessing.StandardScaler : Column standardisation of a whole
        matrix.
    sklearn.compose.ColumnTransformer : Apply this transformer to a group of
        embedding columns next to other columns.

    Notes
    -----
    Let :math:`\phi_k` be the normalisation of view :math:`k` and
    :math:`x^{(k)}` the row of that view. The output row is

    .. math::

        z = \bigl[\, w_1 \phi_1(x^{(1)}),\ \dots,\ w_K \phi_K(x^{(K)}) \,\bigr].

    With `weights="balanced"` the weights are learnt on the :math:`n`
    training rows as

    .. math::

        w_k = \Bigl(\frac{1}{n} \sum_{i=1}^{n}
              \bigl\lVert \phi_k(x_i^{(k)}) \bigr\rVert^2\Bigr)^{-1/2},

    so that :math:`\frac{1}{n} \sum_i \lVert w_k \phi_k(x_i^{(k)}) \rVert^2 = 1`
    for every view. Because squared Euclidean distances and inner products of
    concatenated vectors are sums over the blocks,

    .. math::

        \lVert z - z' \rVert^2 = \sum_{k=1}^{K} w_k^2
            \bigl\lVert \phi_k(x^{(k)}) - \phi_k(x'^{(k)}) \bigr\rVert^2,

    every view then enters distances, kernels and penalised linear models on
    the same footing. For `normalize="l2"` every non-zero row already has norm
    one, so the balanced weights are one (larger only when the view has rows of
    zeros) and :math:`\langle z, z' \rangle` is the sum of the per-view cosine
    similarities. For `normalize="standard"` the mean squared norm of a view is
    its number :math:`d_k` of non-constant columns, hence
    :math:`w_k = 1 / \sqrt{d_k}`: without it a 1024-wide model would outweigh
    a 256-wide one four times. For `normalize=None` the weight also removes the
    overall scale of each model. A view whose normalised rows are all zero at
    fit gets weight one.

    With `normalize="l2"` the output is invariant to rotating any view by an
    orthogonal matrix (distances between output rows do not change) and to
    scaling any view by a positive number.

    Examples
    --------
    >>> import numpy as np
    >>> from skembed import EmbeddingConcatenator
    >>> rng = np.random.default_rng(0)
    >>> small = rng.normal(size=(100, 4))          # a 4-d model
    >>> large = 10 * rng.normal(size=(100, 8))     # an 8-d model, larger scale
    >>> X = np.hstack([small, large])
    >>> concat = EmbeddingConcatenator(
    ...     views={"small": slice(0, 4), "large": slice(4, 12)},
    ...     normalize="standard",
    ... )
    >>> Z = concat.fit_transform(X)
    >>> Z.shape
    (100, 12)
    >>> concat.weights_.round(3)
    array([0.5  , 0.354])
    >>> [round(float((Z[:, block] ** 2).sum(axis=1).mean()), 3)
    ...  for block in (slice(0, 4), slice(4, 12))]
    [1.0, 1.0]
    >>> concat.get_feature_names_out()[[0, 4]]
    array(['small__x0', 'large__x4'], dtype=object)

    In a pipeline, in front of a classifier:

    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> y = (small[:, 0] + large[:, 0] / 10 > 0).astype(int)
    >>> model = make_pipeline(
    ...     EmbeddingConcatenator(views=[slice(0, 4), slice(4, 12)]),
    ...     LogisticRegression(),
    ... )
    >>> float(model.fit(X, y).score(X, y)) > 0.9
    True
    """

    # Fitted state in model files (format 2, see skembed._io); optional entries
    # may be absent.
    _saved_state = (
        *VIEW_STATE,
        "weights_",
        "view_mean_squared_norms_",
    )
    _saved_optional = (
        *VIEW_OPTIONAL,
        "view_means_",
        "view_scales_",
        "_fitted_normalize",
    )

    _parameter_constraints: dict = {
        "views": [None, Interval(Integral, 2, None, closed="left"), list, dict],
        "normalize": [StrOptions({"l2", "standard"}), None],
        "weights": [StrOptions({"balanced"}), None, "array-like", dict],
    }

    def __init__(self, views=None, *, normalize="l2", weights="balanced"):
        self.views = views
        self.normalize = normalize
        self.weights = weights

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the view layout, the normalisation statistics and the weights.

        Parameters
        ----------
        X : array-like, DataFrame, list/tuple of 2-D arrays, or Dask array/DataFrame
            Training embeddings, all views side by side (see `views`).

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : EmbeddingConcatenator
            The fitted transformer.
        """
        check_y_is_not_a_view(self, X, y)
        with state_kept_on_error(self):
            views = check_rows(self, X, reset=True)
            n_views = len(self.n_features_per_view_)
            explicit_weights = self._explicit_weights(n_views)
            summarize = partial(view_moments, request=_SUMMARIES[self.normalize])
            stats = reduce_rows(views, summarize, merge_moments)
            if stats.n_samples_ == 0:
                # Only a Dask X gets here empty (a filter that kept no rows);
                # numpy X is refused by validate_data.
                raise ValueError(
                    "Found array with 0 sample(s) while a minimum of 1 is required "
                    "by EmbeddingConcatenator: X has no rows."
                )
            if not stats.is_finite():
                raise ValueError(
                    "Input X contains NaN or infinity; EmbeddingConcatenator needs "
                    "finite embeddings. Drop or impute those rows."
                )

            for name in ("view_means_", "view_scales_"):
                if hasattr(self, name):
                    delattr(self, name)
            n_samples = stats.n_samples_
            mean_squared_norms = np.empty(n_views, dtype=np.float64)
            if self.normalize == "standard":
                self.view_means_, self.view_scales_ = [], []
                for k in range(n_views):
                    mean, variance = stats.mean(k), stats.column_variance(k)
                    constant = _constant_columns(mean, variance, n_samples)
                    scale = np.sqrt(variance)
                    scale[constant] = 1.0
                    self.view_means_.append(mean)
                    self.view_scales_.append(scale)
                    # A standardised column has mean square one, a constant one zero.
                    mean_squared_norms[k] = np.count_nonzero(~constant)
            else:
                for k in range(n_views):
                    if self.normalize == "l2":
                        mean_squared_norms[k] = stats.nonzero_row_count(k) / n_samples
                    else:
                        squares = stats.uncentered_sum_of_squares(k)
                        mean_squared_norms[k] = squares / n_samples
            self.view_mean_squared_norms_ = mean_squared_norms
            # weights_ and the statistics hold for this normalisation only.
            self._fitted_normalize = self.normalize

            if explicit_weights is not None:
                self.weights_ = explicit_weights
            else:
                weights = np.ones_like(mean_squared_norms)
                positive = mean_squared_norms > 0
                weights[positive] = 1.0 / np.sqrt(mean_squared_norms[positive])
                self.weights_ = weights
            return self

    def transform(self, X):
        """Normalise and weight every view and concatenate the views.

        Parameters
        ----------
        X : array-like, DataFrame, list/tuple of 2-D arrays, or Dask array/DataFrame
            Embeddings with the layout seen at fit.

        Returns
        -------
        X_out : ndarray of shape (n_samples, sum(n_features_per_view_))
            The weighted, normalised views side by side, float32 when every
            input view is float32 and float64 otherwise (a lazy Dask array
            for Dask input).
        """
        check_is_fitted(self)
        self._check_normalize_unchanged()
        # Non-finite rows are caught in the output chunks, still in cache,
        # instead of by a separate pass over X.
        check_finite = not get_config()["assume_finite"]
        views = check_rows(self, X, reset=False)
        transform = partial(self._transform_blocks, check_finite=check_finite)
        out = map_rows(views, transform, sum(self.n_features_per_view_))
        return keep_list_index(self, X, out)

    def _check_normalize_unchanged(self):
        """Refuse to transform with a normalize other than the fitted one.

        weights_ and the column statistics were learnt for the normalisation
        of fit: with another one transform would mix the two (balanced l2
        weights on raw views) or miss statistics it never learnt. Models
        written before the record follow the parameter.
        """
        fitted = getattr(self, "_fitted_normalize", self.normalize)
        if fitted != self.normalize:
            raise ValueError(
                f"This EmbeddingConcatenator was fitted with normalize={fitted!r} "
                f"and normalize is now {self.normalize!r}: its weights_ and "
                "statistics only hold for the normalisation of fit. Set "
                "normalize back with set_params, or call fit again."
            )

    def _transform_blocks(self, blocks, *, check_finite=True, n_threads=None):
        """Normalise, weight and concatenate numpy view blocks.

        Row chunks small enough to stay in cache are written once into the
        output, in groups run on the BLAS's threads (:mod:`skembed._parallel`).
        """
        dtype = blocks[0].dtype
        widths = [block.shape[1] for block in blocks]
        X_out = np.empty((blocks[0].shape[0], sum(widths)), dtype=dtype)
        stops = np.cumsum(widths)
        step = chunk_rows(2 * sum(widths) * dtype.itemsize, "transform")
        if self.normalize == "standard":
            means = [np.asarray(mean, dtype=np.float64) for mean in self.view_means_]
            factors = [
                in_dtype(np.asarray(w / scale), dtype)
                for w, scale in zip(self.weights_, self.view_scales_, strict=True)
            ]
        elif self.normalize is None:
            factors = [in_dtype(np.asarray(w), dtype) for w in self.weights_]

        def write(chunk, k, out):
            if self.normalize == "l2":
                # Norms safe at any magnitude (zero rows get 1 and stay zero);
                # a division, as a reciprocal of a tiny norm may not exist in
                # the dtype.
                unit_rows(chunk, out=out)
                out *= dtype.type(self.weights_[k])
            elif self.normalize == "standard":
                if factors[k].dtype == dtype:
                    # The float64 mean subtracted in two parts (its rounding
                    # to the dtype, then the rest): rows far from the origin
                    # next to their spread kept an error of half the mean's
                    # last float32 digit, 1% of a standard deviation.
                    centred_rows(chunk, means[k], out=out)
                    out *= factors[k]
                else:
                    # The factor of a view of tiny (or huge) spread is beyond
                    # the dtype's range: the chunk goes through float64 and is
                    # rounded once.
                    wide = chunk.astype(np.float64)
                    wide -= means[k]
                    wide *= factors[k]
                    out[...] = wide
            else:
                # A float64 factor makes the product run in float64.
                np.multiply(chunk, factors[k], out=out)

        def fill(start, stop):
            for first in range(start, stop, step):
                rows = slice(first, min(stop, first + step))
                target = X_out[rows]
                # NaN and infinity propagate to the output (a NaN row norm
                # leaves a factor of 0, and 0 * inf is NaN), where they are
                # reported; on their way they must not warn.
                with np.errstate(invalid="ignore", over="ignore"):
                    for k, (block, end) in enumerate(zip(blocks, stops, strict=True)):
                        write(block[rows], k, target[:, end - widths[k] : end])
                if check_finite and not all_finite(target):
                    if all(all_finite(block[rows]) for block in blocks):
                        raise ValueError(
                            f"The output overflows {dtype}: the views, "
                            f"normalised ({self.normalize}) and multiplied by "
                            f"weights_ {self.weights_.tolist()}, exceed its "
                            "largest value. Pass float64 input, or smaller "
                            "weights."
                        )
                    raise ValueError(
                        "Input X contains NaN or infinity (or a value too large "
                        f"for {dtype}); EmbeddingConcatenator needs finite "
                        "embeddings. Drop or impute those rows."
                    )

        for _ in map_row_groups(
            fill, row_groups(X_out.shape[0], step), n_threads=n_threads
        ):
            pass
        return X_out

    def get_feature_names_out(self, input_features=None):
        """Output feature names, `"<view name>__<input feature name>"`.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names. If `None`, `feature_names_in_` is used when
            defined, else `["x0", "x1", ...]`. If given, it must equal
            `feature_names_in_` when that is defined, and have
            `n_features_in_` entries otherwise.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per output column, view by view. When input feature names
            would give two output columns one name (entry 10 of a vector
            column ``"a"`` and entry 0 of a column ``"a1"`` are both
            ``"a10"``), every name is ``"<view name>__x<i>"`` instead, ``i``
            the feature's position in `X`.
        """
        check_is_fitted(self)
        input_features = _check_feature_names_in(self, input_features)
        renamed = {}
        one_name_per_feature = sum(self.n_features_per_view_) == self.n_features_in_
        if not hasattr(self, "feature_names_in_") and one_name_per_feature:
            # Without names seen at fit, features have the default names "x<i>";
            # a caller such as ColumnTransformer may supply others.
            default = _check_feature_names_in(self, None)
            renamed = dict(zip(default, input_features, strict=True))
        names = [
            f"{view}__{renamed.get(feature, feature)}"
            for k, view in enumerate(self.view_names_)
            for feature in view_feature_names(self, k)
        ]
        if len(set(names)) < len(names):
            # Column names can name two features alike: entry 10 of vector
            # column "a" and entry 0 of "a1" are both "a10", and view "a" with
            # column "b__c" meets view "a__b" with column "c". Repeated names
            # broke set_output and every step after; the features' positions
            # in X cannot repeat.
            names = [
                f"{view}__{feature}"
                for k, view in enumerate(self.view_names_)
                for feature in view_feature_names(self, k, positional=True)
            ]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.target_tags.required = False
        return tags

    def _explicit_weights(self, n_views):
        """Validate explicit `weights` against the fitted views; None if balanced."""
        if isinstance(self.weights, str):
            return None
        if self.weights is None:
            return np.ones(n_views, dtype=np.float64)
        weights_by_view = self.weights
        if isinstance(weights_by_view, pd.Series):
            # Labels say which view a weight is for, as the keys of a dict,
            # integer labels included (view indices, as dict keys are): read
            # by position, Series({1: 5.0, 0: 1.0}) weighted the wrong views.
            weights_by_view = weights_by_view.to_dict()
        if isinstance(weights_by_view, set | frozenset):
            raise TypeError(
                f"weights is a set, whose order is arbitrary, got {self.weights!r}; "
                "pass a list in the order of the views, or a dict view -> weight."
            )
        if np.ndim(weights_by_view) == 0 and not isinstance(weights_by_view, dict):
            raise ValueError(
                f"weights must hold one number per view (a 1-D list or array, or "
                f"a dict view -> weight), got {self.weights!r}."
            )
        if isinstance(weights_by_view, dict):
            values = [None] * n_views
            for key, value in weights_by_view.items():
                try:
                    k = resolve_view(self, key)
                except (ValueError, TypeError, KeyError, IndexError) as exc:
                    raise ValueError(
                        f"weights has the key {key!r}, which is not a view; the "
                        f"views are {self.view_names_}. Use these names as keys."
                    ) from exc
                if values[k] is not None:
                    raise ValueError(
                        f"weights gives view {self.view_names_[k]!r} two weights; "
                        "give each view once."
                    )
                values[k] = value
            missing = [
                name
                for name, value in zip(self.view_names_, values, strict=True)
                if value is None
            ]
            if missing:
                raise ValueError(
                    f"weights has no weight for the views {missing}; give one "
                    f"non-negative number for each of {self.view_names_}."
                )
        else:
            values = list(weights_by_view)
            if len(values) != n_views:
                raise ValueError(
                    f"weights has {len(values)} entries but X has {n_views} views "
                    f"{self.view_names_}; give one weight per view."
                )
        if any(isinstance(value, bool | np.bool_) for value in values) or (
            getattr(weights_by_view, "dtype", None) == np.bool_
        ):
            # Flags read as 0 and 1 dropped the views marked False without a
            # word: a mask meant for another parameter, or for views=.
            raise TypeError(
                f"weights must hold numbers, got the flags {self.weights!r}; to "
                "drop a view give it the weight 0, or select the views with "
                "views=."
            )
        try:
            weights = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"weights must hold one number per view, got {self.weights!r}."
            ) from exc
        if weights.shape != (n_views,) or not np.all(np.isfinite(weights)):
            raise ValueError(
                f"weights must hold one finite number per view, got {self.weights!r}."
            )
        if np.any(weights < 0):
            raise ValueError(
                f"weights must be non-negative, got {self.weights!r}; use 0 to "
                "drop a view."
            )
        if not np.any(weights > 0):
            raise ValueError(
                f"weights are all zero ({self.weights!r}); at least one view "
                "needs a positive weight."
            )
        return weights
