"""Tests for the command line."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import errno
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import ortho_group

import skembed
from skembed.__main__ import main
from skembed._io import load_aligner, save_aligner
from skembed._procrustes import ProcrustesAligner
from skembed._registry import CLI_METHODS
from skembed._stream import translate_file

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None
# Subprocesses run in a temporary folder: point them at the skembed under test,
# not at whichever one the interpreter would find there.
_SUBPROCESS_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(
        [str(Path(skembed.__file__).resolve().parents[1])]
        + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    ),
}
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


@pytest.mark.slow
def test_demo_prints_the_story(tmp_path, capsys, monkeypatch):
    """Check the demo's report, quiet, and with matplotlib its --plot figure."""
    monkeypatch.chdir(tmp_path)
    plot = ["--plot", "demo.png"] if HAS_MATPLOTLIB else []
    assert main(["demo", "--quiet", *plot]) == 0
    out, err = capsys.readouterr()
    assert "ProcrustesAligner" in out
    assert "EmbeddingConcatenator" in out
    aligned = [line for line in out.splitlines() if "ProcrustesAligner (" in line]
    assert float(aligned[0].split()[-1]) > 0.9
    assert "no closer than random ones" in out
    assert "texts find their partners." in out
    for name in ("ProcrustesAligner()", "50 pairs only"):
        assert name in out
    for method in ("CCAAligner", "RidgeAligner", "SelfLearningAligner"):
        assert method in out
    assert "skembed:" not in err
    if plot:
        assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "Cosine histograms written to demo.png" in out
    # The same --random-state gives the same figures (the self-learning row
    # moved between runs): everything but the times.
    assert main(["demo", "--quiet", *plot]) == 0
    again = capsys.readouterr().out

    def figures(text):
        # A method's row ends with its fit time; the run's total is a line.
        lines = text.splitlines()
        lines = [line for line in lines if "finished in" not in line]
        lines = [line for line in lines if "Cosine histograms" not in line]
        return [
            line.rsplit(maxsplit=1)[0] if "Aligner(" in line else line for line in lines
        ]

    assert figures(again) == figures(out)


def test_demo_of_models_of_different_widths_says_raw_vectors_do_not_compare(
    tmp_path, capsys, monkeypatch
):
    """Check the demo's conclusion when no raw comparison was computed.

    For 256-d against 384-d vectors it printed that raw vectors of the same
    text are no closer than random ones, which it had not measured.
    """
    monkeypatch.chdir(tmp_path)
    argv = ["demo", "--quiet", "--source", "wordllama256", "--target", "minilm"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cannot be compared at all: they have 256 and 384 dimensions" in out
    assert "no closer than random" not in out


def test_module_entry_point_runs():
    """Check that ``python -m skembed`` without a command prints usage, exit 2."""
    result = subprocess.run(
        [sys.executable, "-m", "skembed"],
        env=_SUBPROCESS_ENV,
        capture_output=True,
        text=True,
        check=False,
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
    "report_json": _cli("report", "a.csv", "b.csv", "--json", "--quiet", "--header"),
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
    "non_numeric": _cli("report", "words.npy", "b.npy"),
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


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Run every case once; returns (folder, inputs, name -> CompletedProcess)."""
    folder = tmp_path_factory.mktemp("cli")
    inputs = _write_inputs(folder)

    def run(argv):
        return subprocess.run(
            argv,
            cwd=folder,
            env=_SUBPROCESS_ENV,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )

    names = list(_CASES)
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


# ---------------------------------------------------------------------------
# Variations of the same code paths, run in-process (no interpreter start-up).
# ---------------------------------------------------------------------------
def _run(folder, capsys, monkeypatch, *argv):
    monkeypatch.chdir(folder)
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_model_name_with_a_colon_is_the_file_of_that_name(
    tmp_path, capsys, monkeypatch
):
    """Check that a model path is never read as ``FILE.npz:KEY``.

    ``m.npz:v2`` was cut back to ``m.npz``: translate ran on another model
    when both files existed, and said "file not found" for an existing
    ``m.npz:v2`` when ``m.npz`` did not.
    """
    A, B = _write_inputs(tmp_path)
    other = ProcrustesAligner(views={"old": slice(0, 12), "new": slice(12, 24)})
    save_aligner(other.fit(np.hstack([A, -B])), tmp_path / "model.npz:v2")
    argv = ["b.npy", "--source", "new", "--target", "old", "-q", "-o"]
    code, _, err = _run(
        tmp_path, capsys, monkeypatch, "translate", "model.npz:v2", *argv, "v2.npy"
    )
    assert code == 0, err
    expected = load_aligner(tmp_path / "model.npz:v2").translate(B, "new", "old")
    assert_allclose(np.load(tmp_path / "v2.npy"), expected)
    # A member of an existing model file: refused, not read as the file.
    code, _, err = _run(
        tmp_path, capsys, monkeypatch, "translate", "model.npz:x", *argv, "x.npy"
    )
    assert code == 2
    assert "model model.npz:x: a model file is read whole" in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.npy").exists()
    (tmp_path / "model.npz").unlink()
    code, _, err = _run(
        tmp_path, capsys, monkeypatch, "translate", "model.npz:v2", *argv, "v3.npy"
    )
    assert code == 0, err
    assert_allclose(np.load(tmp_path / "v3.npy"), expected)


@pytest.mark.parametrize("existing", [False, True])
def test_an_output_name_ending_in_a_separator_is_refused(
    tmp_path, capsys, monkeypatch, existing
):
    """Check ``-o NAME/``: a folder is named, no file is written.

    ``Path`` drops the separator: ``-o out.npz/`` wrote the file ``out.npz``,
    over an existing one too.
    """
    _write_inputs(tmp_path)
    if existing:
        (tmp_path / "out.npz").write_bytes(b"keep")
    code, _, err = _run(
        tmp_path, capsys, monkeypatch, "align", "a.npy", "b.npy", "-o", "out.npz/"
    )
    assert code == 2
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1
    assert "-o out.npz/ names a directory" in lines[0]
    if existing:
        assert (tmp_path / "out.npz").read_bytes() == b"keep"
    else:
        assert not (tmp_path / "out.npz").exists()


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


@pytest.mark.parametrize("method", sorted(CLI_METHODS))
def test_align_every_method(cli, capsys, monkeypatch, method):
    """Check align for every method: a model file that aligns the views."""
    folder, (A, B), _ = cli
    argv = ["align", "a.npy", "b.npy", "--method", method, "-o", f"{method}.npz"]
    if method == "self-learning":
        argv += ["--pairs", "pairs.csv"]
    code, out, err = _run(folder, capsys, monkeypatch, *argv, "--quiet")
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
        (
            ["align", "labelled.csv", "b.npy", "-o", "x.npz"],
            "column 12 ('label') holds non-num",
        ),
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
            "use a .npy, .csv or .parquet file name",
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


@pytest.mark.parametrize(
    "argv, prefix, hint",
    [
        (
            ["align", "a.npy", "b.npy", "-o", "m.npz", "--bogus"],
            "skembed align:",
            "skembed align -h",
        ),
        (
            ["report", "a.npy", "b.npy", "--k", "3"],
            "skembed report:",
            "skembed report -h",
        ),
        (["--bogus"], "skembed:", "skembed -h"),
    ],
)
def test_an_unknown_option_is_reported_by_its_command(capsys, argv, prefix, hint):
    """Check that an option no parser knows points to the command's own help.

    argparse reported it from the top-level parser ("skembed: error: ...
    (see `skembed -h`)"), where the subcommand's options are not listed.
    """
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prefix} error: unrecognized arguments:")
    assert f"(see `{hint}`)" in err
    assert err.count("\n") == 1


def test_in_process_errors_return_2(tmp_path, capsys):
    """Check that main() returns 2 rather than raising on a user error."""
    assert main(["report", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_align_without_pairs_exits_3_on_an_untrusted_map(tmp_path, capsys, monkeypatch):
    """Check exit code 3 and one reason line when a pairs-free map is untrusted."""
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
    assert code == 3
    assert "Traceback" not in err
    reasons = [line for line in err.splitlines() if ": not usable: " in line]
    assert len(reasons) == 1
    # In the command's words, not the attribute's name.
    assert "label-free confidence is" in reasons[0] and "--pairs" in reasons[0]
    assert "confidence_" not in reasons[0]
    assert "not worth using" in out
    # Written for inspection, as every map no better than chance, beside the
    # name asked for.
    assert (tmp_path / "model.not-usable.npz").exists()
    assert not (tmp_path / "model.npz").exists()


def test_align_defaults_are_the_estimators_defaults():
    """Check that the command line's defaults are read from the estimators."""
    from skembed import CCAAligner, RidgeAligner
    from skembed.__main__ import build_parser

    args = build_parser().parse_args(["align", "a.npy", "b.npy", "-o", "m.npz"])
    assert args.n_components == CCAAligner().n_components
    assert args.reg == CCAAligner().reg
    assert args.alpha == RidgeAligner().alpha


# ---------------------------------------------------------------------------
# Hardening (issue 15): inputs, outputs, options, quality, progress, failures.
# ---------------------------------------------------------------------------
def _rotated(n=300, d=8, seed=0):
    """Row-paired float32 views: B is a rotation of A plus a little noise."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d)).astype(np.float32)
    B = A @ ortho_group.rvs(d, random_state=seed) + 0.05 * rng.normal(size=A.shape)
    return A, B.astype(np.float32)


def _main(folder, capsys, monkeypatch, *argv):
    """Run main in ``folder``; (exit code, stdout, stderr)."""
    monkeypatch.chdir(folder)
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error(err, *fragments, kind="error"):
    """The single ``skembed CMD: error: ...`` line of stderr, checked."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if f": {kind}: " in line]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def paired(tmp_path):
    """a.npy and b.npy, row-paired and alignable, in a fresh folder."""
    A, B = _rotated()
    np.save(tmp_path / "a.npy", A)
    np.save(tmp_path / "b.npy", B)
    return tmp_path, A, B


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
def test_parquet_without_rows_is_named(paired, capsys, monkeypatch):
    """Check a Parquet file with no rows: the file named, not scikit-learn's text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = paired[0]
    empty = pa.table({"embedding": pa.array([], pa.list_(pa.float32()))})
    pq.write_table(empty, folder / "empty.parquet")
    code, _, err = _main(
        folder, capsys, monkeypatch, "report", "empty.parquet", "b.npy"
    )
    assert code == 2
    _one_error(err, "A empty.parquet has no data rows")


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
def test_float16_parquet_is_read_in_float32_as_a_npy_file_is(
    paired, capsys, monkeypatch
):
    """Check float16 Parquet columns: float32 rows, as from a float16 .npy file.

    A float16 vector column (or float16 scalar columns) came back as float64:
    twice the memory of float32 for ``search``'s index, and ``translate``
    wrote float64 where the same rows in a .npy file gave float32.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from skembed._cli._files import read_embeddings

    folder, A, B = paired
    half = A.astype(np.float16)
    vectors = pa.array(list(half), type=pa.list_(pa.float16()))
    pq.write_table(pa.table({"embedding": vectors}), folder / "vectors.parquet")
    scalars = {f"e{j}": pa.array(half[:, j]) for j in range(half.shape[1])}
    pq.write_table(pa.table(scalars), folder / "scalars.parquet")
    np.save(folder / "half.npy", half)
    for name in ("vectors.parquet", "scalars.parquet", "half.npy"):
        read = read_embeddings(str(folder / name))
        assert read.dtype == np.float32, name
        assert_array_equal(read, half.astype(np.float32))
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    argv = ["translate", "m.npz", "--source", "0", "--target", "1", "-q", "-o"]
    for name in ("vectors.parquet", "half.npy"):
        code, _, err = _main(folder, capsys, monkeypatch, *argv, "out.npy", name)
        assert code == 0, err
        assert np.load(folder / "out.npy").dtype == np.float32, name


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
def test_parquet_id_column_is_refused_and_columns_selects(paired, capsys, monkeypatch):
    """Check that an id column is never read as a dimension; --columns picks."""
    folder, A, B = paired
    ids = np.arange(1000, 1000 + A.shape[0])
    pd.DataFrame({"id": ids, "embedding": list(A)}).to_parquet(folder / "a.parquet")
    pd.DataFrame({"id": ids, "embedding": list(B)}).to_parquet(folder / "b.parquet")
    code, _, err = _main(folder, capsys, monkeypatch, "report", "a.parquet", "b.npy")
    assert code == 2
    # The advice works beside a plain .npy, which has no column 'embedding':
    # --columns, which applies to every input, did not.
    _one_error(err, "a.parquet", "column 0 ('id')", "--columns-a embedding")
    argv = ["report", "a.parquet", "b.npy", "--json"]
    code, out, err = _main(
        folder, capsys, monkeypatch, *argv, "--columns-a", "embedding"
    )
    assert code == 0, err
    code, _, err = _main(folder, capsys, monkeypatch, *argv, "--columns", "embedding")
    assert code == 2
    _one_error(err, "B b.npy has no column 'embedding'", "(--columns-a, --columns-b)")
    code, out, err = _main(
        folder,
        capsys,
        monkeypatch,
        "report",
        "a.parquet",
        "b.parquet",
        "--columns",
        "embedding",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["n_features"] == [8, 8]


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
def test_columns_refuses_booleans_decimals_and_text(paired, capsys, monkeypatch):
    """Check a column of booleans (scalars or lists), decimals or text that
    --columns selects: one line naming it and the fix, exit 2.

    Booleans were read as 0/1 embedding values and decimals widened to
    float64, silently; text got a library message about a ColumnTransformer.
    """
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    folder, A, _ = paired
    signs = (A > 0).tolist()
    table = pa.table(
        {
            "embedding": pa.array(A.tolist(), pa.list_(pa.float64())),
            "flag": pa.array(A[:, 0] > 0),
            "signs": pa.array(signs, pa.list_(pa.bool_())),
            "fixed_signs": pa.array(signs, pa.list_(pa.bool_(), A.shape[1])),
            "amount": pa.array(
                [decimal.Decimal(f"{x:.3f}") for x in A[:, 0]], pa.decimal128(10, 3)
            ),
            "amounts": pa.array(
                [[decimal.Decimal(f"{x:.3f}") for x in row] for row in A],
                pa.list_(pa.decimal128(10, 3)),
            ),
            "name": pa.array([f"row{i}" for i in range(A.shape[0])]),
        }
    )
    pq.write_table(table, folder / "a.parquet")
    expected = {
        "signs": ("holds booleans (Arrow type list<element: bool>)", "(0 and 1)"),
        "fixed_signs": ("holds booleans (Arrow type fixed_size_list",),
        "amount": ("holds decimals (Arrow type decimal128(10, 3))", "cast it to"),
        "amounts": ("holds decimals (Arrow type list<element: decimal128",),
        "flag": ("holds booleans (Arrow type bool), not embedding vectors",),
        "name": ("holds non-numeric values (Arrow type string)",),
    }
    argv = ["report", "a.parquet", "b.npy", "-q", "--columns-a"]
    for column, fragments in expected.items():
        code, _, err = _main(folder, capsys, monkeypatch, *argv, column)
        assert code == 2, column
        line = _one_error(
            err, f"A a.parquet: column {column!r}", *fragments, "--columns-a"
        )
        assert "ColumnTransformer" not in line
    # Without --columns the decimal column is refused as a non-embedding one.
    pq.write_table(table.select(["embedding", "amount"]), folder / "d.parquet")
    code, _, err = _main(folder, capsys, monkeypatch, "report", "d.parquet", "b.npy")
    assert code == 2
    _one_error(err, "column 1 ('amount') holds decimals", "--columns-a embedding")
    code, _, err = _main(folder, capsys, monkeypatch, *argv, "embedding")
    assert code == 0, err


def test_structured_boolean_field_is_not_taken_for_a_vector(
    paired, capsys, monkeypatch
):
    """Check a structured array's field of booleans: refused, and never in the
    --columns value suggested (it was taken for a vector and suggested)."""
    folder, A, _ = paired
    records = np.zeros(
        A.shape[0], dtype=[("embedding", "f8", A.shape[1:]), ("signs", "?", (4,))]
    )
    records["embedding"] = A
    records["signs"] = A[:, :4] > 0
    np.save(folder / "records.npy", records)
    code, _, err = _main(folder, capsys, monkeypatch, "report", "records.npy", "b.npy")
    assert code == 2
    _one_error(err, "('signs') holds non-numeric values", "--columns-a embedding.")
    argv = ["report", "records.npy", "b.npy", "-q", "--columns-a"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv, "signs")
    assert code == 2
    _one_error(err, "column 'signs' holds booleans, not embedding vectors")
    code, _, err = _main(folder, capsys, monkeypatch, *argv, "embedding")
    assert code == 0, err


def test_csv_written_with_its_index_is_refused(paired, capsys, monkeypatch):
    """Check that the index column of DataFrame.to_csv is not a dimension."""
    folder, A, _ = paired
    pd.DataFrame(A).to_csv(folder / "indexed.csv")
    code, _, err = _main(folder, capsys, monkeypatch, "report", "indexed.csv", "b.npy")
    assert code == 2
    _one_error(err, "column 0 ('')", "id or index", "--columns-a 0..7")
    code, out, err = _main(
        folder,
        capsys,
        monkeypatch,
        "report",
        "indexed.csv",
        "b.npy",
        "--columns-a",
        "0..7",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["n_features"] == [8, 8]


def test_a_suggested_column_selection_can_be_pasted(paired, capsys, monkeypatch):
    """Check the --columns fix for a table whose names hold spaces.

    ``--columns-a dim 0..dim 7`` was printed unquoted; pasted into a shell it
    gave two arguments, and argparse refused the second.
    """
    folder, A, _ = paired
    frame = pd.DataFrame(A, columns=[f"dim {j}" for j in range(8)])
    frame.insert(0, "id", np.arange(A.shape[0]))
    frame.to_csv(folder / "spaced.csv", index=False)
    code, _, err = _main(folder, capsys, monkeypatch, "report", "spaced.csv", "b.npy")
    assert code == 2
    line = _one_error(err, "--columns-a 'dim 0..dim 7'")
    suggested = shlex.split(line.split("select the embedding columns with ")[1])
    suggested[-1] = suggested[-1].rstrip(".")
    code, _, err = _main(
        folder, capsys, monkeypatch, "report", "spaced.csv", "b.npy", *suggested
    )
    assert code == 0, err


@pytest.mark.parametrize(
    "extra, reason",
    [
        (lambda n: np.arange(n), "counts 0, 1, 2"),
        (lambda n: np.arange(n) % 7, "only whole numbers"),
    ],
)
def test_integer_column_of_an_array_is_refused(
    paired, capsys, monkeypatch, extra, reason
):
    """Check that index-like or integer columns of an array are refused."""
    folder, A, _ = paired
    np.save(folder / "with_ids.npy", np.column_stack([extra(A.shape[0]), A]))
    code, _, err = _main(folder, capsys, monkeypatch, "report", "with_ids.npy", "b.npy")
    assert code == 2
    _one_error(err, "column 0", reason, "--columns-a 1..8")
    code, _, err = _main(
        folder,
        capsys,
        monkeypatch,
        "report",
        "with_ids.npy",
        "b.npy",
        "--columns-a",
        "1..8",
        "-q",
    )
    assert code == 0, err


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_a_non_finite_value_in_a_constant_column_is_named_as_such(
    paired, capsys, monkeypatch, bad, suffix
):
    """Check that a NaN or an infinity in a column of zeros is the error.

    The column (a dead dimension, as real models have) was called an id
    column for holding two distinct values, zero and the NaN, and the
    message sent the user to --columns instead of the damaged row.
    """
    if suffix == ".parquet" and not HAS_PYARROW:
        pytest.skip("pyarrow is not installed")
    folder, A, _ = paired
    A = A.copy()
    A[:, 2] = 0.0
    A[5, 2] = bad
    if suffix == ".npy":
        np.save(folder / "dead.npy", A)
    else:
        columns = [f"e{j}" for j in range(A.shape[1])]
        pd.DataFrame(A, columns=columns).to_parquet(folder / "dead.parquet")
    argv = ["report", f"dead{suffix}", "b.npy", "-q"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv)
    assert code == 2
    line = _one_error(err, "non-finite", "row 5")
    assert "an id" not in line
    assert "--columns" not in line


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("e9", "has no column 'e9'"),
        ("e5..e1", "'e1' comes before 'e5'"),
        ("e0,e0", "selects column 'e0' twice"),
        ("e0,,e1", "empty name"),
        ("e0..", "not a range"),
    ],
)
@pytest.mark.parametrize("option", ["--columns-a", "--columns"])
def test_columns_errors_name_the_problem(
    paired, capsys, monkeypatch, spec, fragment, option
):
    """Check one-line errors for --columns values that select nothing sensible.

    The option named is the one given: messages said --columns after
    --columns-a.
    """
    folder, A, _ = paired
    pd.DataFrame(A, columns=[f"e{j}" for j in range(8)]).to_csv(
        folder / "named.csv", index=False
    )
    code, _, err = _main(
        folder, capsys, monkeypatch, "report", "named.csv", "b.npy", option, spec
    )
    assert code == 2
    line = _one_error(err, fragment)
    assert "too many values" not in err
    named = set(re.findall(r"--columns[-\w]*", line))
    # --columns applies to both inputs: its message may name their own options.
    shared = {"--columns", "--columns-a", "--columns-b"}
    assert named <= ({option} if option == "--columns-a" else shared), line


def test_report_names_a_missing_file_in_one_line(paired, capsys, monkeypatch):
    """Check report with B missing: the error alone, not after A's progress."""
    folder, _, _ = paired
    code, out, err = _main(folder, capsys, monkeypatch, "report", "a.npy", "nope.npy")
    assert code == 2
    assert out == ""
    assert err.splitlines() == ["skembed report: error: nope.npy: file not found."]


def test_quiet_before_the_command_is_the_commands(paired, capsys, monkeypatch):
    """Check `skembed -q report A B`: it was an unrecognised argument, though
    every command takes -q."""
    folder, _, _ = paired
    code, out, err = _main(
        folder, capsys, monkeypatch, "-q", "report", "a.npy", "b.npy"
    )
    assert code == 0, err
    assert err == ""
    assert "verdict" in out
    code, _, err = _main(folder, capsys, monkeypatch, "report", "a.npy", "b.npy")
    assert code == 0
    assert err != ""  # progress lines without -q


def test_library_errors_name_the_commands_flags(paired, capsys, monkeypatch):
    """Check a library error about a parameter: it says the flag, not the
    Python spelling (n_components=8 is --n-components 8 on the command line)."""
    folder, A, B = paired
    np.save(folder / "a6.npy", A[:6])
    np.save(folder / "b6.npy", B[:6])
    argv = ["align", "a6.npy", "b6.npy", "--method", "cca", "--n-components", "8"]
    argv += ["--test-size", "0"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv, "-q", "-o", "m.npz")
    assert code == 2
    line = _one_error(err, "--n-components 8 must be at most")
    assert "n_components=" not in line


def test_library_errors_name_the_command_not_the_function(paired, capsys, monkeypatch):
    """Check report's errors from compare_spaces: they name the command the
    user ran ("report needs at least 10 held-out rows"), not the Python
    function it calls."""
    folder, A, B = paired
    np.save(folder / "a12.npy", A[:12])
    np.save(folder / "b12.npy", B[:12])
    np.save(folder / "a1.npy", A[:, :1])
    for argv, fragment in (
        (["a12.npy", "b12.npy"], "report needs at least 10 held-out"),
        (["a1.npy", "b.npy"], "report ranks rows by cosine"),
    ):
        code, _, err = _main(folder, capsys, monkeypatch, "report", *argv, "-q")
        assert code == 2
        line = _one_error(err, fragment)
        assert "compare_spaces" not in line


def test_search_errors_name_the_index_not_x(paired, capsys, monkeypatch):
    """Check an index the search cannot use: the message names the input (the
    index, or --translated-index) instead of EmbeddingIndex.fit's X."""
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    np.save(folder / "zero.npy", np.zeros_like(B))
    np.save(folder / "same.npy", np.ones_like(A))
    argv = ["search", "m.npz", "a.npy", "--source", "0", "--target", "1"]
    argv += ["-q", "-o", "n.npy"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv[:3], "zero.npy", *argv[3:])
    assert code == 2
    line = _one_error(err, "Every row of index zero.npy is zero")
    assert " X " not in line
    code, _, err = _main(
        folder,
        capsys,
        monkeypatch,
        *argv[:3],
        "b.npy",
        *argv[3:],
        "--translated-index",
        "same.npy",
        "--center",
        "index",
    )
    assert code == 2
    line = _one_error(
        err, "Every row of --translated-index same.npy is zero once centred"
    )
    assert "(--center index)" in line
    assert " X " not in line


def test_moments_beyond_float64_name_the_input(paired, capsys, monkeypatch):
    """Check embeddings whose second moments float64 cannot hold: the error
    names the input file (and whether it is A or B), not "the embeddings"."""
    folder, A, B = paired
    np.save(folder / "huge.npy", A.astype(np.float64) * 1e155)
    np.save(folder / "tiny.npy", B.astype(np.float64) * 1e-160)
    cases = (
        (["report", "huge.npy", "b.npy"], "A (huge.npy) holds values"),
        (["report", "a.npy", "tiny.npy"], "B (tiny.npy) holds values"),
        (["align", "a.npy", "tiny.npy", "-o", "m.npz"], "B (tiny.npy) holds"),
        (
            ["align", "huge.npy", "tiny.npy", "-o", "m.npz"],
            "A (huge.npy) and B (tiny.npy) hold values",
        ),
    )
    for argv, fragment in cases:
        code, _, err = _main(folder, capsys, monkeypatch, *argv, "-q")
        assert code == 2, argv
        _one_error(err, fragment, "outside the range of float64", "rescale")
    assert not (folder / "m.npz").exists()


def test_missing_output_folder_fails_before_any_work(paired, capsys, monkeypatch):
    """Check that -o into a missing folder fails first, naming the folder."""
    folder, _, _ = paired

    def no_reading(*args, **kwargs):
        raise AssertionError("an input was read before the output was checked")

    monkeypatch.setattr("skembed._cli._commands.read_embeddings", no_reading)
    code, _, err = _main(
        folder, capsys, monkeypatch, "align", "a.npy", "b.npy", "-o", "missing/m.npz"
    )
    assert code == 2
    line = _one_error(err, "missing/m.npz", "folder missing does not exist")
    assert "file not found" not in line
    for argv in (
        ["translate", "m.npz", "a.npy", "--source", "0", "--target", "1"],
        ["demo"],
    ):
        output = ("-o", "missing/out.npy") if argv[0] == "translate" else ()
        output = output or ("--plot", "missing/out.png")
        code, _, err = _main(folder, capsys, monkeypatch, *argv, *output)
        assert code == 2
        _one_error(err, "does not exist")
    # A link to a file in a missing folder: the folder written is the link's
    # target's (it was checked beside the link, and failed after the fit).
    (folder / "link.npz").symlink_to(folder / "gone" / "m.npz")
    code, _, err = _main(
        folder, capsys, monkeypatch, "align", "a.npy", "b.npy", "-o", "link.npz"
    )
    assert code == 2
    _one_error(err, "link.npz links to", "gone", "fix the link")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["align", "a.npy", "b.npy", "-o", "a.npy"], "also an input"),
        (["align", "a.npy", "b.npy", "-o", "./b.npy"], "also an input"),
        (["align", "a.npy", "b.npy", "-o", "model.txt"], "use a .npz file name"),
        (["align", "a.npy", "b.npy", "-o", "."], "use a .npz file name"),
        (
            [
                "translate",
                "m.npz",
                "a.npy",
                "--source",
                "0",
                "--target",
                "1",
                "-o",
                "a.npy",
            ],
            "also an input",
        ),
        (
            [
                "translate",
                "m.npz",
                "a.npy",
                "--source",
                "0",
                "--target",
                "1",
                "-o",
                "m.npz",
            ],
            "also an input",
        ),
    ],
)
def test_output_never_overwrites_an_input(paired, capsys, monkeypatch, argv, fragment):
    """Check that an output naming an input (or no model file) is refused."""
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, _, err = _main(folder, capsys, monkeypatch, *argv)
    assert code == 2
    _one_error(err, fragment)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_output_that_is_a_pipe_is_refused(paired, capsys, monkeypatch):
    """Check that an output naming a pipe (or device) exits 2, leaving it a pipe."""
    folder, _, _ = paired
    os.mkfifo(folder / "m.npz")
    code, _, err = _main(
        folder, capsys, monkeypatch, "align", "a.npy", "b.npy", "-o", "m.npz"
    )
    assert code == 2
    _one_error(err, "m.npz is not a regular file")
    assert (folder / "m.npz").is_fifo()


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
def test_translate_writes_parquet_that_reads_back(paired, capsys, monkeypatch):
    """Check .parquet output: one vector column equal to aligner.translate."""
    folder, A, B = paired
    aligner = ProcrustesAligner().fit([A, B])
    save_aligner(aligner, folder / "m.npz")
    code, _, err = _main(
        folder,
        capsys,
        monkeypatch,
        "translate",
        "m.npz",
        "b.npy",
        "--source",
        "1",
        "--target",
        "0",
        "-o",
        "out.parquet",
    )
    assert code == 0, err
    import pyarrow.parquet as pq

    table = pq.read_table(folder / "out.parquet")
    assert table.column_names == ["embedding"]
    translated = np.vstack(table.column("embedding").to_pylist())
    assert_allclose(translated, aligner.translate(B, 1, 0), rtol=1e-6)
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--reg", "0.5"], "--reg applies to --method cca only"),
        (["--n-components", "2"], "--n-components applies to --method cca only"),
        (["--method", "cca", "--alpha", "2"], "--alpha applies to --method ridge"),
        (["--method", "ridge", "--reg", "2"], "--reg applies to --method cca only"),
        (["--names", "a", "a"], "--names gives 'a' twice"),
        (["--names", " ", "b"], "a view name cannot be empty"),
        (["--method", "cca", "--n-components", "0"], "must be at least 1, got 0"),
        (["--method", "cca", "--n-components", "x"], "expected a whole number"),
        (["--method", "cca", "--reg", "nan"], "finite number >= 0"),
        (["--test-size", "1.5"], "strictly between 0 and 1"),
        (["--test-size", "5"], "holds out 5"),
        (["--method", "cca", "--n-components", "9"], "more than the narrower file"),
        (["--method", "self-learning", "--test-size", "0.3"], "no known pairs"),
        (["--header"], "--header applies to .csv inputs"),
        (["--columns", "0..7", "--columns-b", "0..7"], "--columns applies to both"),
        (["--random-state", "-1"], "must be in [0, 2**32 - 1]"),
    ],
)
def test_options_that_do_not_apply_are_errors(
    paired, capsys, monkeypatch, argv, fragment
):
    """Check that an option that does nothing or is malformed is an error."""
    folder = paired[0]
    code, out, err = _main(
        folder, capsys, monkeypatch, "align", "a.npy", "b.npy", "-o", "m.npz", *argv
    )
    assert code == 2
    assert fragment in err, err
    assert err.count("error:") == 1
    assert "Traceback" not in err
    assert not (folder / "m.npz").exists()


def test_translate_same_view_and_demo_same_model_are_errors(
    paired, capsys, monkeypatch
):
    """Check that naming one view (or one model) twice is an error."""
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    code, _, err = _main(
        folder,
        capsys,
        monkeypatch,
        "translate",
        "m.npz",
        "a.npy",
        "--source",
        "view0",
        "--target",
        "0",
        "-o",
        "out.npy",
    )
    assert code == 2
    _one_error(err, "name the same view")
    code, _, err = _main(
        folder, capsys, monkeypatch, "demo", "--source", "e5", "--target", "e5"
    )
    assert code == 2
    _one_error(err, "two different models")


def test_every_option_has_help_and_every_command_an_example():
    """Check the help: every option explained, every command with examples."""
    from skembed.__main__ import build_parser

    parser = build_parser()
    (commands,) = [
        action
        for action in parser._actions
        if isinstance(action, __import__("argparse")._SubParsersAction)
    ]
    assert set(commands.choices) == {"demo", "report", "align", "translate", "search"}
    for name, command in commands.choices.items():
        assert "examples:" in command.epilog
        assert f"skembed {name}" in command.epilog
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings or action.dest}"
    assert all(action.help for action in parser._actions)
    # Every exit code is explained (143 was missing).
    import skembed._cli as cli
    import skembed._cli._common as common

    codes = {cli.EXIT_BUG}
    codes |= {value for name, value in vars(common).items() if name.startswith("EXIT_")}
    assert codes >= {0, 1, 2, 3, 130, 143}
    for code in codes:
        assert f" {code} " in parser.epilog.replace("\n", " "), code


def test_align_prints_held_out_quality_and_refits_on_all_pairs(
    paired, capsys, monkeypatch
):
    """Check the held-out figure, and that the model is fitted on every pair."""
    folder, A, B = paired
    code, out, err = _main(
        folder, capsys, monkeypatch, "align", "a.npy", "b.npy", "-o", "m.npz"
    )
    assert code == 0, err
    assert "held-out top-1 retrieval 1.000 on 75 pairs" in out
    assert "chance 0.0133" in out
    expected = ProcrustesAligner().fit([A, B])
    assert_allclose(
        load_aligner(folder / "m.npz").rotations_[1], expected.rotations_[1]
    )
    code, out, _ = _main(
        folder,
        capsys,
        monkeypatch,
        "align",
        "a.npy",
        "b.npy",
        "-o",
        "m2.npz",
        "--test-size",
        "0",
    )
    assert code == 0
    assert "not checked (--test-size 0)" in out


def test_align_exits_3_when_the_map_is_no_better_than_chance(
    paired, capsys, monkeypatch
):
    """Check exit code 3 and a one-line reason for a chance-level map."""
    folder, A, _ = paired
    rng = np.random.default_rng(1)
    np.save(folder / "unrelated.npy", rng.normal(size=A.shape).astype(np.float32))
    code, out, err = _main(
        folder, capsys, monkeypatch, "align", "a.npy", "unrelated.npy", "-o", "m.npz"
    )
    assert code == 3
    line = _one_error(err, "no better than chance", "chance 0.0133", kind="not usable")
    assert line.startswith("skembed align: not usable: ")
    assert "not worth using (exit 3)" in out
    # The model is written, for inspection, beside the name asked for.
    assert not (folder / "m.npz").exists()
    assert load_aligner(folder / "m.not-usable.npz").view_names_ == ["a", "unrelated"]


def test_fit_quality_follows_the_rule_of_compare_spaces():
    """Check fit_quality against retrieval_above_chance on held-out pairs."""
    from skembed._cli._quality import fit_quality
    from skembed.metrics._verdict import _above_chance, retrieval_above_chance

    A, B = _rotated(n=200)
    aligner = ProcrustesAligner().fit([A[:150], B[:150]])
    good = fit_quality(aligner, (A[150:], B[150:]))
    assert good.usable and good.reason == ""
    assert "held-out top-1 retrieval 1.000 on 50 pairs" in good.figure
    rng = np.random.default_rng(0)
    bad = fit_quality(aligner, (A[150:], rng.normal(size=(50, 8))))
    assert not bad.usable
    assert "no better than chance" in bad.reason
    for accuracy, n in [(0.2, 25), (0.19, 25), (0.05, 400), (0.04, 400), (1.0, 10)]:
        assert retrieval_above_chance(accuracy, n) == _above_chance(accuracy, n)


def test_quality_reason_states_the_accuracy_actually_needed():
    """Check the needed accuracy includes significance: 5 of 10 fail, 6 pass."""
    from types import SimpleNamespace

    from skembed._cli._quality import fit_quality
    from skembed.metrics._verdict import needed_retrieval, retrieval_above_chance

    for n in (6, 10, 60, 150, 1000):
        needed = needed_retrieval(n)
        assert retrieval_above_chance(needed, n)
        assert not retrieval_above_chance(needed - 1 / n, n)
    assert needed_retrieval(10) == 0.6
    assert needed_retrieval(4) is None  # 4 of 4 has p = 0.0039
    # Accuracies that are no count over n or 2n are judged as the floats
    # they are (0.0999 was read back as 1/10), numpy scalars included.
    assert not retrieval_above_chance(0.0999, 100)
    assert retrieval_above_chance(np.float32(0.5), 100)
    assert not retrieval_above_chance(np.float32(0.05), 100)
    half = SimpleNamespace(
        transform_view=lambda X, k: X,
    )
    Q = np.eye(10)
    # 5 of the 10 pairs found, in both directions: above sqrt(1/10), not significant
    shuffled = Q.copy()
    shuffled[5:] = Q[[6, 7, 8, 9, 5]]
    verdict = fit_quality(half, (Q, shuffled))
    assert not verdict.usable
    assert "retrieval 0.500 on 10 pairs" in verdict.reason
    assert "needed >= 0.6000" in verdict.reason
    tiny = fit_quality(half, (Q[:3, :3], Q[:3, :3]))
    assert not tiny.usable and "too few" in tiny.reason


def test_label_free_score_threshold_is_the_library_warning_threshold():
    """Check that the command line judges by the score and threshold fit warns at."""
    from skembed._cli._quality import LABEL_FREE_SCORE
    from skembed._unsupervised import MIN_CONFIDENCE

    assert LABEL_FREE_SCORE == ("confidence_", MIN_CONFIDENCE)


def test_label_free_verdict_names_starts_that_agree():
    """Check the reason given when confidence is low but starts met on one map."""
    from types import SimpleNamespace

    from skembed._cli._quality import fit_quality
    from skembed._unsupervised import MIN_AGREEMENT

    unverified = fit_quality(
        SimpleNamespace(confidence_=-0.2, start_agreement_=MIN_AGREEMENT)
    )
    assert not unverified.usable
    assert "could not be verified" in unverified.reason
    assert "agree on 10% of their pairs" in unverified.reason
    # Agreement is not proof: unrelated pools with a few dominant directions
    # agree too (an audit saw 33-54% on independent anisotropic noise).
    assert "only lined up the files' principal axes" in unverified.reason
    assert "--pairs" in unverified.reason
    for agreement in (0.03, float("nan"), None):
        failed = fit_quality(
            SimpleNamespace(confidence_=-0.2, start_agreement_=agreement)
        )
        assert not failed.usable
        assert "no better than chance" in failed.reason
    # A trusted map is usable whatever the starts did.
    assert fit_quality(SimpleNamespace(confidence_=0.7, start_agreement_=0.0)).usable


def test_self_learning_without_pairs_is_judged_by_a_label_free_score(
    tmp_path, capsys, monkeypatch
):
    """Check that unsupervised self-learning exits 3 on unrelated pools, else 0."""
    from skembed._cli._quality import LABEL_FREE_SCORE

    rng = np.random.default_rng(1)
    A = rng.normal(size=(300, 8)) * np.linspace(3, 1, 8)
    order = rng.permutation(300)
    np.save(tmp_path / "a.npy", A)
    np.save(tmp_path / "b.npy", (A @ ortho_group.rvs(8, random_state=0))[order])
    np.save(tmp_path / "noise.npy", rng.normal(size=(300, 8)))
    score = LABEL_FREE_SCORE[0]
    for other, output, expected in (("b.npy", "m.npz", 0), ("noise.npy", "n.npz", 3)):
        code, out, err = _main(
            tmp_path,
            capsys,
            monkeypatch,
            "align",
            "a.npy",
            other,
            "--method",
            "self-learning",
            "-q",
            "-o",
            output,
        )
        assert code == expected, err
        assert f"label-free {score.rstrip('_')}" in out
        # A map not worth using is written beside the name asked for.
        written = output if expected == 0 else output.replace(".npz", ".not-usable.npz")
        assert (tmp_path / written).exists()
    _one_error(err, f"label-free {score.rstrip('_')} is", "--pairs", kind="not usable")


def test_self_learning_with_pairs_holds_some_out(tmp_path, capsys, monkeypatch):
    """Check that held-out known pairs judge a self-learning fit."""
    rng = np.random.default_rng(1)
    A = rng.normal(size=(300, 8)) * np.linspace(3, 1, 8)
    order = rng.permutation(300)
    np.save(tmp_path / "a.npy", A)
    np.save(tmp_path / "b.npy", (A @ ortho_group.rvs(8, random_state=0))[order])
    pairs = np.column_stack([order[:40], np.arange(40)])
    np.savetxt(tmp_path / "pairs.csv", pairs, fmt="%d", delimiter=",")
    code, out, err = _main(
        tmp_path,
        capsys,
        monkeypatch,
        "align",
        "a.npy",
        "b.npy",
        "--method",
        "self-learning",
        "--pairs",
        "pairs.csv",
        "-q",
        "-o",
        "m.npz",
    )
    assert code == 0, err
    assert "30 seed pairs" in out
    assert "held-out top-1 retrieval 1.000 on 10 pairs" in out


@pytest.mark.slow
def test_self_learning_from_pairs_that_lead_astray_warns(tmp_path, capsys, monkeypatch):
    """Check a self-learning fit from too few known pairs and no check.

    With --test-size 0 it said "Quality: not checked" and nothing else for a
    map at chance; the fit now warns in the command's terms, the figure
    gives its label-free confidence, and the command exits 3 as for any map
    its checks reject (it exited 0). One known pair is refused with advice
    the command line can follow (it said "--pairs None").
    """
    from skembed.datasets import load_fortunes

    data = load_fortunes(views=["minilm", "e5"])
    order = np.random.default_rng(0).permutation(2000)
    np.save(tmp_path / "a.npy", data.views["minilm"][:2000])
    np.save(tmp_path / "b.npy", data.views["e5"][:2000][order])
    # Wrong pairs: whatever the machine, no map agrees with them.
    pairs = np.column_stack([order[:10], np.roll(np.arange(10), 1)])
    np.savetxt(tmp_path / "pairs.csv", pairs, fmt="%d", delimiter=",")
    argv = ["align", "a.npy", "b.npy", "--method", "self-learning", "-q"]
    argv += ["--pairs", "pairs.csv", "--test-size", "0", "-o", "m.npz"]
    code, out, err = _main(tmp_path, capsys, monkeypatch, *argv)
    assert code == 3, err
    assert "not checked on held-out pairs (--test-size 0); label-free " in out
    assert "with 10 known pairs" in out
    assert "not worth using (exit 3)" in out
    assert "could not be confirmed: its label-free confidence is" in err
    assert "map from 10 known pairs explains the pools' other rows poorly" in err
    assert "held-out pairs (--test-size)" in err
    assert "fit(" not in err and "as init" not in err
    np.savetxt(tmp_path / "one.csv", pairs[:1], fmt="%d", delimiter=",")
    argv[argv.index("pairs.csv")] = "one.csv"
    code, out, err = _main(tmp_path, capsys, monkeypatch, *argv)
    assert code == 2
    assert "no --pairs for the unsupervised start" in err


def _python_terms(line):
    """The Python names of the self-learning fit's parameters, attributes or
    calls in ``line``, but the pointer to the Python class that the command
    line gives where it has no option of that parameter."""
    line = line.replace("in Python, skembed.SelfLearningAligner's n_iter does", "")
    pattern = r"SelfLearningAligner|\w+_=|\w+_ |n_iter|\btol\b|fit\(|\binit\b"
    return re.findall(pattern, line)


@pytest.mark.parametrize(
    "reason, fields",
    [
        ("low_confidence", {"confidence": 0.12}),
        ("starts_agree", {"confidence": 0.2, "start_agreement": 0.31}),
        ("first_pool_too_small", {"confidence": float("nan")}),
        ("little_room", {"confidence": float("nan"), "n_distinct_rows": 150}),
        ("too_few_rows", {"confidence": float("nan"), "n_distinct_rows": 60}),
        ("known_pairs_disagree", {"confidence": 0.1, "n_known_pairs": 40}),
        ("no_shared_structure", {"isomorphism_score": 0.01}),
    ],
)
def test_self_learning_findings_are_worded_from_their_fields(reason, fields):
    """Check that align words the self-learning findings from the warning's
    fields: every finding, whatever the library's text says, in align's
    terms and with its numbers."""
    from skembed._cli._commands import _self_learning_in_command_terms
    from skembed.exceptions import (
        SelfLearningConvergenceWarning,
        UnsupervisedAlignmentWarning,
    )

    warning = UnsupervisedAlignmentWarning("library words", reason, **fields)
    text = _self_learning_in_command_terms(warning, paired_rows=True)
    assert text.startswith("self-learning"), text
    assert not _python_terms(text), text
    if reason != "known_pairs_disagree":
        # Without --pairs: what align can do instead.
        assert text.endswith("leave out --method self-learning."), text
    for name, value in fields.items():
        shown = {
            "start_agreement": f"{value:.0%}",
            "n_distinct_rows": str(value),
            "n_known_pairs": str(value),
        }.get(name, f"{value:.3f}")
        assert shown in text, (name, text)
    unsettled = SelfLearningConvergenceWarning(
        "library words", "dictionary", n_iter=7, change=0.25, tol=0.01
    )
    text = _self_learning_in_command_terms(unsettled, paired_rows=False)
    assert text.startswith("self-learning did not converge in 7 rounds"), text
    assert "0.25 > the tolerance 0.01" in text and not _python_terms(text), text
    # A warning without a finding is not the fit's: left as it is.
    for plain in (
        UnsupervisedAlignmentWarning("SelfLearningAligner said something"),
        SelfLearningConvergenceWarning("SelfLearningAligner did not converge"),
    ):
        assert _self_learning_in_command_terms(plain, paired_rows=True) is None


def test_self_learning_warnings_name_options_of_align(tmp_path, capsys, monkeypatch):
    """Check the self-learning fit's warnings in the terms of skembed align.

    They named the Python class, its attributes and its parameters
    ("SelfLearningAligner found no pairs-free map it can trust
    (confidence_=0.065 < 0.5 ...)", "increase n_iter or tol"), which
    align has no option for. The map is still judged not usable (exit 3).
    """
    import functools

    from skembed._selflearn import SelfLearningAligner

    rng = np.random.default_rng(1)
    np.save(tmp_path / "a.npy", rng.normal(size=(300, 8)) * np.linspace(3, 1, 8))
    np.save(tmp_path / "noise.npy", rng.normal(size=(300, 8)))
    np.save(tmp_path / "small.npy", rng.normal(size=(150, 8)))
    np.save(tmp_path / "large.npy", rng.normal(size=(600, 8)))
    argv = ["--method", "self-learning", "-q", "-o", "m.npz"]
    code, _, err = _main(
        tmp_path, capsys, monkeypatch, "align", "a.npy", "noise.npy", *argv
    )
    assert code == 3, err
    warned = [line for line in err.splitlines() if ": warning: " in line]
    (untrusted,) = [line for line in warned if "no pairs-free map" in line]
    # The fit's confidence in the command's words, whatever its sign: a map
    # of unrelated pools can score below the shuffled control.
    assert re.search(r"\(label-free confidence -?\d\.\d{3} < 0\.5", untrusted), (
        untrusted
    )
    # Rows of A and B may be paired by position: align can fit them as pairs.
    assert untrusted.endswith(
        "Pass a few dozen known pairs with --pairs, or, if row i of A and row i "
        "of B embed the same item, align them as pairs: leave out --method "
        "self-learning."
    ), untrusted
    # The neighbourhood rounds that refine such a map, cut short so that
    # they cannot settle (whether the default 50 rounds settle on noise is
    # happenstance).
    default = CLI_METHODS["self-learning"]
    monkeypatch.setitem(
        CLI_METHODS, "self-learning", functools.partial(SelfLearningAligner, n_iter=2)
    )
    code, _, err = _main(
        tmp_path, capsys, monkeypatch, "align", "a.npy", "noise.npy", *argv
    )
    assert code == 3, err
    lines = [line for line in err.splitlines() if ": warning: " in line]
    (rounds,) = [line for line in lines if "did not settle in 2 rounds" in line]
    assert "skembed align sets no number of rounds" in rounds
    warned += lines
    monkeypatch.setitem(CLI_METHODS, "self-learning", default)
    code, _, err = _main(
        tmp_path, capsys, monkeypatch, "align", "small.npy", "large.npy", *argv
    )
    assert code == 3, err
    (untrusted,) = [line for line in err.splitlines() if "no pairs-free map" in line]
    assert "the pool of A is too small beside that of B" in untrusted
    assert "give the larger file as A, or files of similar sizes" in untrusted
    assert untrusted.endswith("Pass a few dozen known pairs with --pairs."), untrusted
    warned += [line for line in err.splitlines() if ": warning: " in line]
    # The fit's own rounds, from known pairs: one round cannot settle.
    pairs = np.column_stack([np.arange(40), np.arange(40)])
    np.savetxt(tmp_path / "pairs.csv", pairs, fmt="%d", delimiter=",")
    monkeypatch.setitem(
        CLI_METHODS, "self-learning", functools.partial(SelfLearningAligner, n_iter=1)
    )
    code, _, err = _main(
        tmp_path, capsys, monkeypatch, "align", "a.npy", "noise.npy", "--pairs",
        "pairs.csv", "--test-size", "0", *argv,
    )  # fmt: skip
    assert code == 3, err
    lines = [line for line in err.splitlines() if ": warning: " in line]
    assert any("did not converge in 1 rounds" in line for line in lines), err
    assert any("map from 40 known pairs" in line for line in lines), err
    warned += lines
    for line in warned:
        assert not _python_terms(line), line


def test_progress_line_has_elapsed_time_and_estimate():
    """Check the progress line of a long step: elapsed, rate, time left."""
    import io
    import time

    from skembed._cli._common import Progress

    stream = io.StringIO()
    progress = Progress(quiet=False, stream=stream)
    progress.first_report = progress.interval = 0.02
    with progress.step("translating 1000 rows", total=1000, unit="rows") as step:
        step.advance(250)
        # Wait for the timer's line rather than a fixed time: a busy machine
        # can stall the timer thread past any short sleep.
        deadline = time.monotonic() + 30
        while "elapsed" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "skembed: translating 1000 rows ..."
    ticks = [line for line in lines if "elapsed" in line]
    assert ticks, lines
    assert "250 of 1,000 rows" in ticks[0]
    assert "rows/s" in ticks[0] and "left" in ticks[0]
    quiet = io.StringIO()
    silent = Progress(quiet=True, stream=quiet)
    silent.first_report = 0.0
    with silent.step("reading") as step:
        step.advance(1, 2)
        time.sleep(0.05)
    assert quiet.getvalue() == ""


def test_self_learning_progress_reports_rounds(tmp_path, capsys, monkeypatch):
    """Check that a self-learning fit reports its rounds on stderr.

    Progress lines are printed by a timer, so which notes reach stderr
    depends on the machine's speed; the notes themselves are recorded too,
    and every one of them is checked.
    """
    from skembed._cli._common import Progress, Step

    monkeypatch.setattr(Progress, "first_report", 0.0)
    monkeypatch.setattr(Progress, "interval", 0.01)
    notes = []
    original_note = Step.note

    def note(self, status):
        notes.append(status)
        original_note(self, status)

    monkeypatch.setattr(Step, "note", note)
    rng = np.random.default_rng(1)
    A = rng.normal(size=(300, 8)) * np.linspace(3, 1, 8)
    np.save(tmp_path / "a.npy", A)
    np.save(tmp_path / "b.npy", A[::-1] @ ortho_group.rvs(8, random_state=0))
    code, out, err = _main(
        tmp_path,
        capsys,
        monkeypatch,
        "align",
        "a.npy",
        "b.npy",
        "--method",
        "self-learning",
        "-o",
        "m.npz",
    )
    assert code == 0, err
    assert "elapsed" in err
    assert any("rounds so far; round 1 (at most 50)" in n for n in notes), notes
    assert not any("[SelfLearningAligner]" in n for n in notes)
    assert "[SelfLearningAligner]" not in err + out


def test_no_statistics_writes_a_smaller_model(paired, capsys, monkeypatch):
    """Check --no-statistics: a smaller file that transforms alike."""
    folder, A, B = paired
    for name, extra in (("full.npz", []), ("small.npz", ["--no-statistics"])):
        code, _, err = _main(
            folder,
            capsys,
            monkeypatch,
            "align",
            "a.npy",
            "b.npy",
            "-q",
            "-o",
            name,
            *extra,
        )
        assert code == 0, err
    full, small = load_aligner(folder / "full.npz"), load_aligner(folder / "small.npz")
    assert (folder / "small.npz").stat().st_size < (folder / "full.npz").stat().st_size
    assert_allclose(small.transform([A, B]), full.transform([A, B]))
    with pytest.raises(ValueError, match="without its statistics"):
        small.partial_fit([A, B])


def test_csv_first_numeric_row_is_never_dropped(paired, capsys, monkeypatch):
    """Check that a numeric first row is data or an error, never a lost row."""
    folder, A, B = paired
    pairs = "0,1\n1,0\n" + "".join(f"{i},{i}\n" for i in range(2, 60))
    (folder / "pairs.csv").write_text(pairs)
    argv = ["align", "a.npy", "b.npy", "--pairs", "pairs.csv", "-q", "-o", "m.npz"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv)
    assert code == 2
    _one_error(err, "line 1 is 0,1", "--no-header")
    code, out, err = _main(folder, capsys, monkeypatch, *argv, "--no-header")
    assert code == 0, err
    assert "fitted on 60 pairs" in out
    # A first row 0, 1, ..., d-1 among embeddings: kept with --no-header.
    rows = np.vstack([np.arange(8), A[1:]]).astype(np.float32)
    np.savetxt(folder / "first.csv", rows, delimiter=",", fmt="%.9g")
    code, _, err = _main(folder, capsys, monkeypatch, "report", "first.csv", "b.npy")
    assert code == 2
    _one_error(err, "--header", "--no-header")
    code, out, err = _main(
        folder,
        capsys,
        monkeypatch,
        "report",
        "first.csv",
        "b.npy",
        "--no-header",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["n_samples"] == 300
    # A text header is recognised without any option.
    pd.DataFrame(A, columns=[f"e{j}" for j in range(8)]).to_csv(
        folder / "named.csv", index=False
    )
    code, out, err = _main(
        folder, capsys, monkeypatch, "report", "named.csv", "b.npy", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["n_samples"] == 300


@pytest.mark.parametrize("line", [1, 5])
def test_csv_typo_is_an_error_naming_the_line(paired, capsys, monkeypatch, line):
    """Check that a typo in a data row names the line, never shifts rows."""
    folder, A, B = paired
    rows = [",".join(f"{value:.6f}" for value in row) for row in A[:10]]
    rows[line - 1] = rows[line - 1].replace(",", ",x", 1)
    (folder / "typo.csv").write_text("\n".join(rows) + "\n")
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    code, _, err = _main(
        folder,
        capsys,
        monkeypatch,
        "translate",
        "m.npz",
        "typo.csv",
        "--source",
        "0",
        "--target",
        "1",
        "-o",
        "out.npy",
    )
    assert code == 2
    _one_error(err, f"typo.csv, line {line}, column 1", "'x")
    assert not (folder / "out.npy").exists()


def _damaged_files(folder, A, B):
    """name -> path of a damaged or misnamed file, built from valid ones."""
    import io
    import zipfile

    with open(folder / "npy_named.npz", "wb") as file:
        np.save(file, A)
    np.savez(folder / "stored.npz", emb=A)
    data = bytearray((folder / "stored.npz").read_bytes())
    data[data.find(b"\x93NUMPY") + 500] ^= 0xFF
    (folder / "bad_crc.npz").write_bytes(bytes(data))
    np.savez_compressed(folder / "compressed.npz", emb=A)
    data = bytearray((folder / "compressed.npz").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(16)
    (folder / "bad_deflate.npz").write_bytes(bytes(data))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 8)}
    )
    with zipfile.ZipFile(folder / "huge_member.npz", "w") as archive:
        archive.writestr("emb.npy", header.getvalue() + bytes(64))
    (folder / "truncated.npy").write_bytes((folder / "a.npy").read_bytes()[:2000])
    # NumPy's header parser accepts a negative shape; -2 x -4 floats even
    # "hold" the 32 bytes that follow.
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (-2, -4)}
    )
    (folder / "negative.npy").write_bytes(header.getvalue() + bytes(32))
    with zipfile.ZipFile(folder / "negative_member.npz", "w") as archive:
        archive.writestr("emb.npy", header.getvalue() + bytes(32))
    (folder / "text.parquet").write_text("id,embedding\n")
    (folder / "binary.csv").write_bytes((folder / "a.npy").read_bytes())
    np.savez(folder / "empty.npz")
    return {
        "empty.npz": "empty.npz holds no arrays",
        "npy_named.npz": "rename it to npy_named.npy",
        "bad_crc.npz": "damaged",
        "bad_deflate.npz": "damaged",
        "huge_member.npz": "(1000000000000, 8)",
        "truncated.npy": "truncated",
        "negative.npy": "negative shape (-2, -4)",
        "negative_member.npz": "negative shape (-2, -4)",
        "text.parquet": "is a text file, not a Parquet file",
        "binary.csv": "is a NumPy .npy array, not a CSV",
    }


def test_damaged_and_misnamed_files_exit_2_in_one_line(paired, capsys, monkeypatch):
    """Check exit code 2 and one line (no traceback) for damaged input files."""
    folder, A, B = paired
    for name, fragment in _damaged_files(folder, A, B).items():
        code, _, err = _main(folder, capsys, monkeypatch, "report", name, "b.npy")
        assert code == 2, (name, err)
        _one_error(err, name, fragment)


def test_translate_of_an_archive_named_npy_exits_2(paired, capsys, monkeypatch):
    """Check translate's streaming probe on a .npz archive named .npy.

    np.load gave the probe an NpzFile, which has no ``offset``: exit 1 and
    "a bug in skembed", where report says what the file is.
    """
    folder, A, B = paired
    np.savez(folder / "archive.npz", B[:20])
    (folder / "archive.npz").rename(folder / "fake.npy")
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "model.npz")
    code, _, err = _main(
        folder,
        capsys,
        monkeypatch,
        *("translate", "model.npz", "fake.npy", "--source", "1", "--target", "0"),
        *("-o", "out.npy"),
    )
    assert code == 2, err
    _one_error(err, "fake.npy", "rename it to fake.npz")
    assert not (folder / "out.npy").exists()


def test_search_advice_on_centring_names_the_center_values(paired, capsys, monkeypatch):
    """Check that search's errors say --center none/index, not center=False.

    The library's advice "center=False" was spelled "--center False", a value
    the option refuses.
    """
    folder, A, B = paired
    np.save(folder / "same.npy", np.repeat(A[:1], 30, axis=0))
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "model.npz")
    code, _, err = _main(
        folder,
        capsys,
        monkeypatch,
        *("search", "model.npz", "b.npy", "same.npy", "--source", "1"),
        *("--target", "0", "--center", "index", "-o", "ids.npy"),
    )
    assert code == 2, err
    line = _one_error(err, "(--center index)", "or --center none to search")
    assert "False" not in line and "True" not in line


@pytest.mark.parametrize("usable", [True, False])
def test_align_over_a_model_of_a_long_name(paired, capsys, monkeypatch, usable):
    """Check align -o NAME.npz again when NAME is near the name limit.

    The name a map not worth using would take beside it (NAME.not-usable.npz)
    was too long, and the check of that name stopped a usable run with
    "File name too long".
    """
    folder, A, B = paired
    if not usable:
        np.save(folder / "b.npy", np.random.default_rng(1).normal(size=B.shape))
    name = "y" * 250 + ".npz"
    (folder / name).write_bytes(b"old model")
    code, _, err = _main(
        folder, capsys, monkeypatch, "align", "a.npy", "b.npy", "-o", name
    )
    assert "Traceback" not in err
    assert "too long" not in err
    if usable:
        assert code == 0, err
        assert load_aligner(folder / name).score([A, B]) > 0.9
    else:
        assert code == 3, err
        assert (folder / name).read_bytes() == b"old model"
        beside = [p.name for p in folder.iterdir() if ".not-usable" in p.name]
        assert len(beside) == 1
        assert len(beside[0].encode()) <= 255
        load_aligner(folder / beside[0])


@pytest.mark.parametrize("stem", ["-old", "old one", "old"])
def test_the_translate_command_align_suggests_runs(paired, capsys, monkeypatch, stem):
    """Check that the command align prints after a model runs as printed.

    A view named after a file starting with "-" was printed as "--target
    -old", which argparse reads as an option without its value.
    """
    folder, A, B = paired
    np.save(folder / f"{stem}.npy", A)
    code, out, err = _main(
        folder,
        capsys,
        monkeypatch,
        *("align", f"./{stem}.npy", "b.npy", f"--output={stem}.npz"),
    )
    assert code == 0, err
    suggested = out.split("use: ")[1].splitlines()[0]
    np.save(folder / "queries.npy", B[:5])
    argv = shlex.split(suggested.replace("FILE", "queries.npy").replace("OUT", "q"))
    assert argv[:2] == ["skembed", "translate"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv[1:])
    assert code == 0, err
    expected = load_aligner(folder / f"{stem}.npz").translate(B[:5], 1, 0)
    assert_allclose(np.load(folder / "q.npy"), expected)


def test_damaged_model_files_exit_2_in_one_line(paired, capsys, monkeypatch):
    """Check exit code 2 and one line for model files that cannot be loaded."""
    import io
    import zipfile

    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    with zipfile.ZipFile(folder / "m.npz") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    )
    forged = {
        name: (header.getvalue() + bytes(64) if name.startswith("array") else data)
        for name, data in members.items()
    }
    with zipfile.ZipFile(folder / "huge.npz", "w") as archive:
        for name, data in forged.items():
            archive.writestr(name, data)
    document = json.loads(np.load(folder / "m.npz")["__skembed_model__"].tobytes())
    text = json.dumps(document)[:-1] + ', "junk": ' + "[" * 50000 + "]" * 50000 + "}"
    nested = io.BytesIO()
    np.save(nested, np.frombuffer(text.encode(), dtype=np.uint8))
    with zipfile.ZipFile(folder / "nested.npz", "w") as archive:
        for name, data in members.items():
            if name.startswith("__skembed_model__"):
                data = nested.getvalue()
            archive.writestr(name, data)
    with open(folder / "array.npz", "wb") as file:
        np.save(file, A)
    for model in ("huge.npz", "nested.npz", "array.npz"):
        code, _, err = _main(
            folder,
            capsys,
            monkeypatch,
            "translate",
            model,
            "b.npy",
            "--source",
            "1",
            "--target",
            "0",
            "-o",
            "out.npy",
        )
        assert code == 2, (model, err)
        _one_error(err, model)


@pytest.mark.parametrize(
    "exception, code, fragment",
    [
        (KeyboardInterrupt(), 130, "interrupted"),
        (MemoryError("Unable to allocate 7.3 TiB"), 2, "not enough memory"),
        (RecursionError("maximum recursion depth exceeded"), 2, "nested too deeply"),
        (OSError(28, "No space left on device", "m.npz"), 2, "m.npz: No space left"),
        (RuntimeError("boom"), 1, "a bug in skembed"),
    ],
)
def test_failures_are_one_line_with_their_exit_code(
    paired, capsys, monkeypatch, exception, code, fragment
):
    """Check exit codes 130, 2 and 1, each with one line and no traceback."""

    def fail(args, progress):
        raise exception

    monkeypatch.setattr("skembed._cli.run_report", fail)
    got, _, err = _main(paired[0], capsys, monkeypatch, "report", "a.npy", "b.npy")
    assert got == code
    assert fragment in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_report_json_never_prints_nan(paired, capsys, monkeypatch):
    """Check that a non-finite number becomes null, keeping the JSON valid."""
    from dataclasses import replace

    from skembed.metrics import compare_spaces

    def with_nan(*args, **kwargs):
        return replace(compare_spaces(*args, **kwargs), linear_cka=float("nan"))

    monkeypatch.setattr("skembed._cli._commands.compare_spaces", with_nan)
    code, out, _ = _main(
        paired[0], capsys, monkeypatch, "report", "a.npy", "b.npy", "--json"
    )
    assert code == 0
    assert "NaN" not in out
    assert json.loads(out)["linear_cka"] is None


def test_runtime_warnings_do_not_leak_but_skembed_warnings_show(
    paired, capsys, monkeypatch
):
    """Check that numpy RuntimeWarnings are dropped, skembed's warnings shown."""
    import warnings

    from skembed.exceptions import UnsupervisedAlignmentWarning

    def noisy(args, progress):
        with np.errstate(over="warn"):
            np.float32(3e38) * np.float32(10)
        warnings.warn("overflow encountered in matmul", RuntimeWarning, stacklevel=1)
        warnings.warn("pass known pairs", UnsupervisedAlignmentWarning, stacklevel=1)
        return 0

    monkeypatch.setattr("skembed._cli.run_report", noisy)
    code, _, err = _main(paired[0], capsys, monkeypatch, "report", "a.npy", "b.npy")
    assert code == 0
    assert "overflow" not in err
    assert err.strip() == "skembed report: warning: pass known pairs"


def _limited(limit):
    """preexec_fn: limit the size of files the child may write (ulimit -f)."""

    def apply():
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _run_in(folder, argv, *, file_limit=None):
    """Run the command line in ``folder``, files limited to ``file_limit`` bytes."""
    return subprocess.run(
        _cli(*argv),
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        preexec_fn=None if file_limit is None else _limited(file_limit),
    )


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_a_failed_write_leaves_the_old_output_intact(paired):
    """Check that outputs are atomic: a write that fails changes nothing."""
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    old_model = (folder / "m.npz").read_bytes()
    (folder / "out.npy").write_bytes(b"previous result")
    results = [
        _run_in(folder, argv, file_limit=4096)
        for argv in (
            ["align", "a.npy", "b.npy", "-q", "-o", "m.npz"],
            [
                "translate",
                "m.npz",
                "b.npy",
                "--source",
                "1",
                "--target",
                "0",
                "-q",
                "-o",
                "out.npy",
            ],
        )
    ]
    for result in results:
        _user_error(result, "could not write", "left as it was")
    assert (folder / "m.npz").read_bytes() == old_model
    assert (folder / "out.npy").read_bytes() == b"previous result"
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_pyarrow_floor_excludes_cve_2023_47248():
    """Check that every extra listing pyarrow requires a version past the fix."""
    import configparser
    from pathlib import Path

    from packaging.requirements import Requirement
    from packaging.version import Version

    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    found = []
    for extra, text in config["options.extras_require"].items():
        for line in text.split("\n"):
            if line.strip().startswith("pyarrow"):
                requirement = Requirement(line.strip())
                found.append(extra)
                assert not requirement.specifier.contains(Version("14.0.0")), extra
                assert requirement.specifier.contains(Version("14.0.1")), extra
    assert {"parquet", "test", "text", "docs"} <= set(found)


def test_csv_header_numbered_from_one_is_never_a_data_row(paired, capsys, monkeypatch):
    """Check a header 1,2,...,d: read as a data row, it shifted every row by one."""
    folder, A, B = paired
    pd.DataFrame(A, columns=range(1, 9)).to_csv(folder / "one.csv", index=False)
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    argv = ["translate", "m.npz", "one.csv", "--source", "0", "--target", "1"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv, "-o", "out.npy")
    assert code == 2
    _one_error(err, "line 1 is 1,2,3,...", "--header", "--no-header")
    assert not (folder / "out.npy").exists()
    code, _, err = _main(
        folder, capsys, monkeypatch, *argv, "--header", "-o", "out.npy"
    )
    assert code == 0, err
    assert np.load(folder / "out.npy").shape == (300, 8)


def test_csv_of_text_ids_without_header_says_how_to_read_it(
    paired, capsys, monkeypatch
):
    """Check id,values rows without a header: the advice given reads every row.

    The advice was --header, which then took the first data row (numbers
    among a name) as column names and dropped it.
    """
    folder, A, B = paired
    frame = pd.DataFrame(A)
    frame.insert(0, "id", [f"doc{i}" for i in range(len(A))])
    frame.to_csv(folder / "ids.csv", index=False, header=False)
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    argv = ["translate", "m.npz", "ids.csv", "--source", "0", "--target", "1"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv, "-o", "out.npy")
    assert code == 2
    line = _one_error(err, "'doc0'", "--no-header --columns 1..8")
    code, _, err = _main(
        folder, capsys, monkeypatch, *argv, "--header", "-o", "out.npy"
    )
    assert code == 2
    _one_error(err, "--header, but line 1 holds", "--no-header --columns 1..8")
    assert not (folder / "out.npy").exists()
    fix = line.split("Pass ")[1].split(" to read")[0].split()
    code, _, err = _main(folder, capsys, monkeypatch, *argv, *fix, "-o", "out.npy")
    assert code == 0, err
    expected = ProcrustesAligner().fit([A, B]).translate(A, 0, 1)
    assert_allclose(np.load(folder / "out.npy"), expected, atol=1e-5)


def test_csv_columns_left_out_by_the_selection_are_not_read(
    paired, capsys, monkeypatch
):
    """Check that only the selected columns of a CSV must hold finite numbers.

    Every column was checked before the selection: a label column mixing
    words and numbers, a note empty on every line or the empty last column a
    comma ending every line adds made the file unreadable, whatever the
    selection (a Parquet file was read).
    """
    folder, A, B = paired
    names = [f"e{j}" for j in range(8)]
    frame = pd.DataFrame(A, columns=names)
    labelled = frame.copy()
    labelled.insert(0, "label", ["cat" if i % 2 else "7" for i in range(len(A))])
    labelled.to_csv(folder / "label.csv", index=False)
    noted = frame.assign(note=np.nan)
    noted.to_csv(folder / "note.csv", index=False)
    rows = "".join(",".join(f"{v:.9g}" for v in row) + ",\n" for row in A)
    (folder / "trail.csv").write_text(rows)
    (folder / "trail_named.csv").write_text(",".join(names) + ",\n" + rows)
    plain = rows.replace(",\n", "\n")
    (folder / "trail_header.csv").write_text(",".join(names) + ",\n" + plain)

    def report(*argv):
        return _main(folder, capsys, monkeypatch, "report", *argv, "b.npy", "--json")

    for argv in (
        ["label.csv", "--columns-a", "e0..e7"],
        ["note.csv", "--columns-a", "e0..e7"],
        ["trail.csv", "--no-header", "--columns-a", "0..7"],
        ["trail.csv"],
        ["trail_named.csv"],
        ["trail_named.csv", "--header", "--columns-a", "e0..e7"],
        ["trail_header.csv"],
    ):
        code, out, err = report(*argv)
        assert code == 0, (argv, err)
        assert json.loads(out)["n_samples"] == len(A), argv
    # A selected column is checked as before; all of them without --columns.
    for argv in (["label.csv", "--columns-a", "label,e0..e6"], ["label.csv"]):
        code, _, err = report(*argv)
        assert code == 2
        _one_error(err, "label.csv, line 3, column 'label': 'cat' is not a number")
    code, _, err = report("note.csv", "--columns-a", "e1..note")
    assert code == 2
    _one_error(err, "note.csv, line 2, column 'note': the value is missing")
    # Without --columns, the empty column is named with a selection that works.
    code, _, err = report("note.csv")
    assert code == 2
    line = _one_error(err, "'note'", "empty or NaN on every line", "--columns-a e0..e7")
    fix = line.split("with ")[-1].rstrip(".").split()
    code, out, err = report("note.csv", *fix)
    assert code == 0, err
    assert json.loads(out)["n_samples"] == len(A)


@pytest.mark.parametrize("word", ["nan", "inf", "-Infinity", "1_0"])
def test_csv_header_of_words_python_reads_as_numbers_is_a_header(
    paired, capsys, monkeypatch, word
):
    """Check a header whose last name is a word float() takes for a number.

    It was judged a data row with text ids, and the advice given (read the
    last column alone) was wrong. Such a word among numbers written with
    digits is still a cell of a data row.
    """
    folder, A, B = paired
    names = list("abcdefg") + [word]
    pd.DataFrame(A, columns=names).to_csv(folder / "words.csv", index=False)
    code, out, err = _main(
        folder, capsys, monkeypatch, "report", "words.csv", "b.npy", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["n_samples"] == len(A)
    # NaN in a data row is still a value of that row, refused as one.
    rows = [",".join(f"{v:.9g}" for v in row) for row in A]
    rows[0] = rows[0].rsplit(",", 1)[0] + f",{word}"
    (folder / "data.csv").write_text("\n".join(rows) + "\n")
    code, _, err = _main(folder, capsys, monkeypatch, "report", "data.csv", "b.npy")
    assert code == 2
    if word == "1_0":
        _one_error(err, "line 1, column 7: '1_0' is not a number")
    else:
        _one_error(err, "line 1, column 7: the value is missing or not finite")


@pytest.mark.parametrize("output", ["out.npy", "out.csv"])
def test_npy_longer_than_its_header_says_is_refused(
    paired, capsys, monkeypatch, output
):
    """Check a .npy with data after the announced array: its rows were lost.

    Two files concatenated, or an appender that never rewrote the header: the
    streamed and the whole-file reads both took the announced rows alone.
    """
    folder, A, B = paired
    np.save(folder / "q.npy", A[:50])
    data = (folder / "q.npy").read_bytes() + A[50:100].tobytes()
    (folder / "long.npy").write_bytes(data)
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    argv = ["translate", "m.npz", "long.npy", "--source", "0", "--target", "1"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv, "-o", output)
    assert code == 2
    _one_error(err, "long.npy is damaged", f"{A[50:100].nbytes:,} more bytes")
    assert not (folder / output).exists()
    with pytest.raises(ValueError, match="more bytes follow them"):
        translate_file(lambda rows: rows, folder / "long.npy", folder / "x.npy")


@given(
    matrix=arrays(
        np.float64,
        st.tuples(st.integers(1, 12), st.integers(2, 5)),
        elements=st.one_of(
            st.integers(-2, 6).map(float),
            st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False),
        ),
    )
)
@settings(deadline=None, max_examples=60)
def test_csv_reader_never_loses_or_shifts_a_row(matrix):
    """Check that a CSV file's rows come back whole, or line 1 is an error."""
    import tempfile
    from pathlib import Path

    from skembed._cli._common import UserError
    from skembed._cli._files import parse_columns, read_embeddings

    columns = parse_columns(f"0..{matrix.shape[1] - 1}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.csv"
        np.savetxt(path, matrix, delimiter=",", fmt="%.17g")
        read = read_embeddings(str(path), header="no", columns=columns)
        np.testing.assert_array_equal(read, matrix)
        try:
            read = read_embeddings(str(path), header="auto", columns=columns)
        except UserError as exc:
            assert "line 1" in str(exc)
        else:
            np.testing.assert_array_equal(read, matrix)


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
def test_translate_streams_npy_to_npy_and_parquet(cli, capsys, monkeypatch):
    """Check the streamed translate: same rows as the API, rate shown, .parquet out."""
    import pyarrow.parquet as pq

    folder, (_, B), _ = cli
    expected = load_aligner(folder / "model.npz").translate(B, "new", "old")
    argv = ["translate", "model.npz", "b.npy", "--source", "new", "--target", "old"]
    code, _, err = _run(folder, capsys, monkeypatch, *argv, "-o", "streamed.npy")
    assert code == 0
    assert "wrote 600 x 12 to streamed.npy" in err and "rows/s" in err
    assert_allclose(np.load(folder / "streamed.npy"), expected, rtol=1e-6)
    code, _, err = _run(
        folder, capsys, monkeypatch, *argv, "-o", "streamed.parquet", "--quiet"
    )
    assert code == 0 and err == ""
    table = pq.read_table(folder / "streamed.parquet")
    vectors = np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)
    assert_allclose(vectors, expected, rtol=1e-6)
    assert not [p for p in folder.iterdir() if p.name.endswith(".partial")]


# ---------------------------------------------------------------------------
# search: new queries against an old index
# ---------------------------------------------------------------------------
def _search(folder, capsys, monkeypatch, *argv, views=("new", "old")):
    """search of b.npy (the new view) in a.npy (the old one), plus ``argv``."""
    source, target = views
    return _run(
        folder,
        capsys,
        monkeypatch,
        "search",
        "model.npz",
        "b.npy",
        "a.npy",
        "--source",
        source,
        "--target",
        target,
        *argv,
    )


@pytest.mark.parametrize(
    "options, index_params",
    [
        ([], {}),
        (
            ["--method", "csls", "--csls-k", "5", "--center", "index", "-k", "3"],
            {"method": "csls", "csls_k": 5, "center": True, "n_neighbors": 3},
        ),
        (
            ["--center", "separate", "-k", "4"],
            {"center": "separate", "n_neighbors": 4},
        ),
    ],
)
def test_search_matches_the_python_api(cli, capsys, monkeypatch, options, index_params):
    """Check that search writes what translate + EmbeddingIndex return."""
    folder, (A, B), _ = cli
    code, _, err = _search(
        folder,
        capsys,
        monkeypatch,
        "--scores",
        "scores.csv",
        "-o",
        "neighbors.npy",
        *options,
    )
    assert code == 0, err
    queries = load_aligner(folder / "model.npz").translate(B, "new", "old")
    index = skembed.EmbeddingIndex(**index_params).fit(A)
    index.fit_queries(queries)
    scores, neighbors = index.kneighbors(queries)
    written = np.load(folder / "neighbors.npy")
    assert written.dtype == np.int64
    assert_array_equal(written, neighbors)
    assert_allclose(np.loadtxt(folder / "scores.csv", delimiter=","), scores)
    # The rows are a rotated, noisy copy: every query finds its own row.
    assert_array_equal(written[:, 0], np.arange(len(A)))
    assert f"wrote the {neighbors.shape[1]} best index rows of 600 queries" in err


def test_search_writes_integer_csv(cli, capsys, monkeypatch):
    """Check .csv output of row numbers, quietly, with view indices."""
    folder, (A, B), _ = cli
    code, _, err = _search(
        folder, capsys, monkeypatch, "-k", "2", "-o", "neighbors.csv", "-q",
        views=("1", "0"),
    )  # fmt: skip
    assert (code, err) == (0, "")
    lines = (folder / "neighbors.csv").read_text().splitlines()
    assert len(lines) == 600
    assert lines[0].split(",")[0] == "0"
    assert all("." not in line and "e" not in line for line in lines)


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
def test_search_reads_each_input_with_its_own_columns(paired, capsys, monkeypatch):
    """Check queries with an id column against a plain .npy index.

    search had only --columns, for every input: the advice for the queries
    (--columns embedding) then failed on the index, which has no such column.
    """
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    frame = pd.DataFrame({"id": np.arange(len(A)), "embedding": list(A)})
    frame.to_parquet(folder / "q.parquet")
    argv = ["search", "m.npz", "q.parquet", "b.npy", "--source", "0", "--target", "1"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv, "-q", "-o", "n.npy")
    assert code == 2
    _one_error(err, "queries q.parquet", "--columns-queries embedding")
    code, _, err = _main(
        folder, capsys, monkeypatch, *argv, "--columns-queries", "embedding",
        "-q", "-o", "n.npy",
    )  # fmt: skip
    assert code == 0, err
    expected = _main(
        folder, capsys, monkeypatch, "search", "m.npz", "a.npy", "b.npy",
        "--source", "0", "--target", "1", "-q", "-o", "expected.npy",
    )  # fmt: skip
    assert expected[0] == 0
    assert_array_equal(np.load(folder / "n.npy"), np.load(folder / "expected.npy"))
    for extra, fragment in (
        (["--columns", "embedding", "--columns-index", "0..7"], "every input"),
        (["--columns-translated-index", "0..7"], "with --translated-index only"),
    ):
        code, _, err = _main(
            folder, capsys, monkeypatch, *argv, *extra, "-q", "-o", "n2.npy"
        )
        assert code == 2
        _one_error(err, fragment)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["-k", "601", "-o", "n.npy"], "-k 601 exceeds the 600 rows of the index"),
        (["--csls-k", "5", "-o", "n.npy"], "--csls-k applies to --method csls"),
        (
            ["--method", "csls", "--csls-k", "700", "-o", "n.npy"],
            "--csls-k 700 needs at least that many queries",
        ),
        (["-o", "n.npy", "--scores", "n.npy"], "give the scores their own file"),
        (["-o", "a.npy"], "is also an input of this command"),
        (["-o", "n.parquet"], "use a .npy or .csv file name"),
    ],
)
def test_search_user_errors(cli, capsys, monkeypatch, argv, fragment):
    """Check exit 2 with one line, and no output, for bad search options."""
    folder = cli[0]
    before = (folder / "a.npy").read_bytes()
    code, _, err = _search(
        folder,
        capsys,
        monkeypatch,
        *argv,
    )
    assert code == 2
    assert fragment in err
    assert "Traceback" not in err
    assert not (folder / "n.npy").exists()
    assert (folder / "a.npy").read_bytes() == before


def test_search_checks_widths_and_backend(cli, capsys, monkeypatch, tmp_path):
    """Check that an index of the wrong width or a missing FAISS is one line."""
    folder, (A, B), _ = cli
    np.save(tmp_path / "narrow.npy", A[:, :11])
    common = ["--source", "new", "--target", "old", "-o", str(tmp_path / "n.npy")]
    model = str(folder / "model.npz")
    code, _, err = _run(
        folder, capsys, monkeypatch, "search", model, "b.npy",
        str(tmp_path / "narrow.npy"), *common,
    )  # fmt: skip
    assert code == 2
    assert "has 11 columns, but view 'old' of the model has 12" in err
    code, _, err = _run(
        folder, capsys, monkeypatch, "search", model,
        str(tmp_path / "narrow.npy"), "a.npy", *common,
    )  # fmt: skip
    assert code == 2
    assert "queries" in err and "have 11 columns" in err
    monkeypatch.setitem(sys.modules, "faiss", None)
    code, _, err = _run(
        folder, capsys, monkeypatch, "search", model, "b.npy", "a.npy",
        "--backend", "faiss-hnsw", *common,
    )  # fmt: skip
    assert code == 2
    assert "--backend faiss-hnsw" in err and "faiss" in err
    assert "Traceback" not in err
    assert not (tmp_path / "n.npy").exists()


def test_search_with_a_translated_index_sums_both_searches(
    cli, capsys, monkeypatch, tmp_path
):
    """Check that --translated-index writes what fused_kneighbors returns for
    the old index with translated queries and the translated index with the
    queries as they are."""
    folder, (A, B), _ = cli
    model = load_aligner(folder / "model.npz")
    A_new = model.translate(A, "old", "new")
    np.save(tmp_path / "a_new.npy", A_new)
    code, _, err = _search(
        folder, capsys, monkeypatch,
        "--translated-index", str(tmp_path / "a_new.npy"),
        "--method", "csls", "--csls-k", "5", "--center", "separate", "-k", "4",
        "--scores", str(tmp_path / "s.npy"), "-o", str(tmp_path / "n.npy"),
    )  # fmt: skip
    assert code == 0, err
    queries = model.translate(B, "new", "old")
    params = {"method": "csls", "csls_k": 5, "center": "separate"}
    old_index = skembed.EmbeddingIndex(**params).fit(A).fit_queries(queries)
    new_index = skembed.EmbeddingIndex(**params).fit(A_new).fit_queries(B)
    scores, neighbors = skembed.fused_kneighbors(
        [(old_index, queries), (new_index, B)], n_neighbors=4
    )
    assert_array_equal(np.load(tmp_path / "n.npy"), neighbors)
    assert_allclose(np.load(tmp_path / "s.npy"), scores)
    assert_array_equal(neighbors[:, 0], np.arange(len(A)))


@pytest.mark.parametrize(
    "rows, fragment",
    [
        (slice(0, 599), "has shape (599, 12), but it must hold the 600 index rows"),
        (slice(None), "has shape (600, 11), but it must hold the 600 index rows"),
    ],
)
def test_search_refuses_a_translated_index_of_another_shape(
    cli, capsys, monkeypatch, tmp_path, rows, fragment
):
    folder, (A, _), _ = cli
    stored = A[rows] if rows.stop is not None else A[:, :11]
    np.save(tmp_path / "t.npy", stored)
    code, _, err = _search(
        folder, capsys, monkeypatch, "--translated-index", str(tmp_path / "t.npy"),
        "-o", str(tmp_path / "n.npy"),
    )  # fmt: skip
    assert code == 2
    assert fragment in err.splitlines()[-1] and "Traceback" not in err
    assert not (tmp_path / "n.npy").exists()
    code, _, err = _search(
        folder, capsys, monkeypatch, "--translated-index", str(tmp_path / "t.npy"),
        "-o", str(tmp_path / "t.npy"),
    )  # fmt: skip
    assert code == 2 and "is also an input of this command" in err
    assert_array_equal(np.load(tmp_path / "t.npy"), stored)


def test_search_separate_centring_needs_several_queries(
    cli, capsys, monkeypatch, tmp_path
):
    """Check that one query with --center separate is a user error, not zeros.

    A query minus the mean of itself alone is the zero vector, which scores 0
    against every row; the other centrings still search it.
    """
    folder, (A, B), _ = cli
    np.save(tmp_path / "one.npy", B[7:8])
    model = str(folder / "model.npz")
    common = ["--source", "new", "--target", "old", "-o", str(tmp_path / "n.npy")]
    code, _, err = _run(
        folder, capsys, monkeypatch, "search", model, str(tmp_path / "one.npy"),
        "a.npy", "--center", "separate", *common,
    )  # fmt: skip
    assert code == 2
    assert "--center separate" in err and "Traceback" not in err
    assert not (tmp_path / "n.npy").exists()
    code, _, err = _run(
        folder, capsys, monkeypatch, "search", model, str(tmp_path / "one.npy"),
        "a.npy", "--center", "index", *common,
    )  # fmt: skip
    assert code == 0, err
    assert np.load(tmp_path / "n.npy")[0, 0] == 7


def test_self_learning_on_too_few_rows_cannot_be_judged(tmp_path, capsys, monkeypatch):
    """Check exit 3 and one line when the pools are too small to judge.

    Independent noise of 6 rows was trusted at confidence 1.0 (exit 0); below
    MIN_JUDGED_ROWS there is no verdict, so the map is not worth using.
    """
    from skembed._unsupervised import MIN_JUDGED_ROWS

    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.normal(size=(6, 16)))
    np.save(tmp_path / "b.npy", rng.normal(size=(6, 16)))
    code, _, err = _main(
        tmp_path, capsys, monkeypatch,
        "align", "a.npy", "b.npy", "--method", "self-learning", "-q", "-o", "m.npz",
    )  # fmt: skip
    assert code == 3
    _one_error(
        err, "cannot be judged", f"under {MIN_JUDGED_ROWS} distinct rows", "--pairs",
        kind="not usable",
    )  # fmt: skip
    assert (tmp_path / "m.not-usable.npz").exists()


@pytest.mark.parametrize(
    "argv, fragment",
    [
        ([], "name a command: demo, report, align"),
        (["foo"], "invalid choice: 'foo'"),
        (["align", "a.npy", "b.npy", "--method", "cca", "--reg", "-1"], "--reg"),
        (["translate", "m.npz", "b.npy"], "the following arguments are required"),
    ],
)
def test_command_line_syntax_errors_are_one_line(
    paired, capsys, monkeypatch, argv, fragment
):
    """Check argparse's errors: one line naming the fix, exit 2, no usage block."""
    folder = paired[0]
    code, _, err = _main(folder, capsys, monkeypatch, *argv)
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert fragment in err and "-h`" in err


def test_an_unusable_fit_never_replaces_an_existing_model(paired, capsys, monkeypatch):
    """Check that exit 3 writes the failed map beside a model already at -o."""
    folder, A, B = paired
    np.save(folder / "noise.npy", np.random.default_rng(7).normal(size=B.shape))
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    good = (folder / "m.npz").read_bytes()
    code, out, err = _main(
        folder, capsys, monkeypatch, "align", "a.npy", "noise.npy", "-q", "-o", "m.npz"
    )
    assert code == 3
    _one_error(
        err, "m.not-usable.npz for inspection", "m.npz was left", kind="not usable"
    )
    assert (folder / "m.npz").read_bytes() == good
    assert load_aligner(folder / "m.not-usable.npz").view_names_ == ["a", "noise"]
    # With no model there yet, the map still goes beside the name asked for:
    # a script that misses the exit code finds no model there, and translate
    # says why.
    code, _, err = _main(
        folder, capsys, monkeypatch, "align", "a.npy", "noise.npy", "-q", "-o", "n.npz"
    )
    assert code == 3
    _one_error(err, "nothing was written to n.npz", kind="not usable")
    assert not (folder / "n.npz").exists()
    assert load_aligner(folder / "n.not-usable.npz").view_names_ == ["a", "noise"]
    argv = ["n.npz", "b.npy", "--source", "1", "--target", "0", "-o", "t.npy"]
    code, _, err = _main(folder, capsys, monkeypatch, "translate", *argv)
    assert code == 2
    _one_error(err, "model n.npz: file not found; n.not-usable.npz beside it")
    assert not (folder / "t.npy").exists()
    argv[0] = "n.not-usable.npz"
    code, _, err = _main(folder, capsys, monkeypatch, "translate", *argv)
    assert code == 0, err


@pytest.mark.parametrize("output", ["out.npy", "out.csv"])
def test_translate_refuses_rows_that_overflow(paired, capsys, monkeypatch, output):
    """Check finite float32 rows whose translation overflows: exit 2, no output."""
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    huge = np.full((10, B.shape[1]), 2.5e38, dtype=np.float32)
    huge[::2] *= -1
    np.save(folder / "huge.npy", huge)
    (folder / output).write_bytes(b"previous result")
    argv = [*"translate m.npz huge.npy --source 1 --target 0 -q -o".split(), output]
    code, _, err = _main(folder, capsys, monkeypatch, *argv)
    assert code == 2
    _one_error(err, "input huge.npy holds rows that translate to infinite")
    assert (folder / output).read_bytes() == b"previous result"
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_search_outputs_are_replaced_together(paired):
    """Check that a failed --scores write leaves the old -o file too."""
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    (folder / "n.csv").write_bytes(b"old neighbours")
    (folder / "s.npy").write_bytes(b"old scores")
    argv = ["search", "m.npz", "b.npy", "a.npy", "--source", "1", "--target", "0"]
    argv += ["-k", "5", "-q", "-o", "n.csv", "--scores", "s.npy"]
    # 300 x 5 rows: about 6 kB of CSV fit under the limit, 12 kB of scores do not.
    result = _run_in(folder, argv, file_limit=8192)
    _user_error(result, "could not write s.npy", "left as it was")
    assert (folder / "n.csv").read_bytes() == b"old neighbours"
    assert (folder / "s.npy").read_bytes() == b"old scores"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    _ok(_run_in(folder, argv))
    assert np.load(folder / "s.npy").shape == (A.shape[0], 5)


def test_search_names_the_output_replaced_before_a_failed_rename(
    paired, capsys, monkeypatch
):
    """Check a --scores rename failing after -o's says -o holds the new result."""
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    (folder / "s.npy").write_bytes(b"old scores")
    replace = os.replace

    def refuse_scores(source, target):
        if os.fspath(target).endswith("s.npy"):
            raise PermissionError(errno.EACCES, "Permission denied", source)
        replace(source, target)

    monkeypatch.setattr("skembed._atomic.os.replace", refuse_scores)
    argv = "search m.npz b.npy a.npy --source 1 --target 0 -k 5 -q".split()
    code, _, err = _main(
        folder, capsys, monkeypatch, *argv, "-o", "n.csv", "--scores", "s.npy"
    )
    assert code == 2
    _one_error(err, "could not write s.npy (Permission denied) after n.csv got")
    assert "no longer belong together" in err
    assert (folder / "s.npy").read_bytes() == b"old scores"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_search_reads_csv_with_a_header_line(paired, capsys, monkeypatch):
    """Check --header for search's .csv queries and index (pandas' to_csv)."""
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    for name, rows in (("q.csv", B), ("i.csv", A)):
        pd.DataFrame(rows).to_csv(folder / name, index=False)
    argv = "search m.npz q.csv i.csv --source 1 --target 0 --header -q -o n.npy".split()
    code, _, err = _main(folder, capsys, monkeypatch, *argv)
    assert code == 0, err
    assert np.load(folder / "n.npy").shape[0] == B.shape[0]


def test_pairs_errors_count_pairs_not_lines(paired, capsys, monkeypatch):
    """Check that an out-of-range pair is named by its number, header or not."""
    folder = paired[0]
    (folder / "p.csv").write_text("a,b\n0,0\n1,1\n2,999\n")
    argv = "align a.npy b.npy --pairs p.csv --header -q -o m.npz".split()
    code, _, err = _main(folder, capsys, monkeypatch, *argv)
    assert code == 2
    _one_error(err, "pair 3", "row 999 of B")
    # Beyond int64: the number given, not the one a cast wraps it to.
    (folder / "p.csv").write_text("0,0\n1,1\n2,1e30\n")
    argv = "align a.npy b.npy --pairs p.csv -q -o m.npz".split()
    code, _, err = _main(folder, capsys, monkeypatch, *argv)
    assert code == 2
    _one_error(err, "holds the row number 1e+30")


def test_align_never_writes_a_failed_map_over_an_input(paired, capsys, monkeypatch):
    """Check the name a failed map would take beside -o is checked like -o."""
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    np.savez(folder / "m.not-usable.npz", A)
    kept = (folder / "m.not-usable.npz").read_bytes()
    noise = np.random.default_rng(0).normal(size=A.shape)
    np.save(folder / "noise.npy", noise)
    argv = ["align", "m.not-usable.npz", "noise.npy", "-q", "-o", "m.npz"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv)
    assert code == 2
    _one_error(err, "m.not-usable.npz (beside -o m.npz), which is also an input")
    assert (folder / "m.not-usable.npz").read_bytes() == kept
    # Any other problem with that name is named as it is, not as an input.
    (folder / "m.not-usable.npz").unlink()
    (folder / "m.not-usable.npz").mkdir()
    argv = ["align", "a.npy", "b.npy", "-q", "-o", "m.npz"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv)
    assert code == 2
    line = _one_error(err, "but m.not-usable.npz is a directory")
    assert "input" not in line


def test_streamed_translate_names_the_first_non_finite_row(paired, capsys, monkeypatch):
    """Check a NaN in a streamed .npy gets the CLI's message with its file row."""
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    rows = np.tile(B.astype(np.float32), (3, 1))
    rows[2 * B.shape[0] + 4, 1] = np.nan
    np.save(folder / "nan.npy", rows)
    argv = "translate m.npz nan.npy --source 1 --target 0 -o out.npy".split()
    code, _, err = _main(folder, capsys, monkeypatch, *argv)
    assert code == 2
    row = 2 * B.shape[0] + 4
    _one_error(err, f"nan.npy holds non-finite values (NaN or inf), first at row {row}")
    # progress lines are whole lines, each with the command's prefix
    assert all(line.startswith("skembed") for line in err.splitlines()), err
    assert "\r" not in err
    assert not (folder / "out.npy").exists()


def test_streamed_translate_refuses_an_index_column(paired, capsys, monkeypatch):
    """Check the column checks of a whole read apply to a streamed .npy too.

    A row-number column was translated as an embedding dimension when the
    input streamed (.npy in, .npy or .parquet out), and refused otherwise.
    """
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    rows = B.copy()
    rows[:, 0] = np.arange(rows.shape[0])
    np.save(folder / "ids.npy", rows)
    argv = "translate m.npz ids.npy --source 1 --target 0 -q -o out.npy".split()
    code, _, err = _main(folder, capsys, monkeypatch, *argv)
    assert code == 2
    _one_error(err, "ids.npy: column 0 counts 0, 1, 2, ... like a row index")
    assert not (folder / "out.npy").exists()


def test_streamed_translate_blames_the_output_it_cannot_write(
    paired, capsys, monkeypatch
):
    """Check an output that cannot be created is named, not the input.

    A link into a missing folder is now found before the work (it was found
    when writing), and a name that fits but whose hidden temporary name did
    not is now written (its temporary name is cut to fit).
    """
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    (folder / "dangling.npy").symlink_to(folder / "gone" / "out.npy")
    argv = "translate m.npz b.npy --source 1 --target 0 -q -o".split()
    code, _, err = _main(folder, capsys, monkeypatch, *argv, "dangling.npy")
    assert code == 2
    line = _one_error(err, "-o dangling.npy links to", "gone")
    assert "input" not in line
    long_name = "x" * 248 + ".npy"
    code, _, err = _main(folder, capsys, monkeypatch, *argv, long_name)
    assert code == 0, err
    assert np.load(folder / long_name).shape == B.shape


def test_a_reader_gone_from_stdout_keeps_the_exit_code(paired, capsys, monkeypatch):
    """Check `skembed align ... | head -1`: exit 3 for a map not worth using.

    The summary is printed before the verdict; with the pipe closed the
    write raised BrokenPipeError, reported as "Broken pipe." with exit 2.
    """
    folder, A, B = paired
    np.save(folder / "shuffled.npy", B[np.random.default_rng(0).permutation(len(B))])

    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    code = main(["align", "a.npy", "shuffled.npy", "-o", "m.npz", "-q"])
    assert code == 3
    assert "Broken pipe" not in capsys.readouterr().err
    assert (folder / "m.not-usable.npz").exists()


def test_a_reader_gone_from_stderr_keeps_the_result(paired, capsys, monkeypatch):
    """Check `skembed align ... 2>&1 | head -1`: the fit ends as usual.

    A progress line on a closed stderr raised BrokenPipeError, caught as a
    user error whose message, printed to the same stderr, raised again:
    exit 1 ("a bug in skembed") and no model written.
    """
    folder, A, B = paired

    class ClosingPipe(io.StringIO):
        lines = 0

        def write(self, text):
            if self.lines >= 1:
                raise BrokenPipeError(32, "Broken pipe")
            self.lines += 1
            return len(text)

        def flush(self):
            if self.lines > 1:
                raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "stderr", ClosingPipe())
    code = main(["align", "a.npy", "b.npy", "-o", "m.npz"])
    assert code == 0
    assert (folder / "m.npz").exists()
    assert "fitted" in capsys.readouterr().out


def test_a_closed_stderr_keeps_the_result(paired):
    """Check `skembed align ... 2>&-`: the model is written, exit 0.

    Python sets sys.stderr to None when descriptor 2 is closed at start; the
    wrapper that drops writes once a reader has gone then raised
    AttributeError at the first progress line: exit 1 and no model.
    """
    folder, A, B = paired
    result = subprocess.run(
        [sys.executable, "-m", "skembed", "align", "a.npy", "b.npy", "-o", "m.npz"],
        cwd=folder,
        env=_SUBPROCESS_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        # A descriptor 2 closed in the child: the shell's ``2>&-``.
        preexec_fn=lambda: os.close(2),
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert (folder / "m.npz").exists()
    assert "fitted" in result.stdout


def _run_script(script, argv, folder):
    """Run Python ``script`` with ``argv`` in a fresh process, in ``folder``."""
    return subprocess.run(
        [sys.executable, "-c", script, *argv],
        cwd=folder,
        env=_SUBPROCESS_ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )


_TERMINATED_MIDWAY = """
import os
import signal
import sys

from skembed import ProcrustesAligner
from skembed._cli import main

translate = ProcrustesAligner.translate


def terminated_midway(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    return translate(self, *args, **kwargs)


ProcrustesAligner.translate = terminated_midway
previous = signal.getsignal(signal.SIGTERM)
code = main(sys.argv[1:])
assert signal.getsignal(signal.SIGTERM) is previous
sys.exit(code)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is a POSIX signal")
def test_sigterm_while_translating_leaves_no_temporary_file(paired):
    """Check `kill` (or `timeout`) during a streamed translate: exit 143, no file.

    Python's default for SIGTERM ended the process at once, leaving the
    hidden temporary output, as large as the output, beside it. The command
    runs in its own process, which the signal would otherwise end.
    """
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    before = sorted(p.name for p in folder.iterdir())
    argv = ["translate", "m.npz", "a.npy", "--source", "0", "--target", "1"]
    result = _run_script(_TERMINATED_MIDWAY, [*argv, "-o", "t.npy", "-q"], folder)
    assert result.returncode == 143, result.stderr
    _one_error(result.stderr, "terminated")
    assert sorted(p.name for p in folder.iterdir()) == before


_TERMINATED_AFTER_THE_COMMAND = """
import os
import signal
import sys

import skembed._cli as cli
from skembed.__main__ import main

report = cli._report_warnings


def terminated_late(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    return report(*args, **kwargs)


cli._report_warnings = terminated_late
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is a POSIX signal")
def test_sigterm_after_the_command_is_still_terminated(paired):
    """Check SIGTERM while the last lines print: exit 143, "terminated".

    Outside the command's own handler the signal reached the entry point as
    a plain interruption: "interrupted" and exit 130, Ctrl-C's code.
    """
    folder, A, B = paired
    argv = ["align", "a.npy", "b.npy", "-o", "m.npz", "-q"]
    result = _run_script(_TERMINATED_AFTER_THE_COMMAND, argv, folder)
    assert result.returncode == 143, result.stderr
    _one_error(result.stderr, "terminated")


def test_view_names_with_non_ascii_digits_are_not_indices(paired, capsys, monkeypatch):
    """Check --source '²' is an unknown view, not an int() error."""
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    argv = "translate m.npz b.npy --target 0 -q -o z.npy --source".split() + ["²"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv)
    assert code == 2
    _one_error(err, "--source '²' is not a view of this model")


def test_demo_refuses_more_seed_pairs_than_it_trains_on(capsys, monkeypatch, tmp_path):
    """Check --seed-pairs above the training split is an error, not cut down."""
    code, _, err = _main(
        tmp_path, capsys, monkeypatch, "demo", "-q", "--seed-pairs", "100000"
    )
    assert code == 2
    _one_error(err, "--seed-pairs 100000 is more than the 2000 training pairs")


_INTERRUPT_WHILE_IMPORTING = """
import importlib.abc
import sys


class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == {module!r}:
            raise KeyboardInterrupt
        return None


sys.meta_path.insert(0, Interrupt())
from skembed.__main__ import main

sys.exit(main(["report", "a.npy", "b.npy"]))
"""


@pytest.mark.parametrize("module", ["skembed._cli", "numpy", "sklearn"])
def test_ctrl_c_while_the_command_line_loads_is_one_line(tmp_path, module):
    """Check that Ctrl-C while the CLI's libraries import exits 130 in one line."""
    result = _run_script(_INTERRUPT_WHILE_IMPORTING.format(module=module), [], tmp_path)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == "skembed: interrupted"


def test_the_interrupt_exit_code_is_the_command_lines():
    """Check that the entry point's early exit code is the CLI's own 130."""
    from skembed import __main__ as entry
    from skembed._cli import _common

    assert entry._EXIT_INTERRUPTED == _common.EXIT_INTERRUPTED


def test_the_installed_command_is_the_import_safe_entry_point():
    """Check that setup.cfg installs ``skembed`` as skembed.__main__:main."""
    import configparser

    config = configparser.ConfigParser()
    config.read(Path(skembed.__file__).resolve().parents[1] / "setup.cfg")
    scripts = config["options.entry_points"]["console_scripts"].split()
    assert scripts == ["skembed", "=", "skembed.__main__:main"]


def _python_output(code):
    """What a fresh interpreter running ``code`` prints (it must exit 0)."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_SUBPROCESS_ENV,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


def test_importing_the_package_loads_no_numerical_library():
    """Check that ``import skembed`` defers numpy, scipy and scikit-learn."""
    code = (
        "import sys, skembed; "
        "print(sorted(m for m in ('numpy', 'scipy', 'sklearn') if m in sys.modules))"
    )
    assert _python_output(code) == "[]"


def test_public_names_and_subpackages_resolve_on_first_use():
    """Check that every name of __all__, and skembed.metrics, are reachable."""
    assert set(skembed.__all__) == set(skembed._PUBLIC) | {"__version__"}
    for name in skembed.__all__:
        assert getattr(skembed, name) is not None
    assert set(skembed.__all__) <= set(dir(skembed))
    assert callable(skembed.metrics.recall_at_k)
    assert skembed.datasets.load_fortunes is not None
    with pytest.raises(AttributeError, match="no attribute 'NotAName'"):
        skembed.NotAName  # noqa: B018


def test_header_never_drops_the_first_row_of_a_file_without_one(
    paired, capsys, monkeypatch
):
    """Check --header on a CSV whose line 1 is data: an error, not a lost row.

    --header holds for every CSV input; search read a header-less index
    beside pandas-written queries by dropping its first row, and every
    neighbour it wrote was the row after the right one (exit 0).
    """
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    pd.DataFrame(B).to_csv(folder / "q.csv", index=False)
    np.savetxt(folder / "i.csv", A, delimiter=",")
    argv = "search m.npz q.csv i.csv --source 1 --target 0 --header -q -o n.npy"
    code, _, err = _main(folder, capsys, monkeypatch, *argv.split())
    assert code == 2
    _one_error(err, "i.csv", "--header, but line 1 is", "a row of numbers")
    assert not (folder / "n.npy").exists()
    # The same for a pairs file: its first pair is not a header.
    (folder / "p.csv").write_text("0,0\n1,1\n2,2\n")
    pd.DataFrame(A).to_csv(folder / "a.csv", index=False)
    argv = "align a.csv b.npy --pairs p.csv --header -q -o m2.npz"
    code, _, err = _main(folder, capsys, monkeypatch, *argv.split())
    assert code == 2
    _one_error(err, "p.csv", "--header, but line 1 is 0,0")


_FIRST_USE_IN_THREADS = """
import threading

import skembed

errors = []


def use(name):
    try:
        getattr(skembed, name)
    except Exception as exc:
        errors.append(f"{name}: {type(exc).__name__}: {exc}")


names = ["ProcrustesAligner", "load_aligner", "CCAAligner", "EmbeddingIndex"]
threads = [threading.Thread(target=use, args=(name,)) for name in names]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(errors)
"""


def test_first_use_of_the_package_from_several_threads_at_once():
    """Check that threads resolving public names together all get them.

    Each name imported its own module in the asking thread: scikit-learn's
    circular imports then met half done ("partially initialized module
    'sklearn.base'") in about half of the runs.
    """
    for _ in range(3):
        assert _python_output(_FIRST_USE_IN_THREADS) == "[]"


@pytest.mark.parametrize("writer", ["pandas", "numpy"])
def test_a_last_row_of_nan_is_an_error_not_a_blank_line(
    paired, capsys, monkeypatch, writer
):
    """Check a CSV ending in a row of NaN: exit 2 naming the line, not a lost row.

    Blank lines and rows of empty or NaN cells read alike; trailing ones were
    all dropped as blank lines: translate wrote 399 rows for 400 (exit 0).
    """
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    rows = B.astype(np.float64)
    rows[-1] = np.nan
    if writer == "pandas":
        pd.DataFrame(rows).to_csv(folder / "q.csv", index=False, header=False)
    else:
        np.savetxt(folder / "q.csv", rows, delimiter=",")
    argv = "translate m.npz q.csv --source 1 --target 0 -q -o out.npy"
    code, _, err = _main(folder, capsys, monkeypatch, *argv.split())
    assert code == 2
    _one_error(err, f"q.csv, line {rows.shape[0]} holds no number")
    assert not (folder / "out.npy").exists()
    # Blank last lines are still dropped.
    np.savetxt(folder / "q.csv", B, delimiter=",")
    with open(folder / "q.csv", "a") as file:
        file.write("\n\n")
    code, _, err = _main(folder, capsys, monkeypatch, *argv.split())
    assert code == 0, err
    assert np.load(folder / "out.npy").shape[0] == B.shape[0]


def test_header_never_takes_the_first_pair_for_pandas_column_numbers(
    paired, capsys, monkeypatch
):
    """Check --header on a pairs file whose first pair is 0,1: an error.

    --header holds for every CSV input; 0,1 was read as pandas' header of
    the pairs file and the first pair dropped (exit 0).
    """
    folder, A, B = paired
    pd.DataFrame(A).to_csv(folder / "a.csv", index=False)
    (folder / "p.csv").write_text("0,1\n1,2\n2,3\n3,4\n")
    argv = "align a.csv b.npy --pairs p.csv --header -q -o m.npz"
    code, _, err = _main(folder, capsys, monkeypatch, *argv.split())
    assert code == 2
    _one_error(err, "p.csv", "column numbers or the first pair")
    (folder / "p.csv").write_text("a,b\n0,1\n1,2\n2,3\n3,4\n")
    code, _, err = _main(folder, capsys, monkeypatch, *argv.split())
    assert "first pair" not in err


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
def test_parquet_with_a_repeated_column_name_is_a_user_error(
    paired, capsys, monkeypatch
):
    """Check a Parquet file naming one column twice: exit 2, not 'a bug' (exit 1)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder, A, B = paired
    column = pa.array(list(B), type=pa.list_(pa.float64()))
    pq.write_table(
        pa.table([column, column], names=["emb", "emb"]), folder / "b.parquet"
    )
    code, _, err = _main(folder, capsys, monkeypatch, "report", "a.npy", "b.parquet")
    assert code == 2
    _one_error(err, "b.parquet names the column 'emb' twice")


def test_structured_arrays_with_utf8_names_or_wide_headers_are_read(
    paired, capsys, monkeypatch
):
    """Check two valid structured inputs that were refused.

    A .npz member in .npy format 3.0 (UTF-8 field names) had its names read
    as latin-1; a structured .npy of 768 fields has a header over NumPy's
    default 10,000-byte bound and was called damaged.
    """
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    n, d = B.shape
    record = np.zeros(n, dtype=[("向量", np.float64, (d,)), ("id", np.int64)])
    record["向量"] = B
    record["id"] = np.arange(n)
    np.savez(folder / "v3.npz", record)
    argv = "translate m.npz v3.npz --source 1 --target 0 --columns 向量 -q -o o.npy"
    code, _, err = _main(folder, capsys, monkeypatch, *argv.split())
    assert code == 0, err
    expected = load_aligner(folder / "m.npz").translate(B.astype(np.float64), 1, 0)
    assert_allclose(np.load(folder / "o.npy"), expected, rtol=1e-6)
    wide = np.zeros(n, dtype=[(f"dimension_{j}", np.float64) for j in range(768)])
    assert len(np.lib.format.header_data_from_array_1_0(wide)["descr"]) == 768
    for j in range(768):
        wide[f"dimension_{j}"] = np.random.default_rng(j).normal(size=n)
    np.save(folder / "wide.npy", wide)
    np.save(folder / "other.npy", np.random.default_rng(0).normal(size=(n, 768)))
    code, _, err = _main(folder, capsys, monkeypatch, "report", "wide.npy", "other.npy")
    assert "damaged header" not in err and code in (0, 3), err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_in_place_of_a_file_is_refused_at_once(paired):
    """Check inputs that are named pipes: one line, exit 2, no wait.

    A pipe as the model file blocked translate forever (the loader waited
    for a writer); a pipe as an embeddings file was called "empty".
    """
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    os.mkfifo(folder / "pipe.npz")
    os.mkfifo(folder / "pipe.npy")
    commands = [
        ["translate", "pipe.npz", "b.npy", "--source", "1", "--target", "0"],
        ["translate", "m.npz", "pipe.npy", "--source", "1", "--target", "0"],
        ["report", "pipe.npy", "b.npy"],
    ]
    for argv in commands:
        if argv[0] == "translate":
            argv += ["-o", "out.npy"]
        result = subprocess.run(
            _cli(*argv, "-q"),
            cwd=folder,
            env=_SUBPROCESS_ENV,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert "is not a regular file (a pipe" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (folder / "out.npy").exists()


def test_library_advice_names_only_the_commands_own_options(
    paired, capsys, monkeypatch
):
    """Check library messages rewritten in each command's own terms.

    demo was told to pass --test-size, an option only align and report have;
    report said "change test_size" and align "Set reg > 0", the Python
    parameters rather than the options.
    """
    from skembed.__main__ import build_parser
    from skembed._cli import _as_flags, _in_command_terms

    commands = build_parser().subcommands
    advice = "check it on known pairs left out of fit; or fit(X, pairs=...)."
    assert _in_command_terms(advice, commands["align"]) == (
        "check it on held-out pairs (--test-size); or --pairs."
    )
    assert _in_command_terms(advice, commands["demo"]) == (
        "check it on held-out pairs; or known pairs."
    )
    said = "Set reg > 0, e.g. reg=1e-3; set n_components <= 9 or change test_size."
    assert _as_flags(said, commands["align"]) == (
        "Set --reg > 0, e.g. --reg 1e-3; set --n-components <= 9 or change --test-size."
    )
    # Names that are not the command's options, and attributes, stay.
    kept = "confidence_=0.2 < 0.5; n_samples=1; the n_components_ attribute"
    assert _as_flags(kept, commands["align"]) == kept
    folder, A, B = paired
    np.save(folder / "a12.npy", A[:12])
    np.save(folder / "b12.npy", B[:12])
    code, _, err = _main(folder, capsys, monkeypatch, "report", "a12.npy", "b12.npy")
    assert code == 2
    assert "change --test-size" in err and "test_size" not in err


@pytest.mark.parametrize(
    "content, match",
    [
        # Text ids first, no header: the advice was --no-header --columns 1..2,
        # an option that selects columns of A and B, not of the pairs file.
        ("doc0,0,0\ndoc1,1,1\n", "line 1 starts with 'doc0'"),
        ("id,a,b\ndoc0,0,0\ndoc1,1,1\n", "column 'id' does not hold numbers"),
        ("0,0,5\n1,1,6\n", "has 3 columns"),
    ],
)
def test_a_pairs_file_with_other_columns_is_told_its_layout(
    paired, capsys, monkeypatch, content, match
):
    """Check that a pairs file with extra columns gets advice it can follow."""
    folder, _, _ = paired
    (folder / "pairs.csv").write_text(content)
    argv = ["align", "a.npy", "b.npy", "--pairs", "pairs.csv", "-q", "-o", "m.npz"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv)
    assert code == 2
    assert match in err
    assert "holds only two columns of row numbers (row in A, row in B)" in err
    assert "--columns" not in err and "ColumnTransformer" not in err


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_csv_separated_otherwise_is_named_in_one_short_line(
    paired, capsys, monkeypatch, separator
):
    """Check a semicolon- or tab-separated .csv: said so, in a short line.

    It was read as one column of text, and the error quoted the whole first
    line (10,000 characters for 384 values) as a column name.
    """
    folder, A, _ = paired
    np.savetxt(folder / "semi.csv", A, delimiter=separator)
    code, _, err = _main(folder, capsys, monkeypatch, "report", "semi.csv", "b.npy")
    assert code == 2
    assert "separated by" in err and "not commas" in err
    assert len(err) < 400


def test_a_structured_npy_without_rows_names_the_file(paired, capsys, monkeypatch):
    """Check a structured .npy of zero records: the file named, no numpy text.

    It failed with numpy's "cannot reshape array of size 0 into shape
    (0,newaxis)", which names no file.
    """
    folder, _, _ = paired
    np.save(folder / "none.npy", np.zeros(0, dtype=[("emb", "f4", (8,))]))
    code, _, err = _main(folder, capsys, monkeypatch, "report", "none.npy", "b.npy")
    assert code == 2
    assert "A none.npy has no rows" in err
    assert "reshape" not in err


@pytest.mark.parametrize("name", ["wide.npy", "wide.npz"])
def test_an_array_of_no_rows_is_refused_before_its_columns_are_listed(
    paired, capsys, monkeypatch, name
):
    """Check a header of no rows and a billion columns: empty, at once.

    No rows cost no data bytes, so a file of a hundred bytes announced
    10**9 columns, and the reader built an object per column (minutes, or
    all the memory) before it found the array empty.
    """
    from skembed._cli import _files

    folder, _, _ = paired
    empty = np.empty((0, 10**9), dtype=np.float32)
    if name.endswith(".npy"):
        np.save(folder / name, empty)
    else:
        np.savez(folder / name, x=empty)
    assert (folder / name).stat().st_size < 1000
    listed, original = [], _files._Column

    def column(*args, **kwargs):
        listed.append(args)
        if len(listed) > 10_000:
            raise AssertionError("the columns of an empty array were listed")
        return original(*args, **kwargs)

    monkeypatch.setattr(_files, "_Column", column)
    code, _, err = _main(folder, capsys, monkeypatch, "report", name, "b.npy", "-q")
    assert code == 2
    _one_error(err, f"A {name} is empty (shape (0, 1000000000))")


def test_copies_of_one_query_with_center_separate_are_a_user_error(
    cli, capsys, monkeypatch, tmp_path
):
    """Check two equal queries: each minus their mean was zero, exit 0."""
    folder, (A, B), _ = cli
    np.save(tmp_path / "same.npy", np.vstack([B[7:8], B[7:8]]))
    code, _, err = _run(
        folder, capsys, monkeypatch, "search", str(folder / "model.npz"),
        str(tmp_path / "same.npy"), "a.npy", "--center", "separate",
        "--source", "new", "--target", "old", "-o", str(tmp_path / "n.npy"),
    )  # fmt: skip
    assert code == 2
    assert "several different queries (2 here, all equal)" in err
    assert not (tmp_path / "n.npy").exists()


def test_report_exits_3_when_nothing_relates_the_files(tmp_path, capsys, monkeypatch):
    """Check report's exit code: 0 with the verdict 'not linearly alignable'."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(400, 16)))
    np.save(tmp_path / "y.npy", rng.normal(size=(400, 12)))
    code, out, err = _run(tmp_path, capsys, monkeypatch, "report", "x.npy", "y.npy")
    assert code == 3
    assert "verdict: not linearly alignable" in out
    assert err.count("skembed report: not usable: ") == 1
    assert "Traceback" not in err
    code, out, err = _run(
        tmp_path, capsys, monkeypatch, "report", "x.npy", "y.npy", "--json", "-q"
    )
    assert code == 3
    assert json.loads(out)["verdict"] == "not linearly alignable"


def test_report_advises_commands_not_python_calls(paired, capsys, monkeypatch):
    """Check report's advice for files a map aligns: the commands, as given.

    It said to fit skembed.ProcrustesAligner and compare in its shared space
    (transform_view), advice for a Python caller. Every command it names now
    runs as it is written, with the reading options report was given.
    """
    folder, A, B = paired
    width = B.shape[1]
    code, out, err = _main(
        folder, capsys, monkeypatch, "report", "a.npy", "b.npy",
        "--columns-b", f"0..{width - 1}", "--json", "-q",
    )  # fmt: skip
    assert code == 0, err
    explanation = json.loads(out)["explanation"]
    assert "skembed.ProcrustesAligner" not in explanation
    assert "transform_view" not in explanation
    align, translate, search = (
        shlex.split(command)[1:]
        for command in re.findall(r"`(skembed [^`]+)`", explanation)
    )
    assert align == [
        "align", "a.npy", "b.npy", "--columns-b", f"0..{width - 1}", "-o", "model.npz"
    ]  # fmt: skip
    code, _, err = _main(folder, capsys, monkeypatch, *align, "-q")
    assert code == 0, err
    translate = ["b.npy" if word == "FILE" else word for word in translate]
    code, _, err = _main(folder, capsys, monkeypatch, *translate, "-q")
    assert code == 0, err
    assert_allclose(np.load(folder / "OUT.npy"), A, atol=0.5)
    search = [{"QUERIES": "b.npy", "INDEX": "a.npy"}.get(w, w) for w in search]
    code, _, err = _main(folder, capsys, monkeypatch, *search, "-q")
    assert code == 0, err
    assert_array_equal(np.load(folder / "OUT.npy")[:, 0], np.arange(A.shape[0]))
    # The table advises the same; the library still advises Python calls.
    code, out, _ = _main(folder, capsys, monkeypatch, "report", "a.npy", "b.npy", "-q")
    assert "`skembed align a.npy b.npy -o model.npz`" in " ".join(out.split())
    assert "transform_view" not in out
    library = skembed.metrics.compare_spaces(A, B, random_state=0).explanation
    assert "skembed.ProcrustesAligner on paired rows" in library
    # Where CCA retrieves better, align is told to fit it.
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(800, 8))
    C = np.hstack([shared, rng.normal(size=(800, 8))]) @ rng.normal(size=(16, 16))
    D = np.hstack([shared @ rng.normal(size=(8, 8)), rng.normal(size=(800, 4))])
    np.save(folder / "c.npy", C)
    np.save(folder / "d.npy", D @ rng.normal(size=(12, 12)))
    code, out, err = _main(
        folder, capsys, monkeypatch, "report", "c.npy", "d.npy", "--json", "-q"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["cca_retrieval"] > result["procrustes_retrieval"], result
    explanation = result["explanation"]
    assert "`skembed align c.npy d.npy --method cca -o model.npz`" in explanation
    assert "skembed.CCAAligner" not in explanation


def test_advised_commands_never_write_over_an_input(paired, capsys, monkeypatch):
    """Check the output names of the commands report and align advise.

    With A saved as model.npz and B as OUT.npy, report advised `skembed
    align model.npz OUT.npy -o model.npz` (refused: the output is an input)
    and `skembed translate model.npz FILE ... -o OUT.npy`, which wrote over
    B; align's advice wrote over it too. Each advised name is now the first
    of NAME, NAME-1, ... that no input takes, the same in every line.
    """
    folder, A, B = paired
    np.savez(folder / "model.npz", A)
    np.save(folder / "OUT.npy", B)
    inputs = {name: (folder / name).read_bytes() for name in ("model.npz", "OUT.npy")}
    code, out, err = _main(
        folder, capsys, monkeypatch, "report", "model.npz", "OUT.npy", "--json", "-q"
    )
    assert code == 0, err
    explanation = json.loads(out)["explanation"]
    align, translate, search = (
        shlex.split(command)[1:]
        for command in re.findall(r"`(skembed [^`]+)`", explanation)
    )
    assert align[-2:] == ["-o", "model-1.npz"], align
    assert translate[1] == search[1] == "model-1.npz"
    assert translate[-2:] == search[-2:] == ["-o", "OUT-1.npy"]
    code, _, err = _main(folder, capsys, monkeypatch, *align, "-q")
    assert code == 0, err
    translate = ["OUT.npy" if word == "FILE" else word for word in translate]
    code, _, err = _main(folder, capsys, monkeypatch, *translate, "-q")
    assert code == 0, err
    search = [{"QUERIES": "OUT.npy", "INDEX": "model.npz"}.get(w, w) for w in search]
    code, _, err = _main(folder, capsys, monkeypatch, *search, "-q")
    assert code == 0, err
    for name, content in inputs.items():
        assert (folder / name).read_bytes() == content, name
    code, out, err = _main(
        folder, capsys, monkeypatch, "align", "model.npz", "OUT.npy", "-q", "-o",
        "m.npz",
    )  # fmt: skip
    assert code == 0, err
    assert out.rstrip().endswith("--source OUT --target model -o OUT-1.npy"), out
    # Where align puts a map not worth using must not be an input either:
    # align refuses to run then.
    np.savez(folder / "model-1.not-usable.npz", B)
    code, out, err = _main(
        folder, capsys, monkeypatch, "report", "model.npz", "model-1.not-usable.npz",
        "-q",
    )  # fmt: skip
    assert code == 0, err
    assert "-o model-2.npz`" in " ".join(out.split())


def test_report_says_align_has_no_non_linear_aligner(tmp_path, capsys, monkeypatch):
    """Check report's advice of a non-linear aligner, which align lacks.

    A modest or failed linear map advised "more training pairs or a
    non-linear aligner", and skembed align offers none: the command line
    says so and names the library's, which keeps its own words.
    """
    rng = np.random.default_rng(0)
    A = rng.normal(size=(1000, 16))
    B = A @ ortho_group.rvs(16, random_state=0) + 1.6 * rng.normal(size=A.shape)
    np.save(tmp_path / "a.npy", A)
    np.save(tmp_path / "b.npy", B)
    np.save(tmp_path / "noise.npy", rng.normal(size=(1000, 16)))
    for other, expected, advice in (
        ("b.npy", 0, "more paired rows may help, and so may a non-linear aligner"),
        ("noise.npy", 3, "more paired rows may still help, or a non-linear aligner"),
    ):
        code, out, err = _main(
            tmp_path, capsys, monkeypatch, "report", "a.npy", other, "--json", "-q"
        )
        assert code == expected, err
        explanation = json.loads(out)["explanation"]
        assert f"{advice}, which skembed align does not fit (in Python: " in (
            explanation
        )
        named = re.findall(r"skembed\.(\w+)", explanation)
        assert named, explanation
        for name in named:
            assert getattr(skembed, name) not in CLI_METHODS.values()
    library = skembed.metrics.compare_spaces(A, B, random_state=0).explanation
    assert "more training pairs or a non-linear aligner may help." in library


@pytest.mark.parametrize("command", ["report", "align"])
def test_one_input_given_as_a_and_b_is_a_user_error(
    paired, capsys, monkeypatch, command
):
    """Check A and B the same file: align wrote an identity map, exit 0."""
    folder, A, B = paired
    extra = ["-o", "model.npz"] if command == "align" else []
    code, _, err = _run(folder, capsys, monkeypatch, command, "a.npy", "a.npy", *extra)
    assert code == 2
    assert "A and B are the same input (a.npy)" in err
    assert not (folder / "model.npz").exists()
    np.savez(folder / "both.npz", first=A, second=B)
    code, _, err = _run(
        folder, capsys, monkeypatch, command, "both.npz:first", "both.npz:second",
        *extra, "-q",
    )  # fmt: skip
    assert code == 0, err
    # One input in other words: a selection of every column, or the one
    # member of an archive named and not named.
    np.savez(folder / "one.npz", A)
    width = A.shape[1]
    for argv in (
        ["a.npy", "a.npy", "--columns-a", f"0..{width - 1}"],
        [
            "a.npy",
            "a.npy",
            "--columns-a",
            f"0,1..{width - 1}",
            "--columns-b",
            f"0..{width - 1}",
        ],
        ["one.npz", "one.npz:arr_0"],
    ):
        (folder / "model.npz").unlink(missing_ok=True)
        code, _, err = _run(folder, capsys, monkeypatch, command, *argv, *extra)
        assert code == 2, (argv, err)
        _one_error(err, "are the same values of one file")
        assert not (folder / "model.npz").exists()


def test_align_keeps_copies_of_a_pair_on_one_side_of_the_split(
    tmp_path, capsys, monkeypatch
):
    """Check unrelated files whose rows repeat: judged usable (exit 0).

    100 random items repeated four times: every held-out pair had a copy
    among the fitted ones, and top-1 0.325 passed a bar of 0.1.
    """
    rng = np.random.default_rng(0)
    order = rng.permutation(400)
    np.save(tmp_path / "x.npy", np.repeat(rng.normal(size=(100, 32)), 4, axis=0)[order])
    np.save(tmp_path / "y.npy", np.repeat(rng.normal(size=(100, 24)), 4, axis=0)[order])
    code, out, err = _run(
        tmp_path, capsys, monkeypatch, "align", "x.npy", "y.npy", "-o", "m.npz", "-q"
    )
    assert code == 3, (out, err)
    assert "on 25 pairs not used in the fit" in out


def test_align_quotes_the_names_of_its_suggestion(paired, capsys, monkeypatch):
    """Check the suggested translate command with a space in a view name."""
    folder, A, B = paired
    np.save(folder / "a b.npy", A)
    code, out, _ = _run(
        folder, capsys, monkeypatch, "align", "a b.npy", "b.npy", "-o", "w.npz", "-q"
    )
    assert code == 0
    assert "--source b --target 'a b' -o OUT.npy" in out


@pytest.mark.parametrize("method", ["procrustes", "ridge", "cca"])
@pytest.mark.parametrize("test_size", ["0", "0.25"])
def test_align_refuses_a_constant_file_as_report_does(
    paired, capsys, monkeypatch, method, test_size
):
    """Check that align names a file whose rows are all one vector.

    Any map of it is arbitrary; with --test-size 0 align used to write the
    model and exit 0 after a library warning, while report refused the file.
    """
    folder, _, B = paired
    np.save(folder / "same.npy", np.tile(B[:1], (B.shape[0], 1)))
    code, _, err = _main(
        folder, capsys, monkeypatch, "align", "a.npy", "same.npy", "--method",
        method, "--test-size", test_size, "-q", "-o", "m.npz",
    )  # fmt: skip
    assert code == 2
    _one_error(err, "B (same.npy) is constant over the", "every row the same vector")
    assert not list(folder.glob("m*.npz"))


def _rounding_apart(row, n, seed=0):
    """``n`` float32 copies of ``row``, each entry a few roundings off it."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(-2, 3, size=(n, row.size)) * np.finfo(np.float32).eps
    rows = (row.astype(np.float32) * (1 + steps)).astype(np.float32)
    assert np.unique(rows, axis=0).shape[0] > 1
    return rows


@pytest.mark.parametrize("method", ["procrustes", "ridge", "cca"])
@pytest.mark.parametrize("test_size", ["0", "0.25"])
def test_a_file_constant_up_to_rounding_is_refused_as_a_constant_one(
    paired, capsys, monkeypatch, method, test_size
):
    """Check a file whose rows are one vector but for a few roundings.

    Only rows all equal were refused. With --test-size 0 align wrote a map
    of rounding noise and exited 0 (after a warning with procrustes, none
    with ridge or cca); with a held-out check it exited 3; report gave a
    verdict. It is now the user error of a constant file, exit 2, for both.
    A tiny spread that is data is not refused: it aligns.
    """
    folder, A, B = paired
    np.save(folder / "near.npy", _rounding_apart(B[0], B.shape[0]))
    code, _, err = _main(
        folder, capsys, monkeypatch, "align", "a.npy", "near.npy", "--method",
        method, "--test-size", test_size, "-q", "-o", "m.npz",
    )  # fmt: skip
    assert code == 2, err
    _one_error(err, "B (near.npy) is constant over the", "up to rounding")
    assert not list(folder.glob("m*.npz"))
    code, _, err = _main(folder, capsys, monkeypatch, "report", "near.npy", "b.npy")
    assert code == 2, err
    _one_error(err, "A (near.npy) is constant over the", "up to rounding")
    np.save(folder / "tiny.npy", B[:1].astype(np.float64) + 1e-9 * B)
    code, out, err = _main(
        folder, capsys, monkeypatch, "align", "a.npy", "tiny.npy", "--method",
        method, "--test-size", "0.25", "-q", "-o", "m.npz",
    )  # fmt: skip
    assert code == 0, err
    assert "held-out top-1 retrieval 1.000" in out


def test_align_self_learning_names_constant_files_as_inputs(
    paired, capsys, monkeypatch
):
    """Check the warning of constant pools: it names A and B and their files.

    It said "ProcrustesAligner: view(s) ['view0', 'view1'] are constant",
    naming an aligner the user did not choose and views the files are not
    called; the map is still judged not usable (exit 3).
    """
    folder, A, B = paired
    np.save(folder / "one_a.npy", np.tile(A[:1], (A.shape[0], 1)))
    np.save(folder / "one_b.npy", np.tile(B[:1], (B.shape[0], 1)))
    for inputs, named, check in (
        (
            ("one_a.npy", "one_b.npy"),
            "A (one_a.npy) and B (one_b.npy) are constant",
            "Check that A and B hold the embeddings.",
        ),
        (
            ("a.npy", "one_b.npy"),
            "B (one_b.npy) is constant",
            "Check that B holds the embeddings.",
        ),
    ):
        code, _, err = _main(
            folder, capsys, monkeypatch, "align", *inputs, "--method",
            "self-learning", "-q", "-o", "m.npz",
        )  # fmt: skip
        assert code == 3, err
        assert "Traceback" not in err
        assert "view0" not in err and "view1" not in err
        (warning,) = [line for line in err.splitlines() if " constant " in line]
        assert warning.startswith(f"skembed align: warning: {named} over the"), err
        assert warning.endswith(check), err


@pytest.mark.parametrize("constant", ["a", "b"])
def test_report_names_a_constant_file_as_align_does(
    paired, capsys, monkeypatch, constant
):
    """Check report's refusal of a file whose rows are all one vector.

    It said "B is constant over the 225 training rows" where align's says
    "B (same.npy) is ...": which file, with two inputs, was left to guess.
    """
    folder, A, B = paired
    X = {"a": A, "b": B}[constant]
    np.save(folder / "same.npy", np.tile(X[:1], (X.shape[0], 1)))
    inputs = ["same.npy", "b.npy"] if constant == "a" else ["a.npy", "same.npy"]
    name = constant.upper()
    code, _, err = _main(folder, capsys, monkeypatch, "report", *inputs, "-q")
    assert code == 2
    reported = _one_error(err, f"{name} (same.npy) is constant over the")
    code, _, err = _main(
        folder, capsys, monkeypatch, "align", *inputs, "-q", "-o", "m.npz"
    )
    assert code == 2
    aligned = _one_error(err, f"{name} (same.npy) is constant over the")
    assert reported.partition(": error: ")[2] == aligned.partition(": error: ")[2]


def test_an_output_name_too_long_says_to_shorten_it(paired, capsys, monkeypatch):
    """Check that a name past the file system's limit gets a fix, not just a cause."""
    folder, _, _ = paired
    name = "x" * 300 + ".npz"
    code, _, err = _main(
        folder, capsys, monkeypatch, "align", "a.npy", "b.npy", "-q", "-o", name
    )
    assert code == 2
    _one_error(err, "File name too long.", "Choose a shorter name")
    assert not list(folder.glob("x*"))


def test_search_refuses_one_file_as_queries_and_index(paired, capsys, monkeypatch):
    """Check that queries and index read as the same values are refused.

    They must come from the two models of the map; search ran and exited 0.
    """
    folder, A, B = paired
    save_aligner(ProcrustesAligner().fit([A, B]), folder / "m.npz")
    argv = ["search", "m.npz", "b.npy", "b.npy", "--source", "1", "--target", "0"]
    code, _, err = _main(folder, capsys, monkeypatch, *argv, "-q", "-o", "n.npy")
    assert code == 2
    _one_error(err, "same values of one file", "source model ('1')")
    assert not (folder / "n.npy").exists()
    # Another file of the same values is two inputs that happen to agree.
    np.save(folder / "copy.npy", B)
    argv[3] = "copy.npy"
    code, _, err = _main(folder, capsys, monkeypatch, *argv, "-q", "-o", "n.npy")
    assert code == 0, err
