"""Learned and relative alignment against the closed forms, on real embeddings.

For two model pairs of the fortunes corpus (wordllama256 <-> minilm and
minilm <-> e5), fits ContrastiveAligner, RelativeProjector, centred
ProcrustesAligner and CCAAligner on 5,000 training rows and reports, side by
side:

- held-out top-1 cross-model retrieval on 2,000 other rows, in both
  directions (cosine in the centred shared space, as ``score`` does; chance
  level 1 / 2,000);
- 5-fold stratified classification accuracy of the fortune category, by
  ``make_pipeline(aligner, StandardScaler(), LogisticRegression())`` on the
  training rows, so every fold refits the aligner on its own rows (the
  aligners never see labels; the scaler puts the methods' differently scaled
  outputs on an equal footing for one regularisation strength);
- wall-clock and CPU time of one ``fit`` on the 5,000 training rows (the CPU
  time divided by the number of cores is what an idle machine would take).

The raw concatenation of both models, without any aligner, is the reference
row for classification.

``--tune`` runs the hyper-parameter search that chose the defaults instead: it
splits the 5,000 training rows again (4,000 fit, 1,000 validation) and prints
the validation retrieval of each setting. The 2,000 held-out rows are never
used for any choice.

Usage::

    python benchmarks/bench_learned.py [--data DIR] [--seed 20240607] [--tune]
                                       [--tune-rows 4000]

The data folder defaults to ``../shared/data/fortunes`` next to the repository,
or the environment variable ``SKEMBED_FORTUNES_DIR``.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import json
import os
import time
import warnings

import numpy as np
from _common import corpus_dir, corpus_help, positive_int, require_corpus
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skembed import (
    CCAAligner,
    ContrastiveAligner,
    ProcrustesAligner,
    RelativeProjector,
)
from skembed.metrics import retrieval_accuracy

PAIRS = [("wordllama256", "minilm"), ("minilm", "e5")]
N_TRAIN, N_TEST = 5000, 2000


def default_data_dir():
    return corpus_dir("fortunes")


def load(data_dir):
    names = sorted({name for pair in PAIRS for name in pair})
    files = [f"{n}.npy" for n in names] + ["texts.jsonl"]
    data_dir = require_corpus("fortunes", data_dir, files, "--data")
    views = {n: np.load(data_dir / f"{n}.npy") for n in names}
    with open(data_dir / "texts.jsonl", encoding="utf-8") as f:
        labels = np.array([json.loads(line)["label"] for line in f])
    return views, labels


def methods(m):
    """The four aligners with their defaults.

    CCA keeps half the narrowest width: of 1/4, 1/2 and all of it, the best on
    the validation split of ``--tune`` (all of it is clearly worse: whitening
    gives the noisy components full weight).
    """
    return {
        "ContrastiveAligner": ContrastiveAligner(random_state=0),
        "RelativeProjector": RelativeProjector(random_state=0),
        "ProcrustesAligner (centred)": ProcrustesAligner(center=True),
        f"CCAAligner (n_components={m // 2})": CCAAligner(n_components=m // 2),
    }


def weighted_cca_top1(A_train, B_train, A_test, B_test, m):
    """Retrieval of ContrastiveAligner's starting point alone.

    CCA with ``reg=0.1``, every component scaled by its canonical
    correlation: how much of the contrastive result the start already gives.
    """
    cca = CCAAligner(n_components=m, reg=0.1).fit([A_train, B_train])
    Z = [
        Z_k * cca.canonical_correlations_
        for Z_k in (cca.transform_view(A_test, 0), cca.transform_view(B_test, 1))
    ]
    return retrieval_accuracy(Z[0], Z[1]), retrieval_accuracy(Z[1], Z[0])


def directional_top1(aligner, A, B):
    # The centred shared space, where score() compares views.
    Z = [aligner.transform_view(A, 0), aligner.transform_view(B, 1)]
    return retrieval_accuracy(Z[0], Z[1]), retrieval_accuracy(Z[1], Z[0])


def timed_fit(aligner, A, B):
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        aligner.fit([A, B])
    return time.perf_counter() - wall, time.process_time() - cpu


def classification(aligner, X, y, seed):
    steps = [] if aligner is None else [aligner]
    model = make_pipeline(*steps, StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cross_val_score(model, X, y, cv=cv).mean()


def run(views, labels, seed):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    train, test = order[:N_TRAIN], order[N_TRAIN : N_TRAIN + N_TEST]
    print(
        f"fortunes: {N_TRAIN} train / {N_TEST} held-out rows (seed {seed}), "
        f"{len(np.unique(labels))} classes, {os.cpu_count()} cores\n"
    )
    print(
        "| pair | method | top-1 A->B | top-1 B->A | 5-fold acc | fit wall s "
        "| fit CPU s | epochs |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for a, b in PAIRS:
        A, B = views[a], views[b]
        m = min(A.shape[1], B.shape[1])
        X_train = np.hstack([A[train], B[train]])
        acc = classification(None, X_train, labels[train], seed)
        print(f"| {a} <-> {b} | raw concat (no aligner) | | | {acc:.3f} | | | |")
        forward, backward = weighted_cca_top1(A[train], B[train], A[test], B[test], m)
        print(
            f"| {a} <-> {b} | contrastive start only (weighted CCA) | {forward:.3f} "
            f"| {backward:.3f} | | | | |"
        )
        for name, aligner in methods(m).items():
            wall, cpu = timed_fit(aligner, A[train], B[train])
            forward, backward = directional_top1(aligner, A[test], B[test])
            # The pipeline splits X into the two views at column A.shape[1].
            aligner.set_params(views=[slice(0, A.shape[1]), slice(A.shape[1], None)])
            acc = classification(aligner, X_train, labels[train], seed)
            epochs = getattr(aligner, "n_iter_", "")
            print(
                f"| {a} <-> {b} | {name} | {forward:.3f} | {backward:.3f} | "
                f"{acc:.3f} | {wall:.1f} | {cpu:.1f} | {epochs} |",
                flush=True,
            )


def tune(views, labels, seed, n_fit=4000):
    """Validation retrieval of candidate settings, on the training rows only.

    Stage 1 crosses ``init`` and ``temperature``; stage 2 varies the other
    parameters one at a time around the stage-1 winner (best mean over the
    two pairs).
    """
    rng = np.random.default_rng(seed)
    train = rng.permutation(len(labels))[:N_TRAIN]
    inner = np.random.default_rng(seed + 1).permutation(train)
    # Validation rows come after the fitting ones, whatever --tune-rows is
    # (a fixed inner[4000:] overlapped the fitting rows beyond 4,000).
    if n_fit >= len(inner):
        raise SystemExit(
            f"--tune-rows {n_fit} leaves no validation rows among the "
            f"{len(inner)} training rows; pass fewer."
        )
    fit_rows, val_rows = inner[:n_fit], inner[n_fit:]
    print(f"tuning: fit on {n_fit} training rows, validate on {len(val_rows)}\n")
    print("| pair | setting | validation top-1 (mean of both directions) | fit s |")
    print("|---|---|---|---|")

    def evaluate(name, make):
        scores = []
        for a, b in PAIRS:
            A, B = views[a], views[b]
            aligner = make(min(A.shape[1], B.shape[1]))
            wall, _ = timed_fit(aligner, A[fit_rows], B[fit_rows])
            score = np.mean(directional_top1(aligner, A[val_rows], B[val_rows]))
            scores.append(score)
            print(f"| {a} <-> {b} | {name} | {score:.3f} | {wall:.1f} |", flush=True)
        return np.mean(scores)

    stage1 = {}
    for init in ("cca", "procrustes"):
        for temperature in (0.03, 0.05, 0.1, 0.2):
            params = {"init": init, "temperature": temperature}
            stage1[(init, temperature)] = evaluate(
                f"Contrastive {params}",
                lambda m, p=params: ContrastiveAligner(random_state=0, **p),
            )
    init, temperature = max(stage1, key=stage1.get)
    base = {"init": init, "temperature": temperature}
    for change in (
        {"batch_size": 256},
        {"batch_size": 1024},
        {"learning_rate": 3e-4},
        {"learning_rate": 3e-3},
        {"n_iter_no_change": 20},
        {"hidden": 512},
    ):
        params = {**base, **change}
        evaluate(
            f"Contrastive {params}",
            lambda m, p=params: ContrastiveAligner(random_state=0, **p),
        )
    for n_anchors in (100, 300, 1000):
        for how in ("random", "kmeans++"):
            evaluate(
                f"Relative n_anchors={n_anchors} anchors={how}",
                lambda m, n=n_anchors, h=how: RelativeProjector(
                    n, anchors=h, random_state=0
                ),
            )
    for fraction in (0.25, 0.5, 1.0):
        evaluate(
            f"CCA n_components={fraction} * narrowest width",
            lambda m, f=fraction: CCAAligner(n_components=int(f * m)),
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=None, help=corpus_help("fortunes", "<model>.npy, texts.jsonl")
    )
    parser.add_argument("--seed", type=int, default=20240607)
    parser.add_argument("--tune", action="store_true", help="run the default search")
    parser.add_argument(
        "--tune-rows",
        type=positive_int,
        default=4000,
        help="rows to fit on when tuning",
    )
    args = parser.parse_args(argv)
    views, labels = load(args.data or default_data_dir())
    if args.tune:
        tune(views, labels, args.seed, n_fit=args.tune_rows)
    else:
        run(views, labels, args.seed)


if __name__ == "__main__":
    main()
