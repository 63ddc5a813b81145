"""Whether a map fitted by ``skembed align`` is worth using.

One function, :func:`fit_quality`, decides it, so that the command line has
one rule:

- with held-out pairs, the map must retrieve the partners of held-out rows
  better than chance, by the rule of :func:`skembed.metrics.compare_spaces`
  (top-1 accuracy at least ``sqrt(1 / n)`` among ``n`` held-out rows, and
  significant at level 1e-3);
- without pairs (self-learning started unsupervised) there is nothing to
  hold out, and a label-free score of the fitted aligner decides:
  :data:`LABEL_FREE_SCORE`.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import math
from dataclasses import dataclass

from skembed._unsupervised import MIN_AGREEMENT, MIN_CONFIDENCE, MIN_JUDGED_ROWS
from skembed.metrics import retrieval_accuracy
from skembed.metrics._verdict import needed_retrieval, retrieval_above_chance

__all__ = ["LABEL_FREE_SCORE", "Quality", "fit_quality"]

# The label-free score that judges a fit without held-out pairs, and the
# value below which the map is not worth using: the attribute of the fitted
# aligner and its threshold (SelfLearningAligner warns below the same value).
# ``confidence_`` is set by every start without pairs and is calibrated
# against two samples of one pool (what a map that pairs nothing reaches).
# To judge by another score, change this one line.
LABEL_FREE_SCORE = ("confidence_", MIN_CONFIDENCE)


@dataclass(frozen=True)
class Quality:
    """The verdict on a fitted map: a figure for people and a decision.

    Attributes
    ----------
    usable : bool
        Whether the map is better than chance.
    figure : str
        The measured figure with its reference, for the summary.
    reason : str
        One line saying why the map is not worth using (empty if usable).
    """

    usable: bool
    figure: str
    reason: str = ""


def _two_way(aligner, A, B):
    Z_a = aligner.transform_view(A, 0)
    Z_b = aligner.transform_view(B, 1)
    return 0.5 * (retrieval_accuracy(Z_a, Z_b) + retrieval_accuracy(Z_b, Z_a))


def _known_pairs_quality(score, threshold, known_pairs):
    """The verdict on a map fitted from known pairs, none held out."""
    figure = (
        f"not checked on held-out pairs (--test-size 0); label-free confidence "
        f"{score:.3f} with {known_pairs} known pairs"
    )
    if not score < threshold:
        # High, or nan (pools too small to judge): unchecked, as the user
        # asked, like any map fitted with --test-size 0.
        return Quality(True, figure)
    return Quality(
        False,
        f"{figure} (a usable map needs >= {threshold:g})",
        f"the fitted map could not be confirmed: its label-free confidence is "
        f"{score:.3f} < {threshold:g} with {known_pairs} known pairs and none "
        "held out (low for wrong pairs, and for files of different items even "
        "when the map is right); check that the pairs give a row of A then a "
        "row of B, and hold some out for a check (--test-size)",
    )


def fit_quality(aligner, held_out=None, *, known_pairs=None):
    """Judge a fitted two-view aligner.

    Parameters
    ----------
    aligner : fitted aligner
        Its view 0 embeds the rows of A, view 1 those of B.
    held_out : tuple (A_test, B_test) or None
        Row-paired held-out embeddings, not used in the fit. None judges by
        :data:`LABEL_FREE_SCORE` instead.
    known_pairs : int or None
        Without ``held_out``: the number of known pairs the map was fitted
        from (None: none), whose label-free score then judges it.

    Returns
    -------
    quality : Quality
    """
    if held_out is not None:
        A_test, B_test = held_out
        n = A_test.shape[0]
        accuracy = _two_way(aligner, A_test, B_test)
        chance = 1.0 / n
        needed = needed_retrieval(n)
        if needed is None:
            figure = (
                f"held-out top-1 retrieval {accuracy:.3f} on {n} pairs not used in "
                "the fit; on so few pairs no accuracy is significant at 1e-3"
            )
            return Quality(
                False,
                figure,
                f"the fitted map cannot be judged: {n} held-out pairs are too few "
                "for any top-1 retrieval to be significant at 1e-3; hold out more "
                "pairs (--test-size)",
            )
        figure = (
            f"held-out top-1 retrieval {accuracy:.3f} on {n} pairs not used in the "
            f"fit, mean of A->B and B->A (chance {chance:.4f}; a recovered "
            f"pairing needs >= {needed:.4f}: at least {math.sqrt(chance):.4f} "
            "and significant at 1e-3)"
        )
        if retrieval_above_chance(accuracy, n):
            return Quality(True, figure)
        return Quality(
            False,
            figure,
            f"the fitted map is no better than chance: held-out top-1 retrieval "
            f"{accuracy:.3f} on {n} pairs (chance {chance:.4f}, needed >= "
            f"{needed:.4f}, at least sqrt(chance) and significant at 1e-3); "
            "check that the rows are paired, or pass more pairs",
        )
    attribute, threshold = LABEL_FREE_SCORE
    score = getattr(aligner, attribute, None)
    if score is None:
        raise ValueError(
            f"{type(aligner).__name__} has no {attribute}; pass held-out pairs."
        )
    if known_pairs is not None:
        return _known_pairs_quality(score, threshold, known_pairs)
    # In the command's words: the attribute's name is Python's.
    named = f"label-free {attribute.rstrip('_')}"
    figure = (
        f"{named} {score:.3f} (no known pairs to hold "
        f"out; a usable map needs >= {threshold:g})"
    )
    if score >= threshold:
        return Quality(True, figure)
    if score != score:
        return Quality(
            False,
            figure,
            f"the fitted map cannot be judged: without known pairs, {named} "
            f"is nan (pools under {MIN_JUDGED_ROWS} distinct rows, a first pool "
            "much smaller than the second, or small pools whose rows mostly find "
            "a partner under any map, cannot tell a map from noise); pass a few "
            "dozen known pairs with --pairs",
        )
    agreement = getattr(aligner, "start_agreement_", None)
    if agreement is not None and agreement >= MIN_AGREEMENT:
        # Starts that fail share almost none of their pairs; the map's start
        # met another on one map, which on files of different items is partly
        # right while the confidence stays low. Not usable unchecked, but not
        # chance either.
        return Quality(
            False,
            figure,
            f"the fitted map could not be verified: without known pairs, "
            f"{named} is {score:.3f} < {threshold:g}, but its start and "
            f"another independent start agree on {agreement:.0%} of their pairs, "
            "so it may be partly right "
            "(as on files of different items), or the starts only lined up the "
            "files' principal axes (as on unrelated files whose variance lies in a "
            "few directions); check it with a few dozen known pairs (--pairs)",
        )
    return Quality(
        False,
        figure,
        f"the fitted map is likely no better than chance: without known pairs, "
        f"{named} is {score:.3f} < {threshold:g} (the two files show no "
        "structure a map could align); pass a few dozen known pairs with --pairs",
    )
