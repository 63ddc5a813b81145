"""CCAAligner against the BLAS floor, scikit-learn's CCA and PLSSVD.

Two float32 views of width 384 share a latent signal of known canonical
correlations; they are generated in place, chunk by chunk. At each size the
script measures, in one process and on the same arrays:

- ``floor``: the unavoidable work of any closed-form CCA, ``X.T @ X``,
  ``Y.T @ Y`` and ``X.T @ Y`` with numpy (float32 BLAS, the Gram products
  through ``syrk``) plus the small float64 decompositions (two ``eigh`` and
  one ``svd`` of 384 x 384 matrices);
- ``CCAAligner``: ``fit`` on the list ``[X, Y]`` (reg=0, n_components=k), its
  ratio to the floor and its peak extra memory (tracemalloc around ``fit``);
- at 10,000 rows only, :class:`sklearn.cross_decomposition.CCA` (NIPALS,
  default ``max_iter``) and :class:`~sklearn.cross_decomposition.PLSSVD` with
  the same k.

Accuracy is the largest error over the k canonical correlations against a
float64 closed-form reference computed from float64 copies of the rows (the
correlations of scikit-learn's CCA are those of its paired scores). PLSSVD
maximises covariance, not correlation, so it has no correlation error.

Times are the best of ``--repeat`` runs (sklearn's CCA runs once), in wall
clock and in process CPU time; on a busy machine run with ``--threads 1`` and
read the CPU ratios, which other processes barely disturb. The targets
checked at the end: fit <= 1.15 x floor at 1M x 384, >= 100 x faster than
scikit-learn's CCA at 10k x 384 with k = 16 and no worse accuracy, extra
memory < 64 MB at 1M x 384.

Usage::

    python benchmarks/bench_cca.py [--quick] [--rows N] [--k 16] [--repeat 3]
                                   [--hstack] [--threads N] [--no-sklearn]

``--quick`` skips the 1M-row size; ``--rows`` runs one size instead of both
(a quick check); ``--hstack`` also times ``fit`` on one (n, 768) array
holding both views, the layout a Pipeline passes.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import gc
import time
import tracemalloc
import warnings

import numpy as np
from _common import positive_int
from scipy import linalg
from sklearn.cross_decomposition import CCA, PLSSVD
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info, threadpool_limits

from skembed import CCAAligner

WIDTH = 384
MIN_ROWS = 500
N_LATENT = 32


def make_views(n, seed=0, chunk=65536):
    """Two (n, 384) float32 views sharing 32 latent factors, written in place.

    Factor j enters both views with standard deviation s_j (3 down to 0.3)
    along orthonormal directions, on top of unit isotropic noise, so the true
    canonical correlations s_j^2 / (s_j^2 + 1) are distinct and decrease from
    0.9 to 0.08.
    """
    rng = np.random.default_rng(seed)
    loadings = [
        np.linalg.qr(rng.normal(size=(WIDTH, WIDTH)))[0][:N_LATENT].astype(np.float32)
        for _ in range(2)
    ]
    strength = np.linspace(3.0, 0.3, N_LATENT).astype(np.float32)
    X = np.empty((n, WIDTH), dtype=np.float32)
    Y = np.empty((n, WIDTH), dtype=np.float32)
    latent = np.empty((chunk, N_LATENT), dtype=np.float32)
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        rng.standard_normal(out=latent[:rows], dtype=np.float32)
        latent[:rows] *= strength
        for out, loading in zip((X, Y), loadings, strict=True):
            block = out[start : start + rows]
            rng.standard_normal(out=block, dtype=np.float32)
            block += latent[:rows] @ loading
    return X, Y


def reference_correlations(X, Y, k, chunk=65536):
    """Float64 closed-form canonical correlations (unregularised)."""
    n = X.shape[0]
    sums = [np.zeros(WIDTH), np.zeros(WIDTH)]
    blocks = {key: np.zeros((WIDTH, WIDTH)) for key in ("xx", "yy", "xy")}
    for start in range(0, n, chunk):
        x = X[start : start + chunk].astype(np.float64)
        y = Y[start : start + chunk].astype(np.float64)
        sums[0] += x.sum(axis=0)
        sums[1] += y.sum(axis=0)
        blocks["xx"] += x.T @ x
        blocks["yy"] += y.T @ y
        blocks["xy"] += x.T @ y
    Cxx = blocks["xx"] - np.outer(sums[0], sums[0]) / n
    Cyy = blocks["yy"] - np.outer(sums[1], sums[1]) / n
    Cxy = blocks["xy"] - np.outer(sums[0], sums[1]) / n
    Lx, Ly = linalg.cholesky(Cxx, lower=True), linalg.cholesky(Cyy, lower=True)
    T = linalg.solve_triangular(Lx, Cxy, lower=True)
    T = linalg.solve_triangular(Ly, T.T, lower=True).T
    return linalg.svd(T, compute_uv=False)[:k]


def floor_fit(X, Y):
    """The BLAS products and the small decompositions any closed form needs."""
    Cxx, Cyy, Cxy = X.T @ X, Y.T @ Y, X.T @ Y
    ex = linalg.eigh(Cxx.astype(np.float64))
    ey = linalg.eigh(Cyy.astype(np.float64))
    Wx = (ex[1] / np.sqrt(np.abs(ex[0]) + 1e-30)) @ ex[1].T
    Wy = (ey[1] / np.sqrt(np.abs(ey[0]) + 1e-30)) @ ey[1].T
    return linalg.svd(Wx @ Cxy.astype(np.float64) @ Wy, full_matrices=False)


def best_time(func, repeat):
    """Best wall-clock and best CPU time (seconds) over ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        func()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def peak_extra_memory(func):
    """Peak memory allocated while ``func`` runs, in MB (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    func()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def sklearn_correlations(model, X, Y):
    x_scores, y_scores = model.transform(X, Y)
    return np.array(
        [
            np.corrcoef(x_scores[:, s], y_scores[:, s])[0, 1]
            for s in range(x_scores.shape[1])
        ]
    )


def run_size(n, k, repeat, with_sklearn, hstack):
    rows = []
    X, Y = make_views(n)
    reference = reference_correlations(X, Y, k)

    def ours():
        return CCAAligner(n_components=k, reg=0).fit([X, Y])

    floor, floor_cpu = best_time(lambda: floor_fit(X, Y), repeat)
    rows.append(
        dict(method="floor (numpy X'X+Y'Y+X'Y + eigh/svd)", time=floor, cpu=floor_cpu)
    )
    ours()  # warm-up (imports, BLAS threads)
    ours_time, ours_cpu = best_time(ours, repeat)
    rho = ours().canonical_correlations_
    rows.append(
        dict(
            method="CCAAligner.fit([X, Y])",
            time=ours_time,
            cpu=ours_cpu,
            error=np.max(np.abs(rho - reference)),
            memory=peak_extra_memory(ours),
        )
    )
    if hstack:
        XY = np.hstack([X, Y])

        def ours_hstack():
            return CCAAligner(n_components=k, reg=0).fit(XY)

        wall, cpu = best_time(ours_hstack, repeat)
        rows.append(
            dict(
                method="CCAAligner.fit(hstack([X, Y]))",
                time=wall,
                cpu=cpu,
                memory=peak_extra_memory(ours_hstack),
            )
        )
        del XY
    if with_sklearn:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            wall, cpu = time.perf_counter(), time.process_time()
            model = CCA(n_components=k).fit(X, Y)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rows.append(
            dict(
                method="sklearn CCA (NIPALS)",
                time=wall,
                cpu=cpu,
                error=np.max(np.abs(sklearn_correlations(model, X, Y) - reference)),
            )
        )
        wall, cpu = best_time(lambda: PLSSVD(n_components=k).fit(X, Y), repeat)
        rows.append(dict(method="sklearn PLSSVD", time=wall, cpu=cpu))
    for row in rows:
        row["n"] = n
        row["ratio"] = row["time"] / floor
        row["cpu_ratio"] = row["cpu"] / floor_cpu
        row["speedup"] = row["time"] / ours_time
    return rows


def print_table(rows, k, threads):
    header = (
        f"{'rows x width':>14} {'method':<36} {'wall s':>8} {'/floor':>7} "
        f"{'cpu s':>8} {'/floor':>7} {'/ours':>7} {'max|drho|':>10} {'extra MB':>9}"
    )
    print(
        f"float32, k = {k} components, width {WIDTH}, BLAS threads: {threads}; "
        "'/floor' = wall and CPU time ratios, '/ours' = wall time ratio"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        error = f"{row['error']:.1e}" if "error" in row else "-"
        memory = f"{row['memory']:.1f}" if "memory" in row else "-"
        print(
            f"{row['n']:>10,} x {WIDTH} {row['method']:<36} {row['time']:>8.3f} "
            f"{row['ratio']:>7.2f} {row['cpu']:>8.3f} {row['cpu_ratio']:>7.2f} "
            f"{row['speedup']:>7.1f} {error:>10} {memory:>9}"
        )


def check_targets(rows):
    def find(n, method):
        return next(r for r in rows if r["n"] == n and r["method"].startswith(method))

    print()
    sk = next((r for r in rows if r["method"].startswith("sklearn CCA")), None)
    if sk is not None and any(r["n"] == 10_000 for r in rows):
        small = find(10_000, "CCAAligner")
        speedup = sk["time"] / small["time"]
        ok = speedup >= 100 and small["error"] <= sk["error"]
        print(
            f"[{'ok' if ok else 'MISS'}] 10k: {speedup:.0f} x faster than "
            f"sklearn CCA (target >= 100), error {small['error']:.1e} vs "
            f"{sk['error']:.1e}"
        )
    if any(r["n"] == 1_000_000 for r in rows):
        big = find(1_000_000, "CCAAligner")
        print(
            f"[{'ok' if big['ratio'] <= 1.15 else 'MISS'}] 1M: {big['ratio']:.2f} x "
            f"floor in wall time, {big['cpu_ratio']:.2f} x in CPU time "
            "(target <= 1.15)"
        )
        print(
            f"[{'ok' if big['memory'] < 64 else 'MISS'}] 1M: {big['memory']:.1f} MB "
            "extra memory (target < 64)"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip 1M rows")
    parser.add_argument(
        "--rows",
        type=positive_int,
        default=None,
        help="one size instead (a quick check)",
    )
    parser.add_argument(
        "--k", type=positive_int, default=16, help="number of components"
    )
    parser.add_argument("--repeat", type=positive_int, default=3, help="timing repeats")
    parser.add_argument(
        "--hstack", action="store_true", help="also time fit on one (n, 768) array"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="limit BLAS threads (threadpoolctl)",
    )
    parser.add_argument(
        "--no-sklearn", action="store_true", help="skip scikit-learn's CCA and PLSSVD"
    )
    args = parser.parse_args(argv)
    if args.k > WIDTH:
        parser.error(f"--k {args.k}: the views have {WIDTH} features")
    # reg=0 needs full-rank covariances: more rows than features, with a
    # margin (at 400 rows of these views one is still numerically
    # rank-deficient; 410 and more fit).
    if args.rows is not None and args.rows < MIN_ROWS:
        parser.error(
            f"--rows {args.rows}: CCAAligner(reg=0) needs full-rank covariances, "
            f"at least {MIN_ROWS} rows of these {WIDTH}-wide views"
        )
    with threadpool_limits(limits=args.threads, user_api="blas"):
        threads = max(
            (
                info["num_threads"]
                for info in threadpool_info()
                if info["user_api"] == "blas"
            ),
            default=1,
        )
        first = 10_000 if args.rows is None else args.rows
        rows = run_size(first, args.k, args.repeat, not args.no_sklearn, args.hstack)
        if not args.quick and args.rows is None:
            rows += run_size(1_000_000, args.k, args.repeat, False, args.hstack)
    print_table(rows, args.k, threads)
    check_targets(rows)


if __name__ == "__main__":
    main()
