"""The one list of skembed's estimators, shared by model files and the CLI.

A model file may name only a class of :data:`ESTIMATORS`; the command line's
``--method`` choices are :data:`CLI_METHODS`. Adding an estimator here makes
it savable and, if listed there, available to ``skembed align``.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from skembed._cca import CCAAligner
from skembed._concat import EmbeddingConcatenator
from skembed._contrastive import ContrastiveAligner
from skembed._linear import RidgeAligner
from skembed._procrustes import GeneralizedProcrustesAligner, ProcrustesAligner
from skembed._relative import RelativeProjector
from skembed._residual import KernelResidualAligner, ResidualMLPAligner
from skembed._selflearn import SelfLearningAligner

__all__ = ["CLI_METHODS", "ESTIMATORS"]

ESTIMATORS = {
    cls.__name__: cls
    for cls in (
        ProcrustesAligner,
        GeneralizedProcrustesAligner,
        CCAAligner,
        RidgeAligner,
        ResidualMLPAligner,
        KernelResidualAligner,
        SelfLearningAligner,
        ContrastiveAligner,
        RelativeProjector,
        EmbeddingConcatenator,
    )
}

CLI_METHODS = {
    "procrustes": ProcrustesAligner,
    "cca": CCAAligner,
    "ridge": RidgeAligner,
    "self-learning": SelfLearningAligner,
}
