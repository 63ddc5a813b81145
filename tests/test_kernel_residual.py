"""Tests for skembed.KernelResidualAligner: ridge plus a kernel correction."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pytest
from _nonlinear import mean_squared_error, nonlinear_pairs
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import ortho_group
from sklearn import config_context
from sklearn.utils._param_validation import InvalidParameterError

from skembed import KernelResidualAligner, RidgeAligner, load_aligner, save_aligner


def _dense(old, new, queries, temperature, shrinkage, alpha=1.0):
    """The map written out from its definition, in float64, all at once."""
    ridge = RidgeAligner(alpha=alpha).fit([old, new])
    mean = new.mean(axis=0)
    keys = new - mean
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    rows = queries - mean
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    weights = np.exp(rows @ keys.T / temperature)
    weights /= weights.sum(axis=1, keepdims=True)
    residuals = old - ridge.translate(new, 1, 0)
    return ridge.translate(queries, 1, 0) + shrinkage * weights @ residuals


@pytest.mark.parametrize("temperature, shrinkage", [(0.05, 0.5), (0.3, 1.0)])
def test_map_is_ridge_plus_the_kernel_average_of_its_residuals(temperature, shrinkage):
    """Check translate, transform_view and transform against the definition."""
    old, new = nonlinear_pairs()
    queries = nonlinear_pairs(seed=1, n=200)[1]
    aligner = KernelResidualAligner(temperature, shrinkage).fit([old, new])
    expected = _dense(old, new, queries, temperature, shrinkage)
    assert_allclose(aligner.translate(queries, 1, 0), expected, rtol=1e-10, atol=1e-12)
    centred = expected - old.mean(axis=0)
    assert_allclose(aligner.transform_view(queries, 1), centred, atol=1e-10)
    Z = aligner.transform([old[:200], queries])
    assert_allclose(Z[:, 6:], centred, atol=1e-10)
    assert_allclose(Z[:, :6], old[:200] - old.mean(axis=0), atol=1e-12)


def test_shrinkage_zero_is_the_ridge_map():
    """Check that without correction the map is RidgeAligner's, alpha included."""
    old, new = nonlinear_pairs()
    aligner = KernelResidualAligner(shrinkage=0.0, alpha=3.0).fit([old, new])
    ridge = RidgeAligner(alpha=3.0).fit([old, new])
    expected = ridge.translate(new, 1, 0)
    assert_allclose(aligner.translate(new, 1, 0), expected, atol=1e-12)
    assert_allclose(aligner.coefs_[1], ridge.maps_[1], atol=1e-14)


def test_beats_ridge_on_a_non_linear_relation():
    """Check that the correction predicts held-out pairs better than ridge alone."""
    old, new = nonlinear_pairs(n=3000)
    train, test = slice(0, 2500), slice(2500, None)
    aligner = KernelResidualAligner(temperature=0.05, shrinkage=1.0)
    aligner.fit([old[train], new[train]])
    ridge = RidgeAligner().fit([old[train], new[train]])
    kernel_error = mean_squared_error(aligner.translate(new[test], 1, 0), old[test])
    ridge_error = mean_squared_error(ridge.translate(new[test], 1, 0), old[test])
    assert kernel_error < 0.7 * ridge_error


def test_a_narrow_kernel_reproduces_the_fittingnonlinear_pairs():
    """Check that with all weight on the nearest row a fitting pair maps exactly.

    Every fitting row is then its own only neighbour: ridge plus its whole
    residual is its partner.
    """
    old, new = nonlinear_pairs(n=300)
    aligner = KernelResidualAligner(temperature=1e-4, shrinkage=1.0).fit([old, new])
    assert_allclose(aligner.translate(new, 1, 0), old, atol=1e-8)


def test_same_rows_alone_in_any_batch_and_any_chunk():
    """Check that a row's map does not depend on its batch or the chunking."""
    old, new = nonlinear_pairs(dtype=np.float32)
    aligner = KernelResidualAligner().fit([old, new])
    queries = nonlinear_pairs(seed=2, n=300, dtype=np.float32)[1]
    batch = aligner.translate(queries, 1, 0)
    alone = np.vstack([aligner.translate(row[None], 1, 0) for row in queries[:50]])
    assert_allclose(alone, batch[:50], rtol=1e-5, atol=1e-5)
    with config_context(working_memory=0.05):  # a few rows per chunk
        chunked = aligner.translate(queries, 1, 0)
    assert_allclose(chunked, batch, rtol=1e-5, atol=1e-5)


def test_float32_kept_and_inputs_untouched():
    """Check that float32 stays float32, stored rows included, and X is not written."""
    old, new = nonlinear_pairs(dtype=np.float32)
    before = [old.copy(), new.copy()]
    aligner = KernelResidualAligner().fit([old, new])
    assert aligner.keys_[1].dtype == aligner.residuals_[1].dtype == np.float32
    assert aligner.keys_[0] is None and aligner.residuals_[0] is None
    out = aligner.translate(new, 1, 0)
    assert out.dtype == np.float32
    assert aligner.transform([old, new]).dtype == np.float32
    assert_array_equal(old, before[0])
    assert_array_equal(new, before[1])
    as64 = KernelResidualAligner().fit([old.astype(np.float64), new.astype(np.float64)])
    assert_allclose(out, as64.translate(new.astype(np.float64), 1, 0), atol=1e-4)


def test_a_row_at_the_mean_weighs_every_pair_alike():
    """Check that a row without direction gets the mean residual, not NaN."""
    old, new = nonlinear_pairs(n=200)
    aligner = KernelResidualAligner(shrinkage=1.0).fit([old, new])
    at_mean = aligner.means_[1][None]
    ridge = RidgeAligner().fit([old, new])
    residuals = old - ridge.translate(new, 1, 0)
    expected = ridge.translate(at_mean, 1, 0) + residuals.mean(axis=0)
    assert_allclose(aligner.translate(at_mean, 1, 0), expected, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_rotating_the_source_view_leaves_the_map_unchanged(seed):
    """Check invariance under a random rotation of the source model's space.

    Ridge with an isotropic penalty and the cosines between centred rows are
    both unchanged by a rotation of view 1, so translated rows are too.
    """
    old, new = nonlinear_pairs(n=200)
    queries = nonlinear_pairs(seed=3, n=20)[1]
    Q = ortho_group.rvs(new.shape[1], random_state=seed % (2**32))
    plain = KernelResidualAligner().fit([old, new])
    rotated = KernelResidualAligner().fit([old, new @ Q])
    assert_allclose(
        rotated.translate(queries @ Q, 1, 0),
        plain.translate(queries, 1, 0),
        rtol=1e-7,
        atol=1e-9,
    )


def test_translates_only_into_the_reference():
    """Check that the way back and the missing methods are clear errors."""
    old, new = nonlinear_pairs(n=200)
    aligner = KernelResidualAligner().fit([old, new])
    assert_array_equal(aligner.translate(new, 1, 1), new)
    with pytest.raises(ValueError, match="translates only into its reference view"):
        aligner.translate(old, 0, 1)
    with pytest.raises(AttributeError, match="non-linear and have no inverse"):
        aligner.inverse_transform_view(old, 1)
    with pytest.raises(AttributeError, match="keeps the fitting rows"):
        aligner.partial_fit([old, new])
    other = KernelResidualAligner(reference=1).fit([old, new])
    assert other.translate(old, 0, 1).shape == new.shape


@pytest.mark.parametrize(
    "params, match",
    [
        ({"temperature": 0.0}, "temperature"),
        ({"shrinkage": 1.5}, "shrinkage"),
        ({"alpha": -1.0}, "alpha"),
    ],
)
def test_bad_parameters_are_refused_by_name(params, match):
    old, new = nonlinear_pairs(n=50)
    with pytest.raises(InvalidParameterError, match=match):
        KernelResidualAligner(**params).fit([old, new])


def test_model_file_round_trip(tmp_path):
    """Check that a saved model maps like the fitted one, to the bit."""
    old, new = nonlinear_pairs(n=300, dtype=np.float32)
    aligner = KernelResidualAligner(temperature=0.1).fit([old, new])
    save_aligner(aligner, tmp_path / "model.npz")
    loaded = load_aligner(tmp_path / "model.npz")
    assert_array_equal(loaded.translate(new, 1, 0), aligner.translate(new, 1, 0))
    assert loaded.keys_[1].dtype == np.float32


def test_correction_rows_make_the_correction_and_ridge_uses_all():
    """Check that only the pairs given correct, while the ridge map sees every pair."""
    old, new = nonlinear_pairs()
    queries = nonlinear_pairs(seed=4, n=100)[1]
    rows = np.arange(old.shape[0]) % 3 == 0
    aligner = KernelResidualAligner(0.1, 1.0).fit([old, new], correction_rows=rows)
    ridge = RidgeAligner().fit([old, new])
    mean = new.mean(axis=0)
    keys = new[rows] - mean
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    centred = queries - mean
    centred /= np.linalg.norm(centred, axis=1, keepdims=True)
    weights = np.exp(centred @ keys.T / 0.1)
    weights /= weights.sum(axis=1, keepdims=True)
    residuals = old[rows] - ridge.translate(new[rows], 1, 0)
    expected = ridge.translate(queries, 1, 0) + weights @ residuals
    assert_allclose(aligner.translate(queries, 1, 0), expected, rtol=1e-10, atol=1e-12)
    assert aligner.keys_[1].shape == (rows.sum(), new.shape[1])
    by_index = KernelResidualAligner(0.1, 1.0).fit(
        [old, new], correction_rows=np.flatnonzero(rows)[::-1]
    )
    assert_array_equal(by_index.residuals_[1], aligner.residuals_[1])


@pytest.mark.parametrize(
    "rows, error, match",
    [
        ("all", TypeError, "got the string"),
        (np.ones(3, dtype=bool), ValueError, "one flag per row"),
        ([0, 50], ValueError, r"outside \[0, 49\]"),
        ([-1], ValueError, "outside"),
        (np.zeros(50, dtype=bool), ValueError, "selects no row"),
        ([0.5], TypeError, "dtype float64"),
        ([], ValueError, "selects no row"),
        (np.arange(50) % 2, ValueError, "only 0 and 1.*boolean mask"),
    ],
)
def test_bad_correction_rows_are_named(rows, error, match):
    old, new = nonlinear_pairs(n=50)
    aligner = KernelResidualAligner()
    with pytest.raises(error, match=f"correction_rows.*{match}"):
        aligner.fit([old, new], correction_rows=rows)
    assert not hasattr(aligner, "keys_")


def test_residuals_of_a_dead_dimension_are_zero_and_the_map_unchanged():
    """Check that residuals far below the largest are zeroed, and only those.

    A reference model with dead dimensions (minilm holds values near 1e-33 in
    two of its 384) gave residuals there whose float32 products with the
    kernel weights fell below the normal range, which made the correction
    several times slower. Zeroing them must leave the map as defined.
    """
    old, new = nonlinear_pairs()
    queries = nonlinear_pairs(seed=1, n=200)[1]
    rng = np.random.default_rng(0)
    old = old.copy()
    old[:, 0] = 1e-33 * rng.normal(size=len(old))  # a dead dimension
    old[:, 1] = 1e-6 * rng.normal(size=len(old))  # small, not negligible
    for dtype in (np.float64, np.float32):
        aligner = KernelResidualAligner().fit([old.astype(dtype), new.astype(dtype)])
        residuals = aligner.residuals_[1]
        assert not residuals[:, 0].any()
        assert np.count_nonzero(residuals[:, 1]) == len(old)
        assert np.count_nonzero(residuals[:, 2:]) == residuals[:, 2:].size
    aligner = KernelResidualAligner().fit([old, new])
    expected = _dense(old, new, queries, 0.05, 0.5)
    assert_allclose(aligner.translate(queries, 1, 0), expected, rtol=1e-10, atol=1e-30)


def test_the_kernel_score_block_follows_working_memory():
    """Check the queries x pairs scores of translate stay within working_memory.

    At least 256 query rows were scored at once, whatever the number of
    pairs kept: 39 MB per chunk for 20,000 float64 pairs (1 GB per thread
    at a million float32 ones).
    """
    import tracemalloc

    rng = np.random.default_rng(0)
    new = rng.normal(size=(20000, 4))
    old = np.sin(new) + 0.01 * rng.normal(size=new.shape)
    aligner = KernelResidualAligner().fit([old, new])
    queries = rng.normal(size=(600, 4))
    expected = aligner.translate(queries, 1, 0)
    with config_context(working_memory=2):
        tracemalloc.start()
        try:
            got = aligner.translate(queries, 1, 0)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert peak < 8 * 2**20


def test_fit_holds_no_float64_copy_of_the_pairs():
    """Check the keys and residuals computed a chunk of rows at a time.

    Whole, the float64 rows, keys and residuals held about seven times one
    view's float32 rows beyond the keys and residuals kept: 9.1 times one
    view here, against 4.6 in chunks (the two kept are twice a view).
    """
    import tracemalloc

    rng = np.random.default_rng(0)
    new = rng.normal(size=(20000, 128)).astype(np.float32)
    old = np.tanh(new @ rng.normal(size=(128, 128)).astype(np.float32))
    KernelResidualAligner().fit([old[:500], new[:500]])  # imports and caches
    tracemalloc.start()
    try:
        aligner = KernelResidualAligner().fit([old, new])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert aligner.keys_[1].dtype == aligner.residuals_[1].dtype == np.float32
    assert peak < 6.5 * new.nbytes, peak / new.nbytes
