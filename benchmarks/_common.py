"""Shared helpers of the benchmarks: data, BLAS floors, timing and OS memory.

Every case times an estimator against its *BLAS floor*, the dense products it
cannot avoid, run on the same arrays in the same process, interleaved and
repeated (best of ``repeat``), so that the ratio survives a noisy machine
better than absolute times do:

- fit of a closed-form aligner: the d x d products of the statistics it needs
  (``X.T @ Y`` for Procrustes; also ``X.T @ X`` and ``Y.T @ Y``, through
  numpy's ``syrk``, for the methods that need Gram matrices) plus one
  float64 decomposition of a d x d matrix per view;
- transform of an aligner: one product per view of the same shape as its map,
  written into a preallocated output (a copy for a view whose map is the
  identity, as the Procrustes reference's is); the table also shows the ratio
  to the same products written into a new array ("fresh"), as a
  ``transform`` must return one. By default new arrays reuse pages the
  process already holds (see :func:`reuse_freed_memory`); with
  ``--cold-pages`` they take fresh pages from the OS, whose first touch
  costs a page fault (on bare metal the kernel zeroing the page);
- ``EmbeddingConcatenator``: one BLAS read pass over each view for fit, one
  scaled copy into a preallocated output for transform.

Peak memory comes from the operating system: each memory case runs in a fresh
subprocess, which builds the data, resets the kernel's peak resident-set
counter (``/proc/self/clear_refs``; the lifetime ``ru_maxrss`` elsewhere) and
reports the peak reached during the call above the resident size before it.
For transform, the output array itself is subtracted as well.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WIDTH = 384
MB = 2**20
# The components of the CCAAligner that run.py times.
CCA_COMPONENTS = 64


# ---------------------------------------------------------------------- data
# The shared corpora (full fortunes and WordNet data): the folder named by the
# corpus's variable, else the one next to the repository.
CORPUS_VARIABLES = {
    "fortunes": "SKEMBED_FORTUNES_DIR",
    "wordnet": "SKEMBED_WORDNET_DIR",
}


def corpus_dir(name, argument=None):
    """The folder of shared corpus ``name``: ``argument``, its variable or default."""
    if argument:
        return Path(argument)
    env = os.environ.get(CORPUS_VARIABLES[name])
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / name


CORPUS_LABELS = {"fortunes": "fortunes", "wordnet": "WordNet"}


def require_corpus(name, folder, files, option):
    """``folder`` as a Path when it holds all ``files``; else exit with one line.

    The line names the folder, the missing files, the command-line ``option``
    that passes another folder and the environment variable of corpus
    ``name``, instead of the traceback of the first file that fails to open.
    """
    folder = Path(folder)
    missing = [file for file in files if not (folder / file).exists()]
    if missing:
        sys.exit(
            f"The {CORPUS_LABELS[name]} data set was not found in {folder} "
            f"(missing {', '.join(missing)}). Pass {option} DIR or set "
            f"{CORPUS_VARIABLES[name]} to the folder holding it."
        )
    return folder


def corpus_help(name, holding="<model>.npy"):
    """The help text of a command-line option giving the folder of corpus ``name``."""
    return (
        f"folder of the {CORPUS_LABELS[name]} corpus ({holding}); default: "
        f"${CORPUS_VARIABLES[name]}, else ../shared/data/{name} next to the "
        "repository"
    )


# ----------------------------------------------------------------- arguments
def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text):
    """argparse type: an integer of at least 1 (a size, a count, a repeat)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text):
    """argparse type: an integer of at least 0 (a random seed)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def non_negative_float(text):
    """argparse type: a finite number of at least 0 (a scale)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"must be a finite number of at least 0, got {text}"
        )
    return value


def make_views(n, dtype, *, width=WIDTH, seed=0, chunk=16384):
    """Two paired (n, width) views, ``Y = X Q + noise + shift``, built in place.

    ``X`` has column scales between 0.5 and 2 and a moderate mean; ``Q`` is a
    random rotation. Rows are generated chunk by chunk, so building the data
    never needs more memory than the data plus one chunk.
    """
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.normal(size=(width, width)))[0]
    scales = np.linspace(0.5, 2.0, width)
    mean = rng.normal(size=width) * 0.5
    X = np.empty((n, width), dtype=dtype)
    Y = np.empty((n, width), dtype=dtype)
    Q_dtype = Q.astype(dtype)
    shift = np.dtype(dtype).type(0.2)
    for start in range(0, n, chunk):
        rows = slice(start, min(n, start + chunk))
        block = rng.standard_normal((rows.stop - start, width))
        X[rows] = block * scales + mean
        np.matmul(X[rows], Q_dtype, out=Y[rows])
        noise = 0.1 * rng.standard_normal((rows.stop - start, width))
        Y[rows] += noise.astype(dtype) + shift
    return X, Y, Q


# -------------------------------------------------------------------- floors
def floor_fit(X, Y, *, grams=(), decompositions=("svd",)):
    """The products and small decompositions a closed-form fit cannot avoid.

    ``grams`` lists the views (0 for X, 1 for Y) whose Gram matrix is needed;
    ``decompositions`` the float64 d x d factorisations (``"svd"``, ``"eigh"``).
    """
    cross = (X.T @ Y).astype(np.float64)
    for k in grams:
        block = (X, Y)[k]
        block.T @ block
    for name in decompositions:
        if name == "svd":
            np.linalg.svd(cross)
        else:
            np.linalg.eigh(cross @ cross.T)


def floor_transform(blocks, projections, out):
    """One product per view (a copy for an identity map) into ``out``."""
    start = 0
    for block, projection in zip(blocks, projections, strict=True):
        stop = start + (block.shape[1] if projection is None else projection.shape[1])
        if projection is None:
            np.copyto(out[:, start:stop], block)
        else:
            np.matmul(block, projection, out=out[:, start:stop])
        start = stop


def fitted_projections(estimator, dtype):
    """The per-view maps of a fitted aligner, None for the identity."""
    maps = []
    for projection in estimator._projections:
        square = projection.shape[0] == projection.shape[1]
        if square and np.array_equal(projection, np.eye(projection.shape[0])):
            maps.append(None)
        else:
            maps.append(projection.astype(dtype))
    return maps


# -------------------------------------------------------------------- timing
def interleaved_best(functions, repeat=3):
    """Best wall time of every function, running them in turn ``repeat`` times."""
    best = dict.fromkeys(functions, np.inf)
    for _ in range(repeat):
        for name, function in functions.items():
            gc.collect()
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def best_time(function, repeat=1):
    """Shortest wall time of ``repeat`` calls of ``function()``, in seconds."""
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def reuse_freed_memory():
    """Serve large arrays from memory this process already touched (glibc).

    Every ``transform`` returns a new array, and so does a GEMM that is not
    given an output. The first write to each fresh page costs a page fault,
    which on bare metal is the kernel zeroing the page (a few percent of a
    384-wide float32 product), but on a virtual machine that hands freed
    pages back to its host (free page reporting) can also cost a fault in
    the host: on the machine these benchmarks were written on, touching the
    same fresh 3 GB array took between 0.13 s and 6.7 s of system time from
    one call to the next, more than the product itself. That noise belongs
    to the machine, not to the code measured, so by default the benchmarks
    ask glibc to allocate large blocks from its heap and never return freed
    memory; a new array then reuses pages already resident, for skembed and
    for the floors alike. Pass ``--cold-pages`` to measure with fresh pages.
    The first of the ``repeat`` runs of a case still takes fresh pages;
    best-of-``repeat`` reports a later one. Call :func:`release_freed_memory`
    before anything else needs the memory (a subprocess, a larger dtype).
    Returns whether the request was taken (False off glibc).
    """
    libc = _libc()
    if libc is None:
        return False
    try:
        m_trim_threshold, m_mmap_max = -1, -4
        # No mmap for large blocks, and a trim threshold of -1 disables
        # trimming: freed memory stays with the process.
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(
            libc.mallopt(m_trim_threshold, -1)
        )
    except AttributeError:
        return False


def release_freed_memory():
    """Give memory freed since :func:`reuse_freed_memory` back to the OS."""
    libc = _libc()
    if libc is not None:
        try:
            libc.malloc_trim(0)
        except AttributeError:
            pass


def _libc():
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        return float("nan")


# -------------------------------------------------------------------- memory
def _status_kib(field_name):
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak():
    """Reset the kernel's peak RSS counter; False where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def resident_bytes():
    """Current and peak resident set size in bytes."""
    current = _status_kib("VmRSS")
    peak = _status_kib("VmHWM")
    if peak is None:
        # ru_maxrss is in KiB on Linux, in bytes on macOS.
        scale = 1 if sys.platform == "darwin" else 1024
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
        return (current or 0) * 1024, peak
    return current * 1024, peak * 1024


def measure_peak(function):
    """Run ``function`` and return (result, peak bytes above the start RSS)."""
    gc.collect()
    reset_peak()
    before, _ = resident_bytes()
    result = function()
    _, peak = resident_bytes()
    return result, max(0, peak - before)


def memory_in_subprocess(script, case, timeout=1800):
    """Run ``script --memory-case CASE`` in a fresh interpreter; parse its JSON."""
    completed = subprocess.run(
        [sys.executable, script, "--memory-case", json.dumps(case)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ registry
def _estimators():
    import skembed

    return {
        "ProcrustesAligner": (
            lambda: skembed.ProcrustesAligner(),
            {"grams": (), "decompositions": ("svd",)},
        ),
        "GeneralizedProcrustesAligner": (
            lambda: skembed.GeneralizedProcrustesAligner(),
            {"grams": (0, 1), "decompositions": ("svd",)},
        ),
        "CCAAligner": (
            lambda: skembed.CCAAligner(n_components=CCA_COMPONENTS),
            {"grams": (0, 1), "decompositions": ("eigh", "eigh", "svd")},
        ),
        # The fit accumulates every view's Gram matrix (the reference's serves
        # the back-maps) and decomposes each: so does its floor.
        "RidgeAligner": (
            lambda: skembed.RidgeAligner(alpha=1.0),
            {"grams": (0, 1), "decompositions": ("eigh", "eigh")},
        ),
        "EmbeddingConcatenator": (lambda: skembed.EmbeddingConcatenator(), None),
    }


def _read_pass(blocks):
    for block in blocks:
        np.ones(block.shape[0], dtype=block.dtype) @ block


def _scaled_copy(blocks, out):
    start = 0
    for block in blocks:
        stop = start + block.shape[1]
        np.multiply(block, block.dtype.type(1.5), out=out[:, start:stop])
        start = stop


def available_estimators(names):
    """The estimators of ``names`` that this skembed has, and the missing ones."""
    import skembed

    registry = _estimators()
    present = {name: registry[name] for name in names if hasattr(skembed, name)}
    return present, [name for name in names if name not in present]


def time_estimator(name, make, floor, X, Y, *, repeat=3):
    """Best-of-``repeat`` fit and transform times of one estimator and floors."""
    blocks = [X, Y]
    if floor is None:
        fit_functions = {
            "floor": lambda: _read_pass(blocks),
            "ours": lambda: make().fit(blocks),
        }
    else:
        fit_functions = {
            "floor": lambda: floor_fit(X, Y, **floor),
            "ours": lambda: make().fit(blocks),
        }
    fit = interleaved_best(fit_functions, repeat)
    fitted = make().fit(blocks)
    width = fitted.get_feature_names_out().shape[0]
    out = np.empty((X.shape[0], width), dtype=X.dtype)
    if floor is None:
        write = _scaled_copy
    else:
        maps = fitted_projections(fitted, X.dtype)

        def write(blocks, out):
            floor_transform(blocks, maps, out)

    write(blocks, out)  # touch the preallocated output once
    transform = interleaved_best(
        {
            "floor": lambda: write(blocks, out),
            # The same into a new array, whose pages the kernel must zero.
            "fresh": lambda: write(blocks, np.empty_like(out)),
            "ours": lambda: fitted.transform(blocks),
        },
        repeat,
    )
    return {
        "fit": fit["ours"],
        "fit_floor": fit["floor"],
        "transform": transform["ours"],
        "transform_floor": transform["floor"],
        "transform_fresh": transform["fresh"],
    }


def _competitors():
    """Other libraries' closest calls, by name: (callable(X, Y), description)."""
    from scipy.linalg import orthogonal_procrustes
    from sklearn.linear_model import Ridge

    return {
        "scipy_procrustes": (
            lambda X, Y: orthogonal_procrustes(X, Y),
            "scipy.linalg.orthogonal_procrustes",
        ),
        "sklearn_ridge": (
            lambda X, Y: Ridge(alpha=1.0).fit(X, Y),
            "sklearn.linear_model.Ridge",
        ),
    }


def memory_case_main(case):
    """Body of a memory subprocess: build data, run one call, report its peak."""
    dtype = np.dtype(case["dtype"]).type
    X, Y, _ = make_views(case["n"], dtype)
    input_bytes = X.nbytes + Y.nbytes
    kind, name = case["kind"], case["name"]
    if kind == "competitor":
        call, _ = _competitors()[name]
        _, peak = measure_peak(lambda: call(X, Y))
        output_bytes = 0
    else:
        make, _ = _estimators()[name]
        # `import skembed` loads its modules on first use (scipy's and
        # scikit-learn's with them): constructing the estimator here keeps
        # those imports, 140 MB of resident memory, out of the fit's peak.
        estimator = make()
        if kind == "fit":
            _, peak = measure_peak(lambda: estimator.fit([X, Y]))
            output_bytes = 0
        else:
            fitted = make().fit([X, Y])
            Z, peak = measure_peak(lambda: fitted.transform([X, Y]))
            output_bytes = Z.nbytes
    extra = max(0, peak - output_bytes)
    print(json.dumps({"extra": extra, "input": input_bytes, "output": output_bytes}))


# --------------------------------------------------------------------- table
@dataclass
class Table:
    columns: list
    rows: list = field(default_factory=list)

    def add(self, *values):
        self.rows.append([_cell(v) for v in values])

    def render(self):
        cells = [self.columns, *self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = []
        for index, row in enumerate(cells):
            lines.append(
                "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True))
            )
            if index == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        if not np.isfinite(value):
            return "-"
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory-case":
        memory_case_main(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: python benchmarks/_common.py --memory-case JSON")
