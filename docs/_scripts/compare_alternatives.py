"""Fit time of skembed against the alternatives quoted in the README.

Two row-paired float32 views of 10,000 x 384 (B is a rotation of A plus
noise), one BLAS thread, CPU seconds of the best of a few repeats (stable on a busy
machine); prints a Markdown table.
Optional packages (cca-zoo, mvlearn) are measured when they import and run.

    python docs/_scripts/compare_alternatives.py [ROWS]

ROWS (default 10,000) must be at least 400: the width plus the number of
components, so that CCA without regularisation sees full-rank covariances.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import time
import warnings

import numpy as np
from scipy.linalg import orthogonal_procrustes
from scipy.stats import ortho_group
from threadpoolctl import threadpool_limits

from skembed import CCAAligner, ProcrustesAligner

N_SAMPLES, N_FEATURES, N_COMPONENTS = 10_000, 384, 16
MIN_SAMPLES = N_FEATURES + N_COMPONENTS


def best_time(fit, repeats):
    times = []
    for _ in range(repeats):
        start = time.process_time()
        result = fit()
        times.append(time.process_time() - start)
    return min(times), result


def main(n_samples=N_SAMPLES):
    rng = np.random.default_rng(0)
    A = rng.normal(size=(n_samples, N_FEATURES)).astype(np.float32)
    Q = ortho_group.rvs(N_FEATURES, random_state=0)
    B = (A @ Q + 0.5 * rng.normal(size=A.shape)).astype(np.float32)
    rows = []

    def centred_scipy():
        return orthogonal_procrustes(A - A.mean(axis=0), B - B.mean(axis=0))[0]

    t, R = best_time(centred_scipy, 5)
    rows.append(("scipy.linalg.orthogonal_procrustes (centred)", t, ""))
    t, aligner = best_time(lambda: ProcrustesAligner().fit([A, B]), 5)
    error = np.abs(aligner.rotations_[1].T - R).max()
    rows.append(("skembed ProcrustesAligner", t, f"max abs(W - W_scipy) {error:.1e}"))

    t, cca = best_time(
        lambda: CCAAligner(n_components=N_COMPONENTS, reg=0.0).fit([A, B]), 3
    )
    rows.append((f"skembed CCAAligner(n_components={N_COMPONENTS})", t, ""))
    reference = cca.canonical_correlations_
    try:
        from sklearn.cross_decomposition import CCA

        def sklearn_cca():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return CCA(n_components=N_COMPONENTS, max_iter=500).fit(A, B)

        t, model = best_time(sklearn_cca, 1)
        U, V = model.transform(A, B)
        rho = [np.corrcoef(U[:, j], V[:, j])[0, 1] for j in range(N_COMPONENTS)]
        gap = np.abs(np.sort(rho)[::-1] - reference).max()
        rows.append(
            (
                f"scikit-learn CCA (NIPALS), n_components={N_COMPONENTS}",
                t,
                f"max abs(rho - rho_skembed) {gap:.1e}",
            )
        )
    except Exception as exc:  # pragma: no cover - reported, not fatal
        rows.append(("scikit-learn CCA", None, f"failed: {exc}"))
    try:
        from cca_zoo.linear import CCA as ZooCCA

        t, model = best_time(lambda: ZooCCA(n_components=N_COMPONENTS).fit((A, B)), 3)
        U, V = model.transform((A, B))
        rho = [np.corrcoef(U[:, j], V[:, j])[0, 1] for j in range(N_COMPONENTS)]
        gap = np.abs(np.sort(rho)[::-1] - reference).max()
        rows.append(("cca-zoo CCA", t, f"max abs(rho - rho_skembed) {gap:.1e}"))
    except ImportError:
        rows.append(("cca-zoo CCA", None, "not installed"))
    except Exception as exc:
        rows.append(("cca-zoo CCA", None, f"failed: {type(exc).__name__}"))
    try:
        from mvlearn.embed import CCA as MvCCA

        t, _ = best_time(lambda: MvCCA(n_components=N_COMPONENTS).fit([A, B]), 1)
        rows.append(("mvlearn CCA", t, ""))
    except ImportError:
        rows.append(("mvlearn CCA", None, "not installed"))
    except Exception as exc:
        rows.append(("mvlearn CCA", None, f"failed: {type(exc).__name__}"))

    print(f"{n_samples} x {N_FEATURES} float32 per view, one BLAS thread, CPU s\n")
    print("| method | fit time (s) | note |\n|---|---|---|")
    for name, seconds, note in rows:
        shown = "-" if seconds is None else f"{seconds:.3f}"
        print(f"| {name} | {shown} | {note} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "rows", nargs="?", type=int, default=N_SAMPLES, help="rows of each view"
    )
    args = parser.parse_args()
    # CCAAligner(reg=0) needs each view's covariance of full rank: more rows
    # than features, with a margin (at 392 rows of this data a view is still
    # numerically rank-deficient), and the width plus n_components is enough.
    if args.rows < MIN_SAMPLES:
        parser.error(
            f"rows must be at least {MIN_SAMPLES} ({N_FEATURES} features + "
            f"{N_COMPONENTS} components, so that CCA without regularisation "
            f"has full-rank covariances), got {args.rows}"
        )
    with threadpool_limits(limits=1, user_api="blas"):
        main(args.rows)
