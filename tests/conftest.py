"""Shared pytest configuration: a reproducible hypothesis profile for CI."""

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
