"""Tests for SelfLearningAligner."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from _corpora import available_corpus, missing
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import ortho_group
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import skembed._procrustes
from skembed import (
    ProcrustesAligner,
    RidgeAligner,
    SelfLearningAligner,
    UnsupervisedAlignmentWarning,
    kneighbors,
    load_aligner,
    save_aligner,
)
from skembed._selflearn import _determined_coordinates, _orthogonal_wins
from skembed.datasets import load_fortunes
from skembed.exceptions import SelfLearningConvergenceWarning
from skembed.metrics import retrieval_accuracy


def _rotated_pools(seed=0, n=300, d=16, shift=0.0):
    """A pool, and a rotated, shifted and shuffled copy of it.

    Returns ``A, B, order, Q`` with ``B[i] = A[order[i]] @ Q + shift``; the
    spectrum is spread (standard deviations from 3 down to 0.5) so that the
    rotation is well determined.
    """
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d)) * np.geomspace(3, 0.5, d)
    Q = ortho_group.rvs(d, random_state=seed)
    order = rng.permutation(n)
    B = (A @ Q)[order] + shift
    return A, B, order, Q


def _seed_pairs(order, m, seed=0):
    """m true pairs (row of A, row of B) for ``B[i] = A[order[i]]``."""
    rows = np.random.default_rng(seed).choice(order.shape[0], m, replace=False)
    return np.column_stack([order[rows], rows])


def _precision(dictionary, order):
    return float(np.mean(order[dictionary[:, 1]] == dictionary[:, 0]))


def test_rotated_copies_aligned_exactly_from_five_pairs():
    """Check that five known pairs align noiseless rotated copies exactly."""
    A, B, order, Q = _rotated_pools()
    pairs = _seed_pairs(order, 5)
    aligner = SelfLearningAligner(random_state=0).fit([A, B], pairs=pairs)

    assert_allclose(aligner.aligner_.rotations_[1], Q.T, atol=1e-8)
    # With the default l2 base, translation lands among the unit-length rows.
    unit = A[order] / np.linalg.norm(A[order], axis=1, keepdims=True)
    assert_allclose(aligner.translate(B, source=1, target=0), unit, atol=1e-8)
    assert_allclose(
        aligner.transform_view(B, 1), aligner.transform_view(A[order], 0), atol=1e-8
    )
    # Five pairs alone leave the map undetermined in 16 dimensions.
    plain = ProcrustesAligner(normalize="l2").fit([A[pairs[:, 0]], B[pairs[:, 1]]])
    assert not np.allclose(plain.rotations_[1], Q.T, atol=1e-2)


def test_induced_dictionary_is_correct():
    """Check that the induced dictionary pairs every row with its copy."""
    A, B, order, _ = _rotated_pools(seed=1)
    pairs = _seed_pairs(order, 5, seed=1)
    aligner = SelfLearningAligner(random_state=0).fit([A, B], pairs=pairs)

    dictionary = aligner.dictionary_
    assert dictionary.dtype == np.int64
    assert dictionary.shape == (A.shape[0], 2)
    assert _precision(dictionary, order) == 1.0
    # The known pairs are part of it, and it is sorted.
    codes = dictionary[:, 0] * B.shape[0] + dictionary[:, 1]
    assert np.all(np.diff(codes) > 0)
    assert np.isin(pairs[:, 0] * B.shape[0] + pairs[:, 1], codes).all()
    assert 1 <= aligner.n_iter_ < aligner.n_iter
    assert aligner.isomorphism_score_ is None


def test_unequal_pools_with_partial_overlap():
    """Check pools of different sizes that share only some of their items.

    Pool 0 holds 400 items and pool 1 holds 300, of which 200 are shared. The
    shared items must all be paired correctly and the map recovered; the rows
    without a partner may still get a (necessarily wrong) mutual match, which
    is what limits the precision of the induced dictionary.
    """
    rng = np.random.default_rng(3)
    d = 16
    items = rng.normal(size=(500, d)) * np.geomspace(3, 0.5, d)
    Q = ortho_group.rvs(d, random_state=3)
    in_0 = rng.permutation(np.r_[0:200, 200:400])
    in_1 = rng.permutation(np.r_[0:200, 400:500])
    X0, X1 = items[in_0], items[in_1] @ Q
    position_0 = {item: row for row, item in enumerate(in_0)}
    shared = np.flatnonzero(in_1 < 200)[:10]
    pairs = np.column_stack([[position_0[in_1[j]] for j in shared], shared])

    aligner = SelfLearningAligner(random_state=0).fit([X0, X1], pairs=pairs)

    found = in_0[aligner.dictionary_[:, 0]] == in_1[aligner.dictionary_[:, 1]]
    recall = found.sum() / 200
    precision = found.mean()
    assert recall == 1.0
    # 200 true pairs; false mutual matches among the 300 unshared rows.
    assert 0.5 < precision <= 1.0
    assert_allclose(aligner.aligner_.rotations_[1], Q.T, atol=0.1)
    Z0 = aligner.transform_view(items[:200], 0)
    Z1 = aligner.transform_view(items[:200] @ Q, 1)
    assert retrieval_accuracy(Z0, Z1, method="csls") == 1.0


def test_pairs_cut_by_a_splitter_are_explained():
    """Check pairs routed through cross_validate get an error that says why.

    With metadata routing, a splitter cuts pairs of one row per row of X as
    it cuts X; the indices of the pairs kept still count all the rows.
    """
    from sklearn import config_context
    from sklearn.model_selection import cross_validate

    rng = np.random.default_rng(0)
    A = rng.normal(size=(60, 4))
    X = np.hstack([A, A @ ortho_group.rvs(4, random_state=0)])
    pairs = np.column_stack([np.arange(60), np.arange(60)])
    with config_context(enable_metadata_routing=True):
        aligner = SelfLearningAligner(views=2).set_fit_request(pairs=True)
        with pytest.raises(ValueError, match="cut by a splitter"):
            cross_validate(
                aligner, X, cv=2, params={"pairs": pairs}, error_score="raise"
            )
    # Pairs of other lengths that miss the rows are not told about splitters.
    with pytest.raises(ValueError, match="must index rows") as caught:
        SelfLearningAligner(views=2).fit(X, pairs=pairs[:2] + 59)
    assert "splitter" not in str(caught.value)


@pytest.mark.parametrize(
    "pairs, match",
    [
        (np.array([[0, 1], [2, 300]]), r"pairs\[:, 1\] must index rows of view 1"),
        (np.array([[-1, 1], [2, 3]]), r"pairs\[:, 0\] must index rows of view 0"),
        (np.array([[0, 1, 2], [3, 4, 5]]), r"pairs must have shape \(n_pairs, 2\)"),
        (np.array([0, 1, 2, 3]), r"pairs must have shape \(n_pairs, 2\)"),
        (np.zeros((2, 2, 2), dtype=int), r"pairs must have shape \(n_pairs, 2\)"),
        # Empty, but not "no pairs": a shape that is not (n_pairs, 2).
        (np.empty((0, 3), dtype=int), r"pairs must have shape \(n_pairs, 2\)"),
        (np.empty((2, 0), dtype=int), r"pairs must have shape \(n_pairs, 2\)"),
        (np.array([[0, 1], [0, 2]]), r"pairs must be one-to-one.*row 0 of view 0"),
        (np.array([[0, 1], [2, 1]]), r"pairs must be one-to-one.*row 1 of view 1"),
        (np.array([[0.0, 1.5], [2.0, 3.0]]), r"pairs must hold integer row"),
        (np.array([[0, 1], [2, np.nan]]), r"pairs must hold integer row"),
        (np.array([["a", "b"], ["c", "d"]]), r"pairs must hold integer row"),
        ("0,1", r"pairs must be an \(n_pairs, 2\) array"),
        (np.array([[0, 1]]), r"pairs holds 1 pair"),
        # The value given, not the one a cast to int64 wraps it to.
        (np.array([[0, 1], [2, 1e30]]), r"view 1, .* got 1e\+30\.$"),
        (np.array([[0, 1], [2, 2**63 + 5]], dtype=np.uint64), r"got 922337203"),
    ],
)
def test_bad_pairs_raise(pairs, match):
    """Check that malformed pairs get an error naming pairs and the fix."""
    A, B, _, _ = _rotated_pools(n=300)
    with pytest.raises(ValueError, match=match):
        SelfLearningAligner().fit([A, B], pairs=pairs)


def test_pairs_accept_lists_and_whole_floats():
    """Check that a list of pairs or a float array of whole numbers work."""
    A, B, order, _ = _rotated_pools(n=200)
    pairs = _seed_pairs(order, 5)
    reference = SelfLearningAligner(random_state=0).fit([A, B], pairs=pairs)
    nullable = pd.DataFrame(pairs).astype("Int64")
    for alternative in (
        pairs.tolist(),
        pairs.astype(float),
        pairs.astype(np.int32),
        nullable,
    ):
        aligner = SelfLearningAligner(random_state=0).fit([A, B], pairs=alternative)
        assert_array_equal(aligner.dictionary_, reference.dictionary_)


@pytest.mark.parametrize("init", ["auto", "sorted_similarity"])
def test_unsupervised_start_on_an_easy_case(init):
    """Check that without pairs rotated, shuffled copies are still aligned."""
    A, B, order, Q = _rotated_pools(seed=4, n=400)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupervisedAlignmentWarning)
        aligner = SelfLearningAligner(init=init, random_state=0).fit([A, B])

    assert aligner.confidence_ > 0.5
    if init == "sorted_similarity":
        assert aligner.isomorphism_score_ > 0.5
    else:
        # The pre-flight check belongs to the single-dictionary starts.
        assert aligner.isomorphism_score_ is None
    assert _precision(aligner.dictionary_, order) == 1.0
    assert aligner.dictionary_.shape[0] == A.shape[0]
    assert_allclose(aligner.aligner_.rotations_[1], Q.T, atol=1e-8)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("init", ["auto", "sorted_similarity"])
def test_warns_on_hopeless_unsupervised_case(init):
    """Check the warnings when two pools share no structure."""
    rng = np.random.default_rng(5)
    X0, X1 = rng.normal(size=(300, 16)), rng.normal(size=(250, 16))
    with pytest.warns(UnsupervisedAlignmentWarning, match="known pairs"):
        aligner = SelfLearningAligner(init=init, random_state=0, n_iter=3).fit([X0, X1])
    assert aligner.confidence_ < 0.5
    if init == "sorted_similarity":
        assert aligner.isomorphism_score_ < 0.1


def test_no_preflight_warning_with_pairs():
    """Check that known pairs skip the pre-flight check, while the map they
    lead to (two unrelated pools: at chance) is still judged."""
    rng = np.random.default_rng(5)
    X0, X1 = rng.normal(size=(300, 16)), rng.normal(size=(250, 16))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnsupervisedAlignmentWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        aligner = SelfLearningAligner(random_state=0, n_iter=3).fit(
            [X0, X1], pairs=[[0, 0], [1, 1], [2, 2]]
        )
    assert aligner.isomorphism_score_ is None
    messages = [str(w.message) for w in caught]
    assert not any("found no structure" in message for message in messages)
    assert len(messages) == 1 and "map from 3 known pairs" in messages[0]
    assert aligner.confidence_ < 0.5


@pytest.mark.parametrize(
    "case, reason",
    [
        ("unrelated", "low_confidence"),
        ("first_small", "first_pool_too_small"),
        ("few_rows", "too_few_rows"),
        ("known_pairs", "known_pairs_disagree"),
        ("preflight", "no_shared_structure"),
    ],
)
def test_warnings_carry_their_findings_as_fields(case, reason):
    """Check that each untrusted fit says what it found in fields, not text alone.

    A caller that reports the finding in its own terms (the command line
    names files and options, not attributes) reads the reason and the
    numbers there; they survive pickling, as through joblib workers.
    """
    rng = np.random.default_rng(1)
    X0 = rng.normal(size=(300, 8)) * np.linspace(3, 1, 8)
    X1 = rng.normal(size=(300, 8))
    params, pairs = {}, None
    if case == "first_small":
        X0, X1 = rng.normal(size=(150, 8)), rng.normal(size=(600, 8))
    elif case == "few_rows":
        X0, X1 = X0[:60], X1[:70]
    elif case == "known_pairs":
        params, pairs = {"n_iter": 1}, np.column_stack([np.arange(40)] * 2)
    elif case == "preflight":
        params = {"init": "sorted_similarity"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aligner = SelfLearningAligner(random_state=0, **params).fit(
            [X0, X1], pairs=pairs
        )
    untrusted = [
        w.message for w in caught if w.category is UnsupervisedAlignmentWarning
    ]
    assert reason in [w.reason for w in untrusted]
    (warning,) = [w for w in untrusted if w.reason == reason]
    if reason == "no_shared_structure":
        assert warning.isomorphism_score == aligner.isomorphism_score_
        assert warning.confidence is None
    else:
        assert_array_equal(warning.confidence, aligner.confidence_)
        assert_array_equal(warning.start_agreement, aligner.start_agreement_)
    if reason == "known_pairs_disagree":
        assert warning.n_known_pairs == 40
        assert warning.n_distinct_rows is None
    if reason == "too_few_rows":
        assert warning.n_distinct_rows == 60
    copy = pickle.loads(pickle.dumps(warning))
    assert (type(copy), str(copy)) == (type(warning), str(warning))
    assert vars(copy) == pytest.approx(vars(warning), nan_ok=True)
    unsettled = [
        w.message for w in caught if issubclass(w.category, ConvergenceWarning)
    ]
    for warning in unsettled:
        # Still a scikit-learn ConvergenceWarning, for filters on that class.
        assert isinstance(warning, SelfLearningConvergenceWarning)
        assert warning.stage in ("dictionary", "neighbourhood")
        assert warning.n_iter == aligner.n_iter and warning.tol == aligner.tol
        assert warning.change > warning.tol
        assert vars(pickle.loads(pickle.dumps(warning))) == vars(warning)
    if case == "known_pairs":
        assert [w.stage for w in unsettled] == ["dictionary"]


def test_identity_init_for_views_sharing_a_space():
    """Check init='identity' on two noisy copies of one space, and its error."""
    rng = np.random.default_rng(6)
    A = rng.normal(size=(300, 16)) * np.geomspace(3, 0.5, 16)
    order = rng.permutation(300)
    B = (A + 0.05 * rng.normal(size=A.shape))[order]
    aligner = SelfLearningAligner(init="identity", random_state=0).fit([A, B])
    assert _precision(aligner.dictionary_, order) == 1.0
    assert aligner.isomorphism_score_ > 0.5

    with pytest.raises(ValueError, match="init='identity'.*equal width"):
        SelfLearningAligner(init="identity").fit([A, B[:, :8]])


def test_pipeline_on_row_paired_data():
    """Check use inside a Pipeline on row-paired data, with and without pairs."""
    A, B, order, _ = _rotated_pools(seed=7, n=300)
    X = np.hstack([A[order], B])  # row-paired: row i of both views is item order[i]
    y = (A[order, 0] > 0).astype(int)
    pipe = make_pipeline(
        SelfLearningAligner(random_state=0, combine="mean"), LogisticRegression()
    )
    rows = np.arange(5)
    pipe.fit(X, y, selflearningaligner__pairs=np.column_stack([rows, rows]))
    aligner = pipe[0]
    assert_array_equal(aligner.dictionary_, np.column_stack([np.arange(300)] * 2))
    assert pipe.score(X, y) > 0.9
    assert aligner.score(X) == 1.0
    assert pipe[:-1].get_feature_names_out().shape == (16,)

    # Without pairs the same row-paired X starts unsupervised.
    unsupervised = clone(pipe).fit(X, y)
    assert_array_equal(unsupervised[0].dictionary_, aligner.dictionary_)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_failed_search_on_one_row_paired_x_says_its_rows_are_pairs():
    """Check the warning of a failed search on one X split into views: its
    rows are pairs already, which the search without pairs ignores (an
    audit waited two minutes for a warning that did not say so). A list of
    pools gets no such hint."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 16))
    aligner = SelfLearningAligner(init="sorted_similarity", random_state=0, n_iter=3)
    with pytest.warns(UnsupervisedAlignmentWarning, match="paired by construction"):
        aligner.fit(X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aligner.fit([X[:, :8], X[:, 8:]])
    assert caught and not any(
        "paired by construction" in str(w.message) for w in caught
    )


def test_determined_coordinates_bound_every_completion():
    """Check that the induction cosine is the best any completion of a map gives.

    Maps that agree on a 2-dimensional span of a 6-dimensional space differ by
    an orthogonal G on its complement: the coordinates must not depend on G,
    and their cosine must bound the cosine under every G, with equality for
    the G that turns one residual onto the other.
    """
    rng = np.random.default_rng(0)
    frame = ortho_group.rvs(6, random_state=0)
    basis, complement = frame[:, :2], frame[:, 2:]
    X, Y = rng.normal(size=(20, 6)), rng.normal(size=(20, 6))

    def cosines(P, R):
        P = P / np.linalg.norm(P, axis=1, keepdims=True)
        R = R / np.linalg.norm(R, axis=1, keepdims=True)
        return np.sum(P * R, axis=1)

    bound = cosines(
        _determined_coordinates(X, basis), _determined_coordinates(Y, basis)
    )
    for seed in range(5):
        G = ortho_group.rvs(4, random_state=seed)
        completion = basis @ basis.T + complement @ G @ complement.T
        moved = Y @ completion
        assert_allclose(
            _determined_coordinates(moved, basis),
            _determined_coordinates(Y, basis),
            atol=1e-12,
        )
        assert np.all(cosines(X, moved) <= bound + 1e-12)
    # The best completion for row 0 turns its residual onto that of X[0].
    r_x, r_y = X[0] @ complement, Y[0] @ complement
    u, v = r_x / np.linalg.norm(r_x), r_y / np.linalg.norm(r_y)
    # A reflection swapping u and v maps r_y's direction onto r_x's.
    w = (v - u) / np.linalg.norm(v - u)
    G = np.eye(4) - 2 * np.outer(w, w)
    best = Y[:1] @ (basis @ basis.T + complement @ G @ complement.T)
    assert_allclose(cosines(X[:1], best), bound[:1], atol=1e-12)
    assert _determined_coordinates(X, basis).dtype == X.dtype


def _null_space_variant(choose, rank_deficient_calls):
    """``orthogonal_factor`` as another LAPACK build may return it.

    When the cross-covariance has rank r below its width, any orthonormal
    bases U_n, V_n of its two null spaces are valid singular vectors, so
    U V^T = U_r V_r^T + U_n G V_n^T for an orthogonal G that depends on the
    build and the CPU kernel. ``choose(U_n, V_n)`` returns that G here.
    """
    native = skembed._procrustes.orthogonal_factor

    def factor(cross, *, allow_reflection=True):
        W, singular_values = native(cross, allow_reflection=allow_reflection)
        U, s, Vt = np.linalg.svd(cross)
        rank = int(np.sum(s > s[0] * 1e-9))
        if rank == s.size:
            return W, singular_values
        rank_deficient_calls.append(rank)
        G = choose(U[:, rank:], Vt[rank:].T)
        return U[:, :rank] @ Vt[:rank] + U[:, rank:] @ G @ Vt[rank:], singular_values

    return factor


def test_result_does_not_depend_on_the_null_space_basis(monkeypatch):
    """Check that few pairs give one map whatever null-space basis the SVD returns.

    Five pairs in 16 dimensions leave a 12-dimensional null space in the
    first cross-covariance; machines differ in the basis LAPACK returns for
    it. Every choice, even the one that maps the null space exactly opposite
    to the true rotation, must lead to the same, exact dictionary and map.
    """
    A, B, order, Q = _rotated_pools(seed=7, n=300)
    X = [A[order], B]
    rows = np.arange(5)
    pairs = np.column_stack([rows, rows])
    choices = {
        "true rotation": lambda U_n, V_n: U_n.T @ Q.T @ V_n,
        "opposite": lambda U_n, V_n: -U_n.T @ Q.T @ V_n,
        "identity": lambda U_n, V_n: np.eye(U_n.shape[1]),
        "random 0": lambda U_n, V_n: ortho_group.rvs(U_n.shape[1], random_state=0),
        "random 1": lambda U_n, V_n: ortho_group.rvs(U_n.shape[1], random_state=1),
    }
    for name, choose in choices.items():
        calls = []
        monkeypatch.setattr(
            skembed._procrustes,
            "orthogonal_factor",
            _null_space_variant(choose, calls),
        )
        aligner = SelfLearningAligner(random_state=0).fit(X, pairs=pairs)
        # The seeds' fit was rank-deficient (rank 4 after centring).
        assert calls and calls[0] == 4, name
        assert_array_equal(
            aligner.dictionary_, np.column_stack([np.arange(300)] * 2), err_msg=name
        )
        assert_allclose(aligner.aligner_.rotations_[1], Q.T, atol=1e-8, err_msg=name)


@settings(deadline=None)
@given(
    data_seed=st.integers(0, 2**32 - 1),
    rotation_seed=st.integers(0, 2**32 - 1),
    pair_seed=st.integers(0, 2**32 - 1),
    n_pairs=st.integers(2, 8),
    noise_seed=st.integers(0, 2**32 - 1),
)
@pytest.mark.slow
def test_exact_recovery_does_not_hang_on_rounding(
    data_seed, rotation_seed, pair_seed, n_pairs, noise_seed
):
    """Check exact recovery from 2 to 8 pairs, also after 1e-12 perturbations.

    A perturbation of 1e-12 changes every rounding error (as another BLAS
    kernel does) but no item's partner: the dictionary must stay the same.
    """
    rng = np.random.default_rng(data_seed)
    n, d = 200, 16
    A = rng.normal(size=(n, d)) * np.geomspace(3, 0.5, d)
    Q = ortho_group.rvs(d, random_state=rotation_seed)
    order = rng.permutation(n)
    B = (A @ Q)[order]
    pairs = _seed_pairs(order, n_pairs, seed=pair_seed)
    noise = np.random.default_rng(noise_seed)
    truth = np.column_stack([order, np.arange(n)])
    truth = truth[np.argsort(truth[:, 0])]
    for scale in (0.0, 1e-12):
        X = [
            A + scale * noise.normal(size=A.shape),
            B + scale * noise.normal(size=B.shape),
        ]
        aligner = SelfLearningAligner(random_state=0).fit(X, pairs=pairs)
        assert_array_equal(aligner.dictionary_, truth)
        assert_allclose(aligner.aligner_.rotations_[1], Q.T, atol=1e-8)


def test_behaves_like_its_fitted_base():
    """Check that the fitted aligner maps exactly as its fitted base aligner."""
    A, B, order, _ = _rotated_pools(seed=8, n=200)
    B = B * 2.0
    pairs = _seed_pairs(order, 5)
    for base in (None, ProcrustesAligner(scale=True, normalize=None)):
        aligner = SelfLearningAligner(base, random_state=0).fit([A, B], pairs=pairs)
        fitted = aligner.aligner_
        X = [A[order], B]
        assert_allclose(aligner.transform(X), fitted.transform(X))
        assert_allclose(aligner.transform_view(B, 1), fitted.transform_view(B, 1))
        assert_allclose(
            aligner.translate(B, source=1, target=0),
            fitted.translate(B, source=1, target=0),
        )
        assert aligner.score(X) == fitted.score(X) == 1.0
        assert aligner._l2_rows == (base is None)
    # The base passed in is left untouched (it is cloned).
    assert not hasattr(base, "rotations_")


def test_views_of_different_widths_search_in_the_wider_view():
    """Check a narrower first view: searched in the wider one, fitted by default.

    View 0 (10 columns) is an isometric image of view 1 (16 columns) with
    the 6 smallest directions dropped. The rounds map view 0 into view 1 (a
    closed form); the returned map is still the documented base's, whose
    reference is view 0, refitted on the dictionary found.
    """
    A, B, order, Q = _rotated_pools(seed=15, n=300)
    narrow = A[:, :10]
    pairs = _seed_pairs(order, 12, seed=15)
    aligner = SelfLearningAligner(random_state=0).fit([narrow, B], pairs=pairs)
    assert _precision(aligner.dictionary_, order) == 1.0
    assert aligner.aligner_.reference == 0
    expected = ProcrustesAligner(center=True, normalize="l2").fit(
        [narrow[aligner.dictionary_[:, 0]], B[aligner.dictionary_[:, 1]]]
    )
    X = [narrow[order], B]
    assert_allclose(aligner.transform(X), expected.transform(X))
    assert aligner.transform_view(B, 1).shape == (300, 10)
    assert aligner.score(X) == 1.0


def test_float32_in_float32_out():
    """Check that float32 pools give float32 outputs."""
    A, B, order, _ = _rotated_pools(seed=9, n=200)
    A, B = A.astype(np.float32), B.astype(np.float32)
    aligner = SelfLearningAligner(random_state=0).fit(
        [A, B], pairs=_seed_pairs(order, 5)
    )
    assert aligner.transform_view(B, 1).dtype == np.float32
    assert aligner.transform([A[order], B]).dtype == np.float32
    assert _precision(aligner.dictionary_, order) == 1.0


def test_deterministic_and_memory_independent():
    """Check equal results for a fixed random_state and any working_memory."""
    A, B, order, _ = _rotated_pools(seed=10, n=300)
    pairs = _seed_pairs(order, 5)
    first = SelfLearningAligner(random_state=0).fit([A, B], pairs=pairs)
    second = SelfLearningAligner(random_state=0).fit([A, B], pairs=pairs)
    assert_array_equal(first.dictionary_, second.dictionary_)
    assert first.n_iter_ == second.n_iter_
    # A budget of about 10 rows per block gives the same neighbours.
    small = SelfLearningAligner(random_state=0, working_memory=0.1).fit(
        [A, B], pairs=pairs
    )
    assert_array_equal(small.dictionary_, first.dictionary_)
    assert_allclose(small.aligner_.rotations_[1], first.aligner_.rotations_[1])


def test_induction_size_limits_induced_rows():
    """Check that only the first induction_size rows of each pool are induced.

    As with frequency-sorted vocabularies, the first 150 rows of both pools
    are the same items (in another order), and so are the last 150.
    """
    rng = np.random.default_rng(11)
    A = rng.normal(size=(300, 16)) * np.geomspace(3, 0.5, 16)
    Q = ortho_group.rvs(16, random_state=11)
    order = np.r_[rng.permutation(150), 150 + rng.permutation(150)]
    B = (A @ Q)[order]
    pairs = np.column_stack([order[[0, 1, 2, 200, 250]], [0, 1, 2, 200, 250]])
    aligner = SelfLearningAligner(induction_size=150, random_state=0).fit(
        [A, B], pairs=pairs
    )
    dictionary = aligner.dictionary_
    induced = ~np.isin(dictionary[:, 0], pairs[:, 0])
    assert np.all(dictionary[induced] < 150)
    assert dictionary.shape[0] == 152
    assert _precision(dictionary, order) == 1.0
    assert_allclose(aligner.aligner_.rotations_[1], Q.T, atol=1e-8)


def test_deterministic_keep_prob_and_verbose(capsys):
    """Check keep_prob=1 (one deterministic run) and the per-round progress."""
    A, B, order, _ = _rotated_pools(seed=12, n=200)
    aligner = SelfLearningAligner(keep_prob=1.0, verbose=1).fit(
        [A, B], pairs=_seed_pairs(order, 5)
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == aligner.n_iter_
    assert lines[0].startswith("[SelfLearningAligner] start keep_prob=1, round 1: ")
    assert "pairs, change" in lines[-1]
    assert _precision(aligner.dictionary_, order) == 1.0


def test_a_listener_gets_each_round_as_fields_and_nothing_is_printed(capsys):
    """Check that a listener receives the verbose lines' texts with their fields.

    The command line shows self-learning's progress this way, so it never
    reads printed lines back.
    """
    from skembed._verbose import listening

    A, B, order, _ = _rotated_pools(seed=12, n=200)
    pairs = _seed_pairs(order, 5)
    SelfLearningAligner(keep_prob=1.0, verbose=1).fit([A, B], pairs=pairs)
    printed = capsys.readouterr().out.strip().splitlines()
    heard = []
    with listening(lambda *event: heard.append(event)):
        aligner = SelfLearningAligner(keep_prob=1.0, verbose=1).fit([A, B], pairs=pairs)
    assert capsys.readouterr().out == ""
    assert [f"[SelfLearningAligner] {text}" for text, _, _ in heard] == printed
    rounds = [fields for _, event, fields in heard if event == "round"]
    assert len(rounds) == aligner.n_iter_
    assert [fields["round"] for fields in rounds] == list(range(1, len(rounds) + 1))
    assert rounds[-1]["pairs"] == aligner.dictionary_.shape[0]
    assert {fields["start"] for fields in rounds} == {1.0}
    # Outside the block the fit prints again, and says nothing when quiet.
    SelfLearningAligner(keep_prob=1.0, verbose=1).fit([A, B], pairs=pairs)
    assert capsys.readouterr().out.strip().splitlines() == printed
    SelfLearningAligner(keep_prob=1.0).fit([A, B], pairs=pairs)
    assert capsys.readouterr().out == ""


def test_auto_keeps_the_run_with_the_higher_objective(capsys):
    """Check that keep_prob='auto' runs both starts and keeps the better one."""
    A, B, order, _ = _rotated_pools(seed=14, n=300)
    pairs = _seed_pairs(order, 5, seed=14)
    runs = [
        SelfLearningAligner(keep_prob=p, random_state=0).fit([A, B], pairs=pairs)
        for p in (1.0, 0.1)
    ]
    auto = SelfLearningAligner(random_state=0, verbose=1).fit([A, B], pairs=pairs)
    best = max(runs, key=lambda run: run.objective_)
    assert auto.objective_ == best.objective_
    assert_array_equal(auto.dictionary_, best.dictionary_)
    assert auto.n_iter_ == best.n_iter_
    out = capsys.readouterr().out
    assert "start keep_prob=1, round 1:" in out
    assert "start keep_prob=0.1, round 1:" in out


@pytest.mark.parametrize("favoured", [1.0, 0.1])
def test_auto_keeps_whichever_run_scores_higher(favoured):
    """Check the choice itself: the two runs above end on one objective.

    Each run's objective is raised when it comes from ``favoured``, so the
    two differ; the kept map must be that run's, whichever start it is.
    """
    A, B, order, _ = _rotated_pools(seed=14, n=300)
    pairs = _seed_pairs(order, 5, seed=14)
    self_learn = SelfLearningAligner._self_learn

    def scored(self, blocks, pools, seeds, dictionary, keep_prob, *args, **kwargs):
        run = self_learn(
            self, blocks, pools, seeds, dictionary, keep_prob, *args, **kwargs
        )
        if keep_prob == favoured:
            run["objective"] += 1.0
        # Each run is tagged with its start, to tell which one was kept.
        run["dictionary"] = run["dictionary"][: 100 if keep_prob == 1.0 else 50]
        return run

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SelfLearningAligner, "_self_learn", scored)
        auto = SelfLearningAligner(random_state=0).fit([A, B], pairs=pairs)
    assert auto.dictionary_.shape[0] == (100 if favoured == 1.0 else 50)


def test_convergence_warning():
    """Check the warning when n_iter ends the loop early."""
    A, B, order, _ = _rotated_pools(seed=13, n=200)
    with pytest.warns(ConvergenceWarning, match="increase n_iter"):
        aligner = SelfLearningAligner(n_iter=1, random_state=0).fit(
            [A, B], pairs=_seed_pairs(order, 5)
        )
    assert aligner.n_iter_ == 1


def test_invalid_inputs():
    """Check errors for a base with views, three views and tiny pools."""
    A, B, order, _ = _rotated_pools(n=50)
    with pytest.raises(ValueError, match="leave base.views=None"):
        SelfLearningAligner(ProcrustesAligner(views=2)).fit([A, B])
    with pytest.raises(ValueError, match="exactly 2 views"):
        SelfLearningAligner().fit([A, B, A])
    with pytest.raises(ValueError, match="n_samples = 1"):
        SelfLearningAligner().fit([A[:1], B])
    assert not hasattr(SelfLearningAligner(), "partial_fit")


@pytest.mark.skipif(available_corpus("fortunes") is None, reason=missing("fortunes"))
@pytest.mark.slow
def test_real_embeddings_from_few_pairs():
    """Check that 50 pairs align two real models' unpaired pools of 2,000 rows."""
    path = available_corpus("fortunes")
    minilm = np.load(path / "minilm.npy", mmap_mode="r")
    e5 = np.load(path / "e5.npy", mmap_mode="r")
    rng = np.random.default_rng(0)
    rows = rng.permutation(minilm.shape[0])
    test, pool = rows[:1000], rows[1000:3000]
    order = rng.permutation(pool.shape[0])
    X0, X1 = np.asarray(minilm[pool]), np.asarray(e5[pool[order]])
    pairs = np.column_stack([order[:50], np.arange(50)])

    aligner = SelfLearningAligner(random_state=0).fit([X0, X1], pairs=pairs)
    plain = ProcrustesAligner(normalize="l2").fit([X0[order[:50]], X1[:50]])
    held_out = [np.asarray(minilm[test]), np.asarray(e5[test])]
    scores = {
        name: retrieval_accuracy(*model._transform_views(held_out), method="csls")
        for name, model in (("self", aligner), ("plain", plain))
    }
    assert scores["self"] > 0.9
    assert scores["plain"] < 0.3
    assert _precision(aligner.dictionary_, order) > 0.95


def test_a_cca_base_translates_with_its_own_back_map():
    """Check translate and inverse_transform_view against the fitted base's.

    CCAAligner's back-map is fitted by least squares; SelfLearningAligner used
    the pseudo-inverse of the projection instead, so its translations
    differed from its own base's.
    """
    from skembed import CCAAligner

    rng = np.random.default_rng(0)
    A = rng.normal(size=(400, 12)) @ rng.normal(size=(12, 12))
    B = A @ rng.normal(size=(12, 10)) + 0.3 * rng.normal(size=(400, 10))
    pairs = np.column_stack([np.arange(60), np.arange(60)])
    aligner = SelfLearningAligner(CCAAligner(n_components=4), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        aligner.fit([A, B], pairs=pairs)
    base = aligner.aligner_
    assert_allclose(aligner.translate(A, 0, 1), base.translate(A, 0, 1), atol=1e-10)
    Z = aligner.transform_view(B, 1)
    assert_allclose(
        aligner.inverse_transform_view(Z, 1),
        base.inverse_transform_view(Z, 1),
        atol=1e-10,
    )


def test_a_base_with_a_hidden_layer_is_refused():
    """Check ContrastiveAligner(hidden=...) as base: a TypeError before any round.

    The rounds used the base's non-linear maps, but the fitted aligner mapped
    with its affine part alone, silently.
    """
    from skembed import ContrastiveAligner

    rng = np.random.default_rng(0)
    A = rng.normal(size=(100, 6))
    pairs = np.column_stack([np.arange(20), np.arange(20)])
    aligner = SelfLearningAligner(ContrastiveAligner(hidden=8, max_iter=2))
    with pytest.raises(TypeError, match=r"hidden=8\) maps through a non-linear"):
        aligner.fit([A, A], pairs=pairs)


def test_a_residual_mlp_base_is_not_told_to_pass_hidden_none():
    """Check ResidualMLPAligner as base: advice it can follow.

    It was told to pass hidden=None, which ResidualMLPAligner refuses.
    """
    from skembed import ResidualMLPAligner

    A = np.random.default_rng(0).normal(size=(100, 6))
    pairs = np.column_stack([np.arange(20), np.arange(20)])
    aligner = SelfLearningAligner(ResidualMLPAligner(hidden=8))
    with pytest.raises(TypeError, match="maps through a non-linear") as caught:
        aligner.fit([A, A], pairs=pairs)
    assert "hidden=None" not in str(caught.value)
    assert "RidgeAligner" in str(caught.value)


def test_a_base_without_affine_maps_is_refused_before_any_fit():
    """Check KernelResidualAligner and RelativeProjector as base: a TypeError.

    They were fitted first, then refused by the private attributes they
    lacked, which the message named.
    """
    from skembed import KernelResidualAligner, RelativeProjector

    A = np.random.default_rng(0).normal(size=(100, 6))
    pairs = np.column_stack([np.arange(20), np.arange(20)])
    for base in (KernelResidualAligner(), RelativeProjector()):
        aligner = SelfLearningAligner(base)
        with pytest.raises(
            TypeError, match="does not map views by affine maps"
        ) as caught:
            aligner.fit([A, A], pairs=pairs)
        assert "_projections" not in str(caught.value)
        assert not hasattr(aligner, "aligner_")
    # The base as the user passed it, with its parameters.
    with pytest.raises(TypeError, match=r"base=RelativeProjector\(n_anchors=10\)"):
        SelfLearningAligner(RelativeProjector(n_anchors=10)).fit([A, A], pairs=pairs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 2.5])
def test_a_pair_that_is_not_a_whole_number_is_named(bad):
    """Check NaN or infinity in pairs: the value named, not the dtype.

    Float arrays of whole numbers are accepted, so 'got an array of dtype
    float64' did not say what was wrong.
    """
    A = np.random.default_rng(0).normal(size=(50, 4))
    pairs = np.array([[0.0, 0.0], [1.0, bad]])
    with pytest.raises(ValueError, match=f"got the value {bad!r}"):
        SelfLearningAligner().fit([A, A], pairs=pairs)


def _stretched_pools(seed, n=1000, d=8):
    """A pool, and a stretched, rotated, noisy and shuffled copy of it.

    ``B[i]`` is ``A[order[i]] @ M`` plus noise, with M a rotation whose
    columns are scaled from 0.3 to 3: no orthogonal map relates the views.
    """
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    M = ortho_group.rvs(d, random_state=seed) * np.geomspace(0.3, 3.0, d)
    order = rng.permutation(n)
    B = (A @ M + 0.05 * rng.normal(size=(n, d)))[order]
    return A, B, order


@pytest.mark.parametrize("seed", [0, 1])
def test_default_map_is_the_ridge_regression_where_it_retrieves_better(seed):
    """Check that base=None returns the ridge map when the trial says it is better.

    Every pair is known, so the dictionary is right; the views differ by a
    stretch that an orthogonal map cannot undo (it retrieves about 0.6 of
    the rows), while the ridge regression of view 1 onto view 0 retrieves
    all of them.
    """
    A, B, order = _stretched_pools(seed)
    pairs = np.column_stack([order, np.arange(order.shape[0])])
    aligner = SelfLearningAligner(random_state=0).fit([A, B], pairs=pairs)

    scores = aligner.final_map_scores_
    assert set(scores) == {"orthogonal", "ridge"}
    assert scores["ridge"] > scores["orthogonal"] + 0.1
    assert isinstance(aligner.aligner_, RidgeAligner)
    assert aligner.aligner_.reference == 0
    expected = RidgeAligner(reference=0).fit(
        [A[aligner.dictionary_[:, 0]], B[aligner.dictionary_[:, 1]]]
    )
    assert_allclose(aligner.transform_view(B, 1), expected.transform_view(B, 1))
    Z = aligner._transform_views([A[order], B])
    assert retrieval_accuracy(*Z) == 1.0
    orthogonal = ProcrustesAligner(center=True, normalize="l2").fit([A[order], B])
    assert retrieval_accuracy(*orthogonal._transform_views([A[order], B])) < 0.8


def test_trusted_ridge_map_without_pairs_learns_from_every_row():
    """Check that a trusted pairs-free ridge map is fitted on all of pool 0.

    The dictionary holds mutual best matches only, the rows both views place
    unambiguously; a regression fitted on them alone never sees the other
    rows as targets. The returned ridge map is refitted on every row of pool
    0 and its best CSLS match in pool 1, found under the map fitted on the
    dictionary. A mild stretch (scales 0.7 to 1.4) lets the orthogonal search
    find the pairs and the trial prefer the ridge map.
    """
    rng = np.random.default_rng(0)
    A = rng.normal(size=(1000, 8))
    M = ortho_group.rvs(8, random_state=0) * np.geomspace(0.7, 1.4, 8)
    order = rng.permutation(1000)
    B = (A @ M + 0.05 * rng.normal(size=(1000, 8)))[order]
    warm = RidgeAligner(reference=0).fit([A[order[:300]], B[:300]])
    aligner = SelfLearningAligner(init=warm, random_state=0).fit([A, B])
    assert aligner.confidence_ >= 0.5
    assert isinstance(aligner.aligner_, RidgeAligner)
    dictionary = aligner.dictionary_
    # Some rows of pool 0 are in no mutual pair: the completion has work.
    assert np.unique(dictionary[:, 0]).size < A.shape[0]

    on_dictionary = RidgeAligner(reference=0).fit(
        [A[dictionary[:, 0]], B[dictionary[:, 1]]]
    )
    Z = [on_dictionary.transform_view(X, k) for k, X in enumerate((A, B))]
    _, best = kneighbors(*(z - z.mean(axis=0) for z in Z), 1, method="csls")
    expected = RidgeAligner(reference=0).fit([A, B[best[:, 0]]])
    assert_allclose(aligner.transform_view(B, 1), expected.transform_view(B, 1))
    assert not np.allclose(
        aligner.transform_view(B, 1), on_dictionary.transform_view(B, 1)
    )
    # The dictionary stays the search's: mutual pairs, one-to-one.
    assert np.unique(dictionary[:, 1]).size == dictionary.shape[0]


def test_default_map_stays_orthogonal_for_rotated_copies():
    """Check that a tie in the trial keeps the orthogonal map of the search."""
    A, B, order, Q = _rotated_pools(seed=3, n=300)
    aligner = SelfLearningAligner(random_state=0).fit(
        [A, B], pairs=_seed_pairs(order, 5)
    )
    assert aligner.final_map_scores_ == {"orthogonal": 1.0, "ridge": 1.0}
    assert isinstance(aligner.aligner_, ProcrustesAligner)
    assert_allclose(aligner.aligner_.rotations_[1], Q.T, atol=1e-8)


def _trial_of(A, B, dictionary, refined):
    """``_final_map`` of a pairs-free fit on the views, as fit calls it."""
    searched = ProcrustesAligner(center=True, normalize="l2").fit(
        [A[dictionary[:, 0]], B[dictionary[:, 1]]]
    )
    return SelfLearningAligner(random_state=0)._final_map(
        [A, B], dictionary, searched, np.random.RandomState(0), refined=refined
    )


def test_trial_before_neighbourhood_rounds_gives_a_tie_to_the_ridge_map():
    """Check that the trial of an untrusted map keeps the ridge map on a tie.

    On rotated copies both maps retrieve every held-out pair in every
    halving: the trial of a trusted map keeps the orthogonal one, that of an
    untrusted map to be refined by neighbourhood rounds the ridge one, and
    its scores are the means over its halvings.
    """
    A, B, order, _ = _rotated_pools(seed=5, n=300)
    dictionary = np.column_stack([order, np.arange(order.shape[0])])
    trusted, scores = _trial_of(A, B, dictionary, refined=False)
    assert isinstance(trusted, ProcrustesAligner)
    assert scores == {"orthogonal": 1.0, "ridge": 1.0}
    untrusted, scores = _trial_of(A, B, dictionary, refined=True)
    assert isinstance(untrusted, RidgeAligner)
    assert untrusted.reference == 0
    assert scores == {"orthogonal": 1.0, "ridge": 1.0}
    Z = untrusted._transform_views([A[order], B])
    assert retrieval_accuracy(*Z) == 1.0


def test_trial_before_neighbourhood_rounds_keeps_a_clearly_better_orthogonal_map():
    """Check that an orthogonal map that wins every halving is kept.

    200 noisy pairs in 64 dimensions: the ridge regression, fitted on 100 of
    them at a time, overfits the noise and retrieves about a fifth fewer of
    the other half's pairs than the orthogonal map.
    """
    rng = np.random.default_rng(0)
    A = rng.normal(size=(200, 64)) * np.geomspace(3, 0.5, 64)
    B = A @ ortho_group.rvs(64, random_state=0) + 3.0 * rng.normal(size=(200, 64))
    dictionary = np.column_stack([np.arange(200)] * 2)
    aligner, scores = _trial_of(A, B, dictionary, refined=True)
    assert isinstance(aligner, ProcrustesAligner)
    assert scores["orthogonal"] > scores["ridge"] + 0.1


@pytest.mark.parametrize(
    "gaps, wins",
    [
        ([0.0] * 5, False),
        ([0.01] * 5, False),
        ([0.03] * 5, True),
        ([0.0, 0.01, 0.005, 0.02, 0.01], False),
        ([0.09, 0.07, 0.08, 0.1, 0.07], True),
        ([-0.03, -0.02, -0.04, -0.03, -0.02], False),
        ([0.05], True),
    ],
)
def test_orthogonal_map_wins_by_a_margin(gaps, wins):
    """Check the rule that decides the trial of an untrusted map: the mean
    gap must exceed 0.02 of the held-out dictionary pairs."""
    assert _orthogonal_wins(gaps) is wins


def test_no_map_trial_for_a_given_base_or_a_small_dictionary():
    """Check that the trial runs only for base=None and enough pairs."""
    A, B, order, _ = _rotated_pools(seed=4, n=300)
    pairs = _seed_pairs(order, 5)
    base = ProcrustesAligner(center=True, normalize="l2")
    given = SelfLearningAligner(base, random_state=0).fit([A, B], pairs=pairs)
    assert given.final_map_scores_ is None
    # At most 90 pairs: each half holds fewer than the 50 the trial needs.
    small = SelfLearningAligner(random_state=0).fit(
        [A[:90], B[np.argsort(order)[:90]]], pairs=np.column_stack([np.arange(5)] * 2)
    )
    assert small.final_map_scores_ is None
    assert isinstance(small.aligner_, ProcrustesAligner)


def test_ridge_default_map_keeps_float32_and_survives_a_model_file(tmp_path):
    """Check that a ridge map chosen by the trial keeps float32 and round-trips."""
    A, B, order = _stretched_pools(2)
    A, B = A.astype(np.float32), B.astype(np.float32)
    pairs = np.column_stack([order, np.arange(order.shape[0])])
    aligner = SelfLearningAligner(random_state=0).fit([A, B], pairs=pairs)
    assert isinstance(aligner.aligner_, RidgeAligner)
    assert aligner.transform_view(B, 1).dtype == np.float32
    assert aligner.translate(B, source=1, target=0).dtype == np.float32
    path = tmp_path / "model.npz"
    save_aligner(aligner, path)
    loaded = load_aligner(path)
    assert loaded.final_map_scores_ == aligner.final_map_scores_
    assert_array_equal(loaded.transform_view(B, 1), aligner.transform_view(B, 1))


def test_isomorphism_score_cannot_tell_on_pools_of_few_rows_per_dimension():
    """Check identical views of 120 rows and 100 columns: no warning.

    A single map fitted even a random dictionary of 120 pairs in 100
    dimensions, so the score was 0 and the fit warned that the views shared
    no structure, although they are the same.
    """
    A = np.random.default_rng(0).normal(size=(120, 100))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupervisedAlignmentWarning)
        aligner = SelfLearningAligner(init="identity", random_state=0).fit([A, A])
    assert np.isnan(aligner.isomorphism_score_)
    assert aligner.score([A, A]) == 1.0
    # With rows to spare the score is measured, and within [0, 1].
    B = np.random.default_rng(1).normal(size=(600, 20))
    for noise in (0.01, 3.0):
        other = B + noise * np.random.default_rng(2).normal(size=B.shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = SelfLearningAligner(init="identity", random_state=0).fit(
                [B, other]
            )
        assert 0.0 <= fitted.isomorphism_score_ <= 1.0


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_known_pairs_that_lead_astray_are_flagged():
    """Check the confidence of fits from known pairs on real embeddings.

    Pools of 2,000 packaged fortunes (minilm, e5 shuffled): 10 known pairs
    induced a mostly wrong dictionary, a map at chance on the 1,000 other
    texts, and fit said nothing (confidence_ was None with pairs). Now a
    map that retrieves held-out texts poorly warns, a good one does not,
    and wrong pairs always warn.
    """
    data = load_fortunes(views=["minilm", "e5"])
    A_all, B_all = data.views["minilm"], data.views["e5"]
    n = 2000
    rng = np.random.default_rng(0)
    order = rng.permutation(n)
    A, B = A_all[:n], B_all[:n][order]  # row i of B embeds row order[i] of A
    partner = np.argsort(order)

    def fitted(pairs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            aligner = SelfLearningAligner(random_state=0).fit([A, B], pairs=pairs)
        warned = [
            w for w in caught if issubclass(w.category, UnsupervisedAlignmentWarning)
        ]
        mapped = [aligner.transform_view(A_all[n:], 0)]
        mapped.append(aligner.transform_view(B_all[n:], 1))
        top1 = 0.5 * (
            retrieval_accuracy(mapped[0], mapped[1])
            + retrieval_accuracy(mapped[1], mapped[0])
        )
        return aligner, warned, top1

    rows = rng.choice(n, size=50, replace=False)
    pairs = np.column_stack([rows, partner[rows]])
    aligner, warned, top1 = fitted(pairs)
    assert top1 > 0.9
    assert not warned and aligner.confidence_ >= 0.5
    # Ten pairs: the outcome may differ between machines, the verdict must not.
    aligner, warned, top1 = fitted(pairs[:10])
    assert bool(warned) == (aligner.confidence_ < 0.5)
    if top1 < 0.5:
        assert warned and "known pairs" in str(warned[0].message)
    wrong = pairs[:30].copy()
    wrong[:, 1] = np.roll(wrong[:, 1], 1)
    aligner, warned, top1 = fitted(wrong)
    assert top1 < 0.1
    assert warned and aligner.confidence_ < 0.5


def test_nested_params_of_a_default_base_name_the_fix():
    """Check base__<name> and init__<name> while base and init are no aligner.

    A grid over "aligner__base__scale" with the default base=None failed
    with "'NoneType' object has no attribute 'set_params'".
    """
    model = make_pipeline(SelfLearningAligner(), LogisticRegression())
    with pytest.raises(ValueError, match=r"'base__scale': base is None.*base="):
        clone(model).set_params(selflearningaligner__base__scale=True)
    with pytest.raises(ValueError, match=r"'init__scale': init is 'auto'"):
        clone(model).set_params(selflearningaligner__init__scale=True)
    # An aligner set in the same call takes its nested parameters.
    model = clone(model).set_params(
        selflearningaligner__base=ProcrustesAligner(),
        selflearningaligner__base__scale=True,
    )
    assert model[0].base.scale is True
    assert model[0].get_params()["base__scale"] is True


@pytest.mark.filterwarnings("ignore::skembed.UnsupervisedAlignmentWarning")
def test_zero_pair_search_sees_the_same_bytes_whatever_the_layout(monkeypatch):
    """Check that the search runs on row-major blocks whatever the input's layout.

    Column-major blocks (an asfortranarray, or the numbers of a pandas
    DataFrame) are reduced and multiplied in another order: the rounding
    differed, and the search, which turns rounding into other pairs, found
    the map of shuffled WordNet pools of 2,000 glosses (wordllama256, minilm)
    from row-major arrays and failed from the same values column-major. The
    same values must give the same fit.
    """
    import skembed._selflearn as selflearn

    searched = []

    def recording(estimator, blocks, pools, csls_k, random_state):
        searched.append([b.flags.c_contiguous for b in (*blocks, *pools)])
        return fit_without_pairs(estimator, blocks, pools, csls_k, random_state)

    fit_without_pairs = selflearn.fit_without_pairs
    monkeypatch.setattr(selflearn, "fit_without_pairs", recording)
    rng = np.random.default_rng(0)
    A = rng.normal(size=(120, 6)) * np.linspace(3, 1, 6)
    order = rng.permutation(120)
    B = (A @ ortho_group.rvs(6, random_state=0))[order]
    inputs = {
        "row-major": [A, B],
        "column-major": [np.asfortranarray(A), np.asfortranarray(B)],
        "frame": pd.DataFrame(np.hstack([A, B])),
    }
    fits = {}
    for name, X in inputs.items():
        views = [list(range(6)), list(range(6, 12))] if name == "frame" else None
        fits[name] = SelfLearningAligner(views=views, n_restarts=0, random_state=0).fit(
            X
        )
        assert all(searched[-1]), name
    reference = fits["row-major"]
    for name, fitted in fits.items():
        assert_array_equal(fitted.dictionary_, reference.dictionary_, err_msg=name)
        assert fitted.confidence_ == reference.confidence_ or (
            np.isnan(fitted.confidence_) and np.isnan(reference.confidence_)
        )
        assert_array_equal(fitted.transform_view(A, 0), reference.transform_view(A, 0))


def test_determined_basis_holds_one_view_in_float64_at_a_time():
    """Check the memory of the directions a dictionary determines.

    Both views' mapped dictionary rows were kept in float64, centred in a
    second copy, until their Gram matrix was formed: 29 MiB for 20,000
    pairs of 64 float32 columns (5 MiB a view). Each view is now centred in
    place and multiplied before the other is mapped, with the same products,
    so the basis is the same to the bit.
    """
    import tracemalloc

    rng = np.random.default_rng(0)
    # Rank 24 of 64: the dictionary determines 24 directions.
    A = (rng.normal(size=(20_000, 24)) @ rng.normal(size=(24, 64))).astype(np.float32)
    B = A @ ortho_group.rvs(64, random_state=0).astype(np.float32)
    blocks = [A, B]
    dictionary = np.column_stack([np.arange(20_000)] * 2)
    aligner = ProcrustesAligner(center=True, normalize="l2").fit(blocks)
    searcher = SelfLearningAligner()
    searcher._determined_basis(aligner, blocks, dictionary[:10])  # caches
    tracemalloc.start()
    try:
        basis = searcher._determined_basis(aligner, blocks, dictionary)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    mapped = [
        aligner._map(X, k, offset=False).astype(np.float64)
        for k, X in enumerate(blocks)
    ]
    centred = [Z - Z.mean(axis=0) for Z in mapped]
    gram = centred[0].T @ centred[0] + centred[1].T @ centred[1]
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    expected = eigenvectors[:, eigenvalues > eigenvalues.max() * 1e-10]
    assert basis.shape == (64, 24)
    assert_array_equal(basis, expected)
    # One view's mapped rows in float64 (10 MiB) beside its float32 ones.
    assert peak < 4 * A.nbytes, peak / 2**20


class _ScriptedFits:
    """Stands in for SelfLearningAligner._fit_once: each fit's outcome by its init.

    A cold fit (``init`` a string) ends on an untrusted map that went through
    the neighbourhood rounds; a warm one ends with ``warm_confidence``. Each
    warns as the real fit does when its map is not trusted.
    """

    def __init__(self, warm_confidence):
        self.warm_confidence = warm_confidence
        self.inits = []

    def __call__(self, estimator, X, pairs):
        cold = isinstance(estimator.init, str)
        self.inits.append(estimator.init)
        estimator.confidence_ = -0.2 if cold else self.warm_confidence
        estimator.dictionary_ = np.array([[0, 0]]) if cold else np.array([[1, 1]])
        if estimator.confidence_ < 0.5:
            warnings.warn(
                UnsupervisedAlignmentWarning(
                    f"untrusted {'cold' if cold else 'warm'}", "low_confidence"
                ),
                stacklevel=2,
            )
        return cold


@pytest.mark.parametrize("warm_confidence", [0.9, 0.1])
def test_an_untrusted_cold_map_is_refitted_warm_and_kept_only_if_trusted(
    monkeypatch, warm_confidence
):
    """Check the second fit from an untrusted cold map, and what fit keeps.

    The warm fit starts from the first fit's model; its result replaces the
    first one's, warnings included, only when it is trusted. A fit that is
    warm already, or given pairs, is not refitted.
    """
    scripted = _ScriptedFits(warm_confidence)
    monkeypatch.setattr(
        SelfLearningAligner, "_fit_once", lambda est, X, pairs: scripted(est, X, pairs)
    )
    aligner = SelfLearningAligner(random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aligner.fit([np.zeros((4, 2)), np.zeros((4, 2))])
    assert aligner.init == "auto"
    assert len(scripted.inits) == 2
    assert scripted.inits[1] is not aligner
    assert isinstance(scripted.inits[1], SelfLearningAligner)
    texts = [str(w.message) for w in caught]
    if warm_confidence >= 0.5:
        assert aligner.confidence_ == warm_confidence
        assert_array_equal(aligner.dictionary_, [[1, 1]])
        assert texts == []
    else:
        assert aligner.confidence_ == -0.2
        assert_array_equal(aligner.dictionary_, [[0, 0]])
        assert texts == ["untrusted cold"]
        assert all(w.category is UnsupervisedAlignmentWarning for w in caught)
    # A warm fit is the refit itself: one fit, its own warnings.
    scripted.inits.clear()
    warm = SelfLearningAligner(init=aligner, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warm.fit([np.zeros((4, 2)), np.zeros((4, 2))])
    assert scripted.inits == [aligner]


def test_warnings_held_during_a_fit_are_issued_again_as_first_issued():
    """Check that held warnings keep their file, line and module for filters.

    fit holds the warnings of an untrusted cold fit until it knows whether
    its warm refit replaces them. Given out again, each must match the
    filters it would have matched (by module too) and show as the default
    action shows it: a text repeated at one line once.
    """
    from skembed._warnings import held_warnings, issue_again

    def issue():
        for _ in range(3):
            warnings.warn("held", UserWarning, stacklevel=1)

    with held_warnings() as caught:
        issue()
    assert len(caught) == 3
    with warnings.catch_warnings(record=True) as shown:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        issue_again(caught)
    assert [str(w.message) for w in shown] == ["held"]
    assert (shown[0].filename, shown[0].lineno) == (
        caught[0].filename,
        caught[0].lineno,
    )
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", module=__name__)
        issue_again(caught)
    assert shown == []
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        issue_again(caught, lambda message: f"again: {message}")
    assert [str(w.message) for w in shown] == ["again: held"] * 3
    # Issued from a file of no module (a doctest, code given to exec).
    code = compile('warnings.warn("no module", UserWarning)', "<held>", "exec")
    with held_warnings() as caught:
        exec(code, {"warnings": warnings})
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        issue_again(caught)
    assert [(str(w.message), w.filename) for w in shown] == [("no module", "<held>")]
