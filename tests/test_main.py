"""Tests for the command line."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import importlib.util
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy.stats import ortho_group

from skembed.__main__ import main
from skembed._io import load_aligner, save_aligner
from skembed._procrustes import ProcrustesAligner

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
_METHOD_MODULES = {
    "procrustes": "skembed._procrustes",
    "cca": "skembed._cca",
    "ridge": "skembed._linear",
    "self-learning": "skembed._selflearn",
}


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


# ---------------------------------------------------------------------------
# End to end: every subcommand and every user error in a subprocess. The
# subprocesses start together (a few at a time) so that the file stays fast.
# ---------------------------------------------------------------------------
def _write_inputs(folder):
    rng = np.random.default_rng(0)
    A = rng.normal(size=(600, 12)).astype(np.float32)
    B = (
        A @ ortho_group.rvs(12, random_state=0) + 0.05 * rng.normal(size=A.shape)
    ).astype(np.float32)
    np.save(folder / "a.npy", A)
    np.save(folder / "b.npy", B)
    np.savez(folder / "both.npz", first=A, second=B)
    pd.DataFrame(A).to_csv(folder / "a.csv", index=False)
    pd.DataFrame(B, columns=[f"e{j}" for j in range(12)]).to_csv(
        folder / "b.csv", index=False
    )
    np.save(folder / "short.npy", B[:-1])
    with_nan = B.copy()
    with_nan[7, 3] = np.nan
    np.save(folder / "nan.npy", with_nan)
    np.save(folder / "words.npy", np.array([["a", "b"], ["c", "d"]]))
    labelled = pd.DataFrame(A)
    labelled["label"] = "x"
    labelled.to_csv(folder / "labelled.csv", index=False)
    (folder / "notes.txt").write_text("hello")
    (folder / "fake.npz").write_text("not a zip file")
    np.savetxt(
        folder / "pairs.csv",
        np.column_stack([np.arange(40)] * 2),
        fmt="%d",
        delimiter=",",
    )
    if HAS_PYARROW:
        pd.DataFrame({"vector": list(A)}).to_parquet(folder / "a.parquet")
        pd.DataFrame(B, columns=[f"e{j}" for j in range(12)]).to_parquet(
            folder / "b.parquet"
        )
    model = ProcrustesAligner(views={"old": slice(0, 12), "new": slice(12, 24)})
    save_aligner(model.fit(np.hstack([A, B])), folder / "model.npz")
    return A, B


def _cli(*argv):
    return [sys.executable, "-m", "skembed", *argv]


def _without(module, *argv):
    """A command run with ``module`` made unimportable."""
    code = (
        f"import sys; sys.modules[{module!r}] = None; "
        "from skembed.__main__ import main; sys.exit(main(sys.argv[1:]))"
    )
    return [sys.executable, "-c", code, *argv]


_CASES = {
    "report": _cli("report", "a.npy", "b.npy"),
    "report_json": _cli("report", "a.csv", "b.csv", "--json", "--quiet"),
    "align": _cli("align", "a.npy", "b.npy", "-o", "procrustes.npz"),
    "translate": _cli(
        "translate",
        "model.npz",
        "b.npy",
        "--source",
        "new",
        "--target",
        "old",
        "-o",
        "translated.npy",
    ),
    "missing_file": _cli("report", "missing.npy", "b.npy"),
    "unequal_rows": _cli("report", "a.npy", "short.npy"),
    "non_numeric": _cli("report", "words.npy", "words.npy"),
    "non_finite": _cli("align", "a.npy", "nan.npy", "-o", "x.npz"),
    "not_a_model_file": _cli(
        "translate",
        "fake.npz",
        "b.npy",
        "--source",
        "new",
        "--target",
        "old",
        "-o",
        "x.npy",
    ),
    "unknown_view": _cli(
        "translate",
        "model.npz",
        "b.npy",
        "--source",
        "bert",
        "--target",
        "old",
        "-o",
        "x.npy",
    ),
    "parquet_without_pyarrow": _without("pyarrow", "report", "a.parquet", "b.npy"),
    "plot_without_matplotlib": _without("matplotlib", "demo", "--plot", "x.png"),
}
if HAS_MATPLOTLIB:
    _CASES["demo_plot"] = _cli("demo", "--plot", "demo.png", "--quiet")


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Run every case once; returns (folder, inputs, name -> CompletedProcess)."""
    folder = tmp_path_factory.mktemp("cli")
    inputs = _write_inputs(folder)

    def run(argv):
        return subprocess.run(
            argv, cwd=folder, capture_output=True, text=True, check=False, timeout=300
        )

    # The demo is the longest case: start it first.
    names = sorted(_CASES, key=lambda name: name != "demo_plot")
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(
            zip(names, pool.map(run, [_CASES[n] for n in names]), strict=True)
        )
    return folder, inputs, results


def _ok(result):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def _user_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def test_report_prints_the_verdict_table(cli):
    """Check that report prints the table and verdict, and progress on stderr."""
    _, _, results = cli
    result = _ok(results["report"])
    assert "verdict: different spaces, alignable" in result.stdout
    assert "top-1 retrieval, Procrustes" in result.stdout
    assert "skembed: comparing 600 paired rows" in result.stderr


def test_report_json_reads_csv_with_headers(cli):
    """Check --json output (machine-readable) on .csv files with header rows."""
    _, _, results = cli
    result = _ok(results["report_json"])
    report = json.loads(result.stdout)
    assert report["verdict"] == "different spaces, alignable"
    assert report["n_samples"] == 600
    assert report["procrustes_retrieval"] > 0.9
    assert result.stderr == ""


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("missing_file", ["missing.npy", "file not found"]),
        ("unequal_rows", ["600 rows", "599", "same number of rows"]),
        ("non_numeric", ["words.npy", "non-numeric"]),
        ("non_finite", ["nan.npy", "non-finite", "row 7"]),
        ("not_a_model_file", ["fake.npz is not an skembed model file"]),
        ("unknown_view", ["'bert' is not a view", "old, new"]),
        ("parquet_without_pyarrow", ["needs pyarrow", "skembed[parquet]"]),
        ("plot_without_matplotlib", ["--plot needs matplotlib", "skembed[plot]"]),
    ],
)
def test_user_errors_exit_2_with_one_line(cli, case, fragments):
    """Check exit code 2 and a single error line, no traceback, for user errors."""
    _, _, results = cli
    _user_error(results[case], *fragments)


def test_align_writes_a_loadable_model(cli):
    """Check that align fits and saves a model named after the files."""
    folder, (A, B), results = cli
    result = _ok(results["align"])
    assert "Model written to procrustes.npz" in result.stdout
    aligner = load_aligner(folder / "procrustes.npz")
    assert aligner.view_names_ == ["a", "b"]
    assert aligner.score([A, B]) > 0.9


def test_translate_matches_the_python_api(cli):
    """Check that translate writes what aligner.translate returns."""
    folder, (A, B), results = cli
    _ok(results["translate"])
    expected = load_aligner(folder / "model.npz").translate(B, "new", "old")
    translated = np.load(folder / "translated.npy")
    assert translated.dtype == np.float32
    assert_allclose(translated, expected)
    assert "wrote 600 x 12" in results["translate"].stderr


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_demo_plot_writes_a_png(cli):
    """Check that demo --plot draws the histograms and names every method."""
    folder, _, results = cli
    result = _ok(results["demo_plot"])
    assert (folder / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Cosine histograms written to demo.png" in result.stdout
    for name in ("ProcrustesAligner()", "50 pairs only"):
        assert name in result.stdout
    for method, module in (
        ("CCAAligner", "_cca"),
        ("RidgeAligner", "_linear"),
        ("SelfLearningAligner", "_selflearn"),
    ):
        if importlib.util.find_spec(f"skembed.{module}") is not None:
            assert method in result.stdout
    assert "skembed:" not in result.stderr


# ---------------------------------------------------------------------------
# Variations of the same code paths, run in-process (no interpreter start-up).
# ---------------------------------------------------------------------------
def _run(folder, capsys, monkeypatch, *argv):
    monkeypatch.chdir(folder)
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_report_reads_npz_members(cli, capsys, monkeypatch):
    """Check that FILE.npz:NAME selects one array of an archive."""
    folder = cli[0]
    code, out, _ = _run(
        folder, capsys, monkeypatch, "report", "both.npz:first", "both.npz:second"
    )
    assert code == 0
    assert "different spaces, alignable" in out
    code, _, err = _run(folder, capsys, monkeypatch, "report", "both.npz", "b.npy")
    assert code == 2
    assert "holds 2 arrays (first, second); name one as both.npz:NAME" in err


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
def test_report_reads_parquet_vector_and_scalar_columns(cli, capsys, monkeypatch):
    """Check .parquet input: one vector column, or scalar columns."""
    code, out, _ = _run(
        cli[0], capsys, monkeypatch, "report", "a.parquet", "b.parquet", "--json"
    )
    assert code == 0
    assert json.loads(out)["n_features"] == [12, 12]


@pytest.mark.parametrize("method", sorted(_METHOD_MODULES))
def test_align_every_method(cli, capsys, monkeypatch, method):
    """Check align for every method present, and a clear error for absent ones."""
    folder, (A, B), _ = cli
    argv = ["align", "a.npy", "b.npy", "--method", method, "-o", f"{method}.npz"]
    if method == "self-learning":
        argv += ["--pairs", "pairs.csv"]
    code, out, err = _run(folder, capsys, monkeypatch, *argv, "--quiet")
    if importlib.util.find_spec(_METHOD_MODULES[method]) is None:
        assert code == 2
        assert "does not have" in err
        return
    assert code == 0, err
    aligner = load_aligner(folder / f"{method}.npz")
    assert f"Model written to {method}.npz" in out
    assert aligner.score([A, B]) > 0.9


def test_align_with_pairs_file_uses_only_those_rows(cli, capsys, monkeypatch):
    """Check that --pairs selects the training rows of a closed-form aligner."""
    folder, (A, B), _ = cli
    code, _, err = _run(
        folder,
        capsys,
        monkeypatch,
        "align",
        "a.npy",
        "short.npy",
        "--pairs",
        "pairs.csv",
        "-o",
        "paired.npz",
        "--names",
        "x",
        "y",
        "-q",
    )
    assert code == 0, err
    aligner = load_aligner(folder / "paired.npz")
    expected = ProcrustesAligner().fit([A[:40], B[:40]])
    assert aligner.view_names_ == ["x", "y"]
    assert_allclose(aligner.rotations_[1], expected.rotations_[1])
    np.savetxt(folder / "bad_pairs.csv", [[0, 0], [5, 700]], fmt="%d", delimiter=",")
    code, _, err = _run(
        folder,
        capsys,
        monkeypatch,
        "align",
        "a.npy",
        "b.npy",
        "--pairs",
        "bad_pairs.csv",
        "-o",
        "x.npz",
    )
    assert code == 2
    assert "row 700 of B is outside [0, 599]" in err


def test_translate_quiet_indices_and_csv_output(cli, capsys, monkeypatch):
    """Check --quiet, view indices instead of names, and .csv output."""
    folder, (A, B), _ = cli
    code, _, err = _run(
        folder,
        capsys,
        monkeypatch,
        "translate",
        "model.npz",
        "b.npy",
        "--source",
        "1",
        "--target",
        "0",
        "-o",
        "quiet.csv",
        "--quiet",
    )
    assert code == 0
    assert err == ""
    expected = load_aligner(folder / "model.npz").translate(B, "new", "old")
    assert_allclose(
        np.loadtxt(folder / "quiet.csv", delimiter=","), expected, rtol=1e-6
    )


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["align", "labelled.csv", "b.npy", "-o", "x.npz"], "column 12 holds non-num"),
        (["report", "notes.txt", "b.npy"], "unsupported file type '.txt'"),
        (["report", "model.npz", "b.npy"], "is an skembed model file, not embed"),
        (
            [
                "translate",
                "a.npy",
                "b.npy",
                "--source",
                "0",
                "--target",
                "1",
                "-o",
                "x.npy",
            ],
            "a.npy is not an skembed model file",
        ),
        (
            [
                "translate",
                "model.npz",
                "a.npy",
                "--source",
                "new",
                "--target",
                "old",
                "-o",
                "x.txt",
            ],
            "use a .npy or .csv file name",
        ),
        (
            [
                "translate",
                "missing.npz",
                "a.npy",
                "--source",
                "0",
                "--target",
                "1",
                "-o",
                "x.npy",
            ],
            "missing.npz: file not found",
        ),
        (
            [
                "align",
                "a.npy",
                "b.npy",
                "--method",
                "self-learning",
                "--names",
                "p",
                "q",
                "-o",
                "x.npz",
            ],
            "--names is not available",
        ),
    ],
)
def test_more_user_errors(cli, capsys, monkeypatch, argv, fragment):
    """Check more one-line errors (exit code 2) on malformed input."""
    code, out, err = _run(cli[0], capsys, monkeypatch, *argv)
    assert code == 2
    assert fragment in err
    assert err.count("error:") == 1


def test_in_process_errors_return_2(tmp_path, capsys):
    """Check that main() returns 2 rather than raising on a user error."""
    assert main(["report", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_align_without_pairs_exits_1_on_an_untrusted_map(tmp_path, capsys, monkeypatch):
    """Check exit code 1, one line and no model file when a pairs-free map fails."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(300, 16)))
    np.save(tmp_path / "y.npy", rng.normal(size=(250, 16)))
    code, out, err = _run(
        tmp_path,
        capsys,
        monkeypatch,
        "align",
        "x.npy",
        "y.npy",
        "--method",
        "self-learning",
        "-o",
        "model.npz",
        "-q",
    )
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "no model written" in err and "--pairs" in err and "Traceback" not in err
    assert not (tmp_path / "model.npz").exists()


def test_align_defaults_are_the_estimators_defaults():
    """Check that the command line's defaults are read from the estimators."""
    from skembed import CCAAligner, RidgeAligner
    from skembed.__main__ import build_parser

    args = build_parser().parse_args(["align", "a.npy", "b.npy", "-o", "m.npz"])
    assert args.n_components == CCAAligner().n_components
    assert args.reg == CCAAligner().reg
    assert args.alpha == RidgeAligner().alpha
