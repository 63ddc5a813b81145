"""Compute every number that the user guide and the README quote from the bundled data.

No such number is typed by hand: the Sphinx build runs this script
(``docs/conf.py``) and includes what it writes, and the test suite runs it
too (``tests/test_doc_numbers.py``), checking the README's numbers and the
claims the prose makes against the values computed here. Figures of
full-size benchmark runs on the shared corpora (the migration and
zero-pair guides, the README's speed ratios) are typed, each next to the
command that gives it; the test suite runs those scripts at a small size
only (``tests/test_benchmarks.py``).
Everything goes through skembed's public API, on the data bundled with the
package.

    python docs/_scripts/doc_numbers.py [OUTPUT_DIRECTORY]

writes ``numbers.rst`` (substitution definitions such as ``|oos_raw_top1|``)
and one ``.rst`` fragment per table into OUTPUT_DIRECTORY (default:
``docs/_generated``), and prints the values.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import io
import os
import tempfile
import textwrap
import time
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from skembed import (
    CCAAligner,
    ContrastiveAligner,
    EmbeddingConcatenator,
    EmbeddingIndex,
    GeneralizedProcrustesAligner,
    KernelResidualAligner,
    ProcrustesAligner,
    RelativeProjector,
    RidgeAligner,
    SelfLearningAligner,
)
from skembed.datasets import load_fortunes
from skembed.metrics import paired_cosine, recall_at_k, retrieval_accuracy

# The split of the gallery's first example: 1,000 held-out texts, 2,000 pairs.
SEED = 0
N_TEST = 1000


def _split(n):
    rng = np.random.default_rng(SEED)
    order = rng.permutation(n)
    return order[N_TEST:], order[:N_TEST], rng


def out_of_space(data):
    """Raw against aligned comparisons of minilm and e5 (out_of_space.rst)."""
    minilm, e5 = data.views["minilm"], data.views["e5"]
    train, test, rng = _split(len(minilm))
    partners = rng.permutation(len(test))
    numbers = {
        "oos_same": paired_cosine(minilm[test], e5[test]).mean(),
        "oos_random": paired_cosine(minilm[test], e5[test][partners]).mean(),
        "oos_raw_top1": retrieval_accuracy(e5[test], minilm[test]),
        "oos_chance": 1 / len(test),
    }
    aligner = ProcrustesAligner().fit([minilm[train], e5[train]])
    numbers["oos_aligned_top1"] = retrieval_accuracy(
        aligner.transform_view(e5[test], 1), aligner.transform_view(minilm[test], 0)
    )
    for name in ("minilm", "e5"):
        X = data.views[name]
        unrelated = paired_cosine(X, X[rng.permutation(len(X))]).mean()
        numbers[f"oos_{name}_unrelated"] = unrelated
    return {key: f"{value:.3f}" for key, value in numbers.items()}


def migration(data):
    """The migration guide's example, searched with two adapters (migration.rst).

    Its split: the minilm index holds every text, 1,000 of them paired with
    e5, and each other text's e5 vector must find its own row. Recall@10 and
    top-1 by ``ProcrustesAligner`` and by ``KernelResidualAligner``, searched
    as the guide searches (CSLS, queries on their own mean).
    """
    old, new = data.views["minilm"], data.views["e5"]
    rows = np.random.default_rng(0).permutation(len(old))
    pairs, held_out = rows[:1000], rows[1000:]
    numbers = {}
    for name, adapter in (
        ("procrustes", ProcrustesAligner(reference=0)),
        ("kernel", KernelResidualAligner(reference=0)),
    ):
        adapter.fit([old[pairs], new[pairs]])
        index = EmbeddingIndex(10, method="csls", center="separate").fit(old)
        index.fit_queries(adapter.translate(new[pairs], 1, 0))
        found = index.kneighbors(adapter.translate(new[held_out], 1, 0))[1]
        numbers[f"mig_{name}_recall"] = recall_at_k(held_out, found, k=10)
        numbers[f"mig_{name}_top1"] = np.mean(found[:, 0] == held_out)
    return {key: f"{value:.3f}" for key, value in numbers.items()}


def _held_out(aligner, test_views, query, target, method="nn"):
    Z = [aligner.transform_view(X, k) for k, X in enumerate(test_views)]
    return retrieval_accuracy(Z[query], Z[target], method=method)


ALIGNERS = {
    "ProcrustesAligner()": ProcrustesAligner,
    "GeneralizedProcrustesAligner()": GeneralizedProcrustesAligner,
    "RidgeAligner()": RidgeAligner,
    "CCAAligner()": CCAAligner,
    "ContrastiveAligner(random_state=0)": lambda: ContrastiveAligner(random_state=0),
    "RelativeProjector(random_state=0)": lambda: RelativeProjector(random_state=0),
}


def aligners_table(data):
    """Held-out retrieval of every aligner into minilm (choosing.rst)."""
    minilm = data.views["minilm"]
    train, test, _ = _split(len(minilm))
    rows, values = [], {}
    for label, make in ALIGNERS.items():
        cells = []
        seconds = 0.0
        for source in ("e5", "wordllama256"):
            X = data.views[source]
            start = time.process_time()
            with warnings.catch_warnings():
                # A ConvergenceWarning of the iterative aligners does not
                # change what is measured.
                warnings.simplefilter("ignore")
                aligner = make().fit([minilm[train], X[train]])
            seconds += time.process_time() - start
            for method in ("nn", "csls"):
                value = _held_out(aligner, [minilm[test], X[test]], 1, 0, method)
                values[(label, source, method)] = value
                cells.append(f"{value:.3f}")
        rows.append([f"``{label}``", *cells, f"{seconds / 2:.2f}"])
    header = [
        "Aligner",
        "e5 -> minilm",
        "CSLS",
        "wordllama256 -> minilm",
        "CSLS",
        "fit (s)",
    ]
    return _list_table(header, rows), values


def few_pairs(data, seeds=(20, 50)):
    """Held-out CSLS retrieval minilm -> e5 from few known pairs (choosing.rst).

    The protocol of the gallery example on retrieval against known pairs:
    closed forms fit on the first n training pairs; self-learning also gets
    the 2,000 training rows of each model as two independently shuffled,
    unpaired pools.
    """
    A, B = data.views["minilm"], data.views["e5"]
    train, test, rng = _split(len(A))
    n = max(seeds)
    values = {}
    known = [A[train[:n]], B[train[:n]]]
    closed = {
        "procrustes": ProcrustesAligner(),
        "ridge": RidgeAligner(alpha=0.1),
        "cca": CCAAligner(),
    }
    for name, aligner in closed.items():
        aligner.fit(known)
        values[f"few{n}_{name}"] = _held_out(aligner, [A[test], B[test]], 0, 1, "csls")
    shuffle_a, shuffle_b = rng.permutation(len(train)), rng.permutation(len(train))
    pools = [A[train[shuffle_a]], B[train[shuffle_b]]]
    position_a, position_b = np.argsort(shuffle_a), np.argsort(shuffle_b)
    for m in seeds:
        pairs = np.column_stack([position_a[:m], position_b[:m]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            aligner = SelfLearningAligner(random_state=0).fit(pools, pairs=pairs)
        values[f"few{m}_selflearn"] = _held_out(
            aligner, [A[test], B[test]], 0, 1, "csls"
        )
    return {key: f"{value:.3f}" for key, value in values.items()}, values


def warm_start(data):
    """A warm start on pools the cold search fails on (zero_pairs.rst).

    The protocol of the gallery's zero-pair example: minilm and e5 fortunes,
    1,000 held-out texts, two pools of the same 1,000 other texts shuffled,
    and a map fitted by Procrustes on 100 pairs of the remaining texts passed
    as ``init``; top-1 retrieval minilm -> e5 of the held-out texts, centred
    on the minilm pool's image.
    """
    A, B = data.views["minilm"], data.views["e5"]
    order = np.random.default_rng(1).permutation(len(A))
    test, pool, earlier = order[:1000], order[1000:2000], order[2000:]
    shuffled = np.random.default_rng(2).permutation(pool)
    earlier_map = ProcrustesAligner(center=True, normalize="l2").fit(
        [A[earlier[:100]], B[earlier[:100]]]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm = SelfLearningAligner(random_state=0, init=earlier_map)
        warm.fit([A[pool], B[shuffled]])
    values = {}
    for name, aligner in (("warm_alone_top1", earlier_map), ("warm_top1", warm)):
        centre = aligner.transform_view(A[pool], 0).mean(axis=0)
        Z_a = aligner.transform_view(A[test], 0) - centre
        Z_b = aligner.transform_view(B[test], 1) - centre
        values[name] = retrieval_accuracy(Z_a, Z_b)
    return {key: f"{value:.2f}" for key, value in values.items()}


def classification(data):
    """5-fold accuracy of a logistic regression on each model and on both."""
    frame = data.frame
    y = data.target
    model = LogisticRegression(max_iter=1000)
    both = make_pipeline(
        EmbeddingConcatenator(views=["minilm", "e5"]), LogisticRegression(max_iter=1000)
    )
    values = {
        "clf_minilm": cross_val_score(model, data.views["minilm"], y, cv=5).mean(),
        "clf_e5": cross_val_score(model, data.views["e5"], y, cv=5).mean(),
        "clf_both": cross_val_score(both, frame[["minilm", "e5"]], y, cv=5).mean(),
        "n_labels": len(data.target_names),
    }
    formatted = {key: f"{value:.3f}" for key, value in values.items()}
    formatted["n_labels"] = str(values["n_labels"])
    return formatted, values


def report_output(data):
    """What ``skembed report minilm.npy e5.npy`` prints (measuring.rst)."""
    from skembed.__main__ import main

    names = ["minilm.npy", "e5.npy"]
    out = io.StringIO()
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            np.save(Path(folder) / name, data.views[name.removesuffix(".npy")])
        # Run in the folder, with the names the page shows: the explanation
        # names the files in the commands it advises, and is wrapped as
        # printed.
        here = os.getcwd()
        os.chdir(folder)
        try:
            with redirect_stdout(out):
                status = main(["report", *names, "--random-state", "0", "--quiet"])
        finally:
            os.chdir(here)
    if status != 0:
        raise RuntimeError(f"skembed report exited with {status}")
    lines = [
        "$ skembed report minilm.npy e5.npy --random-state 0",
        *out.getvalue().splitlines(),
    ]
    return ".. code-block:: text\n\n" + "".join(f"   {line}\n" for line in lines)


def align_unusable_output(data):
    """What ``skembed align`` says of a map no better than chance (command_line.rst).

    ``old.npy`` holds the first 600 minilm rows, ``unrelated.npy`` 600
    random unit rows: nothing pairs them.
    """
    from skembed.__main__ import main

    rng = np.random.default_rng(SEED)
    unrelated = rng.normal(size=(600, data.views["minilm"].shape[1]))
    unrelated /= np.linalg.norm(unrelated, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "old.npy", data.views["minilm"][:600])
        np.save(Path(folder) / "unrelated.npy", unrelated.astype(np.float32))
        out, err = io.StringIO(), io.StringIO()
        paths = [str(Path(folder) / name) for name in ("old.npy", "unrelated.npy")]
        with redirect_stdout(out), redirect_stderr(err):
            status = main(["align", *paths, "-o", str(Path(folder) / "model.npz")])
    if status != 3:
        raise RuntimeError(f"skembed align exited with {status}, not 3")
    reason = err.getvalue().strip().splitlines()[-1].replace(folder + "/", "")
    lines = [
        "$ skembed align old.npy unrelated.npy -o model.npz",
        "...",
        *textwrap.wrap(reason, width=76, break_on_hyphens=False),
    ]
    return ".. code-block:: text\n\n" + "".join(f"   {line}\n" for line in lines)


def _list_table(header, rows):
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        out.append(f"   * - {row[0]}")
        out.extend(f"     - {cell}" for cell in row[1:])
    return "\n".join(out) + "\n"


def compute():
    """Every documented number: (substitutions, fragments, raw values)."""
    data = load_fortunes(as_frame=True)
    substitutions = {}
    substitutions.update(out_of_space(data))
    substitutions.update(migration(data))
    table, table_values = aligners_table(data)
    few, few_values = few_pairs(data)
    substitutions.update(few)
    substitutions.update(warm_start(data))
    classes, class_values = classification(data)
    substitutions.update(classes)
    fragments = {
        "aligners_table": table,
        "report_output": report_output(data),
        "align_unusable_output": align_unusable_output(data),
    }
    values = {"aligners": table_values, "few_pairs": few_values, **class_values}
    return substitutions, fragments, values


def write(directory):
    """Write numbers.rst and the fragments into ``directory``."""
    substitutions, fragments, _ = compute()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f".. |{key}| replace:: {value}" for key, value in substitutions.items()]
    (directory / "numbers.rst").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name, text in fragments.items():
        (directory / f"{name}.rst").write_text(text, encoding="utf-8")
    return substitutions, fragments


if __name__ == "__main__":
    import scipy.linalg  # noqa: F401 (loaded first, so that threadpool_limits sees it)
    from threadpoolctl import threadpool_limits

    default = Path(__file__).resolve().parents[1] / "_generated"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=default,
        help="where numbers.rst and the fragments are written (default: %(default)s)",
    )
    target = parser.parse_args().directory
    # One BLAS thread, as the docs build (docs/conf.py) and the test that
    # checks these numbers run it: the fit times are quoted for one thread.
    with threadpool_limits(limits=1, user_api="blas"):
        substitutions, fragments = write(target)
    for key, value in substitutions.items():
        print(f"{key:28} {value}")
    for text in fragments.values():
        print(text)
