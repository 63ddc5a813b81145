"""Align, combine and compare embeddings that come from different models."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from skembed._cca import CCAAligner
from skembed._concat import EmbeddingConcatenator
from skembed._contrastive import ContrastiveAligner
from skembed._index import EmbeddingIndex
from skembed._io import load_aligner, save_aligner
from skembed._linear import RidgeAligner
from skembed._neighbors import csls_penalties, kneighbors
from skembed._procrustes import GeneralizedProcrustesAligner, ProcrustesAligner
from skembed._relative import RelativeProjector
from skembed._residual import ResidualMLPAligner
from skembed._selflearn import SelfLearningAligner
from skembed._stream import translate_file
from skembed._text import EmbeddingUnion, TextEmbedder
from skembed._version import __version__
from skembed.exceptions import UnsupervisedAlignmentWarning

__all__ = [
    "CCAAligner",
    "ContrastiveAligner",
    "EmbeddingConcatenator",
    "EmbeddingIndex",
    "EmbeddingUnion",
    "GeneralizedProcrustesAligner",
    "ProcrustesAligner",
    "RelativeProjector",
    "ResidualMLPAligner",
    "RidgeAligner",
    "SelfLearningAligner",
    "TextEmbedder",
    "UnsupervisedAlignmentWarning",
    "csls_penalties",
    "kneighbors",
    "load_aligner",
    "save_aligner",
    "translate_file",
    "__version__",
]
