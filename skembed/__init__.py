"""Align, combine and compare embeddings that come from different models."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from skembed._concat import EmbeddingConcatenator
from skembed._procrustes import GeneralizedProcrustesAligner, ProcrustesAligner

__version__ = "0.1.0.dev0"

__all__ = [
    "EmbeddingConcatenator",
    "GeneralizedProcrustesAligner",
    "ProcrustesAligner",
    "__version__",
]
