"""Speed and memory of every skembed estimator against its BLAS floor.

Prints one table: for each estimator, fit and transform time as a ratio to
the BLAS work it cannot avoid (see ``_common.py`` for the exact floors),
measured side by side in one process on the same two paired float32 views
of width 384 (float64 as well for ``ProcrustesAligner``), best of
``--repeat`` interleaved runs; and the peak extra memory of fit and
transform, read from the operating system in a fresh subprocess per case,
in MB and as a fraction of the input. A second table compares with other
libraries on the same arrays: scipy's ``orthogonal_procrustes``,
scikit-learn's ``Ridge`` and (on 10,000 rows, since it iterates) its ``CCA``;
cca-zoo when it is installed.

Targets (issue "scale", at 1M rows float32): Procrustes fit <= 1.10 x floor,
CCA fit <= 1.15 x floor, transform >= 0.9 x the floor's throughput
(ratio <= 1.11), extra memory < 5% of the input.

Usage::

    python benchmarks/run.py [--quick] [--rows N] [--repeat 3] [--no-memory]
                             [--cold-pages] [--only ProcrustesAligner ...]

``--quick`` uses 100,000 rows instead of 1,000,000, ``--rows`` any number.
Ratios are meaningful only on an otherwise idle machine: the load average is
printed with the table.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import gc
import time
from pathlib import Path

import numpy as np
from _common import (
    CCA_COMPONENTS,
    MB,
    Table,
    _competitors,
    available_estimators,
    interleaved_best,
    load_average,
    make_views,
    memory_in_subprocess,
    positive_int,
    release_freed_memory,
    reuse_freed_memory,
    time_estimator,
)

HELPER = str(Path(__file__).with_name("_common.py"))
ALL = [
    "ProcrustesAligner",
    "GeneralizedProcrustesAligner",
    "CCAAligner",
    "RidgeAligner",
    "EmbeddingConcatenator",
]
COMPETING = {"ProcrustesAligner": "scipy_procrustes", "RidgeAligner": "sklearn_ridge"}


def _memory(case, skip):
    if skip:
        return None, None
    release_freed_memory()
    result = memory_in_subprocess(HELPER, case)
    if "error" in result:
        print(f"  memory case {case} failed: {result['error']}")
        return None, None
    return result["extra"] / MB, result["extra"] / result["input"]


def _compare_sklearn_cca(repeat, rows=10_000):
    """CCAAligner against scikit-learn's iterative CCA (10,000 rows), k=16."""
    import warnings

    from sklearn.cross_decomposition import CCA
    from sklearn.exceptions import ConvergenceWarning

    from skembed import CCAAligner

    X, Y, _ = make_views(rows, np.float32)
    ours = interleaved_best(
        {"ours": lambda: CCAAligner(n_components=16).fit([X, Y])}, repeat
    )["ours"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        CCA(n_components=16).fit(X, Y)
        theirs = time.perf_counter() - start
    return ours, theirs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k rows, not 1M")
    parser.add_argument(
        "--rows",
        type=positive_int,
        default=None,
        help="rows per view (overrides --quick)",
    )
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument(
        "--cold-pages",
        action="store_true",
        help="let new arrays take fresh pages from the OS (see _common.py)",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only or ()) - set(ALL))
    if unknown:
        parser.error(
            f"--only {' '.join(unknown)}: not benchmarked here; choose among "
            f"{', '.join(ALL)}"
        )
    n = 100_000 if args.quick else 1_000_000
    if args.rows is not None:
        n = args.rows
    names = args.only or ALL
    if "CCAAligner" in names and n <= CCA_COMPONENTS:
        parser.error(
            f"--rows {n}: CCAAligner keeps {CCA_COMPONENTS} components, which "
            f"needs more rows than that (or leave it out with --only)"
        )
    warm = False if args.cold_pages else reuse_freed_memory()
    estimators, missing = available_estimators(names)
    print(
        f"{n:,} x 384 per view, best of {args.repeat}; load {load_average():.2f}; "
        f"new arrays on {'reused' if warm else 'fresh'} pages"
    )

    table = Table(
        [
            "estimator",
            "dtype",
            "fit s",
            "fit/floor",
            "transform s",
            "tr/floor",
            "tr/fresh",
            "fit extra MB",
            "fit extra/input",
            "tr extra MB",
            "tr extra/input",
        ]
    )
    others = Table(["other library", "dtype", "rows", "its s", "skembed s", "ratio"])
    results = {}
    for dtype in (np.float32, np.float64):
        chosen = {
            name: spec
            for name, spec in estimators.items()
            if dtype is np.float32 or name == "ProcrustesAligner"
        }
        if not chosen:
            continue
        X, Y, _ = make_views(n, dtype)
        dname = np.dtype(dtype).name
        for name, (make, floor) in chosen.items():
            times = time_estimator(name, make, floor, X, Y, repeat=args.repeat)
            results[name, dname] = times
            case = {"n": n, "dtype": dname, "name": name}
            fit_mb, fit_frac = _memory({**case, "kind": "fit"}, args.no_memory)
            tr_mb, tr_frac = _memory({**case, "kind": "transform"}, args.no_memory)
            table.add(
                name,
                dname,
                times["fit"],
                times["fit"] / times["fit_floor"],
                times["transform"],
                times["transform"] / times["transform_floor"],
                times["transform"] / times["transform_fresh"],
                fit_mb,
                fit_frac,
                tr_mb,
                tr_frac,
            )
            if name in COMPETING and name in chosen:
                other = COMPETING[name]
                call, label = _competitors()[other]
                best = interleaved_best(
                    {
                        "ours": lambda make=make, X=X, Y=Y: make().fit([X, Y]),
                        "theirs": lambda call=call, X=X, Y=Y: call(X, Y),
                    },
                    args.repeat,
                )
                other_mb, _ = _memory(
                    {"n": n, "dtype": dname, "name": other, "kind": "competitor"},
                    args.no_memory,
                )
                label = f"{label} (extra {other_mb:.0f} MB)" if other_mb else label
                others.add(
                    label,
                    dname,
                    n,
                    best["theirs"],
                    best["ours"],
                    best["theirs"] / best["ours"],
                )
            print(f"  done {name} {dname} (load {load_average():.2f})", flush=True)
        del X, Y
        gc.collect()
        release_freed_memory()

    if "CCAAligner" in estimators:
        rows = min(n, 10_000)
        ours, theirs = _compare_sklearn_cca(args.repeat, rows)
        others.add(
            "sklearn CCA k=16 (NIPALS)", "float32", rows, theirs, ours, theirs / ours
        )
    try:
        import cca_zoo  # noqa: F401
    except ImportError:
        others.add("cca-zoo: not installed", None, None, None, None, None)

    print()
    print(table.render())
    print()
    print("ratio = other library's time / skembed's time (> 1: skembed faster)")
    print(others.render())
    if missing:
        print(f"\nnot in this skembed: {', '.join(missing)}")
    print(f"\nload average at the end: {load_average():.2f}")
    _print_targets(results, n)


def _print_targets(results, n):
    print(f"\ntargets (stated for 1M rows float32; this run: {n:,} rows)")
    checks = [
        ("ProcrustesAligner fit <= 1.10 x floor", "ProcrustesAligner", "fit", 1.10),
        ("CCAAligner fit <= 1.15 x floor", "CCAAligner", "fit", 1.15),
    ]
    for name in ALL:
        checks.append((f"{name} transform <= 1.11 x floor", name, "transform", 1.11))
    for label, name, phase, bound in checks:
        times = results.get((name, "float32"))
        if times is None:
            continue
        ratio = times[phase] / times[f"{phase}_floor"]
        verdict = "met" if ratio <= bound else "NOT met"
        print(f"  {label}: {ratio:.3f} -> {verdict}")


if __name__ == "__main__":
    main()
