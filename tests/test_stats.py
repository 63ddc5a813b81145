"""Tests for the shared sufficient-statistics engine."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from skembed._stats import CrossMoments


def _reference(blocks):
    centred = [b.astype(np.float64) - b.astype(np.float64).mean(axis=0) for b in blocks]
    return centred


@settings(deadline=None)
@given(
    seed=st.integers(0, 2**16),
    chunk=st.integers(1, 60),
    offset=st.floats(-1e3, 1e3),
)
def test_moments_match_dense_formulas(seed, chunk, offset):
    """Check means, centred cross and Gram blocks against dense float64 formulas."""
    rng = np.random.default_rng(seed)
    blocks = [rng.normal(size=(97, 4)) + offset, rng.normal(size=(97, 3))]
    stats = CrossMoments(2, cross="all", gram=True, sum_of_squares=True)
    stats.update(blocks, chunk_size=chunk)
    centred = _reference(blocks)
    scale = 1 + offset**2
    assert_allclose(stats.mean(0), blocks[0].mean(axis=0), rtol=1e-12, atol=1e-9)
    assert_allclose(
        stats.centered_cross(0, 1), centred[0].T @ centred[1], atol=1e-9 * scale
    )
    assert_allclose(
        stats.centered_cross(1, 0), centred[1].T @ centred[0], atol=1e-9 * scale
    )
    assert_allclose(
        stats.centered_gram(0), centred[0].T @ centred[0], atol=1e-9 * scale
    )
    assert_allclose(
        stats.centered_sum_of_squares(0),
        (centred[0] ** 2).sum(),
        rtol=1e-9,
        atol=1e-9 * scale,
    )
    assert_allclose(stats.uncentered_gram(1), blocks[1].T @ blocks[1], atol=1e-9)


@settings(deadline=None)
@given(seed=st.integers(0, 2**16), split=st.integers(1, 96))
def test_merge_equals_single_pass(seed, split):
    """Check that merging two accumulators (different shifts) equals one pass."""
    rng = np.random.default_rng(seed)
    blocks = [rng.normal(size=(97, 4)) * 1e-3 + 100.0, rng.normal(size=(97, 2)) - 50]
    whole = CrossMoments(2, cross="all", gram=True, sum_of_squares=True).update(blocks)
    left = CrossMoments(2, cross="all", gram=True, sum_of_squares=True)
    right = CrossMoments(2, cross="all", gram=True, sum_of_squares=True)
    left.update([b[:split] for b in blocks])
    right.update([b[split:] for b in blocks])
    left.merge(right)
    assert left.n_samples_ == 97
    assert_allclose(
        left.centered_gram(0), whole.centered_gram(0), rtol=1e-6, atol=1e-10
    )
    assert_allclose(
        left.centered_cross(0, 1), whole.centered_cross(0, 1), rtol=1e-6, atol=1e-9
    )
    assert_allclose(left.mean(1), whole.mean(1), rtol=1e-12)
    assert_allclose(
        left.centered_sum_of_squares(0), whole.centered_sum_of_squares(0), rtol=1e-6
    )


def test_float32_with_large_mean_keeps_accuracy():
    """Check float32 chunks, float64 accumulation and the pilot shift against float64.

    The data sit 1e3 standard deviations from the origin; without the shift
    the float32 products would lose every significant digit of the covariance.
    """
    rng = np.random.default_rng(0)
    n = 200_000
    X = rng.normal(size=(n, 16)) + 1000.0
    Y = X[:, :8] @ rng.normal(size=(8, 8)) + rng.normal(size=(n, 8)) - 500.0
    exact = CrossMoments(2, cross="all", gram=True).update([X, Y])
    single = CrossMoments(2, cross="all", gram=True).update(
        [X.astype(np.float32), Y.astype(np.float32)]
    )
    for got, want in [
        (single.centered_cross(0, 1), exact.centered_cross(0, 1)),
        (single.centered_gram(0), exact.centered_gram(0)),
    ]:
        assert np.linalg.norm(got - want) / np.linalg.norm(want) < 1e-3
    # Only the requested blocks are computed.
    with pytest.raises(KeyError, match="not accumulated"):
        CrossMoments(2, cross=[(0, 1)]).update([X, Y]).centered_gram(0)


def test_empty_accumulator_is_an_error():
    """Check that reading moments before any row was seen is an error."""
    with pytest.raises(ValueError, match="No samples"):
        CrossMoments(2, cross="all").mean(0)


@pytest.mark.parametrize("scale", [1e-30, 1e-21, 1.0, 1e21, 1e30])
def test_row_squared_norms_outside_the_float32_square_range(scale):
    """float32 rows whose squares under- or overflow get float64-exact norms."""
    from skembed._stats import row_squared_norms

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(30, 7)) * scale).astype(np.float32)
    X[0] = 0.0
    X[1, 3] = np.nan
    expected = np.einsum("ij,ij->i", X.astype(np.float64), X.astype(np.float64))
    squared = row_squared_norms(X)
    assert squared.dtype == np.float64
    assert_allclose(squared[2:], expected[2:], rtol=1e-6)
    assert squared[0] == 0 and np.isnan(squared[1])


@pytest.mark.parametrize("scale", [1e-30, 1e25])
def test_l2_aligner_normalises_rows_of_any_float32_scale(scale):
    """normalize="l2" is scale-invariant even where float32 squares fail."""
    from skembed import ProcrustesAligner

    rng = np.random.default_rng(1)
    A = rng.normal(size=(200, 5)).astype(np.float32)
    B = (A @ np.linalg.qr(rng.normal(size=(5, 5)))[0]).astype(np.float32)
    aligner = ProcrustesAligner(normalize="l2").fit([A, B])
    scaled = (B.astype(np.float64) * scale).astype(np.float32)
    Z = aligner.transform_view(scaled, 1)
    assert Z.dtype == np.float32
    assert_allclose(Z, aligner.transform_view(B, 1), rtol=1e-5, atol=1e-6)
