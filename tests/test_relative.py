"""Tests for RelativeProjector."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import ortho_group
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skembed import RelativeProjector
from skembed.datasets import load_fortunes


def _cosines(X, anchors):
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    anchors = anchors / np.linalg.norm(anchors, axis=1, keepdims=True)
    return X @ anchors.T


def _rotated_pair(seed, n=200, d=6, scale=2.0, shift=1.0, dtype=float):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    B = scale * A @ ortho_group.rvs(d, random_state=seed) + shift
    return A.astype(dtype), B.astype(dtype)


@settings(deadline=None, max_examples=25)
@given(
    A=arrays(
        np.float64,
        st.tuples(st.integers(8, 30), st.integers(1, 6)),
        elements=st.floats(-100, 100, allow_nan=False, allow_infinity=False),
    ),
    scale=st.floats(1e-3, 1e3),
    shift=st.floats(-100, 100),
    seed=st.integers(0, 2**16),
    center=st.booleans(),
)
def test_invariant_to_rotation_and_scaling(A, scale, shift, seed, center):
    """Check that a rotated, scaled (and, centred, shifted) view maps identically."""
    d = A.shape[1]
    mean = A.mean(axis=0) if center else np.zeros(d)
    norms = np.linalg.norm(A - mean, axis=1)
    # Cosines of (nearly) zero vectors are undefined: keep every centred row well
    # above the rounding noise of the values themselves.
    assume(norms.min() > 1e-6 * np.abs(A).max())
    Q = ortho_group.rvs(d, random_state=seed) if d > 1 else np.array([[1.0]])
    B = scale * A @ Q + (shift if center else 0.0)
    anchors = np.arange(0, A.shape[0], 2)
    projector = RelativeProjector(len(anchors), anchors=anchors, center=center)
    relative = projector.fit([A, B]).transform([A, B])
    n_anchors = len(anchors)
    assert_allclose(
        relative[:, :n_anchors], relative[:, n_anchors:], rtol=0, atol=1e-10
    )
    reference = RelativeProjector(len(anchors), anchors=anchors, center=center)
    assert_allclose(
        reference.fit([A, A]).transform_view(A, 0), relative[:, :n_anchors], atol=1e-12
    )


def test_cosines_to_anchors_by_index():
    """Check the representation against cosines computed by hand."""
    A, B = _rotated_pair(0)
    anchors = [3, 17, 42, 100]
    projector = RelativeProjector(4, anchors=anchors).fit([A, B])
    assert_allclose(projector.anchor_indices_, anchors)
    assert_allclose(projector.anchor_embeddings_[1], B[anchors])
    mean = B.mean(axis=0)
    expected = _cosines(B - mean, B[anchors] - mean)
    assert_allclose(projector.transform_view(B, 1), expected, atol=1e-12)
    # Each anchor is at cosine 1 from itself.
    assert_allclose(projector.transform_view(B[anchors], 1).diagonal(), 1.0)
    raw = RelativeProjector(4, anchors=anchors, center=False).fit([A, B])
    assert_allclose(raw.transform_view(B, 1), _cosines(B, B[anchors]), atol=1e-12)
    assert_allclose(raw.means_[1], 0.0)


def test_random_anchors_are_distinct_and_seeded():
    """Check that random anchors are distinct rows fixed by random_state."""
    A, B = _rotated_pair(1)
    first = RelativeProjector(50, random_state=0).fit([A, B]).anchor_indices_
    again = RelativeProjector(50, random_state=0).fit([A, B]).anchor_indices_
    other = RelativeProjector(50, random_state=1).fit([A, B]).anchor_indices_
    assert len(np.unique(first)) == 50
    assert_allclose(first, again)
    assert not np.array_equal(first, other)


def test_kmeans_plusplus_spreads_anchors():
    """Check that k-means++ anchors cover well-separated clusters, one each."""
    rng = np.random.default_rng(2)
    centres = 20 * np.eye(5)
    labels = np.repeat(np.arange(5), 40)
    A = centres[labels] + rng.normal(size=(200, 5))
    B = A @ ortho_group.rvs(5, random_state=2)
    projector = RelativeProjector(5, anchors="kmeans++", random_state=0).fit([A, B])
    assert sorted(labels[projector.anchor_indices_]) == [0, 1, 2, 3, 4]
    again = RelativeProjector(5, anchors="kmeans++", random_state=0).fit([A, B])
    assert_allclose(projector.anchor_indices_, again.anchor_indices_)


def test_kmeans_plusplus_with_duplicate_rows():
    """Check that k-means++ still gives distinct anchors when rows repeat."""
    X = np.repeat(np.random.default_rng(3).normal(size=(2, 4)), 5, axis=0)
    projector = RelativeProjector(4, anchors="kmeans++", random_state=0).fit(X)
    assert len(np.unique(projector.anchor_indices_)) == 4


def test_too_many_anchors_uses_every_row_with_a_warning():
    """Check that n_anchors above the training rows warns and takes every row."""
    A, B = _rotated_pair(4, n=20)
    for anchors in ("random", "kmeans++"):
        with pytest.warns(UserWarning, match=re.escape("n_anchors=21 exceeds")):
            projector = RelativeProjector(21, anchors=anchors).fit([A, B])
        assert_array_equal(projector.anchor_indices_, np.arange(20))
        assert projector.transform([A, B]).shape == (20, 40)
    with pytest.raises(ValueError, match="n_samples = 1"):
        RelativeProjector(2).fit([A[:1], B[:1]])


@pytest.mark.parametrize(
    "anchors, n_anchors, message",
    [
        ([0, 20], 2, re.escape("outside [0, 19]")),
        ([-1, 3], 2, "outside"),
        ([4, 4, 5], 3, "repeated row indices"),
        ([[0, 1]], 2, "1-D array of integer"),
        ([0.0, 1.0], 2, "1-D array of integer"),
        ([0, 1, 2], 2, re.escape("pass n_anchors=3")),
        ([], 1, "anchors holds no row index"),
    ],
)
def test_invalid_anchor_indices(anchors, n_anchors, message):
    """Check the errors for out-of-range, repeated or malformed anchor indices."""
    A, B = _rotated_pair(5, n=20)
    with pytest.raises(ValueError, match=message):
        RelativeProjector(n_anchors, anchors=anchors).fit([A, B])


def test_float32_preserved():
    """Check that float32 input gives float32 output close to float64."""
    A, B = _rotated_pair(6, dtype=np.float32)
    projector = RelativeProjector(30, random_state=0).fit([A, B])
    for out in (projector.transform([A, B]), projector.transform_view(A, 0)):
        assert out.dtype == np.float32
    assert projector.anchor_embeddings_[0].dtype == np.float64
    exact = RelativeProjector(30, random_state=0).fit(
        [A.astype(float), B.astype(float)]
    )
    assert_allclose(
        projector.transform_view(A, 0), exact.transform_view(A, 0), atol=1e-5
    )


def test_combine_modes_and_feature_names():
    """Check the output widths and names of concat, mean and similarity."""
    A, B = _rotated_pair(7)
    projector = RelativeProjector(10, random_state=0).fit([A, B])
    assert projector.n_components_ == 10
    assert projector.transform([A, B]).shape == (200, 20)
    assert projector.get_feature_names_out()[10] == "view1__relativeprojector0"
    projector.set_params(combine="mean")
    assert_allclose(projector.transform([A, B]), projector.transform_view(A, 0))
    projector.set_params(combine="similarity")
    assert_allclose(projector.transform([A, B]), 1.0)
    assert list(projector.get_feature_names_out()) == ["cosine__view0__view1"]


def test_zero_rows_stay_finite():
    """Check that a row at the view's mean maps to zeros, not NaN."""
    A, B = _rotated_pair(8)
    projector = RelativeProjector(10, random_state=0).fit([A, B])
    out = projector.transform_view(projector.means_[0][None, :], 0)
    assert_allclose(out, 0.0)


def test_no_way_back():
    """Check that translate, inverse_transform_view and partial_fit are absent."""
    A, B = _rotated_pair(9)
    projector = RelativeProjector(10, random_state=0).fit([A, B])
    for name in ("translate", "inverse_transform_view", "partial_fit"):
        assert not hasattr(projector, name)
    with pytest.raises(AttributeError, match="cannot be mapped back"):
        projector.translate(A, 0, 1)


def test_pipeline_and_grid_search():
    """Check use in a Pipeline with a classifier and in GridSearchCV."""
    rng = np.random.default_rng(10)
    A = rng.normal(size=(300, 5))
    B = A @ rng.normal(size=(5, 4)) + 0.3 * rng.normal(size=(300, 4))
    y = (A[:, 0] > 0).astype(int)
    X = np.hstack([A, B])
    model = make_pipeline(
        RelativeProjector(50, views=[slice(0, 5), slice(5, 9)], random_state=0),
        LogisticRegression(),
    )
    assert model.fit(X, y).score(X, y) > 0.8
    search = GridSearchCV(
        RelativeProjector(views=[slice(0, 5), slice(5, 9)], random_state=0),
        {"n_anchors": [5, 50]},
        cv=3,
    ).fit(X)
    assert search.best_params_["n_anchors"] == 50


def test_real_embeddings_share_relative_space():
    """Check held-out retrieval between two real models in the relative space."""
    data = load_fortunes(views=["minilm", "e5"])
    A, B = data.views["minilm"], data.views["e5"]
    projector = RelativeProjector(random_state=0).fit([A[:2000], B[:2000]])
    assert projector.score([A[2000:], B[2000:]]) > 0.6
    # Without centring, e5's common direction makes every item look alike.
    uncentred = RelativeProjector(center=False, random_state=0)
    uncentred.fit([A[:2000], B[:2000]])
    assert uncentred.score([A[2000:], B[2000:]]) < projector.score([A[2000:], B[2000:]])


def test_a_failed_refit_keeps_the_fitted_projector():
    """Check a refit refused after reading the new layout changes nothing."""
    A, B = _rotated_pair(5, n=20)
    projector = RelativeProjector(3, random_state=0).fit([A, B])
    expected = projector.transform([A, B])
    with pytest.raises(ValueError, match="at least 2 samples"):
        projector.fit([A[:1, :4], B[:1, :4]])
    assert projector.n_features_per_view_ == [A.shape[1], B.shape[1]]
    assert_allclose(projector.transform([A, B]), expected)


@pytest.mark.parametrize("center", [True, False])
def test_center_changed_after_fit_is_refused(center):
    # The anchors were centred (or not) at fit: transforming with the other
    # setting compared rows and anchors in two frames, with no error.
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(200, 8)) + 5, rng.normal(size=(200, 6)) - 3]
    projector = RelativeProjector(n_anchors=10, center=center, random_state=0)
    expected = projector.fit(X).transform(X)
    projector.set_params(center=not center)
    with pytest.raises(ValueError, match=f"fitted with center={center}"):
        projector.transform(X)
    with pytest.raises(ValueError, match="Set center back"):
        projector.transform_view(X[1], 1)
    projector.set_params(center=center)
    assert_array_equal(projector.transform(X), expected)
    # A refit takes the new value.
    refit = projector.set_params(center=not center).fit(X).transform(X)
    assert not np.allclose(refit, expected)


@pytest.mark.parametrize("offset", [1e3, 1e4])
def test_float32_rows_far_from_the_origin_keep_their_precision(offset):
    # The rows were centred on the mean rounded to float32: at a mean of
    # 1e4 and a spread of 0.01 the cosines were off by up to 0.08.
    rng = np.random.default_rng(0)
    X32 = [
        (offset + 0.01 * rng.normal(size=(400, n))).astype(np.float32) for n in (6, 5)
    ]
    projector = RelativeProjector(n_anchors=10, random_state=0)
    projector.fit([x.astype(np.float64) for x in X32])
    got = projector.transform(X32)
    assert got.dtype == np.float32
    assert_allclose(
        got, projector.transform([x.astype(np.float64) for x in X32]), atol=1e-5
    )
