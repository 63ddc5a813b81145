"""Shared pytest configuration: a reproducible hypothesis profile for CI."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from hypothesis import settings

settings.register_profile(
    "ci", deadline=None, max_examples=25, derandomize=True, print_blob=True
)
settings.load_profile("ci")
