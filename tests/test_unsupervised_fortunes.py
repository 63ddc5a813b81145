"""Zero-pair alignment on real pools without shared structure (fortunes).

The fortunes corpus (short, varied texts) gives two models no clusters in
common, so no map found without pairs can be right: every fit must say so.
These fits run every start of the search, which makes them slow; they live
apart from ``test_unsupervised.py`` so that the test workers can share them.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pytest
from _corpora import available_corpus, missing

from skembed import SelfLearningAligner, UnsupervisedAlignmentWarning
from skembed._unsupervised import MIN_AGREEMENT

needs_fortunes = pytest.mark.skipif(
    available_corpus("fortunes") is None,
    reason=missing("fortunes"),
)


@needs_fortunes
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.slow
def test_real_structureless_pools_are_flagged():
    """Check that fortunes pools (no shared cluster structure) are flagged."""
    folder = available_corpus("fortunes")
    minilm = np.load(folder / "minilm.npy")[:1500]
    e5 = np.load(folder / "e5.npy")[:1500]
    order = np.random.default_rng(0).permutation(1500)
    with pytest.warns(UnsupervisedAlignmentWarning) as caught:
        aligner = SelfLearningAligner(random_state=0, n_restarts=0).fit(
            [minilm, e5[order]]
        )
    assert aligner.confidence_ < 0.5
    # The two starts failed on maps of their own: the warning must not
    # suggest that the map may be partly right.
    assert aligner.start_agreement_ < MIN_AGREEMENT
    assert not any("agree on" in str(w.message) for w in caught)


@pytest.mark.slow
@needs_fortunes
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("seed", [1, 2])
def test_real_structureless_pools_are_flagged_for_other_seeds(seed):
    """Check the fortunes flag for other random states and other rows.

    A flag that holds for one seed only is luck; every seed must be flagged.
    """
    folder = available_corpus("fortunes")
    minilm, e5 = np.load(folder / "minilm.npy"), np.load(folder / "e5.npy")
    rng = np.random.default_rng(seed)
    rows = rng.choice(minilm.shape[0], 1500, replace=False)
    minilm, e5 = minilm[rows], e5[rng.permutation(rows)]
    with pytest.warns(UnsupervisedAlignmentWarning, match="confidence_"):
        aligner = SelfLearningAligner(random_state=seed, n_restarts=0).fit([minilm, e5])
    assert aligner.confidence_ < 0.5
    assert aligner.start_agreement_ < MIN_AGREEMENT
