"""Fitting from sufficient statistics: ``fit`` and ``partial_fit`` in one pass.

Closed-form aligners (Procrustes, generalised Procrustes, CCA, ridge) need
only, per view, the row count, the column sums and some blocks of
:math:`X_i^\\top X_j`. :class:`MomentsFitMixin` reads the rows once into a
:class:`~skembed._stats.CrossMoments` (numpy row groups on the BLAS's
threads, or a Dask tree reduction), merges it with earlier ``partial_fit``
calls, and hands it to the subclass's solver: no aligner reads X in a loop of
its own.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import copy
import pickle
from abc import abstractmethod
from functools import partial

import numpy as np
from sklearn.base import _fit_context

from skembed._base import state_kept_on_error
from skembed._stats import (
    CrossMoments,
    check_rows,
    merge_moments,
    reduce_rows,
    rows_dtype,
    unit_rows,
    view_moments,
)
from skembed._views import check_y_is_not_a_view

__all__ = ["MomentsFitMixin"]

# Saved state of a fit from moments; the statistics themselves are optional
# (save_aligner(..., statistics=False) leaves them out).
MOMENTS_STATE = ("_fit_dtype",)
MOMENTS_OPTIONAL = (
    "_stats",
    "_stats_normalize",
    "_stats_views",
    "_stats_params",
    "_fit_precision",
)


def _unit_row_blocks(blocks):
    return [unit_rows(block) for block in blocks]


def _same_value(a, b):
    """Whether two parameter values are equal (arrays by content, nested)."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and bool(np.array_equal(a, b))
        )
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, partial) and isinstance(b, partial):
        # The kept copy of a partial is a new object, and a partial of a
        # lambda or a local function does not pickle: the unchanged
        # parameter was refused. Its parts are compared instead (the copy of
        # a function is the function itself).
        return (
            type(a) is type(b)
            and _same_value(a.func, b.func)
            and _same_value(a.args, b.args)
            and _same_value(a.keywords, b.keywords)
        )
    if type(a) is type(b) and type(a).__eq__ is object.__eq__:
        # An object without its own equality (scikit-learn's
        # make_column_selector) is compared by content, as pickled: the copy
        # kept from the first call is never identical to the caller's object.
        # Functions pickle by name; a lambda does not pickle, and the copy of
        # one is the object itself (caught above).
        try:
            return pickle.dumps(a) == pickle.dumps(b)
        except (pickle.PicklingError, TypeError, AttributeError):
            return False  # not picklable (a local class or function, a lock)
    try:
        equal = a == b
        if isinstance(equal, bool | np.bool_):
            return bool(equal)
        # An array-like compared element-wise (a pandas Index, say).
        return bool(
            np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
        )
    except (TypeError, ValueError):
        return False


class MomentsFitMixin:
    """``fit`` and ``partial_fit`` of an aligner solved from its moments.

    A subclass says which statistics it needs, ``_statistics_request(widths)``
    returning keyword arguments of :class:`~skembed._stats.CrossMoments`,
    and solves for its maps, ``_solve(stats)``. With a ``normalize="l2"``
    parameter the rows get unit length before any statistic is taken.
    """

    @abstractmethod
    def _statistics_request(self, widths):
        """Keyword arguments of CrossMoments for views of these widths."""

    def _checking_request(self, widths):
        """Statistics taken only to check the input, not to solve.

        Boolean keyword arguments of CrossMoments. A model file saved before
        they were taken still continues (partial_fit), without the check.
        """
        return {}

    def _request(self, *, reset):
        """The statistics to take of the next rows."""
        widths = self.n_features_per_view_
        request = self._statistics_request(widths)
        kept = None if reset else getattr(self, "_stats", None)
        for name, wanted in self._checking_request(widths).items():
            if kept is None or getattr(kept, name):
                request[name] = request.get(name, False) or wanted
        return request

    @abstractmethod
    def _solve(self, stats):
        """Set the fitted maps from the accumulated statistics."""

    def _check_statistics(self, stats):
        """Data-dependent checks run before ``_solve``."""
        if stats.n_samples_ < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples, got "
                f"n_samples = {stats.n_samples_}."
            )

    def _moments_of(self, X, *, reset):
        """The moments of X alone, checked, and the dtype of its rows.

        A Dask X is reduced block by block with a tree of merges.
        """
        views = check_rows(self, X, reset=reset)
        moments = partial(
            view_moments,
            request=self._request(reset=reset),
            prepare=_unit_row_blocks if self._l2_rows else None,
        )
        stats = reduce_rows(views, moments, merge_moments)
        dtype = rows_dtype(views)
        if not stats.is_finite():
            raise self._non_finite_error(dtype)
        return stats, dtype

    def _set_statistics(self, stats, dtype, precision=None):
        """Solve from ``stats``; ``dtype`` sets the rank tests, ``precision``
        (default: the machine epsilon of ``dtype``) the relative rounding of
        the statistics themselves, for the iterative solvers."""
        self._fit_dtype = dtype
        self._fit_precision = (
            float(np.finfo(dtype).eps) if precision is None else precision
        )
        self._check_statistics(stats)
        self._solve(stats)
        self._stats = stats
        self._stats_normalize = "l2" if self._l2_rows else None
        # The layout of the views is fixed by the first call: partial_fit
        # splits later chunks by it whatever `views` says by then.
        self._stats_views = copy.deepcopy(self.views)
        # The other parameters too, so that a refused continuation can name
        # the one that changed (model files written before them lack them: a
        # loaded model's refusal then lists them all).
        self._stats_params = copy.deepcopy(self.get_params(deep=False))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the per-view maps from row-paired views.

        Parameters
        ----------
        X : array-like, DataFrame or list of arrays
            The views, split as the ``views`` parameter says: row ``i`` of
            every view embeds the same item.
        y : None
            Ignored; present for Pipeline compatibility (class labels
            travel here, never a second embedding).

        Returns
        -------
        self : object
            The fitted aligner.
        """
        check_y_is_not_a_view(self, X, y)
        with state_kept_on_error(self):
            stats, dtype = self._moments_of(X, reset=True)
            self._set_statistics(stats, dtype)
        return self

    def _check_continuation(self):
        """Refuse a partial_fit whose statistics could not merge with the kept ones."""
        if self._stats is None:
            raise ValueError(
                f"This {type(self).__name__} was saved without its statistics "
                "(save_aligner(..., statistics=False)), so partial_fit cannot "
                "continue it; call fit, or save with statistics=True."
            )
        normalize = getattr(self, "_stats_normalize", None)
        now = "l2" if self._l2_rows else None
        if hasattr(self, "_stats_normalize") and normalize != now:
            raise ValueError(
                f"partial_fit started with normalize={normalize!r} and is now "
                f"called with normalize={now!r}: the statistics of the two would "
                "mix. Keep the parameter, or call fit to start again."
            )
        if hasattr(self, "_stats_views") and not _same_value(
            self._stats_views, self.views
        ):
            raise ValueError(
                f"partial_fit started with views={self._stats_views!r} and is now "
                f"called with views={self.views!r}: later chunks would be split "
                "as the first ones were, not as views now says. Keep the "
                "parameter, or call fit to start again."
            )
        expected = CrossMoments(
            len(self.n_features_per_view_), **self._request(reset=False)
        )
        if expected._layout() != self._stats._layout():
            now = self.get_params(deep=False)
            first = getattr(self, "_stats_params", None) or {}
            changed = [
                name
                for name in now
                if name in first and not _same_value(first[name], now[name])
            ]
            if changed:
                before = ", ".join(f"{name}={first[name]!r}" for name in changed)
                after = ", ".join(f"{name}={now[name]!r}" for name in changed)
                said = (
                    f"partial_fit started with {before} and is now called with {after}"
                )
            else:
                said = (
                    "the parameters now ("
                    + ", ".join(f"{k}={v!r}" for k, v in now.items())
                    + ") are not those of the first partial_fit call"
                )
            raise ValueError(
                f"{type(self).__name__}: {said}, which asks for other statistics "
                "than the ones kept since that call; keep the parameters of the "
                "first call, or call fit to start again."
            )

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Update the statistics with a chunk of rows and refit the maps.

        The maps depend on the data only through mergeable sums, so the
        statistics after any sequence of calls equal those of ``fit`` on all
        chunks stacked, up to float rounding; so do the maps wherever they
        are unique (see the aligner's Notes). A call that raises leaves the
        aligner as it was.

        Parameters
        ----------
        X : array-like, DataFrame or list of arrays
            A chunk of row-paired views, laid out as in the first call.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The updated aligner.
        """
        check_y_is_not_a_view(self, X, y)
        first = not hasattr(self, "_stats")
        with state_kept_on_error(self):
            if not first:
                self._check_continuation()
            stats, dtype = self._moments_of(X, reset=first)
            precision = float(np.finfo(dtype).eps)
            if not first:
                # A new accumulator: the kept one changes only on success.
                stats = merge_moments(self._stats, stats)
                # The rank tests follow fit on every chunk so far stacked
                # (whose dtype is the promoted one), but the statistics keep
                # the rounding of the coarsest chunk's products.
                kept = getattr(self, "_fit_precision", None)
                if kept is None:  # a model file from before it was kept
                    kept = float(np.finfo(self._fit_dtype).eps)
                precision = max(precision, kept)
                dtype = np.promote_types(self._fit_dtype, dtype)
            try:
                self._set_statistics(stats, dtype, precision)
            except ValueError as exc:
                if not first:
                    raise
                # Nothing of a refused call is kept, so a stream of chunks
                # each too small on its own would never start.
                raise ValueError(
                    f"{exc} partial_fit keeps nothing of a refused first chunk: "
                    "if it is too small on its own, make the first chunk larger "
                    "(later ones may be of any size)."
                ) from exc
        return self
