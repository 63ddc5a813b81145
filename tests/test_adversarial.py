"""Adversarial inputs: extreme magnitudes, failed calls, hangs.

Each case here gave a silently wrong answer, a hang or a corrupted state in
an adversarial run over the public API. The command line's and the model
files' cases are in tests/test_main.py and tests/test_io.py.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import multiprocessing
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.stats import ortho_group

from skembed import (
    CCAAligner,
    GeneralizedProcrustesAligner,
    ProcrustesAligner,
    RidgeAligner,
    kneighbors,
)
from skembed._stats import MagnitudeError
from skembed.metrics import (
    linear_cka,
    paired_cosine,
    procrustes_distance,
    retrieval_accuracy,
)


def _rotated(seed=0, n=300, d=8):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    Q = ortho_group.rvs(d, random_state=seed)
    return A, A @ Q, Q


def _fit_in_child(X, queue):
    try:
        ProcrustesAligner().fit(X)
        queue.put("fitted")
    except ValueError as exc:
        queue.put(str(exc))


@pytest.mark.slow
def test_overflowing_centring_is_an_error_not_a_hang():
    """Check the 1e200 case that once made LAPACK's SVD loop forever."""
    X = np.array([[1e200, 0, 0, 1, 0, 0], [0, 1, 0, 0, 1, 1e200]])
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_fit_in_child, args=(X, queue))
    child.start()
    child.join(120)
    hung = child.is_alive()
    if hung:
        child.kill()
    assert not hung, "fit did not return"
    assert "outside the range of float64" in queue.get(timeout=5)


@settings(deadline=None, max_examples=20)
@given(exponent=st.integers(-37, 33), seed=st.integers(0, 100))
def test_float32_fits_are_exact_at_any_magnitude(exponent, seed):
    """Check that float32 views from 1e-37 to 1e33 give the true rotation."""
    A, B, Q = _rotated(seed)
    scale = np.float32(10.0**exponent)
    X = [A.astype(np.float32) * scale, B.astype(np.float32) * scale]
    aligner = ProcrustesAligner().fit(X)
    assert_allclose(aligner.rotations_[1], Q.T, atol=1e-4)
    assert aligner.score(X) == 1.0


@pytest.mark.parametrize("Aligner", [ProcrustesAligner, CCAAligner, RidgeAligner])
@pytest.mark.parametrize("magnitude", [1e-170, 1e170])
def test_float64_beyond_its_range_is_refused(Aligner, magnitude):
    """Check that moments float64 cannot hold give an error, not a random map.

    A ValueError of its own class, which the command line tells from other
    errors to name the file that holds the values.
    """
    A, B, _ = _rotated()
    assert issubclass(MagnitudeError, ValueError)
    with pytest.raises(MagnitudeError, match="outside the range of float64.*rescale"):
        Aligner().fit([A * magnitude, B * magnitude])


def test_generalized_procrustes_at_small_float32_magnitude():
    """Check GPA on float32 rows near 1e-25, whose products underflowed."""
    A, B, _ = _rotated(1)
    X = [(A * 1e-25).astype(np.float32), (B * 1e-25).astype(np.float32)]
    assert GeneralizedProcrustesAligner().fit(X).score(X) == 1.0


@pytest.mark.parametrize("magnitude", [1e20, 1e-25])
def test_float32_retrieval_far_from_unit_scale(magnitude):
    """Check cosine and CSLS retrieval where float32 products leave the range."""
    rng = np.random.default_rng(2)
    Q = (rng.normal(size=(100, 16)) * magnitude).astype(np.float32)
    other = (rng.normal(size=(100, 16)) * magnitude).astype(np.float32)
    assert retrieval_accuracy(Q, Q) == 1.0
    assert retrieval_accuracy(Q, Q, method="csls") == 1.0
    # Unrelated rows stay near chance (0.01), as at unit scale.
    assert retrieval_accuracy(Q, other, method="csls") < 0.1
    assert retrieval_accuracy(Q, other, method="csls") == retrieval_accuracy(
        Q / np.float32(magnitude), other / np.float32(magnitude), method="csls"
    )
    _, indices = kneighbors(Q, Q, 1)
    assert (indices[:, 0] == np.arange(100)).all()


@pytest.mark.parametrize("magnitude", [1e75, 1e80, 1e-80, 1e200, 1e-200])
def test_similarity_indices_at_extreme_float64_magnitudes(magnitude):
    """Check that the scale-invariant indices stay exact at any magnitude."""
    rng = np.random.default_rng(3)
    A = rng.normal(size=(100, 5))
    B = A @ rng.normal(size=(5, 5)) + 0.5 * rng.normal(size=(100, 5))
    for X, Y in ((A, A), (A, B)):
        expected = linear_cka(X, Y), procrustes_distance(X, Y)
        assert linear_cka(X * magnitude, Y * magnitude) == pytest.approx(expected[0])
        assert linear_cka(X * magnitude, Y * magnitude, debiased=True) == pytest.approx(
            linear_cka(X, Y, debiased=True)
        )
        got = procrustes_distance(X * magnitude, Y * magnitude)
        assert got == pytest.approx(expected[1], abs=1e-7)
    assert paired_cosine(A * magnitude, A * magnitude) == pytest.approx(1.0)


def test_failed_partial_fit_leaves_the_state_as_it_was():
    """Check that a 1-row first chunk that raises is not counted later."""
    A, B, _ = _rotated(4, n=200)
    aligner = ProcrustesAligner()
    with pytest.raises(ValueError, match="at least 2 samples"):
        aligner.partial_fit([A[:1], B[:1]])
    assert not hasattr(aligner, "_stats") and not hasattr(aligner, "view_names_")
    aligner.partial_fit([A, B])
    assert aligner._stats.n_samples_ == 200
    # A later failing call (NaN) keeps the fitted maps and statistics.
    rotation = aligner.rotations_[1].copy()
    bad = B.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        aligner.partial_fit([A, bad])
    assert aligner._stats.n_samples_ == 200
    assert_allclose(aligner.rotations_[1], rotation)


@pytest.mark.parametrize("Aligner", [GeneralizedProcrustesAligner, CCAAligner])
def test_partial_fit_of_three_views_after_a_failed_call(Aligner):
    """Check that GPA and CCA keep working after a call that raised."""
    rng = np.random.default_rng(5)
    views = [rng.normal(size=(120, 4)) for _ in range(3)]
    aligner = Aligner()
    with pytest.raises(ValueError):
        aligner.partial_fit([v[:1] for v in views])
    aligner.partial_fit(views)
    assert aligner._stats.n_samples_ == 120


def test_partial_fit_refuses_parameters_that_change_the_statistics():
    """Check that changing normalize or scale between calls is an error.

    Unless the kept statistics serve the new value too: for views of equal
    widths they include the sums of squares that scale=True needs (kept to
    check for constant views), so the continuation is the fit on all rows.
    """
    A, B, _ = _rotated(6, n=200)
    aligner = ProcrustesAligner().partial_fit([A[:100], B[:100]])
    aligner.set_params(normalize="l2")
    with pytest.raises(ValueError, match="normalize=None and is now called"):
        aligner.partial_fit([A[100:], B[100:]])
    equal = pickle.loads(pickle.dumps(aligner)).set_params(normalize=None, scale=True)
    equal.partial_fit([A[100:], B[100:]])
    refit = ProcrustesAligner(scale=True).fit([A, B])
    assert_allclose(equal.scales_, refit.scales_, rtol=1e-12)
    # A wider view solved in closed form needs its Gram matrix for the scale.
    A = np.hstack([A, A[:, :2] ** 2])
    aligner = ProcrustesAligner(reference=1, unbalanced="max_covariance")
    aligner.partial_fit([A[:100], B[:100]])
    aligner.set_params(scale=True)
    # The parameter that changed, and its values then and now (the message
    # printed every parameter's current value as if it were the first's).
    message = (
        "partial_fit started with scale=False and is now called with scale=True, "
        "which asks for other statistics than the ones kept"
    )
    with pytest.raises(ValueError, match=message):
        aligner.partial_fit([A[100:], B[100:]])
    loaded = pickle.loads(pickle.dumps(aligner))
    del loaded._stats_params  # as from a model file, which does not keep them
    with pytest.raises(ValueError, match=r"now \(.*scale=True.*\) are not those"):
        loaded.partial_fit([A[100:], B[100:]])
    aligner.set_params(scale=False).partial_fit([A[100:], B[100:]])
    assert aligner._stats.n_samples_ == 200
