"""The command line: ``python -m skembed`` (also installed as ``skembed``).

Subcommands:

- ``demo``: the out-of-space problem and its fixes on the bundled real data;
- ``report A B``: are two row-paired embedding files in the same space?
- ``align A B --method ... -o model.npz``: fit an aligner, check it on
  held-out pairs, save a model file;
- ``translate model.npz A --source NAME --target NAME -o out.npy``.

Exit codes: 0 success; 2 a user error (a missing or malformed file, an
output that cannot be written, an option that does not apply), reported in
one line on stderr, never a traceback; 3 ``align`` wrote a model that is no
better than chance; 130 interrupted; 1 an unexpected error (a bug: please
report it; ``SKEMBED_TRACEBACK=1`` prints the traceback). Every output path
is checked before any work, and outputs are written atomically. The
commands use skembed's public API only.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import contextlib
import errno
import math
import os
import re
import signal
import sys
import textwrap
import threading
import warnings
import zipfile
import zlib

from skembed._cli._commands import run_align, run_report, run_search, run_translate
from skembed._cli._common import (
    EXIT_INTERRUPTED,
    EXIT_NOT_USABLE,
    EXIT_TERMINATED,
    EXIT_USER_ERROR,
    NotUsable,
    Progress,
    Terminated,
    UserError,
    one_line,
)
from skembed._cli._demo import run_demo
from skembed._cli._files import parse_columns, split_member
from skembed._registry import CLI_METHODS, ESTIMATORS

__all__ = ["build_parser", "main"]

EXIT_BUG = 1


def estimator_defaults(name):
    """Constructor defaults of an estimator of the registry, by class name."""
    return ESTIMATORS[name]().get_params()


# ------------------------------------------------------------ option values
def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number >= 1, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed_pairs(text):
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"needs at least 2 pairs, got {value}")
    return value


def _non_negative(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32 - 1], got {value}")
    return value


def _test_size(allow_zero):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(
                f"expected a share in (0, 1) or a number of rows, got {text!r}"
            )
        if 0 < value < 1:
            return value
        if value != int(value):
            raise argparse.ArgumentTypeError(
                f"a share must be strictly between 0 and 1, got {text!r}"
            )
        lowest = 0 if allow_zero else 1
        if value < lowest:
            raise argparse.ArgumentTypeError(
                f"a number of rows must be >= {lowest}, got {text!r}"
            )
        return int(value)

    return parse


def _columns(text):
    try:
        return parse_columns(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _view_name(text):
    if not text.strip():
        raise argparse.ArgumentTypeError("a view name cannot be empty")
    return text


class _Explicit(argparse.Action):
    """Store the value and remember that the option was given."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        given = set(getattr(namespace, "given", ()))
        given.add(self.dest)
        namespace.given = given


# ------------------------------------------------------------------ parser
_FILES = (
    "an embeddings file, one row per item: .npy, .npz (FILE.npz:NAME picks one "
    "array), .parquet (numeric columns and/or columns of vectors) or .csv"
)


# The per-file --columns options of the commands that read A and B.
_TWO_FILES = (("a", "A"), ("b", "B"))


def _add_reading(parser, files):
    """--columns (and per-file variants) and the CSV header options."""
    parser.add_argument(
        "--columns",
        type=_columns,
        action=_Explicit,
        metavar="SPEC",
        help=(
            "the embedding columns of a table: names and FIRST..LAST ranges, "
            "comma-separated (e.g. --columns embedding, --columns e0..e383); "
            "unnamed columns are numbered from 0. Without it every column is "
            "read, and an id, index or other non-embedding column is an error"
        ),
    )
    for which, what in files:
        parser.add_argument(
            f"--columns-{which}",
            type=_columns,
            action=_Explicit,
            metavar="SPEC",
            help=f"like --columns, for {what} only",
        )
    header = parser.add_mutually_exclusive_group()
    header.add_argument(
        "--header",
        dest="header",
        action="store_const",
        const="yes",
        default="auto",
        help=(
            "the first line of every CSV input is a header (needed when it is "
            "0,1,2,... as pandas writes for unnamed columns)"
        ),
    )
    header.add_argument(
        "--no-header",
        dest="header",
        action="store_const",
        const="no",
        help=(
            "the first line of a CSV input is data, even if it is 0,1,2,...; a "
            "first line without any number is still a header. Default: a header "
            "only when it holds no number (or is an index name then 0,1,2,...); "
            "an ambiguous first line is an error"
        ),
    )


def _finish(parser, handler, metavar, help, *, files=()):
    """The -o option, the reading options and the handler of a subcommand;
    ``files``: (name, what) of the inputs that get their own --columns-NAME."""
    parser.add_argument("-o", "--output", required=True, metavar=metavar, help=help)
    _add_reading(parser, files)
    parser.set_defaults(handler=handler)


def _subparser(sub, name, common, *, help, description, examples):
    # The raw formatter keeps the examples' lines; the prose is wrapped here.
    return sub.add_parser(
        name,
        parents=[common],
        help=help,
        description=textwrap.fill(description, 79),
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as every other error."""

    def error(self, message):
        self.exit(
            EXIT_USER_ERROR,
            f"{self.prog}: error: {message} (see `{self.prog} -h`).\n",
        )

    def parse_args(self, args=None, namespace=None):
        args = _quiet_after_command(list(sys.argv[1:] if args is None else args))
        # argparse reports what no parser took from the top-level parser,
        # which points at `skembed -h` for an option of the subcommand's:
        # the subcommand that was running reports it instead.
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(parsed, "command", None)
            parser = getattr(self, "subcommands", {}).get(command, self)
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def _quiet_after_command(argv):
    """``argv`` with a -q/--quiet given before the command moved after it.

    Every command takes -q, so ``skembed -q report A B`` means ``skembed
    report -q A B``; argparse would call it unrecognised.
    """
    command = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), None)
    if command is None:
        return argv
    quiet = [arg for arg in argv[:command] if arg in ("-q", "--quiet")]
    if not quiet:
        return argv
    before = [arg for arg in argv[:command] if arg not in ("-q", "--quiet")]
    return [*before, argv[command], *quiet, *argv[command + 1 :]]


def build_parser():
    """The argument parser of ``python -m skembed``."""
    from skembed import __version__

    parser = _Parser(
        prog="skembed",
        description="Align, combine and compare embeddings from different models.",
        epilog=(
            "exit codes: 0 success, 2 user error (one line on stderr), 3 the\n"
            "aligned map is no better than chance, 130 interrupted, 143\n"
            "terminated (SIGTERM), 1 a bug.\n"
            "examples:\n"
            "  skembed report old.npy new.npy\n"
            "  skembed align old.npy new.npy --names old new -o old_new.npz\n"
            "  skembed translate old_new.npz queries.npy --source new --target old "
            "-o queries_in_old.npy"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"skembed {__version__}",
        help="print the version and exit",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress lines on stderr (errors and warnings still show)",
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", help="run `skembed COMMAND -h` for its help"
    )

    demo = _subparser(
        sub,
        "demo",
        common,
        help="show the out-of-space problem and its fixes on the bundled real data",
        description="The out-of-space problem and its fixes on the bundled data.",
        examples=[
            "skembed demo",
            "skembed demo --source minilm --target wordllama256 --plot cosines.png",
        ],
    )
    models = ["minilm", "e5", "wordllama256"]
    demo.add_argument(
        "--source",
        choices=models,
        default="minilm",
        help="the first model of the bundled data (default minilm)",
    )
    demo.add_argument(
        "--target",
        choices=models,
        default="e5",
        help="the second model, another one (default e5)",
    )
    demo.add_argument(
        "--random-state",
        type=_seed,
        default=0,
        metavar="SEED",
        help="seed of the train/test split and the shuffles (default 0)",
    )
    demo.add_argument(
        "--seed-pairs",
        type=_seed_pairs,
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

    report = _subparser(
        sub,
        "report",
        common,
        help="are two row-paired embedding files in the same space?",
        description=(
            "Compare two embedding files whose rows are paired by position "
            "(row i of A and row i of B embed the same item) and print a verdict: "
            "same space, different spaces but alignable, or not linearly alignable."
        ),
        examples=[
            "skembed report old.npy new.npy",
            "skembed report old.parquet new.parquet --columns embedding --json",
        ],
    )
    report.add_argument("a", metavar="A", help=_FILES)
    report.add_argument("b", metavar="B", help="the second file, row-paired with A")
    report.add_argument(
        "--json", action="store_true", help="print JSON instead of a table"
    )
    report.add_argument(
        "--test-size",
        type=_test_size(allow_zero=False),
        default=0.25,
        metavar="SIZE",
        help=(
            "held-out rows on which retrieval is measured: a share in (0, 1) or "
            "a number of rows (default 0.25)"
        ),
    )
    report.add_argument(
        "--random-state",
        type=_seed,
        default=0,
        metavar="SEED",
        help="seed of the train/test split (default 0)",
    )
    _add_reading(report, _TWO_FILES)
    report.set_defaults(handler=run_report)

    align = _subparser(
        sub,
        "align",
        common,
        help="fit an aligner on two embedding files, check it, save it",
        description=(
            "Fit an aligner between two embedding files and write a portable, "
            "pickle-free model file (.npz) for `skembed translate` or "
            "skembed.load_aligner. Rows are paired by position unless --pairs "
            "gives the known pairs. A share of the pairs (--test-size) is held "
            "out, the map is fitted on the others and judged on them by top-1 "
            "retrieval against chance; closed-form methods are then refitted on "
            "all pairs. Exit code 3 (the model is still written, beside -o as "
            "NAME.not-usable.npz) says the map is no better than chance. "
            "Self-learning without pairs is judged by a label-free score instead."
        ),
        examples=[
            "skembed align old.npy new.npy -o model.npz",
            "skembed align old.npy new.npy --method cca --n-components 64 -o cca.npz",
            "skembed align a.parquet b.parquet --columns embedding --names a b "
            "-o model.npz",
            "skembed align pool_a.npy pool_b.npy --method self-learning "
            "--pairs seeds.csv -o sl.npz",
        ],
    )
    align.add_argument("a", metavar="A", help=_FILES)
    align.add_argument("b", metavar="B", help="the second file")
    align.add_argument(
        "--method",
        choices=list(CLI_METHODS),
        default="procrustes",
        help=(
            "procrustes (rotation onto A), cca (canonical space), ridge "
            "(least squares onto A) or self-learning (unpaired rows, few or no "
            "known pairs); default procrustes"
        ),
    )
    align.add_argument(
        "--pairs",
        metavar="FILE",
        help=(
            "known pairs: a file with two integer columns (row in A, row in B), "
            "e.g. pairs.csv with lines like 0,17. For closed-form methods only "
            "these rows are used; for self-learning they are the seed pairs and "
            "all rows are unpaired pools"
        ),
    )
    align.add_argument(
        "--names",
        nargs=2,
        type=_view_name,
        action=_Explicit,
        metavar=("NAME_A", "NAME_B"),
        help=(
            "two different view names stored in the model, e.g. --names old new "
            "(default: the file names' stems; not with self-learning, whose "
            "views are view0 and view1)"
        ),
    )
    # Defaults come from the estimators themselves, so that the command line
    # and the Python API cannot disagree.
    cca_defaults = estimator_defaults("CCAAligner")
    ridge_defaults = estimator_defaults("RidgeAligner")
    align.add_argument(
        "--n-components",
        type=_positive_int,
        action=_Explicit,
        default=cca_defaults["n_components"],
        metavar="K",
        help="cca only: shared dimensions, e.g. 64 (default: all the data allow)",
    )
    align.add_argument(
        "--reg",
        type=_non_negative,
        action=_Explicit,
        default=cca_defaults["reg"],
        metavar="R",
        help=f"cca only: regularisation >= 0 (default {cca_defaults['reg']})",
    )
    align.add_argument(
        "--alpha",
        type=_non_negative,
        action=_Explicit,
        default=ridge_defaults["alpha"],
        metavar="ALPHA",
        help=f"ridge only: penalty >= 0 (default {ridge_defaults['alpha']})",
    )
    align.add_argument(
        "--test-size",
        type=_test_size(allow_zero=True),
        action=_Explicit,
        default=0.25,
        metavar="SIZE",
        help=(
            "pairs held out to check the map: a share in (0, 1) or a number of "
            "pairs, at least 10 (default 0.25); 0 skips the check"
        ),
    )
    align.add_argument(
        "--random-state",
        type=_seed,
        default=0,
        metavar="SEED",
        help="seed of the held-out split and of self-learning (default 0)",
    )
    align.add_argument(
        "--no-statistics",
        action="store_true",
        help=(
            "leave out the statistics that partial_fit continues from: a "
            "smaller model file that transforms alike"
        ),
    )
    _finish(
        align,
        run_align,
        "MODEL.npz",
        "the model file to write (.npz; its folder must exist)",
        files=_TWO_FILES,
    )

    translate = _subparser(
        sub,
        "translate",
        common,
        help="map embeddings from one model's space into another's",
        description=(
            "Translate rows embedded by the source model into the target model's "
            "space with a model file written by `skembed align`. The output keeps "
            "the input's row order. A float .npy input of the source view's width, "
            "written to .npy or .parquet, is streamed: read and written in chunks "
            "whatever its size, so memory stays flat."
        ),
        examples=[
            "skembed translate model.npz queries.npy --source new --target old "
            "-o out.npy",
            "skembed translate model.npz docs.parquet --columns embedding "
            "--source 1 --target 0 -o out.parquet",
        ],
    )
    translate.add_argument(
        "model", metavar="MODEL.npz", help="a model file written by skembed align"
    )
    translate.add_argument("input", metavar="A", help=_FILES)
    translate.add_argument(
        "--source",
        required=True,
        metavar="NAME",
        help="the view (name or index) whose model embedded the input",
    )
    translate.add_argument(
        "--target",
        required=True,
        metavar="NAME",
        help="the view (name or index) to translate into",
    )
    _finish(
        translate,
        run_translate,
        "OUT",
        "the file to write: .npy, .csv or .parquet (one fixed-size list column "
        "'embedding'); its folder must exist",
    )

    search = _subparser(
        sub,
        "search",
        common,
        help="search an old model's index with a new model's queries",
        description=(
            "Translate queries embedded by the source model into the target "
            "model's space with a model file written by `skembed align`, and "
            "search an index of the target model's embeddings with them: the old "
            "index is used as it is, without re-embedding it. Writes the row "
            "numbers of the k best index rows of every query, best first (and "
            "their scores with --scores). With --method csls the hubness "
            "penalties of the index rows are estimated from the translated "
            "queries themselves, so search a representative batch of queries "
            "(a few hundred or more) at once. With --translated-index, the same "
            "index translated into the source model's space is searched too, "
            "with the queries as they are, and every row ranked by the sum of "
            "its two scores."
        ),
        examples=[
            "skembed search model.npz queries.npy index.npy --source new "
            "--target old -k 10 -o neighbors.npy",
            "skembed search model.npz queries.npy index.npy --source new "
            "--target old --method csls --center separate --scores scores.npy "
            "-o neighbors.csv",
            "skembed search model.npz queries.npy index.npy --source new "
            "--target old --translated-index index_new.npy -o neighbors.npy",
        ],
    )
    search.add_argument(
        "model", metavar="MODEL.npz", help="a model file written by skembed align"
    )
    search.add_argument(
        "queries", metavar="QUERIES", help="the queries, embedded by --source"
    )
    search.add_argument(
        "index", metavar="INDEX", help="the index rows, embedded by --target"
    )
    search.add_argument(
        "--source",
        required=True,
        metavar="NAME",
        help="the view (name or index) whose model embedded the queries",
    )
    search.add_argument(
        "--target",
        required=True,
        metavar="NAME",
        help="the view (name or index) whose model embedded the index",
    )
    search.add_argument(
        "-k",
        type=_positive_int,
        default=10,
        metavar="K",
        help="index rows returned per query (default 10)",
    )
    search.add_argument(
        "--method",
        choices=["nn", "csls"],
        default="nn",
        help=(
            "rank index rows by cosine (nn, the default) or by CSLS, which "
            "discounts rows near every query"
        ),
    )
    search.add_argument(
        "--csls-k",
        type=_positive_int,
        action=_Explicit,
        default=10,
        metavar="K",
        help="neighbourhood size of the CSLS penalties (default 10)",
    )
    search.add_argument(
        "--center",
        choices=["none", "index", "separate"],
        default="none",
        help=(
            "which mean to subtract before the cosines: none (the default); "
            "index, the index rows' mean from index rows and queries; separate, "
            "the index rows' mean from them and the translated queries' own "
            "mean from the queries"
        ),
    )
    search.add_argument(
        "--backend",
        choices=["numpy", "faiss-flat", "faiss-hnsw"],
        default="numpy",
        help=(
            "exact search (numpy, the default; faiss-flat) or approximate "
            '(faiss-hnsw); the FAISS backends need pip install "skembed[faiss]"'
        ),
    )
    search.add_argument(
        "--translated-index",
        metavar="FILE",
        help=(
            "the same index rows translated into the source model's space (by "
            "`skembed translate`, in the same order): searched as well, with the "
            "queries as they are, and each row ranked by the sum of its two "
            "scores, which often finds more than either search alone"
        ),
    )
    search.add_argument(
        "--scores",
        metavar="FILE",
        help="also write the score of every returned row (.npy or .csv)",
    )
    _finish(
        search,
        run_search,
        "OUT",
        "the file of row numbers to write: .npy (int64) or .csv, one row per "
        "query; its folder must exist",
        files=(
            ("queries", "the queries"),
            ("index", "the index"),
            ("translated-index", "the translated index"),
        ),
    )
    parser.commands = tuple(sub.choices)
    parser.subcommands = dict(sub.choices)
    return parser


# -------------------------------------------------------------- validation
def _csv_inputs(args):
    inputs = ("a", "b", "input", "pairs", "queries", "index", "translated_index")
    names = [getattr(args, key, None) for key in inputs]
    return [
        name
        for name in names
        if name is not None and split_member(name)[0].suffix.lower() == ".csv"
    ]


def _check_options(args):
    """Options that do not apply to this run are errors, before any work."""
    given = getattr(args, "given", set())
    if args.command == "demo":
        if args.source == args.target:
            raise UserError("--source and --target must name two different models.")
        return
    if "columns" in given and ({"columns_a", "columns_b"} & given):
        raise UserError(
            "--columns applies to both files; with --columns-a/--columns-b, give "
            "each file its own instead."
        )
    own = sorted(name for name in given if name.startswith("columns_"))
    if "columns" in given and own:
        flags = ", ".join("--" + name.replace("_", "-") for name in own)
        raise UserError(
            f"--columns applies to every input; with {flags}, give each input "
            "its own instead."
        )
    if "columns_translated_index" in given and not getattr(
        args, "translated_index", None
    ):
        raise UserError(
            "--columns-translated-index applies with --translated-index only."
        )
    if args.header != "auto" and not _csv_inputs(args):
        option = "--header" if args.header == "yes" else "--no-header"
        raise UserError(f"{option} applies to .csv inputs, and this run has none.")
    if args.command == "search" and "csls_k" in given and args.method != "csls":
        raise UserError("--csls-k applies to --method csls only, not to nn.")
    if args.command != "align":
        return
    for option, method in (
        ("n_components", "cca"),
        ("reg", "cca"),
        ("alpha", "ridge"),
    ):
        if option in given and args.method != method:
            flag = "--" + option.replace("_", "-")
            raise UserError(
                f"{flag} applies to --method {method} only, not to {args.method}."
            )
    if args.names is not None:
        if args.method == "self-learning":
            raise UserError(
                "--names is not available with --method self-learning: its views "
                "are called view0 (A) and view1 (B)."
            )
        if args.names[0] == args.names[1]:
            raise UserError(
                f"--names gives {args.names[0]!r} twice; the two views need "
                "different names."
            )
    if args.method == "self-learning" and args.pairs is None and "test_size" in given:
        raise UserError(
            "--test-size does not apply to self-learning without --pairs: there "
            "are no known pairs to hold out (a label-free score judges the fit)."
        )


# -------------------------------------------------------------------- main
def _report_warnings(caught, command, subparser):
    """skembed's warnings as one line each; numpy's RuntimeWarnings are dropped.

    A RuntimeWarning (overflow, invalid value) from an intermediate step says
    nothing the checks on the results do not; the library's own warnings
    (convergence, unsupervised start) are advice the user should see.
    """
    seen = set()
    for warning in caught:
        if issubclass(warning.category, RuntimeWarning):
            continue
        text = _in_command_terms(one_line(warning.message), subparser)
        if text in seen:
            continue
        seen.add(text)
        print(f"skembed {command}: warning: {text}", file=sys.stderr)


# The library's advice that names Python calls, as the command line says it:
# (library's words, the command's words, the option they name, the words
# for a command without that option, such as demo).
_COMMAND_TERMS = (
    ("fit(X, pairs=...)", "--pairs", "--pairs", "known pairs"),
    (", or a map fitted for the same two models as init", "", None, ""),
    (
        "pairs=None for the unsupervised start",
        "no --pairs for the unsupervised start",
        "--pairs",
        "no known pairs for the unsupervised start",
    ),
    # EmbeddingIndex's center, which search spells --center none/index/separate.
    ("center=False", "--center none", "--center", "center=False"),
    ("center=True", "--center index", "--center", "center=True"),
    ('center="separate"', "--center separate", "--center", 'center="separate"'),
    ("center='separate'", "--center separate", "--center", "center='separate'"),
    (
        "check it on known pairs left out of fit",
        "check it on held-out pairs (--test-size)",
        "--test-size",
        "check it on held-out pairs",
    ),
)


# The library functions a command calls, whose messages name them
# ("compare_spaces needs at least 10 held-out ... rows"): the command line
# names the command the user ran instead.
_LIBRARY_CALLS = ("compare_spaces",)


def _flags(subparser):
    return {
        option
        for action in subparser._actions
        for option in action.option_strings
        if option.startswith("--")
    }


def _in_command_terms(message, subparser):
    """``message`` with the library's calls replaced by the command's options,
    where the command has them, and the library's functions by the command."""
    flags = _flags(subparser)
    for library, command, option, otherwise in _COMMAND_TERMS:
        words = command if option is None or option in flags else otherwise
        message = message.replace(library, words)
    command = subparser.prog.split()[-1]
    for name in _LIBRARY_CALLS:
        # Not a qualified name (skembed.metrics.compare_spaces), which is
        # advice to call it from Python.
        message = re.sub(rf"(?<![\w.]){name}(?!\w)", command, message)
    return message


def _as_flags(message, subparser):
    """``message`` with the library's parameter names spelled as the command's
    options where the command has them: ``name=value`` as ``--name value``
    (test_size=20 -> --test-size 20), and a bare ``name_with_underscores``,
    or a ``name`` compared with a number, as ``--name`` ("change test_size",
    "set n_components <= 149", "Set reg > 0")."""
    flags = _flags(subparser)

    def option_of(name):
        option = "--" + name.replace("_", "-")
        return option if option in flags else None

    def assigned(match):
        option = option_of(match.group(1))
        return f"{option} " if option else match.group(0)

    def named(match):
        return option_of(match.group(1)) or match.group(0)

    message = re.sub(r"(?<![\w.-])([a-z][a-z0-9_]*)=(?=[^=\s])", assigned, message)
    message = re.sub(
        r"(?<![\w.\-'\"])([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![\w(=\-'\"])",
        named,
        message,
    )
    return re.sub(r"(?<![\w.\-'\"])([a-z][a-z0-9]*)(?= [<>]=? -?[0-9])", named, message)


def _message(exc):
    """The one-line message of an exception the command line can meet."""
    if isinstance(exc, UserError):
        return one_line(exc)
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename}: file not found."
    if isinstance(exc, PermissionError):
        return f"{exc.filename}: permission denied."
    if isinstance(exc, MemoryError):
        return f"not enough memory for this input ({one_line(exc)})."
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to be read."
    if isinstance(exc, zipfile.BadZipFile | zlib.error | EOFError):
        return f"a file is damaged ({type(exc).__name__}: {one_line(exc)})."
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or one_line(exc)}.{_OS_ADVICE.get(exc.errno, '')}"
    return one_line(exc)


# The fix for the system's errors that name no fix themselves.
_OS_ADVICE = {
    errno.ENAMETOOLONG: (
        " Choose a shorter name: most file systems allow 255 bytes per name."
    ),
}


class _PipeTolerantStream:
    """A stream that drops what it is given once its reader has gone.

    ``skembed align ... | head -1`` closes the pipe before the command ends;
    a write then raised BrokenPipeError, reported as "Broken pipe." with exit
    2, which hid the command's own result (exit 3 for a map not worth using,
    written after its summary). Writes after that are dropped, and the
    descriptor is pointed at the null device, so that the interpreter's
    final flush finds no pipe either.
    """

    def __init__(self, stream):
        self._stream = stream
        # Python sets sys.stderr (or sys.stdout) to None when its descriptor
        # was closed at start (``2>&-``, some daemons): nobody reads it.
        self._gone = stream is None

    def write(self, text):
        if not self._gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self):
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self):
        self._gone = True
        with contextlib.suppress(AttributeError, OSError, ValueError):
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, self._stream.fileno())
            finally:
                os.close(null)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv=None):
    """Run the command line; returns the exit code."""
    # stderr too: its reader (``2>&1 | head``, a log viewer) can go while the
    # command runs, and a progress line then ended the run with exit 1 and
    # no output written.
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = _PipeTolerantStream(stdout)
    sys.stderr = _PipeTolerantStream(stderr)
    try:
        with _sigterm_as_interrupt():
            try:
                return _main(argv)
            except Terminated:
                # After the command's own handler (while warnings or the
                # last message are printed), not reported by _main itself.
                print("skembed: error: terminated", file=sys.stderr)
                return EXIT_TERMINATED
    finally:
        sys.stdout, sys.stderr = stdout, stderr


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises :class:`Terminated` while a command runs (main thread only,
    where Python delivers signals), and the previous handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a malformed command line
        return exc.code if isinstance(exc.code, int) else EXIT_USER_ERROR
    if getattr(args, "handler", None) is None:
        commands = ", ".join(parser.commands)
        print(
            f"skembed: error: name a command: {commands} (see `skembed -h`).",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    progress = Progress(args.quiet)
    code, message, kind = EXIT_USER_ERROR, None, "error"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _check_options(args)
            code = args.handler(args, progress)
        except NotUsable as exc:
            code, message, kind = EXIT_NOT_USABLE, one_line(exc), "not usable"
        except Terminated:
            code, message = EXIT_TERMINATED, "terminated"
        except KeyboardInterrupt:
            code, message = EXIT_INTERRUPTED, "interrupted"
        except (
            UserError,
            OSError,
            ValueError,
            TypeError,
            MemoryError,
            RecursionError,
            OverflowError,
            EOFError,
            zipfile.BadZipFile,
            zlib.error,
        ) as exc:
            message = _message(exc)
            if not isinstance(exc, UserError):
                # The library's errors name its parameters; say the flags.
                subparser = parser.subcommands[args.command]
                message = _as_flags(_in_command_terms(message, subparser), subparser)
        except Exception as exc:
            if os.environ.get("SKEMBED_TRACEBACK"):
                raise
            code = EXIT_BUG
            message = (
                f"unexpected {type(exc).__name__}: {one_line(exc)} (a bug in "
                "skembed; please report it with the command; SKEMBED_TRACEBACK=1 "
                "shows the traceback)"
            )
    _report_warnings(caught, args.command, parser.subcommands[args.command])
    if message is not None:
        print(f"skembed {args.command}: {kind}: {message}", file=sys.stderr)
    return code
