"""ProcrustesAligner fit against its BLAS floor and scipy's orthogonal_procrustes.

Two paired views of width 384 (``Y = X Q + noise + shift``, Q a random
rotation) at 100,000 and 1,000,000 rows, float32 and float64. In one process
and on the same arrays, interleaved and best of ``--repeat``:

- ``floor``: ``X.T @ Y`` plus the float64 SVD of the 384 x 384 result, the
  work no Procrustes fit can avoid;
- ``ProcrustesAligner().fit([X, Y])`` (centred, so it also needs the column
  sums, which it reads in the same pass);
- ``scipy.linalg.orthogonal_procrustes(X, Y)`` (uncentred; it returns no
  reusable map, no translation, and copies an input).

Peak extra memory of both calls comes from the operating system, each in a
fresh subprocess. Targets: fit <= 1.10 x floor, faster than scipy, extra
memory < 64 MB at 1M x 384 float32.

Usage::

    python benchmarks/bench_procrustes.py [--quick] [--rows N] [--repeat 3]
                                          [--no-memory] [--cold-pages]

``--quick`` runs the 100,000-row size only; ``--rows`` one size of its own
instead (a quick check).
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import gc
from pathlib import Path

import numpy as np
from _common import (
    MB,
    Table,
    _competitors,
    floor_fit,
    interleaved_best,
    load_average,
    make_views,
    memory_in_subprocess,
    positive_int,
    release_freed_memory,
    reuse_freed_memory,
)

from skembed import ProcrustesAligner

HELPER = str(Path(__file__).with_name("_common.py"))


def _extra_mb(case, skip):
    if skip:
        return None
    release_freed_memory()
    result = memory_in_subprocess(HELPER, case)
    return None if "error" in result else result["extra"] / MB


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k rows only")
    parser.add_argument(
        "--rows",
        type=positive_int,
        default=None,
        help="one size instead (a quick check)",
    )
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument(
        "--cold-pages",
        action="store_true",
        help="let new arrays take fresh pages from the OS (see _common.py)",
    )
    args = parser.parse_args(argv)
    warm = False if args.cold_pages else reuse_freed_memory()
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    if args.rows is not None:
        sizes = [args.rows]
    scipy_call, _ = _competitors()["scipy_procrustes"]
    print(
        f"best of {args.repeat}; load {load_average():.2f}; "
        f"new arrays on {'reused' if warm else 'fresh'} pages"
    )
    table = Table(
        [
            "rows",
            "dtype",
            "floor s",
            "fit s",
            "fit/floor",
            "scipy s",
            "scipy/fit",
            "extra MB",
            "scipy extra MB",
        ]
    )
    verdicts = []
    for n in sizes:
        for dtype in (np.float32, np.float64):
            X, Y, Q = make_views(n, dtype)
            best = interleaved_best(
                {
                    "floor": lambda X=X, Y=Y: floor_fit(X, Y),
                    "fit": lambda X=X, Y=Y: ProcrustesAligner().fit([X, Y]),
                    "scipy": lambda X=X, Y=Y: scipy_call(X, Y),
                },
                args.repeat,
            )
            rotation = ProcrustesAligner().fit([X, Y]).rotations_[1]
            error = np.abs(rotation - Q.T).max()
            del X, Y
            gc.collect()
            dname = np.dtype(dtype).name
            case = {"n": n, "dtype": dname, "name": "ProcrustesAligner"}
            ours_mb = _extra_mb({**case, "kind": "fit"}, args.no_memory)
            case = {"n": n, "dtype": dname, "name": "scipy_procrustes"}
            scipy_mb = _extra_mb({**case, "kind": "competitor"}, args.no_memory)
            ratio = best["fit"] / best["floor"]
            table.add(
                n,
                dname,
                best["floor"],
                best["fit"],
                ratio,
                best["scipy"],
                best["scipy"] / best["fit"],
                ours_mb,
                scipy_mb,
            )
            print(
                f"  {n:,} {dname}: done (rotation error {error:.1e}, "
                f"load {load_average():.2f})",
                flush=True,
            )
            if n == sizes[-1] and dtype is np.float32:
                verdicts = [
                    ("fit <= 1.10 x floor", ratio <= 1.10, f"{ratio:.3f}"),
                    (
                        "faster than scipy",
                        best["fit"] < best["scipy"],
                        f"{best['scipy'] / best['fit']:.2f} x",
                    ),
                ]
                if ours_mb is not None:
                    verdicts.append(
                        ("extra memory < 64 MB", ours_mb < 64, f"{ours_mb:.1f} MB")
                    )
    print()
    print(table.render())
    print(f"\nload average at the end: {load_average():.2f}")
    print(f"targets at {sizes[-1]:,} rows float32 (stated for 1,000,000):")
    for label, met, value in verdicts:
        print(f"  {label}: {value} -> {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
