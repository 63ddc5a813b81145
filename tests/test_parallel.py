"""Tests of the row-parallel execution of fit and transform.

The test session limits the BLAS to one thread (``conftest.py``), under which
skembed never starts a worker; these tests raise the limit to two threads and
shrink the chunk budgets, so that small data already spans several row groups
and the threaded code path really runs.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import ortho_group
from sklearn.base import clone
from threadpoolctl import threadpool_info, threadpool_limits

import skembed._base
import skembed._parallel
import skembed._stats
from skembed import (
    CCAAligner,
    EmbeddingConcatenator,
    GeneralizedProcrustesAligner,
    ProcrustesAligner,
    RidgeAligner,
)
from skembed._parallel import blas_threads, map_row_groups, row_groups
from skembed._stats import CrossMoments

ALIGNERS = [
    ProcrustesAligner(scale=True),
    ProcrustesAligner(normalize="l2"),
    GeneralizedProcrustesAligner(),
    CCAAligner(n_components=3),
    RidgeAligner(alpha=0.1),
]


def _paired(n, d, *, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d)) * np.linspace(1, 2, d) + 3.0
    B = A @ ortho_group.rvs(d, random_state=seed) + 0.1 * rng.normal(size=(n, d))
    return np.hstack([A, B]).astype(dtype)


@pytest.fixture
def two_threads(monkeypatch):
    """Two BLAS threads and chunk budgets small enough for many row groups."""
    # 1 KiB per view chunk and 4 KiB per transform chunk: 256-row chunks
    # (the minimum), so 3,000 rows make twelve groups of one chunk.
    monkeypatch.setitem(skembed._stats.BUDGETS, "moments", 1024)
    monkeypatch.setitem(skembed._stats.BUDGETS, "rows", 1024)
    monkeypatch.setitem(skembed._stats.BUDGETS, "transform", 4096)
    monkeypatch.setattr(skembed._parallel, "GROUP_CHUNKS", 4)
    pools = []

    class CountingPool(ThreadPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(kwargs.get("max_workers"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(skembed._parallel, "ThreadPoolExecutor", CountingPool)
    with threadpool_limits(limits=2, user_api="blas"):
        if blas_threads() < 2:
            pytest.skip("the BLAS cannot run two threads here")
        yield
    # The test must really have gone through the worker threads.
    assert pools and set(pools) == {2}


def test_row_groups_cover_the_rows_in_order():
    groups = row_groups(1000, 30, group_chunks=4)
    assert groups[0] == (0, 120)
    assert groups[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(groups, groups[1:], strict=False))
    assert row_groups(0, 30) == []
    # By default at least 16 groups when there are 16 chunks, at most
    # GROUP_CHUNKS chunks per group.
    assert len(row_groups(100_000, 1365)) == 19
    assert len(row_groups(1_000_000, 1365)) == 46
    assert len(row_groups(10, 1365)) == 1


def test_map_row_groups_keeps_order_and_limits_the_blas():
    seen = []

    def work(start, stop):
        seen.append(threading.get_ident())
        # Only the BLAS is limited: an OpenMP pool keeps the caller's setting.
        return start, [
            info["num_threads"]
            for info in threadpool_info()
            if info["user_api"] == "blas"
        ]

    groups = row_groups(100, 5, group_chunks=2)
    with threadpool_limits(limits=2, user_api="blas"):
        results = list(map_row_groups(work, groups, n_threads=2))
        after = blas_threads()
    assert [start for start, _ in results] == [start for start, _ in groups]
    # Inside the workers every BLAS ran single-threaded; afterwards the
    # caller's limit is back.
    assert all(counts and max(counts) == 1 for _, counts in results)
    assert after == 2
    assert threading.get_ident() not in seen


def test_map_row_groups_is_serial_for_one_thread_or_one_group():
    caller = threading.get_ident()

    def work(start, stop):
        return threading.get_ident()

    assert set(map_row_groups(work, row_groups(100, 5), n_threads=1)) == {caller}
    assert list(map_row_groups(work, [(0, 10)], n_threads=4)) == [caller]


def test_map_row_groups_raises_the_first_error_and_stops():
    started = []

    def work(start, stop):
        started.append(start)
        if start == 0:
            raise ValueError("bad rows")
        return start

    groups = row_groups(10_000, 1, group_chunks=1)
    with pytest.raises(ValueError, match="bad rows"):
        list(map_row_groups(work, groups, n_threads=2))
    # Groups not started when the error surfaced were cancelled.
    assert len(started) < len(groups)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_threaded_moments_equal_serial(dtype):
    X = _paired(3000, 5, dtype=dtype)
    blocks = [X[:, :5], X[:, 5:]]

    def moments(n_threads):
        stats = CrossMoments(2, cross="all", gram=True, sum_of_squares=True)
        return stats.update(blocks, chunk_size=100, n_threads=n_threads)

    with threadpool_limits(limits=2, user_api="blas"):
        serial, threaded = moments(1), moments(2)
        again = moments(2)
    # The same rows are summed in the same groups in both: only the order of
    # float64 additions of group totals may differ.
    assert_allclose(threaded.centered_cross(0, 1), serial.centered_cross(0, 1))
    assert_allclose(threaded.centered_gram(1), serial.centered_gram(1))
    assert_allclose(threaded.mean(0), serial.mean(0))
    assert_allclose(
        threaded.centered_sum_of_squares(1), serial.centered_sum_of_squares(1)
    )
    assert threaded.n_samples_ == serial.n_samples_ == 3000
    # Reproducible: the same thread count gives the same bits.
    assert_array_equal(again.centered_cross(0, 1), threaded.centered_cross(0, 1))


@pytest.mark.parametrize("estimator", ALIGNERS, ids=lambda e: repr(e))
def test_threaded_fit_and_transform_equal_serial(estimator, two_threads):
    X = _paired(3000, 6)
    threaded = estimator.__class__(**estimator.get_params()).fit(X)
    Z_threaded = threaded.transform(X)
    with threadpool_limits(limits=1, user_api="blas"):
        serial = estimator.__class__(**estimator.get_params()).fit(X)
        Z_serial = serial.transform(X)
    for a, b in zip(threaded._projections, serial._projections, strict=True):
        assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert_allclose(Z_threaded, Z_serial, rtol=1e-9, atol=1e-9)
    assert_allclose(
        threaded.transform_view(X[:, 6:], 1), serial.transform_view(X[:, 6:], 1)
    )


@pytest.mark.parametrize("combine", ["mean", "similarity"])
def test_threaded_combine_modes(combine, two_threads):
    X = _paired(3000, 4, dtype=np.float32)
    aligner = GeneralizedProcrustesAligner(combine=combine).fit(X)
    Z = aligner.transform(X)
    assert Z.dtype == np.float32
    with threadpool_limits(limits=1, user_api="blas"):
        assert_allclose(Z, aligner.transform(X), rtol=1e-5, atol=1e-5)


def test_threaded_transform_rejects_nan(two_threads):
    X = _paired(3000, 4)
    aligner = ProcrustesAligner().fit(X)
    X_bad = X.copy()
    X_bad[2500, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        aligner.transform(X_bad)
    with pytest.raises(ValueError, match="NaN or infinity"):
        ProcrustesAligner().fit(X_bad)


@pytest.mark.parametrize("normalize", ["l2", "standard", None])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_threaded_concatenator_equals_serial(normalize, dtype, two_threads):
    X = _paired(3000, 5, dtype=dtype)
    threaded = EmbeddingConcatenator(views=2, normalize=normalize).fit(X)
    Z_threaded = threaded.transform(X)
    with threadpool_limits(limits=1, user_api="blas"):
        serial = EmbeddingConcatenator(views=2, normalize=normalize).fit(X)
        Z_serial = serial.transform(X)
    assert_allclose(threaded.weights_, serial.weights_, rtol=1e-12)
    # Serial transform of this size is one group in the calling thread, so
    # the same float operations run on every row.
    assert_array_equal(Z_threaded, Z_serial)
    X_bad = X.copy()
    X_bad[2900, 7] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        threaded.transform(X_bad)
    with pytest.raises(ValueError, match="NaN or infinity"):
        EmbeddingConcatenator(views=2, normalize=normalize).fit(X_bad)


def test_overlapping_calls_restore_the_blas_limit():
    """Calls whose lifetimes overlap (as from several user threads) leave the
    caller's BLAS limit in place, and keep the BLAS single-threaded until the
    last of them ends."""

    def work(start, stop):
        return start

    groups = row_groups(40, 1, group_chunks=1)
    with threadpool_limits(limits=2, user_api="blas"):
        if blas_threads() < 2:
            pytest.skip("the BLAS cannot run two threads here")
        first = map_row_groups(work, groups, n_threads=2)
        second = map_row_groups(work, groups, n_threads=2)
        assert next(first) == 0 and next(second) == 0
        assert blas_threads() == 1
        assert list(first)[-1] == 39
        # The first call is over, the second still runs its workers.
        assert blas_threads() == 1
        assert list(second)[-1] == 39
        assert blas_threads() == 2


def test_small_svd_runs_on_one_blas_thread(monkeypatch):
    """An SVD of at most 1024 x 1024 runs single-threaded, a larger one does
    not, and the caller's limit is back afterwards: a multi-threaded BLAS
    that waits for a core another process holds makes a small SVD 50x slower.
    """
    import skembed._linalg

    seen = []
    original = np.linalg.svd

    def recording_svd(matrix, *args, **kwargs):
        seen.append(blas_threads())
        return original(matrix, *args, **kwargs)

    monkeypatch.setattr(skembed._linalg.np.linalg, "svd", recording_svd)
    rng = np.random.default_rng(0)
    with threadpool_limits(limits=2, user_api="blas"):
        if blas_threads() < 2:
            pytest.skip("the BLAS cannot run two threads here")
        small = rng.normal(size=(256, 384))
        U, S, Vt = skembed._linalg._svd(small)
        assert_allclose((U * S) @ Vt, small, atol=1e-10)
        # Too small to be worth setting the limit, and wider than the cutoff.
        skembed._linalg._svd(rng.normal(size=(8, 8)))
        skembed._linalg._svd(rng.normal(size=(4, 1100)))
        assert blas_threads() == 2
    assert seen == [1, 2, 2]


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize(
    "estimator",
    [*ALIGNERS, *(EmbeddingConcatenator(normalize=n) for n in ("l2", "standard"))],
    ids=lambda estimator: repr(estimator),
)
@pytest.mark.parametrize("n_rows", [100, 3000])
def test_non_finite_rows_raise_one_clear_error(n_rows, estimator, value, request):
    """Check that a NaN or an infinity gives the clear error and nothing else.

    The moments of row groups that hold the value are non-finite, and merging
    them used to raise numpy's RuntimeWarnings before the ValueError (3,000
    rows: twelve row groups on two threads), as did the detection of view
    blocks on small inputs (100 rows, one chunk).
    """
    if n_rows > 256:
        request.getfixturevalue("two_threads")
    X = _paired(n_rows, 4)
    X[n_rows - 20, 5] = value
    estimator = clone(estimator).set_params(views=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="NaN or infinity"):
            estimator.fit(X)
    # transform checks every chunk of the input (a separate pass from fit's)
    fitted = clone(estimator).fit(np.nan_to_num(X, posinf=0.0, neginf=0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="NaN or infinity"):
            fitted.transform(X)


_LONG_LIVED_THREADS = """
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy  # noqa: F401
import scipy.linalg  # noqa: F401
from threadpoolctl import threadpool_limits

from skembed._parallel import blas_threads, single_threaded_blas

start = blas_threads()
if start < 2:
    print("skip")
    raise SystemExit


def inside():
    with single_threaded_blas():
        return blas_threads()


first, second = ThreadPoolExecutor(1), ThreadPoolExecutor(1)
seen = [first.submit(inside).result(), second.submit(inside).result()]
entered, both, left = threading.Event(), threading.Event(), threading.Event()


def leaves_first():
    with single_threaded_blas():
        entered.set()
        both.wait()
    left.set()


def leaves_last():
    entered.wait()
    with single_threaded_blas():
        both.set()
        left.wait()


for job in [first.submit(leaves_first), second.submit(leaves_last)]:
    job.result()
seen.append(blas_threads())
with threadpool_limits(limits=1, user_api="blas"):
    seen.append(blas_threads())
seen.append(blas_threads())
print(start, *seen)
"""


def test_calls_from_long_lived_threads_leave_the_blas_limit_to_anyone():
    """Check calls from two pool threads, alone and overlapping, then the user's.

    threadpoolctl lets only the thread that first set a pthreads OpenBLAS
    limit change it, until it leaves a ``with`` block: the first worker
    thread to enter kept control, another thread's limit was ignored (its
    workers ran a multi-threaded BLAS each), a restore from it left the
    process at one BLAS thread, and the user's own threadpool_limits did
    nothing. Run in a fresh interpreter, whose BLAS no thread controls yet
    (this one's is limited by the test configuration).
    """
    import os
    import subprocess
    import sys

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", _LONG_LIVED_THREADS],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    if done.stdout.strip() == "skip":
        pytest.skip("the BLAS cannot run two threads here")
    start, *seen = map(int, done.stdout.split())
    # Each worker's call single-threaded, the start restored after the
    # overlapping calls, and the user's limit applied and then lifted.
    assert seen == [1, 1, start, 1, start]
