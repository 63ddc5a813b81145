"""Tests for skembed.ResidualMLPAligner: ridge plus a residual MLP."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pytest
from _nonlinear import mean_squared_error, nonlinear_pairs
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import InvalidParameterError

import skembed
import skembed._residual
from skembed import ResidualMLPAligner, RidgeAligner, load_aligner, save_aligner
from skembed._contrastive import split_validation_rows
from skembed.exceptions import ConstantViewWarning

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_training_starts_at_the_ridge_map():
    """Check that the first held-out loss is RidgeAligner's on the training part."""
    old, new = nonlinear_pairs()
    aligner = ResidualMLPAligner(hidden=16, random_state=0, max_iter=3)
    with pytest.warns(ConvergenceWarning):
        aligner.fit([old, new])
    train, held_out = split_validation_rows(
        old.shape[0], check_random_state(0), True, 0.1
    )
    ridge = RidgeAligner(alpha=1.0).fit([old[train], new[train]])
    predicted = ridge.translate(new[held_out], 1, 0)
    # The loss is in standardised units: the reference rows' mean square norm.
    centred = old[train] - old[train].mean(axis=0)
    scale = np.mean(np.sum(centred**2, axis=1))
    expected = mean_squared_error(predicted, old[held_out]) / scale
    assert_allclose(aligner.validation_losses_[1][0], expected, rtol=1e-8)
    assert aligner.validation_losses_[0] is None
    assert len(aligner.validation_losses_[1]) == aligner.n_iter_ + 1 == 4


@pytest.mark.parametrize("loss", ["mse", "cosine"])
def test_beats_ridge_on_a_non_linear_relation(loss):
    """Check that the MLP predicts held-out pairs better than ridge alone."""
    old, new = nonlinear_pairs(n=3000)
    train, test = slice(0, 2500), slice(2500, None)
    aligner = ResidualMLPAligner(hidden=64, loss=loss, random_state=0)
    aligner.fit([old[train], new[train]])
    ridge = RidgeAligner().fit([old[train], new[train]])
    mlp_error = mean_squared_error(aligner.translate(new[test], 1, 0), old[test])
    ridge_error = mean_squared_error(ridge.translate(new[test], 1, 0), old[test])
    assert mlp_error < 0.5 * ridge_error
    # Early stopping kept the best held-out weights, never worse than the start.
    for k, curve in enumerate(aligner.validation_losses_):
        if k != aligner.reference_:
            assert min(curve) <= curve[0]


@pytest.mark.parametrize("early_stopping, n", [(False, 300), (True, 60)])
def test_without_held_out_rows_a_diverging_run_keeps_the_ridge_start(early_stopping, n):
    """Check the training loss picks the weights kept when nothing is held out."""
    old, new = nonlinear_pairs(n=n)
    aligner = ResidualMLPAligner(
        hidden=4,
        max_iter=30,
        learning_rate=10.0,
        early_stopping=early_stopping,
        random_state=0,
    ).fit([old, new])
    assert aligner.validation_losses_[1] is None
    ridge = RidgeAligner().fit([old, new])
    # the run diverges: its losses end far above the start
    assert aligner.loss_curves_[1][-1] > 10 * aligner.loss_curves_[1][0]
    mlp_error = mean_squared_error(aligner.translate(new, 1, 0), old)
    ridge_error = mean_squared_error(ridge.translate(new, 1, 0), old)
    assert mlp_error <= ridge_error * (1 + 1e-9)


def test_fit_is_deterministic_for_a_random_state():
    """Check that two fits with one seed give identical maps."""
    old, new = nonlinear_pairs(n=600)
    first = ResidualMLPAligner(hidden=8, random_state=3).fit([old, new])
    second = ResidualMLPAligner(hidden=8, random_state=3).fit([old, new])
    for name in ("coefs_", "hidden_weights_", "hidden_projections_"):
        assert_array_equal(getattr(first, name)[1], getattr(second, name)[1])
    other = ResidualMLPAligner(hidden=8, random_state=4).fit([old, new])
    assert not np.array_equal(other.hidden_weights_[1], first.hidden_weights_[1])


def test_float32_in_float32_out_and_input_untouched():
    """Check that float32 pairs train, map and translate in float32."""
    old, new = nonlinear_pairs(n=600, dtype=np.float32)
    before = (old.copy(), new.copy())
    aligner = ResidualMLPAligner(hidden=8, random_state=0).fit([old, new])
    assert_array_equal(old, before[0])
    assert_array_equal(new, before[1])
    assert aligner.transform([old, new]).dtype == np.float32
    assert aligner.translate(new, 1, 0).dtype == np.float32
    assert aligner.coefs_[1].dtype == np.float64
    as64 = aligner.translate(new.astype(np.float64), 1, 0)
    assert_allclose(aligner.translate(new, 1, 0), as64, rtol=1e-4, atol=1e-4)


def test_translate_runs_into_the_reference_only():
    """Check translate's frame, its identity case and its one direction."""
    old, new = nonlinear_pairs(n=600)
    aligner = ResidualMLPAligner(hidden=8, random_state=0).fit([old, new])
    translated = aligner.translate(new, 1, 0)
    centred = aligner.transform_view(new, 1)
    assert_allclose(translated, centred + aligner.means_[0], atol=1e-12)
    assert_allclose(aligner.transform_view(old, 0), old - aligner.means_[0])
    copy = aligner.translate(new, 1, 1)
    assert_array_equal(copy, new)
    assert not np.shares_memory(copy, new)
    with pytest.raises(ValueError, match="translates only into its reference"):
        aligner.translate(old, 0, 1)
    with pytest.raises(ValueError, match="source='zz'"):
        aligner.translate(new, "zz", 0)
    with pytest.raises(ValueError, match="target='zz'"):
        aligner.translate(new, 1, "zz")
    framed = ResidualMLPAligner(hidden=8, random_state=0, output_frame="reference")
    framed.fit([old, new])
    assert_allclose(framed.transform_view(new, 1), translated, atol=1e-12)


def test_map_is_computed_in_row_chunks(monkeypatch):
    """Check that mapping in small row chunks gives the rows of one product."""
    old, new = nonlinear_pairs(n=600)
    aligner = ResidualMLPAligner(hidden=8, random_state=0).fit([old, new])
    whole = aligner.translate(new, 1, 0)
    monkeypatch.setattr(skembed._residual, "chunk_rows", lambda *a, **k: 7)
    assert_allclose(aligner.translate(new, 1, 0), whole, rtol=1e-12, atol=1e-12)


def test_three_views_each_map_onto_the_reference():
    """Check that every non-reference view gets its own trained map."""
    old, new = nonlinear_pairs(n=800)
    third = np.sin(new[:, :5])
    aligner = ResidualMLPAligner(hidden=8, reference=1, random_state=0)
    aligner.fit([new, old, third])
    assert aligner.reference_ == 1
    assert aligner.hidden_weights_[1] is None
    assert aligner.hidden_weights_[2].shape == (5, 8)
    assert aligner.transform([new, old, third]).shape == (800, 18)
    assert aligner.translate(third, 2, 1).shape == (800, 6)


def test_model_file_round_trip(tmp_path):
    """Check that a saved adapter translates identically after loading."""
    old, new = nonlinear_pairs(n=600, dtype=np.float32)
    aligner = ResidualMLPAligner(hidden=8, random_state=0).fit([old, new])
    save_aligner(aligner, tmp_path / "adapter.npz")
    loaded = load_aligner(tmp_path / "adapter.npz")
    assert_array_equal(loaded.translate(new, 1, 0), aligner.translate(new, 1, 0))


def test_pandas_output_and_feature_names():
    """Check set_output(transform="pandas") and the output feature names."""
    pd = pytest.importorskip("pandas")
    old, new = nonlinear_pairs(n=300)
    aligner = ResidualMLPAligner(hidden=4, random_state=0, combine="mean")
    aligner.set_output(transform="pandas").fit([old, new])
    frame = aligner.transform([old, new])
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == [f"residualmlpaligner{j}" for j in range(6)]


def test_capabilities_it_does_not_have():
    """Check that partial_fit and inverse_transform_view are absent, with reasons."""
    old, new = nonlinear_pairs(n=300)
    aligner = ResidualMLPAligner(hidden=4, random_state=0).fit([old, new])
    assert not hasattr(aligner, "partial_fit")
    with pytest.raises(AttributeError, match="no inverse"):
        aligner.inverse_transform_view(old, 0)


def test_bad_input():
    """Check the errors for too few rows and invalid parameters."""
    old, new = nonlinear_pairs(n=300)
    with pytest.raises(ValueError, match="at least 2 samples"):
        ResidualMLPAligner().fit([old[:1], new[:1]])
    with pytest.raises(InvalidParameterError):
        ResidualMLPAligner(loss="l1").fit([old, new])
    with pytest.raises(InvalidParameterError):
        ResidualMLPAligner(hidden=0).fit([old, new])


@pytest.mark.parametrize("offset", [1e3, 1e4])
@pytest.mark.parametrize(
    "aligner",
    [
        ResidualMLPAligner(random_state=0, max_iter=20),
        skembed.KernelResidualAligner(),
    ],
    ids=["mlp", "kernel"],
)
def test_float32_rows_far_from_the_origin_keep_their_precision(aligner, offset):
    # The maps computed x A - m A (and the correction x W - m W, or x - m
    # with m rounded) in the input dtype: at a mean of 1e4 and a spread of
    # 0.01, float32 outputs were off by 1-7% of their size.
    rng = np.random.default_rng(0)
    X = [offset + 0.01 * rng.normal(size=(400, n)) for n in (6, 5)]
    X32 = [x.astype(np.float32) for x in X]
    aligner.fit([x.astype(np.float64) for x in X32])
    for k in range(2):
        got = aligner.transform_view(X32[k], k)
        expected = aligner.transform_view(X32[k].astype(np.float64), k)
        assert got.dtype == np.float32
        assert np.abs(got - expected).max() < 1e-5 * np.abs(expected).max()


@pytest.mark.parametrize("loss", ["mse", "cosine"])
def test_training_losses_are_taken_by_row_chunks(loss):
    """Check the whole-set losses of training cost a chunk, not n x hidden.

    The training loss of every epoch (without held-out rows) and the norm
    of the cosine loss's outputs ran the hidden layer on every training row
    at once: 40 MB of activations here (80 MB in float64), 1 GB at a
    million rows and hidden=256.
    """
    import tracemalloc
    import warnings

    rng = np.random.default_rng(0)
    new = rng.normal(size=(20000, 8)).astype(np.float32)
    old = np.tanh(new[:, :6])
    aligner = ResidualMLPAligner(
        hidden=512, max_iter=1, early_stopping=False, loss=loss, random_state=0
    )
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            aligner.fit([old, new])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 24 * 2**20


@pytest.mark.parametrize(
    "aligner",
    [skembed.KernelResidualAligner(), ResidualMLPAligner(max_iter=3, random_state=0)],
    ids=["kernel", "mlp"],
)
@pytest.mark.parametrize("constant_view", [0, 1])
def test_constant_views_are_warned_by_name(aligner, constant_view):
    """Check a constant view is named, by this aligner, at the user's line.

    The kernel's warning came from its inner RidgeAligner ("RidgeAligner:
    view(s) ['view0']", pointing into skembed); the residual MLP's map of a
    constant view went to one point without a word.
    """
    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(120, 6)), rng.normal(size=(120, 4))]
    blocks[constant_view] = np.full_like(blocks[constant_view], 0.3)
    X = np.hstack(blocks)
    aligner = aligner.set_params(views={"old": slice(0, 6), "new": slice(6, 10)})
    with pytest.warns(UserWarning, match="are constant") as record:
        aligner.fit_transform(X)
    messages = [w for w in record if "are constant" in str(w.message)]
    assert len(messages) == 1
    name = ["old", "new"][constant_view]
    assert str(messages[0].message).startswith(
        f"{type(aligner).__name__}: view(s) ['{name}']"
    )
    assert messages[0].filename == __file__
    assert messages[0].category is ConstantViewWarning
    assert messages[0].message.views == (name,)
