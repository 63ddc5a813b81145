"""``skembed report``, ``align`` and ``translate``."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import dataclasses
import functools
import json
import math
import os
import re
import shlex
import sys
from pathlib import Path

import numpy as np

from skembed._atomic import within_name_limit
from skembed._cli._common import (
    EXIT_OK,
    NotUsable,
    UserError,
    blas_threads,
    one_line,
)
from skembed._cli._files import (
    MODEL_SUFFIXES,
    OUTPUT_SUFFIXES,
    array_writer,
    check_input_file,
    check_output,
    check_paired,
    check_stream_columns,
    input_at,
    read_embeddings,
    read_pairs,
    split_member,
    write_array,
    write_error,
    write_together,
)
from skembed._cli._quality import fit_quality
from skembed._index import EmbeddingIndex, fused_kneighbors
from skembed._io import load_aligner, save_aligner
from skembed._neighbors import first_pair_copies
from skembed._registry import CLI_METHODS
from skembed._selflearn import WarningTerms, unsettled_text, untrusted_text
from skembed._stats import MagnitudeError
from skembed._stream import translate_file
from skembed._verbose import listening
from skembed._warnings import held_warnings, issue_again
from skembed.exceptions import (
    ConstantViewWarning,
    SelfLearningConvergenceWarning,
    UnsupervisedAlignmentWarning,
)
from skembed.metrics import compare_spaces
from skembed.metrics._verdict import (
    MODEST_ADVICE,
    NOT_ALIGNABLE_ADVICE,
    ConstantInputError,
    alignable_advice,
    constant_input_text,
    constant_rows,
)

__all__ = ["run_align", "run_report", "run_search", "run_translate"]

# The held-out check needs at least this many held-out pairs, and the fit two.
MIN_HELD_OUT = 10
# Rows translated per chunk: about this many bytes of input and output.
_TRANSLATE_CHUNK_BYTES = 32 * 2**20


def _columns(args, which):
    """The --columns items for input ``which`` ("a", "index", ... or None)."""
    specific = (
        getattr(args, f"columns_{which.replace('-', '_')}", None) if which else None
    )
    return specific if specific is not None else args.columns


# The inputs of a command that have a --columns-WHICH option of their own.
_OWN_COLUMNS = {
    "a": ("a", "b"),
    "b": ("a", "b"),
    "queries": ("queries", "index", "translated-index"),
    "index": ("queries", "index", "translated-index"),
    "translated-index": ("queries", "index", "translated-index"),
}


def _read(progress, text, label, args, which=None):
    """Read one input; messages advise its own --columns-WHICH, where the
    inputs of the command may well differ in layout (a table with an id
    column beside a plain .npy)."""
    option = f"--columns-{which}" if which else "--columns"
    shared = None
    if which and _columns(args, which) is args.columns and args.columns is not None:
        # --columns applies to every input; say which options do not.
        shared = ", ".join(f"--columns-{other}" for other in _OWN_COLUMNS[which])
    with progress.step(f"reading {text}") as step:
        return read_embeddings(
            text,
            label=label,
            columns=_columns(args, which),
            header=args.header,
            step=step,
            option=option,
            own_options=shared,
        )


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    return value


def _check_two_inputs(args, command):
    """Refuse A and B that are one input: the same file, member and columns.

    align wrote an identity map and suggested translating with it; report
    called the file one space with itself. Two members of one .npz, or two
    column sets of one table, are two inputs.
    """
    (path_a, member_a), (path_b, member_b) = split_member(args.a), split_member(args.b)
    if member_a != member_b or _columns(args, "a") != _columns(args, "b"):
        return
    if input_at(path_b, [os.fspath(path_a)]) is not None:
        raise UserError(
            f"A and B are the same input ({args.a}): {command} needs the "
            "embeddings of two models (two files, two .npz members, or two "
            "column sets of one table with --columns-a and --columns-b)."
        )


def _same_values_of_one_file(first, second, A, B):
    """Whether A and B, read from inputs ``first`` and ``second``, are the
    same values of one file.

    Two selections of one input can name the same columns in different
    words (``--columns-a 0..383`` against none, a one-array .npz with and
    without its member's name), which _check_two_inputs cannot see.
    """
    path_a, path_b = split_member(first)[0], split_member(second)[0]
    if input_at(path_b, [os.fspath(path_a)]) is None:
        return False
    return A.shape == B.shape and np.array_equal(A, B)


def _check_two_arrays(args, command, A, B):
    """Refuse A and B read from one file as the same values."""
    if _same_values_of_one_file(args.a, args.b, A, B):
        raise UserError(
            f"A ({args.a}) and B ({args.b}) are the same values of one file: "
            f"{command} needs the embeddings of two models (two files, two .npz "
            "members, or two column sets of one table with --columns-a and "
            "--columns-b)."
        )


def _moments_out_of_range(X):
    """Whether the column sums of squares of ``X`` about its mean leave
    float64's range as the library's moments refuse them: beyond its largest
    value, or (the largest variance) below 2**-970, where a subnormal keeps
    only a few digits.

    ``X`` is finite (the reader refused the rest). The rows are brought near
    unit scale by a power of two, which ``ldexp`` applies exactly, so the
    sums are computed in range and compared in log2 units.
    """
    # In chunks: a float64 copy of the whole input could take more memory
    # than the input itself.
    n, step = X.shape[0], 1 << 14
    starts = range(0, n, step)
    peak = max(float(np.max(np.abs(X[i : i + step]), initial=0.0)) for i in starts)
    if peak == 0:
        return False
    exponent = int(np.frexp(peak)[1])

    def chunks():
        for i in starts:
            yield np.ldexp(X[i : i + step].astype(np.float64), -exponent)

    mean = sum(chunk.sum(axis=0) for chunk in chunks()) / n
    squares = sum(((chunk - mean) ** 2).sum(axis=0) for chunk in chunks())
    largest = float(np.max(squares))
    if largest == 0:
        return False
    log2 = math.log2(largest) + 2 * exponent
    return log2 >= 1024 or log2 - math.log2(n) < -970


@contextlib.contextmanager
def _naming_out_of_range(inputs):
    """Name the input whose magnitude the library refuses.

    The library's message says the embeddings' second moments leave float64,
    not which of the command's files holds them. ``inputs`` holds (name,
    file, array) of each input.
    """
    try:
        yield
    except MagnitudeError:
        named = [
            f"{name} ({text})" for name, text, X in inputs if _moments_out_of_range(X)
        ]
        if not named:
            raise
        one = len(named) == 1
        raise UserError(
            f"{' and '.join(named)} {'holds' if one else 'hold'} values of a "
            "magnitude that puts their second moments outside the range of "
            "float64 (entries far below 1e-150 or above 1e150); rescale "
            f"{'it' if one else 'them'}, for example to unit-length rows."
        ) from None


def _constant_views_named(warning, views):
    """The library's warning of constant views, ``warning``, naming the
    inputs of ``views`` ((view name, input name, file) of each); None for
    another warning."""
    if not isinstance(warning, ConstantViewWarning):
        return None
    subset = [k for k in range(len(views)) if views[k][0] in warning.views]
    if subset:
        inputs = " and ".join(f"{views[k][1]} ({views[k][2]})" for k in subset)
        checked = " and ".join(views[k][1] for k in subset)
        one = len(subset) == 1
        return (
            f"{inputs} {'is' if one else 'are'} constant over the training rows "
            f"(no variance about {'its' if one else 'their'} mean): every row of "
            f"{'it' if one else 'them'} maps to one point, so retrieval between A "
            f"and B will be at chance. Check that {checked} "
            f"{'holds' if one else 'hold'} the embeddings."
        )
    return None


# What skembed align's options cannot do, said where the self-learning fit
# advises a parameter the command line does not have.
_NO_MORE_ROUNDS = (
    "; the map of the last round is kept, and judged as any other in the "
    "Quality line. skembed align sets no number of rounds; in Python, "
    "skembed.SelfLearningAligner's n_iter does."
)

# The self-learning fit's findings in the words of skembed align, which
# names no class, attribute or parameter of the library.
_SELF_LEARNING_TERMS = WarningTerms(
    who="self-learning",
    confidence="label-free confidence {:.3f}",
    # The agreement is given in words just before: "agree on 45% of their
    # pairs".
    agreement="",
    isomorphism="isomorphism score {:.3f}",
    first_pool_small="the pool of A is too small beside that of B",
    larger_first="give the larger file as A, or files of similar sizes",
    known_pairs="Pass a few dozen known pairs with --pairs",
    warm_start="",
    rounds="{} rounds",
    tol="the tolerance {}",
    more_rounds=_NO_MORE_ROUNDS,
)


def _self_learning_in_command_terms(warning, *, paired_rows):
    """The self-learning fit's warning ``warning`` in the terms of skembed
    align; None for another warning.

    The words come from the warning's fields, not its text. The library
    advises known pairs (align's --pairs) or a fitted map as its ``init``,
    which align cannot pass; ``paired_rows`` (A and B have as many rows, and
    no --pairs was given) adds what align can do instead when the rows are
    paired by position: fit them as pairs with a closed-form method.
    """
    if isinstance(warning, SelfLearningConvergenceWarning):
        if warning.stage is None:
            return None
        return unsettled_text(_SELF_LEARNING_TERMS, **warning._fields())
    if not isinstance(warning, UnsupervisedAlignmentWarning) or warning.reason is None:
        return None
    terms = _SELF_LEARNING_TERMS
    if paired_rows:
        terms = dataclasses.replace(
            terms,
            known_pairs=terms.known_pairs
            + (
                ", or, if row i of A and row i of B embed the same item, align "
                "them as pairs: leave out --method self-learning"
            ),
        )
    return untrusted_text(terms, **warning._fields())


@contextlib.contextmanager
def _reworded_warnings(*rewordings):
    """Give the warnings of the block again, in the command's words.

    Each of ``rewordings`` takes a warning (the Warning instance, whose
    class and attributes it may read) and returns its new text, or None for
    a warning it does not reword; the first that rewords a warning wins.
    The warnings are given again when the block ends, reworded or not, for
    the command to report.
    """
    caught = []
    try:
        with held_warnings() as caught:
            yield
    finally:

        def reworded(message):
            texts = (reword(message) for reword in rewordings)
            return next((text for text in texts if text is not None), None)

        issue_again(caught, reworded)


def _constant_input(name, path, n_rows):
    """The error for input ``name``, read from ``path``, whose ``n_rows``
    training rows are all one vector, up to rounding."""
    return UserError(constant_input_text(name, n_rows, path))


def run_report(args, progress):
    # Both files first: a missing B found after A was read came after its
    # progress lines, and the error was not the only line.
    _check_inputs_exist(args.a, args.b)
    _check_two_inputs(args, "report")
    A = _read(progress, args.a, "A", args, "a")
    B = _read(progress, args.b, "B", args, "b")
    _check_two_arrays(args, "report", A, B)
    check_paired(A, B, f"A ({args.a})", f"B ({args.b})")
    with (
        progress.step(f"comparing {A.shape[0]} paired rows"),
        blas_threads(A.size + B.size),
        _naming_out_of_range([("A", args.a, A), ("B", args.b, B)]),
    ):
        try:
            result = compare_spaces(
                A, B, test_size=args.test_size, random_state=args.random_state
            )
        except ConstantInputError as exc:
            # The training rows are compare_spaces's own draw, so only its
            # error tells which input it refused; the command names the file.
            path = args.a if exc.name == "A" else args.b
            raise _constant_input(exc.name, path, exc.n_rows) from None
    result = dataclasses.replace(
        result, explanation=_advising_commands(result.explanation, args)
    )
    if args.json:
        out = {"a": args.a, "b": args.b, **result.to_dict()}
        out = {key: _finite_or_none(value) for key, value in out.items()}
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        print(f"A = {args.a}\nB = {args.b}")
        print(result)
    if result.verdict == "not linearly alignable":
        # As align's map no better than chance: a script must not have to
        # parse the verdict to learn that nothing relates the two files.
        raise NotUsable(
            "no linear map relates A and B on held-out rows (verdict 'not "
            "linearly alignable'); check that their rows are paired"
        )
    return EXIT_OK


# The library's non-linear aligners, which skembed align does not fit.
_NON_LINEAR_ALIGNERS = ("KernelResidualAligner", "ResidualMLPAligner")
_NON_LINEAR = (
    "a non-linear aligner, which skembed align does not fit (in Python: "
    + ", ".join(f"skembed.{name}" for name in _NON_LINEAR_ALIGNERS)
    + ")"
)


def _advising_commands(explanation, args):
    """``explanation`` with the commands that fit and use a map where the
    library advises Python calls (skembed.ProcrustesAligner, transform_view).

    The map is the one align would fit by default from the same files (CCA
    when compare_spaces found it the better one), read as report read them.
    The library's advice of a non-linear aligner says that align has none.
    """
    explanation = explanation.replace(
        MODEST_ADVICE, f"more paired rows may help, and so may {_NON_LINEAR}"
    ).replace(
        NOT_ALIGNABLE_ADVICE, f"more paired rows may still help, or {_NON_LINEAR}"
    )
    names = _default_view_names(args.a, args.b)
    inputs = [args.a, args.b]
    model = _free_name("model", ".npz", inputs, beside=True)
    out = _free_name("OUT", ".npy", inputs)
    for method, option in (("Procrustes", None), ("CCA", "cca")):
        advice = alignable_advice(method)
        if advice not in explanation:
            continue
        align = [
            "skembed align",
            _shell_word(args.a),
            _shell_word(args.b),
            *([_shell_option("--method", option)] if option else []),
            *_reading_options(args),
            "-o",
            _shell_word(model),
        ]
        commands = (
            f"fit a map on the paired rows with `{' '.join(align)}`, then translate "
            "vectors of B's model into A's space with "
            f"`{_use_line('translate', model, out, names, 'FILE')}`, or search an "
            "index of A's model with queries of B's model with "
            f"`{_use_line('search', model, out, names, 'QUERIES', 'INDEX')}`"
        )
        return explanation.replace(advice, commands)
    return explanation


def _reading_options(args):
    """The options with which this command read its inputs, as another
    command takes them."""
    options = []
    for flag, items in (
        ("--columns", args.columns),
        ("--columns-a", args.columns_a),
        ("--columns-b", args.columns_b),
    ):
        if items is not None:
            spec = ",".join(
                item if isinstance(item, str) else "..".join(item) for item in items
            )
            options.append(_shell_option(flag, spec))
    if args.header != "auto":
        options.append("--header" if args.header == "yes" else "--no-header")
    return options


def _shell_word(text):
    """``text`` as a shell word that is never read as an option."""
    if text.startswith("-"):
        text = os.path.join(os.curdir, text)
    return shlex.quote(text)


def _shell_option(flag, value):
    # "--target -old" is read as two options; "--target=-old" is not.
    text = shlex.quote(value)
    return f"{flag}={text}" if text.startswith("-") else f"{flag} {text}"


def _use_line(command, model, output, names, *inputs):
    """The ``command`` (translate or search) from the second view of a model
    that align fitted to its first, the reference; ``inputs`` are its files
    and ``output`` the file it writes."""
    words = [
        f"skembed {command}",
        _shell_word(model),
        *inputs,
        _shell_option("--source", names[1]),
        _shell_option("--target", names[0]),
        "-o",
        _shell_word(output),
    ]
    return " ".join(words)


def _free_name(stem, suffix, inputs, *, beside=False):
    """``stem + suffix``, else ``stem-1 + suffix``, ...: the first name that
    is none of the files ``inputs``, for the output of an advised command.

    Followed as printed, the advice would otherwise write over an input
    (``skembed translate ... -o OUT.npy`` when A is OUT.npy). With
    ``beside``, the name is a model's, and the name align gives a map not
    worth using (NAME.not-usable.npz) must not be an input either, since
    align refuses to run then.
    """
    number = 0
    while True:
        name = f"{stem}-{number}{suffix}" if number else f"{stem}{suffix}"
        names = [name, _not_usable_path(name)] if beside else [name]
        if all(input_at(candidate, inputs) is None for candidate in names):
            return name
        number += 1


# ----------------------------------------------------------------------- align
def _default_view_names(a, b):
    """The view names of a model of inputs ``a`` and ``b`` without --names:
    the files' stems, or A and B when those do not tell them apart."""
    names = [split_member(a)[0].stem, split_member(b)[0].stem]
    if names[0] == names[1] or not all(names):
        names = ["A", "B"]
    return names


def _view_names(args):
    if args.names is not None:
        return list(args.names)
    return _default_view_names(args.a, args.b)


def _make_aligner(args, views):
    cls = CLI_METHODS[args.method]
    if args.method == "cca":
        return cls(n_components=args.n_components, reg=args.reg, views=views)
    if args.method == "ridge":
        return cls(alpha=args.alpha, views=views)
    if args.method == "procrustes":
        return cls(views=views)
    return cls(random_state=args.random_state)


def _n_held_out(test_size, n):
    if test_size == 0:
        return 0
    if isinstance(test_size, float):
        return math.ceil(test_size * n)
    return test_size


def _split(args, first, what):
    """(train, test) positions of pairs; test is empty without a check.

    ``first`` holds, for every pair, the position of the first pair equal
    to it (both rows identical). Copies of a pair stay on one side: a
    held-out pair whose copy the map was fitted on is not "not used in the
    fit" (unrelated files of 100 items repeated four times were judged
    usable, 0.325 against a bar of 0.1). Each distinct held-out pair is
    scored once, as compare_spaces counts it.
    """
    n = first.shape[0]
    distinct = np.flatnonzero(first == np.arange(n))
    n_test = _n_held_out(args.test_size, distinct.size)
    if n_test == 0:
        return np.arange(n), np.arange(0)
    if n_test < MIN_HELD_OUT or distinct.size - n_test < 2:
        repeats = (
            f" ({distinct.size} distinct, the others repeat a pair)"
            if distinct.size < n
            else ""
        )
        raise UserError(
            f"--test-size {args.test_size} on {n} {what}{repeats} holds out "
            f"{n_test} and leaves {distinct.size - n_test} to fit; the held-out "
            f"check needs at least {MIN_HELD_OUT} held-out pairs and 2 to fit. "
            "Pass more pairs, another --test-size, or --test-size 0 to skip the "
            "check."
        )
    order = np.random.default_rng(args.random_state).permutation(distinct.size)
    test = np.sort(distinct[order[:n_test]])
    held = np.zeros(n, dtype=bool)
    held[test] = True
    return np.flatnonzero(~held[first]), test


class _RoundReporter:
    """Turns the progress of a SelfLearningAligner fit into progress notes.

    It listens to the fit (``skembed._verbose.listening``), so it reads each
    round's fields, not a printed line. The number of rounds is not known in
    advance (the loop stops when the dictionary settles), so the progress
    line reports the last round and the rounds so far, not an estimate.
    """

    def __init__(self, step, n_iter):
        self.step = step
        self.n_iter = n_iter
        self.rounds = 0

    def __call__(self, text, event, fields):
        if event != "round":
            self.step.note(text)
            return
        self.rounds += 1
        self.step.note(
            f"{self.rounds} rounds so far; round {fields['round']} (at most "
            f"{self.n_iter}) of the run from keep_prob={fields['start']:g}: "
            f"{fields['pairs']} pairs in the dictionary"
        )


def _fit(aligner, progress, label, args, fit_args, fit_kwargs, n_values):
    self_learning = args.method == "self-learning"
    with progress.step(f"fitting {label}") as step:
        sink = contextlib.nullcontext()
        if self_learning and not args.quiet:
            sink = listening(_RoundReporter(step, aligner.n_iter))
        elif "verbose" not in aligner.get_params():
            sink = contextlib.redirect_stdout(sys.stderr)
        with sink, blas_threads(n_values):
            aligner.fit(*fit_args, **fit_kwargs)
    return aligner


def _align_paired(args, progress, A, B, pairs, names, widths):
    """Closed-form methods: hold out pairs, fit, judge, refit on all pairs."""
    if pairs is not None:
        A, B = A[pairs[:, 0]], B[pairs[:, 1]]
    else:
        check_paired(A, B, f"A ({args.a})", f"B ({args.b})")
    n = A.shape[0]
    views = {names[0]: slice(0, widths[0]), names[1]: slice(widths[0], None)}
    train, test = _split(args, first_pair_copies(A, B), "pairs")
    for name, path, X in (("A", args.a, A), ("B", args.b, B)):
        # In the file's own dtype, before the cast below: a float32 file's
        # roundings are float32's.
        if constant_rows(X, train):
            # As report refuses it: any map of such a file is arbitrary, and
            # with --test-size 0 nothing else would have said so (exit 0).
            # Rows a few roundings apart too: ProcrustesAligner only warned,
            # RidgeAligner and CCAAligner said nothing.
            raise _constant_input(name, path, train.size)
    if A.dtype != B.dtype:
        A, B = A.astype(np.float64), B.astype(np.float64)
    label = type(_make_aligner(args, views)).__name__
    quality = None
    if test.size:
        aligner = _fit(
            _make_aligner(args, views),
            progress,
            f"{label} on {train.size} of {n} pairs",
            args,
            (np.hstack([A[train], B[train]]),),
            {},
            A.size + B.size,
        )
        with progress.step(f"checking the map on {test.size} held-out pairs"):
            with blas_threads(A.size + B.size):
                quality = fit_quality(aligner, (A[test], B[test]))
    # A closed-form refit on every pair costs one more pass over the rows;
    # the held-out figure above is then a slightly conservative one.
    aligner = _fit(
        _make_aligner(args, views),
        progress,
        f"{label} on all {n} pairs",
        args,
        (np.hstack([A, B]),),
        {},
        A.size + B.size,
    )
    described = f"{n} pairs" + (
        f" (checked on {test.size} held out, then refitted on all)" if test.size else ""
    )
    return aligner, quality, described


def _align_self_learning(args, progress, A, B, pairs):
    """Self-learning on unpaired pools; held-out known pairs if there are some."""
    aligner = _make_aligner(args, None)
    label = type(aligner).__name__
    n_values = A.size + B.size
    if pairs is None:
        described = f"unpaired pools of {A.shape[0]} and {B.shape[0]} rows, no pairs"
        fit_label = f"{label} on {described}"
        _fit(aligner, progress, fit_label, args, ([A, B],), {}, n_values)
        return aligner, fit_quality(aligner), described
    known = first_pair_copies(A[pairs[:, 0]], B[pairs[:, 1]])
    train, test = _split(args, known, "known pairs")
    described = (
        f"{train.size} seed pairs and unpaired pools of {A.shape[0]} and "
        f"{B.shape[0]} rows"
    )
    _fit(
        aligner,
        progress,
        f"{label} on {described}",
        args,
        ([A, B],),
        {"pairs": pairs[train]},
        n_values,
    )
    quality = None
    if test.size:
        held = pairs[test]
        with progress.step(f"checking the map on {test.size} held-out pairs"):
            with blas_threads(n_values):
                quality = fit_quality(aligner, (A[held[:, 0]], B[held[:, 1]]))
        described += f" ({test.size} known pairs held out for the check)"
    elif getattr(aligner, "confidence_", None) is not None:
        # No pair held out, but the fit judged its map against the pools:
        # a map its own check rejects is not worth using either.
        quality = fit_quality(aligner, known_pairs=train.size)
    return aligner, quality, described


def _check_inputs_exist(*texts):
    for text in texts:
        if text is not None and not split_member(text)[0].exists():
            raise UserError(f"{text}: file not found.")


def _not_usable_path(output):
    """Where a map not worth using goes when ``output`` already exists.

    The stem is cut short if the added ".not-usable" would make the name too
    long for the folder: a legal -o must not fail for the name beside it.
    """
    output = Path(output)
    added = len(".not-usable") + len(output.suffix.encode("utf-8", "surrogateescape"))
    stem = within_name_limit(output.stem, os.fspath(output.parent), added)
    return output.with_name(f"{stem}.not-usable{output.suffix}")


def run_align(args, progress):
    inputs = [args.a, args.b, args.pairs]
    check_output(
        args.output, MODEL_SUFFIXES, inputs, what="a model (models are .npz files)"
    )
    # A failed map goes beside -o, never to it: that name must not be an
    # input either.
    beside = _not_usable_path(args.output)
    if input_at(beside, inputs) is not None:
        raise UserError(
            f"a map not worth using would be written to {beside} (beside -o "
            f"{args.output}), which is also an input of this command; choose "
            "another output name."
        )
    try:
        check_output(beside, MODEL_SUFFIXES, inputs, what="a model", option="")
    except UserError as exc:
        raise UserError(
            f"a map not worth using would be written beside -o {args.output}, "
            f"but {one_line(exc)}"
        ) from None
    _check_inputs_exist(args.a, args.b, args.pairs)
    _check_two_inputs(args, "align")
    A = _read(progress, args.a, "A", args, "a")
    B = _read(progress, args.b, "B", args, "b")
    _check_two_arrays(args, "align", A, B)
    pairs = None
    if args.pairs is not None:
        pairs = read_pairs(args.pairs, A.shape[0], B.shape[0], header=args.header)
    widths = (A.shape[1], B.shape[1])
    if args.method == "cca" and args.n_components is not None:
        if args.n_components > min(widths):
            raise UserError(
                f"--n-components {args.n_components} is more than the narrower "
                f"file has columns ({min(widths)})."
            )
    names = _view_names(args)
    # Self-learning takes no view names: the library calls its views view0
    # and view1.
    fitted = ["view0", "view1"] if args.method == "self-learning" else names
    with (
        _naming_out_of_range([("A", args.a, A), ("B", args.b, B)]),
        # The constant views' warning names the aligner and the views, not
        # the method chosen and, with self-learning, not even the files.
        _reworded_warnings(
            functools.partial(
                _constant_views_named,
                views=[(fitted[0], "A", args.a), (fitted[1], "B", args.b)],
            ),
            functools.partial(
                _self_learning_in_command_terms,
                paired_rows=pairs is None and A.shape[0] == B.shape[0],
            ),
        ),
    ):
        if args.method == "self-learning":
            aligner, quality, described = _align_self_learning(
                args, progress, A, B, pairs
            )
        else:
            aligner, quality, described = _align_paired(
                args, progress, A, B, pairs, names, widths
            )
    usable = quality is None or quality.usable
    written = Path(args.output)
    if not usable:
        # A map not worth using never takes the name asked for: it would
        # replace a model already there (perhaps the good one of an earlier
        # run), and a script that missed the exit code would use it from
        # there. It goes beside it, for inspection.
        written = _not_usable_path(written)
    with progress.step(f"writing {written}"):
        try:
            save_aligner(aligner, written, statistics=not args.no_statistics)
        except OSError as exc:
            raise write_error(written, exc) from None
    label = type(aligner).__name__
    view_list = ", ".join(
        f"{name} = {file} ({width}-d)"
        for name, file, width in zip(
            aligner.view_names_, (args.a, args.b), widths, strict=True
        )
    )
    if quality is not None:
        figure = quality.figure
    else:
        figure = "not checked (--test-size 0)"
    print(
        f"{label} fitted on {described}; views {view_list}; shared space of "
        f"{aligner.n_components_} dimensions.\nQuality: {figure}."
    )
    if not usable:
        if Path(args.output).exists():
            kept = f"; {args.output} was left as it was"
        else:
            kept = f"; nothing was written to {args.output}"
        print(f"Model written to {written}, but it is not worth using (exit 3){kept}.")
        raise NotUsable(
            f"{quality.reason}. The model was written to {written} for inspection"
            f"{kept}."
        )
    out = _free_name("OUT", ".npy", [args.a, args.b, args.pairs])
    use = _use_line(
        "translate", os.fspath(args.output), out, aligner.view_names_, "FILE"
    )
    print(f"Model written to {args.output}; use: {use}")
    return EXIT_OK


# ------------------------------------------------------------------- translate
def _resolve_name(names, name, option):
    if name in names:
        return name
    # Only ASCII digits: str.isdigit() also accepts "²", which int() refuses.
    if re.fullmatch(r"-?[0-9]+", name) and -len(names) <= int(name) < len(names):
        return int(name)
    raise UserError(
        f"{option} {name!r} is not a view of this model; its views are "
        f"{', '.join(map(str, names))} (or 0..{len(names) - 1})."
    )


def _load_model(text, progress):
    # A model is a whole file: FILE.npz:KEY names a member only for
    # embeddings. Read as a member, a file named "m.npz:v2" would be taken
    # for m.npz, another model.
    path = Path(text)
    archive, member = split_member(text)
    failed = _not_usable_path(path)
    if not path.exists() and failed.is_file():
        raise UserError(
            f"model {text}: file not found; {failed} beside it holds a map that "
            "align found not worth using (exit 3). Fit a usable map first (more "
            "or known pairs), or pass that file by its name to use it anyway."
        )
    if member is not None and not path.exists() and archive.exists():
        raise UserError(
            f"model {text}: a model file is read whole, not as a member of an "
            f"archive; give the model file's name alone ({archive})."
        )
    # A named pipe would block the loader forever.
    check_input_file(path, f"model {text}")
    with progress.step(f"loading {text}"):
        try:
            return load_aligner(path)
        except ValueError as exc:
            raise UserError(one_line(exc)) from None
        except (MemoryError, RecursionError) as exc:
            kind = "too large" if isinstance(exc, MemoryError) else "too deeply nested"
            raise UserError(
                f"model {text} is not a readable skembed model file: its content "
                f"is {kind} ({type(exc).__name__})."
            ) from None
        except Exception as exc:
            # Loading reads an untrusted file: whatever breaks is the file's.
            raise UserError(
                f"model {text} is not a readable skembed model file "
                f"({type(exc).__name__}: {one_line(exc)})."
            ) from None


def _translating_model(args, progress):
    """The model of ``args.model`` and its views ``--source`` and ``--target``.

    Returns the aligner, the two view keys as ``translate`` takes them, their
    positions, and the widths of the model's views.
    """
    aligner = _load_model(args.model, progress)
    names = getattr(aligner, "view_names_", None)
    widths = getattr(aligner, "n_features_per_view_", None)
    if not hasattr(aligner, "translate"):
        raise UserError(
            f"a {type(aligner).__name__} cannot translate between views; fit the "
            "model with skembed align."
        )
    if not isinstance(names, list) or not isinstance(widths, list):
        raise UserError(
            f"model {args.model} has no view names or widths; it is damaged or "
            "was not written by skembed."
        )
    source = _resolve_name(names, args.source, "--source")
    target = _resolve_name(names, args.target, "--target")
    index = {name: k for k, name in enumerate(names)}
    source_k = source if isinstance(source, int) else index[source]
    target_k = target if isinstance(target, int) else index[target]
    if source_k % len(names) == target_k % len(names):
        raise UserError(
            f"--source {args.source} and --target {args.target} name the same view; "
            "translate maps between two different views."
        )
    return aligner, source, target, source_k, target_k, widths


def _finite_translation(translate, label):
    """``translate`` that refuses a chunk with infinite or NaN values.

    Finite rows near the float32 limit (about 3.4e38) can map beyond it; the
    result would be written, or searched, as if it were usable.
    """

    def checked(X, *args, **kwargs):
        out = translate(X, *args, **kwargs)
        if not np.isfinite(out).all():
            raise UserError(
                f"{label} holds rows that translate to infinite or NaN values "
                f"(entries too large for {out.dtype}); scale the rows down or "
                "store them as float64."
            )
        return out

    return checked


def _translate_rows(aligner, X, source, target, target_width, progress, label):
    """``aligner.translate`` of the rows of X in chunks, with progress."""
    translate = _finite_translation(aligner.translate, label)
    n = X.shape[0]
    rows = max(1, _TRANSLATE_CHUNK_BYTES // (8 * (X.shape[1] + target_width)))
    out = None
    with (
        progress.step(f"translating {n} rows", total=n, unit="rows") as step,
        blas_threads(X.size),
    ):
        for start in range(0, n, rows):
            chunk = translate(X[start : start + rows], source, target)
            if out is None:
                out = np.empty((n, chunk.shape[1]), dtype=chunk.dtype)
            out[start : start + rows] = chunk
            step.advance(min(start + rows, n))
    return out


def run_translate(args, progress):
    check_output(
        args.output,
        OUTPUT_SUFFIXES,
        [args.model, args.input],
        what="the translated embeddings",
    )
    _check_inputs_exist(args.input)
    aligner, source, target, source_k, target_k, widths = _translating_model(
        args, progress
    )
    width = widths[source_k]
    if _streamable(args, width):
        return _translate_streaming(aligner, source, target, args, progress)
    X = _read(progress, args.input, "input", args)
    if X.shape[1] != width:
        raise UserError(
            f"input {args.input} has {X.shape[1]} columns, but view {args.source!r} "
            f"of the model has {width}."
        )
    out = _translate_rows(
        aligner, X, source, target, widths[target_k], progress, f"input {args.input}"
    )
    with progress.step(f"writing {args.output}"):
        write_array(out, args.output)
    progress.say(f"wrote {out.shape[0]} x {out.shape[1]} to {args.output}")
    return EXIT_OK


# Output files of search: row numbers and scores, one row per query.
SEARCH_SUFFIXES = [".npy", ".csv"]


def _check_search_outputs(args):
    inputs = [args.model, args.queries, args.index]
    if args.translated_index is not None:
        inputs.append(args.translated_index)
    check_output(args.output, SEARCH_SUFFIXES, inputs, what="the neighbour rows")
    if args.scores is None:
        return
    check_output(
        args.scores, SEARCH_SUFFIXES, inputs, what="the scores", option="--scores"
    )
    if Path(args.scores).resolve() == Path(args.output).resolve():
        raise UserError(
            f"--scores {args.scores} is also the -o file; give the scores their "
            "own file name."
        )


def _write_together(outputs, progress):
    """Write ``(array, path)`` pairs; no file is replaced unless all were written.

    A failed second write (a full disk) leaves both old files, which belong
    together, as they were.
    """

    def shown(write, path):
        def step(file):
            with progress.step(f"writing {path}"):
                write(file)

        return step

    write_together(
        [(path, shown(array_writer(array, path), path)) for array, path in outputs]
    )


def run_search(args, progress):
    """Search an index of the target model with queries of the source model.

    The queries are translated by the model file, then searched by cosine or
    CSLS in the index, whose rows stay as they are: the migration of a vector
    index to a new embedding model without re-embedding the index.
    """
    _check_search_outputs(args)
    _check_inputs_exist(
        args.queries,
        args.index,
        *([] if args.translated_index is None else [args.translated_index]),
    )
    aligner, source, target, source_k, target_k, widths = _translating_model(
        args, progress
    )
    queries = _read(progress, args.queries, "queries", args, "queries")
    if queries.shape[1] != widths[source_k]:
        raise UserError(
            f"queries {args.queries} have {queries.shape[1]} columns, but view "
            f"{args.source!r} of the model has {widths[source_k]}."
        )
    rows = _read(progress, args.index, "index", args, "index")
    if rows.shape[1] != widths[target_k]:
        raise UserError(
            f"index {args.index} has {rows.shape[1]} columns, but view "
            f"{args.target!r} of the model has {widths[target_k]}: the index must "
            "hold the target model's embeddings."
        )
    if _same_values_of_one_file(args.queries, args.index, queries, rows):
        # One model's vectors as both: the translated queries would be
        # searched among rows of their own model, in the other's space.
        raise UserError(
            f"the queries ({args.queries}) and the index ({args.index}) are the "
            "same values of one file: search needs queries embedded by the "
            f"source model ({args.source!r}) and an index embedded by the target "
            f"model ({args.target!r})."
        )
    n_index = rows.shape[0]
    if args.k > n_index:
        raise UserError(f"-k {args.k} exceeds the {n_index} rows of the index.")
    if args.method == "csls" and args.csls_k > min(n_index, queries.shape[0]):
        raise UserError(
            f"--csls-k {args.csls_k} needs at least that many queries and index "
            f"rows ({queries.shape[0]} and {n_index} here); lower it or use "
            "--method nn."
        )
    if args.center == "separate" and not np.any(queries != queries[:1]):
        # One query, or copies of one: each minus their mean is zero, and
        # every index row ties at score 0.
        raise UserError(
            "--center separate subtracts the mean of the queries themselves, "
            f"which needs several different queries ({queries.shape[0]} here, "
            "all equal); use --center index or none."
        )
    other = None
    if args.translated_index is not None:
        other = _read(
            progress,
            args.translated_index,
            "translated index",
            args,
            "translated-index",
        )
        if other.shape != (n_index, widths[source_k]):
            raise UserError(
                f"--translated-index {args.translated_index} has shape "
                f"{other.shape}, but it must hold the {n_index} index rows "
                f"translated into view {args.source!r} of the model "
                f"({widths[source_k]} columns), in the index's order."
            )
    translated = _translate_rows(
        aligner,
        queries,
        source,
        target,
        widths[target_k],
        progress,
        f"queries {args.queries}",
    )
    searches = [
        (
            _fitted_index(args, rows, translated, progress, f"index {args.index}"),
            translated,
        )
    ]
    if other is not None:
        where = f"--translated-index {args.translated_index}"
        searches.append((_fitted_index(args, other, queries, progress, where), queries))
    n = translated.shape[0]
    with progress.step(f"searching {n} queries"), blas_threads(rows.size):
        if other is None:
            scores, neighbors = searches[0][0].kneighbors(translated)
        else:
            scores, neighbors = fused_kneighbors(searches, args.k)
    outputs = [(neighbors, args.output)]
    if args.scores is not None:
        outputs.append((scores, args.scores))
    _write_together(outputs, progress)
    progress.say(f"wrote the {args.k} best index rows of {n} queries to {args.output}")
    return EXIT_OK


def _fitted_index(args, rows, queries, progress, where):
    """An EmbeddingIndex of ``rows`` as the search options say, fitted on them;
    ``where`` names the rows' input in messages."""
    index = EmbeddingIndex(
        n_neighbors=args.k,
        method=args.method,
        csls_k=args.csls_k,
        center={"none": False, "index": True, "separate": "separate"}[args.center],
        backend=args.backend,
    )
    with (
        progress.step(f"indexing {rows.shape[0]} rows ({args.backend})"),
        blas_threads(rows.size),
    ):
        try:
            index.fit(rows)
        except ImportError as exc:
            raise UserError(f"--backend {args.backend}: {one_line(exc)}") from None
        except ValueError as exc:
            # fit's message names its parameter X ("Every row of X is zero");
            # search fits two indexes with --translated-index: say which.
            # Still a ValueError, whose center=... the caller spells as
            # --center.
            message = re.sub(r"\bX\b", lambda _: where, one_line(exc))
            raise ValueError(message) from None
        # MUSE's protocol: the penalties of the index rows (and, centred
        # separately, the queries' mean) come from the searched query set.
        index.fit_queries(queries)
    return index


def _streamable(args, width):
    """Whether translate can stream: a float .npy of the view's width in, .npy
    or .parquet out, no column selection. Anything else is read whole, with
    the reader's checks and messages."""
    path, key = split_member(args.input)
    if getattr(args, "columns", None) is not None or key is not None:
        return False
    if path.suffix.lower() != ".npy" or not path.is_file():
        return False
    if Path(args.output).suffix.lower() not in (".npy", ".parquet"):
        return False
    try:
        stored = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return False
    if not isinstance(stored, np.memmap):
        # A zip archive (.npz) named .npy loads as an NpzFile; the reader
        # then says what the file is and how to rename it.
        if hasattr(stored, "close"):
            stored.close()
        return False
    return (
        # A file longer than its header says is refused by the reader.
        path.stat().st_size == stored.offset + stored.nbytes
        and stored.dtype.kind == "f"
        and stored.ndim == 2
        and stored.shape[0] > 0
        and stored.shape[1] == width
    )


def _finite_input(translate, label):
    """``translate`` that refuses a chunk holding NaN or infinity, naming the
    first such row of the file (chunks arrive in order)."""
    seen = [0]

    def checked(X, *args, **kwargs):
        finite = np.isfinite(X).all(axis=1)
        if not finite.all():
            row = seen[0] + int(np.flatnonzero(~finite)[0])
            raise UserError(
                f"{label} holds non-finite values (NaN or inf), first at row "
                f"{row}; remove or repair them."
            )
        seen[0] += X.shape[0]
        return translate(X, *args, **kwargs)

    return checked


def _translate_streaming(aligner, source, target, args, progress):
    """Translate a .npy file chunk by chunk, never holding it in memory."""
    label = f"input {args.input}"
    # The columns a whole read refuses (a row number, ids) are refused here
    # too: streamed, they were translated as if they were embedding values.
    check_stream_columns(args.input)
    translate = _finite_input(
        _finite_translation(
            functools.partial(aligner.translate, source=source, target=target),
            label,
        ),
        label,
    )
    try:
        with progress.step(f"translating {args.input}", unit="rows") as step:
            summary = translate_file(
                translate,
                args.input,
                args.output,
                progress=False if progress.quiet else step.advance,
            )
    except (ValueError, TypeError, ImportError) as exc:
        raise UserError(f"input {args.input}: {one_line(exc)}") from None
    except OSError as exc:
        # The input was opened and checked before streaming, so a failure is
        # the output's (a full disk, a file-size limit, a name too long, a
        # folder gone) unless it names the input (a read error); translate_file
        # writes to a temporary file, so a file already there is untouched.
        named = getattr(exc, "filename", None)
        input_path = split_member(args.input)[0]
        if named is not None and os.path.abspath(os.fspath(named)) == os.path.abspath(
            input_path
        ):
            raise UserError(f"input {args.input}: {one_line(exc)}") from None
        raise write_error(args.output, exc) from None
    progress.say(
        f"wrote {summary['rows']} x {summary['n_features_out']} to {args.output} "
        f"({summary['rows_per_second']:,.0f} rows/s)"
    )
    return EXIT_OK
