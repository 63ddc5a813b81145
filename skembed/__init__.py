"""Align, combine and compare embeddings that come from different models."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

# The public names are imported on first use (PEP 562), not here: importing
# the package then costs nothing, so ``python -m skembed`` and the installed
# ``skembed`` command reach their own handling of Ctrl-C and of errors
# before numpy, scipy and scikit-learn load, and ``import skembed.metrics``
# does not pay for the aligners. Type checkers and IDEs read the block below.

import importlib
import threading
from typing import TYPE_CHECKING

from skembed._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from skembed._cca import CCAAligner
    from skembed._concat import EmbeddingConcatenator
    from skembed._contrastive import ContrastiveAligner
    from skembed._index import EmbeddingIndex, fused_kneighbors
    from skembed._io import load_aligner, save_aligner
    from skembed._linear import RidgeAligner
    from skembed._neighbors import csls_penalties, kneighbors
    from skembed._procrustes import GeneralizedProcrustesAligner, ProcrustesAligner
    from skembed._relative import RelativeProjector
    from skembed._residual import KernelResidualAligner, ResidualMLPAligner
    from skembed._selflearn import SelfLearningAligner
    from skembed._stream import translate_file
    from skembed._text import EmbeddingUnion, TextEmbedder, pseudo_queries
    from skembed.exceptions import UnsupervisedAlignmentWarning

# public name -> the module that defines it
_PUBLIC = {
    "CCAAligner": "skembed._cca",
    "ContrastiveAligner": "skembed._contrastive",
    "EmbeddingConcatenator": "skembed._concat",
    "EmbeddingIndex": "skembed._index",
    "EmbeddingUnion": "skembed._text",
    "GeneralizedProcrustesAligner": "skembed._procrustes",
    "KernelResidualAligner": "skembed._residual",
    "ProcrustesAligner": "skembed._procrustes",
    "RelativeProjector": "skembed._relative",
    "ResidualMLPAligner": "skembed._residual",
    "RidgeAligner": "skembed._linear",
    "SelfLearningAligner": "skembed._selflearn",
    "TextEmbedder": "skembed._text",
    "UnsupervisedAlignmentWarning": "skembed.exceptions",
    "csls_penalties": "skembed._neighbors",
    "fused_kneighbors": "skembed._index",
    "kneighbors": "skembed._neighbors",
    "load_aligner": "skembed._io",
    "pseudo_queries": "skembed._text",
    "save_aligner": "skembed._io",
    "translate_file": "skembed._stream",
}
_SUBPACKAGES = ("datasets", "exceptions", "metrics")

__all__ = [
    "CCAAligner",
    "ContrastiveAligner",
    "EmbeddingConcatenator",
    "EmbeddingIndex",
    "EmbeddingUnion",
    "GeneralizedProcrustesAligner",
    "KernelResidualAligner",
    "ProcrustesAligner",
    "RelativeProjector",
    "ResidualMLPAligner",
    "RidgeAligner",
    "SelfLearningAligner",
    "TextEmbedder",
    "UnsupervisedAlignmentWarning",
    "csls_penalties",
    "fused_kneighbors",
    "kneighbors",
    "load_aligner",
    "pseudo_queries",
    "save_aligner",
    "translate_file",
    "__version__",
]


# The first use loads every public module at once, in one thread at a time:
# threads importing scikit-learn's modules side by side can meet its circular
# imports half done ("partially initialized module"), which the eager import
# this replaces never did.
_LOADING = threading.RLock()


def _load_all():
    with _LOADING:
        for public, module in _PUBLIC.items():
            if public not in globals():
                globals()[public] = getattr(importlib.import_module(module), public)


def __getattr__(name):
    if name in _PUBLIC:
        _load_all()
        return globals()[name]
    if name in _SUBPACKAGES:
        with _LOADING:
            value = importlib.import_module(f"skembed.{name}")
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skembed' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC) | set(_SUBPACKAGES))
