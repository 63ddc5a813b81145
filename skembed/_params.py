"""Parameter validation shared by skembed's estimators.

scikit-learn's constraints take ``True`` for an integer or real parameter
(``bool`` is a subclass of ``int``): ``n_components=True`` passed validation
and failed deep inside fit with a TypeError naming no parameter, and
``rank=True`` silently meant rank 1. A bool for a numeric parameter is
always a slip (a flag meant for another parameter), so it is refused here,
by name.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import functools
import inspect
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval
from sklearn.utils._param_validation import validate_params as _sklearn_validate

__all__ = ["NumbersAreNotFlagsMixin", "check_no_flag_for_a_number", "validate_params"]

_TAKES_FLAGS = ("boolean", "verbose", "random_state")


def _numeric_kind(constraints):
    """'an integer' or 'a number' if a constraint is numeric, else None."""
    kinds = set()
    for constraint in constraints:
        if isinstance(constraint, Interval):
            kinds.add(constraint.type)
        elif constraint in (Integral, Real, int, float):
            kinds.add(constraint)
    if not kinds:
        return None
    return "an integer" if kinds <= {Integral, int} else "a number"


def check_no_flag_for_a_number(constraints, params, caller_name):
    """Raise a TypeError for a bool given to a numeric parameter.

    Parameters
    ----------
    constraints : dict
        Parameter name -> list of scikit-learn constraints.

    params : dict
        Parameter name -> value.

    caller_name : str
        The estimator or function named in the message.
    """
    for name, value in params.items():
        if not isinstance(value, bool | np.bool_) or name not in constraints:
            continue
        options = constraints[name]
        if any(isinstance(c, str) and c in _TAKES_FLAGS for c in options):
            continue
        kind = _numeric_kind(options)
        if kind is not None and str in options:
            kind += " or a name"
        if kind is not None:
            raise TypeError(
                f"The {name!r} parameter of {caller_name} takes {kind}, not a "
                f"bool; got {name}={value!r}. Pass {kind} (True is not read as 1)."
            )


class NumbersAreNotFlagsMixin:
    """Refuse a bool given to a numeric parameter (see the module docstring).

    Goes left of ``BaseEstimator``; runs after scikit-learn's own validation.
    """

    def _validate_params(self):
        super()._validate_params()
        check_no_flag_for_a_number(
            self._parameter_constraints,
            self.get_params(deep=False),
            type(self).__name__,
        )


def validate_params(parameter_constraints, *, prefer_skip_nested_validation):
    """scikit-learn's ``validate_params`` for public functions, bools refused too.

    The function's arguments are checked against ``parameter_constraints``
    by scikit-learn first; then a bool given to a numeric parameter raises
    the same TypeError as in the estimators (``k=True`` had silently meant
    ``k=1``).
    """

    def decorator(func):
        signature = inspect.signature(func)

        @functools.wraps(func)
        def refuse_flags(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            check_no_flag_for_a_number(
                parameter_constraints, bound.arguments, func.__qualname__
            )
            return func(*args, **kwargs)

        validated = _sklearn_validate(
            parameter_constraints,
            prefer_skip_nested_validation=prefer_skip_nested_validation,
        )(refuse_flags)

        @functools.wraps(func)
        def named(*args, **kwargs):
            # scikit-learn's wrapper binds the arguments first, and a typo
            # (as_fram=True) or a missing argument raised Python's TypeError
            # without the function's name.
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{func.__qualname__}(): {exc}") from None
            return validated(*args, **kwargs)

        # As estimators do: what the function accepts, for introspection.
        named._parameter_constraints = parameter_constraints
        return named

    return decorator
