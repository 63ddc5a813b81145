"""Tests for Dask input: tree-reduced fit, lazy transform, distributed runs."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import copy
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import ortho_group
from sklearn.base import clone

import skembed
from skembed import (
    EmbeddingConcatenator,
    GeneralizedProcrustesAligner,
    ProcrustesAligner,
    SelfLearningAligner,
)
from skembed._stats import CrossMoments, merge_moments

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")

CLOSED_FORM = [
    ProcrustesAligner(),
    ProcrustesAligner(scale=True, normalize="l2", combine="mean"),
    GeneralizedProcrustesAligner(scale=True, combine="similarity"),
]
for _name, _params in [
    ("CCAAligner", {"n_components": 3}),
    ("RidgeAligner", {"alpha": 0.5}),
]:
    if hasattr(skembed, _name):
        CLOSED_FORM.append(getattr(skembed, _name)(**_params))

UNEVEN_ROWS = (130, 7, 301, 1, 211, 350)


def _paired(n=1000, d=6, seed=0, dtype=np.float64):
    """Two views related by a rotation, a scale, a shift and some noise."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d)) * np.linspace(1, 3, d) + 5.0
    Q = ortho_group.rvs(d, random_state=seed)
    B = 2.0 * A @ Q - 1.0 + 0.3 * rng.normal(size=(n, d))
    return np.hstack([A, B]).astype(dtype)


def _relative_error(got, want):
    scale = np.linalg.norm(want)
    return np.linalg.norm(got - want) / (scale if scale > 0 else 1.0)


def _fitted_arrays(estimator):
    if hasattr(estimator, "_projections"):
        return [*estimator._projections, *estimator.means_, estimator._offset]
    arrays = [estimator.weights_, estimator.view_mean_squared_norms_]
    return arrays + list(getattr(estimator, "view_means_", []))


@pytest.mark.parametrize("estimator", CLOSED_FORM, ids=lambda e: repr(e))
def test_dask_fit_equals_numpy_fit(estimator):
    """Check that a Dask fit on uneven row chunks equals the numpy fit."""
    X = _paired()
    D = da.from_array(X, chunks=(UNEVEN_ROWS, (5, 7)))
    numpy_fit = clone(estimator).fit(X)
    dask_fit = clone(estimator).fit(D)
    for got, want in zip(
        _fitted_arrays(dask_fit), _fitted_arrays(numpy_fit), strict=True
    ):
        assert _relative_error(got, want) < 1e-10
    assert dask_fit.n_features_in_ == 12
    assert dask_fit.view_names_ == numpy_fit.view_names_


@pytest.mark.parametrize("estimator", CLOSED_FORM, ids=lambda e: repr(e))
def test_dask_transform_is_lazy_and_equals_numpy(estimator):
    """Check that transform returns a lazy Dask array equal to the numpy output."""
    X = _paired(dtype=np.float32)
    D = da.from_array(X, chunks=(UNEVEN_ROWS, -1))
    fitted = clone(estimator).fit(X)
    Z = fitted.transform(D)
    assert isinstance(Z, da.Array)
    assert Z.dtype == np.float32
    assert Z.chunks[0] == UNEVEN_ROWS
    computed = Z.compute()
    assert computed.dtype == np.float32
    assert_allclose(computed, fitted.transform(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("normalize", ["l2", "standard", None])
def test_dask_concatenator_equals_numpy(normalize):
    """Check EmbeddingConcatenator's Dask fit and lazy transform against numpy."""
    X = _paired()
    X[:, 3] = 7.0  # a constant column
    X[5, :6] = 0.0  # a row of zeros in the first view
    D = da.from_array(X, chunks=(UNEVEN_ROWS, 4))
    want = EmbeddingConcatenator(normalize=normalize).fit(X)
    got = EmbeddingConcatenator(normalize=normalize).fit(D)
    for a, b in zip(_fitted_arrays(got), _fitted_arrays(want), strict=True):
        assert _relative_error(a, b) < 1e-10
    if normalize == "standard":
        for a, b in zip(got.view_scales_, want.view_scales_, strict=True):
            assert _relative_error(a, b) < 1e-10
    Z = got.transform(D)
    assert isinstance(Z, da.Array)
    assert_allclose(Z.compute(), want.transform(X), rtol=1e-10, atol=1e-12)


def test_dask_partial_fit_over_chunks_equals_fit():
    """Check that partial_fit on Dask chunks, numpy chunks mixed in, equals fit."""
    X = _paired()
    D = da.from_array(X, chunks=(UNEVEN_ROWS, -1))
    streamed = GeneralizedProcrustesAligner()
    streamed.partial_fit(D[:400])
    streamed.partial_fit(X[400:650])
    streamed.partial_fit(D[650:])
    whole = GeneralizedProcrustesAligner().fit(X)
    for got, want in zip(_fitted_arrays(streamed), _fitted_arrays(whole), strict=True):
        assert _relative_error(got, want) < 1e-10


def test_dask_dataframe_and_list_inputs():
    """Check Dask DataFrames (names, selectors) and lists of Dask arrays."""
    X = _paired()
    columns = [f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6)]
    frame = pd.DataFrame(X, columns=columns)
    ddf = dd.from_pandas(frame, npartitions=4)
    assert ddf.known_divisions
    views = {"a": columns[:6], "b": columns[6:]}
    want = ProcrustesAligner(views=views).fit(frame)
    got = ProcrustesAligner(views=views).fit(ddf)
    assert list(got.feature_names_in_) == columns
    assert got.view_names_ == ["a", "b"]
    assert _relative_error(got.rotations_[1], want.rotations_[1]) < 1e-10
    assert_allclose(got.transform(ddf).compute(), want.transform(frame), rtol=1e-10)

    pieces = [da.from_array(X[:, :6], chunks=300), da.from_array(X[:, 6:], chunks=250)]
    listed = ProcrustesAligner().fit(pieces)
    assert _relative_error(listed.rotations_[1], want.rotations_[1]) < 1e-10
    assert_allclose(
        listed.transform(pieces).compute(), ProcrustesAligner().fit(X).transform(X)
    )


@pytest.mark.parametrize(
    "estimator",
    [ProcrustesAligner(), skembed.EmbeddingConcatenator()],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("lengths", [True, False], ids=["known", "unknown"])
def test_a_list_of_a_dask_dataframe_and_a_dask_array(estimator, lengths):
    """Check a list mixing a Dask DataFrame with a Dask array.

    The DataFrame's stand-in had two rows, the array's one, and fit said the
    views had different numbers of rows; a DataFrame's unknown row chunks
    beside the array's known ones then failed in Dask's chunk alignment at
    transform.
    """
    X = _paired()
    frame = pd.DataFrame(X[:, :6], columns=[f"a{i}" for i in range(6)])
    lazy = dd.from_pandas(frame, npartitions=3)
    if not lengths:
        lazy = lazy.to_dask_array()
        assert np.isnan(lazy.chunks[0]).all()
    # Row blocks of the DataFrame's partitions: the pairing needs as many.
    rows = tuple(dd.from_pandas(frame, npartitions=3).map_partitions(len).compute())
    items = [lazy, da.from_array(X[:, 6:], chunks=(rows, 6))]
    want = clone(estimator).fit([frame, X[:, 6:]])
    got = clone(estimator).fit(items)
    expected = want.transform([frame, X[:, 6:]])
    assert_allclose(got.transform(items).compute(), expected, rtol=1e-10, atol=1e-12)
    assert_allclose(want.transform(items).compute(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "estimator",
    [
        skembed.RelativeProjector(n_anchors=5, random_state=0),
        skembed.ContrastiveAligner(n_components=2, max_iter=2, random_state=0),
        skembed.ResidualMLPAligner(hidden=3, max_iter=2, random_state=0),
    ],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fits_that_hold_their_rows_compute_a_dask_dataframe(estimator):
    """Check the fits the Dask guide says compute their input take a DataFrame.

    They refused it as a lazy frame to materialise; a Dask array worked.
    """
    X = _paired(n=200, d=4)
    columns = [f"a{i}" for i in range(4)] + [f"b{i}" for i in range(4)]
    frame = pd.DataFrame(X, columns=columns)
    ddf = dd.from_pandas(frame, npartitions=4)
    want = clone(estimator).fit(frame)
    got = clone(estimator).fit(ddf)
    assert list(got.feature_names_in_) == columns
    assert_allclose(
        np.asarray(got.transform(ddf)), want.transform(frame), rtol=1e-10, atol=1e-12
    )
    assert got.score(ddf) == pytest.approx(want.score(frame), rel=1e-10)


def test_dask_default_split_refuses_to_cut_through_a_model():
    """Check Dask X of two models of different widths is refused like numpy X."""
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(1000, 24)), rng.normal(size=(1000, 16))
    X = np.hstack([A / np.linalg.norm(A, axis=1, keepdims=True), B])
    fix = r"views=\[slice\(0, 24\), slice\(24, None\)\]"
    for estimator in (ProcrustesAligner(), EmbeddingConcatenator(views=2)):
        # Judged by its first rows (rows spread over it would cost a pass),
        # and the error says so: the numpy X is judged by rows spread over it.
        with pytest.raises(
            ValueError,
            match=r"the first 256 rows of X\[:, :24\] all have norm 1.*" + fix,
        ):
            estimator.fit(da.from_array(X, chunks=(UNEVEN_ROWS, 10)))
        with pytest.raises(ValueError, match=r"but the rows of X\[:, :24\] all have"):
            clone(estimator).fit(X)
    frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(40)])
    with pytest.raises(ValueError, match=fix):
        ProcrustesAligner().fit(dd.from_pandas(frame, npartitions=3))
    views = [slice(0, 24), slice(24, None)]
    got = ProcrustesAligner(views=views).fit(da.from_array(X, chunks=100))
    want = ProcrustesAligner(views=views).fit(X)
    assert _relative_error(got.rotations_[1], want.rotations_[1]) < 1e-10


def test_dask_default_split_check_reads_past_empty_and_small_blocks():
    """Check a first row block that is empty or small does not skip the check.

    Only the first block was read, and fewer than 16 rows turned the check
    off: a filtered Dask DataFrame (first partition empty) fitted views that
    each mixed two models, where the same rows as numpy were refused.
    """
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(300, 24)), rng.normal(size=(300, 16))
    X = np.hstack([A / np.linalg.norm(A, axis=1, keepdims=True), B])
    fix = r"views=\[slice\(0, 24\), slice\(24, None\)\]"
    for rows in ((0, 150, 150), (10, 290), (0, 0, 3, 5, 292)):
        with pytest.raises(ValueError, match=fix):
            ProcrustesAligner().fit(da.from_array(X, chunks=(rows, 40)))
    frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(40)])
    frame["keep"] = np.arange(300) >= 60
    lazy = dd.from_pandas(frame, npartitions=5)
    filtered = lazy[lazy.keep].drop(columns="keep")
    assert filtered.map_partitions(len).compute().tolist()[0] == 0
    with pytest.raises(ValueError, match=fix):
        ProcrustesAligner().fit(filtered)


def test_dask_views_of_different_lengths_are_named():
    """Check a list of Dask arrays of different row counts: numpy's message.

    The other views were rechunked to the first one's rows, and Dask's
    "Chunks do not add up to shape" came out instead.
    """
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(100, 4)), rng.normal(size=(90, 4))
    views = [da.from_array(A, chunks=50), da.from_array(B, chunks=45)]
    message = r"different numbers of rows \(\[100, 90\]\)"
    with pytest.raises(ValueError, match=message):
        ProcrustesAligner().fit(views)
    fitted = ProcrustesAligner().fit([A[:90], B])
    with pytest.raises(ValueError, match=message):
        fitted.transform(views)


@pytest.mark.parametrize("normalize", ["l2", "standard", None])
def test_dask_concatenator_without_rows_is_named(normalize):
    """Check an empty Dask X: the message numpy X gets, not internals.

    With normalize="l2" it was "'NoneType' object is not subscriptable", and
    otherwise "No samples have been accumulated.", naming neither X nor the
    estimator.
    """
    X = da.zeros((0, 8), chunks=(10, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="0 sample.*EmbeddingConcatenator"):
        EmbeddingConcatenator(normalize=normalize).fit(X)


def test_dask_dataframe_index_kept_under_pandas_output():
    """Check set_output(transform="pandas") on a Dask DataFrame keeps its index.

    The computed output was numbered 0..n-1, so a join back to the rows by
    index paired the wrong ones.
    """
    frame = pd.DataFrame(_paired(n=400, d=4), index=np.arange(1000, 1400))
    frame.columns = [f"c{j}" for j in range(8)]
    lazy = dd.from_pandas(frame, npartitions=4)
    for estimator in (ProcrustesAligner(), EmbeddingConcatenator()):
        estimator.set_output(transform="pandas").fit(frame)
        want = estimator.transform(frame.loc[1200:])
        got = estimator.transform(lazy.loc[1200:])
        assert isinstance(got, pd.DataFrame)
        assert_array_equal(got.index, np.arange(1200, 1400))
        assert list(got.columns) == list(want.columns)
        assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)


def test_dask_input_under_polars_output():
    """Check set_output(transform="polars") with a Dask array X: computed,
    as under pandas output (polars refused the lazy array, a TypeError)."""
    pl = pytest.importorskip("polars", reason="polars output needs polars")
    X = _paired(n=200, d=4)
    for estimator in (ProcrustesAligner(), EmbeddingConcatenator()):
        estimator.set_output(transform="polars").fit(X)
        got = estimator.transform(da.from_array(X, chunks=(50, 8)))
        want = estimator.transform(X)
        assert isinstance(got, pl.DataFrame)
        assert got.columns == want.columns
        assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)


def test_dask_input_errors():
    """Check the errors for Dask inputs skembed cannot split or use."""
    X = _paired()
    with pytest.raises(ValueError, match="3-D Dask array"):
        ProcrustesAligner().fit(da.zeros((4, 3, 2)))
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.5, 1.5, 2.0], "c": list("xyz")})
    with pytest.raises(ValueError, match="non-numeric columns"):
        ProcrustesAligner().fit(dd.from_pandas(frame, npartitions=2))
    # A Dask Series or delayed object failed inside the checks with an
    # AttributeError or TypeError of its own.
    series = dd.from_pandas(frame, npartitions=2)["a"]
    for X_bad in (series, [series, series]):
        with pytest.raises(ValueError, match=r"is a Dask Series .*to_frame\(\)"):
            ProcrustesAligner().fit(X_bad)
    with pytest.raises(TypeError, match="dask.delayed object.*from_delayed"):
        ProcrustesAligner().fit(dask.delayed(X))
    with pytest.raises(TypeError, match=r"X\[1\] is a ndarray, not a Dask array"):
        ProcrustesAligner().fit([da.from_array(X), X])
    # Strings in a list of Dask arrays were cast from a stand-in row of empty
    # strings ("could not convert string to float: ''").
    words = da.from_array(X[:, :2].astype(str), chunks=(500, -1))
    with pytest.raises(ValueError, match=r"X\[1\] holds non-numeric values"):
        ProcrustesAligner().fit([da.from_array(X[:, 2:]), words])
    bad = X.copy()
    bad[777, 2] = np.nan
    D = da.from_array(bad, chunks=(UNEVEN_ROWS, -1))
    with pytest.raises(ValueError, match="NaN"):
        ProcrustesAligner().fit(D)
    with pytest.raises(ValueError, match="NaN"):
        EmbeddingConcatenator().fit(D)
    fitted = ProcrustesAligner().fit(X)
    with pytest.raises(ValueError, match="NaN"):
        fitted.transform(D).compute()
    with pytest.raises(ValueError, match="expecting 12 features"):
        fitted.transform(D[:, :10])


def test_cross_moments_pickle_and_pure_merge():
    """Check that moments pickle and that merge_moments leaves its inputs intact."""
    X = _paired()
    left = CrossMoments(2, cross="all", gram=True).update([X[:300, :6], X[:300, 6:]])
    right = CrossMoments(2, cross="all", gram=True).update([X[300:, :6], X[300:, 6:]])
    before = left.centered_cross(0, 1).copy()
    merged = merge_moments(pickle.loads(pickle.dumps(left)), right)
    assert_allclose(left.centered_cross(0, 1), before)
    whole = CrossMoments(2, cross="all", gram=True).update([X[:, :6], X[:, 6:]])
    assert merged.n_samples_ == 1000
    assert_allclose(merged.centered_gram(1), whole.centered_gram(1), rtol=1e-12)


@pytest.mark.slow
def test_fit_on_distributed_local_cluster():
    """Check fit and transform on a two-process dask.distributed cluster."""
    distributed = pytest.importorskip("distributed")
    X = _paired(n=2000)
    D = da.from_array(X, chunks=((500, 700, 300, 500), -1))
    want = ProcrustesAligner(scale=True).fit(X)
    with (
        distributed.LocalCluster(
            processes=True,
            n_workers=2,
            threads_per_worker=1,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster),
    ):
        got = ProcrustesAligner(scale=True).fit(D)
        Z = got.transform(D.astype(np.float32)).compute()
    assert _relative_error(got.rotations_[1], want.rotations_[1]) < 1e-10
    assert_allclose(got.scales_, want.scales_, rtol=1e-10)
    assert Z.dtype == np.float32
    assert_allclose(Z, want.transform(X.astype(np.float32)), rtol=1e-5, atol=1e-5)


def test_numpy_use_never_imports_dask():
    """Check that fitting and transforming numpy input never imports dask."""
    code = (
        "import sys, numpy as np\n"
        "from skembed import ProcrustesAligner, EmbeddingConcatenator\n"
        "X = np.random.default_rng(0).normal(size=(50, 4))\n"
        "ProcrustesAligner().fit(X).transform(X)\n"
        "EmbeddingConcatenator().fit_transform(X)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'dask'], 'dask'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lazy_transform_keeps_the_state_of_its_call():
    """Check a refit or set_params before compute does not change a lazy result."""
    X = _paired()
    other = 5 * np.random.default_rng(1).normal(size=X.shape) + 3
    D = da.from_array(X, chunks=(UNEVEN_ROWS, -1))
    estimator = ProcrustesAligner().fit(X)
    first, want_first = estimator.transform(D), estimator.transform(X)
    estimator.fit(other)
    second, want_second = estimator.transform(D), estimator.transform(X)
    estimator.set_params(combine="mean")
    got_first, got_second = dask.compute(first, second)
    assert_allclose(got_first, want_first, rtol=1e-10, atol=1e-12)
    assert_allclose(got_second, want_second, rtol=1e-10, atol=1e-12)
    assert got_first.shape == first.shape


def test_lazy_results_carry_the_maps_without_the_partial_fit_statistics():
    """Check the graph's copy of the estimator leaves its partial_fit statistics.

    Mapping rows needs the maps only; the statistics (d x d products) would
    travel to every worker. The estimator itself keeps them and can go on.
    """
    rng = np.random.default_rng(0)
    first = rng.normal(size=(600, 128))
    X = np.hstack([first, first @ ortho_group.rvs(128, random_state=0)])
    estimator = SelfLearningAligner(base=ProcrustesAligner(), random_state=0)
    estimator.fit(X, pairs=np.c_[np.arange(600), np.arange(600)])
    D = da.from_array(X, chunks=(200, -1))

    def lazy_results(fitted):
        return [fitted.transform(D), fitted.transform_view(D[:, :128], 0)]

    def added_bytes(Z):
        # The pickled tasks of the graph besides the input's.
        tasks = dict(Z.__dask_graph__())
        return len(pickle.dumps({key: tasks[key] for key in tasks.keys() - D.dask}))

    for fitted in (ProcrustesAligner().partial_fit(X), estimator):
        holders = [fitted, getattr(fitted, "aligner_", None)]
        holders = [h for h in holders if getattr(h, "_stats", None) is not None]
        assert holders
        # The same maps with no statistics at all: what a lazy result needs.
        bare = copy.deepcopy(fitted)
        for holder in [bare, getattr(bare, "aligner_", None)]:
            if getattr(holder, "_stats", None) is not None:
                holder._stats = None
        lazy = lazy_results(fitted)
        for Z, without in zip(lazy, lazy_results(bare), strict=True):
            assert added_bytes(Z) <= added_bytes(without) + 1000
        got = dask.compute(*lazy)
        assert_allclose(got[0], fitted.transform(X), rtol=1e-10, atol=1e-12)
        assert_allclose(got[1], fitted.transform_view(X[:, :128], 0), rtol=1e-10)
        assert all(h._stats is not None for h in holders)
    continued = ProcrustesAligner().partial_fit(X[:300])
    continued.transform(da.from_array(X, chunks=(200, -1))).compute()
    continued.partial_fit(X[300:])
    assert_allclose(
        continued.transform(X), ProcrustesAligner().fit(X).transform(X), atol=1e-8
    )


def test_views_of_unknown_row_chunks_are_paired_or_refused():
    """Check lists of Dask views with unknown row chunks never pair rows wrongly."""
    X = _paired()
    A, B = X[:, :6], X[:, 6:]
    keep = np.ones(len(X), dtype=bool)
    keep[::7] = False

    def filtered(V, chunks):
        # a lazy mask leaves the row chunks unknown (nan)
        mask = da.from_array(keep, chunks=chunks)
        return da.from_array(V, chunks=(chunks, -1))[mask]

    views = [filtered(A, UNEVEN_ROWS), filtered(B, UNEVEN_ROWS)]
    assert np.isnan(views[0].chunks[0][0])
    want = ProcrustesAligner().fit([A[keep], B[keep]])
    got = ProcrustesAligner().fit(views)
    assert _relative_error(got.rotations_[1], want.rotations_[1]) < 1e-10
    assert_allclose(
        got.transform(views).compute(),
        want.transform([A[keep], B[keep]]),
        rtol=1e-9,
        atol=1e-12,
    )
    # as many blocks, but other rows of the other view in each
    unpaired = [filtered(A, 250), filtered(B, (200, 300, 250, 250))]
    fix = r"different numbers of rows .*compute_chunk_sizes"
    with pytest.raises(ValueError, match=fix):
        ProcrustesAligner().fit(unpaired)
    with pytest.raises(ValueError, match=fix):
        want.transform(unpaired).compute()
    fewer = [filtered(A, 250), filtered(B, 500)]
    with pytest.raises(ValueError, match=r"X\[1\] and X\[0\] have unknown row chunks"):
        ProcrustesAligner().fit(fewer)


def test_nullable_dataframe_columns_with_missing_values():
    """Check a Dask DataFrame of nullable floats with <NA> gets the NaN error."""
    X = _paired()
    frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(X.shape[1])])
    frame = frame.astype("Float32")
    views = [[f"c{j}" for j in range(6)], [f"c{j}" for j in range(6, X.shape[1])]]
    fitted = ProcrustesAligner(views=views).fit(dd.from_pandas(frame, npartitions=3))
    assert fitted.transform(dd.from_pandas(frame, npartitions=3)).dtype == np.float32
    frame.iloc[5, 2] = pd.NA
    with pytest.raises(ValueError, match="NaN"):
        ProcrustesAligner(views=views).fit(dd.from_pandas(frame, npartitions=3))
    with pytest.raises(ValueError, match="NaN"):
        fitted.transform(dd.from_pandas(frame, npartitions=3)).compute()


def test_dask_fit_checks_y_without_computing_it():
    """Check the fit(A, B) guard on Dask input: labels pass, a second embedding not.

    The guard read a Dask DataFrame X as a lazy frame and raised a TypeError
    whenever y was given, labels included.
    """
    X = _paired(d=4)
    frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(8)])
    lazy = dd.from_pandas(frame, npartitions=4)
    labels = np.arange(1000) % 3
    reference = ProcrustesAligner().fit(X).transform(X)
    fitted = ProcrustesAligner().fit(lazy, labels)
    assert_allclose(fitted.transform(X), reference, rtol=1e-10, atol=1e-12)
    A = da.from_array(X[:, :4], chunks=(UNEVEN_ROWS, -1))
    B = da.from_array(X[:, 4:], chunks=(UNEVEN_ROWS, -1))
    with pytest.raises(ValueError, match=r"like a second embedding.*fit\(\[A, B\]\)"):
        ProcrustesAligner().fit(A, B)


ONE_VIEW = [
    *CLOSED_FORM,
    skembed.RelativeProjector(n_anchors=5, random_state=0),
    skembed.ContrastiveAligner(n_components=3, max_iter=2, random_state=0),
    skembed.ResidualMLPAligner(hidden=3, max_iter=2, random_state=0),
    skembed.KernelResidualAligner(),
]


@pytest.mark.parametrize("estimator", ONE_VIEW, ids=lambda e: repr(e))
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_one_view_methods_are_lazy_and_equal_numpy(estimator):
    """Check transform_view and translate of a Dask view: lazy, as numpy's.

    They computed the whole view into memory first (transform was lazy):
    a Dask array of 100M rows was read into one numpy array.
    """
    X = _paired(n=300, d=4, dtype=np.float32)
    A, B = X[:, :4], X[:, 4:]
    chunks = (100, 0, 7, 193)
    fitted = clone(estimator).fit([A, B])
    for name, view in ((0, A), ("view1", B)):
        lazy = fitted.transform_view(da.from_array(view, chunks=(chunks, 2)), name)
        assert isinstance(lazy, da.Array)
        assert lazy.chunks[0] == chunks
        assert lazy.dtype == np.float32
        want = fitted.transform_view(view, name)
        assert lazy.shape == want.shape
        assert_allclose(lazy.compute(), want, rtol=1e-5, atol=1e-5)
    if not hasattr(fitted, "translate"):
        return
    for source, target in ((0, 1), (1, 0), (1, 1)):
        if hasattr(fitted, "reference_") and target not in (source, fitted.reference_):
            continue
        view = (A, B)[source]
        lazy = fitted.translate(
            da.from_array(view, chunks=(chunks, -1)), source, target
        )
        assert isinstance(lazy, da.Array)
        want = fitted.translate(view, source, target)
        assert lazy.dtype == want.dtype
        assert_allclose(lazy.compute(), want, rtol=1e-5, atol=1e-5)


def test_one_view_methods_check_dask_input():
    """Check a Dask view's layout now, its values when computed, its state kept."""
    X = _paired(n=300, d=4)
    A, B = X[:, :4], X[:, 4:]
    frame = pd.DataFrame(B, columns=[f"b{i}" for i in range(4)])
    fitted = ProcrustesAligner().fit(
        pd.concat([pd.DataFrame(A, columns=[f"a{i}" for i in range(4)]), frame], axis=1)
    )
    ddf = dd.from_pandas(frame, npartitions=3)
    assert_allclose(
        fitted.transform_view(ddf, 1).compute(), fitted.transform_view(frame, 1)
    )
    with pytest.raises(ValueError, match="X has 3 features, but view 'view1'"):
        fitted.transform_view(da.from_array(B[:, :3]), 1)
    with pytest.raises(
        ValueError, match="view 'view0' of ProcrustesAligner was fitted on the columns"
    ):
        fitted.translate(ddf, 0, 1)
    with pytest.raises(ValueError, match="source=2 is not a view"):
        fitted.translate(da.from_array(A), 2, 1)
    # Integers come out as float64, as from numpy.
    ints = da.from_array(np.arange(40).reshape(10, 4), chunks=5)
    assert fitted.transform_view(ints, 0).dtype == np.float64
    assert_allclose(
        fitted.transform_view(ints, 0).compute(),
        fitted.transform_view(np.arange(40).reshape(10, 4), 0),
    )
    bad = A.copy()
    bad[250, 1] = np.nan
    lazy = fitted.transform_view(da.from_array(bad, chunks=100), 0)
    with pytest.raises(ValueError, match="NaN"):
        lazy.compute()
    # The lazy result is the aligner's as it was when called.
    lazy = fitted.translate(da.from_array(A, chunks=100), 0, 1)
    want = fitted.translate(A, 0, 1)
    fitted.fit(np.hstack([B, A]))
    assert_allclose(lazy.compute(), want, rtol=1e-12, atol=1e-12)


class _CountingScheduler:
    """A Dask scheduler counting its calls, or refusing any (``allow=False``)."""

    def __init__(self, allow=True):
        self.allow, self.calls = allow, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if not self.allow:
            raise AssertionError("computed")
        return dask.get(*args, **kwargs)


def _labelled_views(n=300, d=4, seed=0):
    """Two pandas views of rows labelled t0, t1, ... in one order."""
    X = _paired(n=n, d=d, seed=seed)
    labels = [f"t{i}" for i in range(n)]
    a = pd.DataFrame(X[:, :d], index=labels, columns=[f"a{i}" for i in range(d)])
    b = pd.DataFrame(X[:, d:], index=labels, columns=[f"b{i}" for i in range(d)])
    return a, b


def _lazy(*frames, npartitions=3):
    """Dask DataFrames of the frames, in their row order (unsorted)."""
    return [dd.from_pandas(f, npartitions=npartitions, sort=False) for f in frames]


ROW_ORDER = r"Dask DataFrames of X hold the same row labels in different orders"


@pytest.mark.parametrize(
    "estimator",
    [ProcrustesAligner(), EmbeddingConcatenator()],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("reorder", ["reversed", "shuffled", "sorted_first"])
def test_dask_dataframes_with_labels_in_other_orders_are_refused(estimator, reorder):
    """Check a list of Dask DataFrames holding one label set in two orders.

    A list of pandas frames is refused then (views are paired by position),
    but the check ran on one-row stand-ins of the Dask frames only: the fit
    paired the rows of different items silently.
    """
    a, b = _labelled_views()
    if reorder == "reversed":
        other = b.iloc[::-1]
    elif reorder == "shuffled":
        other = b.sample(frac=1, random_state=0)
    else:  # the first frame sorted (known divisions), the other not
        a = a.set_axis(np.arange(len(a)))
        other = b.set_axis(np.arange(len(b))).iloc[::-1]
    with pytest.raises(ValueError, match="pandas items of X hold the same row labels"):
        clone(estimator).fit([a, other])
    lazy = _lazy(a, other)
    assert lazy[0].known_divisions == (reorder == "sorted_first")
    assert not lazy[1].known_divisions
    with pytest.raises(ValueError, match=rf"{ROW_ORDER}.*X\[1\].*set_index"):
        clone(estimator).fit(lazy)
    # The views of a list may be Dask arrays too: X[2] is named as given.
    rows = tuple(lazy[0].map_partitions(len).compute())
    mixed = [lazy[0], da.from_array(a.to_numpy(), chunks=(rows, -1)), lazy[1]]
    with pytest.raises(ValueError, match=rf"{ROW_ORDER} \(X\[2\]'s first rows"):
        clone(estimator).fit(mixed)


@pytest.mark.parametrize(
    "estimator",
    [ProcrustesAligner(), EmbeddingConcatenator()],
    ids=lambda e: type(e).__name__,
)
def test_transform_of_dask_dataframes_in_other_orders_fails_when_computed(estimator):
    """Check transform stays lazy and its result refuses labels in other orders."""
    a, b = _labelled_views()
    fitted = clone(estimator).fit([a, b])
    lazy = _lazy(a, b.iloc[::-1])
    with dask.config.set(scheduler=_CountingScheduler(allow=False)):
        Z = fitted.transform(lazy)
    assert isinstance(Z, da.Array)
    with pytest.raises(ValueError, match=ROW_ORDER):
        Z.compute()
    with pytest.raises(ValueError, match=ROW_ORDER):
        Z.blocks[0].compute()  # every block depends on the check
    # The lazy result of correctly paired frames computes as before.
    paired = _lazy(a, b)
    with dask.config.set(scheduler=_CountingScheduler(allow=False)):
        Z = fitted.transform(paired)
    assert_allclose(Z.compute(), fitted.transform([a, b]), rtol=1e-10, atol=1e-12)


def _restarting(frame, sizes):
    """A Dask DataFrame of ``frame`` whose index restarts at 0 in every
    partition (as frames read from files without an index)."""
    bounds = np.cumsum([0, *sizes])
    pieces = [
        dd.from_pandas(frame.iloc[i:j].reset_index(drop=True), npartitions=1)
        for i, j in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    return dd.concat(pieces)


@pytest.mark.parametrize(
    "estimator",
    [ProcrustesAligner(), EmbeddingConcatenator()],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("layout", ["unsorted", "restarting", "repeated"])
def test_paired_dask_dataframes_of_unknown_divisions_fit_as_numpy(estimator, layout):
    """Check Dask DataFrames paired by position, divisions unknown, are not
    refused: one unsorted order, an index restarting in every partition, or
    repeated labels (not refused in pandas frames either)."""
    a, b = _labelled_views()
    order = np.random.default_rng(0).permutation(len(a))
    a, b = a.iloc[order], b.iloc[order]
    if layout == "repeated":
        # each label twice, in one partition (uniqueness across partitions
        # is not checked)
        labels = np.repeat(order[: len(a) // 2], 2)
        a, b = a.set_axis(labels), b.set_axis(labels[::-1])
    if layout == "restarting":
        sizes = (100, 120, 80)
        lazy = [_restarting(a, sizes), _restarting(b, sizes)]
        assert not lazy[0].index.compute().is_unique
    else:
        lazy = _lazy(a, b)
    assert not any(item.known_divisions for item in lazy)
    want = clone(estimator).fit([a, b])
    counting = _CountingScheduler()
    with dask.config.set(scheduler=counting):
        got = clone(estimator).fit(lazy)
    assert counting.calls == 1  # the label check is computed with the fit
    for x, y in zip(_fitted_arrays(got), _fitted_arrays(want), strict=True):
        assert _relative_error(x, y) < 1e-10
    expected = want.transform([a.to_numpy(), b.to_numpy()])
    assert_allclose(got.transform(lazy).compute(), expected, rtol=1e-10, atol=1e-12)


def test_dask_dataframes_of_known_divisions_are_paired_by_their_sorted_index():
    """Check frames of known divisions (sorted on their index) fit as numpy,
    with no pass over their index besides the fit's."""
    a, b = _labelled_views()
    shuffled = b.sample(frac=1, random_state=0)
    lazy = [dd.from_pandas(a, npartitions=3), dd.from_pandas(shuffled, npartitions=3)]
    assert all(item.known_divisions for item in lazy)
    sorted_a, sorted_b = a.sort_index(), b.sort_index()
    want = ProcrustesAligner().fit([sorted_a, sorted_b])
    got = ProcrustesAligner().fit(lazy)
    assert _relative_error(got.rotations_[1], want.rotations_[1]) < 1e-10
    assert_allclose(
        got.transform(lazy).compute(),
        want.transform([sorted_a, sorted_b]),
        rtol=1e-10,
        atol=1e-12,
    )
    assert "_index_summary" not in str(dict(got.transform(lazy).dask))


def _counted_partitions(frame, loads, divisions=None):
    """A Dask DataFrame of three 100-row partitions of ``frame`` whose every
    read appends (first column name, partition number) to ``loads``."""

    def load(frame, i):
        loads.append((frame.columns[0], i))
        return frame.iloc[100 * i : 100 * (i + 1)]

    parts = [dask.delayed(load, pure=False)(frame, i) for i in range(3)]
    return dd.from_delayed(parts, meta=frame.iloc[:0], divisions=divisions)


def test_label_check_reads_every_partition_once():
    """Check the label check shares the reads of the rows: a fit, and each
    compute of a transform, load every partition once (not once more for the
    index), and transform loads none."""
    a, b = _labelled_views()
    loads = []
    items = [_counted_partitions(a, loads), _counted_partitions(b, loads)]
    assert not any(item.known_divisions for item in items)
    with dask.config.set(scheduler="sync"):
        fitted = ProcrustesAligner().fit(items)
        assert sorted(loads) == [(c, i) for c in ("a0", "b0") for i in range(3)]
        loads.clear()
        Z = fitted.transform(items)
        assert loads == []
        assert_allclose(Z.compute(), fitted.transform([a, b]), rtol=1e-10)
        assert sorted(loads) == [(c, i) for c in ("a0", "b0") for i in range(3)]
    want = ProcrustesAligner().fit([a, b])
    assert _relative_error(fitted.rotations_[1], want.rotations_[1]) < 1e-10


def _counted_blocks(X, sizes, reads):
    """A Dask array of X's rows in blocks of ``sizes``, built from tasks
    that record in ``reads`` the index of every block they load."""

    def load(i, start, stop):
        reads.append(i)
        return X[start:stop]

    bounds = np.cumsum([0, *sizes])
    return da.concatenate(
        [
            da.from_delayed(
                dask.delayed(load, pure=False)(i, bounds[i], bounds[i + 1]),
                (sizes[i], X.shape[1]),
                dtype=X.dtype,
            )
            for i in range(len(sizes))
        ]
    )


@pytest.mark.parametrize(
    "views",
    [
        [slice(0, 6), slice(6, None)],
        {"a": list(range(0, 12, 2)), "b": list(range(1, 12, 2))},
    ],
    ids=["slices", "columns"],
)
@pytest.mark.parametrize(
    "estimator",
    [ProcrustesAligner(), EmbeddingConcatenator()],
    ids=lambda e: type(e).__name__,
)
def test_fit_with_explicit_views_reads_every_block_once(estimator, views):
    """Check a fit with explicit views reads each row block of X once.

    The first rows were read for the check of the default split, by a
    compute of their own, though explicit views are never checked: the first
    block was read twice per fit.
    """
    X = _paired()
    reads = []
    D = _counted_blocks(X, UNEVEN_ROWS, reads)
    with dask.config.set(scheduler="sync"):
        got = clone(estimator).set_params(views=views).fit(D)
    assert sorted(reads) == list(range(len(UNEVEN_ROWS)))
    want = clone(estimator).set_params(views=views).fit(X)
    for a, b in zip(_fitted_arrays(got), _fitted_arrays(want), strict=True):
        assert _relative_error(a, b) < 1e-10


@pytest.mark.parametrize(
    "estimator",
    [ProcrustesAligner(), EmbeddingConcatenator()],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("known", [True, False], ids=["divisions", "no_divisions"])
def test_pandas_output_of_a_dask_dataframe_reads_every_partition_once(estimator, known):
    """Check transform under pandas output reads each partition of a Dask
    DataFrame X once, for its values and its index together.

    The values came from the frame's array and the index from the frame's
    own graph, each optimised apart: every partition was read twice.
    """
    a, b = (view.set_axis(np.arange(1000, 1300)) for view in _labelled_views())
    loads = []
    divisions = (1000, 1100, 1200, 1299) if known else None

    def lazy(frame):
        return _counted_partitions(frame, loads, divisions)

    whole = pd.concat([a, b], axis=1)
    single = clone(estimator).set_output(transform="pandas").fit(whole)
    paired = clone(estimator).set_output(transform="pandas").fit([a, b])
    for fitted, X, want in (
        (single, lazy(whole), single.transform(whole)),
        (paired, [lazy(a), lazy(b)], paired.transform([a, b])),
    ):
        loads.clear()
        with dask.config.set(scheduler="sync"):
            got = fitted.transform(X)
        first_columns = ["a0"] if fitted is single else ["a0", "b0"]
        assert sorted(loads) == [(c, i) for c in first_columns for i in range(3)]
        assert isinstance(got, pd.DataFrame)
        assert_array_equal(got.index, want.index)
        assert list(got.columns) == list(want.columns)
        assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)
