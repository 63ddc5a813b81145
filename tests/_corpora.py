"""Where the tests find the shared corpora (full fortunes and WordNet data).

The corpora are not part of the package: a checkout finds them next to
itself (``../shared/data/<name>``) or in the folder named by the corpus's
environment variable, the same lookup the benchmarks use. Tests that need a
corpus skip without it.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import os
from pathlib import Path

VARIABLES = {"fortunes": "SKEMBED_FORTUNES_DIR", "wordnet": "SKEMBED_WORDNET_DIR"}


def corpus_dir(name):
    """The folder of the shared corpus ``name``, whether or not it exists."""
    env = os.environ.get(VARIABLES[name])
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / name


def available_corpus(name, probe="minilm.npy"):
    """:func:`corpus_dir` when it holds the file ``probe``, else None."""
    folder = corpus_dir(name)
    return folder if (folder / probe).exists() else None


def missing(*names, probe="minilm.npy"):
    """The skip reason of a test that needs the corpora ``names``: where each
    was looked for and the variable that points elsewhere."""
    return "; ".join(
        f"the shared {name} corpus ({probe}) is not in {corpus_dir(name)}; set "
        f"{VARIABLES[name]} to its folder"
        for name in names
        if available_corpus(name, probe) is None
    )
