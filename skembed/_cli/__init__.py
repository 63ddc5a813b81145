"""The command line: ``python -m skembed`` (also installed as ``skembed``).

Subcommands:

- ``demo``: the out-of-space problem and its fixes on the bundled real data;
- ``report A B``: are two row-paired embedding files in the same space?
- ``align A B --method ... -o model.npz``: fit an aligner, save a model file;
- ``translate model.npz A --source NAME --target NAME -o out.npy``.

User errors (a missing or malformed file, unequal row counts, an unknown view)
end with exit code 2 and a one-line message on stderr, never a traceback.
``align --method self-learning`` without ``--pairs`` ends with exit code 1 and
writes no model when the map's label-free confidence is below 0.5.
The commands use skembed's public API only.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import sys

from skembed._cli._commands import run_align, run_report, run_translate
from skembed._cli._common import Progress, UserError, one_line
from skembed._cli._demo import run_demo
from skembed._registry import CLI_METHODS, ESTIMATORS

__all__ = ["build_parser", "main"]


def estimator_defaults(name):
    """Constructor defaults of an estimator of the registry, by class name."""
    return ESTIMATORS[name]().get_params()


def build_parser():
    """The argument parser of ``python -m skembed``."""
    from skembed import __version__

    parser = argparse.ArgumentParser(
        prog="skembed",
        description="Align, combine and compare embeddings from different models.",
    )
    parser.add_argument("--version", action="version", version=f"skembed {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-q", "--quiet", action="store_true", help="no progress messages on stderr"
    )
    files = (
        "an embeddings file: .npy, .npz (FILE.npz:NAME picks one array), .parquet "
        "or .csv; one row per item"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="show the out-of-space problem and its fixes on the bundled real data",
        description="The out-of-space problem and its fixes on the bundled data.",
    )
    models = ["minilm", "e5", "wordllama256"]
    demo.add_argument("--source", choices=models, default="minilm")
    demo.add_argument("--target", choices=models, default="e5")
    demo.add_argument("--random-state", type=int, default=0)
    demo.add_argument(
        "--seed-pairs",
        type=int,
        default=50,
        metavar="N",
        help="known pairs for the few-pairs rows of the method table (default 50)",
    )
    demo.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw cosine histograms before/after alignment (needs matplotlib)",
    )
    demo.set_defaults(handler=run_demo)

    report = sub.add_parser(
        "report",
        parents=[common],
        help="are two row-paired embedding files in the same space?",
        description=(
            "Compare two embedding files whose rows are paired by position "
            "(row i of A and row i of B embed the same item) and print a verdict: "
            "same space, different spaces but alignable, or not linearly alignable."
        ),
    )
    report.add_argument("a", metavar="A", help=files)
    report.add_argument("b", metavar="B", help="the second file, row-paired with A")
    report.add_argument("--json", action="store_true", help="print JSON instead")
    report.add_argument(
        "--test-size",
        type=float,
        default=0.25,
        help="held-out share of the rows (default 0.25)",
    )
    report.add_argument("--random-state", type=int, default=0)
    report.set_defaults(handler=run_report)

    align = sub.add_parser(
        "align",
        parents=[common],
        help="fit an aligner on two embedding files and save it",
        description=(
            "Fit an aligner between two embedding files and write a portable, "
            "pickle-free model file (.npz) for `skembed translate` or "
            "skembed.load_aligner. Rows are paired by position unless --pairs "
            "gives the known pairs."
        ),
    )
    align.add_argument("a", metavar="A", help=files)
    align.add_argument("b", metavar="B", help="the second file")
    align.add_argument("--method", choices=list(CLI_METHODS), default="procrustes")
    align.add_argument(
        "--pairs",
        metavar="FILE",
        help=(
            "known pairs: a file with two integer columns (row in A, row in B); "
            "other rows are unpaired (used by self-learning)"
        ),
    )
    align.add_argument(
        "--names",
        nargs=2,
        metavar=("NAME_A", "NAME_B"),
        help=(
            "view names stored in the model (default: the file names' stems; "
            "self-learning models call them view0 and view1)"
        ),
    )
    # Defaults come from the estimators themselves, so that the command line
    # and the Python API cannot disagree.
    cca_defaults = estimator_defaults("CCAAligner")
    ridge_defaults = estimator_defaults("RidgeAligner")
    align.add_argument(
        "--n-components",
        type=int,
        default=cca_defaults["n_components"],
        help="cca: shared dimensions (default: all that the data allow)",
    )
    align.add_argument(
        "--reg",
        type=float,
        default=cca_defaults["reg"],
        help=f"cca: regularisation (default {cca_defaults['reg']})",
    )
    align.add_argument(
        "--alpha",
        type=float,
        default=ridge_defaults["alpha"],
        help=f"ridge: penalty (default {ridge_defaults['alpha']})",
    )
    align.add_argument("-o", "--output", required=True, metavar="MODEL.npz")
    align.set_defaults(handler=run_align)

    translate = sub.add_parser(
        "translate",
        parents=[common],
        help="map embeddings from one model's space into another's",
        description=(
            "Translate rows embedded by the source model into the target model's "
            "space with a model file written by `skembed align`."
        ),
    )
    translate.add_argument("model", metavar="MODEL.npz")
    translate.add_argument("input", metavar="A", help=files)
    translate.add_argument("--source", required=True, metavar="NAME")
    translate.add_argument("--target", required=True, metavar="NAME")
    translate.add_argument("-o", "--output", required=True, metavar="OUT.npy")
    translate.set_defaults(handler=run_translate)
    return parser


def main(argv=None):
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "demo" and args.source == args.target:
        parser.error("--source and --target must name two different models")
    progress = Progress(args.quiet)
    try:
        return args.handler(args, progress)
    except UserError as exc:
        message = one_line(exc)
    except FileNotFoundError as exc:
        message = f"{exc.filename}: file not found."
    except (ValueError, OSError) as exc:
        message = one_line(exc)
    except KeyboardInterrupt:
        print("skembed: interrupted", file=sys.stderr)
        return 130
    print(f"skembed {args.command}: error: {message}", file=sys.stderr)
    return 2
