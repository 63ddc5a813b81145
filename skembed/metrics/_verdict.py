"""Same space or not: a cheap guard and a verdict with the numbers behind it.

This is the only part of :mod:`skembed.metrics` that fits aligners; it
imports them from above, never the other way round.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import math
import textwrap
from dataclasses import asdict, dataclass
from fractions import Fraction
from numbers import Integral, Real

import numpy as np
from scipy.stats import binom
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from skembed._cca import CCAAligner
from skembed._neighbors import first_pair_copies, retrieval_accuracy
from skembed._params import validate_params
from skembed._procrustes import ProcrustesAligner
from skembed._stats import chunk_rows
from skembed._warnings import warn
from skembed.exceptions import OutOfSpaceWarning
from skembed.metrics._similarity import (
    check_paired,
    linear_cka,
    paired_cosine,
    partner_cosines,
)

__all__ = [
    "SpaceComparison",
    "check_same_space",
    "compare_spaces",
    "retrieval_above_chance",
]

# compare_spaces / check_same_space: significance level of "above chance", and
# the share of the best alignment's above-chance skill that raw vectors must
# reach to be called the same space.
_CHANCE_ALPHA = 1e-3
_SAME_SPACE_SHARE = 0.9


def constant_input_text(name, n_rows, source=None):
    """Why input ``name`` (read from ``source``, if given) cannot be aligned:
    its ``n_rows`` training rows are one vector, up to rounding."""
    shown = name if source is None else f"{name} ({source})"
    return (
        f"{shown} is constant over the {n_rows} training rows (every row the "
        "same vector, up to rounding): no aligner can learn from it. Check "
        f"that {name} holds the embeddings."
    )


class ConstantInputError(ValueError):
    """One of ``compare_spaces``'s inputs is constant over its training rows.

    A ValueError, as for any bad input. Its fields, ``name`` ("A" or "B")
    and ``n_rows`` (the training rows drawn), let a caller name the input in
    its own terms (the command line names the file) without reading the
    text.
    """

    def __init__(self, name, n_rows):
        super().__init__(constant_input_text(name, n_rows))
        self.name = name
        self.n_rows = n_rows

    def __reduce__(self):
        return (type(self), (self.name, self.n_rows))


def _random_partners(n, rng):
    """A random derangement: row i is paired with partner[i] != i (n >= 2)."""
    order = rng.permutation(n)
    partner = np.empty(n, dtype=np.int64)
    partner[order] = np.roll(order, -1)
    return partner


def _above_chance(accuracy, n):
    """Whether a top-1 accuracy among n candidates shows a real pairing.

    Two conditions, both relative to chance c = 1/n: the accuracy reaches the
    geometric midpoint sqrt(c) between chance and perfect retrieval (the
    partner is found with at least half of the log2(n) bits that identify it),
    and its hit count is significant against Binomial(n, c) at level 1e-3
    (which only binds for small n).
    """
    accuracy = float(accuracy)
    chance = 1.0 / n
    # The accuracy is usually a hit count over n, or the mean of two (over
    # 2n): read back as that exact fraction (two such fractions differ by at
    # least 1/(4 n^2), far more than its rounding), the test a >= sqrt(1/n)
    # is n a^2 >= 1 in exact arithmetic. In floats, 100 hits of 2 x 2,500
    # came out one rounding step below 0.02 and were judged at chance. Any
    # other accuracy (0.0999 of 100) is taken as the float it is.
    exact = Fraction(accuracy).limit_denominator(2 * n)
    if not math.isclose(float(exact), accuracy, rel_tol=1e-14):
        exact = Fraction(accuracy)
    # The hits tested are the whole ones: the mean of two directions may
    # hold half a hit (5.5 of 10), which rounded to even counted as 6 and
    # passed below the threshold that needed_retrieval reports.
    hits = math.floor(exact * n)
    significant = hits > 0 and binom.sf(hits - 1, n, chance) < _CHANCE_ALPHA
    return bool(n * exact * exact >= 1 and significant)


def retrieval_above_chance(accuracy, n_candidates):
    """Whether a top-1 retrieval accuracy shows a recovered pairing.

    The rule of :func:`compare_spaces`, for other parts of skembed (the
    command line judges a fitted map with it): the accuracy among
    ``n_candidates`` reaches ``sqrt(1 / n_candidates)`` and its hit count is
    significant against chance at level 1e-3.

    Parameters
    ----------
    accuracy : float
        Top-1 retrieval accuracy, in [0, 1].
    n_candidates : int
        Number of rows searched (chance is ``1 / n_candidates``).

    Returns
    -------
    above : bool
        True when the pairing counts as recovered.

    Examples
    --------
    >>> from skembed.metrics._verdict import retrieval_above_chance
    >>> retrieval_above_chance(0.9, 100), retrieval_above_chance(0.02, 100)
    (True, False)
    """
    return _above_chance(accuracy, n_candidates)


def needed_retrieval(n_candidates):
    """The smallest top-1 accuracy that :func:`retrieval_above_chance` accepts.

    Both of its rules (at least ``sqrt(1 / n)``, and significant at 1e-3) are
    monotone in the accuracy: a bisection over the half hit counts, since
    the mean of two directions' accuracies may hold half a hit.

    Parameters
    ----------
    n_candidates : int
        Number of rows searched.

    Returns
    -------
    needed : float or None
        None when no accuracy, not even 1.0, is significant (1 to 3
        candidates).

    Examples
    --------
    >>> from skembed.metrics._verdict import needed_retrieval
    >>> needed_retrieval(10), needed_retrieval(10_000)
    (0.6, 0.01)
    """
    n = int(n_candidates)
    if not _above_chance(1.0, n):
        return None
    low, high = 0, 2 * n
    while low < high:
        middle = (low + high) // 2
        if _above_chance(middle / (2 * n), n):
            high = middle
        else:
            low = middle + 1
    return low / (2 * n)


def _fewest_rows():
    """The fewest candidates among which retrieval can be above chance."""
    n = 2
    while needed_retrieval(n) is None:
        n += 1
    return n


def _needed_text(n):
    needed = needed_retrieval(n)
    return "n/a (too few rows)" if needed is None else f"{needed:.4f}"


def _check_cosine_widths(A, B, caller):
    """Refuse one-column embeddings, whose cosines are all +1 or -1."""
    if min(A.shape[1], B.shape[1]) < 2:
        raise ValueError(
            f"{caller} ranks rows by cosine, which needs at least 2 columns: "
            "with one, every cosine is +1 or -1 and no row can be told from "
            f"another. A has {A.shape[1]} and B has {B.shape[1]} columns."
        )


def _distinct_pairs(A, B):
    """A and B without the rows that repeat an earlier pair, and how many.

    A repeated item (a query logged twice, a label embedded once per row)
    ties with its own copy in retrieval, and ties go to the lower row: its
    later copies would count as misses even between identical inputs (an
    identical A and B of 20 items on 2,000 rows retrieved 0.04 and were
    called not alignable). Its copies would also fall on both sides of a
    train/test split. Each distinct pair is counted once.
    """
    first = first_pair_copies(A, B)
    keep = first == np.arange(A.shape[0])
    if keep.all():
        return A, B, 0
    return A[keep], B[keep], int(A.shape[0] - keep.sum())


def _repeats_text(n_repeated):
    return (
        f" ({n_repeated} rows repeating an earlier pair, both vectors identical, "
        "were counted once)"
        if n_repeated
        else ""
    )


def _repeats_note(n_repeated):
    if not n_repeated:
        return ""
    return (
        f" {n_repeated} rows repeated an earlier pair (both vectors identical) "
        "and were counted once: a repeated item ties with its own copy in "
        "retrieval."
    )


def _two_way_retrieval(A, B):
    return 0.5 * (retrieval_accuracy(A, B) + retrieval_accuracy(B, A))


@validate_params(
    {
        "A": ["array-like"],
        "B": ["array-like"],
        "action": [StrOptions({"warn", "raise"})],
        "n_samples": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def check_same_space(A, B, *, action="warn", n_samples=1000, random_state=0):
    """Check cheaply whether row-paired embeddings A and B share one space.

    A guard for user code that is about to compare vectors of A with vectors
    of B directly (cosine, nearest neighbours), which is meaningful only when
    both come from the same model or were mapped into one space by an
    aligner. On a random subsample of paired rows it checks that

    1. A and B have the same width;
    2. paired rows are more similar than random pairs: the mean of
       ``cos(a_i, b_i) - cos(a_i, b_j)`` over rows, for a random partner j,
       exceeds three standard errors;
    3. raw top-1 retrieval (mean of A -> B and B -> A) is above chance by
       the rule of :func:`compare_spaces`: at least ``sqrt(1 / m)`` among the
       ``m`` subsampled rows and significant at level 1e-3.

    Rows that repeat an earlier pair (both vectors identical) are counted
    once: a repeated item would tie with its own copy in retrieval.

    Embeddings of two different models fail 2 and 3 (their raw retrieval is
    at chance level). Whether an aligner would still improve embeddings that
    pass is what :func:`compare_spaces` tells.

    Parameters
    ----------
    A : array-like of shape (n_rows, n_features_a)
        First set of embeddings.
    B : array-like of shape (n_rows, n_features_b)
        Second set; row i embeds the same item as row i of A.
    action : {"warn", "raise"}, default="warn"
        What to do when they do not look like one space: emit an
        :class:`OutOfSpaceWarning`, or raise a ValueError with the same
        message.
    n_samples : int, default=1000
        Number of paired rows to subsample (all rows if fewer).
    random_state : int, RandomState instance or None, default=0
        Subsample and random pairs; fixed by default so that a guard gives
        the same answer on every run.

    Returns
    -------
    same_space : bool
        True when all checks pass.

    Warns
    -----
    OutOfSpaceWarning
        With ``action="warn"`` when a check fails; the message gives the
        numbers and says what to do.

    See Also
    --------
    compare_spaces : The full comparison, including fitted alignments.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from scipy.stats import ortho_group
    >>> from skembed.metrics import check_same_space
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(500, 16))
    >>> check_same_space(A, A + 0.1 * rng.normal(size=A.shape))
    True
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_same_space(A, A @ ortho_group.rvs(16, random_state=0))
    False
    >>> print(caught[0].message)
    A and B do not look like embeddings of one space: ...
    """
    A, B = check_paired(A, B)
    _check_cosine_widths(A, B, "check_same_space")
    rng = check_random_state(random_state)
    n_repeated = 0
    if A.shape[1] == B.shape[1]:
        A, B, n_repeated = _distinct_pairs(A, B)
    n, p, q = A.shape[0], A.shape[1], B.shape[1]
    fewest = _fewest_rows()
    if p == q and min(n, n_samples) < fewest:
        # Even perfect retrieval among so few rows could be luck: identical
        # inputs would be called out of space.
        if n < fewest:
            raise ValueError(
                f"check_same_space needs at least {fewest} paired rows to tell one "
                f"space from two (among fewer, even perfect retrieval is not "
                f"significant), got {n}{_repeats_text(n_repeated)}."
            )
        raise ValueError(
            f"n_samples={n_samples} is too few to tell one space from two (among "
            f"fewer than {fewest} rows, even perfect retrieval is not "
            f"significant); set n_samples >= {fewest}."
        )
    advice = (
        "Vectors from different models must not be compared directly: fit an "
        "aligner on paired rows, e.g. aligner = skembed.ProcrustesAligner()"
        ".fit([A, B]), and compare aligner.transform_view(A, 0) with "
        "aligner.transform_view(B, 1); skembed.metrics.compare_spaces tells "
        "whether that works."
    )
    if p != q:
        reasons = f"A has {p} columns and B has {q}"
        same = False
    else:
        m = min(n, n_samples)
        rows = np.sort(rng.choice(n, size=m, replace=False)) if m < n else slice(None)
        A_sub, B_sub = A[rows], B[rows]
        paired = paired_cosine(A_sub, B_sub)
        unpaired = paired_cosine(A_sub, B_sub[_random_partners(m, rng)])
        gap = paired - unpaired
        standard_error = gap.std(ddof=1) / math.sqrt(m) if m > 1 else 0.0
        cosine_ok = bool(gap.mean() > 3 * standard_error)
        retrieval = _two_way_retrieval(A_sub, B_sub)
        retrieval_ok = _above_chance(retrieval, m)
        same = cosine_ok and retrieval_ok
        reasons = (
            f"paired rows have mean cosine {paired.mean():.3f} against "
            f"{unpaired.mean():.3f} for random pairs, and raw top-1 retrieval "
            f"is {retrieval:.4f} among {m} rows (chance {1 / m:.4f}, needed "
            f">= {_needed_text(m)}){_repeats_text(n_repeated)}"
        )
    if not same:
        message = f"A and B do not look like embeddings of one space: {reasons}. "
        message += advice
        if action == "raise":
            raise ValueError(message)
        warn(message, OutOfSpaceWarning)
    return same


_VERDICTS = ("same space", "different spaces, alignable", "not linearly alignable")


def _skill(accuracy, chance):
    """Share of the way from chance to perfect retrieval."""
    return (accuracy - chance) / (1.0 - chance)


def _decide(raw, aligned, n_test):
    """The verdict of compare_spaces from held-out top-1 accuracies."""
    chance = 1.0 / n_test
    if raw is not None and _above_chance(raw, n_test):
        if _skill(raw, chance) >= _SAME_SPACE_SHARE * _skill(aligned, chance):
            return _VERDICTS[0]
    if _above_chance(aligned, n_test):
        return _VERDICTS[1]
    return _VERDICTS[2]


@dataclass(frozen=True)
class SpaceComparison:
    """Result of :func:`compare_spaces`: a verdict and the numbers behind it.

    ``str(result)`` prints a table; :meth:`to_dict` gives plain Python values
    for JSON.

    Attributes
    ----------
    verdict : str
        ``"same space"``, ``"different spaces, alignable"`` or
        ``"not linearly alignable"``.
    explanation : str
        One paragraph: why this verdict, and what to do.
    n_samples, n_train, n_test : int
        Distinct paired rows (see ``n_repeated``), those used to fit the
        aligners, and those held out.
    n_features : tuple of int
        Widths of A and B.
    chance : float
        Top-1 retrieval accuracy of a random ranking, ``1 / n_test``.
    signal_threshold : float
        The smallest held-out retrieval accuracy that counts as a recovered
        pairing: at least ``sqrt(chance)`` and significant against chance at
        level 1e-3 (which binds only for 30 held-out rows or fewer).
    paired_cosine, random_pair_cosine : float or None
        Mean raw cosine of paired rows and of random pairs (None when the
        widths differ).
    raw_retrieval : float or None
        Held-out top-1 retrieval between raw vectors (None when the widths
        differ).
    procrustes_retrieval : float
        Held-out top-1 retrieval after a centred :class:`ProcrustesAligner`.
    cca_retrieval : float
        The same after a :class:`CCAAligner` with as many components as the
        narrower width allows.
    linear_cka : float
        Linear CKA of A and B on all rows.
    n_repeated : int
        Rows that repeated an earlier pair (both vectors identical), left
        out of every number: a repeated item would tie with its own copy in
        retrieval and fall on both sides of the split. ``n_samples`` counts
        the distinct pairs.
    """

    verdict: str
    explanation: str
    n_samples: int
    n_train: int
    n_test: int
    n_features: tuple
    chance: float
    signal_threshold: float
    paired_cosine: float | None
    random_pair_cosine: float | None
    raw_retrieval: float | None
    procrustes_retrieval: float
    cca_retrieval: float
    linear_cka: float
    n_repeated: int = 0

    def to_dict(self):
        """The fields as a dict of plain Python values (JSON-serialisable).

        Returns
        -------
        result : dict
            Field name to value; ``n_features`` becomes a list.
        """
        out = asdict(self)
        out["n_features"] = list(self.n_features)
        return out

    def __str__(self):
        def fmt(value, digits=3):
            return "n/a" if value is None else f"{value:.{digits}f}"

        widths_differ = self.raw_retrieval is None
        raw_note = "widths differ" if widths_differ else ""
        rows = [
            (
                "paired cosine, raw (all rows)",
                fmt(self.paired_cosine),
                raw_note or f"random pairs {fmt(self.random_pair_cosine)}",
            ),
            (
                "top-1 retrieval, raw",
                fmt(self.raw_retrieval),
                f"chance {self.chance:.4f}" + (f", {raw_note}" if raw_note else ""),
            ),
            (
                "top-1 retrieval, Procrustes",
                fmt(self.procrustes_retrieval),
                f"pairing recovered if >= {self.signal_threshold:.4f}",
            ),
            (
                "top-1 retrieval, CCA",
                fmt(self.cca_retrieval),
                "",
            ),
            ("linear CKA (all rows)", fmt(self.linear_cka), ""),
        ]
        rule = "-" * 72
        lines = [
            f"A: {self.n_features[0]} features, B: {self.n_features[1]} features, "
            f"{self.n_samples} paired rows"
            + (f" ({self.n_repeated} repeats left out)" if self.n_repeated else ""),
            f"aligners fit on {self.n_train} rows; retrieval on {self.n_test} "
            "held-out rows, mean of A->B and B->A",
            rule,
            f"{'':32}{'value':>8}   reference",
        ]
        lines += [f"{name:32}{value:>8}   {ref}".rstrip() for name, value, ref in rows]
        lines += [rule, f"verdict: {self.verdict}"]
        lines += textwrap.wrap(self.explanation, 72)
        return "\n".join(lines)


def _rows(X, rows, dtype):
    """Rows ``rows`` of X in ``dtype``, cast a chunk at a time (floats only
    widen, so the cast is exact)."""
    if X.dtype == dtype:
        return X[rows]
    out = np.empty((rows.size, X.shape[1]), dtype=dtype)
    step = chunk_rows(8 * X.shape[1], "summary")
    for start in range(0, rows.size, step):
        out[start : start + step] = X[rows[start : start + step]]
    return out


def constant_rows(X, rows):
    """Whether the rows ``rows`` of X are all one vector, up to the rounding
    of X's dtype; read in chunks.

    Rows a few roundings apart (one vector, rounded differently by whatever
    stored it) tell no more than equal ones, and any map of them is as
    arbitrary: their spread about their mean is at most (8 eps)^2 times
    their sum of squares, the bound under which ProcrustesAligner calls a
    view constant. A spread above it is data, however small: rows of one
    vector plus 1e-9 times real embeddings align perfectly. The rows are
    scaled near 1 by a power of two, which is exact, so that squares of tiny
    or huge entries stay in float64's range.
    """
    eps = float(np.finfo(X.dtype if X.dtype.kind == "f" else np.float64).eps)
    # A gathered chunk and its float64 copy, worked on in place.
    step = chunk_rows((X.itemsize + 8) * X.shape[1], "summary")
    chunks = [rows[start : start + step] for start in range(0, rows.size, step)]
    peak = 0.0
    for part in chunks:
        gathered = X[part]
        peak = max(peak, float(gathered.max()), -float(gathered.min()))
    if peak == 0:
        return True
    exponent = int(np.frexp(peak)[1])

    def scaled(part):
        chunk = X[part].astype(np.float64, copy=False)
        return np.ldexp(chunk, -exponent, out=chunk)

    mean = sum(scaled(part).sum(axis=0) for part in chunks) / rows.size
    spread = squares = 0.0
    for part in chunks:
        chunk = scaled(part)
        squares += float(np.einsum("ij,ij->", chunk, chunk))
        chunk -= mean
        spread += float(np.einsum("ij,ij->", chunk, chunk))
    return spread <= (8 * eps) ** 2 * squares


def _aligned_retrieval(aligner, A, B, train, test, dtype):
    """Held-out two-way top-1 retrieval in an aligner's centred shared space.

    The training rows are gathered for the fit and freed before the
    held-out ones are: one copy of the rows at a time, not four.
    """
    aligner.fit([_rows(A, train, dtype), _rows(B, train, dtype)])
    # transform_view returns the centred shared space, where cosines compare
    # directions about the shared mean.
    Z_a = aligner.transform_view(_rows(A, test, dtype), 0)
    Z_b = aligner.transform_view(_rows(B, test, dtype), 1)
    return _two_way_retrieval(Z_a, Z_b)


def alignable_advice(method):
    """What the explanation of an alignable verdict advises doing: fit an
    aligner of ``method`` ("Procrustes" or "CCA") and compare through it.

    Python calls; the command line puts its own commands in their place.
    """
    return (
        f"fit an aligner such as skembed.{method}Aligner on paired rows and "
        "compare in its shared space (transform_view, or translate one model's "
        "vectors into the other's space)"
    )


# What the explanation advises when a linear map recovers the pairing only
# modestly, or not at all. The command line, which fits linear maps only,
# says it in its own words.
MODEST_ADVICE = "more training pairs or a non-linear aligner may help"
NOT_ALIGNABLE_ADVICE = "a non-linear aligner or more pairs may still help"


def _explain(
    verdict,
    *,
    raw,
    aligned,
    method,
    chance,
    bar,
    n_train,
    n_test,
    widths,
    paired,
    unpaired,
    cka,
    debiased_cka=None,
):
    cka_clause = f"linear CKA is {cka:.3f}"
    if debiased_cka is not None:
        # Plain CKA is biased towards 1 with few rows next to the widths
        # (0.66 on shuffled pairs of 60 fortunes); the debiased value is not.
        cka_clause += f" (debiased {debiased_cka:.3f})"
    if widths[0] != widths[1]:
        raw_clause = (
            f"their widths differ ({widths[0]} vs {widths[1]}), so raw vectors "
            "cannot be compared at all"
        )
    else:
        raw_clause = (
            f"raw top-1 retrieval between paired rows is {raw:.3f} (chance "
            f"{chance:.4f}) and paired rows have mean cosine {paired:.3f} against "
            f"{unpaired:.3f} for random pairs"
        )
    fit_clause = (
        f"a {method} map fitted on {n_train} pairs retrieves the partner of "
        f"{aligned:.1%} of {n_test} held-out rows"
    )
    if verdict == _VERDICTS[0]:
        return (
            f"A and B look like one embedding space: {raw_clause}. Raw retrieval "
            f"reaches at least {_SAME_SPACE_SHARE:.0%} of the above-chance retrieval "
            f"of the best linear alignment on the same held-out rows ({aligned:.3f}, "
            f"{method}), so aligning would not improve it materially. Comparing "
            "their vectors directly (cosine, nearest neighbours) is meaningful; "
            f"{cka_clause}."
        )
    if verdict == _VERDICTS[1]:
        text = (
            f"A and B are different embedding spaces: {raw_clause}. But {fit_clause} "
            f"(chance {chance:.4f}), so a linear alignment recovers the pairing. Do "
            f"not compare raw vectors across the two models: {alignable_advice(method)}"
            f"; {cka_clause}."
        )
        if aligned < 0.5:
            text += f" The held-out accuracy is still modest: {MODEST_ADVICE}."
        return text
    return (
        f"No linear relation between A and B was found: {raw_clause}, and {fit_clause}"
        f", not clearly above chance ({chance:.4f}; a recovered pairing needs >= "
        f"{_needed_text(n_test)}: at least {bar:.4f} and significant at level "
        f"{_CHANCE_ALPHA:g}); {cka_clause}. Check that the rows are paired "
        "(row i of A and of B embed the "
        "same item). If they are, the two models disagree beyond any linear map, "
        f"and their vectors cannot be compared; {NOT_ALIGNABLE_ADVICE}."
    )


@validate_params(
    {
        "A": ["array-like"],
        "B": ["array-like"],
        "test_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def compare_spaces(A, B, *, test_size=0.25, random_state=None):
    """Tell whether two row-paired embeddings share a space, or can be aligned.

    Row i of A and row i of B embed the same item with two models (or the
    same model twice). The function measures how well raw vectors retrieve
    their partners, fits linear aligners on a training split and measures
    retrieval on the held-out rows, and returns a verdict:

    - ``"same space"``: raw vectors can be compared directly;
    - ``"different spaces, alignable"``: raw comparisons are meaningless, but
      a linear map fitted on paired rows recovers the pairing;
    - ``"not linearly alignable"``: neither works.

    Parameters
    ----------
    A : array-like of shape (n_samples, n_features_a)
        Embeddings of the first model.
    B : array-like of shape (n_samples, n_features_b)
        Embeddings of the second model, row-paired with A. Widths may differ;
        then raw comparisons are impossible and so is ``"same space"``.
    test_size : float or int, default=0.25
        Held-out share (float in (0, 1)) or number (int) of rows on which
        every retrieval accuracy is measured; at least 10 rows.
    random_state : int, RandomState instance or None, default=None
        Train/test split and random pairs.

    Returns
    -------
    result : SpaceComparison
        The verdict, a one-paragraph explanation, and the numbers;
        ``print(result)`` shows a table.

    See Also
    --------
    check_same_space : A cheap guard without fitting aligners.
    retrieval_accuracy : The accuracy used throughout.

    Notes
    -----
    Numbers (retrievals are top-1, cosine, the mean of A -> B and B -> A, on
    the ``n_test`` held-out rows, chance ``c = 1 / n_test``):

    - raw paired cosine against the mean cosine of random pairs (all rows);
    - raw retrieval (equal widths only);
    - retrieval after a centred :class:`ProcrustesAligner` fitted on the
      training rows, and after a :class:`CCAAligner` with ``min(widths)``
      components when that aligner is available, both measured in the
      aligner's shared space about its common offset; ``aligned`` is the
      better of the two. A is the Procrustes aligner's reference: for
      views of different widths, swapping A and B fits another map and can
      move this number a little;
    - linear CKA on all rows (reported, not used by the verdict).

    Rules, all relative to chance or to the other numbers, none tuned to a
    data set:

    - an accuracy shows a *recovered pairing* when it reaches
      :math:`\\sqrt{c}`, the geometric midpoint between chance and perfect
      retrieval (in information terms: more than half of the
      :math:`\\log_2 n_{test}` bits that single out the partner), and its hit
      count is significant against Binomial(n_test, c) at level 1e-3 (which
      only binds for small test sets);
    - ``"same space"``: widths equal, raw retrieval shows a recovered
      pairing, and its skill :math:`(acc - c)/(1 - c)` is at least 90% of the
      skill of ``aligned``: the alignment would not improve the raw vectors
      materially;
    - ``"different spaces, alignable"``: otherwise, when ``aligned`` shows a
      recovered pairing;
    - ``"not linearly alignable"``: otherwise.

    Because retrieval among more candidates is harder, the bar
    :math:`\\sqrt{c}` falls as the test set grows; the explanation flags an
    alignable verdict whose held-out accuracy is below 0.5.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import ortho_group
    >>> from skembed.metrics import compare_spaces
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(800, 16))
    >>> B = A @ ortho_group.rvs(16, random_state=0) + 0.3 * rng.normal(size=A.shape)
    >>> result = compare_spaces(A, B, random_state=0)
    >>> result.verdict
    'different spaces, alignable'
    >>> compare_spaces(A, A + 0.3 * rng.normal(size=A.shape), random_state=0).verdict
    'same space'
    >>> compare_spaces(A, rng.normal(size=A.shape), random_state=0).verdict
    'not linearly alignable'
    >>> print(result)
    A: 16 features, B: 16 features, 800 paired rows
    aligners fit on 600 rows; retrieval on 200 held-out rows, mean of A->B and B->A
    ...
    verdict: different spaces, alignable
    A and B are different embedding spaces: ...
    """
    # Each side in its own dtype: the rows an aligner or a search reads are
    # gathered and cast to the common one when needed (exactly: floats only
    # widen), not both sides whole. The cosines and CKA cast every chunk to
    # float64 themselves.
    A, B = check_paired(A, B, one_dtype=False)
    dtype = np.result_type(A.dtype, B.dtype)
    _check_cosine_widths(A, B, "compare_spaces")
    A, B, n_repeated = _distinct_pairs(A, B)
    n = A.shape[0]
    widths = (A.shape[1], B.shape[1])
    rng = check_random_state(random_state)
    # The sizes train_test_split would draw (test rounded up, train down):
    # checked first, since its own message names train_size, which
    # compare_spaces does not take.
    if isinstance(test_size, Integral):
        n_test, n_train = int(test_size), n - int(test_size)
    else:
        n_test = math.ceil(test_size * n)
        n_train = math.floor((1 - test_size) * n)
    if n_test < 10 or n_train < 2:
        raise ValueError(
            f"compare_spaces needs at least 10 held-out and 2 training rows; "
            f"test_size={test_size!r} on {n} rows{_repeats_text(n_repeated)} gives "
            f"{min(n_test, n)} and {max(n_train, 0)}. Pass more rows or change "
            "test_size."
        )
    try:
        train, test = train_test_split(
            np.arange(n), test_size=test_size, random_state=rng.randint(2**31 - 1)
        )
    except ValueError as exc:
        # An int test_size of at least the rows left, or a split leaving no
        # training row: sklearn's message, with the rows counted here.
        raise ValueError(
            f"compare_spaces cannot split {n} paired rows"
            f"{_repeats_text(n_repeated)} with test_size={test_size!r}: {exc}"
        ) from exc
    if test.size < 10 or train.size < 2:
        raise ValueError(
            f"compare_spaces needs at least 10 held-out and 2 training rows; "
            f"test_size={test_size!r} on {n} rows{_repeats_text(n_repeated)} gives "
            f"{test.size} and {train.size}. Pass more rows or change test_size."
        )
    train.sort()
    test.sort()
    for name, X in (("A", A), ("B", B)):
        if constant_rows(X, train):
            raise ConstantInputError(name, train.size)
    n_test = test.size
    chance = 1.0 / n_test

    paired = unpaired = raw = None
    if widths[0] == widths[1]:
        paired = float(partner_cosines(A, B).mean())
        unpaired = float(partner_cosines(A, B, _random_partners(n, rng)).mean())
        raw = _two_way_retrieval(_rows(A, test, dtype), _rows(B, test, dtype))

    procrustes = _aligned_retrieval(ProcrustesAligner(), A, B, train, test, dtype)
    # CCA has at most min(widths, n_train - 1) canonical directions.
    cca = _aligned_retrieval(
        CCAAligner(n_components=min(*widths, train.size - 1)),
        A,
        B,
        train,
        test,
        dtype,
    )
    if cca > procrustes:
        aligned, method = cca, "CCA"
    else:
        aligned, method = procrustes, "Procrustes"
    cka = linear_cka(A, B)
    try:
        debiased_cka = linear_cka(A, B, debiased=True) if n >= 4 else None
    except ValueError:
        # Not positive: too few distinct rows for the unbiased estimate.
        # It is reported, never used by the verdict.
        debiased_cka = None
    verdict = _decide(raw, aligned, n_test)
    explanation = _explain(
        verdict,
        raw=raw,
        aligned=aligned,
        method=method,
        chance=chance,
        bar=math.sqrt(chance),
        n_train=train.size,
        n_test=n_test,
        widths=widths,
        paired=paired,
        unpaired=unpaired,
        cka=cka,
        debiased_cka=debiased_cka,
    ) + _repeats_note(n_repeated)
    return SpaceComparison(
        verdict=verdict,
        explanation=explanation,
        n_samples=n,
        n_train=int(train.size),
        n_test=int(n_test),
        n_features=widths,
        chance=chance,
        signal_threshold=needed_retrieval(n_test),
        paired_cosine=paired,
        random_pair_cosine=unpaired,
        raw_retrieval=raw,
        procrustes_retrieval=procrustes,
        cca_retrieval=cca,
        linear_cka=cka,
        n_repeated=n_repeated,
    )
