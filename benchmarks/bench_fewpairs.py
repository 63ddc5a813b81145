"""Alignment from a few known pairs, or none, on real embeddings (SelfLearningAligner).

On the fortunes corpus, 2,000 texts (fixed seed) are held out. The other
6,004 texts, embedded by each model, become two unpaired pools, shuffled
independently; the known pairs ("seeds") are drawn from the texts both pools
hold. Each case fits ``SelfLearningAligner`` (defaults) on the pools and,
for comparison, centred Procrustes on the seed pairs alone, and reports
top-1 retrieval with CSLS on the held-out texts: each source-model text,
mapped into the centred shared space, retrieves among the 2,000 target-model
texts (chance 1 / 2,000). Also reported: the size and precision of the
induced dictionary, the number of rounds and the fit time (wall-clock and
CPU). On a busy machine multi-threaded BLAS calls can take many times longer
than on an idle one (threads wait for a core); ``--blas-threads 1`` gives a
contention-free single-core time, an upper bound for two idle cores.

Cases and targets (issue "few-pairs"):

- minilm -> e5 and e5 -> minilm from 50 seed pairs: >= 0.98;
- wordllama256 -> minilm from 200 seed pairs: >= 0.90;
- pools sharing only half of their texts (2,001 shared, 2,001 own each),
  minilm -> e5, from 25 / 50 / 100 / 200 seed pairs: the curve;
- minilm <-> e5 from 0 pairs (unsupervised start): what is reached (goal
  >= 0.9), with the pre-flight ``isomorphism_score_``;
- fit time for 6,000-row pools: <= 30 s on 2 cores.

The held-out rows are never used by any fit or for any choice of defaults.

Usage::

    python benchmarks/bench_fewpairs.py [--data DIR] [--seed 20240607]
                                        [--only NAME ...] [--blas-threads N]

The data folder defaults to ``../shared/data/fortunes`` next to the repository,
or the environment variable ``SKEMBED_FORTUNES_DIR``.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import os
import time
import warnings

import numpy as np
from _common import corpus_dir, corpus_help, positive_int, require_corpus
from threadpoolctl import threadpool_limits

from skembed import ProcrustesAligner, SelfLearningAligner
from skembed.metrics import retrieval_accuracy

MODELS = ("minilm", "e5", "wordllama256")
N_TEST = 2000

# (name, source, target, seed pairs, share of each pool that the other holds, goal)
CASES = [
    ("minilm->e5", "minilm", "e5", 50, 1.0, 0.98),
    ("e5->minilm", "e5", "minilm", 50, 1.0, 0.98),
    ("wordllama256->minilm", "wordllama256", "minilm", 200, 1.0, 0.90),
    *[
        (f"half-shared minilm->e5 ({m})", "minilm", "e5", m, 0.5, None)
        for m in (25, 50, 100, 200)
    ],
    ("unsupervised minilm->e5", "minilm", "e5", 0, 1.0, 0.9),
    ("unsupervised e5->minilm", "e5", "minilm", 0, 1.0, 0.9),
]


def default_data_dir():
    return corpus_dir("fortunes")


def load(data_dir):
    files = [f"{m}.npy" for m in MODELS]
    data_dir = require_corpus("fortunes", data_dir, files, "--data")
    return {m: np.load(data_dir / f"{m}.npy") for m in MODELS}


def make_pools(n_items, share, rng):
    """Item indices of pool 0 and pool 1, each shuffled.

    With ``share < 1`` the items split into shared ones and ones only in
    pool 0 or only in pool 1, so that ``share`` of each pool is shared: at
    0.5 the 6,004 pool texts give 2,001 shared and 2,001 own per pool (one
    text is left out, so that both pools have the same size).
    """
    items = rng.permutation(n_items)
    n_shared = n_items if share >= 1 else round(n_items * share / (2 - share))
    n_own = (n_items - n_shared) // 2
    shared = items[:n_shared]
    own_0 = items[n_shared : n_shared + n_own]
    own_1 = items[n_shared + n_own : n_shared + 2 * n_own]
    return rng.permutation(np.r_[shared, own_0]), rng.permutation(np.r_[shared, own_1])


def seed_pairs(items_0, items_1, m, rng):
    """m known pairs (row in pool 0, row in pool 1) of texts both pools hold."""
    if m == 0:
        return None
    shared = np.intersect1d(items_0, items_1)
    chosen = rng.choice(shared, m, replace=False)
    row_0 = {item: row for row, item in enumerate(items_0)}
    row_1 = {item: row for row, item in enumerate(items_1)}
    return np.array([[row_0[t], row_1[t]] for t in chosen])


def top1(aligner, source, target):
    # The centred shared space, where score() compares views.
    Z = [aligner.transform_view(source, 0), aligner.transform_view(target, 1)]
    return retrieval_accuracy(Z[0], Z[1], method="csls")


def run_case(views, test, pool_items, case, seed, blas_threads):
    name, source, target, m, share, goal = case
    rng = np.random.default_rng([seed, m, int(share * 100)])
    items_0, items_1 = make_pools(pool_items.shape[0], share, rng)
    items_0, items_1 = pool_items[items_0], pool_items[items_1]
    X0, X1 = views[source][items_0], views[target][items_1]
    pairs = seed_pairs(items_0, items_1, m, rng)
    held_out = views[source][test], views[target][test]

    plain = None
    if pairs is not None:
        procrustes = ProcrustesAligner(center=True, normalize="l2")
        procrustes.fit([X0[pairs[:, 0]], X1[pairs[:, 1]]])
        plain = top1(procrustes, *held_out)

    aligner = SelfLearningAligner(random_state=seed)
    wall, cpu = time.perf_counter(), time.process_time()
    with (
        warnings.catch_warnings(record=True) as caught,
        threadpool_limits(blas_threads),
    ):
        warnings.simplefilter("always")
        aligner.fit([X0, X1], pairs=pairs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    dictionary = aligner.dictionary_
    correct = items_0[dictionary[:, 0]] == items_1[dictionary[:, 1]]
    return {
        "case": name,
        "pools": f"{X0.shape[0]}/{X1.shape[0]}",
        "seeds": m,
        "procrustes": plain,
        "self-learning": top1(aligner, *held_out),
        "goal": goal,
        "pairs": dictionary.shape[0],
        "precision": correct.mean(),
        "rounds": aligner.n_iter_,
        "wall": wall,
        "cpu": cpu,
        "isomorphism": aligner.isomorphism_score_,
        "warnings": sorted({type(w.message).__name__ for w in caught}),
    }


HEADER = (
    "| case | pools | seeds | Procrustes on seeds | self-learning | goal | pairs | "
    "precision | rounds | fit wall s | fit CPU s | isomorphism | warnings |"
)


def format_row(r):
    plain = "-" if r["procrustes"] is None else f"{r['procrustes']:.3f}"
    goal = "curve" if r["goal"] is None else f">= {r['goal']:.2f}"
    iso = "-" if r["isomorphism"] is None else f"{r['isomorphism']:.3f}"
    return (
        f"| {r['case']} | {r['pools']} | {r['seeds']} | {plain} | "
        f"{r['self-learning']:.3f} | {goal} | {r['pairs']} | {r['precision']:.3f} | "
        f"{r['rounds']} | {r['wall']:.1f} | {r['cpu']:.1f} | {iso} | "
        f"{', '.join(r['warnings']) or '-'} |"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help=corpus_help("fortunes"))
    parser.add_argument("--seed", type=int, default=20240607)
    parser.add_argument(
        "--only", nargs="*", default=None, help="run the cases whose name contains"
    )
    parser.add_argument(
        "--blas-threads",
        type=positive_int,
        default=None,
        help="BLAS threads during fit (default: all cores); 1 avoids the "
        "thread contention that inflates wall-clock times on a busy machine",
    )
    args = parser.parse_args(argv)
    cases = [
        c for c in CASES if not args.only or any(word in c[0] for word in args.only)
    ]
    if not cases:
        parser.error(
            f"--only {' '.join(args.only)}: no case name contains any of these; "
            f"the cases are {', '.join(c[0] for c in CASES)}"
        )
    views = load(args.data or default_data_dir())
    n = views["minilm"].shape[0]
    order = np.random.default_rng(args.seed).permutation(n)
    test, pool_items = order[:N_TEST], order[N_TEST:]
    print(
        f"fortunes: {n} texts, {N_TEST} held out, pools from the other "
        f"{pool_items.shape[0]}; {os.cpu_count()} cores, BLAS threads in fit: "
        f"{args.blas_threads or 'all'}; load average {os.getloadavg()[0]:.1f} at "
        "start\n"
    )
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1), flush=True)
    for case in cases:
        row = run_case(views, test, pool_items, case, args.seed, args.blas_threads)
        print(format_row(row), flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
