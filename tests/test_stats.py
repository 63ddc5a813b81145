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


def _dense_row_products(A, B):
    a = np.sum((A - A.mean(axis=0)) ** 2, axis=1)
    b = np.sum((B - B.mean(axis=0)) ** 2, axis=1)
    return float(a @ b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_variances_counts_and_row_products_match_dense(dtype):
    """Check the statistics of the concatenator and of debiased CKA."""
    rng = np.random.default_rng(20)
    A = (rng.normal(size=(500, 5)) * [1, 2, 3, 4, 5] + 40.0).astype(dtype)
    B = (rng.normal(size=(500, 3)) - 7.0).astype(dtype)
    A[[3, 99]] = 0
    stats = CrossMoments(
        2,
        cross="all",
        gram=True,
        column_squares=True,
        nonzero_rows=True,
        row_moments=True,
    ).update([A, B], chunk_size=37)
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert_allclose(stats.column_variance(0), A64.var(axis=0), rtol=rtol)
    assert_allclose(stats.column_variance(1), B64.var(axis=0), rtol=rtol)
    assert stats.nonzero_row_count(0) == 498 and stats.nonzero_row_count(1) == 500
    for i, X in enumerate((A64, B64)):
        for j, Y in enumerate((A64, B64)):
            assert stats.centered_row_products(i, j) == pytest.approx(
                _dense_row_products(X, Y), rel=rtol
            )


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 2**16), n_parts=st.integers(2, 5))
def test_merging_across_shifts_equals_one_pass(seed, n_parts):
    """Check that parts accumulated about different pilot shifts merge exactly."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(240, 4)) * 3 + rng.normal(size=4) * 50
    B = rng.normal(size=(240, 3)) + rng.normal(size=3) * 50
    options = {
        "cross": "all",
        "gram": True,
        "column_squares": True,
        "nonzero_rows": True,
        "row_moments": True,
    }
    whole = CrossMoments(2, **options).update([A, B])
    merged = CrossMoments(2, **options)
    for rows in np.array_split(rng.permutation(240), n_parts):
        # Each part picks its own pilot shift from its own rows.
        merged.merge(CrossMoments(2, **options).update([A[rows], B[rows]]))
    assert merged.n_samples_ == 240
    for k in range(2):
        assert_allclose(merged.column_variance(k), whole.column_variance(k), rtol=1e-9)
        assert merged.nonzero_row_count(k) == 240
    assert_allclose(merged.centered_cross(0, 1), whole.centered_cross(0, 1), atol=1e-7)
    for i, j in ((0, 0), (0, 1), (1, 1)):
        assert merged.centered_row_products(i, j) == pytest.approx(
            whole.centered_row_products(i, j), rel=1e-9
        )


def test_counts_only_summary_needs_no_column_sums():
    """Check the cheapest summary: non-zero rows, no means, no shift."""
    X = np.ones((10, 3))
    X[4] = 0
    stats = CrossMoments(1, column_sums=False, nonzero_rows=True).update([X])
    assert stats.nonzero_row_count(0) == 9 and stats.n_samples_ == 10
    with pytest.raises(ValueError, match="column_sums=True"):
        CrossMoments(1, column_sums=False, gram=True)
    with pytest.raises(ValueError, match="row_moments needs"):
        CrossMoments(2, row_moments=True)


def test_float32_rows_beyond_1e19_still_get_the_pilot_shift():
    """Check the spread of the pilot rows is measured where squares do not overflow.

    Float32 deviations above about 1.8e19 squared to infinity, so rows far
    from the origin were taken as near it and their centred Gram lost most
    digits (relative error 0.18 at 1e20).
    """
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(20000, 8)) + 300
    X = (Z * 1e20).astype(np.float32)
    stats = CrossMoments(1, gram=True).update([X])
    (centred,) = _reference([X])
    expected = centred.T @ centred
    error = np.linalg.norm(stats.centered_gram(0) - expected) / np.linalg.norm(expected)
    assert error < 1e-5


@pytest.mark.parametrize(
    "dtype, offset, spread", [(np.float32, 20.0, 0.05), (np.float64, 900.0, 1e-3)]
)
def test_one_column_far_from_the_origin_keeps_its_centred_moments(
    dtype, offset, spread
):
    """Check a single column far from the origin next to its spread is centred.

    The pilot shift was taken only when the whole view's mean was far from
    the origin next to the whole view's spread. One such column among
    columns spread around 0 (an outlier dimension) was multiplied unshifted,
    and its centred variance cancelled: 5% off in float32, 1.6e-4 in
    float64.
    """
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20000, 64))
    X[:, 0] = offset + spread * rng.standard_normal(X.shape[0])
    Y = X[:, :8] @ rng.standard_normal((8, 4)) + 0.1 * rng.standard_normal((20000, 4))
    X, Y = X.astype(dtype), Y.astype(dtype)
    stats = CrossMoments(2, cross="all", gram=True).update([X, Y])
    cx, cy = _reference([X, Y])
    gram = stats.centered_gram(0)
    # The outlier column's variance, and its covariances, to the dtype's
    # precision of the values themselves.
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    assert_allclose(gram[0, 0], cx[:, 0] @ cx[:, 0], rtol=tolerance)
    assert_allclose(
        stats.centered_cross(0, 1)[0],
        cx[:, 0] @ cy,
        rtol=tolerance,
        atol=tolerance * np.abs(cx[:, 0] @ cy).max(),
    )


@pytest.mark.parametrize("small, large", [(1e-120, 1e40), (1e-140, 1e100)])
def test_merges_of_far_apart_magnitudes_agree_in_either_order(small, large):
    """Check merge(a, b) equals merge(b, a) when their scales differ widely.

    Moving the large rows' moments to the tiny rows' scale overflowed (NaN
    moments, or an OverflowError), in one order only.
    """
    from skembed._stats import merge_moments

    rng = np.random.default_rng(0)
    tiny = rng.normal(size=(50, 3)) * small
    big = rng.normal(size=(50, 3)) * large
    (centred,) = _reference([np.vstack([tiny, big])])
    expected = centred.T @ centred
    for first, second in ((tiny, big), (big, tiny)):
        a = CrossMoments(1, gram=True).update([first])
        b = CrossMoments(1, gram=True).update([second])
        merged = merge_moments(a, b)
        assert merged.is_finite()
        # entries near 1e202: compared without squaring them
        error = np.max(np.abs(merged.centered_gram(0) - expected))
        assert error <= 1e-12 * np.max(np.abs(expected))


@pytest.mark.parametrize("unit", [1e-25, 1e20])
@pytest.mark.parametrize("pilot", ["repeated", "zero"])
def test_a_pilot_without_spread_leaves_the_scale_to_later_rows(unit, pilot):
    """Check extreme float32 rows after 1,024 equal (or zero) first rows.

    The pilot gave scale 1, so later rows near 1e-25 underflowed in their
    float32 products (relative error 1.1, and finite) and rows near 1e20
    overflowed (reported as NaN or infinity).
    """
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(3000, 4)) * unit).astype(np.float32)
    X[:1024] = X[0] if pilot == "repeated" else 0
    stats = CrossMoments(1, gram=True).update([X])
    assert stats.is_finite()
    (centred,) = _reference([X])
    expected = centred.T @ centred
    error = np.max(np.abs(stats.centered_gram(0) - expected))
    assert error <= 1e-5 * np.max(np.abs(expected))


def test_the_pilot_shift_sees_rows_beyond_the_first_chunk():
    """Check float32 moments of an input whose first rows sit apart from the rest.

    The shift was chosen from the first 1,024 rows only: rows near the origin
    first and 1,000 away after them took no shift, and the float32 products
    cancelled (centred Gram off by 174%, canonical correlations by 0.4).
    """
    from skembed import CCAAligner

    rng = np.random.default_rng(0)
    n, d = 20_000, 8
    X = rng.standard_normal((n, d))
    Y = 0.5 * X + rng.standard_normal((n, d))
    X[1024:] += 1000.0
    Y[1024:] += 1000.0
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    moments = CrossMoments(2, gram=(0,)).update([X32, Y32])
    centred = np.cov(X32.astype(np.float64), rowvar=False, bias=True) * n
    got = moments.centered_gram(0)
    assert np.linalg.norm(got - centred) < 1e-2 * np.linalg.norm(centred)
    expected = CCAAligner(n_components=d, reg=1e-6).fit([X, Y])
    float32 = CCAAligner(n_components=d, reg=1e-6).fit([X32, Y32])
    assert_allclose(
        float32.canonical_correlations_, expected.canonical_correlations_, atol=0.05
    )


def test_float32_rows_with_a_norm_beyond_float32_are_normalised_not_zeroed():
    """Check unit rows of finite float32 rows whose norm exceeds 3.4e38.

    The norm, exact in float64, was cast to float32 (infinity) and the row
    divided to zeros; EmbeddingConcatenator(normalize="l2") zeroed it.
    """
    from skembed import EmbeddingConcatenator
    from skembed._stats import divide_by_row_norms, unit_rows

    X = np.array([[3e38, 3e38, 0], [1, 2, 2]], dtype=np.float32)
    expected = np.array([[2**-0.5, 2**-0.5, 0], [1 / 3, 2 / 3, 2 / 3]])
    got = unit_rows(X)
    assert got.dtype == np.float32
    assert_allclose(got, expected, rtol=1e-6)
    assert_allclose(divide_by_row_norms(X.copy()), expected, rtol=1e-6)
    projected = np.ones((2, 2), dtype=np.float32)
    assert_allclose(
        divide_by_row_norms(projected, X), [[1 / 4.2426e38] * 2, [1 / 3] * 2], rtol=1e-4
    )
    concatenated = EmbeddingConcatenator(normalize="l2", weights=None).fit_transform(
        [X, X]
    )
    assert_allclose(concatenated, np.hstack([expected, expected]), rtol=1e-6)


def test_float32_rows_near_1e18_fit_wherever_they_start():
    """Check that huge finite float32 rows in the middle of a row group fit.

    The power-of-two scale came from the first 1,024 rows only: rows of
    1e18 starting inside a row group overflowed the float32 products and
    were reported as "NaN or infinity"; starting a group, they fitted.
    """
    from skembed import ProcrustesAligner

    rng = np.random.default_rng(0)
    # 40 chunks of the moments budget at this width, in row groups of two.
    n, d = 1365 * 40, 384
    X = rng.standard_normal((n, d), dtype=np.float32)
    Y = X + 0.1 * rng.standard_normal((n, d), dtype=np.float32)
    X[2730 * 10 + 1365 :] *= 1e18
    Y[2730 * 10 + 1365 :] *= 1e18
    fitted = ProcrustesAligner().fit([X, Y])
    reference = ProcrustesAligner().fit([X.astype(np.float64), Y.astype(np.float64)])
    assert_allclose(fitted.rotations_[0], reference.rotations_[0], atol=1e-3)


@pytest.mark.parametrize("d", [8, 64])
def test_float32_chunks_of_rows_far_from_the_shift_are_multiplied_in_float64(d):
    """Check float32 moments of sorted input whose whole chunk is a mixture.

    With 4,000 rows, a quarter near the origin first and the rest 1,000 away,
    the pilot takes no shift (the spread is large) and one chunk holds all
    rows: float32 products lost the within-group covariance entirely
    (relative error 0.24 to 0.73).
    """
    rng = np.random.default_rng(0)
    n = 4000
    X = rng.standard_normal((n, d))
    X[1024:] += 1000.0
    X32 = X.astype(np.float32)
    moments = CrossMoments(1, gram=(0,)).update([X32])
    expected = np.cov(X32.astype(np.float64), rowvar=False, bias=True) * n
    u = np.ones(d) / np.sqrt(d)
    within = np.eye(d) - np.outer(u, u)
    error = within @ (moments.centered_gram(0) - expected) @ within
    assert np.linalg.norm(error) < 1e-6 * np.linalg.norm(within @ expected @ within)


def test_subnormal_float32_rows_are_made_unit_rows():
    """Check a float32 row of entries near 1e-45: unit length, not norm 1.41.

    Its norm, cast to float32, is a subnormal with a digit or two: dividing
    by it left [1, 1, 0].
    """
    from skembed._stats import unit_rows

    X = np.array([[1e-45, 1e-45, 0], [1, 2, 2]], dtype=np.float32)
    assert_allclose(
        unit_rows(X), [[2**-0.5, 2**-0.5, 0], [1 / 3, 2 / 3, 2 / 3]], rtol=1e-6
    )


def test_moments_of_a_pass_hold_few_d_by_d_blocks():
    """Check one pass holds about its result and one group's part, no more.

    The first group's moments were copied into the (empty) total while both
    were alive, and each merged part stayed alive while the next group was
    computed: 11.3 d x d float64 blocks at the peak here, for a result of 3.
    """
    import tracemalloc

    rng = np.random.default_rng(0)
    d = 768
    A = rng.standard_normal((4000, d), dtype=np.float32) + 3
    B = rng.standard_normal((4000, d), dtype=np.float32)
    tracemalloc.start()
    try:
        CrossMoments(2, cross=[(1, 0)], gram=[0, 1]).update([A, B], n_threads=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 9.5 * d * d * 8
