"""Speed of skembed's exact search against a plain BLAS top-k, side by side.

skembed's search ranks by scores that do not depend on the batch, the block
or the BLAS: block products only pick candidates, and candidates within the
rounding bound of each other are ranked again by float64 scores of the two
rows alone (see ``skembed/_neighbors.py``). This script measures what that
costs against the *floor* a plain search needs: unit-normalise queries and
index, one block product per query block, ``argpartition`` for the top k,
sort them (for CSLS, first the penalties of the index over the queries and
of the queries over the index, each a product and a partition). Both run on
the same float32 arrays, in one process, interleaved, best of ``--repeat``.

Cases: ``kneighbors`` with cosine at k = 10 and k = 100, ``kneighbors`` with
CSLS (csls_k = 10, penalties from the queries) at k = 10, ``csls_penalties``
alone, :class:`skembed.EmbeddingIndex` (fitted once; ``kneighbors`` of
the query set timed, against a floor whose index rows are normalised once
too), and ``kneighbors`` again (cosine and CSLS) on an index half of whose
rows are copies of one row, with queries near it, so that every query ties
with thousands of index rows. The last column is the share of queries whose k
neighbours are the floor's, in the same order: a plain search can order two
rows of equal score either way, so it is close to, not exactly, 1.

Data: rows of the WordNet glosses of the shared corpus embedded by minilm
(index: the first ``--rows`` rows, queries: the next ``--queries``), or,
without the corpus, clustered random unit vectors of width 384. Without
``--corpus`` the corpus is looked for in the folder named by
``SKEMBED_WORDNET_DIR``, else ``../shared/data/wordnet`` next to the
repository, and the synthetic rows stand in when it is not there or holds
fewer rows than asked (the first line of the output says which data ran); a
folder given by ``--corpus`` must hold ``minilm.npy`` with enough rows.
``--rows`` is at least 100 (the largest k) and ``--queries`` at least 10
(the CSLS neighbourhood).

Usage::

    python benchmarks/bench_search.py [--rows 12000] [--queries 2000]
                                      [--repeat 3] [--corpus DIR]

Ratios are meaningful only on an otherwise idle machine: the load average is
printed with the table.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import sys

import numpy as np
from _common import (
    Table,
    corpus_dir,
    corpus_help,
    interleaved_best,
    load_average,
    positive_int,
    require_corpus,
)

from skembed import EmbeddingIndex, csls_penalties, kneighbors

BLOCK = 1024
# The largest k searched, and the CSLS neighbourhood (csls_k) of every case.
MAX_K, CSLS_K = 100, 10


def load_rows(n_rows, n_queries, corpus):
    """Index and query rows (float32): WordNet minilm glosses, else synthetic.

    Synthetic rows stand in only when no ``corpus`` folder was given; a given
    one must hold ``n_rows + n_queries`` rows, or the script exits saying so.
    """
    if corpus is not None:
        require_corpus("wordnet", corpus, ["minilm.npy"], "--corpus")
    path = corpus_dir("wordnet", corpus) / "minilm.npy"
    if path.exists():
        data = np.load(path, mmap_mode="r")
        if data.shape[0] >= n_rows + n_queries:
            rows = np.asarray(data[: n_rows + n_queries], dtype=np.float32)
            return rows[:n_rows], rows[n_rows:], "WordNet glosses, minilm"
        if corpus is not None:
            sys.exit(
                f"{path} holds {data.shape[0]:,} rows, fewer than --rows + "
                f"--queries = {n_rows + n_queries:,}."
            )
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(64, 384))
    labels = rng.integers(64, size=n_rows + n_queries)
    rows = centres[labels] + rng.normal(scale=0.7, size=(labels.size, 384))
    rows = rows.astype(np.float32)
    return rows[:n_rows], rows[n_rows:], "synthetic clusters"


def unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _top(S, k):
    """Indices of the k largest entries of every row of S, best first."""
    part = np.argpartition(-S, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(S, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _mean_top(S, k):
    return -np.partition(-S, k - 1, axis=1)[:, :k].mean(axis=1)


def floor_penalties(Q, T, csls_k):
    """Mean cosine of every row of T to its csls_k nearest rows of Q."""
    Q, T = unit(Q), unit(T)
    out = np.empty(T.shape[0])
    for start in range(0, T.shape[0], BLOCK):
        S = T[start : start + BLOCK] @ Q.T
        out[start : start + BLOCK] = _mean_top(S, csls_k)
    return out


def floor_search(Q, T, k, *, csls_k=None, prepared=False):
    """Top k of every query by cosine, or by CSLS when csls_k is given.

    ``prepared``: T already holds unit rows (as an index fitted once does).
    """
    Qu, Tu = unit(Q), (T if prepared else unit(T))
    out = np.empty((Q.shape[0], k), dtype=np.intp)
    index_penalty = None if csls_k is None else floor_penalties(Q, T, csls_k)
    for start in range(0, Q.shape[0], BLOCK):
        S = Qu[start : start + BLOCK] @ Tu.T
        if csls_k is not None:
            S = 2 * S - _mean_top(S, csls_k)[:, None] - index_penalty[None, :]
        out[start : start + BLOCK] = _top(S, k)
    return out


def same_lists(first, second):
    return float(np.mean(np.all(first == second, axis=1)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=positive_int, default=12000)
    parser.add_argument("--queries", type=positive_int, default=2000)
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument(
        "--corpus",
        default=None,
        help=corpus_help("wordnet", "minilm.npy")
        + "; without it, synthetic rows when the corpus is not there",
    )
    args = parser.parse_args(argv)
    if args.rows < MAX_K:
        parser.error(f"--rows {args.rows} is fewer than {MAX_K}, the largest k")
    if args.queries < CSLS_K:
        parser.error(
            f"--queries {args.queries} is fewer than {CSLS_K}, the CSLS "
            "neighbourhood (csls_k)"
        )
    T, Q, source = load_rows(args.rows, args.queries, args.corpus)
    print(
        f"{source}: index {T.shape[0]:,} x {T.shape[1]}, queries {Q.shape[0]:,}, "
        f"float32, best of {args.repeat}; load average {load_average():.2f}"
    )
    table = Table(["case", "skembed s", "floor s", "ratio", "same lists"])

    def compare(name, ours, floor, agreement):
        best = interleaved_best({"ours": ours, "floor": floor}, repeat=args.repeat)
        table.add(
            name,
            best["ours"],
            best["floor"],
            best["ours"] / best["floor"],
            agreement,
        )

    for k in (10, 100):
        ids = kneighbors(Q, T, k)[1]
        compare(
            f"kneighbors nn k={k}",
            lambda k=k: kneighbors(Q, T, k),
            lambda k=k: floor_search(Q, T, k),
            same_lists(ids, floor_search(Q, T, k)),
        )
    ids = kneighbors(Q, T, 10, method="csls", csls_k=10)[1]
    compare(
        "kneighbors csls k=10",
        lambda: kneighbors(Q, T, 10, method="csls", csls_k=10),
        lambda: floor_search(Q, T, 10, csls_k=10),
        same_lists(ids, floor_search(Q, T, 10, csls_k=10)),
    )
    penalties = csls_penalties(Q, T, csls_k=10)
    compare(
        "csls_penalties",
        lambda: csls_penalties(Q, T, csls_k=10),
        lambda: floor_penalties(Q, T, 10),
        float(np.max(np.abs(penalties - floor_penalties(Q, T, 10)))),
    )
    # The index prepares its rows once, in fit; so does this floor.
    index = EmbeddingIndex(n_neighbors=10).fit(T)
    T_unit = unit(T)
    compare(
        "EmbeddingIndex nn k=10",
        lambda: index.kneighbors(Q),
        lambda: floor_search(Q, T_unit, 10, prepared=True),
        same_lists(index.kneighbors(Q)[1], floor_search(Q, T, 10)),
    )
    # Half the index copies of one document (empty texts embed alike), the
    # queries near it: every query ties with thousands of index rows.
    T_copies = T.copy()
    T_copies[::2] = T[0]
    Q_near = (T[0] + 0.01 * Q).astype(np.float32)
    for method, csls_k in (("nn", None), ("csls", 10)):
        params = {"method": method, "csls_k": csls_k or 10}
        floor = floor_search(Q_near, T_copies, 10, csls_k=csls_k)
        compare(
            f"kneighbors {method} k=10, copies",
            lambda params=params: kneighbors(Q_near, T_copies, 10, **params),
            lambda csls_k=csls_k: floor_search(Q_near, T_copies, 10, csls_k=csls_k),
            same_lists(kneighbors(Q_near, T_copies, 10, **params)[1], floor),
        )
    print(table.render())
    print(
        "ratio: skembed time / floor time. same lists: share of queries with "
        "the floor's neighbours in its order (csls_penalties: largest "
        "difference of the penalties; with copies the floor orders equal "
        "rows as its partition leaves them, skembed by row number)."
    )


if __name__ == "__main__":
    main()
