"""Tests for RidgeAligner."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV

from skembed import RidgeAligner
from skembed.datasets import load_fortunes
from skembed.exceptions import ConstantViewWarning


def _paired_views(seed, n=300, widths=(6, 4), noise=0.3, dtype=float):
    """A source view and noisy affine images of it."""
    rng = np.random.default_rng(seed)
    source = rng.normal(size=(n, widths[0])) + rng.normal(scale=3.0, size=widths[0])
    views = [source]
    for d in widths[1:]:
        M = rng.normal(size=(widths[0], d))
        views.append(source @ M + 2.0 + noise * rng.normal(size=(n, d)))
    return [v.astype(dtype) for v in views]


@pytest.mark.parametrize("alpha", [1e-3, 1.0, 100.0])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_matches_sklearn_ridge(alpha, fit_intercept):
    """Check maps, intercepts and mapped rows against Ridge(view -> reference)."""
    A, B, C = _paired_views(0, widths=(6, 4, 5))
    # Ridge predicts in the reference view's raw frame.
    aligner = RidgeAligner(
        alpha, reference=1, fit_intercept=fit_intercept, output_frame="reference"
    )
    aligner.fit([A, B, C])
    for k, view in ((0, A), (2, C)):
        ridge = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(view, B)
        assert_allclose(aligner.maps_[k], ridge.coef_.T, atol=1e-8)
        assert_allclose(aligner.intercepts_[k], ridge.intercept_, atol=1e-8)
        assert_allclose(aligner.transform_view(view, k), ridge.predict(view), atol=1e-8)
        assert_allclose(aligner.translate(view, k, 1), ridge.predict(view), atol=1e-8)


@pytest.mark.parametrize("offset", [300.0, 900.0])
def test_matches_sklearn_ridge_on_collinear_columns_far_from_the_origin(offset):
    """Check float64 rows far from the origin with nearly collinear columns.

    The moments took no pilot shift below a squared mean of 1e6 times the
    spread, and the uncentred products kept too few digits for two nearly
    collinear columns: the maps differed from Ridge's by 1.5e-5 to 1.8e-4
    (relative) just under that ratio.
    """
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((5000, 4))
    Z[:, 1] = Z[:, 0] + 1e-3 * rng.standard_normal(5000)
    Y = np.c_[1e3 * (Z[:, 1] - Z[:, 0]), Z[:, 2]] + 0.01 * rng.standard_normal(
        (5000, 2)
    )
    X = Z + offset
    ridge = Ridge(alpha=0.0, solver="svd").fit(X, Y)
    aligner = RidgeAligner(alpha=0.0, reference=1).fit([X, Y])
    assert_allclose(
        aligner.maps_[0], ridge.coef_.T, rtol=0, atol=1e-7 * np.abs(ridge.coef_).max()
    )


@settings(deadline=None, max_examples=30)
@given(
    data=st.tuples(
        arrays(np.float64, (20, 3), elements=st.floats(-10, 10)),
        arrays(np.float64, (20, 4), elements=st.floats(-10, 10)),
    ),
    alpha=st.floats(1e-2, 1e2),
    fit_intercept=st.booleans(),
)
# A constant column of tiny entries: its centred moments are 0, and their
# rounding residue must not be taken for moments lost below float64's range.
@example(
    data=(np.full((20, 3), 4.931363577321392e-178), np.zeros((20, 4))),
    alpha=1.0,
    fit_intercept=False,
)
# One entry near 1e-178 among zeros: its moments (about 1e-356) lie below
# float64's range, which the fit refuses as documented.
@example(
    data=(np.pad(np.full((1, 1), 4.931363577321392e-178), ((0, 19), (0, 2))),
          np.zeros((20, 4))),
    alpha=1.0,
    fit_intercept=False,
)  # fmt: skip
def test_matches_sklearn_ridge_on_any_data(data, alpha, fit_intercept):
    """Check agreement with Ridge on arbitrary bounded data, degenerate included.

    The only other outcome allowed is the documented refusal of embeddings
    whose second moments leave float64's range, and only for data with a
    column whose range of values is not zero but below 1e-150 (scikit-learn's
    Ridge rounds such moments to zero instead). A constant column has zero
    moments, which are never refused.
    """
    X, Y = data
    aligner = RidgeAligner(
        alpha, reference=1, fit_intercept=fit_intercept, output_frame="reference"
    )
    spread = np.ptp(np.vstack([X.T, Y.T]), axis=1)
    tiny = bool(np.any((spread > 0) & (spread < 1e-150)))
    try:
        aligner.fit([X, Y])
    except ValueError as exc:
        if not tiny or "outside the range of float64" not in str(exc):
            raise
        return
    ridge = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X, Y)
    scale = 1 + np.abs(ridge.predict(X)).max()
    assert_allclose(aligner.transform_view(X, 0), ridge.predict(X), atol=1e-8 * scale)


def test_reference_passes_through_and_is_named():
    """Check the identity map of the reference, chosen by name, and shapes."""
    A, B, C = _paired_views(1, widths=(6, 4, 5))
    X = np.hstack([A, B, C])
    views = {"a": slice(0, 6), "b": slice(6, 10), "c": slice(10, 15)}
    aligner = RidgeAligner(views=views, reference="c").fit(X)
    assert aligner.reference_ == 2
    assert_allclose(aligner.maps_[2], np.eye(5))
    assert_allclose(aligner.intercepts_[2], 0.0)
    assert_allclose(aligner.transform_view(C, "c"), C - C.mean(axis=0), atol=1e-12)
    aligner.set_params(output_frame="reference")
    assert_allclose(aligner.transform_view(C, "c"), C, atol=1e-12)
    assert aligner.n_components_ == 5
    assert aligner.transform(X).shape == (300, 15)
    assert aligner.get_feature_names_out()[0] == "a__ridgealigner0"


def test_translate_into_non_reference_view_is_the_reverse_ridge():
    """Check the back-map into a non-reference view: exact when invertible,
    otherwise the ridge regression of that view on the reference view, so that
    translate does not depend on which of the two views is the reference."""
    rng = np.random.default_rng(2)
    A = rng.normal(size=(200, 4))
    M = rng.normal(size=(4, 4)) + 2 * np.eye(4)
    B = A @ M - 1.0
    aligner = RidgeAligner(alpha=0, reference=0).fit([A, B])
    assert_allclose(aligner.translate(A, 0, 1), B, atol=1e-8)

    A, B = _paired_views(3, widths=(6, 3))
    for alpha in (0.5, 20.0):
        away = RidgeAligner(alpha=alpha, reference=1).fit([A, B])
        towards = RidgeAligner(alpha=alpha, reference=0).fit([A, B])
        # B -> A: the ridge regression of A on B, fitted either way.
        expected = Ridge(alpha=alpha).fit(B, A).predict(B)
        assert_allclose(away.translate(B, 1, 0), expected, atol=1e-8)
        assert_allclose(towards.translate(B, 1, 0), expected, atol=1e-8)
        assert_allclose(
            away.inverse_transform_view(away.transform_view(B, 1), 0),
            expected,
            atol=1e-8,
        )


def test_back_map_of_a_singular_reference_is_minimum_norm():
    """Check that alpha=0 with a rank-deficient reference still translates."""
    rng = np.random.default_rng(8)
    A = rng.normal(size=(100, 5))
    B = A[:, :3] @ rng.normal(size=(3, 4))  # rank 3 of 4 columns
    aligner = RidgeAligner(alpha=0, reference=1).fit([A, B])
    Ac, Bc = A - A.mean(axis=0), B - B.mean(axis=0)
    expected = Bc @ np.linalg.lstsq(Bc, Ac, rcond=None)[0] + A.mean(axis=0)
    assert_allclose(aligner.translate(B, 1, 0), expected, atol=1e-8)


def test_reference_view_below_float64_range_still_fits():
    """Check a reference view whose second moments underflow float64.

    Its cross moments with the other view are enough for the forward map,
    so fit must work; every regression on it is the zero map at float64
    precision, so translating out of it gives the target view's mean.
    """
    rng = np.random.default_rng(9)
    X = rng.normal(size=(20, 3))
    Y = 1e-160 * rng.integers(1, 5, size=(20, 4))  # squares below 1e-300
    aligner = RidgeAligner(alpha=1.0, reference=1).fit([X, Y])
    assert np.all(np.isfinite(aligner.maps_[0]))
    assert_allclose(aligner.translate(Y, 1, 0), np.tile(X.mean(axis=0), (20, 1)))


@pytest.mark.parametrize(
    "scale, alpha", [(1e-160, 0.0), (1e160, 0.0), (1e160, 1.0), (1e155, 1.0)]
)
def test_reference_view_outside_float64_range_is_refused(scale, alpha):
    """Check a reference whose regressions are not zero is refused, not zeroed.

    Least squares does not shrink with the scale of the reference, and above
    float64 a ridge penalty is negligible: the back-map is not the zero map.
    """
    rng = np.random.default_rng(9)
    R = rng.normal(size=(50, 4))
    B = R @ rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match="outside the range of float64.*rescale"):
        RidgeAligner(alpha=alpha).fit([R * scale, B])


def test_alpha_zero_is_least_squares_and_rank_deficiency_is_an_error():
    """Check alpha=0 against lstsq and the error for a singular Gram matrix."""
    A, B = _paired_views(4, widths=(6, 4))
    aligner = RidgeAligner(alpha=0, reference=1).fit([A, B])
    centred = A - A.mean(axis=0)
    expected = np.linalg.lstsq(centred, B - B.mean(axis=0), rcond=None)[0]
    assert_allclose(aligner.maps_[0], expected, atol=1e-10)
    with pytest.raises(ValueError, match=r"'view0' is rank-deficient.*alpha > 0"):
        RidgeAligner(alpha=0, reference=1).fit([A[:5], B[:5]])
    with pytest.raises(ValueError, match="alpha"):
        RidgeAligner(alpha=-1.0).fit([A, B])
    constant = RidgeAligner(alpha=1.0, reference=1, output_frame="reference")
    constant.fit([np.ones_like(A), B])
    assert_allclose(constant.transform_view(A, 0), np.tile(B.mean(axis=0), (300, 1)))


def test_float32_is_preserved():
    """Check float32 in, float32 out, close to the float64 result."""
    views = _paired_views(5)
    views32 = [v.astype(np.float32) for v in views]
    aligner64 = RidgeAligner(reference=1).fit(views)
    aligner32 = RidgeAligner(reference=1).fit(views32)
    for out in (
        aligner32.transform(views32),
        aligner32.transform_view(views32[0], 0),
        aligner32.translate(views32[1], 1, 0),
    ):
        assert out.dtype == np.float32
    assert_allclose(aligner32.maps_[0], aligner64.maps_[0], atol=1e-4)
    assert_allclose(aligner32.transform(views32), aligner64.transform(views), atol=1e-3)


@pytest.mark.parametrize("n_chunks", [2, 9])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_partial_fit_equals_fit(n_chunks, fit_intercept):
    """Check that partial_fit over chunks equals fit on the stacked rows."""
    X = np.hstack(_paired_views(6, widths=(6, 4, 5)))
    full = RidgeAligner(views=3, fit_intercept=fit_intercept).fit(X)
    streamed = RidgeAligner(views=3, fit_intercept=fit_intercept)
    for chunk in np.array_split(X, n_chunks):
        streamed.partial_fit(chunk)
    for ours, ref in zip(streamed.maps_, full.maps_, strict=True):
        assert_allclose(ours, ref, atol=1e-10)
    assert_allclose(streamed.transform(X), full.transform(X), atol=1e-9)


def test_grid_search_over_alpha_without_labels():
    """Check that GridSearchCV selects alpha with the aligner's own score."""
    data = load_fortunes()
    X = np.hstack([data.views["minilm"][:600], data.views["e5"][:600]])
    search = GridSearchCV(
        RidgeAligner(reference=1), {"alpha": [1e-3, 1.0, 1e3]}, cv=2
    ).fit(X)
    assert search.best_params_ == {"alpha": 1.0}
    assert search.best_score_ > 0.2


def _augmented_reduced_rank(X, Y, alpha, rank):
    """Reduced-rank ridge from the rows: RRR on [X; sqrt(alpha) I] -> [Y; 0]."""
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    d = X.shape[1]
    X_aug = np.vstack([Xc, np.sqrt(alpha) * np.eye(d)])
    Y_aug = np.vstack([Yc, np.zeros((d, Y.shape[1]))])
    W = np.linalg.lstsq(X_aug, Y_aug, rcond=None)[0]
    _, _, right = np.linalg.svd(X_aug @ W, full_matrices=False)
    V = right[:rank].T
    return W @ V @ V.T, V


@pytest.mark.parametrize("widths", [(8, 6), (5, 9)])
@pytest.mark.parametrize("rank", [1, 3])
def test_rank_matches_reduced_rank_ridge_on_rows(widths, rank):
    """Check rank=r against reduced-rank regression on the augmented rows."""
    A, B = _paired_views(3, n=120, widths=widths, noise=1.0)
    aligner = RidgeAligner(alpha=2.0, reference=1, rank=rank).fit([A, B])
    expected, V = _augmented_reduced_rank(A, B, 2.0, rank)
    assert_allclose(aligner.maps_[0], expected, atol=1e-8)
    assert np.linalg.matrix_rank(aligner.maps_[0]) == rank
    # translate back into view 0 is the rank-r ridge regression of A on B.
    back, _ = _augmented_reduced_rank(B, A, 2.0, rank)
    assert_allclose(
        aligner.translate(B, 1, 0),
        (B - B.mean(axis=0)) @ back + A.mean(axis=0),
        atol=1e-8,
    )


def test_rank_minimises_the_objective_among_low_rank_maps():
    """Check the rank-r map beats the truncated SVD of the full ridge map."""
    A, B = _paired_views(4, n=80, widths=(10, 7), noise=2.0)
    Ac, Bc = A - A.mean(axis=0), B - B.mean(axis=0)
    alpha = 5.0

    def objective(W):
        return np.sum((Ac @ W - Bc) ** 2) + alpha * np.sum(W**2)

    full = RidgeAligner(alpha=alpha, reference=1).fit([A, B]).maps_[0]
    low = RidgeAligner(alpha=alpha, reference=1, rank=2).fit([A, B]).maps_[0]
    U, s, Vt = np.linalg.svd(full, full_matrices=False)
    truncated = (U[:, :2] * s[:2]) @ Vt[:2]
    assert objective(full) <= objective(low) < objective(truncated)


@pytest.mark.parametrize("widths", [(6, 4), (4, 6)])
def test_full_rank_equals_plain_ridge(widths):
    """Check that rank = the smaller width gives the plain ridge maps."""
    A, B = _paired_views(5, widths=widths)
    plain = RidgeAligner(alpha=0.3).fit([A, B])
    ranked = RidgeAligner(alpha=0.3, rank=min(widths)).fit([A, B])
    assert_allclose(ranked.maps_[1], plain.maps_[1], atol=1e-10)
    assert_allclose(ranked.translate(A, 0, 1), plain.translate(A, 0, 1), atol=1e-8)


def test_low_rank_generalises_from_few_pairs():
    """Check that a rank matching a low-rank truth beats full ridge on new rows."""
    rng = np.random.default_rng(6)
    truth = rng.normal(size=(30, 2)) @ rng.normal(size=(2, 30))
    A = rng.normal(size=(1060, 30))
    B = A @ truth + 2.0 * rng.normal(size=(1060, 30))
    fit, held = slice(0, 60), slice(60, None)
    errors = {}
    for rank in (None, 2):
        aligner = RidgeAligner(alpha=1.0, reference=1, rank=rank)
        aligner.fit([A[fit], B[fit]])
        errors[rank] = np.mean(
            (aligner.translate(A[held], 0, 1) - A[held] @ truth) ** 2
        )
    assert errors[2] < 0.5 * errors[None]


def test_rank_larger_than_the_map_is_refused():
    """Check the error that names the view and the largest possible rank."""
    A, B = _paired_views(7, widths=(6, 4))
    with pytest.raises(
        ValueError, match=r"rank=5 exceeds .* view 'view1' .* min\(4, 6\) = 4"
    ):
        RidgeAligner(rank=5).fit([A, B])
    with pytest.raises(ValueError, match="rank"):
        RidgeAligner(rank=0).fit([A, B])


def test_partial_fit_judges_rank_by_every_chunk_dtype():
    """Check a float32 chunk after float64 ones: float64 precision is kept.

    The rank test's tolerance follows the data's precision; it used to follow
    the last chunk alone, and a float32 last chunk made well-determined maps
    "rank-deficient" that fit on the same rows accepts.
    """
    rng = np.random.default_rng(0)
    C = rng.normal(size=(3000, 10))
    X = np.hstack([C, C @ rng.normal(size=(10, 10))]) + 100
    params = dict(
        alpha=0, fit_intercept=False, reference=1, views=[slice(0, 10), slice(10, 20)]
    )
    whole = RidgeAligner(**params).fit(X)
    chunked = RidgeAligner(**params).partial_fit(X[:2900])
    chunked.partial_fit(X[2900:].astype(np.float32))
    assert chunked._fit_dtype == np.float64
    assert_allclose(chunked.maps_[0], whole.maps_[0], rtol=1e-5, atol=1e-8)


def test_partial_fit_refuses_views_changed_between_chunks(tmp_path):
    """Check that set_params(views=...) between chunks is refused, not ignored.

    Later chunks were split by the first call's layout whatever views said:
    the maps silently differed from fit's with the new views.
    """
    from skembed import load_aligner, save_aligner

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    aligner = RidgeAligner(views=[[0, 1, 2], [3, 4, 5]]).partial_fit(X[:20])
    aligner.set_params(views=[[3, 4, 5], [0, 1, 2]])
    with pytest.raises(ValueError, match=r"started with views=\[\[0, 1, 2\]"):
        aligner.partial_fit(X[20:])
    # An equal value, even a new object, continues; fit starts again.
    aligner.set_params(views=[[0, 1, 2], [3, 4, 5]]).partial_fit(X[20:])
    assert_allclose(
        aligner.maps_[0],
        RidgeAligner(views=[[0, 1, 2], [3, 4, 5]]).fit(X).maps_[0],
        atol=1e-12,
    )
    aligner.set_params(views=[[3, 4, 5], [0, 1, 2]]).fit(X[:20]).partial_fit(X[20:])
    # The first call's views travel with a saved model.
    save_aligner(aligner, tmp_path / "m.npz")
    loaded = load_aligner(tmp_path / "m.npz")
    loaded.set_params(views=[[0, 1, 2], [3, 4, 5]])
    with pytest.raises(ValueError, match="started with views"):
        loaded.partial_fit(X[20:])


def test_exactly_collinear_columns_are_refused_whatever_the_rounding():
    """Check alpha=0 refuses a copied column for every draw, not most of them.

    The eigensolver leaves an exact zero of a small Gram matrix a few eps of
    the largest eigenvalue away; the rank test must not depend on that.
    """
    rng = np.random.default_rng(17)
    for _ in range(100):
        X = rng.normal(size=(30, 5))
        X[:, -1] = X[:, 0]
        R = rng.normal(size=(30, 3))
        with pytest.raises(ValueError, match="rank-deficient"):
            RidgeAligner(alpha=0).fit([R, X])
        # as the reference, its back-map is the minimum-norm least squares
        aligner = RidgeAligner(alpha=0).fit([X, R])
        centred = X - X.mean(axis=0)
        expected = np.linalg.lstsq(centred, R - R.mean(axis=0), rcond=None)[0]
        new = rng.normal(size=(4, 5))
        assert_allclose(
            aligner.translate(new, 0, 1),
            (new - X.mean(axis=0)) @ expected + R.mean(axis=0),
            atol=1e-8,
        )


def test_a_failed_refit_keeps_the_fitted_maps():
    """Check a refit refused in the solver leaves the last fitted model."""
    rng = np.random.default_rng(0)
    A6, B4 = rng.normal(size=(50, 6)), rng.normal(size=(50, 4))
    aligner = RidgeAligner(rank=4).fit([A6, B4])
    expected = aligner.transform([A6, B4])
    with pytest.raises(ValueError, match="rank=4 exceeds"):
        aligner.fit([rng.normal(size=(50, 5)), rng.normal(size=(50, 3))])
    assert aligner.n_features_per_view_ == [6, 4]
    assert_allclose(aligner.transform([A6, B4]), expected)


def test_partial_fit_continues_with_column_selector_views():
    """Check that make_column_selector views, unchanged, let partial_fit go on.

    The first call keeps a copy of views; a selector has no equality of its
    own, so the copy never equalled the original and every second call was
    refused. A selector for other columns is still refused.
    """
    import pandas as pd
    from sklearn.compose import make_column_selector

    rng = np.random.default_rng(0)
    names = [f"a{i}" for i in range(3)] + [f"b{i}" for i in range(3)]
    frame = pd.DataFrame(rng.normal(size=(40, 6)), columns=names)
    views = {
        "a": make_column_selector(pattern="^a"),
        "b": make_column_selector(pattern="^b"),
    }
    aligner = RidgeAligner(views=views).partial_fit(frame[:20])
    aligner.partial_fit(frame[20:])
    assert_allclose(
        aligner.maps_[0], RidgeAligner(views=views).fit(frame).maps_[0], atol=1e-12
    )
    swapped = {"a": views["b"], "b": views["a"]}
    with pytest.raises(ValueError, match="started with views"):
        aligner.set_params(views=swapped).partial_fit(frame[20:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("constant_view", [0, 1])
def test_a_constant_view_is_reported(dtype, constant_view):
    # With alpha > 0 the maps of a constant view (or onto a constant
    # reference) are zero: every row went to one point without a word.
    rng = np.random.default_rng(0)
    X = [
        rng.normal(size=(100, 5)).astype(dtype),
        rng.normal(size=(100, 4)).astype(dtype),
    ]
    X[constant_view] = np.full_like(X[constant_view], 0.3)
    with pytest.warns(
        UserWarning, match=rf"\['view{constant_view}'\] are constant"
    ) as record:
        aligner = RidgeAligner().fit(X)
    constant = [w.message for w in record if w.category is ConstantViewWarning]
    assert [w.views for w in constant] == [(f"view{constant_view}",)]
    assert aligner.transform_view(X[1], 1).dtype == dtype
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RidgeAligner().fit([X[1 - constant_view], X[1 - constant_view][:, :3]])
    if constant_view == 0:
        # The reference: least squares onto it is zero too.
        with pytest.warns(UserWarning, match="every map onto the reference is zero"):
            RidgeAligner(alpha=0).fit(X)
    else:
        with pytest.raises(ValueError, match="is constant over the training rows"):
            RidgeAligner(alpha=0).fit(X)
