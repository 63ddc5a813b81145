"""The warnings skembed raises, in one public module.

Filter them like any Python warning, for example
``warnings.simplefilter("error", skembed.exceptions.OutOfSpaceWarning)``.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from sklearn.exceptions import ConvergenceWarning

__all__ = [
    "ConstantViewWarning",
    "OutOfSpaceWarning",
    "SelfLearningConvergenceWarning",
    "UnsupervisedAlignmentWarning",
]


class _FieldsKept:
    """Keeps a warning's fields (its instance attributes) when it is pickled.

    Exceptions pickle their message only, so a copy, or a warning carried
    back from a worker process, would come back with the defaults.
    """

    def _fields(self):
        """The warning's fields by name (not Python's own, such as notes)."""
        return {name: value for name, value in vars(self).items() if name[0] != "_"}

    def __reduce__(self):
        return (_rebuilt, (type(self), str(self), self._fields()))


def _rebuilt(cls, message, fields):
    """A warning of class ``cls`` with its text and fields, as pickled."""
    warning = cls(message)
    vars(warning).update(fields)
    return warning


class ConstantViewWarning(_FieldsKept, UserWarning):
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


class UnsupervisedAlignmentWarning(_FieldsKept, UserWarning):
    """Unsupervised alignment of two pools is unlikely to succeed.

    Raised by :class:`skembed.SelfLearningAligner` when it is fitted without known
    pairs and its pre-flight check finds that the initial dictionary is no
    more consistent with a single map than random pairs are, or when the
    map it found (with or without known pairs) explains the pools' unseen
    rows poorly (``confidence_`` below 0.5). Provide a few dozen known pairs
    with ``fit(X, pairs=...)``.

    Parameters
    ----------
    message : str
        The warning's text.
    reason : str or None, default=None
        What the fit found, for a caller that reports it in its own terms:

        - ``"no_shared_structure"``: the pre-flight check failed
          (``isomorphism_score`` is set);
        - ``"too_few_rows"``: the pools hold too few distinct rows to judge
          a map found without pairs (``n_distinct_rows``; the confidence is
          NaN);
        - ``"first_pool_too_small"``: the first pool is too small beside the
          second for the confidence to tell (NaN);
        - ``"little_room"``: most held-out rows find a mutual partner under
          any map in pools this small (``n_distinct_rows``), so the
          confidence cannot tell a map from noise (NaN);
        - ``"starts_agree"``: the confidence is low, but independent starts
          agree (``start_agreement``), so the map may be partly right;
        - ``"low_confidence"``: the confidence is low and no starts agree;
        - ``"known_pairs_disagree"``: the map fitted from ``n_known_pairs``
          known pairs explains the pools' other rows poorly.
    confidence, start_agreement, isomorphism_score : float or None, \
            default=None
        The fit's ``confidence_``, ``start_agreement_`` and
        ``isomorphism_score_`` when it warned (None where it had none).
    n_known_pairs : int or None, default=None
        The number of known pairs the map came from (reason
        ``"known_pairs_disagree"``).
    n_distinct_rows : int or None, default=None
        Distinct rows in the pool that has fewest, which the confidence
        judges (the fits without known pairs).

    Attributes
    ----------
    reason : str or None
        What the fit found, as given.
    confidence : float or None
        The fit's ``confidence_``, as given.
    start_agreement : float or None
        The fit's ``start_agreement_``, as given.
    isomorphism_score : float or None
        The fit's ``isomorphism_score_``, as given.
    n_known_pairs : int or None
        The number of known pairs, as given.
    n_distinct_rows : int or None
        Distinct rows of the pool that has fewest, as given.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from skembed import SelfLearningAligner
    >>> from skembed.exceptions import UnsupervisedAlignmentWarning
    >>> rng = np.random.default_rng(0)
    >>> A, B = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     aligner = SelfLearningAligner(random_state=0).fit([A, B])
    >>> [w.message.reason for w in caught
    ...  if w.category is UnsupervisedAlignmentWarning]
    ['low_confidence']
    """

    def __init__(
        self,
        message="",
        reason=None,
        *,
        confidence=None,
        start_agreement=None,
        isomorphism_score=None,
        n_known_pairs=None,
        n_distinct_rows=None,
    ):
        super().__init__(message)
        self.reason = reason
        self.confidence = confidence
        self.start_agreement = start_agreement
        self.isomorphism_score = isomorphism_score
        self.n_known_pairs = n_known_pairs
        self.n_distinct_rows = n_distinct_rows


class SelfLearningConvergenceWarning(_FieldsKept, ConvergenceWarning):
    """Self-learning rounds stopped before the dictionary settled.

    Raised by :class:`skembed.SelfLearningAligner` when its rounds reach
    ``n_iter`` with the dictionary still changing by more than ``tol``. The
    map of the last round is kept. A
    :class:`sklearn.exceptions.ConvergenceWarning`: filters on that class
    catch it too.

    Parameters
    ----------
    message : str
        The warning's text.
    stage : {"dictionary", "neighbourhood"} or None, default=None
        Which rounds: those that induce the dictionary from mutual matches,
        or the neighbourhood rounds that refine an untrusted map.
    n_iter : int or None, default=None
        The number of rounds allowed (the ``n_iter`` parameter).
    change : float or None, default=None
        The share of the dictionary that changed in the last round.
    tol : float or None, default=None
        The ``tol`` parameter.

    Attributes
    ----------
    stage : str or None
        Which rounds, as given.
    n_iter : int or None
        The number of rounds allowed, as given.
    change : float or None
        The last round's change, as given.
    tol : float or None
        The tolerance, as given.
    """

    def __init__(self, message="", stage=None, *, n_iter=None, change=None, tol=None):
        super().__init__(message)
        self.stage = stage
        self.n_iter = n_iter
        self.change = change
        self.tol = tol
