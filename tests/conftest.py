"""Shared pytest configuration: a reproducible hypothesis profile for CI."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from hypothesis import settings

settings.register_profile(
    "ci", deadline=None, max_examples=25, derandomize=True, print_blob=True
)
settings.load_profile("ci")


def pytest_configure(config):
    # Tests check correctness, not speed. One BLAS thread keeps the many small
    # products fast and immune to oversubscription when the machine is shared.
    from threadpoolctl import threadpool_limits

    config._skembed_thread_limit = threadpool_limits(limits=1)
