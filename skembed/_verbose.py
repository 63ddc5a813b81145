"""What a fit says about its progress, as text and as fields.

A verbose estimator prints each step, prefixed with its class name, as
scikit-learn's estimators do. A caller that shows progress its own way (the
command line) listens instead: it receives the same text with the step's
fields, so it never has to read the printed lines back.
"""

import contextvars
from contextlib import contextmanager

# A context variable rather than an attribute of the estimator: ``__init__``
# only stores parameters, and a listener is the caller's, not the model's
# (it is not cloned, pickled or compared).
_LISTENER = contextvars.ContextVar("skembed_progress_listener", default=None)


def say(estimator, text, event="note", **fields):
    """Report one step of ``estimator``'s fit.

    With a listener (see :func:`listening`) the listener gets
    ``(text, event, fields)`` and nothing is printed; otherwise the text is
    printed when ``estimator.verbose`` is set.
    """
    listener = _LISTENER.get()
    if listener is not None:
        listener(text, event, fields)
    elif estimator.verbose:
        print(f"[{type(estimator).__name__}] {text}")


@contextmanager
def listening(listener):
    """Send the fits' progress inside the block to ``listener(text, event, fields)``."""
    token = _LISTENER.set(listener)
    try:
        yield listener
    finally:
        _LISTENER.reset(token)
