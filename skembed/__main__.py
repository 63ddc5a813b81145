"""``python -m skembed``: the command line (see :mod:`skembed._cli`)."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import sys

from skembed._cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
