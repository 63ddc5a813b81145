"""The warnings skembed raises, in one public module.

Filter them like any Python warning, for example
``warnings.simplefilter("error", skembed.exceptions.OutOfSpaceWarning)``.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

__all__ = ["ConstantViewWarning", "OutOfSpaceWarning", "UnsupervisedAlignmentWarning"]


class ConstantViewWarning(UserWarning):
    """Views of the training rows do not vary: each maps every row to one point.

    Raised by the aligners fitted on paired views (for example
    :class:`skembed.ProcrustesAligner` and :class:`skembed.RidgeAligner`)
    when the rows of a view are all the same vector about their mean, as an
    encoder that returns one vector for every text gives. The map of such a
    view is arbitrary, and retrieval across views is at chance.

    Parameters
    ----------
    message : str
        The warning's text.
    views : sequence of str, default=()
        Names of the constant views, as in the aligner's ``view_names_``.

    Attributes
    ----------
    views : tuple of str
        Names of the constant views: a caller that reports them in its own
        terms (a command naming its input files, say) reads them here rather
        than from the text.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from skembed import ProcrustesAligner
    >>> from skembed.exceptions import ConstantViewWarning
    >>> rng = np.random.default_rng(0)
    >>> A, B = rng.normal(size=(50, 3)), np.ones((50, 3))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     aligner = ProcrustesAligner().fit([A, B])
    >>> [w.message.views for w in caught if w.category is ConstantViewWarning]
    [('view1',)]
    """

    def __init__(self, message="", views=()):
        super().__init__(message)
        self.views = tuple(views)


class OutOfSpaceWarning(UserWarning):
    """Two sets of embeddings that should share a space do not seem to.

    Raised as a warning by :func:`skembed.metrics.check_same_space` (with
    ``action="warn"``) when paired rows of A and B are no more similar than
    random pairs, or do not retrieve each other better than chance:
    typically embeddings from two different models compared directly. Fit
    an aligner (for example :class:`skembed.ProcrustesAligner`) on paired
    rows and compare the aligned outputs instead.
    """


class UnsupervisedAlignmentWarning(UserWarning):
    """Unsupervised alignment of two pools is unlikely to succeed.

    Raised by :class:`skembed.SelfLearningAligner` when it is fitted without known
    pairs and its pre-flight check finds that the initial dictionary is no
    more consistent with a single map than random pairs are, or when the
    map it found (with or without known pairs) explains the pools' unseen
    rows poorly (``confidence_`` below 0.5). Provide a few dozen known pairs
    with ``fit(X, pairs=...)``.
    """
