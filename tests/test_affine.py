"""Tests for the affine-map machinery shared by the closed-form aligners."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from skembed import (
    CCAAligner,
    ContrastiveAligner,
    ProcrustesAligner,
    RidgeAligner,
    SelfLearningAligner,
)


def _views(seed=0, widths=(10, 7), n=200):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, widths[0])) + 2.0
    B = A @ rng.normal(size=(widths[0], widths[1])) + rng.normal(size=(n, widths[1]))
    return A, B - 1.0


def _two_step(aligner, X, source, target):
    """translate through the shared space, as the maps define it."""
    return aligner._unmap(aligner._map(X, source, offset=False), target, offset=False)


@pytest.mark.parametrize(
    "aligner",
    [
        ProcrustesAligner(),
        ProcrustesAligner(scale=True, normalize="l2"),
        RidgeAligner(alpha=0.5),
        RidgeAligner(alpha=0.5, reference=1),
    ],
    ids=["procrustes", "procrustes-l2", "ridge", "ridge-ref1"],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_composed_translate_equals_the_two_maps(aligner, dtype):
    """Check that translate by one composed map equals the map then the back-map."""
    A, B = _views()
    A, B = A.astype(dtype), B.astype(dtype)
    aligner.fit([A, B])
    for source, target, X in ((1, 0, B), (0, 1, A)):
        got = aligner.translate(X, source, target)
        assert got.dtype == dtype
        tolerance = 1e-4 if dtype == np.float32 else 1e-10
        assert_allclose(
            got, _two_step(aligner, X, source, target), rtol=tolerance, atol=tolerance
        )
        # The kept plan serves a second call, a single row included.
        assert_allclose(
            aligner.translate(X[:1], source, target), got[:1], atol=tolerance
        )


def test_refit_replaces_the_kept_translation():
    """Check that a refit on other data never reuses the previous composed map."""
    A, B = _views(seed=0)
    aligner = RidgeAligner(alpha=0.1).fit([A, B])
    first = aligner.translate(B, 1, 0)
    C, D = _views(seed=1)
    aligner.fit([C, D])
    assert_allclose(aligner.translate(B, 1, 0), _two_step(aligner, B, 1, 0), atol=1e-10)
    assert not np.allclose(aligner.translate(B, 1, 0), first)


def test_narrow_shared_space_keeps_two_products():
    """Check that CCA with few components translates through the shared space."""
    A, B = _views(widths=(12, 12))
    aligner = CCAAligner(n_components=2).fit([A, B])
    assert aligner._translation_plan(0, 1, np.float64) is None
    assert_allclose(aligner.translate(A, 0, 1), _two_step(aligner, A, 0, 1))


def test_pickled_aligner_translates_the_same():
    """Check that an aligner pickled after translate still translates correctly."""
    A, B = _views()
    aligner = ProcrustesAligner().fit([A, B])
    expected = aligner.translate(B, 1, 0)
    restored = pickle.loads(pickle.dumps(aligner))
    assert_allclose(restored.translate(B, 1, 0), expected)


@pytest.mark.parametrize("make", [ProcrustesAligner, RidgeAligner, CCAAligner])
def test_float32_rows_far_from_the_origin_are_mapped_to_float32_precision(make):
    """Check float32 transform of rows at 1e4 with a spread of 0.01.

    The fitted maps were exact, but ``x @ P - mean @ P`` in float32 cancelled:
    outputs off by up to 24% of their size, where the fit avoids the same
    cancellation in its moments.
    """
    rng = np.random.default_rng(0)
    n, d = 2000, 16
    A = rng.normal(size=(n, d))
    B = A @ np.linalg.qr(rng.normal(size=(d, d)))[0] + 0.1 * rng.normal(size=(n, d))
    X32 = np.hstack([A * 0.01 + 1e4, B * 0.01 + 1e4]).astype(np.float32)
    aligner = make().fit(X32)
    exact = aligner.transform(X32.astype(np.float64))
    got = aligner.transform(X32)
    assert got.dtype == np.float32
    assert np.abs(got - exact).max() <= 1e-5 * np.abs(exact).max()
    view = aligner.transform_view(X32[:, d:], 1)
    exact_view = aligner.transform_view(X32[:, d:].astype(np.float64), 1)
    assert np.abs(view - exact_view).max() <= 1e-5 * np.abs(exact_view).max()


@pytest.mark.parametrize("scale", [1e-40, 1e36])
def test_float32_rows_of_extreme_scale_get_finite_cca_maps(scale):
    """Check float32 CCA of rows near 1e-40 (subnormal) and 1e36.

    The whitening maps have entries of the inverse scale (1e40 is beyond
    float32): cast to float32 they became infinite, transform_view returned
    NaN and transform blamed the input for it.
    """
    rng = np.random.default_rng(0)
    n, d = 500, 8
    A = rng.normal(size=(n, d))
    B = A @ np.linalg.qr(rng.normal(size=(d, d)))[0] + 0.1 * rng.normal(size=(n, d))
    A32, B32 = (A * scale).astype(np.float32), (B * scale).astype(np.float32)
    aligner = CCAAligner().fit([A32, B32])
    exact = CCAAligner().fit([A32.astype(np.float64), B32.astype(np.float64)])
    Z = aligner.transform_view(B32, 1)
    assert Z.dtype == np.float32
    expected = exact.transform_view(B32.astype(np.float64), 1)
    assert np.abs(Z - expected).max() <= 1e-3 * np.abs(expected).max()
    combined = aligner.transform(np.hstack([A32, B32]))
    assert np.isfinite(combined).all()
    back = aligner.inverse_transform_view(Z, 1)
    assert back.dtype == np.float32
    assert np.abs(back - B32).max() <= 1e-3 * np.abs(B32).max()
    translated = aligner.translate(B32, 1, 0)
    reference = exact.translate(B32.astype(np.float64), 1, 0)
    assert np.abs(translated - reference).max() <= 1e-3 * np.abs(reference).max()


@pytest.mark.parametrize("make", [ProcrustesAligner, RidgeAligner, CCAAligner])
def test_float32_translate_far_from_the_origin_keeps_float32_precision(make):
    """Check float32 translate of rows at 1e4 with a spread of 0.01.

    translate's composed map ``x @ C - (mean @ C - target mean)`` cancelled
    like transform's did: translations off by 12-16% of their spread.
    """
    rng = np.random.default_rng(0)
    n, d = 2000, 16
    A = (rng.normal(size=(n, d)) * 0.01 + 1e4).astype(np.float32)
    rotation = np.linalg.qr(rng.normal(size=(d, d)))[0]
    B = ((A.astype(np.float64) - 1e4) @ rotation + 5.0).astype(np.float32)
    aligner = make().fit([A, B])
    got = aligner.translate(A[:100], 0, 1)
    exact = aligner.translate(A[:100].astype(np.float64), 0, 1)
    assert got.dtype == np.float32
    spread = np.abs(exact - exact.mean(axis=0)).max()
    assert np.abs(got - exact).max() <= 1e-3 * spread


@pytest.mark.parametrize(
    "aligner",
    [
        ProcrustesAligner(),
        RidgeAligner(alpha=0.5),
        CCAAligner(n_components=3),
        ContrastiveAligner(4, max_iter=5, random_state=0),
        SelfLearningAligner(init="identity", n_iter=2, random_state=0),
    ],
    ids=["procrustes", "ridge", "cca", "contrastive", "selflearning"],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
# Short fits: whether they converged does not matter here.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::skembed.UnsupervisedAlignmentWarning")
def test_translate_into_its_own_view_is_the_identity(aligner, dtype):
    """Check that translate(X, k, k) returns X: through a narrower shared
    space or a ridge map and back it came back only part of the way."""
    A, B = (v.astype(dtype) for v in _views(widths=(8, 8)))
    aligner.fit([A, B])
    for view, X in ((0, A), (1, B)):
        got = aligner.translate(X, view, view)
        assert got.dtype == dtype
        assert_array_equal(got, X)
        assert not np.shares_memory(got, X)


def _dates_and_strings(width):
    rng = np.random.default_rng(0)
    seconds = (rng.normal(size=(20, width)) * 1e6).astype("timedelta64[s]")
    return [
        np.datetime64("2024-01-01") + seconds,
        seconds,
        rng.normal(size=(20, width)).astype(str),
    ]


@pytest.mark.parametrize("bad", range(3), ids=["datetime", "timedelta", "strings"])
def test_one_view_methods_refuse_dates_and_strings(bad):
    """Check transform_view, translate and inverse_transform_view refuse them.

    fit and transform refused dates, durations and strings, but the one-view
    methods cast them to floats and returned a map of nonsense.
    """
    A, B = _views()
    aligner = ProcrustesAligner().fit([A, B])
    X = _dates_and_strings(A.shape[1])[bad]
    with pytest.raises(ValueError, match="X holds non-numeric values"):
        aligner.transform_view(X, 0)
    with pytest.raises(ValueError, match="X holds non-numeric values"):
        aligner.translate(X, 0, 1)
    Z = _dates_and_strings(aligner.n_components_)[bad]
    with pytest.raises(ValueError, match="Z holds non-numeric values"):
        aligner.inverse_transform_view(Z, 0)


@pytest.mark.parametrize("library", ["pandas-nullable", "polars"])
def test_inverse_transform_view_keeps_float32_frames_float32(library):
    """Check a float32 frame of any library comes back float32.

    scikit-learn reads the dtypes of plain pandas frames only: a nullable
    Float32 or a polars Float32 frame came back float64, unlike transform_view.
    """
    A, B = (v.astype(np.float32) for v in _views())
    aligner = ProcrustesAligner().fit([A, B])
    Z = aligner.transform_view(A, 0)
    if library == "polars":
        pl = pytest.importorskip("polars")
        frame = pl.DataFrame(Z)
    else:
        import pandas as pd

        frame = pd.DataFrame(Z).astype("Float32")
    back = aligner.inverse_transform_view(frame, 0)
    assert back.dtype == np.float32
    assert_allclose(back, aligner.inverse_transform_view(Z, 0), rtol=1e-6)


def test_inverse_transform_view_of_dask_rows_is_lazy():
    """Check inverse_transform_view of a Dask array returns a lazy Dask array.

    It computed the whole collection into memory, unlike transform_view and
    translate.
    """
    da = pytest.importorskip("dask.array")
    A, B = _views()
    aligner = ProcrustesAligner().fit([A, B])
    Z = aligner.transform_view(A, 0)
    lazy = aligner.inverse_transform_view(da.from_array(Z, chunks=(64, -1)), 0)
    assert isinstance(lazy, da.Array)
    assert_allclose(lazy.compute(), aligner.inverse_transform_view(Z, 0))
    with pytest.raises(ValueError, match="Z has 3 columns"):
        aligner.inverse_transform_view(da.zeros((10, 3), chunks=5), 0)


def test_back_maps_are_formed_once_per_fit_and_left_out_of_pickles(monkeypatch):
    """Check inverse_transform_view forms a pseudo-inverse once per fitted map.

    It formed one on every call (14 ms for 384 x 384, against 0.1 ms for
    mapping a row), and the kept translation plans doubled a pickle's size.
    """
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(300, 40)), rng.normal(size=(300, 40))
    aligner = ProcrustesAligner().fit([A, B])
    empty = len(pickle.dumps(aligner))
    calls = []
    original = np.linalg.pinv
    monkeypatch.setattr(
        np.linalg, "pinv", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    Z = aligner.transform_view(A[:5], 0)
    first = aligner.inverse_transform_view(Z, 1)
    assert_array_equal(aligner.inverse_transform_view(Z, 1), first)
    aligner.translate(A[:5], 0, 1)
    assert len(calls) == 1
    # A refit replaces the maps, and with them the kept back-map.
    aligner.fit([A, B @ np.linalg.qr(rng.normal(size=(40, 40)))[0]])
    refitted = aligner.inverse_transform_view(Z, 1)
    assert len(calls) == 2
    assert not np.allclose(refitted, first)
    assert len(pickle.dumps(aligner)) < empty + 1000
    restored = pickle.loads(pickle.dumps(aligner))
    assert_array_equal(restored.inverse_transform_view(Z, 1), refitted)


@pytest.mark.parametrize(
    "aligner", [RidgeAligner(), CCAAligner(n_components=4)], ids=["ridge", "cca"]
)
def test_pickles_keep_the_back_maps_a_model_stores(aligner):
    """Check leaving the kept caches out of a pickle keeps stored back-maps.

    Ridge and CCA store their back-maps as fitted state; a cache of the same
    name dropped from pickles would have dropped them.
    """
    A, B = _views()
    aligner.fit([A, B])
    Z = aligner.transform_view(A[:5], 0)
    expected = aligner.inverse_transform_view(Z, 1)
    aligner.translate(A[:5], 0, 1)
    restored = pickle.loads(pickle.dumps(aligner))
    assert_array_equal(restored.inverse_transform_view(Z, 1), expected)
    assert_array_equal(restored.translate(A[:5], 0, 1), aligner.translate(A[:5], 0, 1))
