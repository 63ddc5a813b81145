"""Sphinx configuration of the skembed documentation.

Build (warnings are errors)::

    python -m sphinx -W -b html docs docs/_build/html
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import atexit
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from threadpoolctl import threadpool_limits

import skembed

# The gallery runs in this process on matrices of a few thousand rows, where
# BLAS threads cost more than they save (many times more on a busy machine).
threadpool_limits(limits=1, user_api="blas")

# Every number the user guide quotes is computed by this build, through the
# public API, by the script the test suite also runs; the pages include what
# it writes. It runs in its own process beside the gallery, on one BLAS thread
# (the script sets the limit; its fit times are CPU times), and the build
# waits for it before it reads any page (_wait_for_doc_numbers). Computed
# here first, it kept one core idle for about 20 s.
_DOCS = Path(__file__).parent
# The gallery's sort key (gallery_order.py) is imported from there.
sys.path.insert(0, str(_DOCS / "_scripts"))
_doc_numbers = subprocess.Popen(
    [
        sys.executable,
        str(_DOCS / "_scripts" / "doc_numbers.py"),
        str(_DOCS / "_generated"),
    ],
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
)
# A build that fails before it waits leaves no process behind.
atexit.register(_doc_numbers.kill)


def _wait_for_doc_numbers(app):
    """Fail the build if the documented numbers could not be computed."""
    stdout, stderr = _doc_numbers.communicate()
    if _doc_numbers.returncode != 0:
        raise RuntimeError(
            "docs/_scripts/doc_numbers.py failed (exit code "
            f"{_doc_numbers.returncode}); its output:\n{stdout}{stderr}"
        )


project = "skembed"
author = "The skembed developers"
project_copyright = "The skembed developers"
release = skembed.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "_generated",
    "generated/backreferences",
    "**.ipynb_checkpoints",
]
root_doc = "index"
default_role = "code"

autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # The longest example first (see the module).
    "within_subsection_order": "gallery_order.LongestFirst",
    "doc_module": ("skembed",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skembed": None},
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    # The examples run one per core: most of their time is single-threaded
    # Python (the zero-pair search, the text encoders), so two cores build the
    # gallery in about the time of its longest example plus the rest.
    "parallel": 2,
}

# scikit-learn's own API, documented (with references into its docs) by
# scikit-learn: request setters, metadata routing and set_output.
_SKLEARN_PLUMBING = {"get_metadata_routing", "set_output"}


def _skip_sklearn_plumbing(app, what, name, obj, skip, options):
    if name in _SKLEARN_PLUMBING or (
        name.startswith("set_") and name.endswith("_request")
    ):
        return True
    return None


# In reStructuredText a word ending in "_" is a link (``rotations_``), but in
# docstrings it is a fitted attribute named in plain text, e.g. a type
# "ndarray of shape (n_features_in_,)". Escape such words outside literals.
_LITERAL = re.compile(r"(``.+?``|`[^`]*`)")
_TRAILING_UNDERSCORE = re.compile(r"(?<![\w`*\\|])([A-Za-z]\w*?)_(?=[\s,)\]:;.]|$)")


def _escape_attribute_names(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if line.lstrip().startswith(".."):
            continue
        parts = _LITERAL.split(line)
        parts[::2] = [_TRAILING_UNDERSCORE.sub(r"\1\\_", part) for part in parts[::2]]
        lines[i] = "".join(parts)


def setup(app):
    # After the gallery (sphinx-gallery generates it on builder-inited at the
    # default priority 500) and before Sphinx decides which pages to read.
    app.connect("builder-inited", _wait_for_doc_numbers, priority=900)
    app.connect("autodoc-skip-member", _skip_sklearn_plumbing)
    app.connect("autodoc-process-docstring", _escape_attribute_names)


if importlib.util.find_spec("pydata_sphinx_theme") is not None:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_toc_level": 2,
        "secondary_sidebar_items": ["page-toc"],
    }
else:
    html_theme = "alabaster"
html_title = f"skembed {release}"
html_static_path: list = []
html_show_sourcelink = False
