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
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("plot_*.py"))


def _python_blocks(markdown):
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


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


@pytest.fixture(scope="module")
def documented():
    """The numbers the docs quote, computed as the docs build computes them."""
    path = ROOT / "docs" / "_scripts" / "doc_numbers.py"
    module = runpy.run_path(str(path), run_name="doc_numbers")
    with threadpool_limits(limits=1, user_api="blas"):
        return module["compute"]()


def test_every_documented_number_is_generated(documented):
    """Check that every substitution the pages use is computed by the script."""
    substitutions, fragments, _ = documented
    for page in (ROOT / "docs").rglob("*.rst"):
        if "_build" in page.parts or "_generated" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        uses = set(re.findall(r"\|(\w+)\|", text))
        if "include:: /_generated/numbers.rst" in text:
            assert uses <= set(substitutions), f"{page.name}: {uses}"
        else:
            assert not uses & set(substitutions), f"{page.name} lacks the include"
        for name in re.findall(r"include:: /_generated/(\w+)\.rst", text):
            assert name == "numbers" or name in fragments, page.name


def test_readme_numbers_are_the_computed_ones(documented):
    """Check the README's quoted accuracies against a fresh computation.

    A tolerance of 0.002 absorbs a prediction flipped by another BLAS's
    rounding (one of 3,000 rows is 0.0003), not a drifted number.
    """
    _, _, values = documented
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = re.search(r"# (\d\.\d{3}) \(minilm alone: (\d\.\d{3})\)", readme)
    assert quoted is not None
    assert float(quoted.group(1)) == pytest.approx(values["clf_both"], abs=2e-3)
    assert float(quoted.group(2)) == pytest.approx(values["clf_minilm"], abs=2e-3)
    assert f"({values['n_labels']} category labels)" in readme


def test_documented_claims_hold(documented):
    """Check what the prose says about the generated numbers."""
    substitutions, _, values = documented
    number = {key: float(value) for key, value in substitutions.items()}
    # out_of_space.rst: raw comparisons are at chance, the rotation fixes them,
    # and e5's unrelated texts are much closer than minilm's.
    assert number["oos_raw_top1"] < 5 * number["oos_chance"]
    assert abs(number["oos_same"] - number["oos_random"]) < 0.02
    assert number["oos_aligned_top1"] > 0.95
    assert number["oos_e5_unrelated"] > 0.5 > 0.2 > number["oos_minilm_unrelated"]
    # choosing.rst: concatenating both models helps the classifier, and with
    # 50 pairs self-learning beats every closed form.
    assert values["clf_both"] > max(values["clf_minilm"], values["clf_e5"])
    few = values["few_pairs"]
    closed = [few[f"few50_{name}"] for name in ("procrustes", "ridge", "cca")]
    assert few["few50_selflearn"] > max(closed)
    # The aligners table: Procrustes, "the default", is the best closed form
    # into minilm by CSLS, or within 0.01 of it.
    table = values["aligners"]
    best = max(table[(label, "e5", "csls")] for label in table_labels(table))
    assert table[("ProcrustesAligner()", "e5", "csls")] >= best - 0.01


def table_labels(table):
    """Aligner labels of the generated table."""
    return sorted({label for label, _, _ in table})


def test_migration_guide_runs(tmp_path, monkeypatch):
    """Check that the migration page's code runs in order and keeps the partners.

    The page states no numbers; this checks what it implies: translated
    queries find their own text in the old index, both ways (chance is 1 in
    300 here).
    """
    page = (ROOT / "docs" / "user_guide" / "migration.rst").read_text(encoding="utf-8")
    blocks = re.findall(
        r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", page, flags=re.MULTILINE
    )
    assert len(blocks) == 3
    code = "\n".join(textwrap.dedent(block) for block in blocks)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__migration__"}
    with threadpool_limits(limits=1, user_api="blas"):
        exec(compile(code, "migration.rst", "exec"), namespace)
    assert namespace["recall"] > 0.9
    assert namespace["recall_b"] > 0.9
    assert 0 < namespace["mrr"] <= namespace["recall"]
    assert namespace["summary"]["rows"] == len(namespace["old"])
