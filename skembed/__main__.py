"""Command line: ``python -m skembed`` (also installed as ``skembed``)."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import sys
import time

import numpy as np

__all__ = ["main"]


def _table(rows, header):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = [
        "  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)),
        line,
    ]
    for row in rows:
        out.append(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(out)


def _demo(args):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline

    from skembed import EmbeddingConcatenator, ProcrustesAligner
    from skembed.datasets import load_fortunes
    from skembed.metrics import paired_cosine, retrieval_accuracy

    start = time.perf_counter()
    data = load_fortunes()
    A, B = data.views[args.source], data.views[args.target]
    n = A.shape[0]
    rng = np.random.default_rng(args.random_state)
    order = rng.permutation(n)
    n_test = n // 3
    test, train = order[:n_test], order[n_test:]
    shuffled = rng.permutation(n)

    print(
        f"skembed demo: {n} real fortune-cookie texts embedded by two models, "
        f"{args.source} ({A.shape[1]}-d) and {args.target} ({B.shape[1]}-d).\n"
    )
    rows = []
    if A.shape[1] == B.shape[1]:
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
    Z = aligner._transform_views([A[test], B[test]])
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
    aligned_same = float(paired_cosine(Z[0], Z[1]).mean())
    aligned_other = float(paired_cosine(Z[0], Z[1][rng.permutation(n_test)]).mean())
    rows.append(("cosine, same text (aligned)", f"{aligned_same:.3f}"))
    rows.append(("cosine, random pair (aligned)", f"{aligned_other:.3f}"))
    print(_table(rows, ("held-out comparison", "value")))
    print(
        "\nRaw vectors of the same text are no closer than random ones: the two "
        "models' axes are not aligned.\nAfter an orthogonal map learnt from paired "
        "rows, each text finds its partner.\n"
    )

    y = data.target
    X_pair = np.hstack([A, B])
    cls = LogisticRegression(max_iter=1000)
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
        _table(
            [(name, f"{s.mean():.3f} +/- {s.std():.3f}") for name, s in scores],
            (f"5-fold accuracy, {len(data.target_names)} labels", "accuracy"),
        )
    )
    print(f"\n(finished in {time.perf_counter() - start:.1f} s)")
    return 0


def build_parser():
    """The argument parser of ``python -m skembed``."""
    parser = argparse.ArgumentParser(
        prog="skembed",
        description="Align, combine and compare embeddings from different models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="show the out-of-space problem and its fix on the bundled real data",
    )
    models = ["minilm", "e5", "wordllama256"]
    demo.add_argument("--source", choices=models, default="minilm")
    demo.add_argument("--target", choices=models, default="e5")
    demo.add_argument("--random-state", type=int, default=0)
    demo.set_defaults(handler=_demo)
    return parser


def main(argv=None):
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return 2
    if getattr(args, "source", None) is not None and args.source == args.target:
        parser.error("--source and --target must name two different models")
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
