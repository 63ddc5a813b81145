"""Compare embedding spaces: similarity indices, retrieval, a verdict and scorers.

Two embedding models map the same texts to vectors whose axes mean different
things, so cosines *between* their vectors are meaningless until the spaces are
aligned. This package measures how far apart two row-paired sets of embeddings
are (:func:`linear_cka`, :func:`procrustes_distance`, :func:`cca_similarity`),
how well one retrieves the other (:func:`paired_cosine`,
:func:`retrieval_accuracy`), and gives a verdict with the numbers behind it
(:func:`compare_spaces`, :func:`check_same_space`). :func:`make_alignment_scorer`
turns cross-view retrieval into a scorer for model selection of aligners.
:func:`recall_at_k`, :func:`mrr_at_k` and :func:`ndcg_at_k` score a search
(such as :func:`skembed.kneighbors`) against relevance labels, one or
several relevant index rows per query.

Every function reads its input in row chunks and accumulates in float64; none
builds an n x n matrix. The neighbour searches behind retrieval are those of
:func:`skembed.kneighbors`.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

from skembed._neighbors import retrieval_accuracy
from skembed.exceptions import OutOfSpaceWarning
from skembed.metrics._ranking import mrr_at_k, ndcg_at_k, recall_at_k
from skembed.metrics._scorer import make_alignment_scorer
from skembed.metrics._similarity import (
    cca_similarity,
    linear_cka,
    paired_cosine,
    procrustes_distance,
)
from skembed.metrics._verdict import SpaceComparison, check_same_space, compare_spaces

__all__ = [
    "OutOfSpaceWarning",
    "SpaceComparison",
    "cca_similarity",
    "check_same_space",
    "compare_spaces",
    "linear_cka",
    "make_alignment_scorer",
    "mrr_at_k",
    "ndcg_at_k",
    "paired_cosine",
    "procrustes_distance",
    "recall_at_k",
    "retrieval_accuracy",
]
