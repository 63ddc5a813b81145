"""The warnings skembed raises, in one public module.

Filter them like any Python warning, for example
``warnings.simplefilter("error", skembed.exceptions.OutOfSpaceWarning)``.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

__all__ = ["OutOfSpaceWarning", "UnsupervisedAlignmentWarning"]


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
