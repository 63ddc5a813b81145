"""Tests for the scale features: streaming, memory, float32 accuracy, threads."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import tracemalloc

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.stats import ortho_group
from sklearn.base import clone
from threadpoolctl import threadpool_info, threadpool_limits

import skembed
from skembed import GeneralizedProcrustesAligner, ProcrustesAligner
from skembed._stats import BUDGETS

_CHUNK_BUDGET = BUDGETS["moments"]
_TRANSFORM_BUDGET = BUDGETS["transform"]

STREAMED = [ProcrustesAligner(scale=True), GeneralizedProcrustesAligner()]
if hasattr(skembed, "RidgeAligner"):
    STREAMED.append(skembed.RidgeAligner(alpha=0.1))


def _paired(n, d, *, seed=0, mean=0.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d)) * np.linspace(1, 2, d) + mean
    Q = ortho_group.rvs(d, random_state=seed)
    B = A @ Q - mean / 2 + 0.1 * rng.normal(size=(n, d))
    return np.hstack([A, B]).astype(dtype)


def _traced_peak(function):
    """Result of ``function()`` and the peak of traced memory it allocated."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = function()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.mark.parametrize("estimator", STREAMED, ids=lambda e: type(e).__name__)
def test_partial_fit_over_1000_chunks_equals_fit(estimator):
    """Check that 1,000 partial_fit calls give the maps of one fit."""
    X = _paired(5000, 4, mean=3.0)
    streamed = clone(estimator)
    for chunk in np.array_split(X, 1000):
        streamed.partial_fit(chunk)
    whole = clone(estimator).fit(X)
    for got, want in zip(streamed._projections, whole._projections, strict=True):
        assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert_allclose(streamed.means_[1], whole.means_[1], rtol=1e-12)
    assert streamed._stats.n_samples_ == 5000


def test_partial_fit_rejects_nan_chunk_and_keeps_statistics():
    """Check that a chunk with NaN raises and leaves the statistics untouched."""
    X = _paired(600, 4)
    aligner = ProcrustesAligner().partial_fit(X[:300])
    bad = X[300:].copy()
    bad[10, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        aligner.partial_fit(bad)
    assert aligner._stats.n_samples_ == 300
    aligner.partial_fit(X[300:])
    assert_allclose(
        aligner.rotations_[1], ProcrustesAligner().fit(X).rotations_[1], rtol=1e-10
    )


@pytest.mark.parametrize("combine", ["concat", "mean", "similarity"])
@pytest.mark.parametrize("normalize", [None, "l2"])
@pytest.mark.slow
def test_transform_writes_output_once_in_input_dtype(combine, normalize):
    """Check transform's dtype and that it makes no output-sized temporary."""
    # X (100 MB) is several times the transform chunk budget, so a temporary
    # of the size of X or of a mapped view would exceed the bound below.
    X = _paired(200_000, 64, mean=1.0, dtype=np.float32)
    aligner = ProcrustesAligner(combine=combine, normalize=normalize).fit(X)
    Z, peak = _traced_peak(lambda: aligner.transform(X))
    assert Z.dtype == np.float32
    reference = ProcrustesAligner(combine=combine, normalize=normalize).fit(
        X.astype(np.float64)
    )
    assert_allclose(Z, reference.transform(X.astype(np.float64)), atol=2e-3)
    # The output itself plus chunk-sized buffers, nothing of the size of X.
    assert peak - Z.nbytes < _TRANSFORM_BUDGET + 2**20
    Zk, peak = _traced_peak(lambda: aligner.transform_view(X[:, 64:], 1))
    assert Zk.dtype == np.float32
    assert peak - Zk.nbytes < _TRANSFORM_BUDGET + 2**20


def test_fit_memory_stays_within_a_chunk():
    """Check that fit allocates chunk-sized temporaries only, even when shifting."""
    X = _paired(100_000, 64, mean=500.0, dtype=np.float32)
    _, peak = _traced_peak(lambda: GeneralizedProcrustesAligner().fit(X))
    # A shifted chunk per view and per worker thread (two at most), d x d
    # moments; X itself is 51 MB.
    assert peak < 2 * 2 * _CHUNK_BUDGET + 4 * 2**20


def test_float32_fit_with_large_mean_matches_float64():
    """Check float32 rows far from the origin against a float64 fit.

    The mean is 1,000 standard deviations away: float32 products about the
    origin would lose every digit of the covariance, the pilot shift keeps
    about four.
    """
    X = _paired(200_000, 16, mean=1000.0)
    X32 = X.astype(np.float32)
    for estimator in [ProcrustesAligner(scale=True), GeneralizedProcrustesAligner()]:
        exact = clone(estimator).fit(X)
        single = clone(estimator).fit(X32)
        for got, want in zip(single._projections, exact._projections, strict=True):
            assert np.linalg.norm(got - want) / np.linalg.norm(want) < 1e-3
        assert_allclose(single.means_[0], exact.means_[0], rtol=1e-6)
        # Streaming in pieces with different pilot shifts changes nothing.
        streamed = clone(estimator)
        for chunk in np.array_split(X32, 7):
            streamed.partial_fit(chunk)
        for got, want in zip(streamed._projections, exact._projections, strict=True):
            assert np.linalg.norm(got - want) / np.linalg.norm(want) < 1e-3


def test_threads_are_left_to_the_blas(monkeypatch):
    """Check that fit honours threadpoolctl limits and never changes them.

    The counts are read after a fit made outside any limit of the test's
    own (whose exit would restore them whatever fit did), from two threads,
    and during the fit's statistics pass.
    """
    from skembed._stats import CrossMoments

    X = _paired(2000, 8)
    seen = []
    update = CrossMoments.update

    def watched(self, *args, **kwargs):
        seen.append([info["num_threads"] for info in threadpool_info()])
        return update(self, *args, **kwargs)

    monkeypatch.setattr(CrossMoments, "update", watched)
    # The test session pins the BLAS to one thread; two make a change visible.
    with threadpool_limits(limits=2):
        before = [info["num_threads"] for info in threadpool_info()]
        free = ProcrustesAligner().fit(X)
        assert [info["num_threads"] for info in threadpool_info()] == before
        seen.clear()
        with threadpool_limits(limits=1):
            limited = ProcrustesAligner().fit(X)
        assert seen and all(n == 1 for counts in seen for n in counts)
        assert [info["num_threads"] for info in threadpool_info()] == before
    assert_allclose(limited.rotations_[1], free.rotations_[1], rtol=1e-10)
