"""Bundled real paired embeddings and their loaders."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from skembed.datasets._fortunes import load_fortunes

__all__ = ["load_fortunes"]
