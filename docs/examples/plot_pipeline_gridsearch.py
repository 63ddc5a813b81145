"""
=========================================================
Choosing how to combine two models with GridSearchCV
=========================================================

Two embedding models of the same texts can feed one classifier. Whether to
simply concatenate them, align them first, or keep only what they agree on
is a modelling choice, so treat it as a hyper-parameter: put the combining
step in a :class:`~sklearn.pipeline.Pipeline` and let
:class:`~sklearn.model_selection.GridSearchCV` pick it on the labels.

Both embeddings travel side by side in ``X``; the ``views`` parameter tells
every skembed estimator which columns belong to which model, because a
Pipeline passes only the class labels as ``y``.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# Data: minilm and e5 embeddings side by side, 38 labels
# ------------------------------------------------------
import numpy as np
from sklearn.model_selection import train_test_split

from skembed.datasets import load_fortunes

data = load_fortunes(views=["minilm", "e5"])
X = np.hstack([data.views["minilm"], data.views["e5"]])
y = data.target
views = {"minilm": slice(0, 384), "e5": slice(384, 768)}
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, random_state=0, stratify=y
)

# %%
# A pipeline whose first step is itself a hyper-parameter
# -------------------------------------------------------
# The grid compares concatenation with balanced weights, Procrustes alignment
# with the aligned views concatenated or averaged, and CCA's correlated
# subspace. Each model alone is in the grid too (an
# :class:`~skembed.EmbeddingConcatenator` with a zero weight drops a view).
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skembed import CCAAligner, EmbeddingConcatenator, ProcrustesAligner

pipeline = Pipeline(
    [
        ("combine", EmbeddingConcatenator(views=views)),
        ("classify", LogisticRegression(max_iter=500)),
    ]
)
grid = [
    {
        "combine": [EmbeddingConcatenator(views=views)],
        "combine__weights": [
            "balanced",
            {"minilm": 1.0, "e5": 0.0},
            {"minilm": 0.0, "e5": 1.0},
        ],
    },
    {
        "combine": [ProcrustesAligner(views=views)],
        "combine__combine": ["concat", "mean"],
    },
    {
        "combine": [CCAAligner(n_components=128, reg=0.1, views=views)],
        "combine__combine": ["concat", "mean"],
    },
]
search = GridSearchCV(pipeline, grid, cv=3).fit(X_train, y_train)

results = pd.DataFrame(search.cv_results_)
results["combine"] = [
    type(p["combine"]).__name__
    + f" {p.get('combine__weights', p.get('combine__combine'))}"
    for p in results["params"]
]
print(results[["combine", "mean_test_score", "rank_test_score"]].to_string(index=False))
print(f"\nbest: {search.best_params_['combine']!r}")
print(f"held-out accuracy of the best pipeline: {search.score(X_test, y_test):.3f}")

# %%
# Concatenating both models beats either model alone. Aligning first does not
# help this classifier: a linear model on the concatenation can already use
# any rotation of either block, and averaging the aligned views, or keeping
# only CCA's shared directions, throws away what the models do not share.
# Alignment is for comparing vectors across models (retrieval, migration,
# monitoring), not a must before classification.
#
# Tuning an aligner without labels
# --------------------------------
# Every aligner's ``score`` is its held-out cross-model retrieval accuracy,
# so a grid search over alignment options needs no labels at all.
search = GridSearchCV(
    CCAAligner(views=views),
    {"n_components": [64, 128, 256], "reg": [0.01, 0.1, 0.3]},
    cv=3,
).fit(X_train)
table = pd.DataFrame(search.cv_results_)[
    ["param_n_components", "param_reg", "mean_test_score"]
]
print(table.to_string(index=False))
print("best:", search.best_params_)
