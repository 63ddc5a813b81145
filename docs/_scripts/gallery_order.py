"""The order of the gallery examples: the longest to run first.

Sphinx-Gallery runs the examples in the order it shows them, two at a time
(``parallel`` in ``docs/conf.py``). Started first, the zero-pair example
(about a minute) runs beside all the others, and the gallery takes about
its time; in file-name order it started last and the gallery took some 15 s
longer. A class named by its import path, so that Sphinx can compare the
configuration between builds.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

ORDER = (
    "plot_zero_pair.py",
    "plot_text_pipeline.py",
    "plot_retrieval_vs_pairs.py",
    "plot_pipeline_gridsearch.py",
    "plot_out_of_space.py",
    "plot_translate_index.py",
)


class LongestFirst:
    """Sort key of Sphinx-Gallery's ``within_subsection_order``."""

    def __init__(self, src_dir):
        """Sphinx-Gallery passes the examples' folder; the order is fixed."""

    def __call__(self, filename):
        if filename not in ORDER:
            raise ValueError(
                f"gallery example {filename!r} is not listed in ORDER of "
                "docs/_scripts/gallery_order.py; add it where its running time "
                "puts it."
            )
        return ORDER.index(filename)
