"""Tests for the command line."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import subprocess
import sys

from skembed.__main__ import main


def test_demo_prints_the_story(capsys):
    """Check that the demo reports raw vs aligned retrieval and classification."""
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "ProcrustesAligner" in out
    assert "EmbeddingConcatenator" in out
    aligned = [line for line in out.splitlines() if "ProcrustesAligner (" in line]
    assert float(aligned[0].split()[-1]) > 0.9


def test_module_entry_point_runs():
    """Check that ``python -m skembed`` without a command prints usage, exit 2."""
    result = subprocess.run(
        [sys.executable, "-m", "skembed"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "demo" in result.stderr
