"""Combine several embedding views into one feature matrix, without aligning them."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from functools import partial, reduce
from numbers import Integral

import numpy as np
from sklearn import config_context, get_config
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import gen_batches
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_is_fitted,
)

from skembed import _base
from skembed._dask import check_dask_views, is_dask_collection, map_views, reduce_views
from skembed._parallel import map_row_groups, row_groups
from skembed._stats import chunk_rows, row_squared_norms
from skembed._views import check_views, resolve_view, view_feature_names

__all__ = ["EmbeddingConcatenator"]


def _row_batches(block: np.ndarray):
    """Yield row slices whose float64 copy takes at most 8 MiB (or working_memory)."""
    # Small chunks keep the float64 temporary far below the size of the block.
    chunk_bytes = min(get_config()["working_memory"], 8) * 2**20
    n_rows = max(1, int(chunk_bytes // (8 * max(block.shape[1], 1))))
    return gen_batches(block.shape[0], n_rows)


def _column_mean_and_variance(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and (biased) variances, two passes over row chunks in float64."""
    n_samples = block.shape[0]
    mean = np.zeros(block.shape[1], dtype=np.float64)
    for rows in _row_batches(block):
        mean += block[rows].sum(axis=0, dtype=np.float64)
    mean /= n_samples
    variance = np.zeros_like(mean)
    for rows in _row_batches(block):
        centered = block[rows] - mean  # float64: mean is float64
        variance += np.einsum("ij,ij->j", centered, centered)
    variance /= n_samples
    return mean, variance


def _constant_columns(mean: np.ndarray, variance: np.ndarray, n_samples: int):
    """Columns whose variance is only float64 rounding noise of a constant."""
    # Same bound as scikit-learn's StandardScaler: the error of the two-pass
    # variance of a constant column is at most n eps var + (n eps mean)^2.
    eps = np.finfo(np.float64).eps
    upper_bound = n_samples * eps * variance + (n_samples * mean * eps) ** 2
    return variance <= upper_bound


def _summarize_views(blocks, *, normalize):
    """What fit learns from row blocks, in a form two row sets can merge.

    Per view: column means and variances (``"standard"``), the number of
    non-zero rows (``"l2"``) or the mean squared row norm (None). A
    module-level function, so that Dask can ship it to the workers.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        # Non-finite input is reported from the summary's "finite" flag.
        return _summarize(blocks, normalize)


def _summarize(blocks, normalize):
    n_samples = blocks[0].shape[0]
    summary = {"n_samples": n_samples, "finite": True, "views": []}
    for block in blocks:
        if normalize == "standard":
            mean, variance = _column_mean_and_variance(block)
            view = {"mean": mean, "variance": variance}
            finite = np.isfinite(mean).all() and np.isfinite(variance).all()
        else:
            squared_norms = row_squared_norms(block)
            finite = np.isfinite(squared_norms).all()
            if normalize == "l2":
                view = {"nonzero": np.count_nonzero(squared_norms)}
            else:
                view = {"mean_squared_norm": squared_norms.mean()}
        summary["finite"] = summary["finite"] and bool(finite)
        summary["views"].append(view)
    return summary


def _merge_summaries(left, right):
    """Summary of the rows of two summaries (Chan et al.'s pairwise variance)."""
    n_left, n_right = left["n_samples"], right["n_samples"]
    n_samples = n_left + n_right
    if n_left == 0 or n_right == 0:
        return right if n_left == 0 else left
    views = []
    for a, b in zip(left["views"], right["views"], strict=True):
        if "mean" in a:
            delta = b["mean"] - a["mean"]
            mean = a["mean"] + delta * (n_right / n_samples)
            m2 = (
                a["variance"] * n_left
                + b["variance"] * n_right
                + delta**2 * (n_left * n_right / n_samples)
            )
            views.append({"mean": mean, "variance": m2 / n_samples})
        elif "nonzero" in a:
            views.append({"nonzero": a["nonzero"] + b["nonzero"]})
        else:
            total = a["mean_squared_norm"] * n_left + b["mean_squared_norm"] * n_right
            views.append({"mean_squared_norm": total / n_samples})
    finite = left["finite"] and right["finite"]
    return {"n_samples": n_samples, "finite": finite, "views": views}


class EmbeddingConcatenator(TransformerMixin, BaseEstimator):
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

    weights : "balanced", None, list or dict, default="balanced"
        Multiplier of each normalised view.

        - `"balanced"`: learn at fit the mean squared row norm of each
          normalised view and use the inverse of its square root, so that each
          view contributes the same expected squared norm (one) to the output,
          whatever its width and scale (see Notes).
        - `None`: every weight is one (plain concatenation of the normalised
          views).
        - a list of `K` non-negative numbers, one per view in order, or a dict
          mapping every view name (or index) to a non-negative number. Explicit
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
        dask_input = is_dask_collection(X)
        if dask_input:
            views = check_dask_views(self, X, reset=True)
        else:
            # NaN and infinity reach the summaries; checking them there saves
            # a pass over X.
            with config_context(assume_finite=True):
                blocks = check_views(self, X, reset=True)
        n_views = len(self.n_features_per_view_)
        explicit_weights = self._explicit_weights(n_views)
        summarize = partial(_summarize_views, normalize=self.normalize)
        if dask_input:
            summary = reduce_views(views, summarize, _merge_summaries)
        else:
            step = chunk_rows(sum(self.n_features_per_view_), blocks[0].dtype.itemsize)
            parts = map_row_groups(
                lambda start, stop: summarize([b[start:stop] for b in blocks]),
                row_groups(blocks[0].shape[0], step),
            )
            summary = reduce(_merge_summaries, parts)
        if not summary["finite"]:
            raise ValueError(
                "Input X contains NaN or infinity; EmbeddingConcatenator needs "
                "finite embeddings. Drop or impute those rows."
            )

        for name in ("view_means_", "view_scales_"):
            if hasattr(self, name):
                delattr(self, name)
        n_samples = summary["n_samples"]
        mean_squared_norms = np.empty(n_views, dtype=np.float64)
        if self.normalize == "standard":
            self.view_means_, self.view_scales_ = [], []
            for k, view in enumerate(summary["views"]):
                mean, variance = view["mean"], view["variance"]
                constant = _constant_columns(mean, variance, n_samples)
                scale = np.sqrt(variance)
                scale[constant] = 1.0
                self.view_means_.append(mean)
                self.view_scales_.append(scale)
                # A standardised column has mean square one, a constant one zero.
                mean_squared_norms[k] = np.count_nonzero(~constant)
        else:
            for k, view in enumerate(summary["views"]):
                if self.normalize == "l2":
                    mean_squared_norms[k] = view["nonzero"] / n_samples
                else:
                    mean_squared_norms[k] = view["mean_squared_norm"]
        self.view_mean_squared_norms_ = mean_squared_norms

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
        check_finite = not get_config()["assume_finite"]
        if is_dask_collection(X):
            views = check_dask_views(self, X, reset=False)
            # Dask already runs one task per block on every core.
            transform = partial(
                self._transform_blocks, check_finite=check_finite, n_threads=1
            )
            return map_views(views, transform, sum(self.n_features_per_view_))
        # Non-finite rows are caught in the output chunks, still in cache,
        # instead of by a separate pass over X.
        with config_context(assume_finite=True):
            blocks = check_views(self, X, reset=False)
        return self._transform_blocks(blocks, check_finite=check_finite)

    def _transform_blocks(self, blocks, *, check_finite=True, n_threads=None):
        """Normalise, weight and concatenate numpy view blocks.

        Row chunks small enough to stay in cache are written once into the
        output, in groups run on the BLAS's threads (:mod:`skembed._parallel`).
        """
        dtype = blocks[0].dtype
        widths = [block.shape[1] for block in blocks]
        X_out = np.empty((blocks[0].shape[0], sum(widths)), dtype=dtype)
        stops = np.cumsum(widths)
        budget = _base._TRANSFORM_BUDGET
        step = chunk_rows(2 * sum(widths), dtype.itemsize, budget=budget)
        if self.normalize == "standard":
            shifts = [mean.astype(dtype) for mean in self.view_means_]
            scales = [
                (w / scale).astype(dtype)
                for w, scale in zip(self.weights_, self.view_scales_, strict=True)
            ]

        def write(chunk, k, out):
            weight = self.weights_[k]
            if self.normalize == "l2":
                norms = np.sqrt(row_squared_norms(chunk))
                factors = np.zeros_like(norms)
                np.divide(weight, norms, out=factors, where=norms > 0)
                np.multiply(chunk, factors[:, None].astype(dtype), out=out)
            elif self.normalize == "standard":
                np.subtract(chunk, shifts[k], out=out)
                out *= scales[k]
            else:
                np.multiply(chunk, dtype.type(weight), out=out)

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
                if check_finite and not _base._all_finite(target):
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
            One name per output column, view by view.
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
        if isinstance(self.weights, dict):
            values = [None] * n_views
            for key, value in self.weights.items():
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
            values = list(self.weights)
            if len(values) != n_views:
                raise ValueError(
                    f"weights has {len(values)} entries but X has {n_views} views "
                    f"{self.view_names_}; give one weight per view."
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
