"""Tests for alignment without pairs (skembed._unsupervised), on synthetic pools.

The fits on the shared real corpora are in ``test_unsupervised_wordnet.py``
and ``test_unsupervised_fortunes.py``.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import io
import itertools
import warnings

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import linear_sum_assignment
from scipy.stats import ortho_group
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

import skembed._selflearn as selflearn
import skembed._unsupervised as unsupervised
from skembed import (
    KernelResidualAligner,
    ProcrustesAligner,
    RidgeAligner,
    SelfLearningAligner,
    UnsupervisedAlignmentWarning,
    load_aligner,
    save_aligner,
)
from skembed._parallel import blas_threads
from skembed._unsupervised import (
    MIN_AGREEMENT,
    MIN_CONFIDENCE,
    _agreeing,
    _frank_wolfe,
    _independent_components,
    _match_anchors,
    _matching_objective,
    _offdiagonal,
    _profile_similarity,
    _standardize,
    _swap_search,
    anchor_start,
    anneal_rounds,
    fit_on_pairs,
    neighbourhood_pairs,
    neighbourhood_rounds,
    refine_rotation,
    shared_pairs,
    start_agreement,
)
from skembed.metrics import retrieval_accuracy


def _clustered(seed=0, n=600, d=16, n_clusters=12):
    """Rows drawn around well-separated cluster centres (unit-scale spread)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, d)) * 3.0
    labels = rng.integers(n_clusters, size=n)
    # Within-cluster spread differs by direction, as in real embeddings, so that
    # every direction of the map is pinned down by the rows.
    return centres[labels] + rng.normal(size=(n, d)) * np.geomspace(1.5, 0.5, d)


def _isometric_pools(seed=0, n=600, d=16, d_out=None):
    """A clustered pool and a shuffled (semi-)orthogonal image of it.

    Returns ``A, B, order, Q`` with ``B[i] = A[order[i]] @ Q``; Q is d x d_out.
    """
    A = _clustered(seed, n, d)
    d_out = d if d_out is None else d_out
    Q = ortho_group.rvs(d_out, random_state=seed)[:d]
    order = np.random.default_rng(seed + 100).permutation(n)
    return A, (A @ Q)[order], order, Q


def _precision(dictionary, order):
    return float(np.mean(order[dictionary[:, 1]] == dictionary[:, 0]))


def test_isometric_clustered_pools_aligned_from_zero_pairs():
    """Check that shuffled rotated copies with clusters align exactly, no pairs."""
    A, B, order, Q = _isometric_pools()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupervisedAlignmentWarning)
        aligner = SelfLearningAligner(init="anchors", random_state=0).fit([A, B])
    assert _precision(aligner.dictionary_, order) == 1.0
    assert aligner.dictionary_.shape[0] == A.shape[0]
    assert_allclose(aligner.aligner_.rotations_[1], Q.T, atol=1e-6)
    assert aligner.confidence_ > 0.9
    assert aligner.isomorphism_score_ is None


def test_anchor_start_alone_finds_a_useful_map():
    """Check that the anchor start, before self-learning, already retrieves."""
    A, B, order, Q = _isometric_pools(seed=1)
    rotation, agreement = anchor_start(
        [A, B], n_clusters=12, n_runs=4, random_state=np.random.RandomState(0)
    )
    assert rotation.shape == (16, 16)
    assert_allclose(rotation.T @ rotation, np.eye(16), atol=1e-8)
    # Held-out rows of the same cluster model, seen by both "models" and
    # standardised as the start standardises its pools (unit rows, centred).
    held = _clustered(seed=1, n=900)[600:]

    def standardized(rows, pool):
        unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        pool = pool / np.linalg.norm(pool, axis=1, keepdims=True)
        return unit - pool.mean(axis=0)

    source = standardized(held, A) @ rotation
    target = standardized(held @ Q, B)
    assert retrieval_accuracy(source, target) > 0.3
    assert -1.0 <= agreement <= 1.0


def _skewed_sources(seed, n=1000, d=16):
    """Rows mixing skewed sources whose magnitudes share two latent factors.

    Centred Gamma(0.2) sources are strongly skewed, as the independent
    components of text embeddings are, and skewed enough for FastICA to find
    the same components in a pool and in its rotated copy. Scaling them by
    two shared factors makes their magnitudes dependent, the structure the
    component matching reads. Mixed by a random matrix, so no column is a
    source.
    """
    rng = np.random.default_rng(seed)
    loadings = rng.normal(size=(d, 2))
    factors = rng.normal(size=(n, 2))
    sources = np.exp(0.5 * factors @ loadings.T) * (rng.gamma(0.2, size=(n, d)) - 0.2)
    return sources @ rng.normal(size=(d, d))


def _rotated_copy(A, seed):
    """A shuffled rotated copy of A: ``B[i] = A[order[i]] @ Q``; returns B, order."""
    Q = ortho_group.rvs(A.shape[1], random_state=seed)
    order = np.random.default_rng(seed + 100).permutation(A.shape[0])
    return (A @ Q)[order], order


def test_independent_components_of_a_rotated_copy_match():
    """Check the components of a pool and of its rotated copy, and their matching.

    The components are unit-variance and turned to positive skew; the
    matching of the two sets' magnitude similarities pairs each component of
    the pool with the component of the copy that follows it over the rows.
    """
    A = _skewed_sources(0)
    B, order = _rotated_copy(A, 0)
    Z0, Z1 = _standardize(A), _standardize(B)
    random_state = np.random.RandomState(0)
    W0, S0, P0 = _independent_components(Z0, 16, random_state)
    W1, S1, P1 = _independent_components(Z1, 16, random_state)
    components = [(Z - Z.mean(axis=0)) @ W.T for Z, W in ((Z0, W0), (Z1, W1))]
    for values, S in zip(components, (S0, S1), strict=True):
        assert_allclose(values.std(axis=0), 1.0, atol=1e-6)
        assert np.all(np.mean(values**3, axis=0) > 0)
        assert_allclose(S, S.T)
        assert_allclose(np.diag(S), 1.0)
    # Component j of the copy, over the pool's rows in the pool's order.
    followed = components[1][np.argsort(order)]
    correlation = np.corrcoef(components[0].T, followed.T)[:16, 16:]
    truth = np.argmax(np.abs(correlation), axis=1)
    assert np.all(correlation[np.arange(16), truth] > 0.9)
    match, _ = _match_anchors(S0, S1, random_state)
    assert_array_equal(match, truth)
    # A component and its rotated copy take the same values on the same rows:
    # their profiles are the closest pairs, and the matching keeps them.
    similarity = _profile_similarity(P0, P1)
    assert_array_equal(np.argmax(similarity, axis=1), truth)
    assert_allclose(similarity.mean(), 0.0, atol=1e-12)
    assert_allclose(similarity.std(), 1.0)
    match, _ = _match_anchors(S0, S1, random_state, similarity)
    assert_array_equal(match, truth)


def test_independent_components_do_not_depend_on_the_blas_threads():
    """Check that the components come out the same on one BLAS thread and on two.

    FastICA iterates small products and eigendecompositions whose rounding
    depends on how many threads share them, and a fit from no pairs can turn
    on its outcome; the component start runs it on one thread whatever the
    BLAS has.
    """
    Z = _standardize(_skewed_sources(3, n=1500, d=48))
    results = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="blas"):
            if blas_threads() != threads:
                pytest.skip("the BLAS cannot run two threads here")
            results.append(_independent_components(Z, 24, np.random.RandomState(0)))
    for one, two in zip(*results, strict=True):
        assert_array_equal(one, two)


@pytest.mark.parametrize("k", [2, 12])
def test_profiles_decide_where_the_magnitudes_say_nothing(k):
    """Check that the profile term alone matches when the quadratic term is flat.

    Magnitudes equally dependent everywhere (constant off the diagonal, as
    always for k = 2) give every matching the same quadratic objective; the
    matching must then follow the profiles, here a shuffled noisy copy.
    """
    rng = np.random.default_rng(k)
    S = np.full((k, k), 0.3)
    np.fill_diagonal(S, 1.0)
    P0 = np.sort(rng.gamma(0.5, size=(k, 49)), axis=1)
    order = rng.permutation(k)
    P1 = P0[order] + 1e-3 * rng.standard_normal((k, 49))
    match, _ = _match_anchors(
        S, S, np.random.RandomState(0), _profile_similarity(P0, P1)
    )
    assert_array_equal(match, np.argsort(order))
    # Identical profiles everywhere carry no information either: a zero term.
    assert_array_equal(_profile_similarity(P0[:1].repeat(k, 0), P0[:1].repeat(k, 0)), 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_component_start_aligns_rotated_pools_from_zero_pairs(seed):
    """Check init="components" on shuffled rotated copies: every pair found."""
    A = _skewed_sources(seed)
    B, order = _rotated_copy(A, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupervisedAlignmentWarning)
        aligner = SelfLearningAligner(init="components", random_state=0).fit([A, B])
    assert _precision(aligner.dictionary_, order) == 1.0
    assert aligner.dictionary_.shape[0] == A.shape[0]
    assert aligner.confidence_ > 0.9


def test_component_start_takes_no_more_components_than_the_rank():
    """Check pools whose rows span fewer directions than their width.

    Four constant columns leave 16 directions in 20 columns; whitening 20
    components would divide by singular values that are rounding noise.
    """
    A = np.hstack([_skewed_sources(1), np.ones((1000, 4))])
    B, order = _rotated_copy(A, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupervisedAlignmentWarning)
        warnings.simplefilter("error", RuntimeWarning)
        aligner = SelfLearningAligner(init="components", random_state=0).fit([A, B])
    assert _precision(aligner.dictionary_, order) == 1.0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("width", [1, 2])
def test_component_start_on_pools_of_fewer_than_two_directions(width):
    """Check a component start on pools that leave nothing to unmix.

    Positive single-column rows standardise to one repeated value (no
    direction left after centring); two columns whose second is a multiple
    of the first span one. The start must still give a map, not fail inside
    FastICA or the matching.
    """
    rng = np.random.default_rng(width)
    column = rng.gamma(2.0, size=(300, 1))
    A = np.hstack([column, 2 * column])[:, :width]
    B = A[rng.permutation(300)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsupervisedAlignmentWarning)
        warnings.simplefilter("error", RuntimeWarning)
        aligner = SelfLearningAligner(init="components", random_state=0).fit([A, B])
    assert np.all(np.isfinite(aligner.aligner_.rotations_[1]))


@pytest.mark.parametrize(
    "first_confidence, n_restarts, expected",
    [
        # A trusted first anchor start is confirmed by a second one first.
        (
            MIN_CONFIDENCE,
            2,
            ["anchors", "anchors", "components", "sorted_similarity", "components"],
        ),
        # A failed one is followed by the component start.
        (
            MIN_CONFIDENCE - 0.01,
            2,
            ["anchors", "components", "anchors", "sorted_similarity", "components"],
        ),
        (
            float("nan"),
            2,
            ["anchors", "components", "anchors", "sorted_similarity", "components"],
        ),
        (MIN_CONFIDENCE, 0, ["anchors", "components", "sorted_similarity"]),
        (0.0, 1, ["anchors", "components", "anchors", "sorted_similarity"]),
    ],
)
def test_auto_orders_its_starts_by_the_first_probe(
    first_confidence, n_restarts, expected
):
    """Check the order of init="auto"'s starts, and of init="components".

    The starts are computed only when the search asks for them, so each is
    recorded as it is drawn; the search's probes are filled in as it goes,
    and the first one decides whether a second anchor start comes next.
    """
    A, B, _, _ = _isometric_pools(seed=3, n=200)
    drawn = []
    rotation = np.eye(16)

    def record(kind, value):
        def start(*args, **kwargs):
            drawn.append(kind)
            return value

        return start

    estimator = SelfLearningAligner(random_state=0, n_restarts=n_restarts)
    pairs = np.column_stack([np.arange(5), np.arange(5)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(unsupervised, "anchor_start", record("anchors", (rotation, 0)))
        patch.setattr(unsupervised, "component_start", record("components", rotation))
        patch.setattr(unsupervised, "start_dictionary", lambda *a, **k: pairs)
        patch.setattr(
            estimator, "_initial_dictionary", record("sorted_similarity", pairs)
        )
        probes = []
        starts = unsupervised._starts(
            estimator, [A, B], 10, np.random.RandomState(0), probes
        )
        for start in starts:
            assert_array_equal(start(), pairs)
            # Only the first probe decides; the later ones are trusted.
            value = first_confidence if not probes else 1.0
            probes.append((pairs, pairs, value))
        assert drawn == expected
        drawn.clear()
        estimator.set_params(init="components", n_restarts=1)
        for start in unsupervised._starts(
            estimator, [A, B], 10, np.random.RandomState(0)
        ):
            start()
        assert drawn == ["components", "components"]


@pytest.mark.parametrize(
    "n_restarts, agree_at, expected_extra",
    [
        # No start is trusted and none meet: n_restarts further draws, then
        # _VARIED_DRAWS times as many.
        (2, None, 2 + 4 * 2),
        (1, None, 1 + 4 * 1),
        (0, None, 0),
        # A further draw that lands on an earlier start's map ends them.
        (3, 1, 1),
        (3, 2, 2),
    ],
)
def test_auto_draws_further_components_until_two_starts_meet(
    n_restarts, agree_at, expected_extra
):
    """Check init="auto"'s further component draws after a failed search.

    Every start's probe is untrusted and shares no pair with the others,
    except the further draw number ``agree_at``, which lands on the first
    start's dictionary.
    """
    A, B, _, _ = _isometric_pools(seed=3, n=200)
    rows = np.arange(40)
    drawn = []
    counter = iter(range(1, 100))

    def own_dictionary():
        # A dictionary sharing no pair with any other one drawn here.
        return np.column_stack([rows, (rows + next(counter)) % 200])

    first = own_dictionary()

    def record(kind):
        def start(*args, **kwargs):
            drawn.append(kind)
            return np.eye(16) if kind == "components" else (np.eye(16), 0)

        return start

    # Anchors, components, VecMap, then the restarts: a second anchor start
    # and n_restarts - 1 component starts.
    planned = 3 + n_restarts

    def dictionary(pools, *args, **kwargs):
        if not drawn[:-1]:
            return first
        extra = len(drawn) - planned
        if agree_at is not None and extra == agree_at:
            # In the orientation of the pools given: a component start turned
            # round (pool 1 first) flips the pairs back.
            return first.copy() if pools[0] is A else first[:, ::-1].copy()
        return own_dictionary()

    estimator = SelfLearningAligner(random_state=0, n_restarts=n_restarts)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(unsupervised, "anchor_start", record("anchors"))
        patch.setattr(unsupervised, "component_start", record("components"))
        patch.setattr(unsupervised, "start_dictionary", dictionary)
        patch.setattr(
            estimator,
            "_initial_dictionary",
            lambda *a: drawn.append("sorted_similarity") or own_dictionary(),
        )
        probes = []
        for start in unsupervised._starts(
            estimator, [A, B], 10, np.random.RandomState(0), probes
        ):
            probes.append((start(), None, MIN_CONFIDENCE - 0.1))
    assert len(drawn) == planned + expected_extra
    assert drawn[planned:] == ["components"] * expected_extra


@pytest.mark.parametrize("init", ["auto", "components"])
@pytest.mark.parametrize("turned", [False, True])
def test_component_starts_map_onto_the_pool_of_fewer_dimensions(init, turned):
    """Check which pool the component starts map onto the other.

    The pools' effective numbers of dimensions are set so that pool 0 has
    more (``turned=False``) or fewer. Each start is given the map that is
    right for the pools in the order it receives them (a semi-orthogonal Q
    from 12 columns to 16, or its transpose): every start, turned round or
    not, must then return the true pairs as (row of pool 0, row of pool 1).
    """
    A, B, order, Q = _isometric_pools(seed=4, n=300, d=12, d_out=16)
    orders = []

    def start(pools, **kwargs):
        given = pools[0] is A
        orders.append("given" if given else "turned")
        return Q if given else Q.T

    ratios = {id(A): 5.0 if turned else 9.0, id(B): 7.0}
    estimator = SelfLearningAligner(init=init, random_state=0, n_restarts=3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(unsupervised, "anchor_start", lambda *a, **k: (Q, 0))
        patch.setattr(unsupervised, "component_start", start)
        patch.setattr(unsupervised, "_participation_ratio", lambda p: ratios[id(p)])
        patch.setattr(estimator, "_initial_dictionary", lambda *a: None)
        # Without probes, init="auto" draws all its component starts.
        for draw in unsupervised._starts(
            estimator, [A, B], 10, np.random.RandomState(0)
        ):
            dictionary = draw()
            if dictionary is None:
                continue
            assert dictionary.shape[0] > 0.9 * A.shape[0]
            assert _precision(dictionary, order) == 1.0
            assert np.all(np.diff(dictionary[:, 0]) >= 0)
            if len(orders) == 3:
                break
    assert orders == ["turned" if turned else "given"] * 3


def test_participation_ratio_counts_the_directions_of_the_spread():
    """Check the effective dimension of standardised pools of known spread."""
    rng = np.random.default_rng(0)
    isotropic = rng.normal(size=(4000, 20))
    assert 18 < unsupervised._participation_ratio(isotropic) <= 20
    # Five strong directions among twenty.
    scales = np.r_[np.full(5, 10.0), np.full(15, 0.1)]
    assert 4.5 < unsupervised._participation_ratio(isotropic * scales) < 5.5
    # The ratio reads the directions of the rows, not their units.
    assert unsupervised._participation_ratio(isotropic * 3.0) == pytest.approx(
        unsupervised._participation_ratio(isotropic)
    )


def test_untrusted_runs_are_ranked_by_objective():
    """Check which of two runs of a search is kept.

    A trusted run wins on confidence; between two untrusted ones the
    confidence is noise and the objective decides.
    """
    low, high = {"objective": 0.16}, {"objective": 0.17}
    below = MIN_CONFIDENCE - 0.3
    assert unsupervised._preferred(high, below - 0.1, low, below)
    assert not unsupervised._preferred(low, below, high, below - 0.1)
    assert unsupervised._preferred(low, MIN_CONFIDENCE, high, below)
    assert not unsupervised._preferred(high, below, low, MIN_CONFIDENCE)
    assert not unsupervised._preferred(high, 0.6, low, 0.7)


@pytest.mark.parametrize(
    "init, expected",
    [
        # One first draw, n_restarts - 1 planned and n_restarts further ones
        # of 100 components; then 4 * n_restarts alternating from 70.
        ("auto", [100] * 8 + [70, 100] * 8),
        # 1 + n_restarts draws, alternating from 100.
        ("components", [100, 70, 100, 70, 100]),
    ],
)
def test_component_draws_alternate_their_number_of_components(init, expected):
    """Check which numbers of components the component starts unmix.

    On some pools no draw of one count takes off where draws of the other
    do (see _COMPONENT_COUNTS): the draws must not all repeat one count.
    With init="auto" the planned draws and the first further ones keep 100
    (see _VARIED_DRAWS). Every start here is untrusted and the starts'
    dictionaries are equal but empty, so no two agree.
    """
    A, B, _, _ = _isometric_pools(seed=3, n=200)
    counts = []

    def component_start(*args, n_components, **kwargs):
        counts.append(n_components)
        return np.eye(16)

    assert unsupervised._VARIED_DRAWS == 4
    estimator = SelfLearningAligner(init=init, random_state=0, n_restarts=4)
    empty = np.empty((0, 2), dtype=int)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(unsupervised, "anchor_start", lambda *a, **k: (np.eye(16), 0))
        patch.setattr(unsupervised, "component_start", component_start)
        patch.setattr(unsupervised, "start_dictionary", lambda *a, **k: empty)
        patch.setattr(estimator, "_initial_dictionary", lambda *a: empty)
        probes = []
        for start in unsupervised._starts(
            estimator, [A, B], 10, np.random.RandomState(0), probes
        ):
            probes.append((start(), None, MIN_CONFIDENCE - 0.1))
    assert counts == expected


def _centroid_grams(seed, k=20, d=16, noise=0.03):
    """Similarity matrices of centroids and of a noisy rotated, permuted copy.

    Returns ``G0, G1, truth``: centroid i of the first set is centroid
    ``truth[i]`` of the second.
    """
    rng = np.random.RandomState(seed)
    C0 = rng.standard_normal((k, d)) + 1.5 * rng.standard_normal((1, d))
    C0 /= np.linalg.norm(C0, axis=1, keepdims=True)
    order = rng.permutation(k)
    C1 = C0[order] @ ortho_group.rvs(d, random_state=rng)
    C1 += noise * rng.standard_normal(C1.shape)
    C1 /= np.linalg.norm(C1, axis=1, keepdims=True)
    return _offdiagonal(C0 @ C0.T), _offdiagonal(C1 @ C1.T), np.argsort(order)


@pytest.mark.parametrize("with_linear", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_swap_search_ends_where_no_swap_gains(seed, with_linear):
    """Check the swap gains against recomputed objectives, from random starts.

    With a linear term too, of a size comparable to the quadratic one's
    changes, so that a wrong linear gain would stop the search early or let
    a losing swap through.
    """
    G0, G1, _ = _centroid_grams(seed)
    rng = np.random.default_rng(seed)
    start = rng.permutation(G0.shape[0])
    linear = None
    if with_linear:
        linear = 3 * G0.shape[0] * G0.std() * G1.std() * rng.standard_normal(G0.shape)
    match = _swap_search(G0, G1, start, linear)
    assert sorted(match) == list(range(G0.shape[0]))
    value = _matching_objective(G0, G1, match, linear)
    assert value >= _matching_objective(G0, G1, start, linear)
    for i in range(G0.shape[0]):
        for j in range(i + 1, G0.shape[0]):
            swapped = match.copy()
            swapped[[i, j]] = swapped[[j, i]]
            assert _matching_objective(G0, G1, swapped, linear) <= value + 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matching_with_a_linear_term_reaches_the_best_matching(seed):
    """Check FAQ with a linear term on small problems solved by enumeration.

    Six anchors: every permutation is scored, and the restarts of
    Frank-Wolfe, each finished by swaps, must reach the best combined
    objective (the gradient, the exact step, the projection and the swap
    gains all matter).
    """
    rng = np.random.default_rng(seed)
    k = 6
    # Already zero on the diagonal and centred off it, as _match_anchors
    # makes them, so the objectives below are the ones it maximises.
    G0, G1, _ = _centroid_grams(seed, k=k, d=4, noise=0.3)
    similarity = rng.standard_normal((k, k))
    similarity = (similarity - similarity.mean()) / similarity.std()
    linear = unsupervised._PROFILE_WEIGHT * k * G0.std() * G1.std() * similarity
    best = max(
        _matching_objective(G0, G1, np.array(p), linear)
        for p in itertools.permutations(range(k))
    )
    match, value = _match_anchors(G0, G1, np.random.RandomState(seed), similarity)
    assert sorted(match) == list(range(k))
    assert value == pytest.approx(_matching_objective(G0, G1, match, linear))
    assert value == pytest.approx(best)


def test_frank_wolfe_recovers_planted_matchings():
    """Check Frank-Wolfe alone (no swaps) on noisy permuted copies, with a hint.

    The linear term favours the true partner of every anchor by one standard
    deviation, as the profiles of true component partners do. From the
    barycentre, the method is a heuristic: it must find most of each
    planted matching and nearly all of them together.
    """
    recovered = []
    for seed in range(8):
        G0, G1, truth = _centroid_grams(seed)
        k = G0.shape[0]
        similarity = np.random.default_rng(seed).standard_normal((k, k))
        similarity[np.arange(k), truth] += 1.0
        linear = unsupervised._PROFILE_WEIGHT * k * G0.std() * G1.std() * similarity
        match = _frank_wolfe(G0, G1, linear, np.full((k, k), 1.0 / k))
        recovered.append(np.mean(match == truth))
    assert min(recovered) >= 0.75
    assert np.mean(recovered) >= 0.9


def test_frank_wolfe_without_a_quadratic_term_is_the_linear_assignment():
    """Check that a flat quadratic term leaves the linear assignment's optimum."""
    linear = np.random.default_rng(0).standard_normal((7, 7))
    zero = np.zeros((7, 7))
    assert_array_equal(
        _frank_wolfe(zero, zero, linear, np.full((7, 7), 1.0 / 7)),
        linear_sum_assignment(linear, maximize=True)[1],
    )


def test_swap_search_repairs_a_matching_a_few_swaps_wrong():
    """Check that a planted matching with three pairs exchanged is repaired."""
    G0, G1, truth = _centroid_grams(0)
    start = truth.copy()
    for i, j in [(0, 7), (3, 12), (5, 18)]:
        start[[i, j]] = start[[j, i]]
    assert_array_equal(_swap_search(G0, G1, start), truth)


def _rough_refinement_start():
    """Standardised isometric pools, a rough start and the true rotation.

    The start is the true rotation composed with a rotation by a large angle
    (about 0.5 rad in every plane): under it few rows find their partner,
    yet every row's neighbourhood still lies on the right side of the pool.
    """
    A, B, order, Q = _isometric_pools(seed=4)
    rng = np.random.default_rng(4)
    skew = rng.normal(size=(16, 16)) * 0.12
    start = scipy.linalg.expm(skew - skew.T) @ Q
    return [_standardize(A), _standardize(B)], start, Q, order


@contextlib.contextmanager
def _counted_rounds():
    """A list that gets an item at every neighbour search of a refinement."""
    calls = []
    search = unsupervised._neighbourhood_means

    def counted(*args, **kwargs):
        calls.append(1)
        return search(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(unsupervised, "_neighbourhood_means", counted)
        yield calls


def test_refinement_moves_a_rough_map_towards_the_true_one():
    """Check that mean-of-neighbours rounds turn a rough map into the right one."""
    Z, start, Q, order = _rough_refinement_start()

    def pairs_found(rotation):
        # Row i of A is row inverse[i] of B; count rows whose nearest mapped
        # neighbour is their partner.
        mapped = Z[0] @ rotation
        nearest = np.argmax(mapped @ Z[1].T, axis=1)
        return float(np.mean(order[nearest] == np.arange(Z[0].shape[0])))

    refined = refine_rotation(Z, start, np.random.RandomState(0))
    assert_allclose(refined.T @ refined, np.eye(16), atol=1e-8)
    assert pairs_found(start) < 0.3
    assert pairs_found(refined) > 0.9
    assert np.linalg.norm(refined - Q) < 0.5 * np.linalg.norm(start - Q)
    # Deterministic for a random state.
    assert_array_equal(refined, refine_rotation(Z, start, np.random.RandomState(0)))


def test_refinement_ends_at_a_fixed_point():
    """Check that the rounds stop once the map no longer moves.

    Pools no larger than the samples make every round the same map of the
    same rows, so the refinement reaches a fixed point; it must stop there
    well before the cap, with the map the cap would give.
    """
    Z, start, _, _ = _rough_refinement_start()
    with _counted_rounds() as calls:
        refined = refine_rotation(Z, start, np.random.RandomState(0))
    assert len(calls) < unsupervised._REFINE_ROUNDS // 2
    capped, state = start, np.random.RandomState(0)
    for _ in range(unsupervised._REFINE_ROUNDS):
        capped = unsupervised._refinement_round(Z, capped, state, 256.0)
    assert_allclose(refined, capped, atol=1e-10)


def test_refinement_stops_in_the_round_that_gives_its_map_back():
    """Check the exact fixed point of a refinement of pools used whole.

    Such a round is a fixed function of the map: one that returns the map it
    was given ends the rounds, with the map and the random state that more
    rounds would leave. The previous code ran on to its next settling check,
    at least 30 rounds, or to the cap of 150 (see the next test).
    """
    Z, start, _, _ = _rough_refinement_start()
    refined = refine_rotation(Z, start, np.random.RandomState(0))
    state = np.random.RandomState(0)
    with _counted_rounds() as calls:
        again = refine_rotation(Z, refined, state)
    assert len(calls) == 1
    assert_array_equal(again, refined)
    # No rows were drawn: the state is where it started.
    assert state.randint(2**31) == np.random.RandomState(0).randint(2**31)


def test_a_map_that_no_longer_moves_is_settled_whatever_the_rounding():
    """Check _settled when an image's mean cosine with itself rounds above 1.

    The distances are then both about -7e-16, and the previous code, which
    compared them as they were, never called such a map settled: on 200
    shuffled WordNet glosses 8 of 12 refinements ran from a fixed point
    reached in 5-14 rounds to the cap of 150.
    """
    rng = np.random.default_rng(0)
    for _ in range(1000):
        row = rng.normal(size=(1, 384))
        row /= np.linalg.norm(row)
        image = np.repeat(row, 8, axis=0)
        if unsupervised._mean_cosine(image, image) > 1.0:
            break
    else:
        pytest.fail("no unit row whose mean cosine with itself exceeds 1")
    assert unsupervised._settled([image] * 4)


def test_shared_pairs_and_agreeing_probes():
    """Check the overlap of two dictionaries and the grouping of probes."""
    a = np.array([[0, 1], [1, 2], [2, 0], [3, 3]])
    b = np.array([[0, 1], [1, 2], [3, 0]])
    assert shared_pairs(a, b) == pytest.approx(2 / 3)
    assert shared_pairs(b, a) == pytest.approx(2 / 3)
    assert shared_pairs(a, a[:0]) == 0.0
    c = np.array([[0, 3], [1, 0], [2, 1]])
    probes = [(a, "a", 0.1), (b, "b", -0.2), (c, "c", 0.3)]
    assert _agreeing(probes) == [0, 1]


def test_start_agreement_is_the_kept_probes_largest_share():
    """Check start_agreement: the kept probe's best overlap, NaN for one probe."""
    a = np.array([[0, 1], [1, 2], [2, 0], [3, 3]])
    b = np.array([[0, 1], [1, 2], [3, 0]])
    c = np.array([[0, 3], [1, 0], [2, 0]])
    assert np.isnan(start_agreement([(a, None, 0.0)], 0))
    assert np.isnan(start_agreement([], 0))
    # a-b share 2/3, a-c 1/3, b-c 0.
    probes = [(c, None, 0), (a, None, 0), (b, None, 0)]
    assert start_agreement(probes, 1) == pytest.approx(2 / 3)
    assert start_agreement(probes, 2) == pytest.approx(2 / 3)
    # Two other probes agreeing says nothing of c's map.
    assert start_agreement(probes, 0) == pytest.approx(1 / 3)
    assert start_agreement([(c, None, 0), (b, None, 0)], 1) == 0.0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_agreement_of_other_starts_is_not_credited_to_the_kept_map():
    """Check start_agreement_ and the warning when the kept start agrees with none.

    The first start is trusted at its probe and run on, and its final map
    falls below the threshold; the two other starts share half their pairs
    with each other and none with it. The warning must be the generic one:
    their agreement is no evidence for the kept map.
    """
    rng = np.random.default_rng(0)
    n = 300
    A, B = rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    alone = np.column_stack([np.arange(n), rng.permutation(n)])
    second = np.column_stack([np.arange(n), rng.permutation(n)])
    third = second.copy()
    third[150:, 1] = rng.permutation(third[150:, 1])
    confidences = iter([0.6, 0.05, 0.04])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            unsupervised,
            "_starts",
            lambda *args: iter([lambda: alone, lambda: second, lambda: third]),
        )
        patch.setattr(
            unsupervised, "_rounds", lambda est, bl, po, d, *a, **k: (d, 1, 0.0)
        )
        # Probes score 0.6, 0.05 and 0.04; every later confidence is 0.45.
        patch.setattr(
            unsupervised, "calibrate", lambda share, ctrl: next(confidences, 0.45)
        )
        with pytest.warns(UnsupervisedAlignmentWarning) as caught:
            aligner = SelfLearningAligner(random_state=0, n_iter=3).fit([A, B])
    assert aligner.confidence_ == pytest.approx(0.45)
    assert shared_pairs(second, third) >= 0.5
    assert aligner.start_agreement_ < unsupervised.MIN_AGREEMENT
    assert not any("agree on" in str(w.message) for w in caught)


def _one_mixture_pools(seed, n=800, d=32, n_clusters=24):
    """Two independent samples of one clustered mixture, the second rotated.

    The pools hold different items (no row of one has a partner in the
    other), but the same structure. Returns ``A, B, centres, Q``.
    """
    centres = np.random.default_rng(100 + seed).normal(size=(n_clusters, d)) * 3.0

    def sample(rng):
        labels = rng.integers(n_clusters, size=n)
        return centres[labels] + rng.normal(size=(n, d)) * np.geomspace(1.5, 0.5, d)

    Q = ortho_group.rvs(d, random_state=seed)
    A = sample(np.random.default_rng(seed))
    B = sample(np.random.default_rng(seed + 50)) @ Q
    return A, B, centres, Q


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.slow
def test_starts_that_agree_are_named_in_the_warning_on_pools_of_other_items(
    capsys,
):
    """Check start_agreement_ where the confidence cannot trust a right map.

    On pools of different items most rows have no partner, so a right map
    scores low (the control explains as much); the anchor starts land on it
    again all the same, and the warning says so instead of blaming the
    structure. The agreed start, still untrusted after mutual rounds, ends
    on union rounds.
    """
    A, B, centres, Q = _one_mixture_pools(seed=0)
    with pytest.warns(UnsupervisedAlignmentWarning, match="agree on") as caught:
        aligner = SelfLearningAligner(random_state=0, verbose=1).fit([A, B])
    assert "union rounds from the agreed start" in capsys.readouterr().out
    assert len(caught) == 1
    assert aligner.confidence_ < MIN_CONFIDENCE
    assert aligner.start_agreement_ >= MIN_AGREEMENT
    # The map is the right one: each centre retrieves its own rotated copy.
    Z = aligner._transform_views([centres, centres @ Q])
    assert retrieval_accuracy(Z[0], Z[1]) == 1.0


def _noisy_isometric_pools(seed=0, n=2000, d=16, noise=0.7):
    """Clustered rows and a shuffled rotated copy with independent noise."""
    A = _clustered(seed, n, d)
    Q = ortho_group.rvs(d, random_state=seed)
    order = np.random.default_rng(seed + 100).permutation(n)
    B = A @ Q + noise * np.random.default_rng(seed + 7).normal(size=(n, d))
    return A, B[order], order


@pytest.mark.slow
def test_search_ends_when_a_second_start_confirms_a_trusted_one(capsys):
    """Check that two starts landing on one map end the search over starts.

    The noise keeps the confidence of the right map below 0.9 (about 0.8,
    clear of both thresholds), so the first trusted start does not end the
    search alone; the next start that lands on its fixed point does, and the
    remaining anchor start is not tried. With more noise (0.9) the right map
    sat at 0.43-0.52, on the edge of trust, and the side it fell on depended
    on the random folds of its share.
    """
    A, B, order = _noisy_isometric_pools()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupervisedAlignmentWarning)
        aligner = SelfLearningAligner(random_state=0, verbose=1).fit([A, B])
    out, _, refit = capsys.readouterr().out.partition("warm refit")
    assert refit  # the trusted map is refitted warm last (see fit)
    assert "of the pairs of an earlier trusted start" in out
    assert "start 4" not in out
    assert "start keep_prob=0.1" not in out
    assert MIN_CONFIDENCE <= aligner.confidence_ < 0.9
    assert _precision(aligner.dictionary_, order) > 0.8


@pytest.mark.parametrize(
    "noise, d_out, refitted",
    [(0.9, None, True), (0.5, None, True), (0.9, 24, False)],
    ids=["trusted-below-0.9", "trusted-at-0.9", "different-widths"],
)
def test_which_cold_fits_are_refitted_warm(capsys, noise, d_out, refitted):
    """Check that a trusted cold map of square views is refitted warm, others not.

    Pools of 600 clustered rows and a shuffled, noisy (semi-)orthogonal image
    of them: with noise 0.9 the map is trusted at about 0.7 and refitted;
    with noise 0.5 at about 0.99, where the search itself stops looking, and
    refitted too; a 24-wide image with noise 0.9 is left alone for its widths.
    A refit that is kept leaves start_agreement_ as the search set it (a
    warm fit alone has none; nor has a search whose first start reached
    0.9), and a fit with known pairs is never refitted.
    """
    A = _clustered(0, 600, 16)
    d_out = 16 if d_out is None else d_out
    Q = ortho_group.rvs(d_out, random_state=0)[:16]
    order = np.random.default_rng(100).permutation(600)
    noisy = A @ Q + noise * np.random.default_rng(7).normal(size=(600, d_out))
    B = noisy[order]
    aligner = SelfLearningAligner(random_state=0, verbose=1).fit([A, B])
    out = capsys.readouterr().out
    assert ("warm refit" in out) is refitted
    assert aligner.confidence_ >= MIN_CONFIDENCE
    assert _precision(aligner.dictionary_, order) > 0.5
    if refitted:
        assert "warm refit: confidence" in out
        several_starts = "start 2:" in out.partition("warm refit")[0]
        assert np.isnan(aligner.start_agreement_) == (not several_starts)
    pairs = np.column_stack([order[:20], np.arange(20)])
    with warnings.catch_warnings():
        # Whether 20 pairs are trusted here is beside the point.
        warnings.simplefilter("ignore", UnsupervisedAlignmentWarning)
        SelfLearningAligner(random_state=0, verbose=1).fit([A, B], pairs=pairs)
    assert "warm refit" not in capsys.readouterr().out


def test_a_fit_without_a_verdict_is_not_refitted_warm(capsys):
    """Check that a cold fit whose confidence is NaN is not refitted warm.

    A first pool of 150 rows searched among 600 leaves no room to judge any
    map (confidence_ NaN, fit warns): a refit on the same pools could not be
    judged either, so it could never be kept.
    """
    rng = np.random.default_rng(2)
    X0, X1 = rng.normal(size=(150, 8)), rng.normal(size=(600, 8))
    with pytest.warns(UnsupervisedAlignmentWarning, match="too small"):
        aligner = SelfLearningAligner(random_state=0, verbose=1).fit([X0, X1])
    assert np.isnan(aligner.confidence_)
    assert "warm refit" not in capsys.readouterr().out


def test_rectangular_pools():
    """Check zero-pair alignment of a 16-wide view with a 24-wide view."""
    A, B, order, Q = _isometric_pools(seed=2, d_out=24)
    aligner = SelfLearningAligner(random_state=0).fit([A, B])
    assert aligner.aligner_.rotations_[1].shape == (24, 16)
    assert _precision(aligner.dictionary_, order) == 1.0
    assert aligner.confidence_ > 0.9
    assert_allclose(
        aligner.transform_view(B, 1), aligner.transform_view(A[order], 0), atol=1e-6
    )


def test_a_paired_aligner_fitted_on_the_dictionary_found():
    """Check the user guide's recipe: another map fitted on ``dictionary_``.

    The dictionary's rows index the pools as given (first column pool 0,
    second pool 1), so on pools whose pairs the search finds, a kernel
    correction fitted on them is the one fitted with the true pairs, and it
    translates rows that took no part in fit.
    """
    A = _clustered(seed=3, n=700)
    Q = ortho_group.rvs(A.shape[1], random_state=3)
    A_pool, A_new = A[:600], A[600:]
    # B_pool[j] is A_pool[shuffle[j]] seen by the second model.
    shuffle = np.random.default_rng(5).permutation(600)
    B_pool, B_new = (A_pool @ Q)[shuffle], A_new @ Q
    aligner = SelfLearningAligner(random_state=0).fit([A_pool, B_pool])
    d = aligner.dictionary_
    assert d.shape[0] == 600
    assert np.all(shuffle[d[:, 1]] == d[:, 0])
    found = KernelResidualAligner(reference=0).fit([A_pool[d[:, 0]], B_pool[d[:, 1]]])
    paired = KernelResidualAligner(reference=0).fit(
        [A_pool, B_pool[np.argsort(shuffle)]]
    )
    translated = found.translate(B_new, 1, 0)
    assert_allclose(translated, paired.translate(B_new, 1, 0), atol=1e-8)
    assert retrieval_accuracy(translated, A_new) == 1.0


def test_warm_start_from_a_fitted_aligner_and_a_model_file(tmp_path):
    """Check init=<fitted aligner>, also loaded from a model file, on new pools."""
    A, B, order, Q = _isometric_pools(seed=3)
    # A map for the same two "models", fitted on other items with pairs.
    other = _clustered(seed=30, n=400)
    warm = ProcrustesAligner(center=True, normalize="l2").fit([other, other @ Q])
    path = tmp_path / "warm.npz"
    save_aligner(warm, path)
    for init in (warm, load_aligner(path)):
        aligner = SelfLearningAligner(init=init, random_state=0).fit([A, B])
        assert _precision(aligner.dictionary_, order) == 1.0
        assert aligner.confidence_ > 0.9
    # The warm start is left untouched.
    assert_allclose(warm.rotations_[1], load_aligner(path).rotations_[1])
    # A warm-started aligner is itself saved with its init and reloaded.
    save_aligner(aligner, tmp_path / "refined.npz")
    reloaded = load_aligner(tmp_path / "refined.npz")
    assert_allclose(reloaded.transform_view(B, 1), aligner.transform_view(B, 1))
    assert reloaded.confidence_ == aligner.confidence_
    # One start only: its agreement with other starts is not measured.
    assert np.isnan(aligner.start_agreement_)
    assert np.isnan(reloaded.start_agreement_)


def _covers_both_pools(pairs, n0, n1):
    """Whether ``pairs`` names every row of both pools, some more than once."""
    return (
        np.array_equal(np.unique(pairs[:, 0]), np.arange(n0))
        and np.array_equal(np.unique(pairs[:, 1]), np.arange(n1))
        and pairs.shape[0] > max(n0, n1)
        and np.unique(pairs, axis=0).shape[0] == pairs.shape[0]
    )


def _one_to_one(pairs):
    return all(np.unique(pairs[:, k]).size == pairs.shape[0] for k in range(2))


def _disjoint_clustered_pools(d):
    """Pools of 500 different rows each of one clustered distribution, the
    second seen through the rotation Q (returned too): no map of them can
    be trusted without pairs."""
    Q = ortho_group.rvs(d, random_state=12)
    A = _clustered(seed=12, n=500, d=d)
    B = _clustered(seed=12, n=1000, d=d)[500:] @ Q
    return A, B, Q


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_warm_start_probe_keeps_best_matches_of_both_directions():
    """Check the dictionaries of a warm start: union while probing, then mutual.

    On disjoint pools (the same clusters, different rows) best matches are
    rarely mutual. A warm start's first dictionary and probe rounds keep the
    union of both directions' best matches, so they name every row of both
    pools and some rows more than once; a cold start's rounds keep mutual
    pairs, one partner per row. A trusted warm start (pools of the same rows)
    is then run to the end on mutual pairs. On the disjoint pools the warm
    map superimposes the two distributions and pairs no row, which two
    samples of one pool do as well: the confidence cannot tell it from a map
    fitted to noise, and fit warns.
    """
    d = 16
    A, B, Q = _disjoint_clustered_pools(d)
    other = _clustered(seed=12, n=1500, d=d)[1000:]
    warm = ProcrustesAligner(center=True, normalize="l2").fit([other, other @ Q])
    pools = [A, B]
    estimator = SelfLearningAligner(init=warm)
    first = unsupervised.warm_dictionary(estimator, warm, pools, 10)
    assert _covers_both_pools(first, 500, 500)
    rs = np.random.RandomState(0)
    probed, _, _ = unsupervised._rounds(estimator, pools, pools, first, 10, rs, 3)
    assert _covers_both_pools(probed, 500, 500)
    cold = SelfLearningAligner(init="anchors")
    probed, _, _ = unsupervised._rounds(cold, pools, pools, first, 10, rs, 3)
    assert _one_to_one(probed)
    with pytest.warns(UnsupervisedAlignmentWarning, match="confidence_"):
        disjoint = SelfLearningAligner(init=warm, random_state=0).fit(pools)
    assert disjoint.confidence_ < 0.5
    # A warm map is not refined by neighbourhood rounds (see fit).
    assert disjoint.dictionary_.shape[0] <= 1000
    order = np.random.default_rng(12).permutation(500)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupervisedAlignmentWarning)
        fitted = SelfLearningAligner(init=warm, random_state=0).fit([A, (A @ Q)[order]])
    assert _one_to_one(fitted.dictionary_)
    assert _precision(fitted.dictionary_, order) > 0.95


def test_warm_start_survives_clone_when_frozen(tmp_path):
    """Check clone unfits a warm start, says so, and FrozenEstimator keeps it."""
    A, B, order, Q = _isometric_pools(seed=3)
    other = _clustered(seed=30, n=400)
    warm = ProcrustesAligner(center=True, normalize="l2").fit([other, other @ Q])
    with pytest.raises(ValueError, match="FrozenEstimator"):
        clone(SelfLearningAligner(init=warm)).fit([A, B])
    frozen = clone(SelfLearningAligner(init=FrozenEstimator(warm), random_state=0))
    frozen.fit([A, B])
    assert _precision(frozen.dictionary_, order) == 1.0
    save_aligner(frozen, tmp_path / "frozen.npz")
    reloaded = load_aligner(tmp_path / "frozen.npz")
    assert isinstance(reloaded.init, FrozenEstimator)
    assert_allclose(reloaded.transform_view(B, 1), frozen.transform_view(B, 1))


def test_warm_start_with_other_widths_raises():
    """Check the error for a warm start fitted on views of other widths."""
    A, B, _, _ = _isometric_pools(seed=4)
    warm = ProcrustesAligner().fit([A[:, :8], A[:, :8]])
    with pytest.raises(ValueError, match="warm start needs a map fitted"):
        SelfLearningAligner(init=warm).fit([A, B])
    with pytest.raises(ValueError, match="fitted skembed aligner"):
        SelfLearningAligner(init=ProcrustesAligner()).fit([A, B])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.slow
def test_confidence_flags_a_shuffled_control():
    """Check low confidence and a warning when pool 1 has lost all shared structure.

    The control pool has the same columns as the rotated pool, each shuffled
    over the rows on its own: the marginals stay, the joint structure goes.
    """
    A, B, _, _ = _isometric_pools(seed=5, n=400)
    rng = np.random.default_rng(5)
    control = np.column_stack([rng.permutation(column) for column in B.T])
    with pytest.warns(UnsupervisedAlignmentWarning, match="confidence_") as caught:
        flagged = SelfLearningAligner(random_state=0, n_restarts=1).fit([A, control])
    assert flagged.confidence_ < 0.5
    # The starts failed each their own way.
    assert flagged.start_agreement_ < MIN_AGREEMENT
    assert not any("agree on" in str(w.message) for w in caught)
    trusted = SelfLearningAligner(random_state=0, n_restarts=1).fit([A, B])
    assert trusted.confidence_ > 0.9


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore:SelfLearningAligner found no structure")
@pytest.mark.parametrize(
    "start", ["anchors", "components", "sorted_similarity", "warm"]
)
def test_every_start_warns_on_pools_without_shared_structure(start):
    """Check that no start returns a pairs-free map below 0.5 without a warning.

    Pool 1 is the rotated pool with every column shuffled on its own (the
    shuffled control); the warm start is a map fitted on unrelated pairs.
    """
    A, B, _, _ = _isometric_pools(seed=9, n=300)
    rng = np.random.default_rng(9)
    control = np.column_stack([rng.permutation(column) for column in B.T])
    init = start
    if start == "warm":
        other = rng.normal(size=(200, 16))
        init = ProcrustesAligner(center=True, normalize="l2").fit(
            [other, rng.normal(size=(200, 16))]
        )
    with pytest.warns(UnsupervisedAlignmentWarning, match="confidence_") as caught:
        aligner = SelfLearningAligner(init=init, random_state=0, n_restarts=0).fit(
            [A, control]
        )
    assert aligner.confidence_ < 0.5
    assert not any("agree on" in str(w.message) for w in caught)
    # A single start (anchors without restarts, warm) has nothing to agree
    # with; a single-dictionary start searches no starts.
    if start == "sorted_similarity":
        assert aligner.start_agreement_ is None
    else:
        assert np.isnan(aligner.start_agreement_)


def test_annealed_rounds_recover_a_partly_right_dictionary():
    """Check annealed stochastic rounds: from 30% right pairs to all, seeded.

    Half of the rows of pool 0 are paired, 30% of them with their partner and
    the rest at random; annealing then deterministic convergence recover the
    one-to-one correspondence, and one random_state gives one result.
    """
    A, B, order, _ = _isometric_pools(seed=10, n=400)
    rng = np.random.default_rng(10)
    partner = np.argsort(order)  # row i of A is row partner[i] of B
    rows = rng.permutation(400)[:200]
    right = rng.random(200) < 0.3
    columns = np.where(right, partner[rows], rng.integers(400, size=200))
    start = np.unique(np.column_stack([rows, columns]), axis=0)
    estimator = SelfLearningAligner(random_state=0)
    seeds = np.empty((0, 2), dtype=np.int64)
    results = []
    for _ in range(2):
        annealed = anneal_rounds(
            estimator, [A, B], [A, B], start, 10, np.random.RandomState(0)
        )
        results.append(annealed)
    assert_array_equal(results[0], results[1])
    run = estimator._self_learn(
        [A, B], [A, B], seeds, results[0], 1.0, 10, np.random.RandomState(0)
    )
    dictionary = run["dictionary"]
    assert dictionary.shape[0] == 400
    assert_array_equal(partner[dictionary[:, 0]], dictionary[:, 1])


def test_failed_search_anneals_the_start_with_the_highest_objective():
    """Check which start a search that trusted none of its starts anneals.

    Three starts whose probes share no pair: the first is the most
    confident, the second ends its probe with the highest objective. The
    second is annealed, and its annealed map, more confident than any probe,
    is returned with its index.
    """
    A, B, _, _ = _isometric_pools(seed=3, n=200)
    rows = np.arange(40)
    initials = [np.column_stack([rows, (rows + k) % 200]) for k in (1, 2, 3)]
    confidences = iter([0.3, -0.2, 0.1])
    objectives = {1: 0.20, 2: 0.35, 3: 0.25}
    annealed_from = []

    def probe(estimator, blocks, pools, initial, *args, **kwargs):
        return initial, 1, objectives[int(initial[0, 1])]

    def anneal(estimator, blocks, pools, start, csls_k, random_state):
        annealed_from.append(start)
        return start

    def converged(estimator, blocks, pools, dictionary, *args):
        value = 0.8 if annealed_from else -0.1
        return {"dictionary": dictionary}, value

    estimator = SelfLearningAligner(random_state=0, keep_prob="auto")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            unsupervised,
            "_starts",
            lambda *args: (lambda d=d: d for d in initials),
        )
        patch.setattr(unsupervised, "_rounds", probe)
        patch.setattr(unsupervised, "cross_fitted_share", lambda *a: 0.0)
        patch.setattr(unsupervised, "calibrate", lambda *a: next(confidences))
        patch.setattr(unsupervised, "anneal_rounds", anneal)
        patch.setattr(unsupervised, "_converged_run", converged)
        patch.setattr(estimator, "_fit_base", lambda blocks, dictionary: None)
        patch.setattr(estimator, "_induce", lambda *a, **k: (initials[0], 0.0))
        probes = []
        run, value, kept = unsupervised.search_starts(
            estimator, [A, B], [A, B], 10, np.random.RandomState(0), 0.5, probes
        )
    assert len(probes) == 3
    assert len(annealed_from) == 1
    assert_array_equal(annealed_from[0], initials[1])
    assert kept == 1
    assert value == 0.8
    assert_array_equal(run["dictionary"], initials[1])


@pytest.mark.parametrize("trusted", [None, 3, 1, 4])
def test_failed_search_anneals_starts_by_objective_until_one_is_trusted(trusted):
    """Check the starts annealed when the first annealed map is not trusted.

    Four starts, none trusted by its probe, with objectives ranking them
    2, 3, 1, 4. Starts are annealed in that order until one gives a trusted
    map (``trusted``, its number; None: none does), three at most; the last
    start is never annealed. A later start's map is kept only if trusted:
    with none trusted, the first annealed map is kept, as before, though a
    later one ends with a higher objective. Only the highest objective was
    annealed before, so a second-ranked start with some pairs right was
    never tried.
    """
    A, B, _, _ = _isometric_pools(seed=3, n=200)
    rows = np.arange(40)
    initials = [np.column_stack([rows, (rows + k) % 200]) for k in (1, 2, 3, 4)]
    objectives = {1: 0.25, 2: 0.35, 3: 0.30, 4: 0.20}
    # The annealed maps' objectives, untrusted: start 1's the highest.
    annealed_objectives = {1: 0.33, 2: 0.31, 3: 0.32, 4: 0.5}
    annealed_from = []

    def probe(estimator, blocks, pools, initial, *args, **kwargs):
        return initial, 1, objectives[int(initial[0, 1])]

    def anneal(estimator, blocks, pools, start, csls_k, random_state):
        annealed_from.append(int(start[0, 1]))
        random_state.random_sample()
        return start

    def converged(estimator, blocks, pools, dictionary, *args):
        k = int(dictionary[0, 1])
        if not annealed_from:  # the most confident probe, run on
            return {"dictionary": dictionary, "objective": 0.0}, -0.3
        value = 0.8 if k == trusted else -0.1
        return {"dictionary": dictionary, "objective": annealed_objectives[k]}, value

    estimator = SelfLearningAligner(random_state=0, keep_prob="auto")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            unsupervised,
            "_starts",
            lambda *args: (lambda d=d: d for d in initials),
        )
        patch.setattr(unsupervised, "_rounds", probe)
        patch.setattr(unsupervised, "cross_fitted_share", lambda *a: 0.0)
        confidences = iter([-0.2, -0.3, -0.25, -0.4])
        patch.setattr(unsupervised, "calibrate", lambda *a: next(confidences, -0.3))
        patch.setattr(unsupervised, "anneal_rounds", anneal)
        patch.setattr(unsupervised, "_converged_run", converged)
        patch.setattr(estimator, "_fit_base", lambda blocks, dictionary: None)
        patch.setattr(estimator, "_induce", lambda *a, **k: (initials[0], 0.0))
        probes = []
        random_state = np.random.RandomState(0)
        run, value, kept = unsupervised.search_starts(
            estimator, [A, B], [A, B], 10, random_state, 0.5, probes
        )
    assert len(probes) == 4
    # The later starts draw from a copy: the fit goes on from the state that
    # one annealed start leaves.
    reference = np.random.RandomState(0)
    reference.random_sample()
    assert random_state.random_sample() == reference.random_sample()
    order = [2, 3, 1]
    if trusted in order:
        assert annealed_from == order[: order.index(trusted) + 1]
        assert value == 0.8
        assert kept == trusted - 1
    else:
        # No annealed map trusted: all three tried, the first one kept.
        assert annealed_from == order
        assert kept == 1 and value == -0.1
    assert_array_equal(run["dictionary"], initials[kept])


def test_agreeing_untrusted_starts_are_ranked_by_leading_score():
    """Check which of the agreeing starts a search that trusted none runs on.

    Three starts, none trusted; the first and the third agree. The first is
    the more confident of the two, the third scores higher within the pools'
    leading directions: the third is kept and run on by union rounds.
    """
    A, B, _, _ = _isometric_pools(seed=3, n=200)
    rows = np.arange(40)
    initials = [np.column_stack([rows, (rows + k) % 200]) for k in (1, 2, 3)]
    confidences = iter([0.3, -0.2, 0.1, -0.1])
    leading = {1: 0.20, 2: 0.90, 3: 0.30}
    unions = []

    def self_learn(blocks, pools, seeds, dictionary, *args, union=False, **kwargs):
        unions.append((dictionary, union))
        return {"dictionary": dictionary}

    def converged(estimator, blocks, pools, dictionary, *args):
        return {"dictionary": dictionary}, -0.1

    estimator = SelfLearningAligner(random_state=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            unsupervised,
            "_starts",
            lambda *args: (lambda d=d: d for d in initials),
        )
        patch.setattr(unsupervised, "_rounds", lambda *a, **k: (a[3], 1, 0.0))
        patch.setattr(unsupervised, "cross_fitted_share", lambda *a: 0.0)
        patch.setattr(unsupervised, "calibrate", lambda *a: next(confidences))
        patch.setattr(unsupervised, "_agreeing", lambda probes: [0, 2])
        patch.setattr(
            unsupervised,
            "leading_score",
            lambda estimator, blocks, pools, dictionary, csls_k: leading[
                int(dictionary[0, 1])
            ],
        )
        patch.setattr(unsupervised, "_converged_run", converged)
        patch.setattr(estimator, "_fit_base", lambda blocks, dictionary: None)
        patch.setattr(estimator, "_induce", lambda *a, **k: (initials[0], 0.0))
        patch.setattr(estimator, "_self_learn", self_learn)
        probes = []
        run, value, kept = unsupervised.search_starts(
            estimator, [A, B], [A, B], 10, np.random.RandomState(0), 0.5, probes
        )
    assert len(probes) == 3
    assert kept == 2
    assert len(unions) == 1
    assert_array_equal(unions[0][0], initials[2])
    assert unions[0][1] is True
    assert_array_equal(run["dictionary"], initials[2])


def test_leading_score_prefers_true_pairs_to_random_ones():
    """Check that the map of the true pairs scores above a random dictionary's.

    Shuffled rotated copies: under the true map every row of the first pool
    has an exact copy among the second pool's rows, which scores far above
    the best match a map of random pairs leaves.
    """
    # 48 columns, of which the score keeps the 32 leading directions.
    A, B, order, _ = _isometric_pools(seed=4, n=300, d=48)
    estimator = SelfLearningAligner(random_state=0)
    true = np.column_stack([order, np.arange(300)])
    rng = np.random.default_rng(4)
    random = np.column_stack([rng.permutation(300), rng.permutation(300)])
    scores = [
        unsupervised.leading_score(estimator, [A, B], [A, B], d, 10)
        for d in (true, random)
    ]
    assert scores[0] > scores[1] + 0.05


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_leading_score_is_invariant_under_rotations_of_the_pools(seed):
    """Check that rotating either pool leaves the leading score unchanged.

    The base fitted on the rotated pools absorbs the rotations, so the mapped
    pools turn by one common rotation, and their leading directions with
    them (up to signs, which change both pools' projections alike).
    """
    A, B, _, _ = _isometric_pools(seed=5, n=240, d=48)
    rng = np.random.default_rng(seed)
    dictionary = np.column_stack([rng.permutation(240), rng.permutation(240)])
    Q0, Q1 = (ortho_group.rvs(48, random_state=seed + k) for k in (0, 1))
    estimator = SelfLearningAligner(random_state=0)
    score = unsupervised.leading_score(estimator, [A, B], [A, B], dictionary, 10)
    turned = [A @ Q0, B @ Q1]
    rotated = unsupervised.leading_score(estimator, turned, turned, dictionary, 10)
    assert rotated == pytest.approx(score, abs=1e-9)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_annealing_follows_keep_prob(capsys):
    """Check that a failed cold start is annealed with keep_prob="auto" only."""
    A, B, _, _ = _isometric_pools(seed=11, n=300)
    rng = np.random.default_rng(11)
    control = np.column_stack([rng.permutation(column) for column in B.T])
    for keep_prob, expected in (("auto", True), (1.0, False)):
        with pytest.warns(UnsupervisedAlignmentWarning):
            SelfLearningAligner(
                random_state=0, n_restarts=0, keep_prob=keep_prob, verbose=1
            ).fit([A, control])
        out = capsys.readouterr().out
        # A failed cold start is first run on to convergence, whatever keep_prob.
        assert "converged probe: confidence" in out
        assert ("annealed round" in out) == expected
    # A warm start that fails is returned as its probe left it.
    other = rng.normal(size=(200, 16))
    warm = ProcrustesAligner(center=True, normalize="l2").fit(
        [other, rng.normal(size=(200, 16))]
    )
    with pytest.warns(UnsupervisedAlignmentWarning):
        SelfLearningAligner(init=warm, random_state=0, verbose=1).fit([A, control])
    out = capsys.readouterr().out
    assert "annealed round" not in out
    assert "converged probe" not in out


def test_deterministic_for_a_random_state():
    """Check that one random_state gives the same fit twice."""
    A, B, _, _ = _isometric_pools(seed=6, n=300)
    rng = np.random.default_rng(6)
    B = B + 0.3 * rng.normal(size=B.shape)
    fits = [SelfLearningAligner(random_state=3).fit([A, B]) for _ in range(2)]
    assert_array_equal(fits[0].dictionary_, fits[1].dictionary_)
    assert_array_equal(fits[0].aligner_.rotations_[1], fits[1].aligner_.rotations_[1])
    assert fits[0].confidence_ == fits[1].confidence_


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("seed", [2, 6])
def test_independent_pools_of_one_anisotropic_spread_are_flagged(seed):
    """Check that noise pools whose distributions a map can superimpose warn.

    Two independent Gaussian pools of 200 rows with the same axis-aligned
    spread (scales from 10 to 0.1 over 8 columns) share their distribution
    and nothing else. Self-learning ends on a map that superimposes the
    distributions, whose held-out rows find as many mutual neighbours as two
    samples of one pool do: far more than the fixed point of self-learning
    from a shuffled dictionary, against which these seeds were trusted (0.52
    and 0.62). The control is now the two-sample share.
    """
    rng = np.random.default_rng(seed)
    scales = np.geomspace(10, 0.1, 8)
    A, B = rng.normal(size=(200, 8)) * scales, rng.normal(size=(200, 8)) * scales
    with pytest.warns(UnsupervisedAlignmentWarning, match="confidence_"):
        noise = SelfLearningAligner(random_state=seed).fit([A, B])
    assert noise.confidence_ < 0.5


def test_sample_share_of_one_distribution():
    """Check the two-sample share: deterministic, and that of one distribution.

    Under the identity, two samples of one anisotropic distribution give the
    same share whichever pool is split, a pool sorted by its first column
    gives that share too (the split is evenly spaced, so both samples span
    the sort), and it is far above that of two unrelated distributions
    superimposed (a pool against its own columns reversed).
    """
    rng = np.random.default_rng(0)
    scales = np.geomspace(10, 0.1, 8)
    A, B = rng.normal(size=(1500, 8)) * scales, rng.normal(size=(1500, 8)) * scales
    A, B = A - A.mean(axis=0), B - B.mean(axis=0)
    share = unsupervised.sample_share([A, B], 10, 256.0)
    assert share == unsupervised.sample_share([A, B], 10, 256.0)
    assert 0.5 < share < 0.9
    ranked = A[np.argsort(A[:, 0])]
    assert abs(unsupervised.sample_share([ranked, B], 10, 256.0) - share) < 0.05
    pairs, _ = unsupervised.induced_pairs([A[::3], B[:, ::-1]], 10, 256.0)
    assert pairs.shape[0] / A[::3].shape[0] < share - 0.2


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_repeated_rows_count_once():
    """Check that copies of rows neither sink a right map nor fake a verdict.

    Copies of a row share one nearest neighbour, the mutual partner of one
    copy only: an exactly rotated pool of 600 rows, 420 of them copies of
    others, was warned about (confidence 0.43). Each distinct row now counts
    once, and pools of many rows but fewer than MIN_JUDGED_ROWS distinct ones
    are not judged.
    """
    rng = np.random.default_rng(1)
    A = _clustered(seed=0, n=600, d=16)
    A[180:] = A[rng.integers(180, size=420)]
    Q = ortho_group.rvs(16, random_state=0)
    order = rng.permutation(600)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupervisedAlignmentWarning)
        aligner = SelfLearningAligner(random_state=0).fit([A, (A @ Q)[order]])
    assert aligner.confidence_ > 0.9
    few = A[rng.integers(60, size=400)]
    with pytest.warns(UnsupervisedAlignmentWarning, match="60 distinct rows"):
        aligner = SelfLearningAligner(random_state=0).fit([few, few @ Q])
    assert np.isnan(aligner.confidence_)


def test_a_repeated_first_pool_keeps_the_verdict_of_its_distinct_rows():
    """Check the folds of a first pool whose rows repeat: by its distinct rows.

    300 rows repeated four times drew one fold (by the 1,200 rows), so 150
    held-out rows: too few to judge, and an exact map got NaN with advice
    to pass the larger pool first, which it was.
    """
    rng = np.random.default_rng(0)
    A = _clustered(seed=0, n=300, d=16)
    B = (A @ ortho_group.rvs(16, random_state=0))[rng.permutation(300)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupervisedAlignmentWarning)
        once = SelfLearningAligner(random_state=0).fit([A, B])
        repeated = SelfLearningAligner(random_state=0).fit([np.repeat(A, 4, axis=0), B])
    assert once.confidence_ > 0.9
    assert repeated.confidence_ > 0.9


@pytest.mark.parametrize("pools", ["two directions", "one column"])
def test_rows_that_the_map_makes_equal_are_counted_once(pools):
    """Check pools whose distinct rows share a few directions: no verdict.

    The default base normalises rows, so positive multiples of one row are
    one point to the confidence; against unrelated noise such pools (300
    rows along two directions, or one column) were trusted at 1.0, and the
    command line exited 0.
    """
    rng = np.random.default_rng(0)
    if pools == "two directions":
        A = np.eye(16)[rng.integers(2, size=300)] * rng.uniform(1, 3, size=(300, 1))
        B = rng.normal(size=(300, 16))
    else:
        A, B = rng.normal(size=(300, 1)), rng.normal(size=(300, 1))
    assert np.unique(A, axis=0).shape[0] == 300
    with pytest.warns(UnsupervisedAlignmentWarning, match="2 distinct rows"):
        aligner = SelfLearningAligner(random_state=0).fit([A, B])
    assert np.isnan(aligner.confidence_)
    assert unsupervised.distinct_rows([A, B]) == 2


def test_an_unmeasurable_two_sample_share_is_nan():
    """Check pools of one distinct row: the control was 0, so any map was 1.0."""
    one = np.ones((50, 4))
    assert np.isnan(unsupervised.sample_share([one, one], 10, 256.0))
    assert not unsupervised.has_room([one, one], float("nan"))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.slow
def test_a_first_pool_much_smaller_than_the_second_is_not_judged(seed):
    """Check pools that leave the confidence no room: NaN and a warning.

    Half of 200 rows against 1,000 rows find a mutual partner 95% of the
    time under any map, so the confidence, which divides by the 5% left,
    is noise: independent Gaussian pools so shaped were trusted (seed 2:
    0.51). With the larger pool first there is room, and noise is flagged.
    The same holds when the small pool's rows are repeated to 1,000 rows:
    copies count once, in the proportion of the two-sample share too.
    """
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(200, 16)), rng.normal(size=(1000, 16))
    for first in (A, np.repeat(A, 5, axis=0)):
        with pytest.warns(UnsupervisedAlignmentWarning, match="too small beside"):
            small_first = SelfLearningAligner(random_state=seed).fit([first, B])
        assert np.isnan(small_first.confidence_)
    with pytest.warns(UnsupervisedAlignmentWarning, match="confidence_=-?0"):
        large_first = SelfLearningAligner(random_state=seed).fit([B, A])
    assert large_first.confidence_ < MIN_CONFIDENCE


def test_repeated_folds_count_each_held_out_row_once():
    """Check that the room to judge counts distinct held-out rows, not folds.

    A pool of 150 rows is judged over seven folds of 75 held-out rows: 525
    scores, but of 150 rows, and a share of 150 rows is as noisy as 150
    rows make it. With a control of 0.9 the confidence's spread is then
    sqrt(0.9 / (150 * 0.1)) = 0.24, half of MIN_CONFIDENCE: no room. 1,000
    held-out rows of a pool of 2,000 leave room at the same control.
    """
    small = np.random.default_rng(0).normal(size=(150, 8))
    large = np.random.default_rng(1).normal(size=(2000, 8))
    assert not unsupervised.has_room([small, large], 0.9)
    assert unsupervised.has_room([large, small], 0.9)
    # At the bound, sqrt(h0 / (150 (1 - h0))) = MAX_SPREAD.
    room = 150 * unsupervised.MAX_SPREAD**2
    control = room / (1 + room)
    assert unsupervised.has_room([small, large], control - 1e-9)
    assert not unsupervised.has_room([small, large], control + 1e-9)


def test_noise_in_small_unequal_pools_gets_no_verdict():
    """Check unrelated pools of 150 and 600 rows: no trust, and a warning.

    The search trusted these (confidence above 0.5) when the room to judge
    counted each of the seven folds' held-out rows anew (525 rows, not
    150). Counted once, the confidence's spread is too large to tell a map
    from noise.
    """
    rng = np.random.default_rng(1)
    X0, X1 = rng.normal(size=(150, 8)), rng.normal(size=(600, 8))
    with pytest.warns(UnsupervisedAlignmentWarning, match="too small beside"):
        aligner = SelfLearningAligner(random_state=0).fit([X0, X1])
    assert np.isnan(aligner.confidence_)


def test_no_room_with_the_larger_pool_first_is_not_blamed_on_the_order(
    monkeypatch,
):
    """Check the reason of a fit without room whose first pool is the larger.

    Passing the larger pool first cannot help there, so the warning says
    that the pools leave too little room ("little_room"), not that the
    first pool is too small beside the second.
    """
    A, B, _, _ = _isometric_pools(seed=1, n=300, d=8)
    monkeypatch.setattr(unsupervised, "has_room", lambda pools, control: False)
    cases = (
        ([A, B[:200]], "little_room", "too little room"),
        ([B[:200], A], "first_pool_too_small", "too small beside"),
    )
    for X, reason, words in cases:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnsupervisedAlignmentWarning)
            aligner = SelfLearningAligner(random_state=0).fit(X)
        assert np.isnan(aligner.confidence_)
        (warning,) = [
            w.message for w in caught if w.category is UnsupervisedAlignmentWarning
        ]
        assert warning.reason == reason
        assert words in str(warning)


def test_copies_count_once_in_the_two_sample_share_and_share_a_fold():
    """Check that repeats change neither the two-sample share nor the folds."""
    rng = np.random.default_rng(4)
    A, B = rng.normal(size=(300, 8)), rng.normal(size=(900, 8))
    repeated = np.repeat(A, 3, axis=0)[rng.permutation(900)]
    share = unsupervised.sample_share([A, B], 10, 256.0)
    # First copies in A's order: the distinct rows are A itself.
    in_order = np.repeat(A, 3, axis=0)
    assert unsupervised.sample_share([in_order, B], 10, 256.0) == share
    first = unsupervised.first_copies(repeated)
    assert_array_equal(repeated[first], repeated)
    assert np.unique(first).shape[0] == 300
    assert np.all(first <= np.arange(900))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("n_rows", [6, 40, 80])
@pytest.mark.slow
def test_small_pools_are_not_judged(n_rows):
    """Check that pools too small to judge get no verdict, and a warning.

    On pools of a few dozen rows the confidence compares shares of a handful
    of held-out rows, and noise was trusted (independent Gaussian pools of 6
    rows, seed 0: confidence 1.0 without a warning). Below MIN_JUDGED_ROWS
    the confidence is NaN, whatever the pools hold, and fit warns. Starts are
    not searched by a confidence that is noise there: the first start is run
    to convergence (the search took 10-15 s on 30 to 99 real glosses).
    """
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(n_rows, 16)), rng.normal(size=(n_rows, 16))
    output = io.StringIO()
    with (
        pytest.warns(UnsupervisedAlignmentWarning, match="too few to judge"),
        contextlib.redirect_stdout(output),
    ):
        noise = SelfLearningAligner(random_state=0, verbose=1).fit([A, B])
    assert np.isnan(noise.confidence_)
    assert np.isnan(noise.start_agreement_)
    assert "confidence" not in output.getvalue()
    related, rotated, _, _ = _isometric_pools(seed=3, n=n_rows)
    with pytest.warns(UnsupervisedAlignmentWarning, match="too few to judge"):
        aligner = SelfLearningAligner(random_state=0).fit([related, rotated])
    assert np.isnan(aligner.confidence_)


@pytest.mark.parametrize("init", ["auto", "anchors"])
def test_more_anchors_than_rows_raise(init):
    """Check that n_anchors at or above the rows the start clusters is refused.

    It was capped at the rows without a word, and one cluster per row costs
    quadratic assignments of n x n (300 anchors on 300 rows took minutes).
    Other starts and fits with pairs do not use the anchors, and pools under
    MIN_JUDGED_ROWS rows (no verdict) keep the cap, so the defaults run on
    any pools (test_small_pools_are_not_judged).
    """
    A, B, order, _ = _isometric_pools(seed=4, n=120)
    with pytest.raises(ValueError, match=r"n_anchors=119 .* clusters 119 rows"):
        SelfLearningAligner(init=init, n_anchors=119).fit([A, B[:-1]])
    with pytest.raises(ValueError, match="n_anchors=200"):
        SelfLearningAligner(init=init, n_anchors=200).fit([A, B])
    pairs = np.column_stack([order[:10], np.arange(10)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        SelfLearningAligner(init=init, n_anchors=200).fit([A, B], pairs=pairs)


def test_confidence_with_pairs():
    """Check that known pairs get a confidence too, without a warning for a
    right map (a few pairs can lead the rounds astray: see
    tests/test_selflearn.py), and no start agreement (no starts searched)."""
    A, B, order, _ = _isometric_pools(seed=7, n=300)
    pairs = np.column_stack([order[:10], np.arange(10)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("error", UnsupervisedAlignmentWarning)
        aligner = SelfLearningAligner(random_state=0).fit([A, B], pairs=pairs)
    assert aligner.confidence_ >= MIN_CONFIDENCE
    assert aligner.start_agreement_ is None


@pytest.mark.parametrize(
    "params, error",
    [
        ({"init": "nonsense"}, ValueError),
        ({"n_anchors": 1}, ValueError),
        ({"n_restarts": -1}, ValueError),
    ],
)
def test_invalid_parameters(params, error):
    """Check that bad zero-pair parameters raise clear errors."""
    A, B, _, _ = _isometric_pools(seed=8, n=100)
    with pytest.raises(error, match=next(iter(params))):
        SelfLearningAligner(**params).fit([A, B])


@pytest.mark.slow
def test_control_is_the_two_sample_share_in_the_shared_space():
    """Check that the control is the two-sample share of the centred, mapped pools.

    With an orthogonal base map (centred Procrustes of square views) the
    shared space is a rotation of each centred pool, so the random dictionary
    that fits the control's map changes nothing: every random state gives
    the two-sample share of the centred pools themselves.
    """
    A, B, _, _ = _isometric_pools(seed=3, n=400)
    aligner = SelfLearningAligner(random_state=0, n_restarts=1).fit([A, B])
    centred = [A - A.mean(axis=0), B - B.mean(axis=0)]
    expected = unsupervised.sample_share(centred, 10, aligner._budget())
    for seed in range(3):
        control = unsupervised.control_share(
            aligner, [A, B], [A, B], 10, np.random.RandomState(seed)
        )
        assert control == pytest.approx(expected, abs=0.01)


def test_probe_rounds_count_only_the_rounds_kept():
    """Check that a round inducing fewer than two pairs is not counted.

    Its dictionary is discarded (no map can be fitted to it), so the probe's
    ``n_iter_`` must not count it.
    """
    rows = np.arange(50)
    start = np.column_stack([rows, rows[::-1]])
    kept = np.column_stack([rows, rows])
    dictionaries = iter([kept, kept[:1]])
    estimator = SelfLearningAligner()
    estimator.tol = -1.0

    def induce(aligner, pools, csls_k, keep_prob, random_state, union=False):
        return next(dictionaries), 0.0

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(estimator, "_fit_base", lambda blocks, dictionary: None)
        patch.setattr(estimator, "_induce", induce)
        result, n_rounds, _ = unsupervised._rounds(
            estimator, None, None, start, 10, np.random.RandomState(0), 6
        )
    assert n_rounds == 1
    assert_array_equal(result, kept)


@pytest.mark.parametrize("tol, expected_rounds", [(1e-2, 3), (0.0, 4), (-1.0, 6)])
def test_probe_rounds_end_once_the_dictionary_settles(tol, expected_rounds):
    """Check that a probe stops at the first round changing at most ``tol``.

    The third round swaps one pair of 200 for another (two codes of 200
    change: 0.01), the later ones change nothing: with tol=1e-2 the probe
    ends at the third round, as the self-learning loop would; with tol=0 at
    the fourth; a negative tol (never reached) runs all six.
    """
    rows = np.arange(200)
    first = np.column_stack([rows, (rows + 1) % 200])
    second = np.column_stack([rows, rows])
    third = second.copy()
    third[0, 1] = 5
    dictionaries = iter([first, second, third] + [third] * 10)
    estimator = SelfLearningAligner()
    # tol is validated by fit, which this test does not call.
    estimator.tol = tol
    calls = []

    def induce(aligner, pools, csls_k, keep_prob, random_state, union=False):
        calls.append(keep_prob)
        return next(dictionaries), 0.0

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(estimator, "_fit_base", lambda blocks, dictionary: None)
        patch.setattr(estimator, "_induce", induce)
        start = np.column_stack([rows, rows[::-1]])
        result, n_rounds, _ = unsupervised._rounds(
            estimator, None, None, start, 10, np.random.RandomState(0), 6
        )
    assert len(calls) == n_rounds == expected_rounds
    assert_array_equal(result, third)


def _scripted_dictionaries(changes, n_pairs=2000):
    """Dictionaries of ``n_pairs`` pairs, each changing the given share of the last.

    Replacing m pairs changes 2 m codes, a share 2 m / n_pairs of the next
    dictionary. Returns the start and the list of later dictionaries.
    """
    rows = np.arange(n_pairs)
    current = np.column_stack([rows, rows])
    start, out, fresh = current.copy(), [], n_pairs
    for change in changes:
        current = current.copy()
        replaced = int(round(change * n_pairs / 2))
        current[:replaced, 1] = np.arange(fresh, fresh + replaced)
        fresh += replaced
        out.append(current)
    return start, out


@pytest.mark.parametrize(
    "changes, creep, expected_rounds",
    [
        # A failed start settling geometrically: the sixth round's change
        # shrank by 0.67, so the probe ends there with or without creep.
        ([0.25, 0.12, 0.06, 0.04, 0.03, 0.02, 0.019, 0.018], True, 6),
        # A start still creeping at its sixth round (the change shrank by
        # only 0.95), then taking off (changes grow, then fall) and settling
        # at its eleventh round (a change below tol): the probe follows it.
        (
            [0.25, 0.13, 0.08, 0.068, 0.062, 0.058, 0.066, 0.2, 0.5, 0.1, 0.004],
            True,
            11,
        ),
        # Probes of the self-learning loop's other callers never run on.
        (
            [0.25, 0.13, 0.08, 0.068, 0.062, 0.058, 0.066, 0.2, 0.5, 0.1, 0.004],
            False,
            6,
        ),
        # A change that never shrinks runs on to _CREEP_ROUNDS, no further.
        ([0.05] * 30, True, unsupervised._CREEP_ROUNDS),
        # Taking off, the change falls below the creep ratio (0.4 after 0.5)
        # but stays above the sixth round's: the probe still runs on; it
        # stops at the first round under both (0.05), not settled.
        ([0.2, 0.15, 0.12, 0.1, 0.09, 0.085, 0.3, 0.5, 0.4, 0.2, 0.05, 0.04], True, 11),
    ],
)
def test_probe_rounds_run_on_while_the_dictionary_creeps(
    changes, creep, expected_rounds
):
    """Check that a probe still creeping at its last round runs on, up to a cap.

    A start can creep for several rounds before it takes off (see
    ``_CREEP_RATIO``); a failed one settles geometrically.
    """
    start, dictionaries = _scripted_dictionaries(changes)
    estimator = SelfLearningAligner()
    estimator.tol = 0.01
    calls = []

    def induce(aligner, pools, csls_k, keep_prob, random_state, union=False):
        calls.append(keep_prob)
        return dictionaries[len(calls) - 1], 0.0

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(estimator, "_fit_base", lambda blocks, dictionary: None)
        patch.setattr(estimator, "_induce", induce)
        result, n_rounds, _ = unsupervised._rounds(
            estimator, None, None, start, 10, np.random.RandomState(0), 6, creep=creep
        )
    assert len(calls) == n_rounds == expected_rounds
    assert_array_equal(result, dictionaries[expected_rounds - 1])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_start_probes_run_on_while_they_creep():
    """Check that the search's probes of starts are the rounds allowed to creep."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(300, 8))
    B = A @ ortho_group.rvs(8, random_state=0)
    calls = []
    original = unsupervised._rounds

    def recording(*args, **kwargs):
        calls.append(kwargs.get("creep", False))
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(unsupervised, "_rounds", recording)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnsupervisedAlignmentWarning)
            SelfLearningAligner(random_state=0, n_restarts=0).fit([A, B])
    assert calls and all(calls)


@pytest.mark.parametrize("k", [1, 3])
def test_neighbourhood_pairs_are_each_rows_best_csls_matches_both_ways(k):
    """Check neighbourhood_pairs against CSLS scores computed densely.

    Every row of pool 0 is paired with its k best CSLS matches in pool 1,
    then every row of pool 1 with its k best in pool 0; a pair found from
    both sides appears twice.
    """
    rng = np.random.default_rng(k)
    A, B = rng.normal(size=(40, 5)), rng.normal(size=(30, 5))
    unit = [Z / np.linalg.norm(Z, axis=1, keepdims=True) for Z in (A, B)]
    S = unit[0] @ unit[1].T
    csls_k = 4
    r0 = -np.sort(-S, axis=1)[:, :csls_k].mean(axis=1)
    r1 = -np.sort(-S, axis=0)[:csls_k].mean(axis=0)
    C = 2 * S - r0[:, None] - r1[None, :]
    forward = np.argsort(-C, axis=1, kind="stable")[:, :k]
    backward = np.argsort(-C.T, axis=1, kind="stable")[:, :k]
    expected = np.vstack(
        [
            np.column_stack([np.repeat(np.arange(40), k), forward.ravel()]),
            np.column_stack([backward.ravel(), np.repeat(np.arange(30), k)]),
        ]
    )
    pairs = neighbourhood_pairs([A, B], csls_k, k, working_memory=None)
    assert_array_equal(pairs, expected)
    # Some pairs are found from both sides, and are kept twice.
    codes = pairs[:, 0] * 30 + pairs[:, 1]
    assert np.intersect1d(codes[: 40 * k], codes[40 * k :]).size > 0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_neighbourhood_rounds_refit_the_aligners_kind_until_settled():
    """Check the rounds' outcome: the aligner refitted on the pairs it returns.

    The returned map is a clone of the given one fitted on the returned
    neighbourhood pairs, and the pairs have settled: one more round under it
    changes at most ``tol`` of them.
    """
    A, B, _, _ = _one_mixture_pools(seed=1, n=300, d=8, n_clusters=6)
    estimator = SelfLearningAligner(tol=0.02, n_iter=30)
    start = ProcrustesAligner(center=True, normalize="l2").fit([A[:50], B[:50]])
    aligner, pairs, rounds, change = neighbourhood_rounds(
        estimator, [A, B], [A, B], start, csls_k=10
    )
    assert isinstance(aligner, ProcrustesAligner) and aligner is not start
    assert pairs.shape == (2 * 300 * unsupervised._NEIGHBOURHOOD, 2)
    assert 1 <= rounds <= 30 and change <= 0.02
    refit = clone(start).fit([A[pairs[:, 0]], B[pairs[:, 1]]])
    for k in range(2):
        assert_allclose(
            refit.transform_view(A, view=k), aligner.transform_view(A, view=k)
        )
    mapped = estimator._centred_maps(aligner, [A, B])
    again = neighbourhood_pairs(mapped, 10, unsupervised._NEIGHBOURHOOD, None)
    assert unsupervised._changed_share(pairs, again) <= 0.02


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_untrusted_cold_map_ends_on_neighbourhood_rounds(capsys, monkeypatch):
    """Check that fit refines an untrusted cold map by neighbourhood rounds.

    Disjoint pools of one clustered distribution: the cold map is not
    trusted, so fit ends on neighbourhood rounds; the fitted map is the trial's
    kind refitted on their pairs (every row with its best matches, both
    ways), and the rounds count in n_iter_. The trial before them is the one
    of an untrusted map (a tie goes to the ridge map). The fit still warns.
    The warm fit from the refined map (see fit) is not trusted either, so
    the refined map is kept.
    Pools of different widths are refined so too, with no warm fit after.
    """
    d = 16
    A, B, _ = _disjoint_clustered_pools(d)
    trials = []
    final_map = SelfLearningAligner._final_map

    def recorded(self, *args, refined=False):
        trials.append(refined)
        return final_map(self, *args, refined=refined)

    monkeypatch.setattr(SelfLearningAligner, "_final_map", recorded)
    with pytest.warns(UnsupervisedAlignmentWarning):
        fitted = SelfLearningAligner(
            init="components", n_restarts=0, random_state=0, verbose=1
        ).fit([A, B])
    out = capsys.readouterr().out
    assert fitted.confidence_ < MIN_CONFIDENCE
    # The search's trial, then that of the warm fit from its untrusted map
    # (not refined: a warm map is not), which fit drops as untrusted too.
    assert trials == [True, False]
    rounds = out.count("neighbourhood round")
    assert rounds >= 1
    k = unsupervised._NEIGHBOURHOOD
    assert fitted.dictionary_.shape == (2 * 500 * k, 2)
    pairs = fitted.dictionary_
    assert_array_equal(pairs[: 500 * k, 0], np.repeat(np.arange(500), k))
    assert_array_equal(pairs[500 * k :, 1], np.repeat(np.arange(500), k))
    refit = clone(fitted.aligner_).fit([A[pairs[:, 0]], B[pairs[:, 1]]])
    for view in range(2):
        assert_allclose(
            refit.transform_view(A, view=view),
            fitted.aligner_.transform_view(A, view=view),
        )
    # The search's own rounds come first.
    assert fitted.n_iter_ > rounds
    # Between views of different widths too, but no warm refit follows
    # (see fit): one trial, of an untrusted map.
    wider = B @ ortho_group.rvs(24, random_state=12)[:d]
    with pytest.warns(UnsupervisedAlignmentWarning):
        rectangular = SelfLearningAligner(
            init="components", n_restarts=0, random_state=0, verbose=1
        ).fit([A, wider])
    assert rectangular.confidence_ < MIN_CONFIDENCE
    assert "neighbourhood round" in capsys.readouterr().out
    assert trials == [True, False, True]
    pairs = rectangular.dictionary_
    assert pairs.shape == (2 * 500 * k, 2)
    assert_array_equal(pairs[: 500 * k, 0], np.repeat(np.arange(500), k))
    refit = clone(rectangular.aligner_).fit([A[pairs[:, 0]], wider[pairs[:, 1]]])
    assert_allclose(
        refit.transform_view(wider, view=1),
        rectangular.aligner_.transform_view(wider, view=1),
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("preferred", [0, 1])
def test_neighbourhood_rounds_run_the_ridge_map_both_ways(preferred, monkeypatch):
    """Check the rounds of an untrusted cold map without a base.

    They run twice from the search's dictionary, the ridge map into view 0
    and into view 1; the run whose pairs have the higher leading score is
    kept (here the score is fixed to prefer one run, to check the choice
    itself), the trial's kind is fitted on its pairs, and n_iter_ counts the
    rounds of both. With a base, the rounds run once, on the base's kind.
    """
    A, B, _ = _disjoint_clustered_pools(16)
    runs = []
    rounds_of = selflearn.neighbourhood_rounds

    def recorded_rounds(estimator, blocks, pools, aligner, csls_k):
        result = rounds_of(estimator, blocks, pools, aligner, csls_k)
        runs.append((clone(aligner), result[1], result[2]))
        return result

    def fixed_score(estimator, blocks, pools, dictionary, csls_k):
        assert dictionary is runs[-1][1]
        return 1.0 if len(runs) - 1 == preferred else 0.0

    monkeypatch.setattr(selflearn, "neighbourhood_rounds", recorded_rounds)
    monkeypatch.setattr(selflearn, "leading_score", fixed_score)
    with pytest.warns(UnsupervisedAlignmentWarning):
        fitted = SelfLearningAligner(
            init="components", n_restarts=0, random_state=0
        ).fit([A, B])
    assert fitted.confidence_ < MIN_CONFIDENCE
    assert [type(start) for start, _, _ in runs] == [RidgeAligner, RidgeAligner]
    assert [start.reference for start, _, _ in runs] == [0, 1]
    kept = runs[preferred][1]
    assert_array_equal(fitted.dictionary_, kept)
    assert not np.array_equal(runs[0][1], runs[1][1])
    # The kind the trial chose, fitted on the kept run's pairs.
    refit = clone(fitted.aligner_).fit([A[kept[:, 0]], B[kept[:, 1]]])
    for view in range(2):
        assert_allclose(
            refit.transform_view(A, view=view),
            fitted.aligner_.transform_view(A, view=view),
        )
    assert fitted.n_iter_ > runs[0][2] + runs[1][2]

    runs.clear()
    base = ProcrustesAligner(center=True, normalize="l2")
    with pytest.warns(UnsupervisedAlignmentWarning):
        SelfLearningAligner(
            base=base, init="components", n_restarts=0, random_state=0
        ).fit([A, B])
    assert len(runs) == 1
    assert isinstance(runs[0][0], ProcrustesAligner)


@pytest.mark.parametrize(
    "aligner",
    [ProcrustesAligner(center=True, normalize="l2"), RidgeAligner(reference=0)],
    ids=["orthogonal", "ridge"],
)
def test_fit_on_pairs_in_chunks_equals_one_fit(aligner, monkeypatch):
    """Check that pairs fitted a chunk at a time give the map of one fit.

    A working memory of a few KiB splits 3,000 pairs into chunks of 1,024;
    the maps agree with a fit on all the gathered rows up to rounding.
    """
    chunks = []
    partial_fit = type(aligner).partial_fit

    def counted(self, X, y=None):
        chunks.append(X[0].shape[0])
        return partial_fit(self, X, y)

    monkeypatch.setattr(type(aligner), "partial_fit", counted)
    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(200, 6)), rng.normal(size=(150, 6))]
    pairs = np.column_stack(
        [rng.integers(200, size=3000), rng.integers(150, size=3000)]
    )
    whole = clone(aligner).fit([blocks[0][pairs[:, 0]], blocks[1][pairs[:, 1]]])
    chunked = fit_on_pairs(aligner, blocks, pairs, working_memory=0.01)
    assert chunks == [1024, 1024, 952]
    for view in range(2):
        assert_allclose(
            chunked.transform_view(blocks[view], view=view),
            whole.transform_view(blocks[view], view=view),
            rtol=1e-9,
            atol=1e-12,
        )


@pytest.mark.parametrize("shared", [600, 1200])
@pytest.mark.slow
def test_a_pool_holding_part_of_the_other(shared):
    """Check a second pool that is an exact rotation of part of the first.

    The confidence holds out rows of the first pool, and its rows outside
    the shared part have no partner under any map: the exact map was
    untrusted (0.06 and 0.38), warned about, and then refined by the
    neighbourhood rounds. Judged with the roles swapped it is trusted.
    """
    rng = np.random.default_rng(0)
    A = _clustered(seed=0, n=2000, d=16)
    order = rng.permutation(2000)
    B = (A @ ortho_group.rvs(16, random_state=0))[order][:shared]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupervisedAlignmentWarning)
        aligner = SelfLearningAligner(random_state=0).fit([A, B])
        known = SelfLearningAligner(random_state=0).fit(
            [A, B], pairs=np.column_stack([order[:30], np.arange(30)])
        )
    for fitted in (aligner, known):
        assert fitted.confidence_ > 0.9
        top1 = retrieval_accuracy(
            fitted.transform_view(B, 1), fitted.transform_view(A[order[:shared]], 0)
        )
        assert top1 == 1.0


def test_a_map_trusted_with_swapped_roles_keeps_mutual_pairs():
    """Check a stretched second pool holding part of the first.

    The search judged its map untrusted and ended on rounds that keep every
    row's best match; trusted once the roles were swapped, the fit returned
    that dictionary (604 pairs for 250 rows of pool 1, 41% right) and a map
    that retrieved 0.91 of the true pairs. Mutual rounds from that map now
    give a dictionary of mutual pairs, nearly all right.
    """
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(12, 16)) * 3
    A = centres[rng.integers(0, 12, 600)] + rng.normal(size=(600, 16))
    rotation = np.linalg.qr(rng.normal(size=(16, 16)))[0]
    rows = rng.permutation(600)[:250]
    stretched = A @ (rotation * np.linspace(0.4, 2.5, 16))
    B = (stretched + 0.3 * rng.normal(size=A.shape))[rows]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupervisedAlignmentWarning)
        aligner = SelfLearningAligner(random_state=0).fit([A, B])
    assert aligner.confidence_ > 0.9
    d = aligner.dictionary_
    assert np.unique(d[:, 1]).size == d.shape[0]  # one pair per row of pool 1
    assert np.mean(rows[d[:, 1]] == d[:, 0]) > 0.95
    Z = aligner._transform_views([A[rows], B])
    assert retrieval_accuracy(Z[1], Z[0]) > 0.98


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.slow
def test_swapped_roles_still_flag_unrelated_pools_of_unequal_sizes(seed):
    """Check the second look at unequal pools: independent noise stays untrusted."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(2000, 16))
    B = rng.normal(size=(600, 16)) * np.geomspace(2, 0.5, 16)
    with pytest.warns(UnsupervisedAlignmentWarning, match="no pairs-free map"):
        aligner = SelfLearningAligner(random_state=seed).fit([A, B])
    assert aligner.confidence_ < MIN_CONFIDENCE
