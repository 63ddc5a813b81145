"""Tests that the README's code and the gallery examples run.

The Sphinx build itself (which runs the gallery again) is a separate command,
named in the README: ``python -m sphinx -W -b html docs docs/_build/html``.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import re
import runpy
import textwrap
import warnings
from pathlib import Path

import pytest
import scipy.linalg  # noqa: F401 (loaded first, so that threadpool_limits sees it)
import sklearn  # noqa: F401
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((DOCS / "examples").glob("plot_*.py"))


def _python_blocks(markdown):
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def _rst_python_blocks(path):
    """The Python code of an .rst page, block by block, dedented.

    A block is a ``.. code-block:: python`` directive or a literal block after
    a paragraph ending in ``::`` (which Sphinx highlights as Python).
    """
    page = path.read_text(encoding="utf-8")
    pattern = r"^(?:\.\. code-block:: python|(?!\.\.)\S.*::)\n\n((?:   .*\n|\n)+)"
    blocks = re.findall(pattern, page, flags=re.MULTILINE)
    return [textwrap.dedent(block) for block in blocks]


@pytest.mark.slow
def test_readme_pipeline_example_runs(capsys):
    """Check that the README's Pipeline example runs and prints its accuracy."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A Pipeline in ten lines", 1)[1].split("\n## ", 1)[0]
    (code,) = _python_blocks(section)
    assert len(code.strip().splitlines()) <= 10
    with threadpool_limits(limits=1, user_api="blas"):
        exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    accuracy = float(capsys.readouterr().out.split(":")[-1])
    assert accuracy > 0.45


def test_readme_names_the_docs_command():
    """Check that the README gives the one docs build command, warnings as errors."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python -m sphinx -W -b html docs docs/_build/html" in readme
    assert (ROOT / "docs" / "conf.py").exists()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
@pytest.mark.slow
def test_gallery_example_runs(path, monkeypatch):
    """Check that a gallery example runs to the end without a display."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(path.parent)
    # Small matrices: BLAS threads only add overhead (as in docs/conf.py).
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-interactive.*")
        runpy.run_path(str(path), run_name="__main__")
    plt.close("all")


def test_migration_guide_runs(tmp_path, monkeypatch):
    """Check that the migration page's code runs in order and keeps the partners.

    The page's code prints no numbers (the figures in its prose come from
    full-size runs of benchmarks/bench_migration.py, named there); this
    checks what the code implies: translated queries find their own text in
    the old index, both ways and by the two searches summed (chance is 1 in
    300 here).
    """
    blocks = _rst_python_blocks(DOCS / "user_guide" / "migration.rst")
    assert len(blocks) == 4
    code = "\n".join(blocks)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__migration__"}
    with threadpool_limits(limits=1, user_api="blas"):
        exec(compile(code, "migration.rst", "exec"), namespace)
    assert namespace["recall"] > 0.9
    assert namespace["recall_b"] > 0.9
    assert namespace["recall_both"] > 0.9
    assert 0 < namespace["mrr"] <= namespace["recall"]
    assert namespace["summary"]["rows"] == len(namespace["old"])
    # The page writes into a folder of the working directory, which the test
    # removes; a temporary folder of its own was left behind at every run.
    assert (tmp_path / "migration" / "index_e5.npy").is_file()
