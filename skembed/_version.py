"""The version of skembed (read by setup.cfg and by model files)."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

__version__ = "0.2.0.dev0"
