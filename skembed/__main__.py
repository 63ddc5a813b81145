"""``python -m skembed`` and the installed ``skembed`` command.

See :mod:`skembed._cli` for the commands.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import sys

__all__ = ["build_parser", "main"]

# Kept in step with skembed._cli._common.EXIT_INTERRUPTED, which cannot be
# imported before the interrupt it names is caught.
_EXIT_INTERRUPTED = 130


def main(argv=None):
    """Run the command line; returns the exit code.

    The command line's code, with numpy, scipy and scikit-learn, is imported
    here rather than at the top of the module, so that Ctrl-C while they
    load (a second or more on a busy machine) ends in one line and exit
    130, like Ctrl-C during a command, not in a traceback.
    """
    try:
        from skembed._cli import main as run

        return run(argv)
    except KeyboardInterrupt:
        print("skembed: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED


def build_parser():
    """The command line's argument parser (see :func:`skembed._cli.build_parser`)."""
    from skembed._cli import build_parser as build

    return build()


if __name__ == "__main__":
    sys.exit(main())
