"""What every command shares: errors, exit codes, progress lines, BLAS threads."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import sys
import threading
import time

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_NOT_USABLE",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USER_ERROR",
    "NotUsable",
    "Progress",
    "Terminated",
    "UserError",
    "blas_threads",
    "format_seconds",
    "one_line",
    "table",
]

# Exit codes, documented in docs/command_line.rst.
EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_NOT_USABLE = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a terminated job

# Inputs up to this many values (about 40,000 rows of 384 floats) run with
# single-threaded BLAS.
_SMALL_INPUT = 2**24


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a job scheduler), raised like Ctrl-C.

    Python's default for SIGTERM ends the process at once, so the temporary
    file of an output being written (as large as the output) was left
    behind; raised as an interruption, it unwinds through the cleanup of
    every atomic write.
    """


class UserError(Exception):
    """A mistake in the command's input: reported in one line, exit code 2."""


class NotUsable(Exception):
    """The command finished, but its result is not worth using: exit code 3."""


def format_seconds(seconds):
    """A duration as people read it: 4.2 s, 3 min 5 s, 2 h 10 min."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


class Step:
    """One running step of a command: what is done so far, for the ticker.

    ``advance(done)`` records progress in units of ``total`` (rows, bytes);
    ``note(text)`` a status shown next to it.
    """

    def __init__(self, message, total=None, unit=""):
        self.message = message
        self.total = total
        self.unit = unit
        self.done = 0
        self.status = ""
        self.start = time.perf_counter()

    def advance(self, done, total=None):
        if total is not None:
            self.total = total
        self.done = done

    def note(self, status):
        self.status = status

    def line(self):
        """The progress line: elapsed time, then rate and estimate if known."""
        elapsed = time.perf_counter() - self.start
        parts = [f"{format_seconds(elapsed)} elapsed"]
        if self.total and self.done > 0:
            share = min(self.done / self.total, 1.0)
            left = elapsed * (1.0 - share) / share
            if self.unit == "rows":
                parts.append(
                    f"{self.done:,} of {self.total:,} rows "
                    f"({self.done / max(elapsed, 1e-9):,.0f} rows/s)"
                )
            else:
                parts.append(f"{share:.0%}")
            parts.append(f"about {format_seconds(left)} left")
        if self.status:
            parts.append(self.status)
        return f"{self.message}: {', '.join(parts)}"


class Progress:
    """Progress lines on stderr, silenced by ``--quiet``.

    A step that runs longer than ``first_report`` seconds gets a line with
    its elapsed time (and, if it reports how far it is, its rate and an
    estimate of the time left), then another every ``interval`` seconds.
    """

    first_report = 3.0
    interval = 10.0

    def __init__(self, quiet, stream=None):
        self.quiet = quiet
        self.stream = stream

    def say(self, message):
        if not self.quiet:
            stream = sys.stderr if self.stream is None else self.stream
            print(f"skembed: {message}", file=stream, flush=True)

    @contextlib.contextmanager
    def step(self, message, total=None, unit=""):
        """Announce ``message``, report on it while it runs, then time it."""
        step = Step(message, total, unit)
        self.say(f"{message} ...")
        stop = threading.Event()
        ticker = None
        if not self.quiet:
            ticker = threading.Thread(target=self._tick, args=(step, stop), daemon=True)
            ticker.start()
        try:
            yield step
        finally:
            stop.set()
            if ticker is not None:
                ticker.join()
        elapsed = time.perf_counter() - step.start
        if elapsed >= 1:
            self.say(f"{message}: done in {format_seconds(elapsed)}")

    def _tick(self, step, stop):
        wait = self.first_report
        while not stop.wait(wait):
            self.say(step.line())
            wait = self.interval


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
