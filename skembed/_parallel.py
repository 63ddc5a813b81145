"""Row-parallel execution of chunked work on the BLAS's threads.

Every pass of skembed over the rows (the moments of ``fit``, the products of
``transform``) is a sequence of BLAS calls on row chunks, each followed by a
little memory-bound numpy work: column sums, an offset, a finiteness check.
Run in one thread with a multi-threaded BLAS, that numpy work runs on one
core while the others wait. Run instead in as many Python threads as the BLAS
has, each calling a single-threaded BLAS on its own rows, every core does
both kinds of work, and one thread's memory-bound step overlaps another's
compute-bound product. On two cores this took a float32 1M x 384 Procrustes
fit from 1.08-1.13 x the time of one multi-threaded ``X.T @ Y`` plus its SVD
to 1.00-1.07 x, although it reads the data twice (the column sums are a
second read), and a transform from 1.16 x to 1.00 x its products.

Rows are cut into fixed *groups* of whole chunks, so the same rows are
always summed together whatever the number of threads and however the
threads are scheduled: results are reproducible for a given thread count,
and reductions merge the groups' results in row order.

The number of threads is the BLAS's own (``threadpoolctl``, which
scikit-learn depends on), so ``threadpool_limits(1)`` or
``OMP_NUM_THREADS=1`` makes all of skembed serial. While the workers run,
the BLAS is limited to one thread per call, process-wide, as scikit-learn's
own thread-parallel estimators do.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import islice

__all__ = ["blas_threads", "map_row_groups", "row_groups", "single_threaded_blas"]

# Chunks per group: enough that per-group overheads (a task, a merge of d x d
# moments) vanish, few enough that every thread gets several groups to balance
# the load when one thread is preempted.
GROUP_CHUNKS = 16


_controller = None


def _blas_controller():
    """A threadpoolctl controller of the BLAS libraries, found once.

    Finding the libraries takes milliseconds (a scan of the loaded shared
    objects), as long as the whole fit of 100,000 rows spends outside its
    products; thread counts are read from the libraries at every call.
    """
    global _controller
    if _controller is None or not _controller.lib_controllers:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


def blas_threads():
    """Threads the BLAS would use now (1 when none can be identified)."""
    counts = [lib.num_threads for lib in _blas_controller().lib_controllers]
    # With several BLAS libraries loaded (numpy's and scipy's), the most
    # restrictive limit is the one the user meant.
    return max(1, min(counts)) if counts else 1


# The BLAS limit is process-wide: calls from several user threads at once
# must not restore each other's saved limits out of order (which could leave
# the BLAS at one thread for good). The first entrant sets the limit, the
# last one out restores the original.
_limit_lock = threading.Lock()
_limit_users = 0
_limiter = None


def _release_blas_control():
    """Let any thread set OpenBLAS's limit again, unless a ``with`` holds it.

    threadpoolctl (3.6 and later) lets only one thread set the limit of a
    pthreads OpenBLAS: the first that sets it, until that thread leaves a
    ``with threadpool_limits`` block or dies; other threads' settings are
    ignored without a word. The limit set here is not a ``with`` block, so
    the thread that set it kept control for good: a limit set later from
    another thread was ignored (two workers of two BLAS threads each), a
    restore from another thread was too (the process left at one BLAS
    thread, in 1 of 20 thread-pool runs and 5 of 10 threaded Dask
    computes), and so was the user's own ``threadpool_limits``.
    """
    import threadpoolctl

    ownership = getattr(threadpoolctl, "CONTROLLING_THREAD_OWNERSHIP", None)
    if ownership is not None and getattr(ownership, "count", 0) > 0:
        return  # this thread's own `with threadpool_limits` holds it
    controller = getattr(threadpoolctl, "OpenBLASController", None)
    clear = getattr(controller, "clear_controlling_thread", None)
    if clear is not None:
        clear()  # only if this thread holds it


@contextmanager
def single_threaded_blas():
    """Context in which BLAS and LAPACK calls of this process use one thread.

    Yields whether they do: not when another thread holds the control of a
    process-wide BLAS limit (see :func:`_release_blas_control`), whose
    setting then stands.
    """
    global _limit_users, _limiter
    with _limit_lock:
        if _limit_users == 0:
            _limiter = _blas_controller().limit(limits=1)
            _release_blas_control()
        _limit_users += 1
        single = blas_threads() == 1
    try:
        yield single
    finally:
        with _limit_lock:
            _limit_users -= 1
            if _limit_users == 0:
                _limiter.restore_original_limits()
                _release_blas_control()
                _limiter = None


def row_groups(n_rows, chunk, group_chunks=None):
    """Consecutive ``(start, stop)`` row ranges of ``group_chunks`` chunks.

    By default groups hold ``GROUP_CHUNKS`` chunks, fewer when that would
    leave less than 16 groups: with only a few groups, one thread is left
    with the last of them while the others idle (at 100,000 x 384 float32,
    5 groups took 1.24 x the floor). The cut depends on the rows only, never
    on the number of threads.
    """
    chunk = max(1, chunk)
    if group_chunks is None:
        n_chunks = -(-n_rows // chunk)
        group_chunks = min(GROUP_CHUNKS, max(1, n_chunks // 16))
    size = chunk * group_chunks
    return [(start, min(n_rows, start + size)) for start in range(0, n_rows, size)]


def map_row_groups(function, groups, *, n_threads=None):
    """Yield ``function(start, stop)`` for every row group, in row order.

    Parameters
    ----------
    function : callable
        Called once per group; it must only touch its own rows of any shared
        output. Its BLAS calls run single-threaded when there are workers.
    groups : list of (int, int)
        Row ranges, from :func:`row_groups`.
    n_threads : int or None
        Worker threads; None asks the BLAS how many threads it may use. One
        worker (or a single group) runs in the calling thread with the BLAS
        left as it is.
    """
    if n_threads is None:
        n_threads = blas_threads() if len(groups) > 1 else 1
    n_threads = min(n_threads, len(groups))
    if n_threads <= 1:
        for start, stop in groups:
            yield function(start, stop)
        return
    with single_threaded_blas() as single:
        if not single:
            # The BLAS keeps several threads (another thread controls its
            # limit): workers would each run that many.
            for start, stop in groups:
                yield function(start, stop)
            return
        pool = ThreadPoolExecutor(max_workers=n_threads)
        # A window of submitted groups, two per thread, keeps every worker busy
        # while at most that many results (d x d moments for fit) are held.
        pending, todo = deque(), iter(groups)
        try:
            for start, stop in islice(todo, 2 * n_threads):
                pending.append(pool.submit(function, start, stop))
            while pending:
                result = pending.popleft().result()
                for start, stop in islice(todo, 1):
                    pending.append(pool.submit(function, start, stop))
                yield result
                del result
        finally:
            # On an error (say, NaN found by one group) or an abandoned
            # generator, groups not yet started are dropped, not computed.
            pool.shutdown(wait=True, cancel_futures=True)
