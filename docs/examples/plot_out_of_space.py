"""
=====================================================
Same length, different spaces: why raw cosines fail
=====================================================

``all-MiniLM-L6-v2`` and ``multilingual-e5-small`` both turn a text into 384
numbers. It is tempting to compare a vector from one model with a vector from
the other, or to query an index built with one model using the other. This
example shows on real data that the result is noise, and that a rotation
learnt from paired rows fixes it.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# The same 3,000 texts, embedded by two models
# --------------------------------------------
# Row ``i`` of both arrays embeds the same text.
import numpy as np

from skembed.datasets import load_fortunes

data = load_fortunes(views=["minilm", "e5"])
minilm, e5 = data.views["minilm"], data.views["e5"]
print(minilm.shape, e5.shape)

# %%
# Raw cosines between the two models carry no information
# -------------------------------------------------------
# The cosine between the two vectors of the *same* text is no higher than
# between two unrelated texts, and looking up each e5 vector's nearest
# minilm vector finds the right text at chance level.
from skembed.metrics import check_same_space, paired_cosine, retrieval_accuracy

rng = np.random.default_rng(0)
order = rng.permutation(len(minilm))
test, train = order[:1000], order[1000:]
partners = rng.permutation(len(test))

raw_same = paired_cosine(minilm[test], e5[test])
raw_random = paired_cosine(minilm[test], e5[test][partners])
print(f"same text:    mean cosine {raw_same.mean():.3f}")
print(f"random pairs: mean cosine {raw_random.mean():.3f}")
raw_top1 = retrieval_accuracy(e5[test], minilm[test])
print(f"top-1 retrieval e5 -> minilm: {raw_top1:.3f} (chance {1 / len(test):.3f})")

# %%
# :func:`~skembed.metrics.check_same_space` is a cheap guard for code that is
# about to compare vectors across sources: it warns (or raises) and says why.
import textwrap
import warnings

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    same_space = check_same_space(minilm, e5, action="warn")
print("same space?", same_space)
print(textwrap.fill(str(caught[0].message), 79))

# %%
# Each model has its own geometry
# -------------------------------
# Even within one model the spaces differ: e5 vectors share a large common
# direction (two unrelated texts have cosine about 0.8), minilm vectors do not.
for name, X in data.views.items():
    unrelated = paired_cosine(X, X[rng.permutation(len(X))]).mean()
    print(f"{name:7s} unrelated texts: mean cosine {unrelated:.2f}")

# %%
# A rotation learnt from paired rows aligns the spaces
# ----------------------------------------------------
# :class:`~skembed.ProcrustesAligner` learns, from the 2,000 training pairs,
# the orthogonal map of e5's centred space onto minilm's. In the shared space
# the held-out texts find their partners.
from skembed import ProcrustesAligner

aligner = ProcrustesAligner().fit([minilm[train], e5[train]])
# The shared space is centred on the mapped training mean, so no common
# direction dominates the cosines.
Z_minilm = aligner.transform_view(minilm[test], 0)
Z_e5 = aligner.transform_view(e5[test], 1)
aligned_same = paired_cosine(Z_minilm, Z_e5)
aligned_random = paired_cosine(Z_minilm, Z_e5[partners])
aligned_top1 = retrieval_accuracy(Z_e5, Z_minilm)
print(f"top-1 retrieval e5 -> minilm, aligned: {aligned_top1:.3f}")

# %%
# The picture
# -----------
# Histograms of the cosine between the two models' vectors of the same text
# (blue) and of unrelated texts (grey), before and after alignment.
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True, layout="constrained")
bins = np.linspace(-0.4, 1.0, 57)
panels = [
    ("raw vectors: minilm vs e5", raw_same, raw_random),
    ("after ProcrustesAligner (2,000 pairs)", aligned_same, aligned_random),
]
for ax, (title, same, other) in zip(axes, panels, strict=True):
    ax.hist(other, bins=bins, alpha=0.6, color="0.55", label="unrelated texts")
    ax.hist(same, bins=bins, alpha=0.7, color="C0", label="same text")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("cosine similarity")
axes[0].set_ylabel("held-out texts")
axes[0].legend(loc="upper left", fontsize=8)
plt.show()

# %%
# Same length is not same space: compare vectors from two models only after
# aligning them, and measure with :func:`skembed.metrics.compare_spaces` when
# in doubt.
