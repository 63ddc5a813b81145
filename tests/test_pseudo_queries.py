"""Tests of pseudo_queries: query-like spans cut from documents."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from skembed import pseudo_queries

DOCUMENTS = [
    "a domesticated carnivorous mammal kept as a pet",
    "the act of running swiftly, as in a race",
    "(physics) a thermodynamic quantity equivalent to the capacity of a system",
    "any of various small birds",
    "an X-ray image that doesn't lie",
]

WORD = re.compile(r"\w+(?:['\u2019-]\w+)*")

# Words of generated documents: stop words, content words, inner punctuation.
WORDS = st.sampled_from(["the", "of", "a", "cat", "runs", "x-ray", "don't", "big"])
POSITIONS = st.sampled_from(["random", "start"])


def _is_span(span, document):
    """Whether ``span`` is a run of consecutive words of ``document``."""
    words, part = WORD.findall(document), span.split(" ")
    return any(
        words[start : start + len(part)] == part
        for start in range(len(words) - len(part) + 1)
    )


def test_one_span_of_consecutive_words_per_document():
    spans = pseudo_queries(DOCUMENTS, random_state=0)
    assert len(spans) == len(DOCUMENTS)
    for span, document in zip(spans, DOCUMENTS, strict=True):
        assert 1 <= len(span.split(" ")) <= 3
        assert _is_span(span, document)
        # At least one word is not a stop word.
        assert any(word.lower() not in ENGLISH_STOP_WORDS for word in span.split())


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(WORDS, min_size=1, max_size=12),
    bounds=st.tuples(st.integers(1, 5), st.integers(0, 4)),
    position=POSITIONS,
    seed=st.integers(0, 2**31 - 1),
)
def test_spans_are_runs_of_the_drawn_length(words, bounds, position, seed):
    min_words, extra = bounds
    max_words = min_words + extra
    document = ", ".join(words)  # punctuation between words is dropped
    (span,) = pseudo_queries(
        [document],
        min_words=min_words,
        max_words=max_words,
        position=position,
        random_state=seed,
    )
    part = span.split(" ")
    assert _is_span(span, document)
    assert min(min_words, len(words)) <= len(part) <= max_words
    has_content = any(w not in ENGLISH_STOP_WORDS for w in words)
    if has_content:
        assert any(w not in ENGLISH_STOP_WORDS for w in part)


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(WORDS, min_size=1, max_size=8),
    n_spans=st.integers(1, 12),
    position=POSITIONS,
    seed=st.integers(0, 2**31 - 1),
)
def test_several_spans_differ_until_every_span_is_cut(words, n_spans, position, seed):
    document = " ".join(words)
    spans = pseudo_queries(
        [document, "big cat"], n_spans=n_spans, position=position, random_state=seed
    )
    assert len(spans) == 2 * n_spans
    mine, other = spans[:n_spans], spans[n_spans:]
    assert set(other) <= {"big", "cat", "big cat"}
    # Every span of 1-3 words with a content word (any, if there is none),
    # counted by its start and length.
    content = [w not in ENGLISH_STOP_WORDS for w in words]
    candidates = [
        (start, length)
        for length in range(1, min(3, len(words)) + 1)
        for start in range(len(words) - length + 1)
        if any(content[start : start + length]) or not any(content)
    ]
    texts = {" ".join(words[a : a + n]) for a, n in candidates}
    assert set(mine) <= texts
    # Distinct texts while some are left (a repeated word is one text): the
    # first len(texts) spans hold each text once.
    first = mine[: len(texts)]
    assert len(set(first)) == len(first)
    if n_spans >= len(texts):
        assert set(first) == texts


def test_a_repeated_word_is_cut_once():
    # "walk" occurs twice: its second start is used up with its first.
    document = "walk: the act of walking somewhere; he took a walk after lunch"
    for seed in range(20):
        spans = pseudo_queries(
            [document, "dog dog dog cat"], n_spans=4, max_words=1, random_state=seed
        )
        assert len(set(spans[:4])) == 4
        assert sorted(spans[4:6]) == ["cat", "dog"]


def test_first_spans_do_not_depend_on_n_spans():
    documents = DOCUMENTS * 3
    one = pseudo_queries(documents, random_state=7)
    three = pseudo_queries(documents, n_spans=3, random_state=7)
    two = pseudo_queries(documents, n_spans=2, random_state=7)
    assert three[::3] == one
    assert [span for i, span in enumerate(three) if i % 3 < 2] == two


def test_start_with_several_spans_takes_the_earliest_left():
    spans = pseudo_queries(
        ["the act of running swiftly"],
        n_spans=5,
        min_words=2,
        max_words=2,
        position="start",
    )
    # "of the"-like spans of stop words alone are never cut; once all four
    # spans with a content word are cut, they come again from the start.
    assert spans == ["the act", "act of", "of running", "running swiftly", "the act"]


def test_start_takes_the_first_words_unless_they_are_stop_words():
    spans = pseudo_queries(DOCUMENTS, min_words=2, max_words=2, position="start")
    assert spans[:3] == ["a domesticated", "the act", "physics a"]
    # "of the" alone would be stop words: the first span with a content word.
    (span,) = pseudo_queries(
        ["of the big cat"], min_words=2, max_words=2, position="start"
    )
    assert span == "the big"


def test_random_state_fixes_the_spans_and_seeds_differ():
    documents = [" ".join(f"w{i}{j}" for j in range(20)) for i in range(50)]
    first = pseudo_queries(documents, random_state=3)
    assert pseudo_queries(documents, random_state=3) == first
    assert pseudo_queries(documents, random_state=np.random.RandomState(3)) == first
    assert pseudo_queries(documents, random_state=4) != first


def test_random_spans_cover_the_whole_document():
    # Starts are uniform: every word of a long document starts some span.
    document = " ".join(f"w{j}" for j in range(10))
    spans = pseudo_queries([document] * 400, min_words=1, max_words=1, random_state=0)
    assert set(spans) == {f"w{j}" for j in range(10)}


def test_stop_words_none_and_custom():
    document = ["the cat"]
    spans = pseudo_queries(document * 200, min_words=1, max_words=1, random_state=0)
    assert set(spans) == {"cat"}
    spans = pseudo_queries(
        document * 200, min_words=1, max_words=1, stop_words=None, random_state=0
    )
    assert set(spans) == {"the", "cat"}
    spans = pseudo_queries(
        document * 200, min_words=1, max_words=1, stop_words=["CAT"], random_state=0
    )
    assert set(spans) == {"the"}


def test_only_stop_words_still_give_a_span():
    (span,) = pseudo_queries(["of the"], min_words=2, max_words=2)
    assert span == "of the"


def test_short_documents_give_all_their_words():
    assert pseudo_queries(["cat"], min_words=2, max_words=4) == ["cat"]


def test_containers_and_inputs_untouched():
    documents = list(DOCUMENTS)
    expected = pseudo_queries(documents, random_state=1)
    assert documents == DOCUMENTS
    assert pseudo_queries(pd.Series(documents), random_state=1) == expected
    assert pseudo_queries(pd.DataFrame({"t": documents}), random_state=1) == expected
    assert pseudo_queries(np.array(documents, dtype=object), random_state=1) == expected


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            {"min_words": 4, "max_words": 2},
            ValueError,
            "min_words=4 exceeds max_words=2",
        ),
        ({"min_words": 0}, ValueError, "min_words"),
        ({"n_spans": 0}, ValueError, "n_spans"),
        ({"n_spans": 1.5}, TypeError, "n_spans"),
        ({"max_words": True}, TypeError, "max_words"),
        ({"position": "end"}, ValueError, "position"),
        ({"stop_words": "french"}, ValueError, "stop_words"),
        ({"stop_words": ["the", 3]}, TypeError, "stop_words must be"),
        ({"random_state": "x"}, ValueError, "random_state"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        pseudo_queries(DOCUMENTS, **kwargs)


@pytest.mark.parametrize(
    "documents, error, match",
    [
        (
            "one text",
            TypeError,
            "documents. parameter of pseudo_queries must be an array",
        ),
        ([], ValueError, "^documents holds 0 texts"),
        (["fine", None], ValueError, r"^documents has a missing text in row 1"),
        (["fine", 3], TypeError, r"^documents holds int 3 in row 1.*cuts strings"),
        ([b"fine"], TypeError, r"^documents holds bytes"),
        (["fine", "--- ..."], ValueError, r"documents\[1\] holds no word"),
    ],
)
def test_bad_documents(documents, error, match):
    with pytest.raises(error, match=match):
        pseudo_queries(documents)


def test_the_advice_for_a_missing_document_is_one_that_works():
    """Check that a missing document is to be dropped, not filled with ''.

    The message advised ``documents.fillna('')``, and the filled documents
    were then refused as holding no word.
    """
    documents = pd.Series(["the act of running", None])
    with pytest.raises(ValueError, match="missing text in row 1") as missing:
        pseudo_queries(documents)
    assert "fillna" not in str(missing.value)
    assert "dropna()" in str(missing.value)
    assert pseudo_queries(documents.dropna(), random_state=0)


def test_the_state_kept_between_rounds_is_small():
    """Check cutting one span of long documents holds little besides the text.

    Every document kept a Python list of its words and two lists of every
    start of every length: about 160 bytes a word before the first span.
    """
    import tracemalloc

    rng = np.random.RandomState(0)
    vocabulary = [f"w{i}" for i in range(5000)]
    documents = [" ".join(rng.choice(vocabulary, 500)) for _ in range(400)]
    tracemalloc.start()
    try:
        spans = pseudo_queries(documents, random_state=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(spans) == 400
    # 200,000 words: 32 MB at 160 bytes a word.
    assert peak < 12 * 2**20


@pytest.mark.parametrize(
    "document, words",
    [
        # Hindi: viramas and vowel signs are marks inside the words.
        (
            "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
            [
                "\u0928\u092e\u0938\u094d\u0924\u0947",
                "\u0926\u0941\u0928\u093f\u092f\u093e",
            ],
        ),
        # Decomposed accents stay on their letters.
        ("cafe\u0301 au lait", ["cafe\u0301", "au", "lait"]),
        # Thai tone marks.
        (
            "\u0e07\u0e48\u0e32\u0e22 \u0e21\u0e32\u0e01",
            ["\u0e07\u0e48\u0e32\u0e22", "\u0e21\u0e32\u0e01"],
        ),
    ],
)
def test_combining_marks_belong_to_their_words(document, words):
    """Check spans are whole words of texts whose letters carry combining marks.

    Combining marks are not ``\\w``: they split a word into fragments, so
    single letters of a Hindi word were cut as spans, and accents of
    decomposed text were dropped.
    """
    spans = pseudo_queries(
        [document], min_words=1, max_words=1, n_spans=len(words), random_state=0
    )
    assert sorted(spans) == sorted(words)
