"""Tests for EmbeddingConcatenator."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import ortho_group
from sklearn.base import clone
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skembed._concat import EmbeddingConcatenator

NORMALIZE_OPTIONS = ["l2", "standard", None]


def _two_views(n_samples=50, widths=(3, 10), scales=(0.01, 100.0), seed=0):
    """Two Gaussian views of different widths and scales, side by side."""
    rng = np.random.default_rng(seed)
    blocks = [
        scale * rng.normal(loc=1.0, size=(n_samples, width))
        for width, scale in zip(widths, scales, strict=True)
    ]
    return np.hstack(blocks)


def _views_for(widths):
    stops = np.cumsum(widths)
    return [
        slice(stop - width, stop) for width, stop in zip(widths, stops, strict=True)
    ]


VIEWS = _views_for((3, 10))


def _classification_frame(n_samples=120, seed=0):
    """Two embedding column groups whose label depends on both, and a colour."""
    rng = np.random.default_rng(seed)
    minilm = rng.normal(size=(n_samples, 4))
    e5 = 5.0 * rng.normal(size=(n_samples, 3))
    y = (minilm[:, 0] + e5[:, 0] / 5.0 > 0).astype(int)
    frame = pd.DataFrame(
        np.hstack([minilm, e5]),
        columns=[f"minilm{i}" for i in range(4)] + [f"e5_{i}" for i in range(3)],
    )
    frame["colour"] = rng.choice(["red", "green", "blue"], size=n_samples)
    return frame, y


def test_l2_gives_unit_rows_and_keeps_zero_rows():
    """Check that normalize="l2" makes each view's rows unit length, zeros stay."""
    X = _two_views()
    X[3, :3] = 0.0
    Z = EmbeddingConcatenator(views=VIEWS, weights=None).fit_transform(X)
    norms_first = np.linalg.norm(Z[:, :3], axis=1)
    assert_allclose(np.delete(norms_first, 3), 1.0)
    assert_array_equal(Z[3, :3], 0.0)
    assert_allclose(np.linalg.norm(Z[:, 3:], axis=1), 1.0)
    input_norms = np.linalg.norm(X[:, :3], axis=1, keepdims=True)
    assert_allclose(Z[:, :3], X[:, :3] / np.where(input_norms > 0, input_norms, 1.0))


def test_standard_matches_standard_scaler_per_view():
    """Check that normalize="standard" standardises each view with fit statistics."""
    X = _two_views()
    X_new = _two_views(seed=1)
    concat = EmbeddingConcatenator(VIEWS, normalize="standard", weights=None).fit(X)
    Z = concat.transform(X_new)
    for k, view in enumerate(VIEWS):
        scaler = StandardScaler().fit(X[:, view])
        assert_allclose(concat.view_means_[k], scaler.mean_)
        assert_allclose(concat.view_scales_[k], scaler.scale_)
        assert_allclose(Z[:, view], scaler.transform(X_new[:, view]))


def test_standard_constant_column_is_only_centred():
    """Check that a constant column gets scale one and does not count in balancing."""
    X = _two_views()
    X[:, 1] = 7.0
    concat = EmbeddingConcatenator(VIEWS, normalize="standard").fit(X)
    assert concat.view_scales_[0][1] == 1.0
    assert_allclose(concat.view_mean_squared_norms_, [2.0, 10.0])
    assert_allclose(concat.transform(X)[:, 1], 0.0, atol=1e-12)


def test_normalize_none_keeps_raw_values():
    """Check that normalize=None with weights=None is a plain concatenation."""
    X = _two_views()
    Z = EmbeddingConcatenator(normalize=None, weights=None).fit_transform(X)
    assert_array_equal(Z, X)


def test_refit_removes_standard_statistics():
    """Check that refitting without "standard" drops view_means_ and view_scales_."""
    X = _two_views()
    concat = EmbeddingConcatenator(normalize="standard").fit(X)
    concat.set_params(normalize="l2").fit(X)
    assert not hasattr(concat, "view_means_")
    assert not hasattr(concat, "view_scales_")


@pytest.mark.parametrize("normalize", NORMALIZE_OPTIONS)
def test_balanced_weights_equalise_mean_squared_norm(normalize):
    """Check that balanced views have mean squared norm one despite widths/scales."""
    widths = (3, 10, 25)
    X = _two_views(widths=widths, scales=(0.01, 1.0, 100.0))
    X[:10, 3:13] = 0.0  # zero rows in the second view
    Z = EmbeddingConcatenator(
        views=_views_for(widths), normalize=normalize
    ).fit_transform(X)
    for view in _views_for(widths):
        assert_allclose(np.mean(np.sum(Z[:, view] ** 2, axis=1)), 1.0)


def test_balanced_weights_formulae():
    """Check the balanced weights: 1/sqrt(width) for "standard", 1/rms for None."""
    X = _two_views()
    standard = EmbeddingConcatenator(VIEWS, normalize="standard").fit(X)
    assert_allclose(standard.weights_, 1.0 / np.sqrt([3.0, 10.0]))
    raw = EmbeddingConcatenator(VIEWS, normalize=None).fit(X)
    expected = [1.0 / np.sqrt(np.mean(np.sum(X[:, v] ** 2, axis=1))) for v in VIEWS]
    assert_allclose(raw.weights_, expected)
    l2 = EmbeddingConcatenator(VIEWS).fit(X)
    assert_allclose(l2.weights_, 1.0)


def test_balanced_weight_of_all_zero_view_is_one():
    """Check that a view that is all zeros at fit gets weight one and stays zero."""
    X = _two_views()
    X[:, :3] = 0.0
    for normalize in NORMALIZE_OPTIONS:
        concat = EmbeddingConcatenator(VIEWS, normalize=normalize).fit(X)
        assert concat.weights_[0] == 1.0
        assert np.all(np.isfinite(concat.transform(X)))


@pytest.mark.parametrize("normalize", NORMALIZE_OPTIONS)
def test_explicit_weights_replace_balancing(normalize):
    """Check that list and dict weights multiply the normalised views as given."""
    X = _two_views()
    views = {"small": slice(0, 3), "large": slice(3, 13)}
    unweighted = EmbeddingConcatenator(
        views=views, normalize=normalize, weights=None
    ).fit_transform(X)
    for weights in ([2.0, 0.5], np.array([2.0, 0.5]), {"large": 0.5, "small": 2}):
        concat = EmbeddingConcatenator(
            views=views, normalize=normalize, weights=weights
        )
        Z = concat.fit_transform(X)
        assert_allclose(concat.weights_, [2.0, 0.5])
        assert concat.weights_.dtype == np.float64
        assert_allclose(Z[:, :3], 2.0 * unweighted[:, :3])
        assert_allclose(Z[:, 3:], 0.5 * unweighted[:, 3:])


def test_zero_weight_outputs_zeros_for_that_view():
    """Check that a weight of zero drops a view's contribution."""
    X = _two_views()
    Z = EmbeddingConcatenator(VIEWS, weights=[0, 1]).fit_transform(X)
    assert_array_equal(Z[:, :3], 0.0)
    assert_allclose(np.linalg.norm(Z[:, 3:], axis=1), 1.0)


def test_dict_weights_with_default_view_names():
    """Check that dict weights use the default names view0, view1."""
    X = _two_views()
    concat = EmbeddingConcatenator(weights={"view0": 1.0, "view1": 3.0}).fit(X)
    assert concat.view_names_ == ["view0", "view1"]
    assert_allclose(concat.weights_, [1.0, 3.0])


@pytest.mark.parametrize(
    "weights, match",
    [
        ([1.0], "weights has 1 entries but X has 2 views"),
        ([1.0, 2.0, 3.0], "weights has 3 entries"),
        ({"small": 1.0, "bert": 1.0}, "weights has the key 'bert'"),
        ({"small": 1.0}, "weights has no weight for the views \\['large'\\]"),
        ([1.0, -0.5], "weights must be non-negative"),
        ({"small": 0, "large": 0.0}, "weights are all zero"),
        ([1.0, np.inf], "weights must hold one finite number"),
        ([[1.0, 2.0], [3.0, 4.0]], "weights must hold one finite number"),
    ],
)
def test_invalid_weights_raise(weights, match):
    """Check that bad weights raise a ValueError naming `weights`."""
    X = _two_views()
    views = {"small": slice(0, 3), "large": slice(3, 13)}
    with pytest.raises(ValueError, match=match):
        EmbeddingConcatenator(views=views, weights=weights).fit(X)


def test_weights_given_by_label_or_in_an_unordered_container():
    """Check a Series weighs views by label; a set or a 0-d array is refused."""
    X = _two_views()
    views = {"small": slice(0, 3), "large": slice(3, 13)}
    by_label = pd.Series({"large": 2.0, "small": 1.0})
    fitted = EmbeddingConcatenator(views=views, weights=by_label).fit(X)
    assert_array_equal(fitted.weights_, [1.0, 2.0])
    in_order = EmbeddingConcatenator(views=views, weights=pd.Series([3.0, 4.0]))
    assert_array_equal(in_order.fit(X).weights_, [3.0, 4.0])
    # Integer labels are view indices, as dict keys are, not positions.
    by_index = pd.Series({1: 5.0, 0: 1.0})
    fitted = EmbeddingConcatenator(views=views, weights=by_index).fit(X)
    assert_array_equal(fitted.weights_, [1.0, 5.0])
    with pytest.raises(ValueError, match="weights has the key 5, which is not a view"):
        EmbeddingConcatenator(views=views, weights=pd.Series({5: 1.0, 6: 2.0})).fit(X)
    with pytest.raises(TypeError, match="weights is a set"):
        EmbeddingConcatenator(views=views, weights={1.0, 10.0}).fit(X)
    with pytest.raises(ValueError, match="weights must hold one number per view"):
        EmbeddingConcatenator(views=views, weights=np.array(2.0)).fit(X)


def test_non_numeric_weights_raise_type_error():
    """Check that weights that are not numbers raise a TypeError naming `weights`."""
    with pytest.raises(TypeError, match="weights must hold one number per view"):
        EmbeddingConcatenator(weights=[1.0, "big"]).fit(_two_views())


@pytest.mark.parametrize(
    "params, match",
    [
        ({"normalize": "max"}, "normalize"),
        ({"weights": "equal"}, "weights"),
        ({"weights": 2.0}, "weights"),
        ({"views": 1}, "views"),
    ],
)
def test_invalid_parameters_raise(params, match):
    """Check that parameters of the wrong type or value are rejected at fit."""
    with pytest.raises(InvalidParameterError, match=match):
        EmbeddingConcatenator(**params).fit(_two_views())


def test_feature_names_out_from_array_and_named_views():
    """Check "<view>__<feature>" names for unnamed and named views."""
    X = _two_views(widths=(2, 3))
    names = EmbeddingConcatenator().fit(X).get_feature_names_out()
    assert_array_equal(
        names,
        ["view0__x0", "view0__x1", "view0__x2", "view1__x3", "view1__x4"],
    )
    concat = EmbeddingConcatenator(views={"b": [2, 3, 4], "a": [0, 1]}).fit(X)
    assert_array_equal(
        concat.get_feature_names_out(),
        ["b__x2", "b__x3", "b__x4", "a__x0", "a__x1"],
    )
    assert_allclose(
        concat.transform(X)[:, 3:],
        EmbeddingConcatenator(_views_for((2, 3))).fit_transform(X)[:, :2],
    )


def test_feature_names_out_checks_input_features():
    """Check that input_features must match the feature names seen at fit."""
    frame, _ = _classification_frame()
    X = frame.drop(columns="colour")
    concat = EmbeddingConcatenator(views=[list(X.columns[:4]), list(X.columns[4:])])
    concat.fit(X)
    names = concat.get_feature_names_out(list(X.columns))
    assert_array_equal(names, concat.get_feature_names_out())
    assert names[0] == "view0__minilm0" and names[-1] == "view1__e5_2"
    with pytest.raises(ValueError, match="input_features"):
        concat.get_feature_names_out([f"bad{i}" for i in range(7)])


def test_set_output_pandas():
    """Check that set_output(transform="pandas") returns a labelled DataFrame."""
    frame, _ = _classification_frame()
    X = frame.drop(columns="colour")
    X.index = X.index + 100
    concat = EmbeddingConcatenator(
        views={"minilm": list(X.columns[:4]), "e5": list(X.columns[4:])}
    ).set_output(transform="pandas")
    Z = concat.fit_transform(X)
    assert isinstance(Z, pd.DataFrame)
    assert_array_equal(Z.columns, concat.get_feature_names_out())
    assert Z.columns[0] == "minilm__minilm0"
    assert_array_equal(Z.index, X.index)
    expected = EmbeddingConcatenator(views=[slice(0, 4), slice(4, 7)]).fit_transform(
        X.to_numpy()
    )
    assert_allclose(Z.to_numpy(), expected)


def test_dataframe_with_array_valued_columns():
    """Check one array-valued DataFrame column per model, as in load_fortunes."""
    X = _two_views()
    frame = pd.DataFrame({"minilm": list(X[:, :3]), "e5": list(X[:, 3:])})
    concat = EmbeddingConcatenator(views={"minilm": "minilm", "e5": "e5"})
    Z = concat.fit_transform(frame)
    assert_allclose(Z, EmbeddingConcatenator(VIEWS).fit_transform(X))
    assert concat.n_features_per_view_ == [3, 10]
    names = concat.get_feature_names_out()
    assert len(names) == 13
    assert names[0].startswith("minilm__") and names[-1].startswith("e5__")
    pandas_out = clone(concat).set_output(transform="pandas").fit_transform(frame)
    assert_allclose(pandas_out.to_numpy(), Z)


def test_list_of_arrays_matches_stacked_array():
    """Check that a list of view arrays gives the same output as the stacked array."""
    X = _two_views()
    for normalize in NORMALIZE_OPTIONS:
        from_list = EmbeddingConcatenator(normalize=normalize).fit_transform(
            [X[:, :3], X[:, 3:]]
        )
        stacked = EmbeddingConcatenator(VIEWS, normalize=normalize).fit_transform(X)
        assert_allclose(from_list, stacked)


def test_pipeline_with_logistic_regression():
    """Check that the concatenator feeds a classifier and beats each view alone."""
    frame, y = _classification_frame(n_samples=300)
    X = frame.drop(columns="colour").to_numpy()
    model = make_pipeline(
        EmbeddingConcatenator(views=[slice(0, 4), slice(4, 7)]), LogisticRegression()
    )
    both = cross_val_score(model, X, y, cv=5).mean()
    alone = [
        cross_val_score(LogisticRegression(), X[:, view], y, cv=5).mean()
        for view in (slice(0, 4), slice(4, 7))
    ]
    assert both > max(alone) + 0.05


def test_column_transformer_next_to_categorical_column():
    """Check the concatenator over two embedding groups beside a one-hot column."""
    frame, y = _classification_frame()
    minilm = [c for c in frame.columns if c.startswith("minilm")]
    e5 = [c for c in frame.columns if c.startswith("e5")]
    preprocess = ColumnTransformer(
        [
            (
                "embeddings",
                EmbeddingConcatenator(
                    views={
                        "minilm": make_column_selector(pattern="^minilm"),
                        "e5": make_column_selector(pattern="^e5"),
                    }
                ),
                minilm + e5,
            ),
            ("colour", OneHotEncoder(sparse_output=False), ["colour"]),
        ]
    ).set_output(transform="pandas")
    Z = preprocess.fit_transform(frame)
    assert Z.shape == (len(frame), 7 + 3)
    assert list(Z.columns[:2]) == [
        "embeddings__minilm__minilm0",
        "embeddings__minilm__minilm1",
    ]
    assert Z.columns[6] == "embeddings__e5__e5_2"
    assert list(Z.columns[7:]) == [
        f"colour__colour_{c}" for c in ("blue", "green", "red")
    ]
    assert_allclose(np.linalg.norm(Z.iloc[:, :4], axis=1), 1.0)
    model = make_pipeline(preprocess, LogisticRegression()).fit(frame, y)
    assert model.score(frame, y) > 0.8


def test_column_transformer_with_array_valued_columns():
    """Check array-valued embedding columns beside a categorical column."""
    frame, _ = _classification_frame()
    X = frame.drop(columns="colour").to_numpy()
    mixed = pd.DataFrame(
        {"minilm": list(X[:, :4]), "e5": list(X[:, 4:]), "colour": frame["colour"]}
    )
    preprocess = ColumnTransformer(
        [
            ("emb", EmbeddingConcatenator(views=["minilm", "e5"]), ["minilm", "e5"]),
            ("colour", OneHotEncoder(sparse_output=False), ["colour"]),
        ]
    )
    Z = preprocess.fit_transform(mixed)
    assert Z.shape == (len(mixed), 10)
    assert_allclose(
        Z[:, :7],
        EmbeddingConcatenator(views=[slice(0, 4), slice(4, 7)]).fit_transform(X),
    )


def test_grid_search_over_weights_and_normalize():
    """Check that GridSearchCV tunes weights and normalize and finds the useful view."""
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(200, 3))
    noise = rng.normal(size=(200, 30))
    y = (signal[:, 0] > 0).astype(int)
    X = np.hstack([signal, noise])
    model = make_pipeline(
        EmbeddingConcatenator(views={"signal": slice(0, 3), "noise": slice(3, 33)}),
        LogisticRegression(),
    )
    grid = {
        "embeddingconcatenator__weights": [
            "balanced",
            [1.0, 0.0],
            {"signal": 1.0, "noise": 3.0},
        ],
        "embeddingconcatenator__normalize": NORMALIZE_OPTIONS,
    }
    search = GridSearchCV(model, grid, cv=3, error_score="raise").fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_params_["embeddingconcatenator__weights"] == [1.0, 0.0]


def test_clone_and_pickle_round_trip():
    """Check that clone keeps parameters only and pickling keeps the fitted state."""
    X = _two_views()
    concat = EmbeddingConcatenator(
        views={"a": slice(0, 3), "b": slice(3, 13)},
        normalize="standard",
        weights={"a": 1.0, "b": 2.0},
    ).fit(X)
    cloned = clone(concat)
    assert cloned.get_params() == concat.get_params()
    assert not hasattr(cloned, "weights_")
    restored = pickle.loads(pickle.dumps(concat))
    assert_array_equal(restored.transform(X), concat.transform(X))
    assert_array_equal(restored.get_feature_names_out(), concat.get_feature_names_out())


@pytest.mark.parametrize("normalize", NORMALIZE_OPTIONS)
@pytest.mark.parametrize("weights", ["balanced", None, [1.0, 2.0]])
def test_float32_preserved(normalize, weights):
    """Check that float32 input gives float32 output close to the float64 output."""
    X = _two_views(scales=(1.0, 3.0))
    concat = EmbeddingConcatenator(normalize=normalize, weights=weights)
    Z32 = concat.fit_transform(X.astype(np.float32))
    assert Z32.dtype == np.float32
    Z64 = clone(concat).fit_transform(X)
    assert Z64.dtype == np.float64
    assert_allclose(Z32, Z64, rtol=1e-4, atol=1e-5)


def test_integer_input_gives_float64():
    """Check that integer embeddings are converted to float64."""
    X = np.arange(20).reshape(5, 4)
    assert EmbeddingConcatenator().fit_transform(X).dtype == np.float64


@pytest.mark.parametrize("normalize", NORMALIZE_OPTIONS)
def test_input_not_mutated_and_output_fresh(normalize):
    """Check that fit/transform leave the input unchanged and share no memory."""
    X = _two_views()
    views = [X[:, :3].copy(), X[:, 3:].copy()]
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(13)])
    for data in (X, views, frame):
        before = pickle.dumps(data)
        concat = EmbeddingConcatenator(normalize=normalize)
        Z = concat.fit(data).transform(data)
        assert pickle.dumps(data) == before
        assert not np.shares_memory(Z, X)
        assert not any(np.shares_memory(Z, v) for v in views)


def test_transform_checks_layout():
    """Check that transform rejects data whose width differs from fit."""
    concat = EmbeddingConcatenator().fit(_two_views())
    with pytest.raises(ValueError, match="features"):
        concat.transform(_two_views(widths=(3, 9)))


def test_tags():
    """Check that the tags declare float32 preservation and no target."""
    tags = EmbeddingConcatenator().__sklearn_tags__()
    assert tags.transformer_tags.preserves_dtype == ["float64", "float32"]
    assert not tags.target_tags.required


# Hypothesis properties. Tiny magnitudes are snapped to zero so that squared norms
# never underflow, which would turn a non-zero row into a "zero row".
_ELEMENTS = st.floats(
    min_value=-100.0, max_value=100.0, allow_nan=False, allow_infinity=False
).map(lambda value: 0.0 if abs(value) < 1e-6 else value)


@st.composite
def _paired_views(draw):
    n_samples = draw(st.integers(5, 20))
    widths = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    return [
        draw(arrays(np.float64, (n_samples, width), elements=_ELEMENTS))
        for width in widths
    ]


def _pairwise_distances(Z):
    return np.sqrt(np.sum((Z[:, np.newaxis, :] - Z[np.newaxis, :, :]) ** 2, axis=-1))


@settings(deadline=None, max_examples=25)
@given(
    views=_paired_views(),
    rotated=st.integers(0, 1),
    seed=st.integers(0, 2**32 - 1),
    weights=st.sampled_from(["balanced", None, [0.5, 2.0]]),
)
def test_l2_output_distances_invariant_to_rotating_a_view(
    views, rotated, seed, weights
):
    """Check that with l2 an orthogonal rotation of a view keeps all distances.

    Consequently a kNN classifier downstream predicts the same labels.
    """
    widths = [view.shape[1] for view in views]
    X = np.hstack(views)
    rng = np.random.default_rng(seed)
    width = widths[rotated]
    rotation = ortho_group.rvs(width, random_state=rng) if width > 1 else np.eye(1)
    if width == 1 and rng.random() < 0.5:
        rotation = -rotation
    X_rotated = X.copy()
    block = _views_for(widths)[rotated]
    X_rotated[:, block] = X[:, block] @ rotation

    concat = EmbeddingConcatenator(views=_views_for(widths), weights=weights)
    Z = concat.fit_transform(X)
    Z_rotated = clone(concat).fit_transform(X_rotated)
    distances = _pairwise_distances(Z)
    assert_allclose(_pairwise_distances(Z_rotated), distances, atol=1e-9)

    n_neighbors = 3
    y = np.arange(len(X)) % 3
    predictions = (
        KNeighborsClassifier(n_neighbors, algorithm="brute").fit(Z, y).predict(Z)
    )
    predictions_rotated = (
        KNeighborsClassifier(n_neighbors, algorithm="brute")
        .fit(Z_rotated, y)
        .predict(Z_rotated)
    )
    # Compare only where the neighbour set is not decided by a rounding-level tie.
    ordered = np.sort(distances, axis=1)
    clear = ordered[:, n_neighbors] - ordered[:, n_neighbors - 1] > 1e-6
    assert_array_equal(predictions_rotated[clear], predictions[clear])


@settings(deadline=None, max_examples=50)
@given(
    views=_paired_views(),
    scaled=st.integers(0, 1),
    factor=st.floats(min_value=1e-3, max_value=1e3),
    normalize=st.sampled_from(["l2", None]),
)
def test_output_invariant_to_scaling_a_view(views, scaled, factor, normalize):
    """Check that scaling a view by c > 0 leaves the (balanced) output unchanged."""
    X = np.hstack(views)
    X_scaled = X.copy()
    block = _views_for([view.shape[1] for view in views])[scaled]
    X_scaled[:, block] *= factor
    concat = EmbeddingConcatenator(
        views=_views_for([view.shape[1] for view in views]), normalize=normalize
    )
    assert_allclose(
        clone(concat).fit_transform(X_scaled), concat.fit_transform(X), atol=1e-12
    )


def test_standard_output_invariant_to_scaling_a_view():
    """Check that "standard" output does not change when a view is scaled."""
    X = _two_views()
    X_scaled = X.copy()
    X_scaled[:, 3:] *= 1e-3
    concat = EmbeddingConcatenator(normalize="standard")
    assert_allclose(clone(concat).fit_transform(X_scaled), concat.fit_transform(X))


def test_feature_names_out_uses_given_names_for_arrays():
    """Check that input_features rename the features of an array X."""
    X = _two_views(widths=(2, 3))
    concat = EmbeddingConcatenator().fit(X)
    names = concat.get_feature_names_out(["a", "b", "c", "d", "e"])
    assert_array_equal(
        names, ["view0__a", "view0__b", "view0__c", "view1__d", "view1__e"]
    )
    with pytest.raises(ValueError, match="input_features"):
        concat.get_feature_names_out(["a", "b"])


def test_column_transformer_on_array_names_features():
    """Check ColumnTransformer feature names when it receives a plain array."""
    X = _two_views(widths=(2, 3))
    preprocess = ColumnTransformer(
        [("emb", EmbeddingConcatenator(), [1, 2, 3, 4]), ("raw", "passthrough", [0])]
    ).fit(X)
    assert_array_equal(
        preprocess.get_feature_names_out(),
        [
            "emb__view0__x1",
            "emb__view0__x2",
            "emb__view1__x3",
            "emb__view1__x4",
            "raw__x0",
        ],
    )


@pytest.mark.parametrize("scale", [1e-30, 1e-21, 1e21, 1e30])
def test_l2_float32_rows_outside_the_float32_square_range(scale):
    """Rows whose squares under- or overflow float32 still get unit length."""
    rng = np.random.default_rng(0)
    A = (rng.normal(size=(40, 6)) * scale).astype(np.float32)
    B = rng.normal(size=(40, 4)).astype(np.float32)
    A[:5] = 0.0  # zero rows stay zero
    concat = EmbeddingConcatenator(weights=None)
    Z = concat.fit_transform([A, B])
    assert Z.dtype == np.float32
    assert np.isfinite(Z).all()
    assert_allclose(np.linalg.norm(Z[5:, :6].astype(np.float64), axis=1), 1, rtol=1e-6)
    assert_array_equal(Z[:5, :6], 0)
    assert_allclose(concat.view_mean_squared_norms_, [35 / 40, 1.0])


@pytest.mark.parametrize(
    "scale, dtype",
    [(1e200, np.float64), (1e-170, np.float64), (1e-300, np.float64)]
    + [(1e-42, np.float32)],
)
def test_l2_rows_whose_squares_leave_float64(scale, dtype):
    """Rows beyond the float64 square range (or subnormal) get unit length."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(40, 6))
    B = rng.normal(size=(40, 4))
    scaled = (A * scale).astype(dtype)
    scaled[:5] = 0.0
    concat = EmbeddingConcatenator(weights=None)
    Z = concat.fit_transform([scaled, B.astype(dtype)])
    assert Z.dtype == dtype
    assert_allclose(concat.view_mean_squared_norms_, [35 / 40, 1.0])
    # subnormal float32 entries keep about 3 digits
    rtol = 1e-3 if dtype == np.float32 else 1e-12
    unit = A[5:] / np.linalg.norm(A[5:], axis=1, keepdims=True)
    assert_allclose(Z[5:, :6], unit, rtol=rtol, atol=rtol)
    assert_array_equal(Z[:5, :6], 0)


@pytest.mark.parametrize("normalize", ["standard", None])
@pytest.mark.parametrize("scale", [1e-39, 1e-42])
def test_float32_views_of_subnormal_spread_are_normalised(normalize, scale):
    """Check float32 views below float32's normal range: the float64 output.

    The factor of such a view (its weight over its spread, or a balanced
    weight of 1e38) was cast to float32, became infinite, and transform said
    the output overflowed and blamed the weights.
    """
    rng = np.random.default_rng(0)
    A = (rng.normal(size=(40, 4)) * scale).astype(np.float32)
    B = rng.normal(size=(40, 3)).astype(np.float32)
    concat = EmbeddingConcatenator(normalize=normalize).fit([A, B])
    expected = concat.transform([A.astype(np.float64), B.astype(np.float64)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Z = concat.transform([A, B])
    assert Z.dtype == np.float32
    assert_allclose(Z, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def test_standard_float32_rows_far_from_the_origin_are_centred():
    """Check float32 columns at 1e4 with a spread of 1e-2 come out centred.

    The float64 mean was rounded to float32 before it was subtracted: every
    such column was off by up to 1% of a standard deviation.
    """
    rng = np.random.default_rng(0)
    A = 1e4 + 1e-2 * rng.normal(size=(5000, 3))
    X = np.hstack([A, rng.normal(size=(5000, 2))]).astype(np.float32)
    concat = EmbeddingConcatenator(normalize="standard", weights=None).fit(X)
    Z = concat.transform(X)
    assert Z.dtype == np.float32
    assert_allclose(Z, concat.transform(X.astype(np.float64)), rtol=0, atol=1e-5)
    assert_allclose(Z.mean(axis=0, dtype=np.float64), 0, atol=1e-6)


def test_a_failed_refit_keeps_the_fitted_concatenator():
    """Check a refit that fails after reading the new layout changes nothing."""
    rng = np.random.default_rng(0)
    X6, X9 = rng.normal(size=(50, 6)), rng.normal(size=(50, 9))
    concat = EmbeddingConcatenator(weights=[1, 2]).fit(X6)
    expected = concat.transform(X6)
    with pytest.raises(ValueError, match="weights has 2 entries but X has 3 views"):
        concat.set_params(views=3).fit(X9)
    assert concat.view_names_ == ["view0", "view1"]
    assert_array_equal(concat.transform(X6), expected)


def test_an_output_overflowed_by_the_weights_blames_the_weights():
    """Check that finite input times huge weights names `weights`, not the input."""
    X = _two_views()
    huge = EmbeddingConcatenator(weights=[1e308, 1e308], normalize=None)
    with pytest.raises(
        ValueError,
        match=r"output overflows float64: the views, normalised \(None\) and",
    ):
        huge.fit_transform([X[:, :3], X[:, 3:]])
    X[0, 0] = np.inf
    with pytest.raises(ValueError, match="Input X contains NaN or infinity"):
        huge.transform([X[:, :3], X[:, 3:]])


def test_huge_entries_fit_without_overflow_warnings():
    """Check that l2 concatenation of entries near 1e300 warns of nothing.

    The default split's probe squared the entries outside any errstate:
    two "overflow encountered in square" warnings, the results correct.
    """
    X = _two_views() * 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = EmbeddingConcatenator(views=2).fit_transform(X)
    assert np.isfinite(out).all()


@pytest.mark.parametrize(
    "fitted, now", [("l2", None), ("l2", "standard"), ("standard", "l2"), (None, "l2")]
)
def test_transform_refuses_a_normalize_changed_after_fit(fitted, now, tmp_path):
    # weights_ and the column statistics hold for the normalisation of fit:
    # with another one, transform used to mix the two (balanced l2 weights on
    # raw views, silently) or fail on a statistic it never learnt.
    from skembed import load_aligner, save_aligner

    X = _two_views()
    concat = EmbeddingConcatenator(normalize=fitted).fit(X)
    expected = concat.transform(X)
    path = tmp_path / "concat.skembed"
    save_aligner(concat, path)
    for model in (concat, load_aligner(path)):
        model.set_params(normalize=now)
        with pytest.raises(ValueError, match="fitted with normalize=.*set_params"):
            model.transform(X)
        model.set_params(normalize=fitted)
        assert_array_equal(model.transform(X), expected)
    # A refit takes the new value.
    concat.set_params(normalize=now)
    refitted = EmbeddingConcatenator(normalize=now).fit_transform(X)
    assert_allclose(concat.fit(X).transform(X), refitted)


@pytest.mark.parametrize(
    "weights", [[True, False], np.array([True, True]), {"view0": True, "view1": 1.0}]
)
def test_flags_as_weights_are_refused(weights):
    """Check booleans given as weights: refused, not read as 0 and 1.

    weights=[True, False] dropped the second view without a word.
    """
    X = _two_views()
    with pytest.raises(TypeError, match="weights must hold numbers, got the flags"):
        EmbeddingConcatenator(weights=weights).fit(X)


def test_feature_names_out_never_repeat():
    """Check names when column names would name two features alike.

    Entry 10 of vector column "a" and entry 0 of column "a1" were both
    "u__a10", and view "a" with column "b__c" met view "a__b" with column
    "c": set_output(transform="pandas") then failed on repeated columns.
    """
    rng = np.random.default_rng(0)
    vectors = pd.DataFrame(
        {
            "a": list(rng.normal(size=(30, 12))),
            "a1": list(rng.normal(size=(30, 3))),
            "b": list(rng.normal(size=(30, 4))),
        }
    )
    scalars = pd.DataFrame(rng.normal(size=(30, 2)), columns=["b__c", "c"])
    for X, views, first in [
        (vectors, {"u": ["a", "a1"], "v": ["b"]}, "u__x0"),
        (scalars, {"a": ["b__c"], "a__b": ["c"]}, "a__x0"),
    ]:
        concat = EmbeddingConcatenator(views=views).fit(X)
        names = concat.get_feature_names_out()
        assert len(set(names)) == len(names) == concat.transform(X).shape[1]
        assert names[0] == first
        model = make_pipeline(EmbeddingConcatenator(views=views), StandardScaler())
        Z = model.set_output(transform="pandas").fit_transform(X)
        assert_array_equal(Z.columns, names)
    # Names that do not repeat are kept.
    concat = EmbeddingConcatenator(views=["a", "b"]).fit(vectors[["a", "b"]])
    assert concat.get_feature_names_out()[-1] == "b__b3"
