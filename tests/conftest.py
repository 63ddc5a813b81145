"""Shared pytest configuration: a reproducible hypothesis profile for CI, one
BLAS thread, and how the tests are spread over the test workers."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import os

from hypothesis import settings

settings.register_profile(
    "ci", deadline=None, max_examples=25, derandomize=True, print_blob=True
)
settings.load_profile("ci")


def pytest_configure(config):
    # Tests check correctness, not speed. One BLAS thread keeps the many small
    # products fast and immune to oversubscription when the machine is shared.
    # The variables reach subprocesses (CLI tests, Dask workers); threadpoolctl
    # limits only libraries already loaded, so load numpy's and scipy's first.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    config._skembed_thread_limit = threadpool_limits(limits=1)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_SlowFirstScheduling(), "skembed-scheduling")


# Test files whose tests share an expensive module-scoped fixture: the CLI's
# subprocess runs and the documented numbers. Each is sent to one worker as a
# whole, which computes its fixture once; every other test goes on its own
# to whichever worker is free.
SHARED_FIXTURE_FILES = ("tests/test_main.py", "tests/test_doc_numbers.py")


def _shared_file(nodeid):
    path = nodeid.split("::", 1)[0]
    return path if path in SHARED_FIXTURE_FILES else None


class _SlowFirstScheduling:
    """pytest-xdist scheduling: shared-fixture files whole, other tests alone.

    pytest-xdist's ``loadgroup`` would do this with ``xdist_group`` marks,
    it tags a test with its group by writing a private attribute of the test
    item that pytest 9 no longer reads, so the marks are silently ignored. Units go out
    largest first (the shared files), then in collection order, which the
    workers start with the tests marked ``slow`` (see
    ``pytest_collection_modifyitems``): the long tests run side by side from
    the start, and short ones fill the gaps, instead of one worker finishing
    a file of slow fits alone at the end.
    """

    def pytest_xdist_make_scheduler(self, config, log):
        if config.getvalue("dist") != "loadgroup":
            return None
        from xdist.scheduler import LoadScopeScheduling

        class Scheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid):
                return _shared_file(nodeid) or nodeid

        return Scheduling(config, log)


def pytest_collection_modifyitems(config, items):
    # Only in a test worker: the order then decides which tests start first.
    # A stable sort keeps the tests of a shared file together and in order.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(
            key=lambda item: (
                _shared_file(item.nodeid) is not None
                or item.get_closest_marker("slow") is None
            )
        )
