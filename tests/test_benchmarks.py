"""Smoke tests: every script behind a number of the README runs, at a tiny size.

The numbers themselves come from full-size runs on a quiet machine (the
README says which command gave each); here the scripts must run to the end
and print their tables, so that a change to the package cannot break them
unnoticed.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "run": (
        ["benchmarks/run.py", "--rows", "3000", "--repeat", "1", "--no-memory"],
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
    "alternatives": (
        ["docs/_scripts/compare_alternatives.py", "600"],
        "ProcrustesAligner",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_benchmark_script_runs(name):
    """Check that a benchmark script runs at a tiny size and prints its table."""
    argv, expected = CASES[name]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert expected in completed.stdout
