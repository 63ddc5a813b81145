"""Scorers of alignment quality for model selection."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral

from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import Interval, StrOptions

from skembed._neighbors import alignment_score, warn_trivial_k
from skembed._params import validate_params

__all__ = ["make_alignment_scorer"]


def _alignment_score(estimator, X, *, k, method, csls_k):
    """Mean cross-view retrieval of a fitted aligner in its centred shared space.

    A Pipeline ending in an aligner is scored on what its earlier steps make
    of X.
    """
    final = estimator
    if isinstance(estimator, Pipeline):
        final = estimator.steps[-1][1]
        if hasattr(final, "_transform_views") and len(estimator.steps) > 1:
            X = estimator[:-1].transform(X)
    if not hasattr(final, "_transform_views"):
        where = " as the last step of the Pipeline" if final is not estimator else ""
        raise TypeError(
            "make_alignment_scorer scores an aligner that maps several views into "
            f"one shared space (such as ProcrustesAligner){where}, got "
            f"{type(final).__name__}; score other estimators with a scoring of "
            "scikit-learn's."
        )
    views = final._transform_views(X)
    warn_trivial_k(k, views[0].shape[0])
    return alignment_score(views, k=k, method=method, csls_k=csls_k)


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
        aligner, or a Pipeline ending in one, and views laid out as at fit.

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
