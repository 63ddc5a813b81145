"""Command line: ``python -m skembed`` (also installed as ``skembed``).

Subcommands:

- ``demo``: the out-of-space problem and its fixes on the bundled real data;
- ``report A B``: are two row-paired embedding files in the same space?
- ``align A B --method ... -o model.npz``: fit an aligner, save a model file;
- ``translate model.npz A --source NAME --target NAME -o out.npy``.

User errors (a missing or malformed file, unequal row counts, an unknown view)
end with exit code 2 and a one-line message on stderr, never a traceback.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import contextlib
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["build_parser", "main"]

_METHODS = ("procrustes", "cca", "ridge", "self-learning")
_SUFFIXES = (".npy", ".npz", ".parquet", ".csv")
# Inputs up to this many values (about 40,000 rows of 384 floats) run with
# single-threaded BLAS.
_SMALL_INPUT = 2**24


class UserError(Exception):
    """A mistake in the command's input: reported in one line, exit code 2."""


class _Progress:
    """Progress lines on stderr, silenced by ``--quiet``."""

    def __init__(self, quiet):
        self.quiet = quiet

    def say(self, message):
        if not self.quiet:
            print(f"skembed: {message}", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def step(self, message):
        start = time.perf_counter()
        self.say(f"{message} ...")
        yield
        elapsed = time.perf_counter() - start
        if elapsed >= 1:
            self.say(f"{message}: done in {elapsed:.1f} s")


def _blas_threads(n_values):
    """Single-threaded BLAS for small inputs, the library default otherwise.

    On matrices of a few thousand rows, BLAS threads cost more in start-up and
    spinning than they save, badly so on a busy machine (tens of times slower).
    """
    from threadpoolctl import threadpool_limits

    if n_values <= _SMALL_INPUT:
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


# --------------------------------------------------------------------- tables
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


# ---------------------------------------------------------------- reading data
def _split_member(text):
    """``FILE.npz:KEY`` -> (Path(FILE.npz), KEY); other names -> (Path, None)."""
    head, sep, key = text.rpartition(":")
    if sep and head.lower().endswith(".npz") and key:
        return Path(head), key
    return Path(text), None


def _frame_to_array(frame, where):
    """Numeric scalar columns and/or columns of equal-length vectors -> 2-D."""
    import pandas as pd

    if frame.shape[1] == 0:
        raise UserError(f"{where} has no columns.")
    pieces = []
    for name in frame.columns:
        column = frame[name]
        first = column.iloc[0] if len(column) else None
        if column.dtype == object and isinstance(first, list | tuple | np.ndarray):
            try:
                pieces.append(np.vstack([np.asarray(cell) for cell in column]))
            except ValueError:
                raise UserError(
                    f"{where}: column {name!r} holds vectors of different lengths."
                ) from None
            continue
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(
            column
        ):
            raise UserError(
                f"{where}: column {name!r} is not numeric (dtype {column.dtype}); "
                "embeddings must be numbers."
            )
        pieces.append(column.to_numpy()[:, None])
    return np.hstack(pieces) if len(pieces) > 1 else pieces[0]


def _read_csv(path, where):
    import pandas as pd

    try:
        frame = pd.read_csv(path, header=None, low_memory=False)
    except pd.errors.EmptyDataError:
        raise UserError(f"{where} is empty.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"{where} is not a readable CSV file ({exc}).") from None
    first = frame.iloc[0].map(lambda cell: pd.to_numeric(cell, errors="coerce"))
    text_header = first.isna().any() and frame.iloc[0].notna().all()
    # pandas writes unnamed columns as the header 0, 1, 2, ...
    index_header = len(frame) > 1 and np.array_equal(
        first.to_numpy(dtype=float, na_value=np.nan), np.arange(frame.shape[1])
    )
    if text_header or index_header:
        frame = frame.iloc[1:]
    for name in frame.columns:
        try:
            frame[name] = pd.to_numeric(frame[name])
        except (ValueError, TypeError):
            raise UserError(
                f"{where}: column {name} holds non-numeric values; embeddings must "
                "be numbers."
            ) from None
    return _frame_to_array(frame, where)


def _read_parquet(path, where):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UserError(
            f'reading {where} needs pyarrow: pip install "skembed[parquet]" '
            "(or pip install pyarrow)."
        ) from None
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types
        raise UserError(f"{where} is not a readable Parquet file ({exc}).") from None
    return _frame_to_array(frame, where)


def _read_npz(path, key, where):
    from skembed._io import HEADER_KEY

    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise UserError(f"{where} is not a NumPy .npz archive.") from None
    with archive:
        names = archive.files
        if HEADER_KEY in names:
            raise UserError(
                f"{where} is an skembed model file, not embeddings; pass it to "
                "`skembed translate`."
            )
        if key is None:
            if len(names) != 1:
                listed = ", ".join(names[:8]) or "nothing"
                raise UserError(
                    f"{where} holds {len(names)} arrays ({listed}); name one as "
                    f"{path}:NAME."
                )
            key = names[0]
        if key not in names:
            raise UserError(f"{where} has no array {key!r}; it holds {names}.")
        try:
            return archive[key]
        except ValueError:
            raise UserError(
                f"{where}: array {key!r} holds Python objects, not numbers."
            ) from None


def read_embeddings(text, *, label="input", integer=False):
    """Read a 2-D numeric matrix from ``.npy``, ``.npz``, ``.parquet`` or ``.csv``.

    Returns float32 when the file holds float32 (or float16), float64 otherwise,
    or int64 when ``integer`` (for pair files). Raises :class:`UserError` with a
    one-line message for any problem with the file or its content.
    """
    path, key = _split_member(text)
    where = f"{label} {text}" if label else text
    if not path.exists():
        raise UserError(f"{where}: file not found.")
    if path.is_dir():
        raise UserError(f"{where} is a directory, not a file.")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError:
            raise UserError(
                f"{where} is not a numeric .npy array (it holds Python objects or "
                "is damaged)."
            ) from None
        except (OSError, EOFError):
            raise UserError(f"{where} is not a readable .npy file.") from None
    elif suffix == ".npz":
        data = _read_npz(path, key, where)
    elif suffix == ".csv":
        data = _read_csv(path, where)
    elif suffix == ".parquet":
        data = _read_parquet(path, where)
    else:
        raise UserError(
            f"{where}: unsupported file type {suffix or '(none)'!r}; use one of "
            f"{', '.join(_SUFFIXES)}."
        )
    data = np.asarray(data)
    if data.dtype.kind not in "iuf":
        raise UserError(
            f"{where} holds non-numeric data (dtype {data.dtype}); embeddings must "
            "be numbers."
        )
    if data.ndim != 2:
        raise UserError(
            f"{where} must hold a 2-D array (rows x features), got shape {data.shape}."
        )
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise UserError(f"{where} is empty (shape {data.shape}).")
    if integer:
        if data.dtype.kind == "f":
            if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
                raise UserError(f"{where} must hold integer row indices.")
        return data.astype(np.int64)
    if data.dtype.kind == "f" and data.dtype.itemsize <= 4:
        data = data.astype(np.float32, copy=False)
    else:
        data = data.astype(np.float64, copy=False)
    finite = np.isfinite(data).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise UserError(
            f"{where} holds non-finite values (NaN or inf) in {bad.size} row(s), "
            f"first at row {bad[0]}; remove or repair them."
        )
    return data


def _check_paired(A, B, a_name, b_name):
    if A.shape[0] != B.shape[0]:
        raise UserError(
            f"{a_name} has {A.shape[0]} rows but {b_name} has {B.shape[0]}; rows are "
            "paired by position, so both files need the same number of rows."
        )


def _read_pairs(text, n_a, n_b):
    pairs = read_embeddings(text, label="pairs file", integer=True)
    if pairs.shape[1] != 2:
        raise UserError(
            f"pairs file {text} must have 2 columns (row in A, row in B), got "
            f"{pairs.shape[1]}."
        )
    for column, n, name in ((0, n_a, "A"), (1, n_b, "B")):
        outside = (pairs[:, column] < 0) | (pairs[:, column] >= n)
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise UserError(
                f"pairs file {text}, line {row}: row {pairs[row, column]} of {name} "
                f"is outside [0, {n - 1}]."
            )
    return pairs


def _write_array(array, text):
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        with open(path, "wb") as file:
            np.save(file, array, allow_pickle=False)
    elif suffix == ".csv":
        np.savetxt(path, array, delimiter=",", fmt="%.9g")
    else:
        raise UserError(f"output {text}: use a .npy or .csv file name.")


# ------------------------------------------------------------------------ demo
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
    figure.savefig(path, dpi=110)


def _demo_methods(A, B, train, seed_pairs, rng):
    """(label, number of known pairs, function fitting the aligner) per method."""
    from skembed import ProcrustesAligner

    methods = [("ProcrustesAligner()", ProcrustesAligner, {})]
    if importlib.util.find_spec("skembed._cca") is not None:
        from skembed._cca import CCAAligner

        methods.append(
            (
                "CCAAligner(n_components=256, reg=0.1)",
                CCAAligner,
                {"n_components": min(256, A.shape[1], B.shape[1]), "reg": 0.1},
            )
        )
    if importlib.util.find_spec("skembed._linear") is not None:
        from skembed._linear import RidgeAligner

        methods.append(("RidgeAligner(alpha=0.1)", RidgeAligner, {"alpha": 0.1}))
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
    if importlib.util.find_spec("skembed._selflearn") is not None:
        from skembed._selflearn import SelfLearningAligner

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
                lambda: SelfLearningAligner().fit([A[pool_a], B[pool_b]], pairs=pairs),
            )
        )
    return rows


def _demo(args, progress):
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UserError(
                '--plot needs matplotlib: pip install "skembed[plot]" (or pip install '
                "matplotlib)."
            ) from None
    with _blas_threads(3000 * 768):
        return _run_demo(args, progress)


def _run_demo(args, progress):
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
    random_partners = rng.permutation(n_test)
    aligned_paired = paired_cosine(Z[0], Z[1])
    aligned_random = paired_cosine(Z[0], Z[1][random_partners])
    rows.append(("cosine, same text (aligned)", f"{aligned_paired.mean():.3f}"))
    rows.append(("cosine, random pair (aligned)", f"{aligned_random.mean():.3f}"))
    print(_table(rows, ("held-out comparison", "value")))
    print(
        "\nRaw vectors of the same text are no closer than random ones: the two "
        "models' axes are not aligned.\nAfter an orthogonal map learnt from paired "
        "rows, each text finds its partner.\n"
    )

    method_rows = []
    for label, n_pairs, fit in _demo_methods(A, B, train, args.seed_pairs, rng):
        with progress.step(f"fitting {label}"):
            fit_start = time.perf_counter()
            fitted = fit()
            fit_seconds = time.perf_counter() - fit_start
        Z_m = fitted._transform_views([A[test], B[test]])
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
        _table(
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
        _table(
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
            _plot_cosines(args.plot, panels)
        print(f"\nCosine histograms written to {args.plot}")
    print(f"\n(finished in {time.perf_counter() - start:.1f} s)")
    return 0


# ---------------------------------------------------------------------- report
def _report(args, progress):
    from skembed.metrics import compare_spaces

    with progress.step(f"reading {args.a}"):
        A = read_embeddings(args.a, label="A")
    with progress.step(f"reading {args.b}"):
        B = read_embeddings(args.b, label="B")
    _check_paired(A, B, f"A ({args.a})", f"B ({args.b})")
    with (
        progress.step(f"comparing {A.shape[0]} paired rows"),
        _blas_threads(A.size + B.size),
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
        names = [_split_member(args.a)[0].stem, _split_member(args.b)[0].stem]
    if names[0] == names[1] or not all(names):
        names = ["A", "B"]
    return names


def _make_aligner(args, widths, views):
    method = args.method
    if method == "procrustes":
        from skembed import ProcrustesAligner

        return ProcrustesAligner(views=views)
    module, class_name = {
        "cca": ("skembed._cca", "CCAAligner"),
        "ridge": ("skembed._linear", "RidgeAligner"),
        "self-learning": ("skembed._selflearn", "SelfLearningAligner"),
    }[method]
    if importlib.util.find_spec(module) is None:
        raise UserError(
            f"--method {method} needs {class_name}, which this installation of "
            "skembed does not have yet; use --method procrustes."
        )
    cls = getattr(importlib.import_module(module), class_name)
    if method == "cca":
        return cls(n_components=args.n_components, reg=args.reg, views=views)
    if method == "ridge":
        return cls(alpha=args.alpha, views=views)
    return cls()


def _align(args, progress):
    from skembed._io import save_aligner

    with progress.step(f"reading {args.a}"):
        A = read_embeddings(args.a, label="A")
    with progress.step(f"reading {args.b}"):
        B = read_embeddings(args.b, label="B")
    pairs = None
    if args.pairs is not None:
        pairs = _read_pairs(args.pairs, A.shape[0], B.shape[0])
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
        aligner = _make_aligner(args, widths, None)
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
            _check_paired(A, B, f"A ({args.a})", f"B ({args.b})")
        if A.dtype != B.dtype:
            A, B = A.astype(np.float64), B.astype(np.float64)
        views = {names[0]: slice(0, widths[0]), names[1]: slice(widths[0], None)}
        aligner = _make_aligner(args, widths, views)
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
            _blas_threads(A.size + B.size),
        ):
            aligner.fit(*fit_args, **fit_kwargs)
        if verbose:
            aligner.set_params(verbose=0)
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


def _translate(args, progress):
    from skembed._io import load_aligner
    from skembed._views import resolve_view

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
    width = aligner.n_features_per_view_[resolve_view(aligner, source)]
    if X.shape[1] != width:
        raise UserError(
            f"input {args.input} has {X.shape[1]} columns, but view {args.source!r} "
            f"of the model has {width}."
        )
    with progress.step(f"translating {X.shape[0]} rows"), _blas_threads(X.size):
        out = aligner.translate(X, source, target)
    _write_array(out, args.output)
    progress.say(f"wrote {out.shape[0]} x {out.shape[1]} to {args.output}")
    return 0


# ---------------------------------------------------------------------- parser
def _estimator_defaults(name):
    """Constructor defaults of a public estimator, by class name."""
    import skembed

    return getattr(skembed, name)().get_params()


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
    demo.set_defaults(handler=_demo)

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
    report.set_defaults(handler=_report)

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
    align.add_argument("--method", choices=_METHODS, default="procrustes")
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
    cca_defaults = _estimator_defaults("CCAAligner")
    ridge_defaults = _estimator_defaults("RidgeAligner")
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
    align.set_defaults(handler=_align)

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
    translate.set_defaults(handler=_translate)
    return parser


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv=None):
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "demo" and args.source == args.target:
        parser.error("--source and --target must name two different models")
    progress = _Progress(args.quiet)
    try:
        return args.handler(args, progress)
    except UserError as exc:
        message = _one_line(exc)
    except FileNotFoundError as exc:
        message = f"{exc.filename}: file not found."
    except (ValueError, OSError) as exc:
        message = _one_line(exc)
    except KeyboardInterrupt:
        print("skembed: interrupted", file=sys.stderr)
        return 130
    print(f"skembed {args.command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
