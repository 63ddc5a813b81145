"""Self-learning alignment of two embedding pools from few known pairs, or none.

Closed-form aligners need row-paired views. Often only a handful of items are
known to be shared: a few hundred documents re-embedded with a new model next
to an index built with the old one, or two vector stores over overlapping
corpora. Cross-lingual word-embedding mapping solved this with self-learning
(Artetxe et al., 2017, 2018; Conneau et al., 2018): fit a map on the known
pairs, induce new pairs over the pools as mutual nearest neighbours in the
shared space, refit, and repeat until the dictionary stops changing. Without
any known pair, the loop starts from VecMap's unsupervised initialisation,
which matches rows by the distribution of their similarities within their own
space.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import copy
import dataclasses
from numbers import Integral, Real

import numpy as np
from sklearn import get_config
from sklearn.base import _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from skembed._affine import AFFINE_STATE, AffineMapMixin
from skembed._base import VIEW_OPTIONAL, VIEW_STATE, BaseAligner, state_kept_on_error
from skembed._linear import RidgeAligner
from skembed._neighbors import mutual_matches, retrieval_accuracy
from skembed._procrustes import ProcrustesAligner
from skembed._stats import unit_rows
from skembed._unsupervised import (
    MIN_AGREEMENT,
    MIN_CONFIDENCE,
    MIN_JUDGED_ROWS,
    changed_share,
    check_anchors,
    distinct_rows,
    first_distinct,
    fit_on_pairs,
    fit_without_pairs,
    is_pairwise_start,
    leading_score,
    neighbourhood_rounds,
    pair_codes,
    run_confidence,
    with_swapped_roles,
)
from skembed._verbose import say
from skembed._views import check_views, check_y_is_not_a_view
from skembed._warnings import held_warnings, issue_again, warn
from skembed.exceptions import (
    SelfLearningConvergenceWarning,
    UnsupervisedAlignmentWarning,
)

__all__ = ["SelfLearningAligner"]

# Default budget, in MiB, of one block of scores (scikit-learn's
# working_memory when that is smaller).
_DEFAULT_WORKING_MEMORY = 256

# Starting keep probability of stochastic dictionary induction (VecMap's
# published default for its unsupervised mode).
_KEEP_PROB_START = 0.1

# Sorted similarity rows are averaged into this many bins before matching.
_N_QUANTILES = 256

# Directions of the shared space along which the dictionary's mapped rows
# vary less than this fraction of their largest variance are undetermined by
# the dictionary: far above rounding (about 1e-16 here), far below the spread
# of real data.
_DETERMINED_TOL = 1e-10

# With base=None the returned map is either the orthogonal default or a ridge
# regression of view 1 onto view 0, whichever retrieves the final
# dictionary's pairs better when fitted on one half of them and scored on the
# other (see SelfLearningAligner._final_map). Below this many pairs in a half
# the orthogonal map is kept without a trial: a top-1 share of a few dozen
# pairs cannot tell two maps apart.
_MIN_TRIAL_PAIRS = 50

# Random halvings of the final dictionary in the trial of the two maps when
# the map is untrusted and the neighbourhood rounds refine it next (see
# _orthogonal_wins): one halving's gap between the two maps' scores differs
# from the next's by a few thousandths (standard deviation 0.004 on the
# dictionary measured there).
_UNTRUSTED_TRIALS = 5

# ... and the margin (in top-1 retrieval of held-out dictionary pairs) by
# which the orthogonal map must win them, on their mean, to be kept.
_ORTHOGONAL_MARGIN = 0.02

# Warn when the initial dictionary of an unsupervised start is explained by a
# map less than this much better than a random dictionary (0 = chance, 1 = all
# pairs explained).
_MIN_ISOMORPHISM_SCORE = 0.1
# ... judged only when a single map explains at most this share of a random
# dictionary.
_UNINFORMATIVE_CHANCE = 0.5


@dataclasses.dataclass(frozen=True)
class WarningTerms:
    """How the self-learning warnings name the fit, its scores and remedies.

    The warnings carry their findings as fields
    (:class:`~skembed.exceptions.UnsupervisedAlignmentWarning`,
    :class:`~skembed.exceptions.SelfLearningConvergenceWarning`);
    :func:`untrusted_text` and :func:`unsettled_text` put them in words, in
    Python's terms here (``PYTHON_TERMS``) and in a command's terms there.
    The ``{}`` of a field is filled with the number it names.
    """

    who: str
    confidence: str
    agreement: str
    isomorphism: str
    first_pool_small: str
    larger_first: str
    known_pairs: str
    warm_start: str
    rounds: str
    tol: str
    more_rounds: str


PYTHON_TERMS = WarningTerms(
    who="SelfLearningAligner",
    confidence="confidence_={:.3f}",
    agreement=" (start_agreement_ >= {})",
    isomorphism="isomorphism_score_={:.3f}",
    first_pool_small="the first pool is too small beside the second",
    larger_first="pass the larger pool first, or pools of similar sizes",
    known_pairs="Pass a few dozen known pairs with fit(X, pairs=...)",
    warm_start=", or a map fitted for the same two models as init",
    rounds="n_iter={} rounds",
    tol="tol={}",
    more_rounds="; increase n_iter or tol.",
)


def untrusted_text(
    terms,
    reason,
    *,
    confidence=None,
    start_agreement=None,
    isomorphism_score=None,
    n_known_pairs=None,
    n_distinct_rows=None,
):
    """The words of an :class:`UnsupervisedAlignmentWarning` with these fields."""
    if reason == "no_shared_structure":
        return (
            f"{terms.who} found no structure shared by the two views ("
            f"{terms.isomorphism.format(isomorphism_score)} < "
            f"{_MIN_ISOMORPHISM_SCORE}): the unsupervised start is unlikely to "
            f"align them. {terms.known_pairs}."
        )
    score = terms.confidence.format(confidence)
    if reason == "known_pairs_disagree":
        return (
            f"{terms.who}'s map from {n_known_pairs} known pairs explains the "
            f"pools' other rows poorly ({score} < {MIN_CONFIDENCE}). If both "
            "pools hold the same items, in any order, the map is at best partly "
            "right: check the known pairs, or pass more of them (a few dozen). "
            "Pools of different items keep the confidence low even for a right "
            "map: check it on known pairs left out of fit."
        )
    if reason == "too_few_rows":
        found = (
            f"pools of {n_distinct_rows} distinct rows are too few to judge a map "
            f"found without pairs: {score}, it needs {MIN_JUDGED_ROWS} distinct "
            "rows in each pool"
        )
    elif reason == "first_pool_too_small":
        found = (
            f"{terms.first_pool_small} to judge a map found without pairs: "
            f"{score}, since almost every held-out row finds a mutual partner "
            f"under any map; {terms.larger_first}"
        )
    elif reason == "little_room":
        found = (
            f"pools of {n_distinct_rows} distinct rows leave too little room to "
            f"judge a map found without pairs: {score}, since most held-out rows "
            "find a mutual partner under any map (pools of few rows, or of rows "
            "that vary in few directions); more rows leave more room"
        )
    elif reason == "starts_agree":
        found = (
            f"{score} < {MIN_CONFIDENCE}, but its start and another independent "
            f"start agree on {start_agreement:.0%} of their pairs"
            f"{terms.agreement.format(MIN_AGREEMENT)}, as starts that found "
            "shared structure do, so the map may be partly right (on pools of "
            "different items the confidence stays low even then), or the starts "
            "only lined up the pools' principal axes (unrelated pools whose "
            "variance lies in a few directions do that too); check it on a few "
            "known pairs before use"
        )
    elif reason == "low_confidence":
        found = (
            f"{score} < {MIN_CONFIDENCE}: the two pools may lack shared "
            "structure, be too small, or hold different items"
        )
    else:
        raise ValueError(f"no words for the reason {reason!r}")
    return (
        f"{terms.who} found no pairs-free map it can trust ({found}). "
        f"{terms.known_pairs}{terms.warm_start}."
    )


def unsettled_text(terms, stage, *, n_iter, change, tol):
    """The words of a :class:`SelfLearningConvergenceWarning` with these fields."""
    if stage == "dictionary":
        head = f"{terms.who} did not converge in"
        last = "last change of the dictionary"
    else:
        head = f"{terms.who}'s neighbourhood rounds did not settle in"
        last = "last change"
    return (
        f"{head} {terms.rounds.format(n_iter)} ({last} {change:.3g} > "
        f"{terms.tol.format(tol)}){terms.more_rounds}"
    )


def _warn_untrusted(reason, *, tail="", **fields):
    """Warn of an untrusted map, its findings as the warning's fields."""
    text = untrusted_text(PYTHON_TERMS, reason, **fields) + tail
    warn(UnsupervisedAlignmentWarning(text, reason, **fields))


def _warn_unsettled(stage, **fields):
    """Warn of rounds that did not settle, their numbers as the warning's fields."""
    text = unsettled_text(PYTHON_TERMS, stage, **fields)
    warn(SelfLearningConvergenceWarning(text, stage, **fields))


def _check_pairs(pairs, n_rows):
    """Validate ``pairs`` against the pool sizes; return an (m, 2) int64 array."""
    if isinstance(pairs, str | bytes):
        raise ValueError(
            "pairs must be an (n_pairs, 2) array of integer row indices, got the "
            f"string {pairs!r}."
        )
    try:
        array = np.asarray(pairs)
        if array.dtype == object and hasattr(pairs, "to_numpy"):
            # pandas' nullable integers (Int64) become objects through asarray.
            array = np.asarray(pairs.to_numpy(dtype=np.float64, na_value=np.nan))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "pairs must be an (n_pairs, 2) array of integer row indices (row in "
            "view 0, row in view 1); it could not be converted to an array."
        ) from exc
    if array.shape in ((0,), (0, 2)):
        return np.empty((0, 2), dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(
            "pairs must have shape (n_pairs, 2), one known pair (row in view 0, "
            f"row in view 1) per row; got shape {array.shape}."
        )
    if array.dtype.kind == "f":
        # Floats holding whole numbers are indices; NaN, infinity and
        # fractions are named (the dtype alone would not say what is wrong).
        whole = np.isfinite(array) & (np.round(array) == array)
        if not whole.all():
            raise ValueError(
                "pairs must hold integer row indices, got the value "
                f"{array[~whole][0].item()!r}."
            )
    elif array.dtype.kind not in "iu":
        raise ValueError(
            f"pairs must hold integer row indices, got an array of dtype {array.dtype}."
        )
    # The range is checked on the values given, before the cast to int64,
    # which would wrap 1e30 or a uint64 beyond 2**63 to a negative number.
    for k in range(2):
        column = array[:, k]
        outside = (column < 0) | (column >= n_rows[k])
        if outside.any():
            # As many pairs as rows: the mark of pairs routed through a
            # splitter, which cuts them as if they were one per row of X.
            hint = (
                " pairs has one row per row of X, as pairs cut by a splitter "
                "would: cross_validate and GridSearchCV fit on some rows of X "
                "and hand fit the pairs of those positions, whose indices still "
                "count all rows; fit on the whole pools instead."
                if array.shape[0] == n_rows[0]
                else ""
            )
            raise ValueError(
                f"pairs[:, {k}] must index rows of view {k}, which has {n_rows[k]} "
                f"rows (0 to {n_rows[k] - 1}); got {column[outside][0].item()}." + hint
            )
    array = array.astype(np.int64)
    for k in range(2):
        column = array[:, k]
        values, counts = np.unique(column, return_counts=True)
        if (counts > 1).any():
            raise ValueError(
                f"pairs must be one-to-one, but row {values[counts > 1][0]} of view "
                f"{k} appears {counts[counts > 1][0]} times in pairs[:, {k}]; keep "
                "one pair per row."
            )
    if array.shape[0] < 2:
        raise ValueError(
            "pairs holds 1 pair, but a map needs at least 2; pass more pairs, or "
            "pairs=None for the unsupervised start."
        )
    return array


def _best_matches(Z0, Z1, csls_k, *, working_memory, keep_prob=1.0, random_state=None):
    """Best CSLS partner of every row of each pool in the other pool.

    Returns ``forward`` (best row of Z1 for each row of Z0), ``backward``
    (best row of Z0 for each row of Z1) and their CSLS scores. With
    ``keep_prob < 1`` every score is dropped with probability ``1 - keep_prob``
    before the best is taken (stochastic dictionary induction, Artetxe et al.,
    2018), with random numbers drawn from a generator seeded by
    ``random_state``.
    """
    generator = None
    if keep_prob < 1:
        generator = np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return mutual_matches(
        Z0,
        Z1,
        csls_k,
        keep_prob=keep_prob,
        generator=generator,
        working_memory=working_memory,
    )


def _mutual(forward, backward):
    """Pairs (i, forward[i]) whose partner's best match is i again."""
    rows = np.arange(forward.shape[0])
    mutual = rows[backward[forward] == rows]
    return np.column_stack([mutual, forward[mutual]])


def _union(forward, backward):
    """Pairs (i, forward[i]) and (backward[j], j), each once."""
    pairs = np.vstack(
        [
            np.column_stack([np.arange(forward.shape[0]), forward]),
            np.column_stack([backward, np.arange(backward.shape[0])]),
        ]
    )
    return np.unique(pairs, axis=0)


def _sorted_similarity_descriptors(block):
    """VecMap's descriptors of the rows of ``block`` (Artetxe et al., 2018).

    With the rows unit-normed, centred and unit-normed again, the s x s matrix
    :math:`\\sqrt{X X^\\top} = X (X^\\top X)^{-1/2} X^\\top` holds the
    similarities of every row to all others with the spectrum flattened;
    sorting each of its rows forgets the order of the others, so two
    isometric spaces give the same sorted row for the same item. Each sorted
    row (length s) is averaged over ``_N_QUANTILES`` equal bins, which keeps
    its shape (a smooth quantile curve) and makes the cross-space comparison
    s x s x 256 instead of s x s x s.
    """
    X = unit_rows(np.asarray(block, dtype=np.float64))
    X = unit_rows(X - X.mean(axis=0))
    # (X^T X)^{-1/4} from the d x d eigendecomposition; directions without
    # variance are dropped (pseudo-inverse).
    eigenvalues, eigenvectors = np.linalg.eigh(X.T @ X)
    keep = eigenvalues > eigenvalues.max(initial=0.0) * 1e-10
    B = X @ (eigenvectors[:, keep] * eigenvalues[keep] ** -0.25)
    M = B @ B.T
    M.sort(axis=1)
    size = M.shape[1]
    if _N_QUANTILES < size:
        edges = np.linspace(0, size, _N_QUANTILES + 1).astype(np.int64)
        M = np.add.reduceat(M, edges[:-1], axis=1) / np.diff(edges)[None, :]
    M = unit_rows(M)
    return unit_rows(M - M.mean(axis=0)).astype(np.float32)


def _determined_coordinates(Z, basis):
    """Coordinates of the rows of Z whose cosines ignore undetermined directions.

    Let P project onto the span of ``basis`` (the directions a dictionary
    determines) and write z = P z + r. A map that is fixed on that span but
    free on its complement can turn the residual of one row towards or away
    from any other's, so the cosine of x and z ranges up to
    :math:`(\\langle P x, P z\\rangle + \\|r_x\\| \\|r_z\\|) / (\\|x\\| \\|z\\|)`,
    reached by the most favourable completion. That bound is the plain cosine
    of the coordinates ``[Z basis, ||r||]``: it does not depend on the
    completion, keeps the norms, and equals 1 for an exact copy, even when
    the span is a single direction (where cosines of the projections alone
    are all +-1).
    """
    basis = basis.astype(Z.dtype, copy=False)
    inside = Z @ basis
    residual = np.linalg.norm(Z - inside @ basis.T, axis=1, keepdims=True)
    return np.hstack([inside, residual.astype(Z.dtype, copy=False)])


def _one_to_one(pairs):
    """The pairs whose rows of either view no earlier pair holds."""
    for k in range(2):
        pairs = pairs[first_distinct(pairs[:, [k]])]
    return pairs


def _trial(candidates, blocks, dictionary, halves):
    """Each candidate's top-1 retrieval of held-out dictionary pairs, or None.

    Each candidate is fitted on one half of the dictionary's pairs and
    retrieves the other half's (made one-to-one), then the other way round;
    the score is the mean of the two. None when a half holds fewer than
    ``_MIN_TRIAL_PAIRS`` pairs.
    """
    scores = {name: 0.0 for name in candidates}
    for fitted_on, scored_on in (halves, halves[::-1]):
        held = _one_to_one(dictionary[scored_on])
        if min(fitted_on.shape[0], held.shape[0]) < _MIN_TRIAL_PAIRS:
            return None
        pairs = dictionary[fitted_on]
        # One copy of each half's rows, shared by the candidates.
        train = [blocks[0][pairs[:, 0]], blocks[1][pairs[:, 1]]]
        test = [blocks[0][held[:, 0]], blocks[1][held[:, 1]]]
        for name, candidate in candidates.items():
            Z = clone(candidate).fit(train)._transform_views(test)
            scores[name] += retrieval_accuracy(Z[0], Z[1]) / 2
    return scores


def _orthogonal_wins(gaps):
    """Whether the orthogonal map beat the ridge map over several halvings.

    ``gaps`` holds, for each random halving of the dictionary, the orthogonal
    map's trial score minus the ridge map's. The orthogonal map wins when
    their mean exceeds ``_ORTHOGONAL_MARGIN``: on the dictionary of an
    untrusted map a near tie goes to the ridge map. That dictionary holds
    the orthogonal search's own matches, mostly neighbouring items on pools
    of different ones, and a trial on them favours the map that chose them.
    Measured on disjoint WordNet pools of 5,000 glosses (minilm -> e5, seeds
    0-2 of ``benchmarks/bench_zeropair.py``): one halving gave gaps of
    -0.003, +0.009 and -0.030, 20 halvings of the seed-1 dictionary a mean
    of +0.001 (standard deviation 0.004), and a trial scored by CSLS
    favoured the orthogonal map by 0.05-0.06 in every seed; yet on held-out
    true pairs the ridge map fitted on the same dictionary retrieved
    0.59-0.64 against 0.47-0.51, and 0.845-0.858 after the neighbourhood
    rounds against 0.594-0.615. Where the orthogonal map is the better one,
    the trial says so plainly: e5 -> minilm, seeds 0 and 1, gaps +0.086 and
    +0.072, with 0.79 and 0.55 held-out after the rounds against 0.44 and
    0.20 for the ridge map (each measured once, outside the benchmarks, on
    the dictionaries the fits reached). The margin lies between the two
    groups of gaps; these five fits are all it rests on. A rule of twice the
    standard error of the mean instead (no margin) kept the orthogonal map
    of seed 1 in the benchmark, at 0.600 held-out.

    Those figures are of rounds that refitted the trial's kind. The rounds
    now refit a ridge map (``_refined_rounds``) and the trial's kind is
    fitted on the pairs they end on; on those pairs the same choices hold
    (measured once, outside the benchmarks, seeds 0-2): for e5 -> minilm
    the orthogonal map retrieved 0.808, 0.728 and 0.766 held-out against
    0.791, 0.670 and 0.716 for the ridge map, and for minilm -> e5 the
    ridge map 0.858, 0.855 and 0.866 against 0.752, 0.772 and 0.783.
    """
    return bool(np.mean(np.asarray(gaps, dtype=np.float64)) > _ORTHOGONAL_MARGIN)


def _looks_like_pairs(y):
    """Whether ``y`` has the form of ``pairs``: two columns, as an array or as
    a list of 2-element rows (class labels are one column)."""
    shape = getattr(y, "shape", None)
    if shape is not None:
        return len(shape) == 2 and shape[1] == 2
    if isinstance(y, list | tuple) and y:
        return all(isinstance(row, list | tuple) and len(row) == 2 for row in y)
    return False


class SelfLearningAligner(AffineMapMixin, BaseAligner):
    """Align two embedding pools from a few known pairs, or none, by self-learning.

    The two views may be unpaired pools of different sizes (for example an
    old model's index and a new model's embeddings of an overlapping corpus).
    From the known ``pairs`` the aligner fits its ``base`` aligner, induces
    new pairs over the pools as mutual nearest neighbours under CSLS in the
    shared space, refits on them (the known pairs always stay), and repeats
    until the dictionary stops changing (VecMap, Artetxe et al., 2018; MUSE,
    Conneau et al., 2018). Without pairs, the loop starts from clusters the
    two spaces share (see Notes) and reports a label-free ``confidence_``;
    ``fit`` warns when it cannot trust the map. Once fitted it behaves like the fitted
    base aligner: ``transform``, ``transform_view``, ``translate`` and
    ``score`` work as for any skembed aligner.

    Parameters
    ----------
    base : aligner or None, default=None
        The aligner refitted on every dictionary, for example a
        :class:`ProcrustesAligner` (it is cloned; its ``views`` must be None).
        None means that the search runs on orthogonal maps,
        ``ProcrustesAligner(center=True, normalize="l2")`` (for views of
        different widths the narrower view mapped into the wider one, a
        closed form, where the default reference needs an iterative solver
        every round), and that the fitted map is chosen on the final
        dictionary: that orthogonal map (for views of different widths
        refitted with its default reference, view 0, so that the shared
        space is view 0's as for the documented base), or
        ``RidgeAligner(reference=0)``
        (view 1 regressed onto view 0, which may stretch directions) when it
        retrieves the dictionary's held-out pairs better (see Notes and
        ``final_map_scores_``). A base passed here is used throughout.
    views : None, int, list or dict, default=None
        How X splits into views when it is one array or DataFrame; see
        :class:`ProcrustesAligner`. Exactly two views.
    n_iter : int, default=50
        Maximum number of induction rounds.
    csls_k : int, default=10
        Neighbourhood size of CSLS (capped at the size of the smaller pool).
    tol : float, default=1e-2
        Stop when the pairs that entered or left the dictionary in a
        deterministic round number at most ``tol`` times its size.
    init : {"auto", "anchors", "components", "sorted_similarity", "identity"} \
            or aligner, default="auto"
        Start used when no pairs are given. ``"anchors"`` matches k-means
        centroids of the two pools (mini-vec2vec, see Notes), with up to
        ``n_restarts`` reruns while the confidence says a run failed.
        ``"components"`` matches independent components of the two pools
        instead of centroids (see Notes), with as many reruns.
        ``"auto"`` tries an anchor start, then a component start and a
        second anchor start (the second anchor start first when the first
        one is trusted, to confirm it), ``"sorted_similarity"``, then the
        other ``n_restarts - 1`` reruns as component starts; when none of
        them is trusted and no two agree (see ``start_agreement_``), up to
        ``5 * n_restarts`` further component starts, until one is trusted or
        agrees with an earlier one (the last ``4 * n_restarts`` of them
        alternate between 70 and 100 independent components, the others
        unmix 100).
        ``"sorted_similarity"`` is VecMap's unsupervised initialisation (see
        Notes). ``"identity"`` starts from mutual nearest
        neighbours of the raw, centred vectors, for two views that already
        share a space (for example two versions of one model); it needs views
        of equal width. A fitted skembed aligner of the same two models, in
        the same order (for example a model file loaded with
        :func:`skembed.load_aligner`), is a warm start: the loop starts from
        its map, which self-learning then refines on the pools. ``clone``
        (used by ``GridSearchCV`` and ``cross_validate``) unfits estimators
        given as parameters; wrap the model as
        ``sklearn.frozen.FrozenEstimator(model)`` to keep it fitted there.
    init_size : int, default=4000
        Rows s of each pool used by the ``"sorted_similarity"`` start, which
        builds an s x s similarity matrix per view (128 MB at s = 4000).
    n_anchors : int, default=25
        Clusters per pool of the ``"anchors"`` start, whose matched centroids
        are the anchors (20 to 30 work on real text embeddings; 10 and 50 do
        not). It must be smaller than the rows of each pool (at most 5,000
        of them are clustered; on pools under 100 rows, which get no
        verdict, it is capped at the rows); the matching costs about
        ``n_anchors ** 3``.
    n_restarts : int, default=2
        Further anchor or component starts (see ``init``), with new random
        draws, tried while no start has reached a confidence of 0.9 and no
        start has landed again on the map of a trusted one (see Notes);
        with ``init="auto"``, also sets how many further component starts
        are drawn when no start is trusted and no two agree (up to four per
        restart). A failed search costs about one start more per start
        drawn; on pools of a few thousand rows, where a single component
        start seldom finds the map, the further draws are what finds it,
        and on pools of different texts more planned restarts give the
        agreement of starts more, and worse, candidates (see the user
        guide's zero-pair page).
        Pools under 100 distinct rows, whose map gets no verdict, are run
        from the first start alone.
    induction_size : int or None, default=20000
        Only the first ``induction_size`` rows of each pool take part in
        inducing pairs (VecMap's vocabulary cutoff): it bounds the cost of a
        round, which grows as the product of the pool sizes. Put the rows
        most likely to be shared (for example the most frequent) first.
        None uses all rows. Known pairs may point beyond the cutoff.
    keep_prob : "auto" or float in (0, 1], default="auto"
        Probability of keeping each similarity in the first round of
        dictionary induction (stochastic dictionary induction, see Notes); it
        doubles after every round until it reaches 1, and the loop then runs
        deterministically until it converges. 1.0 is the deterministic loop
        of MUSE. ``"auto"`` runs the loop twice, from 1.0 and from 0.1
        (VecMap's default), and keeps the run with the higher final
        objective: each start fails on problems the other solves. Without
        pairs, the run from 0.1 is made only when the run from 1.0 ends
        with a confidence below 0.9 from a start that no other start
        confirmed (see Notes), and 0.1 is also where the annealed
        rounds of a failed cold start begin (none for 1.0).
    working_memory : float or None, default=None
        Memory, in MiB, of one block of the pool x pool score matrix; the
        full matrix is never held. None means scikit-learn's
        ``working_memory`` setting, at most 256.
    verbose : int, default=0
        Print the dictionary size and change at every round.
    random_state : int, RandomState instance or None, default=None
        Seeds stochastic dictionary induction.
    combine : {"concat", "mean", "similarity"}, default="concat"
        How ``transform`` combines the mapped views.

    Attributes
    ----------
    aligner_ : aligner
        The base aligner fitted on the final dictionary; its maps are the
        aligner's maps. With ``base=None``, a :class:`ProcrustesAligner` or a
        :class:`RidgeAligner`, whichever the trial on the dictionary chose; a
        ridge map of a trusted fit without pairs is fitted on every row of
        pool 0 and its best match instead (see Notes).
    final_map_scores_ : dict or None
        With ``base=None``: the top-1 retrieval of held-out dictionary pairs
        by the orthogonal map and by the ridge map, ``{"orthogonal": ...,
        "ridge": ...}``, each fitted on the other half of the dictionary
        (mean of the two halves); the ridge map is kept when its score is
        higher. Before the neighbourhood rounds of an untrusted cold map (see
        ``dictionary_``) the means over 5 random halvings instead, and the
        ridge map is kept unless the orthogonal map's score is higher by over
        0.02: the dictionary is then the orthogonal search's own, partly
        wrong, matches, which favour the orthogonal map. None when a base was given
        or when a half of the dictionary holds fewer than 50 pairs (the
        orthogonal map is then kept).
    dictionary_ : ndarray of shape (n_pairs, 2)
        The final pairs (row in view 0, row in view 1): the known pairs and
        the induced ones, sorted. Without known pairs, when the map of a
        cold start between views of equal widths is not trusted
        (``confidence_`` below 0.5), the pairs of the neighbourhood rounds
        instead (see Notes): every pool row with each of its 10 best CSLS
        matches in the other pool, rows of pool 0 first; a pair found from
        both sides appears twice. Any aligner that learns from pairs can be
        fitted on ``[X0[d[:, 0]], X1[d[:, 1]]]`` (``d = dictionary_``), for
        example a non-linear one (see the user guide's zero-pair page).
        Those of the warm refit when it was kept (see Notes).
    n_iter_ : int
        Number of induction rounds of the kept run, neighbourhood rounds
        included (those of both regressions run, see Notes); of the warm
        refit alone when it was kept.
    objective_ : float
        Mean CSLS score of the best matches of all pool rows, both ways,
        under the kept run's last map; it ranks runs, higher is better.
    confidence_ : float
        How far the map is from one that pairs nothing, at most 1 (every
        unseen row finds a mutual partner); 0 or below when it explains
        unseen rows no better than two samples of one pool explain each other
        (what a map that pairs nothing reaches at best). Below 0.5 ``fit``
        warns; see Notes. NaN when a pool has fewer than 100 distinct rows,
        or when the first pool is so much smaller than the second that almost
        every held-out row finds a mutual partner under any map: too few to
        judge (without known pairs ``fit`` warns then too). Distinct rows
        are told apart by direction (positive multiples of a row count
        once). When the second pool has fewer distinct rows than the first
        and the map is not trusted, it is judged again with the pools'
        roles swapped, and the higher confidence is kept: a second pool that
        is a part of the first (an index and a re-embedded part of it)
        leaves the first pool's other rows without a partner under any map.
        Computed with known pairs as well: a few of them can lead the rounds
        astray, to a map no better than chance.
    start_agreement_ : float or None
        Without known pairs, when starts were searched (``init="auto"``,
        ``"anchors"`` or ``"components"``): the largest fraction of pairs
        that the probe of the start the map was run from has in common with
        the probe of another start, from 0 to 1. Starts that fail land on
        unrelated maps and share almost nothing; starts that find the
        structure the pools share land on one map again, even on pools of
        different items, where ``confidence_`` stays low for a map that is
        partly right (see Notes). So do starts that only line up each pool's
        principal axes, on unrelated pools whose variance lies in a few
        directions: agreement is a hint, not a proof. Two other starts that
        agree with each other do not count: they vouch for a map that was
        not kept. NaN when
        a single start was probed (a warm start, ``"anchors"`` or
        ``"components"`` with ``n_restarts=0``, a first start that reached
        0.9, or pools under 100 distinct rows); None otherwise. A kept
        warm refit of a cold fit (see Notes) leaves it as the search set it.
    isomorphism_score_ : float or None
        With ``init="sorted_similarity"`` or ``"identity"`` and no pairs: how
        much better the initial dictionary is explained by a single map than
        a random dictionary is, from 0 (no better, a warning is raised below
        0.1) to 1 (all pairs explained). NaN when a single map explains more
        than half of a random dictionary too (pools of not many more rows
        than dimensions), which leaves nothing to compare. None otherwise.
    means_ : list of ndarray of shape (n_features_of_view,)
        Mean of each view's dictionary rows, as set by the base aligner.
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
    ProcrustesAligner : The default base, fitted on row-paired views.
    skembed.metrics.retrieval_accuracy : Cross-view retrieval, also with CSLS.

    Notes
    -----
    **Induction.** Both pools are mapped into the shared space and centred on
    their own means. Rows are compared by CSLS (Conneau et al., 2018),

    .. math::

        \\operatorname{CSLS}(x, y) = 2 \\cos(x, y) - r_Y(x) - r_X(y),

    where :math:`r_Y(x)` is the mean cosine of x to its ``csls_k`` nearest
    rows of the other pool; it discounts hubs. In a deterministic round a
    pair enters the dictionary when each row is the other's best match. A
    stochastic round drops each score with probability ``1 - keep_prob``
    before the best matches are taken and keeps the best match of every row
    of both pools (VecMap's "union"; a mutual match seldom survives two
    drops), so that early, unreliable maps yield varied dictionaries instead
    of locking in their own mistakes. The objective is the mean best CSLS
    score of all rows of both pools. A warm start's first dictionary and
    probe rounds keep that union too: its map is close to right already, and
    on pools of different texts mutual pairs, the ones the current map
    agrees with, pull it further towards these pools' own neighbours each
    round. A warm start the confidence trusts is run on with mutual pairs.

    The deterministic loop (MUSE) keeps every signal of a small, clean seed
    set, but when the pools share only part of their items, the unshared
    rows' spurious matches can hold it at a poor fixed point; the stochastic
    start escapes that, but in its first rounds it can lose what a handful
    of seed pairs say about a low-variance subspace. With ``keep_prob="auto"``
    both run and the one reaching the higher objective is kept, at twice
    the cost.
    Scores are computed in row blocks that fit ``working_memory``, on as
    many threads as the BLAS has (each thread holds one block): a round
    costs one product of the pools, O(n_0 n_1 d), and a stochastic round
    (``keep_prob < 1``) two.

    **The fitted map** (``base=None``). The search and its confidence run
    on orthogonal maps, which keep the rounds stable; the map returned is
    then chosen on the final dictionary. The orthogonal map and the ridge
    regression of view 1 onto view 0 (``RidgeAligner(alpha=1.0,
    reference=0)``, in the units of the views' rows: 1.0 suits unit-length
    embeddings) are each fitted on one random half of the dictionary and
    score the other half by top-1 retrieval; the ridge map is kept only if
    its mean over the two halves is higher. Which map retrieves better
    depends on the models: on WordNet glosses the ridge map raised held-out
    top-1 for minilm -> e5 and wordllama256 -> minilm and the orthogonal
    map was as good or better for e5 -> minilm (the user guide gives the
    figures). The dictionary was found by orthogonal maps, so where many of
    its pairs are wrong the trial leans towards the orthogonal map: before
    the neighbourhood rounds of an untrusted map (below) it is run on five
    random halvings, and the ridge map is kept unless the orthogonal one
    retrieves more by over 0.02 of the held-out pairs on their mean (on
    disjoint WordNet pools, minilm -> e5, one halving's scores differed by
    0.03 or less and picked either map, and the ridge map ended 0.23-0.26
    higher in held-out top-1). When the ridge map is kept for a fit without
    pairs that the confidence trusts, it is refitted on every row of pool 0
    paired with its best CSLS match in pool 1 under that map: the
    dictionary's mutual matches are the rows that both models place
    unambiguously, and a regression fitted on them alone has never had the
    other rows of view 0 as targets. ``dictionary_`` stays
    the search's.

    **Few pairs.** m pairs determine a map only on the span of their
    centred rows, at most m - 1 directions: five pairs of 16-dimensional
    embeddings leave 12 free, and there a Procrustes map is whatever basis
    of the null space the SVD returns, which differs between LAPACK builds
    and CPU kernels. While the dictionary's mapped rows do not span the
    shared space, induction compares two rows by the largest cosine any
    completion of the map could give them: their projections onto the span,
    extended by one coordinate holding the norm of the rest. This bound is
    the same on every machine and equals 1 for an exact copy: 2 to 8 pairs
    recover rotated copies (100 to 300 rows, 8 to 32 dimensions) exactly in
    100 of 100 random cases, also after a 1e-12 perturbation of the inputs,
    where letting the arbitrary completion decide passed 57.

    **Anchor start** (``init="anchors"`` or ``"auto"``, Dar, 2025). Both
    pools are unit-normed, centred and unit-normed again; each is clustered
    by k-means (``n_anchors`` clusters), and the two sets of centroids are matched
    by the permutation that best superimposes their within-space cosine
    matrices (a quadratic assignment, solved by FAQ from random starts, each
    finished by the best pairwise swaps while one gains).
    Every row is then described by its cosines to its own space's matched
    centroids (a relative representation, Moschella et al., 2023), paired
    with the mean of its nearest rows of the other pool in that description,
    and an orthogonal map is fitted on these pseudo-pairs. Eight clustering
    runs are made; wrong matchings give maps that disagree, so the anchors of
    the better-agreeing half are pooled for the final map. That map is then
    refined much as mini-vec2vec refines it, by up to 150 rounds that each
    pair 1,000 sampled rows of pool 0, mapped, with the mean of their nearest
    rows in a sample of up to 5,000 rows of pool 1 (1% of the sample, 10 to
    50 rows), and refit the orthogonal map on those pairs; the rounds end
    early once the map only fluctuates around where it has settled. A mean
    over a neighbourhood is already right when a single nearest row is not, so
    this lifts maps that retrieve a few percent of texts to maps that
    retrieve most (on WordNet glosses, wordllama256 -> minilm, shuffled
    pools of 10,000, seed 0: held-out top-1 0.064 before, 0.73 after), and
    the self-learning rounds take off from there. It needs clusters
    that the two models share: on corpora without them (short, varied texts
    such as fortune cookies) the matching is noise, and the confidence says
    so.

    **Component start** (``init="components"`` or ``"auto"``). Where two models'
    clusters do not correspond, their independent components can: a sample of up
    to 5,000 rows of each standardised pool is unmixed into 100 components by
    FastICA (70 in every second one of ``init="components"``'s draws and of
    the last further draws of ``"auto"``, since on some pools one count's
    matchings never take off where the other's do; fewer when the sample
    spans fewer directions), each turned to
    positive skew (text-embedding components are skewed, so the two models'
    versions of one component then agree in sign). Being independent, the
    components have no correlations to superimpose, but the magnitudes of
    related ones rise together; the two sets are matched by the permutation that
    best superimposes the correlation matrices of their absolute values (the
    quadratic assignment of the anchor start) while pairing components whose
    distributions over the rows are alike (a linear term on the distance of
    their quantiles: both models' versions of a topic load the same texts),
    every row is described by its values on its own space's matched components,
    and the map is fitted and refined as from anchors. It is what aligns minilm
    and e5 on WordNet glosses, whose k-means partitions barely agree (adjusted
    Rand index 0.16) and whose anchor starts fail (the user guide gives the
    figures). ``"auto"`` tries it as soon as a first anchor start has failed.

    **Confidence** (with or without pairs). The rows of pool 0 are split in
    two halves; the base aligner is fitted on the dictionary pairs of one
    half, and
    :math:`h` is the share of the other half's rows that are mutual CSLS
    nearest neighbours of a pool-1 row under that map (a map can memorise the
    pairs it was fitted on, but only a real correspondence carries over to
    rows it has not seen). The control :math:`h_0` is what a map that pairs
    nothing reaches at best, by superimposing the two distributions: the
    same share between two samples of one pool (split in the same
    proportion, in the shared space of a map fitted on a random
    dictionary); ``confidence_`` is :math:`(h - h_0) / (1 - h_0)`. Pools of
    fewer than 1,000 rows average several splits. Each start is probed by a few
    deterministic rounds and scored so. The search ends at the first start
    that reaches 0.9, or that lands again on the map of an earlier start
    trusted at 0.5 or more (one of their two probes holds 90% of the
    other's pairs: starts that fail land on unrelated maps, so two
    independent starts that meet have found the same structure); the most
    confident start is then run to convergence. A right map can be trusted at
    well under 0.9 (on WordNet glosses, wordllama256 -> minilm, shuffled pools of
    10,000: 0.66-0.69 at 0.94 held-out top-1), and the second start that
    confirms it spares the others. When no cold start reaches 0.5, starts
    whose probes share a tenth of their pairs are preferred (on pools of
    different texts a right start can score below the control, while failed
    starts share nothing), the one whose map matches the pools best within
    the 32 leading principal directions of the mapped second pool (the mean
    CSLS score of the first pool's best matches there; their confidences,
    all low, do not rank them), and that start is run on to convergence.
    If it is still below 0.5 (as on pools of different items), it is
    refined instead by rounds that keep every row's best match in either
    direction, which drift less there than mutual pairs, and kept, with its
    warning.
    Otherwise the most confident start is run on to convergence (a start can
    creep for a dozen rounds before it takes off: on WordNet glosses,
    wordllama256 -> minilm, shuffled pools of 5,000, a start probed at 0.09
    ends at 0.71, 0.91 held-out top-1). If that stays below 0.5, the start
    whose probe ended with the highest objective (mean CSLS score of the
    best matches) is refined by annealed stochastic rounds (unless
    ``keep_prob=1.0``; never a warm start, whose map they would blur):
    ``keep_prob`` starts at 0.1 and doubles only once the objective has
    stopped improving for three rounds; that map is kept if it is more
    confident. The objective chooses it because a start with part of its
    pairs right keeps its wrong pairs under deterministic rounds, and its
    confidence can stay among the failures' while its objective does not.
    The objective ranks such starts first on average only, so while no map
    is trusted the starts of the second and third highest objectives are
    annealed too, and their maps kept if trusted.
    Pools that hold different items (disjoint corpora) leave many rows
    without a partner, which lowers :math:`h` even for a right map: there
    the confidence errs on the side of a warning, and ``start_agreement_``
    can tell the two cases apart. On disjoint pools of 5,000 WordNet glosses
    (wordllama256 -> minilm) the start of the map shared 0.21-0.23 of its
    pairs with another and the map retrieved 0.66-0.71 of held-out glosses,
    at a confidence below 0; the starts of every failed fit of the zero-pair
    benchmark shared at most 0.013. When ``confidence_`` is below 0.5 but
    ``start_agreement_`` reaches 0.1, the warning says that the map may be
    partly right: check it on a few known pairs before use. Unrelated pools
    whose variance lies in a few directions (independent Gaussian pools with
    unequal axes) reach such agreement too, their starts lining up the
    principal axes alone: the warning says so. Starts can also
    miss a map that is partly right, and then the warning is the usual one.

    **Neighbourhood rounds** (no pairs, untrusted map). On pools of
    different items a row's mutual nearest neighbour is a neighbouring item,
    never the same one, and rounds on such pairs pull the map towards what
    it already pairs. A cold start's map that ``fit`` cannot trust
    (``confidence_`` below 0.5, most often one of pools of different items)
    is therefore refined last by rounds that pair every row with each of
    its 10 best CSLS matches in the other pool, both ways, and refit a map
    on all of them, until at most ``tol`` of the distinct pairs change (at
    most ``n_iter`` rounds): the map follows the neighbourhood where a row's
    counterpart would be rather than one neighbour it picked itself. With a
    ``base``, the rounds refit the base. Without one they refit a ridge
    regression, run twice from the search's dictionary, once each way (view
    0 on view 1, and view 1 on view 0): which model's neighbourhoods the
    other predicts well depends on the models, not on the order of the
    pools. The run whose pairs score higher in the pools' 32 leading
    principal directions (mean CSLS score of every row of pool 0's best
    match under the orthogonal map of those pairs, a score that ranks right
    maps of different items above wrong ones) is kept, and the kind of map
    the trial chose is fitted on its pairs. The
    rounds have a fixed point of their own, which from a near-right map
    lies lower, so a warm start is not refined so. Views of different
    widths are. On disjoint WordNet pools the rounds raised held-out
    retrieval of partly right minilm <-> e5 maps by 0.07 to 0.20, the
    regression run both ways raised the e5 -> minilm maps by a further
    0.02-0.15, and wordllama256 -> minilm maps, which the rounds of one
    regression had lowered, by 0.03-0.06 (the user guide gives the
    figures). ``confidence_`` and ``start_agreement_`` stay those of the
    search, and ``fit`` still warns.

    **Warm refit** (no pairs, views of equal widths). Last, ``fit`` fits
    once more from the map found, as with that map passed as ``init`` (a
    warm start: every row's best match in either direction, then
    self-learning rounds, judged by the confidence). Self-learning rounds
    settle on a fixed point that depends on the dictionary they start from,
    and from the found map's best matches they settle on more of the pools'
    pairs: on one shuffled pool pair of 2,000 WordNet glosses (e5 ->
    minilm) held-out top-1 rose from 0.923 to 0.954. An untrusted map, after
    the neighbourhood rounds, gets the same chance: the search can end on a
    partly right map of pools of the same items that self-learning from it
    completes (minilm -> e5, another pool pair: 0.834, untrusted, then
    0.981, trusted). The user guide gives the commands. The refit replaces
    the first fit, warnings and all, only when its ``confidence_`` reaches
    0.5 (``start_agreement_`` and ``isomorphism_score_`` stay the first
    fit's); otherwise ``fit`` keeps the first map and its warning. It costs
    one warm fit: seconds at a few thousand rows, about a quarter of the
    fit at 10,000. Maps trusted at 0.9 or more, where the search itself
    stops looking, are refitted too (on other shuffled pools of 2,000
    glosses, e5 -> minilm, from 0.955 to 0.963). Maps of views of different
    widths are not: where tried, the refit moved them by less than the
    noise of one held-out set, and cost up to as much as the fit. Nor are
    maps of pools trusted only with their roles swapped (one a part of the
    other), nor one whose confidence is NaN (a refit on the same pools
    could not be judged either).

    **Sorted-similarity start** (``init="sorted_similarity"``, Artetxe et
    al., 2018). For the
    first s = ``init_size`` rows of each pool, unit-normed and centred, the
    s x s matrix :math:`\\sqrt{X X^\\top}` (similarities with the spectrum
    flattened) has each row sorted and averaged into 256 bins: an isometry
    of the space leaves these descriptors unchanged. Every row is paired
    with its CSLS-nearest descriptor in the other view, in both directions.
    This needs the first s rows of both pools to be largely the same items,
    as VecMap assumes of frequency-sorted vocabularies (descriptors against
    different reference rows barely identify items), and spaces close to
    isometric. A row-paired X (one array or DataFrame, as in a Pipeline)
    with ``pairs=None`` also starts unsupervised: known pairs are only what
    ``pairs`` says; pass ``pairs=np.column_stack([rows, rows])`` to use the
    row pairing, or fit a :class:`ProcrustesAligner` directly.

    **Pre-flight check** (single-dictionary starts). Before the loop, the
    base aligner is fitted on the
    initial dictionary and on a random dictionary of the same size; with
    :math:`h` and :math:`h_0` the shares of their pairs that are mutual CSLS
    nearest neighbours under their own maps, ``isomorphism_score_`` is
    :math:`(h - h_0) / (1 - h_0)`. Eigenvalue similarity of nearest-neighbour
    graph Laplacians (Søgaard et al., 2018) needs the same items in both
    graphs; on unpaired pools its sampling noise exceeds the differences it
    should detect, so the dictionary itself is tested instead.

    References
    ----------
    Dar (2025). "mini-vec2vec: Scaling universal geometry alignment with
    linear transformations." arXiv:2510.02348.

    Moschella, Maiorca, Fumero, Norelli, Locatello and Rodolà (2023).
    "Relative representations enable zero-shot latent space communication."
    ICLR.

    Artetxe, Labaka and Agirre (2017). "Learning bilingual word embeddings
    with (almost) no bilingual data." ACL.

    Artetxe, Labaka and Agirre (2018). "A robust self-learning method for
    fully unsupervised cross-lingual mappings of word embeddings." ACL.

    Conneau, Lample, Ranzato, Denoyer and Jégou (2018). "Word translation
    without parallel data." ICLR.

    Søgaard, Ruder and Vulić (2018). "On the limitations of unsupervised
    bilingual dictionary induction." ACL.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import ortho_group
    >>> from skembed import SelfLearningAligner
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(300, 8)) * np.linspace(3, 1, 8)
    >>> order = rng.permutation(300)
    >>> B = (A @ ortho_group.rvs(8, random_state=0))[order]  # B[i] is A[order[i]]
    >>> pairs = np.column_stack([order[:5], np.arange(5)])  # five known pairs
    >>> aligner = SelfLearningAligner(random_state=0).fit([A, B], pairs=pairs)
    >>> aligner.dictionary_.shape
    (300, 2)
    >>> bool(np.all(order[aligner.dictionary_[:, 1]] == aligner.dictionary_[:, 0]))
    True
    >>> Z_A, Z_B = aligner.transform_view(A[order], 0), aligner.transform_view(B, 1)
    >>> bool(np.allclose(Z_A, Z_B))
    True
    """

    _saved_state = (
        *VIEW_STATE,
        *AFFINE_STATE,
        "aligner_",
        "dictionary_",
        "n_iter_",
        "objective_",
        "isomorphism_score_",
        "confidence_",
        "start_agreement_",
        "final_map_scores_",
    )
    _saved_optional = (*VIEW_OPTIONAL,)
    # Values of saved attributes that files written before them lack.
    _saved_defaults = {
        "confidence_": None,
        "start_agreement_": None,
        "final_map_scores_": None,
    }

    _parameter_constraints: dict = {
        **BaseAligner._parameter_constraints,
        "base": [None, HasMethods(["fit", "transform_view"])],
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "csls_k": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, 1, closed="both")],
        "init": [
            StrOptions(
                {"auto", "anchors", "components", "sorted_similarity", "identity"}
            ),
            HasMethods(["transform_view"]),
        ],
        "init_size": [Interval(Integral, 2, None, closed="left")],
        "n_anchors": [Interval(Integral, 2, None, closed="left")],
        "n_restarts": [Interval(Integral, 0, None, closed="left")],
        "induction_size": [Interval(Integral, 2, None, closed="left"), None],
        "keep_prob": [StrOptions({"auto"}), Interval(Real, 0, 1, closed="right")],
        "working_memory": [Interval(Real, 0, None, closed="neither"), None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    _absent_capabilities = {
        "partial_fit": (
            "self-learning revisits both pools at every round. Call fit on all rows."
        )
    }

    def __init__(
        self,
        base=None,
        *,
        views=None,
        n_iter=50,
        csls_k=10,
        tol=1e-2,
        init="auto",
        init_size=4000,
        n_anchors=25,
        n_restarts=2,
        induction_size=20_000,
        keep_prob="auto",
        working_memory=None,
        verbose=0,
        random_state=None,
        combine="concat",
    ):
        self.base = base
        self.views = views
        self.n_iter = n_iter
        self.csls_k = csls_k
        self.tol = tol
        self.init = init
        self.init_size = init_size
        self.n_anchors = n_anchors
        self.n_restarts = n_restarts
        self.induction_size = induction_size
        self.keep_prob = keep_prob
        self.working_memory = working_memory
        self.verbose = verbose
        self.random_state = random_state
        self.combine = combine

    def set_params(self, **params):
        """Set the parameters of this aligner and of its ``base`` or ``init``.

        Parameters
        ----------
        **params : dict
            Parameters, with ``base__<name>`` or ``init__<name>`` for those of
            an aligner given as ``base`` or ``init``.

        Returns
        -------
        self : object
            This aligner.
        """
        for key in params:
            name, nested, _ = key.partition("__")
            value = params.get(name, getattr(self, name, None))
            if nested and name in ("base", "init") and not hasattr(value, "set_params"):
                # BaseEstimator's own error was "'NoneType' object has no
                # attribute 'set_params'", from a grid over base__scale.
                if name == "base":
                    now = "None (the orthogonal map, chosen at fit)"
                    fix = (
                        "Pass the aligner itself, e.g. base=ProcrustesAligner("
                        "scale=True), or in a grid search over it: {'base': "
                        "[ProcrustesAligner(scale=False), ProcrustesAligner("
                        "scale=True)]} (prefixed by the step name in a Pipeline)."
                    )
                else:
                    now = repr(value)
                    fix = (
                        "Only a fitted aligner given as init (a warm start, "
                        "e.g. init=FrozenEstimator(model)) has parameters."
                    )
                raise ValueError(
                    f"SelfLearningAligner cannot set {key!r}: {name} is {now}, "
                    f"not an aligner with parameters. {fix}"
                )
        return super().set_params(**params)

    @property
    def _l2_rows(self):
        # Row normalisation follows the (fitted) base aligner.
        aligner = getattr(self, "aligner_", None)
        if aligner is not None:
            return aligner._l2_rows
        return self.base is None or getattr(self.base, "normalize", None) == "l2"

    @property
    def _reference_frame(self):
        # So does the output frame.
        aligner = getattr(self, "aligner_", None)
        return aligner is not None and aligner._reference_frame

    # -------------------------------------------------------------- helpers
    def _make_base(self, widths):
        if self.base is None:
            # Maps of the search (every round, the confidence) use the wider
            # view as reference: the narrower one maps into it in closed form,
            # where mapping a wider view into a narrower one needs iterations
            # (1.5-3 s a fit at 256 and 384 columns and 5,000 pairs). It also
            # retrieves better: fitted on 5,000 WordNet glosses of which 30%
            # are mispaired, wordllama256 -> minilm, held-out CSLS top-1 0.93
            # against 0.89 for the default reference.
            return ProcrustesAligner(
                center=True, normalize="l2", reference=int(np.argmax(widths))
            )
        base = clone(self.base)
        if getattr(base, "views", None) is not None:
            raise ValueError(
                f"base has views={base.views!r}, but SelfLearningAligner passes it "
                "one array per view; set views on SelfLearningAligner and leave "
                "base.views=None."
            )
        if getattr(base, "hidden", None) is not None:
            # The fitted aligner maps with the base's affine part only: a hidden
            # layer would steer the rounds and then be dropped from transform.
            constraints = getattr(type(base), "_parameter_constraints", {})
            linear = (
                "Pass hidden=None, or a linear aligner such as ProcrustesAligner."
                if None in constraints.get("hidden", [])
                else "Pass a linear aligner such as ProcrustesAligner or RidgeAligner."
            )
            raise TypeError(
                f"base={type(base).__name__}(hidden={base.hidden!r}) maps through "
                "a non-linear hidden layer; SelfLearningAligner needs a base with "
                f"affine maps. {linear}"
            )
        if not isinstance(base, AffineMapMixin):
            raise TypeError(
                f"base={base!r} does not map views by affine maps; "
                "SelfLearningAligner needs a base that does: ProcrustesAligner, "
                "GeneralizedProcrustesAligner, RidgeAligner, CCAAligner or "
                "ContrastiveAligner (hidden=None)."
            )
        return base

    def _back_projection(self, k):
        # The fitted base's own back-map (CCA's is fitted by least squares),
        # not the pseudo-inverse of its projection that AffineMapMixin uses.
        return self.aligner_._kept_back_projection(k)

    def _budget(self):
        if self.working_memory is not None:
            return float(self.working_memory)
        return float(min(_DEFAULT_WORKING_MEMORY, get_config()["working_memory"]))

    def _fit_base(self, blocks, dictionary):
        """The base fitted on the dictionary's pairs (a map of the search)."""
        aligner = self._make_base([block.shape[1] for block in blocks])
        aligner.fit([blocks[0][dictionary[:, 0]], blocks[1][dictionary[:, 1]]])
        return aligner

    def _final_map(self, blocks, dictionary, searched, random_state, *, refined=False):
        """The fitted map of ``base=None`` and the trial's scores (or None).

        Two maps are candidates: the orthogonal default, ``ProcrustesAligner(
        center=True, normalize="l2")`` (``searched`` when the search ran on
        it, views of equal widths), and ``RidgeAligner(alpha=1.0,
        reference=0)``, which regresses view 1 onto view 0 and may stretch
        directions. Each is fitted on one random half of the final
        dictionary and scored by the top-1 retrieval of the other half's
        pairs, both ways round; the ridge map is returned only if its mean
        is higher. The dictionary is what the search found, mostly right
        pairs on pools of shared items and neighbouring items on pools of
        different ones, so the trial judges the maps on the pools' own
        correspondence, with no pair given.

        Why a trial: the better map depends on the models. Measured once,
        outside the benchmarks, on WordNet glosses (2,000 held-out texts, maps
        fitted on 10,000 true pairs): ridge retrieved 0.993-0.994 against
        0.980-0.985 for minilm -> e5 and 0.958-0.959 against 0.942-0.943 for
        wordllama256 -> minilm, but 800 pairs of e5 -> minilm gave 0.912
        against 0.931. Regressing the retrieved view onto the queries' one
        (``reference=0``) beat the other way round in every case there.

        With ``refined=True`` (an untrusted cold map, which the neighbourhood
        rounds refine next) the trial is run on ``_UNTRUSTED_TRIALS`` random
        halvings and the ridge map is kept unless the orthogonal one retrieves
        more on their mean by over ``_ORTHOGONAL_MARGIN``: see
        ``_orthogonal_wins``. The scores returned are then the means over the
        halvings.
        """
        orthogonal = ProcrustesAligner(center=True, normalize="l2")
        candidates = {"orthogonal": orthogonal, "ridge": RidgeAligner(reference=0)}
        n_pairs = dictionary.shape[0]
        halves = np.array_split(random_state.permutation(n_pairs), 2)
        scores = _trial(candidates, blocks, dictionary, halves)
        if scores is None:
            ridge = False
        elif refined:
            # Further halvings from a copy of the random state: the fit draws
            # after the trial what it drew before.
            stream = copy.deepcopy(random_state)
            trials = [scores] + [
                _trial(
                    candidates,
                    blocks,
                    dictionary,
                    np.array_split(stream.permutation(n_pairs), 2),
                )
                for _ in range(_UNTRUSTED_TRIALS - 1)
            ]
            # A halving can leave one half too few distinct pairs to score
            # (_one_to_one drops repeated rows) where the first did not: it
            # is left out, and the first always counts.
            trials = [trial for trial in trials if trial is not None]
            scores = {
                name: float(np.mean([trial[name] for trial in trials]))
                for name in candidates
            }
            ridge = not _orthogonal_wins(
                [trial["orthogonal"] - trial["ridge"] for trial in trials]
            )
        else:
            ridge = scores["ridge"] > scores["orthogonal"]
        if ridge:
            chosen = candidates["ridge"]
        elif searched.get_params() == orthogonal.get_params():
            # The search ran on the orthogonal default: its map is that one.
            return searched, scores
        else:
            chosen = orthogonal
        pairs = [blocks[0][dictionary[:, 0]], blocks[1][dictionary[:, 1]]]
        return chosen.fit(pairs), scores

    def _refined_rounds(self, blocks, pools, aligner, dictionary, csls_k):
        """The neighbourhood rounds of an untrusted cold map, and its refit.

        With a ``base`` given, the rounds refit ``aligner`` (of the base's
        kind) as :func:`neighbourhood_rounds` says. Without one, they refit a
        ridge map, run once in each direction from the search's
        ``dictionary``: the regression of view 0 on view 1 and that of view 1
        on view 0 (``RidgeAligner(reference=0)`` and ``reference=1``). The
        pairs whose :func:`leading_score` is the higher are kept (a tie keeps
        the first), and ``aligner``'s kind, the one the trial chose, is
        refitted on them.

        Why both: the rounds follow the neighbourhoods that the regression
        predicts, and which model predicts the other's neighbourhoods well
        depends on the two models, not on the order of the pools. Measured
        once, outside the benchmarks, on the disjoint pools of 5,000 WordNet
        glosses of ``benchmarks/bench_zeropair.py`` (seeds 0-2, from the
        dictionaries those searches end on): rounds of the regression of
        minilm on e5 took the orthogonal map of e5 -> minilm to 0.808, 0.728
        and 0.766 held-out top-1, where rounds of the orthogonal map (before)
        reached 0.786, 0.574 and 0.632 and those of the other regression
        0.640, 0.391 and 0.447; for minilm -> e5 the same regression (there
        ``reference=0``) is the one that reached 0.858, 0.855 and 0.866, and
        the other 0.504, 0.517 and 0.587. In all six the leading score
        ranked the two runs so (by 0.0017 to 0.0109). Between views of
        different widths, wordllama256 -> minilm on the same pools, the
        ridge map reached 0.756, 0.759 and 0.737 after rounds of the
        regression of minilm on wordllama256 and 0.660-0.690 after those of
        the other, and the leading score ranked them so in all three (by
        0.0016 to 0.0022).

        Returns the fitted map, its pairs, the rounds of both runs and the
        last change of the run kept.
        """
        if self.base is not None:
            return neighbourhood_rounds(self, blocks, pools, aligner, csls_k)
        runs = []
        for reference in (0, 1):
            say(self, f"ridge map into view {reference}, refined on neighbourhoods")
            start = fit_on_pairs(
                RidgeAligner(reference=reference), blocks, dictionary, self._budget()
            )
            _, pairs, rounds, change = neighbourhood_rounds(
                self, blocks, pools, start, csls_k
            )
            score = leading_score(self, blocks, pools, pairs, csls_k)
            say(self, f"leading score of their pairs {score:.4f}")
            runs.append((score, pairs, rounds, change))
        kept = max(range(len(runs)), key=lambda i: runs[i][0])
        _, pairs, _, change = runs[kept]
        fitted = fit_on_pairs(aligner, blocks, pairs, self._budget())
        return fitted, pairs, sum(run[2] for run in runs), change

    def _completed_ridge(self, aligner, blocks, pools, csls_k):
        """The ridge map refitted on every row of pool 0 and its best match.

        The dictionary holds mutual best matches only: the rows that both
        models place unambiguously, most of them right. A regression fitted
        on them alone has seen only the easy rows of view 0 as targets, and
        its map is worse on the others than one fitted on all rows. Pairing
        every row of pool 0 with its best CSLS match in pool 1 under the
        chosen map gives it every target, at the price of some wrong pairs;
        the user guide's zero-pair page gives what it changed on WordNet
        glosses (``benchmarks/bench_zeropair.py``, column "ridge on
        dictionary"). The orthogonal map, which cannot bend towards the rows
        it sees, is not completed.
        """
        mapped = self._centred_maps(aligner, pools)
        forward, _, _, _ = _best_matches(*mapped, csls_k, working_memory=self._budget())
        rows = np.arange(forward.shape[0])
        return clone(aligner).fit([blocks[0][rows], blocks[1][forward]])

    def _centred_maps(self, aligner, pools):
        mapped = []
        for k, pool in enumerate(pools):
            Z = aligner._map(pool, k, offset=False)
            Z -= Z.mean(axis=0, dtype=np.float64).astype(Z.dtype)
            mapped.append(Z)
        return mapped

    def _determined_basis(self, aligner, blocks, dictionary):
        """Orthonormal basis of the directions the dictionary determines, or None.

        The base aligner fitted on m pairs sees only the m - 1 directions of
        the shared space spanned by the centred, mapped dictionary rows; on
        the rest (for a Procrustes base, the null space of a rank-deficient
        cross-covariance) its map is whatever the SVD returned, which differs
        between LAPACK builds and CPU kernels. The projection onto their span
        is unique even when the basis is not. None when they span the space.
        """
        # Summed one view at a time, so that only one view's float64 rows
        # are held: they are freed before the other's are mapped. Each view
        # is centred in place and multiplied whole, in one product: summed
        # over chunks of rows, the Gram matrix (and the basis cut by
        # _DETERMINED_TOL) would round otherwise.
        gram = None
        for k in range(2):
            Z = aligner._map(blocks[k][dictionary[:, k]], k, offset=False)
            Z = np.asarray(Z, dtype=np.float64)
            Z -= Z.mean(axis=0)
            gram = Z.T @ Z if gram is None else gram + Z.T @ Z
            del Z
        eigenvalues, eigenvectors = np.linalg.eigh(gram)
        keep = eigenvalues > eigenvalues.max(initial=0.0) * _DETERMINED_TOL
        if keep.all():
            return None
        return eigenvectors[:, keep]

    def _induce(
        self, aligner, pools, csls_k, keep_prob, random_state, basis=None, union=False
    ):
        """Mutual CSLS nearest neighbours of the pools under ``aligner``.

        With a ``basis`` of the directions the dictionary determines, rows are
        compared by their best cosine under any completion of the map (see
        :func:`_determined_coordinates`). With ``union``, every row's best
        match in either direction is kept, mutual or not.
        """
        mapped = self._centred_maps(aligner, pools)
        if basis is not None:
            mapped = [_determined_coordinates(Z, basis) for Z in mapped]
        forward, backward, forward_score, backward_score = _best_matches(
            *mapped,
            csls_k,
            working_memory=self._budget(),
            keep_prob=keep_prob,
            random_state=random_state,
        )
        objective = 0.5 * (forward_score.mean() + backward_score.mean())
        if keep_prob >= 1 and not union:
            return _mutual(forward, backward), float(objective)
        # Stochastic rounds keep both directions (VecMap's "union"): a mutual
        # match rarely survives the dropout of both of its scores.
        return _union(forward, backward), float(objective)

    def _initial_dictionary(self, pools, csls_k):
        """Pairs for the unsupervised start (rows of the first pool rows)."""
        if self.init == "identity":
            if pools[0].shape[1] != pools[1].shape[1]:
                raise ValueError(
                    "init='identity' compares raw vectors across views, which needs "
                    f"views of equal width; got {self.n_features_per_view_}. Use "
                    "init='sorted_similarity' or pass pairs."
                )
            centred = [unit_rows(pool) for pool in pools]
            centred = [c - c.mean(axis=0) for c in centred]
            forward, backward, _, _ = _best_matches(
                *centred, csls_k, working_memory=self._budget()
            )
            dictionary = _mutual(forward, backward)
            if dictionary.shape[0] < 2:
                dictionary = np.column_stack([np.arange(forward.shape[0]), forward])
            return np.unique(dictionary, axis=0)
        size = min(self.init_size, *(pool.shape[0] for pool in pools))
        descriptors = [_sorted_similarity_descriptors(pool[:size]) for pool in pools]
        width = min(d.shape[1] for d in descriptors)
        forward, backward, _, _ = _best_matches(
            descriptors[0][:, :width],
            descriptors[1][:, :width],
            min(csls_k, size),
            working_memory=self._budget(),
        )
        # Both directions: the start needs recall more than precision.
        return _union(forward, backward)

    def _isomorphism_score(self, blocks, dictionary, csls_k, random_state):
        """How much better than a random one a single map explains ``dictionary``."""
        size = [int(dictionary[:, k].max()) + 1 for k in range(2)]
        pools = [block[:n] for block, n in zip(blocks, size, strict=True)]
        k = min(csls_k, *size)
        shuffled = np.column_stack(
            [dictionary[:, 0], random_state.permutation(dictionary[:, 1])]
        )
        shares = []
        for candidate in (dictionary, shuffled):
            aligner = self._fit_base(blocks, candidate)
            forward, backward, _, _ = _best_matches(
                *self._centred_maps(aligner, pools), k, working_memory=self._budget()
            )
            hit = (forward[candidate[:, 0]] == candidate[:, 1]) & (
                backward[candidate[:, 1]] == candidate[:, 0]
            )
            shares.append(hit.mean())
        explained, chance = shares
        if chance > _UNINFORMATIVE_CHANCE:
            # A single map fits even most of a random dictionary (pools of not
            # many more rows than dimensions): the test cannot tell.
            return float("nan")
        # Worse than the random dictionary is no better than it.
        return max(0.0, float((explained - chance) / (1 - chance)))

    def _self_learn(
        self, blocks, pools, seeds, dictionary, keep_prob, csls_k, rs, union=False
    ):
        """One self-learning run from ``dictionary``; a dict of its outcome.

        With ``union``, deterministic rounds keep every row's best match in
        either direction, mutual or not (see ``_induce``).
        """
        n_rows = [block.shape[0] for block in blocks]
        taken = [np.zeros(n, dtype=bool) for n in n_rows]
        for k in range(2):
            taken[k][seeds[:, k]] = True
        codes = pair_codes(dictionary, n_rows[1])
        converged = False
        change = np.inf
        start = keep_prob
        for iteration in range(1, self.n_iter + 1):
            aligner = self._fit_base(blocks, dictionary)
            basis = self._determined_basis(aligner, blocks, dictionary)
            induced, objective = self._induce(
                aligner, pools, csls_k, keep_prob, rs, basis, union=union
            )
            # Known pairs always stay; an induced pair contradicting one goes.
            clash = taken[0][induced[:, 0]] | taken[1][induced[:, 1]]
            induced = np.vstack([seeds, induced[~clash]])
            if induced.shape[0] < 2:
                induced = dictionary
            new_codes = pair_codes(induced, n_rows[1])
            change = changed_share(codes, new_codes)
            say(
                self,
                f"start keep_prob={start:g}, round {iteration}: {new_codes.size} "
                f"pairs, change {change:.4f}, keep_prob {keep_prob:.3g}, "
                f"objective {objective:.4f}",
                "round",
                start=start,
                round=iteration,
                pairs=new_codes.size,
                change=change,
                keep_prob=keep_prob,
                objective=objective,
            )
            dictionary = np.column_stack(np.divmod(new_codes, n_rows[1]))
            codes = new_codes
            if keep_prob < 1:
                keep_prob = min(1.0, 2 * keep_prob)
            elif change <= self.tol:
                converged = True
                break
        if change > 0:
            aligner = self._fit_base(blocks, dictionary)
        return {
            "aligner": aligner,
            "dictionary": dictionary,
            "n_iter": iteration,
            "objective": objective,
            "converged": converged,
            "change": change,
        }

    def _best_run(
        self, blocks, pools, seeds, dictionary, csls_k, random_state, good=None
    ):
        """Self-learning from ``dictionary`` at every ``keep_prob`` start; the best.

        ``good``, if given, is called on each run as it ends; a run it accepts
        ends the search (later starts cannot improve on a map already judged
        right, and each costs several rounds).
        """
        if self.keep_prob == "auto":
            starts = (1.0, _KEEP_PROB_START)
        else:
            starts = (float(self.keep_prob),)
        runs = []
        for p in starts:
            runs.append(
                self._self_learn(
                    blocks, pools, seeds, dictionary, p, csls_k, random_state
                )
            )
            if good is not None and good(runs[-1]):
                return runs[-1]
        # The run whose dictionary scores best under its own map: a poor fixed
        # point has a lower mean CSLS of best matches.
        return max(runs, key=lambda run: run["objective"])

    # ------------------------------------------------------------------ fit
    def _judge_known_pairs(self, blocks, pools, run, seeds, limit, csls_k):
        """Set ``confidence_`` of a fit from known pairs; warn when low."""
        dictionary = run["dictionary"]
        # Known pairs beyond induction_size lie outside the pools judged.
        inside = (dictionary[:, 0] < limit[0]) & (dictionary[:, 1] < limit[1])
        run = {**run, "dictionary": dictionary[inside]}
        self.confidence_ = float("nan")
        if distinct_rows(pools) >= MIN_JUDGED_ROWS and inside.sum() >= 2:
            self.confidence_ = run_confidence(
                self, blocks, pools, run, csls_k, check_random_state(self.random_state)
            )
            self.confidence_ = with_swapped_roles(
                self, blocks, pools, run["dictionary"], csls_k, self.confidence_
            )
        if self.confidence_ < MIN_CONFIDENCE:
            _warn_untrusted(
                "known_pairs_disagree",
                confidence=self.confidence_,
                n_known_pairs=seeds.shape[0],
            )

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, *, pairs=None):
        """Learn the maps by self-learning from known pairs, or from none.

        Parameters
        ----------
        X : list of 2 arrays, array-like or DataFrame
            The two views. A list or tuple of two 2-D arrays may have
            different numbers of rows (unpaired pools); any other form is
            split by ``views`` and is row-paired.
        y : None
            Ignored; present for Pipeline compatibility.
        pairs : array-like of shape (n_pairs, 2) or None, default=None
            Known correspondences: row ``pairs[i, 0]`` of view 0 and row
            ``pairs[i, 1]`` of view 1 embed the same item. One-to-one, at
            least 2. None (or an empty array) starts unsupervised, as
            ``init`` says, and runs the pre-flight check. In a Pipeline pass
            it as ``<step name>__pairs``. Its row numbers are rows of this
            X: not through ``cross_validate`` or ``GridSearchCV`` fit
            parameters, whose folds fit on subsets of X (the pairs would
            name other rows, or be cut as if they were one per row).

        Returns
        -------
        self : object
            The fitted aligner.
        """
        check_y_is_not_a_view(self, X, y)
        if pairs is None and _looks_like_pairs(y):
            # fit(X, pairs) puts the pairs in y, which is ignored (class labels
            # travel there in a Pipeline).
            warn(
                "SelfLearningAligner.fit ignores y, which has 2 columns like "
                "pairs; pass known pairs by keyword, fit(X, pairs=...).",
                UserWarning,
            )
        with state_kept_on_error(self):
            if not isinstance(self.init, str):
                self._fit_once(X, pairs)
                return self
            # A cold fit without pairs is fitted once more from its own map,
            # as a warm start (init=) would be (see "Warm refit" above).
            # Only a trusted result replaces the first; the warnings are
            # those of the fit kept. start_agreement_ and isomorphism_score_
            # stay the first fit's: they describe its search and the pools,
            # and a warm fit, which tries one start, has neither.
            with held_warnings() as said:
                refit = self._fit_once(X, pairs)
            if refit:
                say(
                    self,
                    f"warm refit from the map found (confidence "
                    f"{self.confidence_:.3f})",
                )
                again = clone(self).set_params(init=copy.copy(self))
                with held_warnings() as said_again:
                    again._fit_once(X, None)
                if again.confidence_ >= MIN_CONFIDENCE:
                    kept = self.get_params(deep=False).keys() | {
                        "start_agreement_",
                        "isomorphism_score_",
                    }
                    fitted = {
                        key: value
                        for key, value in vars(again).items()
                        if key not in kept
                    }
                    vars(self).update(fitted)
                    said = said_again
                say(
                    self,
                    f"warm refit: confidence {again.confidence_:.3f}, "
                    + ("kept" if again.confidence_ >= MIN_CONFIDENCE else "not kept"),
                )
            issue_again(said)
        return self

    def _fit_once(self, X, pairs):
        """One fit (``fit``'s work); whether ``fit`` refits it warm.

        That is a cold fit without pairs on views of equal widths whose
        confidence is not NaN (a refit on the same pools could not be judged
        either), unless only the pools' roles swapped trust it.
        """
        blocks = check_views(self, X, reset=True, allow_unequal_rows=True)
        # One memory layout whatever the input's: a column-major block (a
        # pandas DataFrame's numbers are) is reduced and multiplied in
        # another order, and the search turns those rounding differences
        # into another map. Shuffled WordNet pools of 2,000 glosses
        # (wordllama256, minilm) fitted without pairs found the map
        # (held-out top-1 0.964) from row-major arrays and failed (0.024)
        # from the same values column-major.
        blocks = [np.ascontiguousarray(block) for block in blocks]
        if len(blocks) != 2:
            raise ValueError(
                "SelfLearningAligner aligns exactly 2 views, got "
                f"{len(blocks)}; set views to select two of them."
            )
        n_rows = [block.shape[0] for block in blocks]
        if min(n_rows) < 2:
            raise ValueError(
                "SelfLearningAligner needs at least 2 rows in each view, got "
                f"n_samples = {min(n_rows)}."
            )
        random_state = check_random_state(self.random_state)
        seeds = (
            np.empty((0, 2), np.int64) if pairs is None else _check_pairs(pairs, n_rows)
        )
        supervised = seeds.shape[0] > 0
        limit = n_rows
        if self.induction_size is not None:
            limit = [min(n, self.induction_size) for n in n_rows]
        pools = [block[:n] for block, n in zip(blocks, limit, strict=True)]
        csls_k = int(min(self.csls_k, *limit))

        if (
            not supervised
            and isinstance(self.init, str)
            and self.init in ("auto", "anchors")
        ):
            check_anchors(self.n_anchors, limit)
        self.isomorphism_score_ = None
        self.confidence_ = None
        self.start_agreement_ = None
        if supervised:
            dictionary = np.unique(seeds, axis=0)
        elif not is_pairwise_start(self.init):
            # Starts without a single dictionary: tried in turn by confidence.
            dictionary = None
        else:
            dictionary = self._initial_dictionary(pools, csls_k)
            self.isomorphism_score_ = self._isomorphism_score(
                blocks, dictionary, csls_k, random_state
            )
            if self.isomorphism_score_ < _MIN_ISOMORPHISM_SCORE:
                _warn_untrusted(
                    "no_shared_structure",
                    isomorphism_score=self.isomorphism_score_,
                )
        if dictionary is None:
            best, self.confidence_, self.start_agreement_ = fit_without_pairs(
                self, blocks, pools, csls_k, random_state
            )
        else:
            best = self._best_run(
                blocks, pools, seeds, dictionary, csls_k, random_state
            )
            if not supervised:
                self.confidence_ = run_confidence(
                    self, blocks, pools, best, csls_k, random_state
                )
        judged = distinct_rows(pools) if not supervised else None
        too_few = not supervised and judged < MIN_JUDGED_ROWS
        # Whether every row of pool 0 may have a partner in pool 1: not
        # when the map is trusted only with the roles swapped.
        swapped = False
        if not supervised and not too_few:
            searched = self.confidence_
            self.confidence_ = with_swapped_roles(
                self, blocks, pools, best["dictionary"], csls_k, self.confidence_
            )
            if not searched >= MIN_CONFIDENCE and self.confidence_ >= MIN_CONFIDENCE:
                # Trusted only with the roles swapped (pool 1 a part of
                # pool 0): the search ended as for an untrusted map, on
                # rounds that keep every row's best match, so most rows of
                # pool 0 outside the part hold a wrong pair. Deterministic
                # mutual rounds from its map give the dictionary of a
                # trusted fit, which the final map is chosen on.
                swapped = True
                rounds = best["n_iter"]
                best = self._self_learn(
                    blocks, pools, seeds, best["dictionary"], 1.0, csls_k,
                    random_state,
                )  # fmt: skip
                best["n_iter"] += rounds
        if too_few:
            # Shares of a few dozen held-out rows are noise (see
            # MIN_JUDGED_ROWS): no verdict rather than a lucky one.
            self.confidence_ = float("nan")
        # Written so that a confidence that could not be computed (nan) warns
        # too: fit never returns a pairs-free map without a verdict on it.
        if not supervised and not self.confidence_ >= MIN_CONFIDENCE:
            paired_hint = ""
            if not isinstance(X, list | tuple):
                # One X is split into views row by row: its rows are pairs
                # already, which the search without pairs does not use.
                paired_hint = (
                    " X was one input split into views, whose rows are "
                    "paired by construction: if they embed the same items, "
                    "pass pairs=np.column_stack([rows, rows]) for some rows, "
                    "or fit ProcrustesAligner on X."
                )
            if too_few:
                reason = "too_few_rows"
            elif np.isnan(self.confidence_):
                # No room (MAX_SPREAD): passing the larger pool first helps
                # only when the first is the smaller one.
                smaller_first = distinct_rows(pools[:1]) < distinct_rows(pools[1:])
                reason = "first_pool_too_small" if smaller_first else "little_room"
            elif self.start_agreement_ is not None and (
                self.start_agreement_ >= MIN_AGREEMENT
            ):
                reason = "starts_agree"
            else:
                reason = "low_confidence"
            _warn_untrusted(
                reason,
                tail=paired_hint,
                confidence=self.confidence_,
                start_agreement=self.start_agreement_,
                n_distinct_rows=judged,
            )
        if not best["converged"]:
            _warn_unsettled(
                "dictionary",
                n_iter=self.n_iter,
                change=best["change"],
                tol=self.tol,
            )
        aligner = best["aligner"]
        untrusted = not supervised and not self.confidence_ >= MIN_CONFIDENCE
        cold = isinstance(self.init, str)
        square = blocks[0].shape[1] == blocks[1].shape[1]
        # An untrusted cold map, most often a partly right one of pools of
        # different items, is refined by the neighbourhood rounds below,
        # views of different widths too now that the rounds run the ridge
        # map both ways (see _refined_rounds).
        refined = untrusted and cold and not too_few
        self.final_map_scores_ = None
        if self.base is None:
            # The search ran on orthogonal maps (into the wider view, see
            # _make_base); the fitted map is chosen on the dictionary found.
            aligner, self.final_map_scores_ = self._final_map(
                blocks, best["dictionary"], aligner, random_state, refined=refined
            )
        dictionary, n_iter = best["dictionary"], best["n_iter"]
        if (
            self.base is None
            and not supervised
            and not untrusted
            and not swapped
            and isinstance(aligner, RidgeAligner)
        ):
            # A trusted map found without pairs: the regression learns
            # from every row of pool 0, not only the mutual matches (not
            # when pool 1 is judged a part of pool 0: rows of pool 0
            # outside it have no partner to be paired with).
            aligner = self._completed_ridge(aligner, blocks, pools, csls_k)
        if refined:
            # An untrusted cold map, most often a partly right one of pools
            # of different items: refined on neighbourhoods rather than on
            # single matches (see neighbourhood_rounds). Not a warm map,
            # which is the evidence: from a near-right one the rounds
            # settle lower (disjoint WordNet pools of 2,000 glosses, minilm
            # -> e5 from a map fitted on 3,000 other glosses, seeds 0-2,
            # measured once: held-out top-1 0.794-0.809, against
            # 0.904-0.906 without them). The confidence_ stays the search's.
            aligner, dictionary, rounds, change = self._refined_rounds(
                blocks, pools, aligner, best["dictionary"], csls_k
            )
            n_iter += rounds
            if change > self.tol:
                _warn_unsettled(
                    "neighbourhood", n_iter=self.n_iter, change=change, tol=self.tol
                )
        if supervised:
            # Known pairs too: a few of them (10 among pools of 2,000
            # packaged fortunes, minilm -> e5) can induce a mostly wrong
            # dictionary, a map at chance, and nothing said so. Last, so
            # that the fit itself draws what it drew before.
            self._judge_known_pairs(blocks, pools, best, seeds, limit, csls_k)
        self.n_iter_ = n_iter
        self.objective_ = best["objective"]
        self.dictionary_ = dictionary
        self.aligner_ = aligner
        self.means_ = aligner.means_
        self._projections = aligner._projections
        self._offset = aligner._offset
        # Self-learning rounds settle on a fixed point that depends on the
        # dictionary they start from. A warm fit from the map found starts
        # from every row's best match in either direction, and its mutual
        # rounds settle on more of the pools' pairs (shuffled WordNet pools
        # of 2,000 glosses, e5 -> minilm, seed 4 of
        # benchmarks/bench_zeropair.py: 2,204 pairs, held-out top-1 0.923,
        # then 1,904 and 0.954). An untrusted map gets the same chance: the
        # search can end on a partly right map of pools of the same items
        # that self-learning from it completes. So does a map trusted at 0.9
        # or more, where the search itself stops looking: on the shuffled
        # pools of 2,000 glosses of seeds 5-7 (e5 -> minilm, trusted at
        # 0.91-0.92) held-out top-1 went from 0.958, 0.955 and 0.955 to
        # 0.963, 0.963 and 0.956; at 10,000 glosses (minilm <-> e5, seeds
        # 0-4) it moved by -0.001 to +0.001, within the noise of one held-out
        # set, and the fits took about a quarter longer.
        # Views of different widths are left alone: on shuffled pools of
        # wordllama256 and minilm the refit changed held-out top-1 by at
        # most 0.0015 and cost as much as the fit at 10,000 rows.
        return (
            cold
            and square
            and not supervised
            and not too_few
            and not swapped
            and not np.isnan(self.confidence_)
        )
