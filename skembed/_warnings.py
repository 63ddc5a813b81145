"""Warnings that point at the user's line.

A warning of ``fit`` names the line that called it only when its stacklevel
counts the frames in between, and that count depends on the way in:
``fit_transform`` is scikit-learn's, and so are ``Pipeline`` and the
parameter-validation wrapper of ``fit``. With a fixed stacklevel, a
warning of ``fit_transform`` pointed into scikit-learn's ``base.py``.
:func:`warn` walks up to the first frame outside skembed, scikit-learn
and joblib instead (Python 3.12's ``skip_file_prefixes``, by hand):
scikit-learn runs the steps of a Pipeline and the fits of
``cross_validate`` through joblib, where the warnings pointed before.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import os
import sys
import warnings
from contextlib import contextmanager

import joblib
import sklearn

__all__ = ["held_warnings", "issue_again", "warn"]

_INTERNAL = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep
    for module in (sys.modules[__package__], sklearn, joblib)
)


def _internal(frame):
    return os.path.abspath(frame.f_code.co_filename).startswith(_INTERNAL)


def warn(message, category=UserWarning):
    """``warnings.warn`` attributed to the first frame outside the packages."""
    level, frame = 1, sys._getframe(0)
    while frame.f_back is not None and _internal(frame):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


@contextmanager
def held_warnings():
    """Record the warnings of the block, every one, instead of issuing them.

    The list it yields is filled as the block runs; :func:`issue_again`
    gives them out later, once the caller knows which to give.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def issue_again(caught, reword=None):
    """Issue recorded warnings again where they were first issued.

    ``reword`` may return a new text for a warning (None keeps its own).
    Each keeps its category, file, line and module, so that filters on any
    of them apply as they would have; a text repeated at one place is
    issued once, as the default action shows it.
    """
    if not caught:
        # Most fits warn of nothing: no walk over the loaded modules then.
        return
    modules = {
        getattr(module, "__file__", None): name
        for name, module in list(sys.modules.items())
    }
    registry = {}
    for warning in caught:
        text = None if reword is None else reword(warning.message)
        # A file of no module (a doctest, code given to exec) leaves the
        # module to warn_explicit, which names it after the file: passed as
        # None, the module matched no filter and the warning was dropped.
        module = modules.get(warning.filename)
        warnings.warn_explicit(
            warning.message if text is None else text,
            warning.category,
            warning.filename,
            warning.lineno,
            registry=registry,
            **({} if module is None else {"module": module}),
        )
