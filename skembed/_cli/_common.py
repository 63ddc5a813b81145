"""What every command shares: user errors, progress lines, BLAS threads, tables."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import sys
import time

__all__ = ["Progress", "UserError", "blas_threads", "one_line", "table"]

# Inputs up to this many values (about 40,000 rows of 384 floats) run with
# single-threaded BLAS.
_SMALL_INPUT = 2**24


class UserError(Exception):
    """A mistake in the command's input: reported in one line, exit code 2."""


class Progress:
    """Progress lines on stderr, silenced by ``--quiet``."""

    def __init__(self, quiet):
        self.quiet = quiet

    def say(self, message):
        if not self.quiet:
            print(f"skembed: {message}", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def step(self, message):
        start = time.perf_counter()
        self.say(f"{message} ...")
        yield
        elapsed = time.perf_counter() - start
        if elapsed >= 1:
            self.say(f"{message}: done in {elapsed:.1f} s")


def blas_threads(n_values):
    """Single-threaded BLAS for small inputs, the library default otherwise.

    On matrices of a few thousand rows, BLAS threads cost more in start-up and
    spinning than they save, badly so on a busy machine (tens of times slower).
    """
    from threadpoolctl import threadpool_limits

    if n_values <= _SMALL_INPUT:
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


def table(rows, header):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = [
        "  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)),
        line,
    ]
    for row in rows:
        out.append(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(out)


def one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__
