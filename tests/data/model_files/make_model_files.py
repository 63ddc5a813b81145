"""Write one model file per skembed estimator, with the outputs it gave.

    python tests/data/model_files/make_model_files.py OUTPUT_FOLDER
    python tests/data/model_files/make_model_files.py OUTPUT_FOLDER --from OLD

For every estimator that the installed skembed can save, fit it on fixed
small data, save it with ``save_aligner`` as ``<Class>.npz`` and store, in
``<Class>.expected.npz``, the inputs and what the fitted estimator returned:
``transform``, ``transform_view`` of each view and ``translate`` from view 1
to view 0 where offered. tests/test_io.py loads the files of every format
version with the current skembed and compares.

Run with the skembed whose format version the folder is named after: the
files of a past version are kept as that version wrote them. With ``--from
OLD`` the models of the folder OLD (written by an earlier version) are loaded
and saved again in the current format instead of fitted anew, so that the
two folders hold the same fitted maps; v1 was written by skembed 0.1.0.dev0
and v2 from v1 this way.

With ``--only NAME[,NAME...]`` only those estimators are written: the way an
estimator added in the current format version gets its first files, next to
the older ones left unchanged.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import sys
import warnings
from pathlib import Path

import numpy as np

from skembed import load_aligner, save_aligner

# Small, fast settings: the files test the format, not the methods.
PARAMS = {
    "ContrastiveAligner": {"max_iter": 3, "n_components": 3, "random_state": 0},
    "RelativeProjector": {"n_anchors": 10, "random_state": 0},
    "SelfLearningAligner": {"random_state": 0},
    "CCAAligner": {"n_components": 3},
    "ResidualMLPAligner": {"hidden": 4, "max_iter": 3, "random_state": 0},
}


def estimator_classes():
    """Name -> class of every estimator this skembed can save."""
    try:
        from skembed._registry import ESTIMATORS
    except ImportError:  # skembed 0.1, before the registry
        from skembed._io import _estimator_classes

        return _estimator_classes()
    return dict(ESTIMATORS)


def data():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(60, 6)) + 2.0
    B = A[:, :5] @ rng.normal(size=(5, 5)) + 0.1 * rng.normal(size=(60, 5)) - 1.0
    return A, B


def outputs(estimator, A, B):
    out = {"transform": estimator.transform([A, B])}
    if hasattr(estimator, "transform_view"):
        out["transform_view_0"] = estimator.transform_view(A, 0)
        out["transform_view_1"] = estimator.transform_view(B, 1)
    try:
        out["translate_1_0"] = estimator.translate(B, 1, 0)
    except AttributeError:
        pass
    return out


def main(folder, old=None, only=None):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    A, B = data()
    for name, cls in sorted(estimator_classes().items()):
        if only is not None and name not in only:
            continue
        if old is not None:
            estimator = load_aligner(Path(old) / f"{name}.npz")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                estimator = cls(**PARAMS.get(name, {})).fit([A, B])
        save_aligner(estimator, folder / f"{name}.npz")
        # What the saved file gives, read back by the skembed that wrote it.
        loaded = load_aligner(folder / f"{name}.npz")
        np.savez(folder / f"{name}.expected.npz", A=A, B=B, **outputs(loaded, A, B))
        print(name)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    only = None
    if "--only" in arguments:
        # Estimators added in the current format version: their first files.
        at = arguments.index("--only")
        only = set(arguments[at + 1].split(","))
        del arguments[at : at + 2]
    if len(arguments) == 3 and arguments[1] == "--from":
        main(arguments[0], old=arguments[2], only=only)
    else:
        main(arguments[0], only=only)
