"""Tests for ContrastiveAligner."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import log_softmax
from scipy.stats import ortho_group
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skembed import ContrastiveAligner, ProcrustesAligner
from skembed._contrastive import _contrastive_loss, _pair_info_nce
from skembed.datasets import load_fortunes
from skembed.metrics import retrieval_accuracy


def _nonlinear_pair(seed, n=400, d_a=8, d_b=6, noise=0.1, dtype=float):
    """B is a noisy non-linear function of A, offset far from the origin."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d_a))
    B = np.tanh(A @ rng.normal(size=(d_a, d_b))) + noise * rng.normal(size=(n, d_b))
    return A.astype(dtype), (B + 3.0).astype(dtype)


def _latent_pair(seed, n=400, widths=(6, 5), n_latent=3, noise=0.3, dtype=float):
    """Two views sharing a latent signal through different linear maps."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, n_latent))
    views = [
        latent @ rng.normal(size=(n_latent, d)) + noise * rng.normal(size=(n, d))
        for d in widths
    ]
    views[1] += 3.0
    return latent, [v.astype(dtype) for v in views]


def _random_params(rng, widths, m, hidden):
    params = []
    for d in widths:
        head = [rng.normal(size=(d, m))]
        if hidden is not None:
            head += [
                rng.normal(size=(d, hidden)),
                rng.normal(size=hidden),
                rng.normal(size=(hidden, m)),
            ]
        params.append(head)
    return params


def _numerical_gradient(f, array, eps=1e-6):
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        old = array[index]
        array[index] = old + eps
        plus = f()
        array[index] = old - eps
        minus = f()
        array[index] = old
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def _quiet_fit(aligner, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return aligner.fit(X)


def test_pair_loss_matches_cross_entropy():
    """Check the loss against the mean of both softmax cross-entropies."""
    rng = np.random.default_rng(0)
    U = rng.normal(size=(9, 4))
    V = rng.normal(size=(9, 4))
    S = U @ V.T / 0.3
    expected = -0.5 * (
        np.mean(np.diag(log_softmax(S, axis=1)))
        + np.mean(np.diag(log_softmax(S, axis=0)))
    )
    loss, _, _ = _pair_info_nce(U, V, 0.3)
    assert_allclose(loss, expected, rtol=1e-12)


@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_pair_gradient_both_directions(temperature):
    """Check dL/dU and dL/dV of one view pair against finite differences."""
    rng = np.random.default_rng(1)
    U = rng.normal(size=(6, 3))
    V = rng.normal(size=(6, 3))
    _, dU, dV = _pair_info_nce(U, V, temperature)
    for array, analytic in [(U, dU), (V, dV)]:
        numeric = _numerical_gradient(
            lambda: _pair_info_nce(U, V, temperature)[0], array
        )
        assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
    # The loss is symmetric: swapping the views swaps the gradients.
    loss_swapped, dV_swapped, dU_swapped = _pair_info_nce(V, U, temperature)
    assert_allclose(loss_swapped, _pair_info_nce(U, V, temperature)[0])
    assert_allclose(dU_swapped, dU)
    assert_allclose(dV_swapped, dV)


@pytest.mark.parametrize("hidden", [None, 5])
@pytest.mark.parametrize("widths", [(4, 3), (4, 3, 5)])
def test_head_gradient_matches_finite_differences(hidden, widths):
    """Check every head parameter's gradient (linear and hidden heads, K views)."""
    rng = np.random.default_rng(2)
    blocks = [rng.normal(size=(7, d)) for d in widths]
    params = _random_params(rng, widths, 3, hidden)
    _, grads = _contrastive_loss(params, blocks, 0.2)
    for head, head_grads in zip(params, grads, strict=True):
        for array, analytic in zip(head, head_grads, strict=True):
            numeric = _numerical_gradient(
                lambda: _contrastive_loss(params, blocks, 0.2)[0], array
            )
            assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_loss_decreases_and_retrieval_improves():
    """Check that training lowers the loss and beats its random start."""
    A, B = _nonlinear_pair(0)
    aligner = _quiet_fit(
        ContrastiveAligner(
            n_components=4,
            init="random",
            early_stopping=False,
            max_iter=20,
            batch_size=64,
            learning_rate=1e-2,
            random_state=0,
        ),
        [A, B],
    )
    assert aligner.n_iter_ == len(aligner.loss_curve_)
    assert aligner.loss_curve_[-1] < 0.5 * aligner.loss_curve_[0]
    assert np.all(np.diff(aligner.loss_curve_[:5]) < 0)
    assert aligner.validation_scores_ is None
    assert aligner.best_validation_score_ is None

    start = ContrastiveAligner(
        n_components=4, init="random", max_iter=1, random_state=0
    )
    _quiet_fit(start.set_params(learning_rate=1e-12), [A, B])
    assert aligner.score([A, B]) > start.score([A, B]) + 0.2


def test_improves_on_closed_form_for_nonlinear_relation():
    """Check that a hidden head beats CCA and Procrustes on held-out rows."""
    A, B = _nonlinear_pair(1, n=1500, d_a=6, d_b=6, noise=0.05)
    train, test = slice(0, 1000), slice(1000, None)
    contrastive = _quiet_fit(
        ContrastiveAligner(hidden=32, random_state=0), [A[train], B[train]]
    )
    procrustes = ProcrustesAligner().fit([A[train], B[train]])
    held_out = [A[test], B[test]]
    assert contrastive.score(held_out) > procrustes.score(held_out) + 0.05


def test_early_stopping_keeps_best_weights():
    """Check that early stopping returns the best held-out epoch's weights."""
    A, B = _nonlinear_pair(2, n=600)
    aligner = ContrastiveAligner(n_components=4, random_state=0, n_iter_no_change=3)
    aligner = _quiet_fit(aligner, [A, B])
    scores = aligner.validation_scores_
    assert len(scores) == aligner.n_iter_ == len(aligner.loss_curve_)
    assert aligner.best_validation_score_ >= max(scores)
    # Rebuild the held-out rows as fit does and score the kept weights there.
    rng = np.random.RandomState(0)
    held_out = np.sort(rng.permutation(600)[:60])
    Z = aligner._transform_views([A[held_out], B[held_out]])
    kept = (retrieval_accuracy(Z[0], Z[1]) + retrieval_accuracy(Z[1], Z[0])) / 2
    assert kept == pytest.approx(aligner.best_validation_score_, abs=1e-12)


def test_deterministic_for_fixed_random_state():
    """Check that a fixed random_state gives identical fits, others differ."""
    A, B = _nonlinear_pair(3, n=300)
    params = dict(n_components=3, init="random", hidden=4, max_iter=5)
    first = _quiet_fit(ContrastiveAligner(random_state=7, **params), [A, B])
    second = _quiet_fit(ContrastiveAligner(random_state=7, **params), [A, B])
    other = _quiet_fit(ContrastiveAligner(random_state=8, **params), [A, B])
    for k in range(2):
        assert_allclose(first.projections_[k], second.projections_[k], rtol=0, atol=0)
        assert_allclose(first.hidden_weights_[k], second.hidden_weights_[k], atol=0)
    assert first.loss_curve_ == second.loss_curve_
    assert not np.allclose(first.projections_[0], other.projections_[0])


def test_linear_heads_use_the_affine_surface():
    """Check transform_view, translate and inverse_transform_view of linear heads."""
    A, B = _nonlinear_pair(4, n=300)
    aligner = _quiet_fit(
        ContrastiveAligner(
            n_components=5, max_iter=10, early_stopping=False, random_state=0
        ),
        [A, B],
    )
    assert aligner.n_components_ == 5
    assert aligner.hidden_weights_ is None
    Z = aligner.transform_view(B, 1)
    assert_allclose(Z, (B - aligner.means_[1]) @ aligner.projections_[1])
    # Outputs are scaled to unit root-mean-square norm per view on training rows.
    for k, block in enumerate([A, B]):
        rms = np.sqrt(np.mean(np.sum(aligner.transform_view(block, k) ** 2, axis=1)))
        assert_allclose(rms, 1.0)
    assert aligner.translate(A, 0, 1).shape == B.shape
    assert_allclose(
        aligner.inverse_transform_view(Z, 1),
        Z @ np.linalg.pinv(aligner.projections_[1]) + aligner.means_[1],
    )
    assert_allclose(
        aligner.transform([A, B]), np.hstack([aligner.transform_view(A, 0), Z])
    )


def test_hidden_head_map_and_unavailable_translate():
    """Check the hidden head's formula and the error of translate."""
    A, B = _nonlinear_pair(5, n=300)
    aligner = _quiet_fit(
        ContrastiveAligner(n_components=3, hidden=7, max_iter=5, random_state=0),
        [A, B],
    )
    k = 1
    centred = B - aligner.means_[k]
    hidden = np.maximum(
        centred @ aligner.hidden_weights_[k] + aligner.hidden_intercepts_[k], 0
    )
    expected = (
        centred @ aligner.projections_[k]
        + hidden @ aligner.hidden_projections_[k]
        - aligner.hidden_offsets_[k]
    )
    assert_allclose(aligner.transform_view(B, k), expected, atol=1e-12)
    # A capability that depends on a parameter: absent, with the reason.
    for name in ("translate", "inverse_transform_view"):
        assert not hasattr(aligner, name)
        with pytest.raises(AttributeError, match="hidden=7"):
            getattr(aligner, name)


@pytest.mark.parametrize("hidden", [None, 4])
def test_float32_preserved(hidden):
    """Check that float32 input trains in float32 and gives float32 output."""
    A, B = _nonlinear_pair(6, n=300, dtype=np.float32)
    aligner = _quiet_fit(
        ContrastiveAligner(n_components=3, hidden=hidden, max_iter=5, random_state=0),
        [A, B],
    )
    assert aligner.transform([A, B]).dtype == np.float32
    assert aligner.transform_view(A, 0).dtype == np.float32
    assert aligner.projections_[0].dtype == np.float64
    if hidden is None:
        assert aligner.translate(A, 0, 1).dtype == np.float32
    aligner64 = _quiet_fit(clone(aligner), [A.astype(float), B.astype(float)])
    assert aligner64.transform_view(A.astype(float), 0).dtype == np.float64
    assert abs(aligner64.score([A, B]) - aligner.score([A, B])) < 0.05


@pytest.mark.parametrize("init", ["cca", "procrustes", "random"])
def test_initialisations(init):
    """Check that every init fits, and the closed forms start well."""
    rng = np.random.default_rng(7)
    A = rng.normal(size=(500, 6))
    views = [A, 2.0 * A @ ortho_group.rvs(6, random_state=7) + 3.0]
    aligner = ContrastiveAligner(n_components=6, init=init, max_iter=1, random_state=0)
    aligner.set_params(learning_rate=1e-12)
    _quiet_fit(aligner, views)
    if init != "random":
        assert aligner.score(views) > 0.95


def test_small_data_is_robust():
    """Check tiny inputs: big batches, no room for a held-out part, 1 sample."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(12, 4))
    aligner = _quiet_fit(
        ContrastiveAligner(n_components=2, batch_size=1000, max_iter=3, random_state=0),
        X,
    )
    # 10% of 12 rows is too few to score retrieval: the training loss decides.
    assert aligner.validation_scores_ is None
    assert aligner.transform(X).shape == (12, 4)
    _quiet_fit(ContrastiveAligner(n_components=1, max_iter=2, random_state=0), X[:2])
    with pytest.raises(ValueError, match="n_samples = 1"):
        ContrastiveAligner(n_components=1).fit(X[:1])


def test_n_components_too_large():
    """Check the error naming n_components when it exceeds the narrowest view."""
    A, B = _nonlinear_pair(9, n=50, d_a=5, d_b=3)
    with pytest.raises(ValueError, match=re.escape("n_components=4 exceeds")):
        ContrastiveAligner(n_components=4).fit([A, B])
    aligner = _quiet_fit(ContrastiveAligner(max_iter=1, random_state=0), [A, B])
    assert aligner.n_components_ == 3


def test_convergence_warning_and_verbose(capsys):
    """Check the warning when max_iter cuts training short, and the progress."""
    A, B = _nonlinear_pair(10, n=300)
    aligner = ContrastiveAligner(n_components=3, max_iter=2, verbose=1, random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        aligner.fit([A, B])
    out = capsys.readouterr().out
    assert "Epoch 1, loss = " in out and "validation top-1 = " in out


def test_partial_fit_not_offered():
    """Check that partial_fit is absent, with a message saying why."""
    aligner = ContrastiveAligner()
    assert not hasattr(aligner, "partial_fit")
    with pytest.raises(AttributeError, match="Call fit on all rows"):
        aligner.partial_fit  # noqa: B018


def test_dataframe_views_and_feature_names():
    """Check named views of a DataFrame through the shared view splitting."""
    A, B = _nonlinear_pair(11, n=200, d_a=3, d_b=2)
    frame = pd.DataFrame(np.hstack([A, B]), columns=["a0", "a1", "a2", "b0", "b1"])
    aligner = ContrastiveAligner(
        n_components=2,
        views={"left": ["a0", "a1", "a2"], "right": ["b0", "b1"]},
        max_iter=2,
        random_state=0,
    )
    _quiet_fit(aligner, frame)
    assert list(aligner.get_feature_names_out()) == [
        "left__contrastivealigner0",
        "left__contrastivealigner1",
        "right__contrastivealigner0",
        "right__contrastivealigner1",
    ]
    assert_allclose(
        aligner.transform_view(frame[["b0", "b1"]], "right"),
        aligner.transform_view(B, 1),
    )


def test_pipeline_and_grid_search():
    """Check use in a Pipeline with a classifier and in GridSearchCV."""
    latent, (A, B) = _latent_pair(12, n=300)
    y = (latent[:, 0] > 0).astype(int)
    X = np.hstack([A, B])
    views = [slice(0, 6), slice(6, 11)]
    model = make_pipeline(
        ContrastiveAligner(n_components=3, views=views, max_iter=5, random_state=0),
        LogisticRegression(),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert model.fit(X, y).score(X, y) > 0.8
        search = GridSearchCV(
            ContrastiveAligner(n_components=3, views=views, max_iter=3, random_state=0),
            {"temperature": [0.05, 0.5]},
            cv=2,
        ).fit(X)
    assert search.best_params_["temperature"] in (0.05, 0.5)


def test_beats_procrustes_on_real_embeddings():
    """Check held-out retrieval on real data: wordllama256 <-> minilm."""
    data = load_fortunes(views=["wordllama256", "minilm"])
    A, B = data.views["wordllama256"], data.views["minilm"]
    train, test = slice(0, 2000), slice(2000, None)
    contrastive = _quiet_fit(ContrastiveAligner(random_state=0), [A[train], B[train]])
    procrustes = ProcrustesAligner().fit([A[train], B[train]])
    held_out = [A[test], B[test]]
    assert contrastive.score(held_out) > procrustes.score(held_out)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_starts_give_the_width_asked_for_from_few_rows():
    """Check n_components from fewer training rows than components.

    The Procrustes start's consensus spans at most as many axes as rows: the
    rest are completed, never silently dropped. CCA has at most n - 1
    directions: None is bounded by that, an explicit larger value refused.
    """
    rng = np.random.default_rng(0)
    A = rng.normal(size=(50, 64))
    B = A @ np.linalg.qr(rng.normal(size=(64, 64)))[0]
    procrustes = ContrastiveAligner(
        n_components=64, init="procrustes", max_iter=2, random_state=0
    ).fit([A, B])
    assert procrustes.n_components_ == 64
    assert procrustes.transform([A, B]).shape == (50, 128)
    again = clone(procrustes).fit([A, B])
    assert_array_equal(again.transform([A, B]), procrustes.transform([A, B]))
    A = rng.normal(size=(200, 190))
    B = A + 0.1 * rng.normal(size=A.shape)
    # 20 of the 200 rows are held out for early stopping: 180 train.
    assert ContrastiveAligner(max_iter=2).fit([A, B]).n_components_ == 179
    with pytest.raises(ValueError, match=r"init='cca' gives at most .* = 179 .*20 of"):
        ContrastiveAligner(n_components=185, max_iter=2).fit([A, B])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_hidden_layer_is_applied_by_row_chunks():
    """Check that transform_view with a hidden layer never holds n x hidden.

    200,000 rows at hidden=256 would need 195 MiB of float32 activations at
    once; by chunks, the peak stays within a few times the 12 MiB output.
    """
    import tracemalloc

    rng = np.random.default_rng(0)
    A = rng.normal(size=(300, 16)).astype(np.float32)
    B = A @ ortho_group.rvs(16, random_state=0).astype(np.float32)
    aligner = ContrastiveAligner(hidden=256, max_iter=2, random_state=0).fit([A, B])
    rows = rng.normal(size=(200_000, 16)).astype(np.float32)
    tracemalloc.start()
    try:
        Z = aligner.transform_view(rows, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert Z.dtype == np.float32
    assert peak < 4 * Z.nbytes
    assert_allclose(Z[-5:], aligner.transform_view(rows[-5:], 0), rtol=1e-5)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_without_held_out_rows_a_diverging_run_keeps_its_start(early_stopping):
    """Check that the weights kept have the lowest training loss, the start included.

    With nothing held out (early_stopping=False, or under 100 rows), the
    last epoch's weights were returned: a diverging learning rate took the
    training top-1 from 0.85 to 0.10.
    """
    rng = np.random.default_rng(0)
    A = rng.normal(size=(60, 5))
    B = A @ rng.normal(size=(5, 4)) + 0.1 * rng.normal(size=(60, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = ContrastiveAligner(
            max_iter=1, learning_rate=1e-12, early_stopping=False, random_state=0
        ).fit([A, B])
        diverged = ContrastiveAligner(
            learning_rate=1.0, max_iter=3, early_stopping=early_stopping, random_state=0
        ).fit([A, B])
    assert diverged.loss_curve_[1] > 10 * diverged.loss_curve_[0]
    assert diverged.score([A, B]) >= start.score([A, B])
    assert_allclose(diverged.projections_[0], start.projections_[0], rtol=1e-6)


def test_hidden_heads_map_the_training_rows_to_mean_zero():
    """Check that a hidden ReLU branch is centred like the linear part.

    The documented shared space is centred; the mean of the ReLU branch was
    left in (norm 0.09 against rows of RMS norm 1 on real embeddings).
    """
    rng = np.random.default_rng(0)
    A = rng.normal(size=(300, 6))
    B = np.tanh(A @ rng.normal(size=(6, 5))) + 0.1 * rng.normal(size=(300, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        aligner = ContrastiveAligner(
            n_components=3, hidden=16, max_iter=5, early_stopping=False, random_state=0
        ).fit([A, B])
    for k, block in enumerate([A, B]):
        Z = aligner.transform_view(block, k)
        assert np.linalg.norm(Z.mean(axis=0)) < 1e-10
        assert_allclose(np.sqrt(np.mean(np.sum(Z**2, axis=1))), 1.0)
        assert np.linalg.norm(aligner.hidden_offsets_[k]) > 1e-3


def test_final_maps_are_set_by_row_chunks():
    """Check that the head's outputs behind the stored maps are taken by chunks.

    The mean and RMS norm of the training outputs once took every row's
    hidden activations at once (n x hidden values at the end of fit). With
    chunks of 7 rows no head sees more than 7 rows there, and the maps are
    those of the default chunks: training rows still map to mean zero and
    unit RMS norm.
    """
    import skembed._contrastive as contrastive

    rng = np.random.default_rng(0)
    A = rng.normal(size=(300, 6))
    B = np.tanh(A @ rng.normal(size=(6, 5))) + 0.1 * rng.normal(size=(300, 5))
    estimator = ContrastiveAligner(
        n_components=3, hidden=16, max_iter=5, early_stopping=False, random_state=0
    )
    reference = _quiet_fit(clone(estimator), [A, B])
    seen = []
    set_maps = ContrastiveAligner._set_maps
    forward = contrastive.head_forward

    def bounded(params, X):
        seen.append(X.shape[0])
        return forward(params, X)

    def chunked(self, *args):
        with pytest.MonkeyPatch.context() as inner:
            inner.setattr(contrastive, "chunk_rows", lambda *a, **k: 7)
            inner.setattr(contrastive, "head_forward", bounded)
            return set_maps(self, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ContrastiveAligner, "_set_maps", chunked)
        aligner = _quiet_fit(clone(estimator), [A, B])
    assert seen and max(seen) <= 7
    for k, block in enumerate([A, B]):
        assert_allclose(
            aligner.hidden_offsets_[k], reference.hidden_offsets_[k], atol=1e-12
        )
        assert_allclose(aligner.projections_[k], reference.projections_[k], rtol=1e-12)
        Z = aligner.transform_view(block, k)
        assert np.linalg.norm(Z.mean(axis=0)) < 1e-10
        assert_allclose(np.sqrt(np.mean(np.sum(Z**2, axis=1))), 1.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_best_validation_score_is_the_score_of_the_returned_maps(seed):
    """Check the held-out score is taken as transform maps the held-out rows.

    The hidden branch's training mean, subtracted by transform, was left in
    the scored outputs, so the reported best score (and the epoch kept)
    described other maps: 0.128 against 0.107 of the returned maps here.
    """
    from sklearn.utils import check_random_state

    from skembed._contrastive import split_validation_rows
    from skembed._neighbors import alignment_score

    rng = np.random.default_rng(seed)
    A = rng.normal(size=(600, 8))
    B = np.tanh(A @ rng.normal(size=(8, 6))) + 0.3 * rng.normal(size=(600, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        aligner = ContrastiveAligner(
            n_components=4,
            hidden=64,
            init="random",
            learning_rate=0.01,
            max_iter=20,
            validation_fraction=0.5,
            random_state=seed,
        ).fit([A, B])
    _, held_out = split_validation_rows(600, check_random_state(seed), True, 0.5)
    mapped = [
        aligner.transform_view(A[held_out], 0),
        aligner.transform_view(B[held_out], 1),
    ]
    # Up to one row per direction may rank differently through rounding.
    assert aligner.best_validation_score_ == pytest.approx(
        alignment_score(mapped), abs=2 / 600
    )


def test_the_loss_value_alone_equals_the_loss_with_its_gradient():
    """Check the forward-only loss that scores weights without held-out rows."""
    from skembed._contrastive import _contrastive_loss, _info_nce_value

    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(40, w)) for w in (6, 5, 4)]
    linear = [[rng.normal(size=(w, 3))] for w in (6, 5, 4)]
    hidden = [
        [
            rng.normal(size=(w, 3)),
            rng.normal(size=(w, 7)),
            rng.normal(size=7),
            rng.normal(size=(7, 3)),
        ]
        for w in (6, 5, 4)
    ]
    for params in (linear, hidden):
        expected = _contrastive_loss(params, blocks, 0.1)[0]
        assert _info_nce_value(params, blocks, 0.1) == pytest.approx(
            expected, rel=1e-12
        )


@pytest.mark.parametrize("offset", [1e2, 1e4])
def test_hidden_heads_of_float32_rows_far_from_the_origin_keep_their_precision(offset):
    """Check float32 rows at 1e4 with a spread of 0.01 through hidden heads.

    The hidden layer computed x W1 + (b1 - m W1) on the raw rows, in the
    input dtype: the two large terms cancelled and float32 outputs were off
    by 2e-4 (mean 100) to 1e-2 (mean 1e4) of their size.
    """
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(1000, 4))
    A = latent @ rng.normal(size=(4, 8)) * 0.01 + offset
    B = np.tanh(2 * latent @ rng.normal(size=(4, 6))) * 0.01 + offset
    A32, B32 = A.astype(np.float32), B.astype(np.float32)
    aligner = ContrastiveAligner(
        n_components=4, hidden=32, max_iter=40, learning_rate=1e-2, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        aligner.fit([A32.astype(np.float64), B32.astype(np.float64)])
    for k, view in enumerate((A32, B32)):
        got = aligner.transform_view(view, k)
        expected = aligner.transform_view(view.astype(np.float64), k)
        assert got.dtype == np.float32
        assert np.abs(got - expected).max() < 1e-5 * np.abs(expected).max()
