"""Build the bundled fortunes subset from the full paired-embedding corpus.

Run once by a maintainer, not at import or install time::

    python -m skembed.datasets._build_fortunes SOURCE_FOLDER [--output-dir DIR]

``SOURCE_FOLDER`` holds the full corpus (``texts.jsonl``, ``provenance.tsv``,
``meta.json``, ``README.md`` and one ``<model>.npy`` per model). The build
writes ``fortunes.npz``, ``fortunes_provenance.tsv`` and ``README.md`` into the
package's data folder (or ``--output-dir``). The same source gives the same
arrays; the npz is written with fixed zip timestamps so that its bytes (and
SHA256) are reproducible with the same zlib.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import hashlib
import io
import json
import random
import re
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

from skembed._atomic import write_together
from skembed.datasets._fortunes import (
    FORTUNES_DATA_FILE,
    FORTUNES_DESCR_FILE,
    FORTUNES_PROVENANCE_FILE,
    FORTUNES_VIEW_NAMES,
    decode_view,
)

__all__ = ["main", "select_rows"]

N_TEXTS = 3000
SEED = 20240607
MAX_TOTAL_BYTES = 8 * 1024 * 1024
_SOURCE_FILES = ("texts.jsonl", "provenance.tsv", "meta.json") + tuple(
    f"{name}.npy" for name in FORTUNES_VIEW_NAMES
)
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _listed_checksums(readme_path):
    """SHA256 lines ``<hex>  <file>`` listed in the corpus README, if any."""
    if not readme_path.exists():
        return {}
    text = readme_path.read_text(encoding="utf-8")
    return {
        name: digest
        for digest, name in re.findall(r"^([0-9a-f]{64})\s+(\S+)$", text, re.M)
    }


def select_rows(labels, n_texts=N_TEXTS, seed=SEED):
    """Choose ``n_texts`` corpus rows, stratified by label, deterministically.

    Label l with n_l of the N rows gets ``floor(n_texts * n_l / N)`` rows; the
    remaining rows go one each to the labels with the largest fractional parts
    (ties broken by label name). ``random.Random(seed).random()`` gives one draw
    per corpus row, in row order (the one sequence Python guarantees to keep
    across versions); in each label the rows with the smallest draws are kept.

    Parameters
    ----------
    labels : sequence of str
        Label of each corpus row.
    n_texts : int
        Number of rows to keep.
    seed : int
        Seed of the draws.

    Returns
    -------
    rows : ndarray of shape (n_texts,), dtype int64
        Kept corpus rows, increasing.
    """
    counts = Counter(labels)
    n_rows = len(labels)
    quota = {label: n_texts * n // n_rows for label, n in counts.items()}
    remainder = {label: n_texts * n % n_rows for label, n in counts.items()}
    n_left = n_texts - sum(quota.values())
    for label in sorted(counts, key=lambda label: (-remainder[label], label))[:n_left]:
        quota[label] += 1

    rng = random.Random(seed)
    draws = [rng.random() for _ in range(n_rows)]
    kept = []
    for label in sorted(counts):
        rows = [row for row in range(n_rows) if labels[row] == label]
        rows.sort(key=lambda row: draws[row])
        kept.extend(rows[: quota[label]])
    return np.array(sorted(kept), dtype=np.int64)


def _write_npz(target, arrays):
    """Write a deflated npz without pickled objects and with fixed timestamps."""
    with zipfile.ZipFile(target, "w") as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


def _centered_procrustes_top1(A, B, train, test):
    """Top-1 accuracy of test A rows, mapped onto B, among the test B rows."""
    A = A.astype(np.float64)
    B = B.astype(np.float64)
    A = A - A[train].mean(axis=0)
    B = B - B[train].mean(axis=0)
    # W = U V^T maximises trace(W^T A^T B) over (semi-)orthogonal W.
    U, _, Vt = np.linalg.svd(A[train].T @ B[train], full_matrices=False)
    mapped = A[test] @ (U @ Vt)
    mapped /= np.linalg.norm(mapped, axis=1, keepdims=True)
    targets = B[test] / np.linalg.norm(B[test], axis=1, keepdims=True)
    nearest = np.argmax(mapped @ targets.T, axis=1)
    return float(np.mean(nearest == np.arange(len(test))))


def _float16_check(originals, decoded):
    """Compare float16-stored views with their float32 originals."""
    n = next(iter(originals.values())).shape[0]
    test = np.arange(0, n, 3)
    train = np.setdiff1d(np.arange(n), test)
    element = {
        name: float(np.max(np.abs(decoded[name] - originals[name])))
        for name in originals
    }
    pairs = {}
    for source in originals:
        for target in originals:
            if source == target:
                continue
            before = _centered_procrustes_top1(
                originals[source], originals[target], train, test
            )
            after = _centered_procrustes_top1(
                decoded[source], decoded[target], train, test
            )
            pairs[f"{source}->{target}"] = (before, after)
    return {"n_train": len(train), "n_test": len(test)}, element, pairs


def _provenance_section(meta):
    provenance = meta["provenance"]
    build = meta["build"]
    statistics = {
        key: build[key]
        for key in ("fortune_files", "dropped_small_files", "candidates")
        if key in build
    }
    lines = [
        # One word of the corpus wording is replaced by "repeats".
        f"- {key}: {re.sub(r'exact [a-z]+ [(]', 'exact repeats (', value)}"
        for key, value in provenance.items()
    ]
    lines.append(f"- build statistics: {json.dumps(statistics)}")
    return "\n".join(lines)


def _models_table(meta):
    lines = [
        "| view | PyPI package | version | dim | normalised | model |",
        "|---|---|---|---|---|---|",
    ]
    for name in FORTUNES_VIEW_NAMES:
        info = meta["embeddings"][name]
        lines.append(
            f"| {name} | {info['package']} | {info['package_version']} "
            f"| {info['dim']} | {'yes (L2)' if info['l2_normalized'] else 'no'} "
            f"| {info['description']} |"
        )
    return "\n".join(lines)


def _readme(
    meta, counts, target_names, sizes, checksums, source_checksums, float16_check
):
    split, element, pairs = float16_check
    n_corpus = meta["n"]
    label_rows = "\n".join(
        f"| {name} | {meta['label_counts'][name]} | {counts[name]} |"
        for name in sorted(target_names, key=lambda name: (-counts[name], name))
    )
    element_rows = "\n".join(
        f"| {name} | {error:.2e} |" for name, error in element.items()
    )
    pair_rows = "\n".join(
        f"| {pair} | {before:.4f} | {after:.4f} | {abs(after - before):.4f} |"
        for pair, (before, after) in pairs.items()
    )
    npz_size = sizes[FORTUNES_DATA_FILE]
    max_top1 = max(abs(after - before) for before, after in pairs.values())
    stack = meta.get("stack", [])
    stack_line = (
        f"Python {meta.get('python', '?')}, numpy {stack[0]}, torch {stack[1]}, "
        f"sentence-transformers {stack[2]}, transformers {stack[3]}"
        if len(stack) == 4
        else f"Python {meta.get('python', '?')}"
    )
    source_rows = "\n".join(
        f"{digest}  {name}" for name, digest in source_checksums.items()
    )
    return f"""\
# Bundled data: fortunes subset

{N_TEXTS} real fortune-cookie texts (38 labels), each embedded by three
pretrained models, row for row. Load it with `skembed.datasets.load_fortunes()`.

## Files

| file | content | bytes |
|---|---|---|
| {FORTUNES_DATA_FILE} | `minilm` [{N_TEXTS}, 384], `e5` [{N_TEXTS}, 384], \
`wordllama256` [{N_TEXTS}, 256] as float16; `texts`, `ids`, `target` (label codes), \
`target_names`, `corpus_rows`; deflated, no pickled objects | {npz_size} |
| {FORTUNES_PROVENANCE_FILE} | per row: bundle row, corpus row, id, Debian package, \
version, fortune file | {sizes[FORTUNES_PROVENANCE_FILE]} |
| {FORTUNES_DESCR_FILE} | this description | - |

The loader returns the embeddings as float32 rows renormalised to unit L2 norm.

## Subset

- corpus: the full paired-embedding fortunes corpus, {n_corpus} texts (its
  provenance is copied below); `corpus_rows` gives each text's row there.
- size: {N_TEXTS} texts, stratified by label. Label l with n_l corpus texts gets
  floor({N_TEXTS} * n_l / {n_corpus}) texts; the texts still missing go one each
  to the labels with the largest fractional parts (ties: label name order).
- draw: `random.Random({SEED}).random()` gives one number per corpus row, in row
  order; in each label the rows with the smallest numbers are kept. Rows keep
  the corpus order (the corpus itself is shuffled).
- build: `python -m skembed.datasets._build_fortunes SOURCE_FOLDER` (code in
  `skembed/datasets/_build_fortunes.py`) writes the three files of this folder.

| label | corpus | bundled |
|---|---|---|
{label_rows}

## Models

{_models_table(meta)}

Embedding stack: {stack_line}; on CPU, once, offline.

## Provenance (copied from the corpus description)

{_provenance_section(meta)}

## float16 storage check

Largest absolute difference between the loaded float32 vectors and the float32
originals of the same texts:

| view | max abs error |
|---|---|
{element_rows}

Top-1 cross-model retrieval after centered Procrustes (W = U V^T from the SVD of
the centered A_train^T B_train; {split["n_train"]} training pairs, {split["n_test"]}
test texts = every third bundled row; nearest test B vector by cosine), with the
float32 originals and with the bundled float16 vectors. Largest change:
{max_top1:.4f}.

| A->B | top-1 float32 | top-1 float16 | abs change |
|---|---|---|---|
{pair_rows}

## SHA256

```
{checksums[FORTUNES_DATA_FILE]}  {FORTUNES_DATA_FILE}
{checksums[FORTUNES_PROVENANCE_FILE]}  {FORTUNES_PROVENANCE_FILE}
```

Source files of the corpus the subset was built from:

```
{source_rows}
```
"""


def build(source, output_dir):
    """Build the bundled files from the corpus in ``source`` into ``output_dir``.

    Returns a dict of summary numbers (sizes, errors, checksums).
    """
    source = Path(source)
    output_dir = Path(output_dir)
    missing = [name for name in _SOURCE_FILES if not (source / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"The source folder {str(source)!r} lacks {missing}; pass the folder "
            "of the full fortunes corpus."
        )
    source_checksums = {name: _sha256(source / name) for name in _SOURCE_FILES}
    listed = _listed_checksums(source / "README.md")
    mismatched = [
        name
        for name, digest in source_checksums.items()
        if name in listed and listed[name] != digest
    ]
    if mismatched:
        raise ValueError(
            f"SHA256 of {mismatched} differ from the corpus README; the source "
            "folder holds other data than it describes."
        )

    meta = json.loads((source / "meta.json").read_text(encoding="utf-8"))
    with open(source / "texts.jsonl", encoding="utf-8") as file:
        records = [json.loads(line) for line in file]
    with open(source / "provenance.tsv", encoding="utf-8") as file:
        header, *provenance = [line.rstrip("\n").split("\t") for line in file]
    if header != ["row", "id", "package", "version", "file"]:
        raise ValueError(f"Unexpected provenance.tsv columns {header}.")
    full = {
        name: np.load(source / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        for name in FORTUNES_VIEW_NAMES
    }
    n_corpus = len(records)
    for name, X in full.items():
        if X.shape[0] != n_corpus or X.dtype != np.float32:
            raise ValueError(
                f"{name}.npy is {X.dtype} {X.shape}, expected float32 rows"
            )
    for row, (record, entry) in enumerate(zip(records, provenance, strict=True)):
        if int(entry[0]) != row or entry[1] != record["id"]:
            raise ValueError(f"provenance.tsv row {row} does not match texts.jsonl")

    labels = [record["label"] for record in records]
    rows = select_rows(labels)
    target_names = np.array(sorted(set(labels)))
    code = {name: i for i, name in enumerate(target_names)}
    originals = {
        name: np.asarray(X[rows], dtype=np.float32) for name, X in full.items()
    }
    stored = {name: X.astype(np.float16) for name, X in originals.items()}
    arrays = {
        **stored,
        "view_names": np.array(FORTUNES_VIEW_NAMES),
        "texts": np.array([records[row]["text"] for row in rows]),
        "ids": np.array([records[row]["id"] for row in rows]),
        "target": np.array([code[labels[row]] for row in rows], dtype=np.uint8),
        "target_names": target_names,
        "corpus_rows": rows,
    }

    # The three files are made in memory, checked, then written together
    # (each to a temporary file, all renamed at the end): an interrupted or
    # oversized build leaves the shipped files as they were.
    buffer = io.BytesIO()
    _write_npz(buffer, arrays)
    lines = ["row\tcorpus_row\tid\tpackage\tversion\tfile\n"]
    for i, row in enumerate(rows):
        _, id_, package, version, fortune_file = provenance[row]
        lines.append(f"{i}\t{row}\t{id_}\t{package}\t{version}\t{fortune_file}\n")
    contents = {
        FORTUNES_DATA_FILE: buffer.getvalue(),
        FORTUNES_PROVENANCE_FILE: "".join(lines).encode("utf-8"),
    }

    decoded = {name: decode_view(X) for name, X in stored.items()}
    check = _float16_check(originals, decoded)
    sizes = {name: len(data) for name, data in contents.items()}
    checksums = {
        name: hashlib.sha256(data).hexdigest() for name, data in contents.items()
    }
    counts = Counter(labels[row] for row in rows)
    readme = _readme(
        meta, counts, target_names, sizes, checksums, source_checksums, check
    )
    contents[FORTUNES_DESCR_FILE] = readme.encode("utf-8")

    total = sum(len(data) for data in contents.values())
    if total > MAX_TOTAL_BYTES:
        raise ValueError(f"The bundled files take {total} bytes, over 8 MB.")
    output_dir.mkdir(parents=True, exist_ok=True)
    write_together(
        [
            (output_dir / name, lambda file, data=data: file.write(data))
            for name, data in contents.items()
        ]
    )
    return {
        "total_bytes": total,
        "sizes": sizes,
        "sha256": checksums,
        "max_abs_error": check[1],
        "top1": check[2],
    }


def main(argv=None):
    """Command line entry: build the bundled fortunes subset."""
    parser = argparse.ArgumentParser(
        prog="python -m skembed.datasets._build_fortunes",
        description="Build the bundled fortunes subset from the full corpus.",
    )
    parser.add_argument("source", help="folder of the full fortunes corpus")
    parser.add_argument(
        "--output-dir",
        default=str(Path(__file__).resolve().parent / "data"),
        help="where to write the bundled files (default: the package data folder)",
    )
    args = parser.parse_args(argv)
    summary = build(args.source, args.output_dir)
    json.dump(summary, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
