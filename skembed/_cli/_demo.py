"""``skembed demo``: the out-of-space problem and its fixes on the bundled data."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import time
from pathlib import Path

import numpy as np

from skembed import (
    CCAAligner,
    EmbeddingConcatenator,
    ProcrustesAligner,
    RidgeAligner,
    SelfLearningAligner,
)
from skembed._cli._common import UserError, blas_threads, table
from skembed._cli._files import check_output, write_atomically
from skembed.datasets import load_fortunes
from skembed.metrics import paired_cosine, retrieval_accuracy
from skembed.metrics._verdict import retrieval_above_chance

__all__ = ["run_demo"]

# Image formats matplotlib writes without extra packages.
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".eps", ".ps")


def _plot_cosines(path, panels):
    """Histograms of paired vs random-pair cosines, one panel per space."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2 * len(panels), 3.4), layout="constrained")
    axes = figure.subplots(1, len(panels), sharey=True)
    bins = np.linspace(-0.4, 1.0, 57)
    for ax, (title, paired, unpaired) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.hist(unpaired, bins=bins, alpha=0.6, label="random pairs", color="0.55")
        ax.hist(paired, bins=bins, alpha=0.7, label="same text", color="C0")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("cosine similarity")
    np.atleast_1d(axes)[0].set_ylabel("held-out rows")
    np.atleast_1d(axes)[0].legend(loc="upper left", fontsize=8)
    write_atomically(
        path,
        lambda file: figure.savefig(file, dpi=110, format=path.suffix[1:].lower()),
    )


def _demo_methods(A, B, train, seed_pairs, rng, random_state):
    """(label, number of known pairs, function fitting the aligner) per method."""
    methods = [
        ("ProcrustesAligner()", ProcrustesAligner, {}),
        ("CCAAligner()", CCAAligner, {}),
        ("RidgeAligner(alpha=0.1)", RidgeAligner, {"alpha": 0.1}),
    ]
    rows = []
    for label, cls, params in methods:
        rows.append(
            (
                label,
                len(train),
                lambda c=cls, p=params: c(**p).fit([A[train], B[train]]),
            )
        )
    few = train[:seed_pairs]
    rows.append(
        (
            f"ProcrustesAligner(), {seed_pairs} pairs only",
            seed_pairs,
            lambda: ProcrustesAligner().fit([A[few], B[few]]),
        )
    )
    # Unpaired pools: the training rows of each model, shuffled apart.
    order_a, order_b = rng.permutation(len(train)), rng.permutation(len(train))
    pool_a, pool_b = train[order_a], train[order_b]
    position_a = np.empty(len(train), dtype=np.intp)
    position_b = np.empty(len(train), dtype=np.intp)
    position_a[order_a] = np.arange(len(train))
    position_b[order_b] = np.arange(len(train))
    pairs = np.column_stack([position_a[:seed_pairs], position_b[:seed_pairs]])
    rows.append(
        (
            f"SelfLearningAligner(), {seed_pairs} pairs + unpaired pools",
            seed_pairs,
            # Its rounds draw random pairs: --random-state fixes them too.
            lambda: SelfLearningAligner(random_state=random_state).fit(
                [A[pool_a], B[pool_b]], pairs=pairs
            ),
        )
    )
    return rows


def run_demo(args, progress):
    if args.plot is not None:
        check_output(args.plot, PLOT_SUFFIXES, [], what="the plot", option="--plot")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UserError(
                '--plot needs matplotlib: pip install "skembed[plot]" (or pip install '
                "matplotlib)."
            ) from None
    with blas_threads(3000 * 768):
        return _story(args, progress)


def _story(args, progress):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline

    start = time.perf_counter()
    data = load_fortunes()
    A, B = data.views[args.source], data.views[args.target]
    n = A.shape[0]
    rng = np.random.default_rng(args.random_state)
    order = rng.permutation(n)
    n_test = n // 3
    test, train = order[:n_test], order[n_test:]
    if args.seed_pairs > len(train):
        raise UserError(
            f"--seed-pairs {args.seed_pairs} is more than the {len(train)} training "
            f"pairs of the demo (two thirds of its {n} rows); pass at most "
            f"{len(train)}."
        )
    shuffled = rng.permutation(n)

    print(
        f"skembed demo: {n} real fortune-cookie texts embedded by two models, "
        f"{args.source} ({A.shape[1]}-d) and {args.target} ({B.shape[1]}-d).\n"
    )
    rows = []
    same_width = A.shape[1] == B.shape[1]
    if same_width:
        same = float(paired_cosine(A, B).mean())
        other = float(paired_cosine(A, B[shuffled]).mean())
        rows.append(("cosine, same text (raw)", f"{same:.3f}"))
        rows.append(("cosine, random pair (raw)", f"{other:.3f}"))
        raw = retrieval_accuracy(A[test], B[test])
        rows.append(
            (f"top-1 retrieval {args.source} -> {args.target} (raw)", f"{raw:.3f}")
        )
    rows.append(("chance level of top-1 retrieval", f"{1 / n_test:.4f}"))
    aligner = ProcrustesAligner().fit([A[train], B[train]])
    Z = [aligner.transform_view(A[test], 0), aligner.transform_view(B[test], 1)]
    forward = retrieval_accuracy(Z[0], Z[1])
    backward = retrieval_accuracy(Z[1], Z[0])
    rows.append(
        (
            f"top-1 {args.source} -> {args.target}, ProcrustesAligner "
            f"({len(train)} pairs)",
            f"{forward:.3f}",
        )
    )
    rows.append(
        (f"top-1 {args.target} -> {args.source}, same aligner", f"{backward:.3f}")
    )
    random_partners = rng.permutation(n_test)
    aligned_paired = paired_cosine(Z[0], Z[1])
    aligned_random = paired_cosine(Z[0], Z[1][random_partners])
    rows.append(("cosine, same text (aligned)", f"{aligned_paired.mean():.3f}"))
    rows.append(("cosine, random pair (aligned)", f"{aligned_random.mean():.3f}"))
    print(table(rows, ("held-out comparison", "value")))
    # Each sentence says what the table above measured, no more.
    if not same_width:
        raw_line = (
            f"Raw vectors of the two models cannot be compared at all: they have "
            f"{A.shape[1]} and {B.shape[1]} dimensions."
        )
    elif retrieval_above_chance(raw, n_test):
        raw_line = (
            f"Raw vectors of the same text already find each other (top-1 "
            f"{raw:.3f}): these two models' axes agree in part."
        )
    else:
        raw_line = (
            "Raw vectors of the same text are no closer than random ones: the two "
            "models' axes are not aligned."
        )
    if retrieval_above_chance((forward + backward) / 2, n_test):
        aligned_line = (
            "After an orthogonal map learnt from paired rows, texts find their "
            "partners."
        )
    else:
        aligned_line = (
            "Even after an orthogonal map learnt from paired rows, texts do not "
            "find their partners better than chance."
        )
    print(f"\n{raw_line}\n{aligned_line}\n")

    method_rows = []
    for label, n_pairs, fit in _demo_methods(
        A, B, train, args.seed_pairs, rng, args.random_state
    ):
        with progress.step(f"fitting {label}"):
            fit_start = time.perf_counter()
            fitted = fit()
            fit_seconds = time.perf_counter() - fit_start
        Z_m = [fitted.transform_view(A[test], 0), fitted.transform_view(B[test], 1)]
        method_rows.append(
            (
                label,
                n_pairs,
                f"{retrieval_accuracy(Z_m[0], Z_m[1]):.3f}",
                f"{retrieval_accuracy(Z_m[1], Z_m[0]):.3f}",
                f"{retrieval_accuracy(Z_m[0], Z_m[1], method='csls'):.3f}",
                f"{fit_seconds:.2f}",
            )
        )
    print(
        table(
            method_rows,
            (
                f"aligner (held-out top-1 over {n_test} rows)",
                "known pairs",
                f"{args.source}->{args.target}",
                f"{args.target}->{args.source}",
                "CSLS",
                "fit s",
            ),
        )
    )
    print(
        "\nSearch happens in each aligner's centred shared space; CSLS "
        f"({args.source}->{args.target}) discounts rows that are near everything.\n"
    )

    y = data.target
    X_pair = np.hstack([A, B])
    cls = LogisticRegression(max_iter=1000)
    with progress.step("5-fold classification"):
        scores = [
            (args.source, cross_val_score(cls, A, y, cv=5)),
            (args.target, cross_val_score(cls, B, y, cv=5)),
            (
                "EmbeddingConcatenator (both)",
                cross_val_score(
                    make_pipeline(
                        EmbeddingConcatenator(
                            views=[slice(0, A.shape[1]), slice(A.shape[1], None)]
                        ),
                        LogisticRegression(max_iter=1000),
                    ),
                    X_pair,
                    y,
                    cv=5,
                ),
            ),
        ]
    print(
        table(
            [(name, f"{s.mean():.3f} +/- {s.std():.3f}") for name, s in scores],
            (f"5-fold accuracy, {len(data.target_names)} labels", "accuracy"),
        )
    )
    if args.plot is not None:
        panels = [
            (
                f"after ProcrustesAligner ({len(train)} pairs)",
                aligned_paired,
                aligned_random,
            ),
        ]
        if same_width:
            panels.insert(
                0,
                (
                    f"raw: {args.source} vs {args.target}",
                    paired_cosine(A[test], B[test]),
                    paired_cosine(A[test], B[test][random_partners]),
                ),
            )
        with progress.step(f"drawing {args.plot}"):
            _plot_cosines(Path(args.plot), panels)
        print(f"\nCosine histograms written to {args.plot}")
    print(f"\n(finished in {time.perf_counter() - start:.1f} s)")
    return 0
