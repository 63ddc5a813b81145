"""Tests for the splitting of X into embedding views (skembed._views)."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import pickle
import re
from itertools import permutations

import numpy as np
import pandas as pd
import pytest
from _corpora import available_corpus, missing
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.compose import make_column_selector
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from skembed._views import (
    _frame_schema,
    _norm_blocks,
    check_view_block,
    check_views,
    frame_to_array,
    resolve_view,
    view_feature_names,
)
from skembed.datasets import load_fortunes


class ViewsEstimator(TransformerMixin, BaseEstimator):
    """A minimal transformer that splits X into views and centres each view."""

    def __init__(self, views=None):
        self.views = views

    def fit(self, X, y=None):
        blocks = check_views(self, X, reset=True)
        self.means_ = [block.mean(axis=0) for block in blocks]
        return self

    def transform(self, X):
        check_is_fitted(self)
        blocks = check_views(self, X, reset=False)
        return np.hstack(
            [block - mean for block, mean in zip(blocks, self.means_, strict=True)]
        )


def _fitted(views, X, **kwargs):
    """Return a fitted ViewsEstimator and the blocks of X."""
    estimator = ViewsEstimator(views=views)
    blocks = check_views(estimator, X, reset=True, **kwargs)
    return estimator, blocks


def _data(n_samples=6, n_features=7, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_samples, n_features)).astype(dtype)


def _vector_frame(n_samples=5, widths=(3, 2), dtype=np.float32, seed=0):
    """A DataFrame with one array-valued column per width (object cells)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            f"emb{k}": list(rng.standard_normal((n_samples, w)).astype(dtype))
            for k, w in enumerate(widths)
        }
    )


def _arrow_frame(fixed_size):
    """A DataFrame with two Arrow list columns (widths 2 and 3)."""
    pa = pytest.importorskip("pyarrow")

    def list_type(width):
        if fixed_size:
            return pa.list_(pa.float32(), width)
        return pa.list_(pa.float32())

    text = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    image = [[1.0, 0.0, 2.0], [0.5, 1.5, 2.5], [3.0, 3.0, 3.0]]
    return (
        pd.DataFrame(
            {
                "text": pd.Series(text, dtype=pd.ArrowDtype(list_type(2))),
                "image": pd.Series(image, dtype=pd.ArrowDtype(list_type(3))),
            }
        ),
        np.asarray(text, dtype=np.float32),
        np.asarray(image, dtype=np.float32),
    )


# Views forms


@pytest.mark.parametrize(
    "n_features, expected_widths", [(6, [3, 3]), (7, [4, 3]), (2, [1, 1])]
)
def test_views_none_gives_two_contiguous_halves(n_features, expected_widths):
    """Check views=None splits X in two, the first half one wider for odd widths."""
    X = _data(n_features=n_features)
    estimator, blocks = _fitted(None, X)
    assert [block.shape[1] for block in blocks] == expected_widths
    assert_array_equal(np.hstack(blocks), X)
    assert estimator.view_names_ == ["view0", "view1"]
    assert estimator.n_features_per_view_ == expected_widths
    assert estimator.n_features_in_ == n_features


@pytest.mark.parametrize(
    "n_features, n_views, expected_widths",
    [(7, 3, [3, 2, 2]), (9, 3, [3, 3, 3]), (5, 5, [1] * 5), (11, 4, [3, 3, 3, 2])],
)
def test_views_int_gives_balanced_contiguous_blocks(
    n_features, n_views, expected_widths
):
    """Check views=K gives K contiguous blocks whose widths differ by at most one."""
    X = _data(n_features=n_features)
    estimator, blocks = _fitted(n_views, X)
    assert [block.shape[1] for block in blocks] == expected_widths
    assert_array_equal(np.hstack(blocks), X)
    assert estimator.view_names_ == [f"view{k}" for k in range(n_views)]


@settings(deadline=None, max_examples=25)
@given(data=st.data())
def test_int_views_concatenate_back_to_x(data):
    """Check the blocks of views=K, concatenated in order, reproduce X."""
    n_features = data.draw(st.integers(2, 40), label="n_features")
    n_views = data.draw(st.integers(2, n_features), label="n_views")
    n_samples = data.draw(st.integers(1, 5), label="n_samples")
    dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
    X = data.draw(
        arrays(
            dtype,
            (n_samples, n_features),
            elements=st.floats(-1e6, 1e6, allow_nan=False, width=32),
        ),
        label="X",
    )
    estimator, blocks = _fitted(n_views, X)
    widths = [block.shape[1] for block in blocks]
    assert len(blocks) == n_views
    assert max(widths) - min(widths) <= 1
    assert widths == sorted(widths, reverse=True)
    assert_array_equal(np.hstack(blocks), X)
    assert all(block.dtype == X.dtype for block in blocks)
    assert all(np.shares_memory(block, X) for block in blocks)


@settings(deadline=None, max_examples=25)
@given(data=st.data())
def test_list_of_positions_selects_exactly_those_columns(data):
    """Check a random partition of the columns gives blocks X[:, positions]."""
    n_features = data.draw(st.integers(2, 20), label="n_features")
    order = data.draw(st.permutations(range(n_features)), label="order")
    n_views = data.draw(st.integers(2, n_features), label="n_views")
    cuts = sorted(
        data.draw(
            st.sets(
                st.integers(1, n_features - 1),
                min_size=n_views - 1,
                max_size=n_views - 1,
            ),
            label="cuts",
        )
    )
    groups = np.split(np.asarray(order), cuts)
    X = data.draw(
        arrays(
            np.float64,
            (3, n_features),
            elements=st.floats(-1e3, 1e3, allow_nan=False),
        ),
        label="X",
    )
    estimator, blocks = _fitted([list(g) for g in groups], X)
    for group, block in zip(groups, blocks, strict=True):
        assert_array_equal(block, X[:, group])
    assert estimator.n_features_per_view_ == [len(g) for g in groups]


def test_selectors_of_every_kind_on_an_array():
    """Check slices, int arrays, masks, scalar ints and callables select columns."""
    X = _data(n_features=8)
    mask = np.zeros(8, dtype=bool)
    mask[[5, 6]] = True
    views = [
        slice(0, 2),
        np.array([2, 3]),
        [4],
        mask,
        -1,
    ]
    estimator, blocks = _fitted(views, X)
    expected = [X[:, 0:2], X[:, 2:4], X[:, [4]], X[:, [5, 6]], X[:, [7]]]
    for block, want in zip(blocks, expected, strict=True):
        assert_array_equal(block, want)
    assert estimator.n_features_per_view_ == [2, 2, 1, 2, 1]

    def last_three(X):
        return np.arange(X.shape[1]) >= X.shape[1] - 3

    _, blocks = _fitted([lambda X: slice(0, 5), last_three], X)
    assert_array_equal(blocks[0], X[:, :5])
    assert_array_equal(blocks[1], X[:, 5:])

    mask_list = [True] * 5 + [False] * 3
    _, blocks = _fitted([mask_list, [not m for m in mask_list]], X)
    assert_array_equal(blocks[0], X[:, :5])
    assert_array_equal(blocks[1], X[:, 5:])


def test_dict_views_name_the_views():
    """Check a dict of selectors gives view names in insertion order."""
    X = _data(n_features=5)
    estimator, blocks = _fitted({"text": [3, 4], "image": slice(0, 3)}, X)
    assert estimator.view_names_ == ["text", "image"]
    assert_array_equal(blocks[0], X[:, 3:])
    assert_array_equal(blocks[1], X[:, :3])


def test_list_of_column_names_names_the_views():
    """Check views=[name, name] names the views after the columns, others view<k>."""
    frame = _vector_frame(widths=(3, 2), dtype=np.float64).rename(
        columns={"emb0": "minilm", "emb1": "e5"}
    )
    estimator, blocks = _fitted(["e5", "minilm"], frame)
    assert estimator.view_names_ == ["e5", "minilm"]
    assert resolve_view(estimator, "minilm") == 1
    assert_array_equal(view_feature_names(estimator, "e5"), ["e50", "e51"])
    assert_array_equal(blocks[1], np.stack(frame["minilm"]))
    assert_array_equal(
        check_view_block(estimator, np.stack(frame["e5"]), "e5"),
        np.stack(frame["e5"]),
    )

    scalars = pd.DataFrame(_data(n_features=3), columns=["a", "b", "c"])
    estimator, _ = _fitted(["c", "a", "b"], scalars)
    assert estimator.view_names_ == ["c", "a", "b"]
    # a view of several columns has no single name: pass a dict to name it
    estimator, _ = _fitted([["a", "b"], "c"], scalars)
    assert estimator.view_names_ == ["view0", "view1"]
    estimator, _ = _fitted([["a"], ["b", "c"]], scalars)
    assert estimator.view_names_ == ["view0", "view1"]
    with pytest.raises(ValueError, match=r"X column\(s\) \['a'\] are selected more"):
        _fitted(["a", "a", "b", "c"], scalars)


def test_named_views_reach_translate_and_feature_names():
    """Check views=[names] lets aligners and concatenators name views by column."""
    from skembed import EmbeddingConcatenator, ProcrustesAligner

    rng = np.random.default_rng(0)
    minilm = rng.standard_normal((40, 4))
    rotation = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    frame = pd.DataFrame({"minilm": list(minilm), "e5": list(minilm @ rotation)})
    aligner = ProcrustesAligner(views=["minilm", "e5"]).fit(frame)
    assert aligner.view_names_ == ["minilm", "e5"]
    assert_allclose(
        aligner.translate(np.stack(frame["e5"]), "e5", "minilm"), minilm, atol=1e-8
    )
    assert_allclose(
        aligner.transform_view(np.stack(frame["e5"]), "e5"),
        aligner.transform_view(minilm, "minilm"),
        atol=1e-8,
    )
    concatenator = EmbeddingConcatenator(views=["e5", "minilm"]).fit(frame)
    names = concatenator.get_feature_names_out()
    assert names[0].startswith("e5__") and names[-1].startswith("minilm__")


def test_dataframe_selection_by_names_callables_and_label_slices():
    """Check column names, make_column_selector and label slices on a DataFrame."""
    X = _data(n_features=5)
    frame = pd.DataFrame(X, columns=["a0", "a1", "b0", "b1", "b2"])
    for views in [
        {"a": ["a0", "a1"], "b": make_column_selector(pattern="^b")},
        {"a": slice("a0", "a1"), "b": slice("b0", "b2")},
        {"a": "a0", "b": ["a1", "b0", "b1", "b2"]},
        {"a": pd.Index(["a0", "a1"]), "b": np.array(["b0", "b1", "b2"])},
    ]:
        estimator, blocks = _fitted(views, frame)
        assert_array_equal(np.hstack(blocks), X)
        assert estimator.n_features_in_ == 5
        assert_array_equal(estimator.feature_names_in_, frame.columns)
        assert estimator.view_names_ == ["a", "b"]


def test_dataframe_with_array_columns_splits_over_columns():
    """Check views=None / int count DataFrame columns, not vector entries."""
    frame = _vector_frame(widths=(3, 2))
    estimator, blocks = _fitted(None, frame)
    assert [block.shape for block in blocks] == [(5, 3), (5, 2)]
    assert_array_equal(blocks[0], np.stack(frame["emb0"]))
    assert_array_equal(blocks[1], np.stack(frame["emb1"]))
    assert estimator.n_features_in_ == 2
    assert_array_equal(estimator.feature_names_in_, ["emb0", "emb1"])
    assert estimator.n_features_per_view_ == [3, 2]

    # Each array-valued column is one model: the two halves of views=None
    # put emb0 and emb1 in one view ([5, 4]) and raised nothing.
    frame = _vector_frame(widths=(3, 2, 4))
    with pytest.raises(
        ValueError,
        match=re.escape("views=['emb0', 'emb1', 'emb2'] (or views=3)"),
    ):
        _fitted(None, frame)
    estimator, blocks = _fitted(3, frame)
    assert estimator.n_features_per_view_ == [3, 2, 4]
    estimator, blocks = _fitted(["emb0", "emb1", "emb2"], frame)
    assert estimator.view_names_ == ["emb0", "emb1", "emb2"]
    frame["s"] = np.arange(5.0)
    with pytest.raises(ValueError, match="place the other columns in views"):
        _fitted(None, frame)


def test_dataframe_mixing_array_and_scalar_columns():
    """Check one-name selectors, name lists and scalar columns next to vectors."""
    frame = _vector_frame(widths=(3, 2), dtype=np.float64)
    frame["s0"] = np.arange(5.0)
    frame["s1"] = np.arange(5.0) * 2
    estimator, blocks = _fitted({"text": "emb0", "rest": ["emb1", "s0", "s1"]}, frame)
    assert estimator.view_names_ == ["text", "rest"]
    assert estimator.n_features_per_view_ == [3, 4]
    expected = np.column_stack([np.stack(frame["emb1"]), frame["s0"], frame["s1"]])
    assert_array_equal(blocks[1], expected)

    # adjacent scalar columns are one block: the view is a slice of it
    estimator, blocks = _fitted({"a": ["emb0", "emb1"], "b": ["s0", "s1"]}, frame)
    assert blocks[1].base is not None
    assert_array_equal(blocks[1], frame[["s0", "s1"]].to_numpy())


@pytest.mark.parametrize("fixed_size", [True, False])
def test_arrow_list_columns(fixed_size):
    """Check Arrow list and fixed-size list columns are array-valued columns."""
    frame, text, image = _arrow_frame(fixed_size)
    estimator, blocks = _fitted(None, frame)
    assert_array_equal(blocks[0], text)
    assert_array_equal(blocks[1], image)
    assert blocks[0].dtype == np.float32
    assert estimator.n_features_per_view_ == [2, 3]
    estimator, blocks = _fitted({"i": "image", "t": "text"}, frame)
    assert_array_equal(blocks[0], image)
    transformed = check_views(estimator, frame.iloc[1:], reset=False)
    assert_array_equal(transformed[1], text[1:])


def test_list_of_arrays_and_nested_lists():
    """Check a list/tuple of 2-D arrays is one view per item, nested lists an array."""
    X = _data(n_features=7)
    for container in (list, tuple):
        estimator, blocks = _fitted(None, container([X[:, :2], X[:, 2:]]))
        assert blocks[0] is not None
        assert estimator.n_features_per_view_ == [2, 5]
        assert estimator.n_features_in_ == 7
        assert not hasattr(estimator, "feature_names_in_")
        assert np.shares_memory(blocks[1], X)

    estimator, blocks = _fitted(None, X.tolist())
    assert_array_equal(np.hstack(blocks), X)
    assert estimator.n_features_per_view_ == [4, 3]

    estimator, blocks = _fitted(None, [X[:, :2].tolist(), pd.DataFrame(X[:, 2:])])
    assert_array_equal(np.hstack(blocks), X)


@pytest.mark.parametrize("container", [list, tuple])
def test_an_empty_list_of_views_names_the_layout(container):
    """Check that X = [] says what a list of views holds.

    scikit-learn read it as a 1-D array and suggested a reshape.
    """
    from skembed import ProcrustesAligner

    fitted = ProcrustesAligner().fit([_data()[:, :2], _data(seed=1)[:, :2]])
    for call in (ProcrustesAligner().fit, fitted.transform):
        with pytest.raises(ValueError, match=r"X is an empty \w+; pass the views"):
            call(container())


def test_list_of_1d_arrays_is_refused_as_ambiguous():
    """Check a list of 1-D arrays raises instead of being read as rows of one X."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(6), rng.standard_normal(6)
    for X in ([a, b], (a, b), [pd.Series(a), pd.Series(b)]):
        with pytest.raises(ValueError, match=r"X\[0\] is a 1-D array.*np\.vstack"):
            _fitted(None, X)
    # one 1-D array among Python-list rows would be read as a row, too
    with pytest.raises(ValueError, match=r"X\[1\] is a 1-D array \(shape \(6,\)\)"):
        _fitted(None, [a.tolist(), b])
    with pytest.raises(ValueError, match="reshape"):
        ViewsEstimator().fit([a, b])
    # the fixes the message gives work
    _, blocks = _fitted(None, np.vstack([a, b]))
    assert [block.shape for block in blocks] == [(2, 3), (2, 3)]
    estimator, blocks = _fitted(None, [a.reshape(1, -1), b.reshape(1, -1)])
    assert estimator.n_features_per_view_ == [6, 6]
    _, blocks = _fitted(None, [a[:, None], b[:, None]])
    assert [block.shape for block in blocks] == [(6, 1), (6, 1)]
    # plain nested lists of scalars stay one 2-D X, as in scikit-learn
    _, blocks = _fitted(None, [a.tolist(), b.tolist()])
    assert_array_equal(np.hstack(blocks), np.vstack([a, b]))


def test_list_items_may_be_columns_of_vectors():
    """Check a list of array-valued Series is one view per Series."""
    frame = _vector_frame(widths=(3, 2), dtype=np.float64)
    estimator, blocks = _fitted(None, [frame["emb0"], frame["emb1"]])
    assert estimator.n_features_per_view_ == [3, 2]
    assert_array_equal(blocks[1], np.stack(frame["emb1"]))


def test_list_items_may_be_dataframes_with_array_columns():
    """Check a list item that is a DataFrame of vectors becomes one block."""
    frame = _vector_frame(widths=(3, 2), dtype=np.float64)
    other = _data(n_samples=5, n_features=4)
    estimator, blocks = _fitted(None, [frame, other])
    assert estimator.n_features_per_view_ == [5, 4]
    assert_array_equal(blocks[0][:, :3], np.stack(frame["emb0"]))


def test_list_of_dataframes_keeps_their_column_names():
    """Check a list of named dataframes names the features and guards their order."""
    first = pd.DataFrame(_data(n_features=3), columns=["a", "b", "c"])
    second = _vector_frame(n_samples=6, widths=(2,), dtype=np.float64)
    estimator = ViewsEstimator().fit([first, second])
    assert_array_equal(estimator.feature_names_in_, ["a", "b", "c", "emb00", "emb01"])
    assert_array_equal(view_feature_names(estimator, 1), ["emb00", "emb01"])
    # arrays carry no names and are taken as they are
    estimator.transform([first.to_numpy(), np.stack(second["emb0"])])
    renamed = first.rename(columns={"c": "z"})
    with pytest.raises(
        ValueError, match=r"X\[0\] should match .* got \['a', 'b', 'z'\]"
    ):
        estimator.transform([renamed, second])
    # swapped views of equal widths are an error, not a silent mix-up
    left = pd.DataFrame(_data(n_features=2), columns=["a0", "a1"])
    right = pd.DataFrame(_data(n_features=2, seed=1), columns=["b0", "b1"])
    swapped = ViewsEstimator().fit([left, right])
    with pytest.raises(ValueError, match=r"X\[0\].*same order as in fit"):
        swapped.transform([right, left])


def test_list_of_frames_after_a_fit_on_one_frame_checks_each_view_by_its_names():
    """Check per-view frames against the views of a frame fitted as a whole.

    The names of view k were taken as the next block of the fitted frame's
    columns, right only after a fit on a list: views selecting columns out of
    order refused their own frames and accepted swapped ones (transforming
    the wrong columns), and vector columns refused their own entries.
    """
    frame = pd.DataFrame(_data(n_features=4), columns=["a", "b", "c", "d"])
    est = ViewsEstimator(views={"x": ["a", "c"], "y": ["b", "d"]}).fit(frame)
    expected = est.transform(frame)
    right = est.transform([frame[["a", "c"]], frame[["b", "d"]]])
    assert_array_equal(right, expected)
    with pytest.raises(ValueError, match=r"fitted with \['a', 'c'\] for view 0"):
        est.transform([frame[["a", "b"]], frame[["c", "d"]]])
    vectors = _vector_frame(widths=(2, 2), dtype=np.float64)
    est = ViewsEstimator(views=["emb0", "emb1"]).fit(vectors)
    assert_array_equal(
        est.transform([vectors[["emb0"]], vectors[["emb1"]]]), est.transform(vectors)
    )
    with pytest.raises(ValueError, match=r"fitted with \['emb00', 'emb01'\]"):
        est.transform([vectors[["emb1"]], vectors[["emb0"]]])


def test_list_of_dataframes_without_distinct_names_has_no_names():
    """Check repeated or non-string names across list items give no names."""
    left = pd.DataFrame(_data(n_features=2), columns=["u", "v"])
    estimator = ViewsEstimator().fit([left, left.copy()])
    assert not hasattr(estimator, "feature_names_in_")
    assert_array_equal(view_feature_names(estimator, 1), ["x2", "x3"])
    mixed = ViewsEstimator().fit([left, _data(n_features=2)])
    assert not hasattr(mixed, "feature_names_in_")
    numbered = ViewsEstimator().fit([pd.DataFrame(_data(n_features=2)), left])
    assert not hasattr(numbered, "feature_names_in_")


def test_allow_unequal_rows_for_unpaired_lists():
    """Check allow_unequal_rows lets list items have different row counts."""
    X = [_data(n_samples=4, n_features=2), _data(n_samples=7, n_features=3)]
    estimator, blocks = _fitted(None, X, allow_unequal_rows=True)
    assert [block.shape for block in blocks] == [(4, 2), (7, 3)]
    with pytest.raises(ValueError, match=r"different numbers of rows \(\[4, 7\]\)"):
        _fitted(None, X)


# dtype and copies


def test_float_arrays_are_split_without_copy():
    """Check blocks of float arrays are views: slices, ranges, steps and F-order."""
    for dtype in (np.float32, np.float64):
        X = _data(n_samples=50, n_features=768, dtype=dtype)
        for views in [
            None,
            5,
            [slice(0, 100), np.arange(100, 768)],
            {"even": np.arange(0, 768, 2), "odd": list(range(1, 768, 2))},
        ]:
            _, blocks = _fitted(views, X)
            assert all(np.shares_memory(block, X) for block in blocks)
            assert all(block.dtype == dtype for block in blocks)
    X = np.asfortranarray(_data(n_features=6))
    _, blocks = _fitted(None, X)
    assert all(np.shares_memory(block, X) for block in blocks)
    estimator, _ = _fitted(None, _data(n_features=6))
    X_new = _data(n_features=6, seed=1)
    assert all(
        np.shares_memory(block, X_new)
        for block in check_views(estimator, X_new, reset=False)
    )


def test_non_contiguous_positions_select_correct_values():
    """Check unordered int selectors give the right values (a copy is needed)."""
    X = _data(n_features=4)
    _, blocks = _fitted([[3, 0], [2, 1]], X)
    assert_array_equal(blocks[0], X[:, [3, 0]])
    assert_array_equal(blocks[1], X[:, [2, 1]])


def test_input_is_not_mutated():
    """Check check_views leaves every form of X unchanged."""
    X = _data(n_features=4)
    frame = _vector_frame()
    X_copy, frame_copy = X.copy(), frame.copy()
    _fitted([[3, 0], [2, 1]], X)
    _fitted(None, frame)
    assert_array_equal(X, X_copy)
    pd.testing.assert_frame_equal(frame, frame_copy)


def test_dtypes_follow_the_one_dtype_rule():
    """Check float32 stays float32 only when all input is float32."""
    X32 = _data(dtype=np.float32)
    _, blocks = _fitted(None, X32)
    assert {block.dtype for block in blocks} == {np.dtype(np.float32)}
    for X in (
        _data().astype(np.int64),
        _data() > 0,
        _data().astype(np.float16),
        [X32[:, :3], X32[:, 3:].astype(np.float64)],
        pd.DataFrame({"a": X32[:, 0], "b": X32[:, 1].astype(np.float64)}),
    ):
        _, blocks = _fitted(None, X)
        assert {block.dtype for block in blocks} == {np.dtype(np.float64)}
    _, blocks = _fitted(None, [X32[:, :3], X32[:, 3:]])
    assert {block.dtype for block in blocks} == {np.dtype(np.float32)}
    estimator = ViewsEstimator()
    blocks = check_views(estimator, X32, reset=True, dtype=np.float64)
    assert {block.dtype for block in blocks} == {np.dtype(np.float64)}
    mixed = _vector_frame(dtype=np.float32)
    mixed["s"] = np.arange(5.0)
    _, blocks = _fitted(3, mixed)
    assert {block.dtype for block in blocks} == {np.dtype(np.float64)}


# Errors


def test_one_feature_is_rejected():
    """Check an X with one feature (or one DataFrame column) is rejected."""
    msg = "needs at least 2 features, got n_features = 1"
    with pytest.raises(ValueError, match=msg):
        _fitted(None, _data(n_features=1))
    with pytest.raises(ValueError, match=msg):
        _fitted(None, _vector_frame(widths=(4,)))


@pytest.mark.parametrize(
    "views, error, match",
    [
        (1, ValueError, "views=1 defines fewer than 2 views"),
        ([slice(0, 7)], ValueError, r"views defines 1 view\(s\), but at least 2"),
        ({"only": slice(0, 7)}, ValueError, "at least 2 are needed"),
        (9, ValueError, "views=9 needs at least 9 features"),
        ("abc", TypeError, "views must be None, an int >= 2"),
        (True, TypeError, "views must be None, an int >= 2"),
        ({0: [0], 1: [1]}, TypeError, "keys .* are not strings"),
        (
            [[0, 1, 2], [2, 3, 4, 5, 6]],
            ValueError,
            r"views overlap: X column\(s\) \[2\] are selected more than once "
            r"\(by views \['view0', 'view1'\]\)",
        ),
        (
            [[0, 1, 2], [3, 4]],
            ValueError,
            r"X column\(s\) \[5, 6\] belong to no view.*ColumnTransformer",
        ),
        ([[], slice(0, 7)], ValueError, r"views\[0\] selects no columns"),
        ([slice(3, 3), slice(0, 7)], ValueError, r"views\[0\] selects no columns"),
        (
            [np.zeros(7, dtype=bool), slice(0, 7)],
            ValueError,
            r"views\[0\] selects no columns",
        ),
        ([np.ones(3, dtype=bool), [0]], ValueError, "boolean mask of length 3"),
        ([np.array([]), slice(0, 7)], ValueError, r"views\[0\] selects no columns"),
        ([[0, 9], [1]], ValueError, r"selects column positions \[9\]"),
        ([{0, 1}, [2]], TypeError, r"views\[0\] is not a column selector"),
        ([0.5, [2]], TypeError, r"views\[0\] is not a column selector"),
        ([[0, "a"], [2]], TypeError, r"views\[0\] mixes kinds"),
        ([lambda X: lambda X: 0, [2]], TypeError, "returned another callable"),
        (
            [["a"], [0]],
            ValueError,
            r"views\[0\] selects columns by name \(\['a'\]\), but X has no string "
            "column names",
        ),
        (["a", slice(0, 7)], ValueError, "X has no string column names"),
        ([slice("a", "c"), [0]], ValueError, "X has no string column names"),
        ([np.array([0.5]), [0]], TypeError, "an array of dtype float64"),
        (
            [[0], [1]],
            ValueError,
            r"X column\(s\) \[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, \.\.\. \(18 in total\)\]",
        ),
    ],
)
def test_bad_views_raise_clear_errors(views, error, match):
    """Check every malformed `views` raises an error naming views and the fix."""
    n_features = 20 if "18 in total" in match else 7
    with pytest.raises(error, match=match):
        _fitted(views, _data(n_features=n_features))


def test_dataframe_selector_errors_name_the_columns():
    """Check unknown names, unmatched callables and overlaps name the columns."""
    frame = pd.DataFrame(_data(n_features=3), columns=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"does not have: \['z'\]"):
        _fitted({"u": ["a", "z"], "v": ["b", "c"]}, frame)
    with pytest.raises(ValueError, match=r"views\['v'\] selects no columns"):
        _fitted({"u": ["a", "b", "c"], "v": make_column_selector(pattern="^q")}, frame)
    with pytest.raises(ValueError, match=r"X column\(s\) \['b'\] are selected"):
        _fitted([["a", "b"], ["b", "c"]], frame)
    with pytest.raises(ValueError, match=r"X column\(s\) \['c'\] belong to no view"):
        _fitted([["a"], ["b"]], frame)
    duplicated = pd.DataFrame(_data(n_features=3), columns=["a", "a", "c"])
    with pytest.raises(
        ValueError, match=r"1 column names used more than once \(\[.a.\]\)"
    ):
        _fitted([["a"], ["c"]], duplicated)


def test_failing_callable_selector_names_the_view():
    """Check an error raised by a callable selector names `views`, the view and
    what the callable must return, and chains the original error."""
    X = _data(n_features=4)
    # make_column_selector refuses a numpy X with a bare ValueError of its own.
    with pytest.raises(
        ValueError, match=r"views\[1\] is a callable that raised"
    ) as info:
        _fitted([[0, 1], make_column_selector(dtype_include=float)], X)
    message = str(info.value)
    assert "can only be applied to pandas dataframes" in message
    assert "when called on X (a ndarray)" in message
    assert "return a slice, an int array, a boolean mask or column names" in message
    assert isinstance(info.value.__cause__, ValueError)

    def missing_column(X):
        return X["q"]

    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match=r"views\['v'\] .* raised KeyError") as info:
        _fitted({"u": ["a", "b"], "v": missing_column}, frame)
    assert isinstance(info.value.__cause__, KeyError)

    def wrong_call(X):
        return X.columns.startswith("c")

    with pytest.raises(ValueError, match=r"views\[0\] .* raised AttributeError"):
        _fitted([wrong_call, ["d"]], frame)

    def bad_argument(X):
        return len(X, 1)

    with pytest.raises(TypeError, match=r"views\[0\] .* raised TypeError"):
        _fitted([bad_argument, ["d"]], frame)


def test_list_x_errors():
    """Check list X needs views=None, two items, 2-D items and equal row counts."""
    X = _data(n_features=4)
    with pytest.raises(ValueError, match="already holds one array per view.*views=2"):
        _fitted(2, [X[:, :2], X[:, 2:]])
    with pytest.raises(ValueError, match="set views=None"):
        _fitted([[0], [1]], [X[:, :2], X[:, 2:]])
    with pytest.raises(ValueError, match="X is a list of 1 array"):
        _fitted(None, [X])
    with pytest.raises(ValueError, match=r"X\[1\] is a 1-D array"):
        _fitted(None, [X, X[:, 0]])
    with pytest.raises(ValueError, match=r"X\[1\] is a 1-D array"):
        _fitted(None, [X, [1.0, 2.0]])
    # Two 3-D arrays were read as one 4-D array ("Found array with dim 4").
    cube = X.reshape(-1, 2, 2)
    with pytest.raises(ValueError, match=r"X\[0\] is a 3-D array.*2-D array"):
        _fitted(None, [cube, cube])
    with pytest.raises(ValueError, match=r"X\[0\] is a 3-D array"):
        _fitted(None, [cube.tolist(), cube.tolist()])
    with pytest.raises(ValueError, match=r"X\[1\] is a 3-D array"):
        _fitted(None, [X, cube])
    with pytest.raises(ValueError, match="different numbers of rows"):
        _fitted(None, [X, X[:3]])
    with pytest.raises(ValueError, match="inhomogeneous"):
        _fitted(None, [[[1.0, 2.0], [3.0]], [[1.0], [2.0]]])


def test_array_valued_column_errors():
    """Check ragged, mixed, missing and non-numeric vectors are rejected clearly."""
    ragged = pd.DataFrame({"t": [[1.0, 2.0], [1.0]], "i": [[1.0], [2.0]]})
    with pytest.raises(
        ValueError,
        match=r"X column 't' holds vectors of different lengths \(2 in row 0, 1 in "
        r"row 1\)",
    ):
        _fitted(None, ragged)
    mixed = pd.DataFrame({"t": [[1.0, 2.0], 3.0], "i": [[1.0], [2.0]]})
    with pytest.raises(ValueError, match="X column 't' mixes vectors and other"):
        _fitted(None, mixed)
    missing = pd.DataFrame({"t": [None, [1.0, 2.0]], "i": [[1.0], [2.0]]})
    with pytest.raises(ValueError, match=r"X column 't' mixes .* \(row 0 holds None"):
        _fitted(None, missing)
    strings = pd.DataFrame({"t": [["a", "b"], ["c", "d"]], "i": [[1.0], [2.0]]})
    with pytest.raises(ValueError, match="X column 't' holds non-numeric vectors"):
        _fitted(None, strings)
    nested = pd.DataFrame({"t": [[[1.0]], [[2.0]]], "i": [[1.0], [2.0]]})
    with pytest.raises(ValueError, match="must be a 1-D vector"):
        _fitted(None, nested)
    scalar_text = _vector_frame(n_samples=2)
    scalar_text["colour"] = ["red", "blue"]
    with pytest.raises(ValueError, match=r"X columns \['colour'\] are not numeric"):
        _fitted(None, scalar_text)
    empty = pd.DataFrame({"t": [[], []], "i": [[1.0], [2.0]]})
    with pytest.raises(ValueError, match=r"views\[0\] selects only empty vectors"):
        _fitted(None, empty)


def test_arrow_column_errors():
    """Check ragged, missing and non-numeric Arrow vectors are rejected."""
    pa = pytest.importorskip("pyarrow")
    list_type = pd.ArrowDtype(pa.list_(pa.float64()))
    other = pd.Series([[1.0], [2.0]], dtype=list_type)
    ragged = pd.DataFrame(
        {"t": pd.Series([[1.0, 2.0], [1.0]], dtype=list_type), "i": other}
    )
    with pytest.raises(ValueError, match="X column 't' holds vectors of different"):
        _fitted(None, ragged)
    missing = pd.DataFrame({"t": pd.Series([[1.0], None], dtype=list_type), "i": other})
    with pytest.raises(ValueError, match="X column 't' has a missing vector in row 1"):
        _fitted(None, missing)
    text = pd.DataFrame(
        {
            "t": pd.Series([["a"], ["b"]], dtype=pd.ArrowDtype(pa.list_(pa.string()))),
            "i": other,
        }
    )
    with pytest.raises(ValueError, match="X column 't' holds non-numeric vectors"):
        _fitted(None, text)


def test_non_finite_non_numeric_sparse_and_empty_inputs():
    """Check NaN, inf, strings, sparse and empty inputs raise clear errors.

    NaN and infinity get one message on every path (array, list, frame), not
    scikit-learn's, which advises estimators that accept NaN.
    """
    X = _data(n_features=4)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    finite = r"^Input X contains NaN or infinity .* ViewsEstimator needs finite"
    with pytest.raises(ValueError, match=finite):
        _fitted(None, X_nan)
    X_inf = X.copy()
    X_inf[1, 3] = np.inf
    with pytest.raises(ValueError, match=finite):
        _fitted(None, [X_inf[:, :2], X_inf[:, 2:]])
    frame = _vector_frame(n_samples=2, dtype=np.float64)
    frame.at[1, "emb0"] = np.array([np.nan, 1.0, 2.0])
    with pytest.raises(ValueError, match=finite):
        _fitted(None, frame)
    estimator, _ = _fitted(None, X)
    with pytest.raises(ValueError, match=finite):
        check_view_block(estimator, X_nan[:, :2], 0)
    with pytest.raises(ValueError, match="X holds non-numeric values"):
        _fitted(None, np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match=r"X columns \['b'\] are not numeric"):
        _fitted(None, pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}))
    with pytest.raises(TypeError, match="dense data is required"):
        _fitted(None, sparse.csr_matrix(X))
    with pytest.raises(TypeError, match=r"X\[0\] is a sparse matrix.*dense data"):
        _fitted(None, [sparse.csr_matrix(X), X])
    with pytest.raises(ValueError, match="0 sample"):
        _fitted(None, np.empty((0, 4)))
    with pytest.raises(ValueError, match="0 feature"):
        _fitted(None, np.empty((3, 0)))
    with pytest.raises(ValueError, match="0 sample"):
        _fitted(None, _vector_frame().iloc[:0])


# Other dataframe libraries (polars, pyarrow), read through narwhals


def _library_frame(kind, widths=(3, 2), n_samples=5):
    """The data of ``_vector_frame(widths)`` as a polars or pyarrow frame."""
    pandas_frame = _vector_frame(n_samples=n_samples, widths=widths)
    arrays = {name: np.stack(pandas_frame[name]) for name in pandas_frame.columns}
    if kind.startswith("polars"):
        pl = pytest.importorskip("polars")
        return pandas_frame, pl.DataFrame(
            {
                name: array if kind == "polars-array" else array.tolist()
                for name, array in arrays.items()
            },
            schema={
                name: pl.Array(pl.Float32, array.shape[1])
                if kind == "polars-array"
                else pl.List(pl.Float32)
                for name, array in arrays.items()
            },
        )
    pa = pytest.importorskip("pyarrow")
    columns = {}
    for name, array in arrays.items():
        values = pa.array(array.ravel())
        if kind == "arrow-fixed":
            columns[name] = pa.FixedSizeListArray.from_arrays(values, array.shape[1])
        else:
            offsets = pa.array(np.arange(0, array.size + 1, array.shape[1]), pa.int32())
            columns[name] = pa.ListArray.from_arrays(offsets, values)
    return pandas_frame, pa.table(columns)


@pytest.mark.parametrize(
    "kind", ["polars-array", "polars-list", "arrow-fixed", "arrow-list"]
)
def test_polars_and_arrow_vector_columns_split_like_pandas(kind):
    """Check polars Array/List and Arrow list columns split exactly as in pandas."""
    pandas_frame, frame = _library_frame(kind)
    for views in [None, {"i": "emb1", "t": "emb0"}, ["emb1", "emb0"]]:
        expected_estimator, expected = _fitted(views, pandas_frame)
        estimator, blocks = _fitted(views, frame)
        for block, want in zip(blocks, expected, strict=True):
            assert block.dtype == np.float32
            assert_array_equal(block, want)
        assert estimator.view_names_ == expected_estimator.view_names_
        assert estimator.n_features_in_ == 2
        assert_array_equal(estimator.feature_names_in_, ["emb0", "emb1"])
        assert estimator.n_features_per_view_ == expected_estimator.n_features_per_view_
        assert_array_equal(
            view_feature_names(estimator, 0), view_feature_names(expected_estimator, 0)
        )
        # a later call re-splits any library's frame with the fitted layout
        for later in (frame.slice(1, 3), pandas_frame.iloc[1:4]):
            transformed = check_views(estimator, later, reset=False)
            assert_array_equal(transformed[0], expected[0][1:4])


@pytest.mark.parametrize("library", ["polars", "pyarrow"])
def test_polars_and_arrow_numeric_frames(library):
    """Check numeric polars frames and Arrow tables select, name and keep float32."""
    X = np.asfortranarray(_data(n_features=5, dtype=np.float32))
    names = ["a0", "a1", "b0", "b1", "b2"]
    if library == "polars":
        pl = pytest.importorskip("polars")
        frame = pl.DataFrame(X, schema=names)
    else:
        pa = pytest.importorskip("pyarrow")
        frame = pa.table({name: X[:, j] for j, name in enumerate(names)})
    for views, widths in [
        (None, [3, 2]),
        ({"a": ["a0", "a1"], "b": slice("b0", "b2")}, [2, 3]),
        (2, [3, 2]),
    ]:
        estimator, blocks = _fitted(views, frame)
        assert_array_equal(np.hstack(blocks), X)
        assert blocks[0].dtype == np.float32
        assert_array_equal(estimator.feature_names_in_, names)
        assert estimator.n_features_per_view_ == widths
    estimator, _ = _fitted(["a0", ["a1", "b0", "b1", "b2"]], frame)
    assert_array_equal(view_feature_names(estimator, 1), names[1:])
    transformed = check_views(estimator, pd.DataFrame(X, columns=names), reset=False)
    assert_array_equal(transformed[1], X[:, 1:])
    if library == "polars":
        # a Fortran-ordered float frame reaches the views without a copy
        assert all(np.shares_memory(block, X) for block in blocks)


def test_polars_frames_mixing_scalar_and_vector_columns():
    """Check scalar polars columns next to vector columns, as in pandas."""
    pl = pytest.importorskip("polars")
    pandas_frame = _vector_frame(widths=(3, 2), dtype=np.float64)
    pandas_frame["s0"] = np.arange(5.0)
    pandas_frame["s1"] = np.arange(5.0) * 2
    frame = pl.from_pandas(
        pandas_frame.assign(
            emb0=pandas_frame["emb0"].map(list), emb1=pandas_frame["emb1"].map(list)
        )
    )
    views = {"text": "emb0", "rest": ["emb1", "s0", "s1"]}
    _, expected = _fitted(views, pandas_frame)
    estimator, blocks = _fitted(views, frame)
    for block, want in zip(blocks, expected, strict=True):
        assert_array_equal(block, want)
    assert_array_equal(
        view_feature_names(estimator, "rest"), ["emb10", "emb11", "s0", "s1"]
    )
    # adjacent scalar columns are one block: the view is a slice of it
    _, blocks = _fitted({"a": ["emb0", "emb1"], "b": ["s0", "s1"]}, frame)
    assert blocks[1].base is not None


def test_pandas_schema_read_per_distinct_dtype_equals_narwhals():
    """Check the schema read once per distinct pandas dtype is narwhals' own."""
    pa = pytest.importorskip("pyarrow")
    nw = pytest.importorskip("narwhals.stable.v2")
    frame = pd.DataFrame(
        {
            "a": [1.0, 2.0],
            "b": [[1.0], [2.0]],
            "c": np.float32([1, 2]),
            "d": [3.0, 4.0],
            "e": ["x", "y"],
            "f": [1, "y"],
            "g": pd.Categorical(["u", "v"]),
            "h": pd.array([1, None], dtype="Int64"),
            "i": pd.Series([[1.0], [2.0]], dtype=pd.ArrowDtype(pa.list_(pa.float64()))),
            "j": [1.0, 2.0],
            5: [1, 2],
            6: np.float32([3, 4]),
        }
    )
    wrapped = nw.from_native(frame, eager_only=True)
    assert _frame_schema(wrapped) == wrapped.schema
    assert list(_frame_schema(wrapped)) == list(frame.columns)


def _data_address(array):
    return array.__array_interface__["data"][0]


def test_arrow_backed_vector_columns_are_not_copied():
    """Check fixed-size float vectors of polars, pyarrow and pandas are not copied."""
    pa = pytest.importorskip("pyarrow")
    _, table = _library_frame("arrow-fixed", n_samples=50)
    _, blocks = _fitted(None, table)
    values = table.column("emb0").chunk(0).values
    assert _data_address(blocks[0]) == values.buffers()[1].address
    assert not blocks[0].flags.writeable

    pandas_frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    _, blocks = _fitted(None, pandas_frame)
    values = pa.array(pandas_frame["emb1"]).values
    assert _data_address(blocks[1]) == values.buffers()[1].address

    _, polars_frame = _library_frame("polars-array", n_samples=50)
    _, blocks = _fitted(None, polars_frame)
    values = polars_frame["emb0"].to_arrow().values
    assert _data_address(blocks[0]) == values.buffers()[1].address


def test_polars_and_arrow_errors_match_pandas():
    """Check ragged, missing, non-numeric and lazy polars/Arrow input is refused."""
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow")
    other = [[1.0], [2.0]]
    ragged = pl.DataFrame({"t": [[1.0, 2.0], [1.0]], "i": other})
    with pytest.raises(
        ValueError,
        match=r"X column 't' holds vectors of different lengths \(2 in row 0, 1 in "
        r"row 1\)",
    ):
        _fitted(None, ragged)
    with pytest.raises(ValueError, match="X column 't' holds vectors of different"):
        _fitted(None, ragged.to_arrow())
    missing = pl.DataFrame(
        {"t": [[1.0], None], "i": other},
        schema={"t": pl.Array(pl.Float64, 1), "i": pl.List(pl.Float64)},
    )
    with pytest.raises(ValueError, match="X column 't' has a missing vector in row 1"):
        _fitted(None, missing)
    with pytest.raises(ValueError, match="X column 't' has a missing vector in row 1"):
        _fitted(None, missing.to_arrow())
    text = pl.DataFrame({"t": [["a"], ["b"]], "i": other})
    with pytest.raises(ValueError, match="X column 't' holds non-numeric vectors"):
        _fitted(None, text)
    nested = pl.DataFrame(
        {"t": [[[1.0]], [[2.0]]], "i": other},
        schema={"t": pl.Array(pl.Float64, (1, 1)), "i": pl.List(pl.Float64)},
    )
    with pytest.raises(ValueError, match="X column 't' holds nested vectors"):
        _fitted(None, nested)
    scalar_text = pl.DataFrame({"t": other, "colour": ["red", "blue"]})
    with pytest.raises(ValueError, match=r"X columns \['colour'\] are not numeric"):
        _fitted(None, scalar_text)
    with pytest.raises(ValueError, match=r"X columns \['b'\] are not numeric"):
        _fitted(None, pa.table({"a": [1.0, 2.0], "b": ["x", "y"]}))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        _fitted(None, pl.DataFrame({"a": [1.0, None], "b": [1.0, 2.0]}))
    with pytest.raises(TypeError, match=r"X is a lazy frame .*X\.collect\(\)"):
        _fitted(None, pl.DataFrame({"a": [1.0, 2.0], "b": [1.0, 2.0]}).lazy())
    with pytest.raises(ValueError, match="0 sample"):
        _fitted(None, ragged.clear())


def test_polars_series_and_frames_as_list_items_and_view_blocks():
    """Check polars Series/frames in a list X and as one view's block."""
    pl = pytest.importorskip("polars")
    _, frame = _library_frame("polars-array")
    expected = [frame["emb0"].to_numpy(), frame["emb1"].to_numpy()]
    estimator, blocks = _fitted(None, [frame["emb0"], frame.select("emb1")])
    assert_array_equal(blocks[1], expected[1])
    assert estimator.n_features_per_view_ == [3, 2]
    estimator, _ = _fitted(None, frame)
    assert_array_equal(check_view_block(estimator, frame["emb1"], 1), expected[1])
    assert_array_equal(
        check_view_block(estimator, frame.select("emb0"), "view0"), expected[0]
    )
    scalars = pl.DataFrame(expected[1], schema=["x", "y"])
    assert_array_equal(check_view_block(estimator, scalars, 1), expected[1])


@pytest.mark.parametrize("library", ["pandas", "polars", "pyarrow"])
def test_frame_to_array_reads_a_whole_frame(library):
    """Check frame_to_array turns scalar and vector columns into one matrix."""
    pandas_frame = _vector_frame(widths=(3, 2), dtype=np.float32)
    pandas_frame["n"] = np.arange(5, dtype=np.float32)
    expected = np.column_stack(
        [np.stack(pandas_frame["emb0"]), np.stack(pandas_frame["emb1"]), np.arange(5)]
    )
    if library == "pandas":
        frame = pandas_frame
    else:
        pl = pytest.importorskip("polars")
        frame = pl.from_pandas(
            pandas_frame.assign(
                emb0=pandas_frame["emb0"].map(list), emb1=pandas_frame["emb1"].map(list)
            )
        )
        if library == "pyarrow":
            frame = frame.to_arrow()
    array = frame_to_array(frame)
    assert array.dtype == np.float32
    assert_array_equal(array, expected)
    assert frame_to_array(frame, dtype=np.float64).dtype == np.float64


def test_frame_to_array_errors_name_the_input():
    """Check frame_to_array's errors name the input as the caller asks."""
    ragged = pd.DataFrame({"t": [[1.0, 2.0], [1.0]]})
    with pytest.raises(ValueError, match="emb.parquet column 't' holds vectors of"):
        frame_to_array(ragged, input_name="emb.parquet")
    with pytest.raises(ValueError, match=r"emb.csv columns \['s'\] are not numeric"):
        frame_to_array(pd.DataFrame({"s": ["a", "b"]}), input_name="emb.csv")
    with pytest.raises(ValueError, match="emb.csv has no columns"):
        frame_to_array(pd.DataFrame(index=[0, 1]), input_name="emb.csv")
    with pytest.raises(TypeError, match="X is a ndarray, not a dataframe"):
        frame_to_array(np.ones((2, 2)))


# The default split against the boundaries between models


def _unit_rows(rng, n_samples, n_features):
    """Random rows of norm 1, as a normalised embedding model returns them."""
    Z = rng.standard_normal((n_samples, n_features))
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


def test_default_split_refuses_to_cut_through_a_model():
    """Check views=None/K raise, naming the boundary and the fix, if cutting a model."""
    rng = np.random.default_rng(0)
    A, B = _unit_rows(rng, 60, 24), _unit_rows(rng, 60, 16)
    X = np.hstack([A, B])
    fix = r"views=\[slice\(0, 24\), slice\(24, None\)\]"
    for views in (None, 2):
        with pytest.raises(
            ValueError,
            match=rf"views={views} splits the 40 columns of X into contiguous views "
            r"of widths \[20, 20\], but the rows of X\[:, (:24|24:)\] all have norm "
            rf"1, .* 2 models side by side, of widths \[24, 16\].*{fix}",
        ):
            _fitted(views, X)
    with pytest.raises(ValueError, match=r"widths \[16, 24\].*slice\(0, 16\)"):
        _fitted(None, np.hstack([B, A]))
    # one normalised model is enough to see the boundary, before or after it
    noise = rng.standard_normal((60, 16))
    with pytest.raises(ValueError, match=r"X\[:, :24\] all have norm 1.*" + fix):
        _fitted(None, np.hstack([A, noise]))
    with pytest.raises(ValueError, match=r"X\[:, 16:\] all have norm 1"):
        _fitted(None, np.hstack([noise, A]))
    # float32, float16-stored rows and dataframes of scalar columns alike
    for X_other in (
        X.astype(np.float32),
        X.astype(np.float16).astype(np.float32),
        pd.DataFrame(X, columns=[f"c{j}" for j in range(40)]),
    ):
        with pytest.raises(ValueError, match=fix):
            _fitted(None, X_other)
    # three models, split in two or in three equal blocks
    C = _unit_rows(rng, 60, 8)
    with pytest.raises(ValueError, match=r"of widths \[24, 16, 8\].*slice\(24, 40\)"):
        _fitted(3, np.hstack([A, B, C]))
    with pytest.raises(ValueError, match=r"of widths \[24, 16, 8\]"):
        _fitted(None, np.hstack([A, B, C]))
    # both ways out that the message gives work
    estimator, blocks = _fitted([slice(0, 24), slice(24, None)], X)
    assert estimator.n_features_per_view_ == [24, 16]
    estimator, _ = _fitted([slice(0, 20), slice(20, None)], X)
    assert estimator.n_features_per_view_ == [20, 20]


def test_default_split_accepts_splits_that_follow_the_models():
    """Check no error when the split follows every boundary X shows, or X shows none."""
    rng = np.random.default_rng(1)
    A, B, C = (_unit_rows(rng, 60, 20) for _ in range(3))
    noise = rng.standard_normal((60, 20))
    accepted = [
        (None, np.hstack([A, B])),
        (3, np.hstack([A, B, C])),
        # a boundary that X does not show (two unnormalised blocks) is not known
        (3, np.hstack([noise, noise[::-1], C])),
        # one model alone has unit rows as a whole, no boundary inside (an
        # explicit split of it; views=None is refused, see below)
        (2, _unit_rows(rng, 60, 41)),
        # a constant column is not a model (with views=None the rows, of one
        # norm with no boundary inside, are refused as one model's alone)
        (2, np.hstack([np.ones((60, 1)), A])),
        # too few rows to tell
        (None, np.hstack([A[:10], B[:10, :5]])),
        # rows of unnormalised models carry no boundary (a known limit)
        (None, np.hstack([A, B[:, :5]]) * rng.uniform(1, 2, (60, 1))),
    ]
    for views, X in accepted:
        estimator, blocks = _fitted(views, X)
        assert_array_equal(np.hstack(blocks), X)


def test_default_split_refuses_one_model_alone():
    """Check views=None on one model's unit rows: fit(A) split A in two halves.

    Rows of unit length across all columns with no boundary inside are one
    model's embeddings; each view would hold a piece of the same space. Two
    models side by side have rows of equal norm too, but show the boundary.
    """
    rng = np.random.default_rng(2)
    A = _unit_rows(rng, 60, 41)
    for X in (
        A,
        A.astype(np.float32),
        pd.DataFrame(A, columns=[f"c{j}" for j in range(41)]),
    ):
        with pytest.raises(
            ValueError,
            match=r"^views=None splits the 41 columns .* widths \[21, 20\], but the "
            r"rows of X all have norm 1 .* single model.*fit\(\[A, B\]\)",
        ):
            _fitted(None, X)
    # rows not of one norm, or too few to tell, are not refused
    for X in (A * rng.uniform(1, 2, (60, 1)), A[:10]):
        estimator, _ = _fitted(None, X)
        assert estimator.n_features_per_view_ == [21, 20]


def test_block_boundaries_are_not_seen_in_generic_data():
    """Check random data of many shapes and distributions never shows boundaries."""
    draws = [
        lambda rng, shape: rng.standard_normal(shape),
        lambda rng, shape: rng.uniform(size=shape),
        lambda rng, shape: rng.integers(0, 5, shape).astype(float),
        lambda rng, shape: rng.lognormal(size=shape),
        lambda rng, shape: _unit_rows(rng, *shape),
    ]
    for seed in range(30):
        rng = np.random.default_rng(seed)
        shape = (int(rng.integers(16, 300)), int(rng.integers(4, 300)))
        for draw in draws:
            X = draw(rng, shape)
            assert _norm_blocks(X) == []
            # One model's unit rows split by views=None are refused as such
            # (test_default_split_refuses_one_model_alone); an explicit split
            # of them is not.
            unit = draw is draws[-1]
            _fitted(2 if unit else None, X)


def test_default_split_on_bundled_real_embeddings():
    """Check every ordered pair and triple of the bundled models, at both widths."""
    embeddings = load_fortunes().views
    for combo in [*permutations(embeddings, 2), *permutations(embeddings, 3)]:
        blocks = [embeddings[name][::6] for name in combo]
        X = np.hstack(blocks)
        widths = [block.shape[1] for block in blocks]
        stops = np.cumsum(widths)[:-1].tolist()
        assert [block.boundary for block in _norm_blocks(X)] == stops, combo
        models = [
            slice(start, stop)
            for start, stop in zip([0, *stops], [*stops, None], strict=True)
        ]
        for views in {None, len(combo)}:
            n_views = 2 if views is None else views
            if widths == [widths[0]] * n_views:
                _fitted(views, X)  # minilm + e5: the halves are the models
                continue
            fix = ", ".join(f"slice({m.start}, {m.stop})" for m in models)
            fix = f"views=[{fix}]"
            with pytest.raises(ValueError, match=re.escape(fix)):
                _fitted(views, X)
        estimator, _ = _fitted(models, X)
        assert estimator.n_features_per_view_ == widths


@pytest.mark.skipif(available_corpus("fortunes") is None, reason=missing("fortunes"))
def test_block_boundaries_of_shared_real_embeddings():
    """Check the shared models' boundaries are all found, and only those."""
    path = available_corpus("fortunes")
    names = ["minilm", "e5", "e5_enpt", "wordllama256"]
    embeddings = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in names}
    for combo in [*permutations(names, 2), *permutations(names, 3)]:
        X = np.hstack([embeddings[name] for name in combo])
        stops = np.cumsum([embeddings[name].shape[1] for name in combo])[:-1]
        assert [block.boundary for block in _norm_blocks(X)] == stops.tolist(), combo
        if len(combo) == 2 and X.shape[1] == 768:
            _fitted(None, X)  # two 384-d models: the halves are the models


# Layout at transform time


def test_transform_checks_the_fitted_layout():
    """Check reset=False re-splits with the fitted layout and rejects mismatches."""
    X = _data(n_features=7)
    estimator = ViewsEstimator(views=[np.array([5, 0, 2]), [1, 3, 4, 6]]).fit(X)
    X_new = _data(n_features=7, seed=1)
    blocks = check_views(estimator, X_new, reset=False)
    assert_array_equal(blocks[0], X_new[:, [5, 0, 2]])
    # changing `views` after fit does not change the fitted layout
    estimator.set_params(views=None)
    blocks = check_views(estimator, X_new, reset=False)
    assert_array_equal(blocks[1], X_new[:, [1, 3, 4, 6]])
    with pytest.raises(ValueError, match="X has 6 features, but ViewsEstimator is"):
        check_views(estimator, X_new[:, :6], reset=False)


def test_transform_accepts_a_list_with_the_fitted_widths():
    """Check a list of K arrays of the fitted widths is accepted after any fit."""
    X = _data(n_features=7)
    estimator, _ = _fitted(None, X)
    blocks = check_views(estimator, [X[:, :4], X[:, 4:]], reset=False)
    assert_array_equal(np.hstack(blocks), X)
    with pytest.raises(ValueError, match=r"list of 3 arrays, but .* fitted with 2"):
        check_views(estimator, [X[:, :4], X[:, 4:5], X[:, 5:]], reset=False)
    with pytest.raises(
        ValueError,
        match=r"X\[1\] \(view 'view1'\) has 2 features, but ViewsEstimator is "
        "expecting 3 features for this view",
    ):
        check_views(estimator, [X[:, :4], X[:, 4:6]], reset=False)

    frame = _vector_frame(widths=(3, 2))
    estimator, _ = _fitted(None, frame)
    blocks = check_views(
        estimator, [np.stack(frame["emb0"]), np.stack(frame["emb1"])], reset=False
    )
    assert [block.shape[1] for block in blocks] == [3, 2]


def test_transform_after_list_fit_accepts_arrays_and_frames():
    """Check an array of the total width, or a frame of K columns, after a list fit."""
    X = _data(n_features=5)
    estimator, _ = _fitted(None, [X[:, :1], X[:, 1:]])
    blocks = check_views(estimator, X, reset=False)
    assert [block.shape[1] for block in blocks] == [1, 4]
    assert_array_equal(np.hstack(blocks), X)
    with pytest.raises(ValueError, match="X has 4 features, but ViewsEstimator"):
        check_views(estimator, X[:, :4], reset=False)
    frame = _vector_frame(widths=(1, 4))
    estimator, _ = _fitted(None, [np.ones((2, 1)), np.ones((2, 4))])
    blocks = check_views(estimator, frame, reset=False)
    assert [block.shape[1] for block in blocks] == [1, 4]
    with pytest.raises(ValueError, match=r"X column 1 \(view 'view1'\) has 4"):
        _estimator, _ = _fitted(None, [np.ones((2, 1)), np.ones((2, 3))])
        check_views(_estimator, frame, reset=False)
    with pytest.raises(ValueError, match="DataFrame with 3 columns, but"):
        check_views(estimator, _vector_frame(widths=(1, 2, 2)), reset=False)


def test_transform_of_dataframes_checks_columns():
    """Check different column names, widths and kinds are rejected at transform."""
    frame = _vector_frame(widths=(3, 2))
    estimator, _ = _fitted(None, frame)
    renamed = frame.rename(columns={"emb1": "other"})
    with pytest.raises(ValueError, match="The feature names should match"):
        check_views(estimator, renamed, reset=False)
    wider = _vector_frame(widths=(3, 4))
    with pytest.raises(
        ValueError, match="X column 'emb1' holds vectors of length 4, but"
    ):
        check_views(estimator, wider, reset=False)
    with pytest.raises(ValueError, match="Feature names unseen at fit time"):
        check_views(estimator, _vector_frame(widths=(3, 2, 1)), reset=False)
    unnamed = _vector_frame(widths=(3, 2)).set_axis([0, 1], axis=1)
    estimator_unnamed, _ = _fitted(None, unnamed)
    with pytest.raises(ValueError, match="X has 3 features, but ViewsEstimator"):
        check_views(
            estimator_unnamed,
            _vector_frame(widths=(3, 2, 1)).set_axis([0, 1, 2], axis=1),
            reset=False,
        )
    with pytest.raises(ValueError, match="fitted on a DataFrame with array-valued"):
        check_views(estimator, np.ones((5, 5)), reset=False)

    estimator, _ = _fitted(None, _data(n_features=5))
    with pytest.raises(ValueError, match="X is a DataFrame with array-valued columns"):
        check_views(estimator, frame, reset=False)

    names = pd.DataFrame(_data(n_features=4), columns=list("abcd"))
    estimator, _ = _fitted({"x": ["a", "b"], "y": ["c", "d"]}, names)
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        check_views(estimator, names[list("badc")], reset=False)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        blocks = check_views(estimator, names.to_numpy(), reset=False)
    assert_array_equal(blocks[1], names[["c", "d"]].to_numpy())


def test_reset_false_before_fit_raises_not_fitted():
    """Check reset=False on an unfitted estimator raises NotFittedError."""
    with pytest.raises(NotFittedError):
        check_views(ViewsEstimator(), _data(), reset=False)


def test_refit_replaces_attributes():
    """Check a new fit replaces the layout and drops stale feature_names_in_."""
    frame = pd.DataFrame(_data(n_features=4), columns=list("abcd"))
    estimator, _ = _fitted(None, frame)
    assert hasattr(estimator, "feature_names_in_")
    check_views(estimator, _data(n_features=6), reset=True)
    assert not hasattr(estimator, "feature_names_in_")
    assert estimator.n_features_per_view_ == [3, 3]
    check_views(estimator, [_data(n_features=2), _data(n_features=1)], reset=True)
    assert estimator.n_features_in_ == 3
    assert estimator.view_names_ == ["view0", "view1"]


# Feature names, view resolution, single view blocks


def test_view_feature_names():
    """Check input feature names of each view for every form of X."""
    estimator, _ = _fitted([[4, 0], [1, 2, 3]], _data(n_features=5))
    assert_array_equal(view_feature_names(estimator, 0), ["x4", "x0"])
    assert view_feature_names(estimator, 1).dtype == object

    frame = pd.DataFrame(_data(n_features=4), columns=list("abcd"))
    estimator, _ = _fitted({"u": ["c", "a"], "v": ["b", "d"]}, frame)
    assert_array_equal(view_feature_names(estimator, "u"), ["c", "a"])

    mixed = _vector_frame(widths=(3, 2))
    mixed["s"] = np.arange(5.0)
    estimator, _ = _fitted({"u": "emb0", "v": ["emb1", "s"]}, mixed)
    assert_array_equal(view_feature_names(estimator, "u"), ["emb00", "emb01", "emb02"])
    assert_array_equal(view_feature_names(estimator, "v"), ["emb10", "emb11", "s"])

    scalar_first = mixed[["s", "emb0", "emb1"]]
    estimator, blocks = _fitted({"u": ["s", "emb1"], "v": "emb0"}, scalar_first)
    assert_array_equal(view_feature_names(estimator, "u"), ["s", "emb10", "emb11"])
    assert_array_equal(blocks[0][:, 0], mixed["s"])

    unnamed = pd.DataFrame({0: mixed["emb0"], 1: mixed["emb1"]})
    estimator, _ = _fitted(None, unnamed)
    assert_array_equal(view_feature_names(estimator, 1), ["x3", "x4"])

    estimator, _ = _fitted(None, [np.ones((2, 2)), np.ones((2, 3))])
    assert_array_equal(view_feature_names(estimator, -1), ["x2", "x3", "x4"])


def test_resolve_view():
    """Check views resolve by index, negative index and name, with clear errors."""
    estimator, _ = _fitted({"text": [0, 1], "image": [2, 3]}, _data(n_features=4))
    assert resolve_view(estimator, 0) == 0
    assert resolve_view(estimator, np.int64(1)) == 1
    assert resolve_view(estimator, -1) == 1
    assert resolve_view(estimator, "text") == 0
    msg = re.escape("one of the view names ['text', 'image']")
    for bad in (2, -3, "audio", True, 0.0):
        with pytest.raises(ValueError, match=msg):
            resolve_view(estimator, bad)
    with pytest.raises(NotFittedError):
        resolve_view(ViewsEstimator(), 0)


def test_check_view_block():
    """Check one view's raw embeddings are validated and their width checked."""
    X = _data(n_features=5, dtype=np.float32)
    estimator, _ = _fitted({"text": [0, 1], "image": [2, 3, 4]}, X)
    block = check_view_block(estimator, X[:, 2:], "image")
    assert np.shares_memory(block, X)
    assert block.dtype == np.float32
    assert check_view_block(estimator, X[:, 2:].astype(int), 1).dtype == np.float64
    assert_array_equal(
        check_view_block(estimator, pd.DataFrame(X[:, :2]), "text"), X[:, :2]
    )
    series = pd.Series(list(X[:, 2:]))
    assert_array_equal(check_view_block(estimator, series, "image"), X[:, 2:])
    frame = pd.DataFrame({"a": list(X[:, 2:4]), "b": X[:, 4]})
    assert_array_equal(check_view_block(estimator, frame, -1), X[:, 2:])
    with pytest.raises(
        ValueError,
        match="X has 2 features, but view 'image' of ViewsEstimator is expecting 3",
    ):
        check_view_block(estimator, X[:, :2], "image")
    with pytest.raises(ValueError, match="Expected 2D array"):
        check_view_block(estimator, X[0, :2], "text")
    with pytest.raises(ValueError, match="view='audio' is not a view"):
        check_view_block(estimator, X[:, :2], "audio")


def test_check_view_block_arrow_series():
    """Check an Arrow list Series is one view's block."""
    frame, text, _ = _arrow_frame(fixed_size=False)
    estimator, _ = _fitted(None, frame)
    assert_array_equal(check_view_block(estimator, frame["text"], 0), text)


def test_pickle_and_clone_keep_layout():
    """Check a fitted layout survives pickling and clone drops it."""
    X = _data(n_features=6)
    estimator = ViewsEstimator(views=[[0, 2, 4], [1, 3, 5]]).fit(X)
    restored = pickle.loads(pickle.dumps(estimator))
    assert_allclose(restored.transform(X), estimator.transform(X))
    assert not hasattr(clone(estimator), "_view_layout")


@parametrize_with_checks([ViewsEstimator()])
def test_views_estimator_passes_sklearn_checks(estimator, check):
    """Check an estimator built on check_views passes scikit-learn's common checks."""
    check(estimator)


def test_check_view_block_passes_plain_arrays_through():
    """Check a plain finite float array comes back as is, others are checked."""
    X = _data(n_features=5)
    estimator, _ = _fitted({"text": [3, 4], "image": slice(0, 3)}, X)
    block = np.ascontiguousarray(X[:, :3])
    assert check_view_block(estimator, block, "image") is block
    assert check_view_block(estimator, block.astype(np.float32), "image").dtype == (
        np.float32
    )
    bad = block.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        check_view_block(estimator, bad, "image")
    with pytest.raises(ValueError, match="X has 2 features, but view 'image'"):
        check_view_block(estimator, block[:, :2], "image")
    integers = np.ones((4, 3), dtype=np.int64)
    assert check_view_block(estimator, integers, "image").dtype == np.float64


def test_a_view_block_of_named_columns_must_be_the_views_in_order():
    """Check transform_view and translate on DataFrame blocks of scalar columns.

    The maps weigh each column by its place: the view's columns in another
    order, or another view's columns of the same width, were mapped silently.
    """
    from skembed import ProcrustesAligner

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(30, 6)), columns=list("abcxyz"))
    aligner = ProcrustesAligner(views={"u": ["a", "b", "c"], "v": ["x", "y", "z"]})
    aligner.fit(frame)
    expected = aligner.transform_view(frame[["a", "b", "c"]].to_numpy(), "u")
    assert_array_equal(aligner.transform_view(frame[["a", "b", "c"]], "u"), expected)
    with pytest.raises(ValueError, match=r"in another order: view 'u'"):
        aligner.transform_view(frame[["c", "b", "a"]], "u")
    with pytest.raises(ValueError, match=r"\['x', 'y', 'z'\], not \['a', 'b', 'c'\]"):
        aligner.translate(frame[["x", "y", "z"]], "u", "v")


def test_a_frame_of_vector_columns_after_a_fit_on_a_list_is_checked_by_names():
    """Check that a frame's vector columns must be the list items seen in fit.

    Fitted on named Series, a transform of a frame of the same columns
    swapped put each view through the other's map, silently.
    """
    from skembed import ProcrustesAligner

    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(40, 4)), rng.normal(size=(40, 4))
    named = [pd.Series(list(first), name="a"), pd.Series(list(second), name="b")]
    aligner = ProcrustesAligner().fit(named)
    expected = aligner.transform(named)
    same = pd.DataFrame({"a": named[0], "b": named[1]})
    assert_allclose(aligner.transform(same), expected)
    for frame in (
        pd.DataFrame({"b": named[1], "a": named[0]}),
        pd.DataFrame({"x": named[0], "y": named[1]}),
    ):
        with pytest.raises(ValueError, match=r"feature names of X's column 0 should"):
            aligner.transform(frame)


def test_a_view_block_of_vector_columns_must_be_the_views_own():
    """Check transform_view on a frame or Series holding another view's vectors."""
    from skembed import ProcrustesAligner

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a": list(rng.normal(size=(30, 4))), "b": list(rng.normal(size=(30, 4)))}
    )
    aligner = ProcrustesAligner(views=["a", "b"]).fit(frame)
    expected = aligner.transform_view(np.stack(frame["a"]), "a")
    assert_allclose(aligner.transform_view(frame[["a"]], "a"), expected)
    assert_allclose(aligner.transform_view(frame["a"], "a"), expected)
    for block in (frame[["b"]], frame["b"]):
        with pytest.raises(ValueError, match=r"columns \['b'\] are not those view 'a'"):
            aligner.transform_view(block, "a")
    # Fitted on scalar columns, a view takes a vector column of its width
    # under any name, as a vector view takes any scalars.
    scalars = pd.DataFrame(np.hstack([np.stack(frame["a"]), np.stack(frame["b"])]))
    scalars.columns = [f"s{j}" for j in range(8)]
    plain = ProcrustesAligner(views={"a": slice(0, 4), "b": slice(4, 8)}).fit(scalars)
    assert plain.transform_view(frame[["b"]], "a").shape == (30, 4)


def test_scalar_columns_named_as_vector_entries_must_be_the_views_in_order():
    """Check transform_view and translate on scalars named as vector entries.

    Fitted on vector columns "a" and "b", a frame of scalar columns a3..a0
    (the view's entries reversed) or b0..b3 (another view's) was mapped as
    a0..a3 without a word, while other names are taken as the entries.
    """
    from skembed import ProcrustesAligner

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    frame = pd.DataFrame({"a": list(A), "b": list(B)})
    aligner = ProcrustesAligner(views=["a", "b"]).fit(frame)
    expected = aligner.transform_view(A, "a")
    entries = pd.DataFrame(A, columns=[f"a{j}" for j in range(4)])
    assert_allclose(aligner.transform_view(entries, "a"), expected)
    assert_allclose(aligner.transform_view(entries.add_prefix("s"), "a"), expected)
    with pytest.raises(ValueError, match=r"in another order: view 'a'"):
        aligner.transform_view(entries[entries.columns[::-1]], "a")
    with pytest.raises(ValueError, match=r"in another order: view 'a'"):
        aligner.translate(entries[entries.columns[::-1]], "a", "b")
    other = pd.DataFrame(A, columns=[f"b{j}" for j in range(4)])
    with pytest.raises(ValueError, match=r"\['b0', 'b1', 'b2', 'b3'\], not"):
        aligner.transform_view(other, "a")


def test_bad_slice_selectors_name_the_view():
    """Check slices with a missing label, mixed bounds or a float bound.

    They raised pandas' bare KeyError or Python's slice TypeError, naming
    neither `views` nor the fix.
    """
    from skembed import ProcrustesAligner

    X = np.random.default_rng(0).normal(size=(40, 8))
    frame = pd.DataFrame(X, columns=["z", "a", "q", "b", "c", "d", "e", "f"])
    cases = [
        ({"u": slice("z", "bb"), "v": slice("c", "f")}, frame, ValueError, "'bb'"),
        ({"u": slice(0, "b"), "v": slice("c", None)}, frame, TypeError, "mixes"),
        ({"u": slice(0, 4.0), "v": slice(4, None)}, X, TypeError, "must be integers"),
    ]
    for views, data, error, fragment in cases:
        with pytest.raises(error, match=rf"views\['u'\].*{fragment}"):
            ProcrustesAligner(views=views).fit(data)


def test_one_column_of_vectors_as_x_is_one_model_not_two_views():
    """Check a Series of vectors as X: a clear error, pandas and polars alike.

    pandas failed in numpy ("setting an array element with a sequence");
    a polars Array series was read as a 2-D array and split into halves.
    """
    from skembed import ProcrustesAligner

    X = np.random.default_rng(0).normal(size=(40, 8))
    import polars as pl

    for column in (pd.Series(list(X), name="emb"), pl.Series("emb", X)):
        with pytest.raises(ValueError, match="X is a single column of vectors"):
            ProcrustesAligner().fit(column)


def test_vector_name_checks_spare_unnamed_polars_series_and_scalar_fits():
    """Check the two cases the vector-column name checks must leave alone.

    An unnamed polars Series is named "" (pandas: None), which was taken for
    a name; a view fitted on a list of scalar-column frames takes vector
    columns of its width under any name, as after a fit on one frame.
    """
    import polars as pl

    from skembed import ProcrustesAligner

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    frame = pd.DataFrame({"a": list(A), "b": list(B)})
    aligner = ProcrustesAligner(views=["a", "b"]).fit(frame)
    assert aligner.transform_view(pl.Series(A), "a").shape == (30, 4)
    named = ProcrustesAligner().fit([pd.Series(list(A), name="a"), B])
    assert named.transform([pl.Series(A), B]).shape == (30, 8)
    scalars = [
        pd.DataFrame(A, columns=[f"minilm_{j}" for j in range(4)]),
        pd.DataFrame(B, columns=[f"e5_{j}" for j in range(4)]),
    ]
    fitted = ProcrustesAligner().fit(scalars)
    vectors = pd.DataFrame({"minilm": list(A), "e5": list(B)})
    assert_allclose(fitted.transform(vectors), fitted.transform([A, B]))
    assert_allclose(
        fitted.transform_view(vectors[["minilm"]], 0), fitted.transform_view(A, 0)
    )


def test_pandas_output_of_a_list_of_frames_keeps_their_index():
    """Check set_output(transform="pandas") on a list of DataFrames.

    scikit-learn takes the index from X, which a list has not: the rows came
    out numbered 0..n-1 where one DataFrame keeps its index.
    """
    from skembed import EmbeddingConcatenator, ProcrustesAligner

    rng = np.random.default_rng(0)
    index = pd.Index([f"r{i}" for i in range(20)], name="id")
    frames = [
        pd.DataFrame(rng.normal(size=(20, 3)), index=index, columns=["a0", "a1", "a2"]),
        pd.DataFrame(rng.normal(size=(20, 3)), index=index, columns=["b0", "b1", "b2"]),
    ]
    for estimator in (ProcrustesAligner(), EmbeddingConcatenator()):
        out = estimator.set_output(transform="pandas").fit(frames).transform(frames)
        assert out.index.equals(index)
        assert list(out.columns) == list(estimator.get_feature_names_out())
        assert estimator.fit_transform(frames).index.equals(index)
        plain = estimator.set_output(transform="default").transform(frames)
        assert isinstance(plain, np.ndarray)


def _estimators_with_views():
    import inspect

    import skembed

    for name in sorted(skembed.__all__):
        obj = getattr(skembed, name)
        if (
            inspect.isclass(obj)
            and issubclass(obj, BaseEstimator)
            and "views" in inspect.signature(obj).parameters
        ):
            yield obj


@pytest.mark.parametrize(
    "cls", list(_estimators_with_views()), ids=lambda cls: cls.__name__
)
def test_a_second_embedding_passed_as_y_is_refused(cls):
    """Check that ``fit(A, B)`` names ``y`` instead of splitting A in two.

    scikit-learn's CCA takes its second block as Y. Here y is ignored, so
    ``fit(A, B)`` fitted a model of A's two halves and raised nothing.
    """
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(40, 6)), rng.normal(size=(40, 6))
    with pytest.raises(ValueError, match=r"y has shape \(40, 6\).*fit\(\[A, B\]\)"):
        cls().fit(A, B)
    with pytest.raises(ValueError, match="like a second embedding"):
        cls().fit(pd.DataFrame(A), pd.DataFrame(B))
    if hasattr(cls, "partial_fit"):
        with pytest.raises(ValueError, match="like a second embedding"):
            cls().partial_fit(A, B)
    # polars and pyarrow frames alike (they have no numpy dtype to read)
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow")
    for y in (pl.DataFrame(B), pa.table({f"c{j}": B[:, j] for j in range(6)})):
        with pytest.raises(ValueError, match="like a second embedding"):
            cls().fit(A, y)
    # Other rows than X's are no target either: fit(A, B[:30]) fitted A's
    # two halves without a word.
    with pytest.raises(ValueError, match=r"y has shape \(30, 6\)"):
        cls().fit(A, B[:30])


@pytest.mark.filterwarnings("ignore::skembed.exceptions.UnsupervisedAlignmentWarning")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_labels_and_explicit_layouts_still_travel_in_y():
    """Check that y the check must let through still fits.

    Class labels, one-hot or multilabel indicators and integer-valued targets
    are labels; with ``views`` given or X a list of views the layout is meant,
    so float targets of a later step pass too.
    """
    from skembed import ProcrustesAligner, SelfLearningAligner

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(40, 6)), rng.normal(size=(40, 6))
    X = np.hstack([A, B])
    reference = ProcrustesAligner().fit(X).transform(X)
    for y in (
        rng.integers(0, 3, 40),
        rng.normal(size=(40, 1)),
        (rng.random((40, 4)) > 0.5).astype(np.float64),
        rng.integers(0, 9, size=(40, 3)),
    ):
        assert_allclose(ProcrustesAligner().fit(X, y).transform(X), reference)
    pl = pytest.importorskip("polars")
    # a polars frame of integer labels is labels too
    labels = pl.DataFrame({"a": rng.integers(0, 3, 40), "b": rng.integers(0, 3, 40)})
    assert_allclose(ProcrustesAligner().fit(X, labels).transform(X), reference)
    assert_allclose(ProcrustesAligner(views=2).fit(X, B).transform(X), reference)
    assert_allclose(ProcrustesAligner().fit([A, B], B).transform(X), reference)
    # Pairs given in y are still only warned about, not taken for an embedding.
    with pytest.warns(UserWarning, match="pass known pairs by keyword"):
        SelfLearningAligner(n_iter=1).fit([A, B], np.array([[0, 0], [1, 1]]))


def test_vector_columns_split_by_an_int_views_are_refused():
    """Check views=K on K' > K array-valued columns: two models made one view.

    views=None was refused; views=2 on three vector columns silently put the
    first two models in one view.
    """
    frame = _vector_frame(n_samples=20, widths=(3, 2, 4))
    for views in (None, 2):
        with pytest.raises(
            ValueError, match=rf"views={views} makes 2 views of contiguous columns"
        ):
            _fitted(views, frame)
    estimator, _ = _fitted(3, frame)
    assert estimator.n_features_per_view_ == [3, 2, 4]


def test_a_slice_beyond_the_columns_is_refused():
    """Check slice(4, 20) on 8 columns: it was clamped to slice(4, 8) silently."""
    X = _data(n_samples=10, n_features=8)
    with pytest.raises(ValueError, match=r"views\[1\] is the slice .* X has 8 columns"):
        _fitted([slice(0, 4), slice(4, 20)], X)
    for views in ([slice(0, 4), slice(4, 8)], [slice(-8, -4), slice(-4, None)]):
        estimator, _ = _fitted(views, X)
        assert estimator.n_features_per_view_ == [4, 4]


def test_duplicate_column_names_say_how_to_name_them():
    """Check the advice, and that following it keeps the column checks.

    It advised pd.concat(..., keys=[...]), whose tuple column names are no
    feature names: every check of the columns was off, and reordered
    columns were mapped without a word.
    """
    A, B = _data(n_samples=10, n_features=3), _data(n_samples=10, n_features=3, seed=1)
    frame = pd.concat([pd.DataFrame(A), pd.DataFrame(B)], axis=1)
    with pytest.raises(
        ValueError, match=r"^X has 3 column names used more than once.*add_prefix"
    ):
        _fitted(None, frame)
    named = pd.concat(
        [pd.DataFrame(A).add_prefix("a_"), pd.DataFrame(B).add_prefix("b_")], axis=1
    )
    estimator, _ = _fitted(None, named)
    assert list(estimator.feature_names_in_) == list(named.columns)
    with pytest.raises(ValueError, match="feature names"):
        check_views(estimator, named[named.columns[::-1]], reset=False)


def test_pandas_items_with_the_same_labels_in_another_order_are_refused():
    """Check [a, b shuffled]: views are paired by position, so the rows of
    different items were paired silently (a fit at chance, and output rows
    labelled by the first item holding another item's vectors)."""
    A, B = _data(n_samples=30, n_features=3), _data(n_samples=30, n_features=3, seed=1)
    labels = [f"t{i}" for i in range(30)]
    a = pd.DataFrame(A, index=labels).add_prefix("a")
    b = pd.DataFrame(B, index=labels).add_prefix("b")
    shuffled = b.sample(frac=1, random_state=0)
    with pytest.raises(ValueError, match=r"same row labels in different orders.*loc"):
        _fitted(None, [a, shuffled])
    estimator, blocks = _fitted(None, [a, shuffled.loc[a.index]])
    assert_array_equal(blocks[1], B)
    # Other labels (or none) are paired by position, as documented.
    for other in (b.reset_index(drop=True), b.set_axis([f"u{i}" for i in range(30)])):
        estimator, blocks = _fitted(None, [a, other])
        assert_array_equal(blocks[1], B)
    with pytest.raises(ValueError, match="same row labels in different orders"):
        check_views(estimator, [a, shuffled], reset=False)


def test_object_array_of_vector_cells_is_read_as_vector_columns():
    """Check the object array a ColumnTransformer returns around vector
    columns without set_output(transform="pandas"): numpy's "setting an
    array element with a sequence" came out of every estimator."""
    from skembed import EmbeddingConcatenator, ProcrustesAligner

    rng = np.random.default_rng(0)
    A, B, n = rng.normal(size=(30, 4)), rng.normal(size=(30, 3)), np.arange(30.0)
    X = np.empty((30, 3), dtype=object)
    for i in range(30):
        X[i] = [A[i], B[i], n[i]]
    aligner = ProcrustesAligner().fit(X[:, :2])
    expected = ProcrustesAligner().fit([A, B])
    assert aligner.n_features_per_view_ == [4, 3]
    assert_allclose(aligner.transform(X[:, :2]), expected.transform([A, B]))
    concat = EmbeddingConcatenator(views=[[0], [1], [2]]).fit(X)
    assert concat.n_features_per_view_ == [4, 3, 1]
    assert_allclose(
        concat.transform(X),
        EmbeddingConcatenator().fit([A, B, n[:, None]]).transform([A, B, n[:, None]]),
    )


@pytest.mark.parametrize(
    "bad",
    [
        np.array(["2020-01-01", "2021-05-03"] * 10, dtype="datetime64[ns]"),
        np.random.default_rng(0).normal(size=20).astype(str),
    ],
    ids=["dates", "strings"],
)
def test_non_numeric_items_of_a_list_are_refused(bad):
    # One array X of dates or strings was refused, but the same array as an
    # item of a list X was cast to floats and fitted without a word.
    from skembed import ProcrustesAligner

    good = np.random.default_rng(1).normal(size=(10, 2))
    bad = bad.reshape(10, 2)
    with pytest.raises(ValueError, match=r"X\[1\] holds non-numeric values"):
        ProcrustesAligner().fit([good, bad])
    fitted = ProcrustesAligner().fit([good, good])
    with pytest.raises(ValueError, match=r"X\[0\] holds non-numeric values"):
        fitted.transform([bad, good])


@pytest.mark.parametrize("kind", ["polars", "pyarrow"])
def test_a_list_of_one_dimensional_columns_is_ambiguous(kind):
    """Check 1-D polars Series or pyarrow Arrays: read as rows, not views.

    Two Series of 50 values became two rows of one 50-column X (views of 25
    columns each); numpy arrays and pandas Series raise the ambiguity error.
    """
    module = pytest.importorskip(kind)
    from skembed import ProcrustesAligner

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    make = module.Series if kind == "polars" else module.array
    with pytest.raises(ValueError, match=r"X\[0\] is a 1-D array"):
        ProcrustesAligner().fit([make(a), make(b)])
    if kind == "pyarrow":
        vectors = [module.array(list(rng.normal(size=(50, 3)))) for _ in range(2)]
        with pytest.raises(TypeError, match="pyarrow Array of vectors"):
            ProcrustesAligner().fit(vectors)
        chunked = [module.chunked_array([v]) for v in vectors]
        assert ProcrustesAligner().fit(chunked).n_features_per_view_ == [3, 3]


@pytest.mark.parametrize("kind", ["polars", "pyarrow"])
def test_one_view_of_a_float32_frame_stays_float32(kind):
    """Check transform_view and translate of polars and pyarrow float32 frames.

    transform kept float32; the one-view methods returned float64.
    """
    pl = pytest.importorskip("polars")
    from skembed import ProcrustesAligner

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 6)).astype(np.float32)
    columns = [f"c{j}" for j in range(6)]
    frame = pl.DataFrame(X, schema=columns)
    aligner = ProcrustesAligner(views={"a": columns[:3], "b": columns[3:]}).fit(frame)
    part_a, part_b = frame.select(columns[:3]), frame.select(columns[3:])
    if kind == "pyarrow":
        pytest.importorskip("pyarrow")
        part_a, part_b = part_a.to_arrow(), part_b.to_arrow()
    out = aligner.transform_view(part_a, "a")
    assert out.dtype == np.float32
    assert_allclose(out, aligner.transform_view(X[:, :3], "a"))
    assert aligner.translate(part_b, "b", "a").dtype == np.float32


def test_one_view_of_mixed_columns_is_checked_by_name():
    """Check a view of a vector column and scalar columns, given reordered.

    transform_view mapped the columns in another order (outputs off by up
    to 5) while transform refused the same reordering.
    """
    from skembed import ProcrustesAligner

    rng = np.random.default_rng(0)
    V, S = rng.normal(size=(100, 3)), rng.normal(size=(100, 2))
    W = np.hstack([V, S]) @ rng.normal(size=(5, 5))
    frame = pd.DataFrame({"v": list(V), "s0": S[:, 0], "s1": S[:, 1], "w": list(W)})
    aligner = ProcrustesAligner(views={"x": ["v", "s0", "s1"], "y": "w"}).fit(frame)
    right = aligner.transform_view(frame[["v", "s0", "s1"]], "x")
    assert_allclose(right, aligner.transform(frame)[:, :5])
    for order in (["s0", "s1", "v"], ["v", "s1", "s0"]):
        with pytest.raises(ValueError, match="select that view's columns"):
            aligner.transform_view(frame[order], "x")
    renamed = frame[["v", "s0", "s1"]].rename(
        columns={"v": "u", "s0": "t0", "s1": "t1"}
    )
    assert_allclose(aligner.transform_view(renamed, "x"), right)


def test_vector_columns_named_as_another_view_are_refused():
    """Check vector columns whose entries take another view's fitted names.

    Fitted on [a0..a2] and [b0..b2], a frame of vector columns "b", "a"
    (entries b0..b2, a0..a2) was mapped as views a and b, swapped.
    """
    from skembed import ProcrustesAligner

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(100, 3)), rng.normal(size=(100, 3))
    frames = [
        pd.DataFrame(A, columns=["a0", "a1", "a2"]),
        pd.DataFrame(B, columns=["b0", "b1", "b2"]),
    ]
    aligner = ProcrustesAligner().fit(frames)
    with pytest.raises(ValueError, match="are those of view 'view1'"):
        aligner.transform(pd.DataFrame({"b": list(B), "a": list(A)}))
    right = aligner.transform(pd.DataFrame({"a": list(A), "b": list(B)}))
    assert_allclose(right, aligner.transform(frames))


def test_inputs_that_name_no_parameter_now_do():
    """Check a dict X and a slice of step 0: errors that named nothing."""
    from skembed import ProcrustesAligner

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    with pytest.raises(TypeError, match=r"X is a dict \('minilm', 'e5'\)"):
        ProcrustesAligner().fit({"minilm": A, "e5": B})
    with pytest.raises(ValueError, match=r"views\[0\] is the slice .* step is 0"):
        ProcrustesAligner(views=[slice(0, 3, 0), slice(3, 6)]).fit(np.hstack([A, B]))


def test_partial_fit_continues_with_a_partial_of_a_local_function():
    """Check views=functools.partial(lambda ...): unchanged, yet refused.

    The kept copy is a new partial, compared by pickling, which a lambda
    or a local function does not survive: "partial_fit started with views=".
    """
    from functools import partial

    from skembed import ProcrustesAligner

    def starting(X, prefix):
        return [c for c in X.columns if c.startswith(prefix)]

    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        rng.normal(size=(60, 6)), columns=["a0", "a1", "a2", "b0", "b1", "b2"]
    )
    for select in (starting, lambda X, prefix: starting(X, prefix)):
        views = [partial(select, prefix="a"), partial(select, prefix="b")]
        aligner = ProcrustesAligner(views=views)
        aligner.partial_fit(X[:30]).partial_fit(X[30:])
        assert aligner._stats.n_samples_ == 60
        aligner.set_params(views=[views[0], partial(select, prefix="b1")])
        with pytest.raises(ValueError, match="partial_fit started with views="):
            aligner.partial_fit(X)


def test_a_list_of_views_cut_by_cross_validation_names_the_cause():
    """Check cross_validate over a list [A, B]: each fold fitted [A] or [B].

    scikit-learn's splitters take a list for rows; the error said only
    "X is a list of 1 array", which did not tell why or what to pass.
    """
    from sklearn.model_selection import cross_validate

    from skembed import ProcrustesAligner

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    with pytest.raises(ValueError, match=r"scikit-learn's splitters .*np\.hstack"):
        cross_validate(ProcrustesAligner(), [A, B], cv=2, error_score="raise")
    scores = cross_validate(ProcrustesAligner(), np.hstack([A, B]), cv=2)
    assert scores["test_score"].shape == (2,)
