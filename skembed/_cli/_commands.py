"""``skembed report``, ``align`` and ``translate``."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from skembed._cli._common import UserError, blas_threads, one_line
from skembed._cli._files import (
    check_paired,
    read_embeddings,
    read_pairs,
    split_member,
    write_array,
)
from skembed._io import load_aligner, save_aligner
from skembed._registry import CLI_METHODS
from skembed.exceptions import UnsupervisedAlignmentWarning
from skembed.metrics import compare_spaces

__all__ = ["run_align", "run_report", "run_translate"]


def run_report(args, progress):
    with progress.step(f"reading {args.a}"):
        A = read_embeddings(args.a, label="A")
    with progress.step(f"reading {args.b}"):
        B = read_embeddings(args.b, label="B")
    check_paired(A, B, f"A ({args.a})", f"B ({args.b})")
    with (
        progress.step(f"comparing {A.shape[0]} paired rows"),
        blas_threads(A.size + B.size),
    ):
        result = compare_spaces(
            A, B, test_size=args.test_size, random_state=args.random_state
        )
    if args.json:
        out = {"a": args.a, "b": args.b, **result.to_dict()}
        print(json.dumps(out, indent=2))
    else:
        print(f"A = {args.a}\nB = {args.b}")
        print(result)
    return 0


# ----------------------------------------------------------------------- align
def _view_names(args):
    if args.names is not None:
        names = list(args.names)
    else:
        names = [split_member(args.a)[0].stem, split_member(args.b)[0].stem]
    if names[0] == names[1] or not all(names):
        names = ["A", "B"]
    return names


def _make_aligner(args, views):
    cls = CLI_METHODS[args.method]
    if args.method == "cca":
        return cls(n_components=args.n_components, reg=args.reg, views=views)
    if args.method == "ridge":
        return cls(alpha=args.alpha, views=views)
    if args.method == "procrustes":
        return cls(views=views)
    return cls()


def run_align(args, progress):
    with progress.step(f"reading {args.a}"):
        A = read_embeddings(args.a, label="A")
    with progress.step(f"reading {args.b}"):
        B = read_embeddings(args.b, label="B")
    pairs = None
    if args.pairs is not None:
        pairs = read_pairs(args.pairs, A.shape[0], B.shape[0])
    widths = (A.shape[1], B.shape[1])
    names = _view_names(args)
    if args.method == "self-learning":
        # The rows are unpaired pools; --pairs gives the seed dictionary, and
        # without it the alignment starts unsupervised. Pools of different
        # sizes come as a list of arrays, so the views keep default names.
        if args.names is not None:
            raise UserError(
                "--names is not available with --method self-learning: its views "
                "are called view0 (A) and view1 (B)."
            )
        aligner = _make_aligner(args, None)
        fit_args, fit_kwargs = ([A, B],), {"pairs": pairs}
        n_pairs = 0 if pairs is None else len(pairs)
        described = (
            f"{n_pairs} seed pairs and unpaired pools of {A.shape[0]} and "
            f"{B.shape[0]} rows"
        )
    else:
        if pairs is not None:
            A, B = A[pairs[:, 0]], B[pairs[:, 1]]
        else:
            check_paired(A, B, f"A ({args.a})", f"B ({args.b})")
        if A.dtype != B.dtype:
            A, B = A.astype(np.float64), B.astype(np.float64)
        views = {names[0]: slice(0, widths[0]), names[1]: slice(widths[0], None)}
        aligner = _make_aligner(args, views)
        fit_args, fit_kwargs = (np.hstack([A, B]),), {}
        n_pairs = A.shape[0]
        described = f"{n_pairs} pairs"
    label = type(aligner).__name__
    with progress.step(f"fitting {label} on {described}"):
        verbose = "verbose" in aligner.get_params() and not args.quiet
        if verbose:
            aligner.set_params(verbose=1)
        with (
            contextlib.redirect_stdout(sys.stderr),
            blas_threads(A.size + B.size),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always", UnsupervisedAlignmentWarning)
            aligner.fit(*fit_args, **fit_kwargs)
        if verbose:
            aligner.set_params(verbose=0)
    untrusted = [
        w for w in caught if issubclass(w.category, UnsupervisedAlignmentWarning)
    ]
    for w in caught:
        if w not in untrusted:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if untrusted:
        # A map found without pairs that its own confidence does not trust is
        # not written: a script must not go on with it (exit code 1).
        confidence = getattr(aligner, "confidence_", None)
        verdict = (
            f"its confidence is {confidence:.3f} < 0.5"
            if confidence is not None
            else one_line(untrusted[0].message)
        )
        print(
            f"skembed align: no model written: the map found without pairs is not "
            f"trusted ({verdict}); the two files may lack shared structure, be too "
            "small or hold different texts. Pass a few dozen known pairs with "
            "--pairs.",
            file=sys.stderr,
        )
        return 1
    with progress.step(f"writing {args.output}"):
        save_aligner(aligner, args.output)
    view_list = ", ".join(
        f"{name} = {file} ({width}-d)"
        for name, file, width in zip(
            aligner.view_names_, (args.a, args.b), widths, strict=True
        )
    )
    print(
        f"{label} fitted on {described}; views {view_list}; shared space of "
        f"{aligner.n_components_} dimensions.\nModel written to {args.output}; "
        f"use: skembed translate {args.output} FILE --source "
        f"{aligner.view_names_[1]} --target {aligner.view_names_[0]} -o OUT.npy"
    )
    return 0


# ------------------------------------------------------------------- translate
def _resolve_name(aligner, name, option):
    names = list(aligner.view_names_)
    if name in names:
        return name
    if name.lstrip("-").isdigit() and -len(names) <= int(name) < len(names):
        return int(name)
    raise UserError(
        f"{option} {name!r} is not a view of this model; its views are "
        f"{', '.join(names)} (or 0..{len(names) - 1})."
    )


def run_translate(args, progress):
    path = Path(args.model)
    if not path.exists():
        raise UserError(f"model {args.model}: file not found.")
    with progress.step(f"loading {args.model}"):
        try:
            aligner = load_aligner(path)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    source = _resolve_name(aligner, args.source, "--source")
    target = _resolve_name(aligner, args.target, "--target")
    if not hasattr(aligner, "translate"):
        raise UserError(
            f"a {type(aligner).__name__} cannot translate between views; fit the "
            "model with skembed align."
        )
    with progress.step(f"reading {args.input}"):
        X = read_embeddings(args.input, label="input")
    index = source if isinstance(source, int) else aligner.view_names_.index(source)
    width = aligner.n_features_per_view_[index]
    if X.shape[1] != width:
        raise UserError(
            f"input {args.input} has {X.shape[1]} columns, but view {args.source!r} "
            f"of the model has {width}."
        )
    with progress.step(f"translating {X.shape[0]} rows"), blas_threads(X.size):
        out = aligner.translate(X, source, target)
    write_array(out, args.output)
    progress.say(f"wrote {out.shape[0]} x {out.shape[1]} to {args.output}")
    return 0
