"""
=====================================================
Aligning two models with no pairs, and knowing it
=====================================================

:class:`~skembed.SelfLearningAligner` can be fitted on two pools of
embeddings without a single known pair (``fit([A, B])``): it looks for
structure the two spaces share (matched cluster centroids, or matched
independent components when those fail), refines the map by
self-learning, and reports a label-free ``confidence_``. Whether a map found
without pairs is right cannot be read from the pools' labels, because there
are none; the confidence is what tells. This example puts the confidence next
to the truth, measured on held-out texts embedded by both models, in three
cases:

1. two pools with shared cluster structure (a synthetic case): the zero-pair
   map is right, and the confidence says so;
2. two real pools without such structure (fortune-cookie texts): the map is
   wrong, the confidence says so, and ``fit`` warns;
3. the same real pools, started from a map fitted earlier for the same two
   models on other texts (a warm start): the map is right again.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# Held-out truth
# --------------
# Accuracy is top-1 retrieval: each held-out source text, mapped into the
# shared space, must find its own partner among all held-out target texts.
# These texts take no part in any fit.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import ortho_group

from skembed import ProcrustesAligner, SelfLearningAligner, UnsupervisedAlignmentWarning
from skembed.datasets import load_fortunes
from skembed.metrics import retrieval_accuracy


def held_out_accuracy(aligner, A_test, B_test, A_pool):
    centre = aligner.transform_view(A_pool, 0).mean(axis=0)
    Z_a = aligner.transform_view(A_test, 0) - centre
    Z_b = aligner.transform_view(B_test, 1) - centre
    return retrieval_accuracy(Z_a, Z_b)


def fit_without_pairs(A_pool, B_pool, **params):
    """Fit on the two pools only; return the aligner and whether fit warned."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aligner = SelfLearningAligner(random_state=0, **params).fit([A_pool, B_pool])
    warned = any(w.category is UnsupervisedAlignmentWarning for w in caught)
    return aligner, warned


results = {}

# %%
# 1. Shared cluster structure: a zero-pair map that works
# -------------------------------------------------------
# Items drawn around 20 centres in 32 dimensions; the second "model" sees them
# through a rotation, plus noise. The two pools hold the same 1,500 items in
# independent orders; 500 other items are held out.
rng = np.random.default_rng(0)
centres = rng.normal(size=(20, 32)) * 2.0
items = centres[rng.integers(20, size=2000)] + rng.normal(size=(2000, 32))
rotation = ortho_group.rvs(32, random_state=0)
seen_by_a = items
seen_by_b = items @ rotation + 0.3 * rng.normal(size=items.shape)
pool, test = np.arange(1500), np.arange(1500, 2000)
shuffled = rng.permutation(pool)
aligner, warned = fit_without_pairs(seen_by_a[pool], seen_by_b[shuffled])
results["synthetic clusters,\nno pairs"] = (
    aligner.confidence_,
    held_out_accuracy(aligner, seen_by_a[test], seen_by_b[test], seen_by_a[pool]),
    warned,
)

# %%
# 2. Real texts without shared structure: the confidence flags it
# ---------------------------------------------------------------
# minilm and e5 embeddings of fortune-cookie texts. The two pools hold the
# same 1,000 texts, shuffled; 1,000 other texts are held out. The clusters of
# the two models' spaces do not correspond on this corpus, so no map can be
# found from the pools alone.
data = load_fortunes(views=["minilm", "e5"])
A, B = data.views["minilm"], data.views["e5"]
order = np.random.default_rng(1).permutation(len(A))
test, pool, earlier = order[:1000], order[1000:2000], order[2000:]
shuffled = np.random.default_rng(2).permutation(pool)
cold, warned = fit_without_pairs(A[pool], B[shuffled], n_restarts=1)
results["fortunes,\nno pairs"] = (
    cold.confidence_,
    held_out_accuracy(cold, A[test], B[test], A[pool]),
    warned,
)

# %%
# 3. The same pools from a warm start
# -----------------------------------
# A map fitted earlier for the same two models on other texts (here by
# Procrustes on 100 pairs of the remaining fortunes; in practice, a model file
# loaded with :func:`skembed.load_aligner`) is passed as ``init``. Self-learning
# on the unpaired pools then refines it.
earlier_map = ProcrustesAligner(center=True, normalize="l2").fit(
    [A[earlier[:100]], B[earlier[:100]]]
)
warm, warned = fit_without_pairs(A[pool], B[shuffled], init=earlier_map)
results["fortunes,\nwarm start"] = (
    warm.confidence_,
    held_out_accuracy(warm, A[test], B[test], A[pool]),
    warned,
)
print(
    "map fitted earlier, alone: held-out top-1 "
    f"{held_out_accuracy(earlier_map, A[test], B[test], A[pool]):.3f}"
)

# %%
# Confidence next to the truth
# ----------------------------
for case, (confidence, accuracy, warned) in results.items():
    name = case.replace("\n", " ")
    print(
        f"{name:30s} confidence {confidence:6.3f}   held-out top-1 {accuracy:.3f}"
        f"   {'warned' if warned else 'no warning'}"
    )

fig, ax = plt.subplots(figsize=(6.4, 3.6))
x = np.arange(len(results))
values = np.array([v[:2] for v in results.values()])
ax.bar(x - 0.2, values[:, 0], width=0.4, label="confidence_ (no labels)")
ax.bar(x + 0.2, values[:, 1], width=0.4, label="held-out top-1 (truth)")
ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
ax.set_xticks(x, list(results))
# Confidences can be negative (below the shuffled control): show all bars.
ax.set_ylim(min(-0.1, float(np.nanmin(values)) - 0.05), 1.05)
ax.legend(loc="upper center", fontsize="small")
ax.set_title("Zero-pair alignment: the confidence tracks the truth")
fig.tight_layout()
plt.show()

# %%
# Below a confidence of 0.5 (dotted line) ``fit`` raises an
# :class:`~skembed.UnsupervisedAlignmentWarning`. Then collect a few dozen
# known pairs and pass them with ``fit(X, pairs=...)``, or start from a map
# fitted for the same two models elsewhere, as in case 3.
