"""How much cluster structure two embedding models share, on paired texts.

Zero-pair alignment (``SelfLearningAligner`` without pairs) starts from
k-means clusters that both models find (docs/user_guide/zero_pairs.rst). This
script measures that structure as the adjusted Rand index (ARI) of the two
models' k-means partitions of the same texts: each model's rows are
prepared as the anchor start prepares them (unit length, centred on their
mean, unit length again) and clustered into ``--clusters`` groups by k-means
(``n_init=4``, seeded), and the two partitions are compared. 1 means the
same groups, 0 what unrelated partitions score. The ARI is the mean over
``--seeds`` random samples of the corpus.

Usage::

    python benchmarks/cluster_agreement.py [--sizes 5000 10000 20000]
        [--clusters 20] [--seeds 0 1 2] [--wordnet DIR] [--fortunes DIR]

Corpora: the shared WordNet glosses (40,000 texts) and fortune-cookie texts
(8,004), each embedded by minilm, e5 and wordllama256 (row-paired); a size
above a corpus's rows uses all of them. Without ``--wordnet`` and
``--fortunes``, the folders are those named by the environment variables
``SKEMBED_WORDNET_DIR`` and ``SKEMBED_FORTUNES_DIR``, else
``../shared/data/wordnet`` and ``../shared/data/fortunes`` next to the
repository.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse

import numpy as np
from _common import (
    Table,
    corpus_dir,
    corpus_help,
    non_negative_int,
    positive_int,
    require_corpus,
)
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

PAIRS = [("minilm", "e5"), ("wordllama256", "minilm")]
MODELS = ("minilm", "e5", "wordllama256")


def prepared(X):
    """Unit rows, centred, unit again: the anchor start's preparation."""
    X = np.asarray(X, dtype=np.float64)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    X = X - X.mean(axis=0)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def partition(X, n_clusters, seed):
    return KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit_predict(
        prepared(X)
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", type=positive_int, nargs="+", default=[5000, 10000, 20000]
    )
    parser.add_argument("--clusters", type=positive_int, default=20)
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0, 1, 2])
    for name in ("wordnet", "fortunes"):
        parser.add_argument(f"--{name}", default=None, help=corpus_help(name))
    args = parser.parse_args(argv)
    if args.clusters > min(args.sizes):
        parser.error(
            f"--clusters {args.clusters} is more than the smallest of --sizes "
            f"({min(args.sizes)}): k-means needs at least one text per cluster"
        )
    files = [f"{m}.npy" for m in MODELS]
    folders = {
        corpus: require_corpus(corpus, corpus_dir(corpus, folder), files, f"--{corpus}")
        for corpus, folder in (("wordnet", args.wordnet), ("fortunes", args.fortunes))
    }
    table = Table(["corpus", "models", "texts", "ARI (mean)", "min", "max"])
    for corpus, folder in folders.items():
        views = {m: np.load(folder / f"{m}.npy", mmap_mode="r") for m in MODELS}
        n_rows = views["minilm"].shape[0]
        sizes = sorted({min(size, n_rows) for size in args.sizes})
        for first, second in PAIRS:
            for size in sizes:
                scores = []
                for seed in args.seeds:
                    rows = np.sort(
                        np.random.default_rng(seed).choice(n_rows, size, replace=False)
                    )
                    labels = [
                        partition(views[m][rows], args.clusters, seed)
                        for m in (first, second)
                    ]
                    scores.append(adjusted_rand_score(*labels))
                table.add(
                    corpus,
                    f"{first} / {second}",
                    size,
                    float(np.mean(scores)),
                    float(np.min(scores)),
                    float(np.max(scores)),
                )
    print(f"k-means with {args.clusters} clusters, seeds {args.seeds}")
    print(table.render())


if __name__ == "__main__":
    main()
