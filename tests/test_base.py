"""Tests for the surface every aligner shares: frames, transform, translate."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import ortho_group

from skembed import (
    ProcrustesAligner,
    RelativeProjector,
    RidgeAligner,
    SelfLearningAligner,
)
from skembed.datasets import load_fortunes
from skembed.metrics import retrieval_accuracy


def _shifted_rotation(seed=0, n=300, d=6):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d)) + 5.0
    Q = ortho_group.rvs(d, random_state=seed)
    B = A @ Q + 3.0 + 0.01 * rng.normal(size=(n, d))
    return A, B


@pytest.mark.parametrize("Aligner", [ProcrustesAligner, RidgeAligner])
def test_default_frame_is_centred(Aligner):
    """Check that transform_view maps the training rows to mean zero."""
    A, B = _shifted_rotation()
    aligner = Aligner().fit([A, B])
    for k, block in enumerate((A, B)):
        Z = aligner.transform_view(block, k)
        assert_allclose(Z.mean(axis=0), 0.0, atol=1e-10)
    Z = aligner.transform([A, B])
    assert_allclose(Z.mean(axis=0), 0.0, atol=1e-10)
    mean = aligner.set_params(combine="mean").transform([A, B])
    assert_allclose(mean.mean(axis=0), 0.0, atol=1e-10)


@pytest.mark.parametrize("Aligner", [ProcrustesAligner, RidgeAligner])
def test_reference_frame_adds_reference_mean(Aligner):
    """Check that output_frame="reference" returns the reference's raw frame."""
    A, B = _shifted_rotation(1)
    centred = Aligner().fit([A, B])
    raw = Aligner(output_frame="reference").fit([A, B])
    shift = A.mean(axis=0)
    assert_allclose(raw.transform_view(A, 0), A, atol=1e-10)
    for k, block in enumerate((A, B)):
        assert_allclose(
            raw.transform_view(block, k),
            centred.transform_view(block, k) + shift,
            atol=1e-10,
        )
    assert_allclose(
        raw.transform([A, B]), centred.transform([A, B]) + np.tile(shift, 2)
    )
    # The cosines between mapped views are computed centred in both frames.
    centred.set_params(combine="similarity")
    raw.set_params(combine="similarity")
    assert_allclose(raw.transform([A, B]), centred.transform([A, B]))


@pytest.mark.parametrize("frame", ["centered", "reference"])
def test_inverse_and_translate_in_either_frame(frame):
    """Check round trips, and that translate ends in the target's raw frame."""
    A, B = _shifted_rotation(2)
    aligner = ProcrustesAligner(output_frame=frame).fit([A, B])
    Z = aligner.transform_view(B, 1)
    assert_allclose(aligner.inverse_transform_view(Z, 1), B, atol=1e-10)
    # B is close to a rotated, shifted copy of A: translating it lands near A.
    translated = aligner.translate(B, source=1, target=0)
    assert_allclose(translated, A, atol=0.05)
    assert_allclose(
        translated,
        ProcrustesAligner().fit([A, B]).translate(B, source=1, target=0),
        atol=1e-12,
    )


def test_self_learning_follows_its_base_frame():
    """Check that SelfLearningAligner returns the frame of its base aligner."""
    A, B = _shifted_rotation(3, n=200)
    pairs = np.column_stack([np.arange(200)] * 2)
    for frame in ("centered", "reference"):
        base = ProcrustesAligner(output_frame=frame)
        aligner = SelfLearningAligner(base, random_state=0).fit([A, B], pairs=pairs)
        assert_allclose(
            aligner.transform_view(B, 1),
            aligner.aligner_.transform_view(B, 1),
        )
    assert_allclose(aligner.transform_view(A, 0), A, atol=1e-8)


def test_public_shared_space_is_the_scored_space():
    """Check that cosine search on transform_view outputs needs no extra centring.

    e5 vectors share one large direction, so in the raw frame of an e5
    reference cosine search loses accuracy; the default centred frame is the
    space that ``score`` measures, through public methods only.
    """
    data = load_fortunes()
    minilm, e5 = data.views["minilm"], data.views["e5"]
    train, test = slice(0, 2000), slice(2000, 3000)
    for reference in (0, 1):
        aligner = ProcrustesAligner(reference=reference)
        aligner.fit([minilm[train], e5[train]])
        Z_m = aligner.transform_view(minilm[test], 0)
        Z_e = aligner.transform_view(e5[test], 1)
        both = 0.5 * (retrieval_accuracy(Z_e, Z_m) + retrieval_accuracy(Z_m, Z_e))
        assert both == aligner.score([minilm[test], e5[test]])
        assert both > 0.97
    # The raw frame of the e5 reference is the trap the default avoids.
    raw = ProcrustesAligner(reference=1, output_frame="reference")
    raw.fit([minilm[train], e5[train]])
    raw_accuracy = retrieval_accuracy(
        raw.transform_view(e5[test], 1), raw.transform_view(minilm[test], 0)
    )
    assert raw_accuracy < both - 0.02


def test_get_feature_names_out_validates_input_features():
    """Check input_features as scikit-learn transformers do: count and names."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 6))
    frame = pd.DataFrame(X, columns=list("abcdef"))
    aligner = ProcrustesAligner(views=[["a", "b", "c"], ["d", "e", "f"]]).fit(frame)
    expected = aligner.get_feature_names_out()
    assert_array_equal(aligner.get_feature_names_out(list("abcdef")), expected)
    with pytest.raises(ValueError, match="not equal to feature_names_in_"):
        aligner.get_feature_names_out(list("abcdeg"))
    projector = RelativeProjector(
        5, views=[slice(0, 3), slice(3, 6)], random_state=0
    ).fit(X)
    with pytest.raises(ValueError, match="length equal to number of features"):
        projector.get_feature_names_out(["only", "two"])


def _warning_cases():
    from skembed import (
        ContrastiveAligner,
        GeneralizedProcrustesAligner,
        ProcrustesAligner,
        RelativeProjector,
        ResidualMLPAligner,
        SelfLearningAligner,
    )

    rng = np.random.default_rng(0)
    A, B, C = (rng.normal(size=(60, 6)) for _ in range(3))
    wide = rng.normal(size=(60, 8))
    return {
        "self-learning, no structure": lambda: SelfLearningAligner(
            init="sorted_similarity"
        ).fit([A, B]),
        "self-learning, n_iter": lambda: SelfLearningAligner(n_iter=1).fit(
            [A, B], pairs=[[0, 0], [1, 1], [2, 2]]
        ),
        "residual mlp": lambda: ResidualMLPAligner(hidden=4, max_iter=1).fit([A, B]),
        "contrastive": lambda: ContrastiveAligner(max_iter=1).fit([A, B]),
        "wider source, fit": lambda: ProcrustesAligner(max_iter=1).fit(
            [A[:, :3], wide]
        ),
        "wider source, partial_fit": lambda: ProcrustesAligner(max_iter=1).partial_fit(
            [A[:, :3], wide]
        ),
        "generalized procrustes": lambda: GeneralizedProcrustesAligner(max_iter=1).fit(
            [A, B, C]
        ),
        "relative, anchors capped": lambda: RelativeProjector(n_anchors=100).fit(
            [A, B]
        ),
    }


@pytest.mark.parametrize("case", list(_warning_cases()))
def test_warnings_of_fit_point_at_the_caller(case):
    """Check a warning raised while fitting names the line that called fit.

    A stacklevel one frame short points into scikit-learn's fit wrapper,
    where filters by module and the shown location are of no use.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _warning_cases()[case]()
    assert caught, "the case raised no warning"
    assert {w.filename for w in caught} == {__file__}


def test_pairs_passed_as_y_are_named():
    """Check fit(X, pairs) warns that y is ignored, and names the keyword."""
    from skembed import SelfLearningAligner

    rng = np.random.default_rng(0)
    A = rng.normal(size=(40, 4))
    pairs = np.array([[0, 0], [1, 1], [2, 2]])
    with pytest.warns(UserWarning, match=r"pass known pairs by keyword") as caught:
        SelfLearningAligner(n_iter=2).fit([A, A], pairs)
    assert {w.filename for w in caught} >= {__file__}
    with pytest.warns(UserWarning, match=r"pass known pairs by keyword"):
        SelfLearningAligner(n_iter=2).fit([A, A], pairs.tolist())


def test_one_models_rows_where_all_views_are_expected_point_to_transform_view():
    """Check transform(B) and score(B) of a two-view aligner: scikit-learn's
    feature-count error alone did not say what to call instead."""
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(50, 8)), rng.normal(size=(50, 6))
    aligner = ProcrustesAligner().fit([A, B])
    for method in (aligner.transform, aligner.score):
        with pytest.raises(ValueError, match="as wide as view 'view1' alone") as error:
            method(B)
        assert "transform_view(X, 'view1')" in str(error.value)
        assert "translate(X, source='view1'" in str(error.value)
    # Other widths keep scikit-learn's message alone.
    with pytest.raises(ValueError, match=r"expecting 14 features as input\.$"):
        aligner.transform(rng.normal(size=(5, 5)))


@pytest.mark.parametrize("way", ["fit", "fit_transform", "pipeline"])
def test_fit_warnings_point_at_the_users_line(way):
    """Check a warning of fit names the caller, however fit is reached.

    The stacklevels counted the frames of a direct fit: through
    scikit-learn's fit_transform (or a Pipeline) the warnings pointed into
    scikit-learn's base.py.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import make_pipeline

    from skembed import ContrastiveAligner, ProcrustesAligner

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(120, 8)), rng.normal(size=(120, 6))
    cases = [
        (ContrastiveAligner(max_iter=2, random_state=0), [A, B], ConvergenceWarning),
        (ProcrustesAligner(), [np.ones((120, 8)), B], UserWarning),
    ]
    for aligner, X, category in cases:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            if way == "fit":
                aligner.fit(X)
            elif way == "fit_transform":
                aligner.fit_transform(X)
            else:
                make_pipeline(aligner).fit_transform(X)
        found = [w for w in record if issubclass(w.category, category)]
        assert found, [str(w.message) for w in record]
        assert all(w.filename == __file__ for w in found), [w.filename for w in found]


def test_fit_warnings_in_pipelines_and_cross_validation_point_at_the_caller():
    """Check a warning of fit under a Pipeline of two steps or cross_validate.

    Both run fit through joblib (the Pipeline's memory, the folds' loop),
    where the warnings pointed: joblib's memory.py or parallel.py.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_validate
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(60, 4)), rng.normal(size=(60, 3))
    y = rng.integers(0, 2, 60)
    for run in (
        lambda: make_pipeline(
            RelativeProjector(n_anchors=100), LogisticRegression()
        ).fit([A, B], y),
        lambda: cross_validate(
            RelativeProjector(n_anchors=100), np.hstack([A, B]), cv=2
        ),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run()
        found = [w for w in caught if "n_anchors" in str(w.message)]
        assert found, [str(w.message) for w in caught]
        assert {w.filename for w in found} == {__file__}


def test_an_unknown_combine_set_after_fit_is_named():
    """Check set_params(combine=...) to an unknown value, then transform.

    combine is read at transform; an unknown value gave a bare KeyError.
    """
    from skembed import ProcrustesAligner

    rng = np.random.default_rng(0)
    X = [rng.normal(size=(30, 4)), rng.normal(size=(30, 3))]
    aligner = ProcrustesAligner().fit(X).set_params(combine="sum")
    for call in (lambda: aligner.transform(X), aligner.get_feature_names_out):
        with pytest.raises(ValueError, match="'combine' parameter.*got 'sum'"):
            call()
