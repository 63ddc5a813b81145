"""Tests that every number the docs quote is computed by the docs' script.

``docs/_scripts/doc_numbers.py`` computes the numbers once per test run
(a module-scoped fixture), for the tests of this file only: the test
scheduler (``tests/conftest.py``) keeps them in one worker.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import re
import runpy
from pathlib import Path

import pytest
import scipy.linalg  # noqa: F401 (loaded first, so that threadpool_limits sees it)
import sklearn  # noqa: F401
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]


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
    # migration.rst: on queries like the fitting documents, the kernel
    # correction keeps Recall@10 but pulls queries towards the fitting
    # documents of the index, which costs top-1.
    assert number["mig_kernel_recall"] > number["mig_procrustes_recall"] - 0.02
    assert number["mig_kernel_top1"] < number["mig_procrustes_top1"] - 0.05
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
