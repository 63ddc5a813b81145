"""Writing a file so that a failure never leaves it half-written.

Model files, command-line outputs and the text-embedding cache are all
written through :func:`write_atomically`: the bytes go to a temporary file in
the target's folder, which is then renamed over the target. A rename within
one file system is atomic, so the target holds either its old content or the
complete new one (a full disk, a file-size limit or a crash in between leave
it as it was), and concurrent readers never see a partial file.
"""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import os
import uuid

__all__ = ["write_atomically"]


def write_atomically(path, write, *, suffix=".part"):
    """``write(file)`` into a temporary file beside ``path``, then rename it.

    Parameters
    ----------
    path : str or path-like
        The file to write.
    write : callable
        Called once with a binary file object open for writing.
    suffix : str, default=".part"
        Ending of the temporary name (hidden, unique per call), for callers
        whose readers glob the folder.

    The new file keeps the permissions of a file it replaces, or gets those
    of any new file (0o666 less the umask). On any failure, including an
    interruption, the temporary file is removed and the error re-raised.
    """
    path = os.fspath(path)
    # Through a symbolic link, the file it points to is replaced, not the link.
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    temporary = os.path.join(
        folder, f".{os.path.basename(target)}.{uuid.uuid4().hex}{suffix}"
    )
    # Created exclusively: two writers never share a temporary file.
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        # A missing or read-only folder: name the file asked for, not the
        # hidden temporary one.
        raise type(exc)(exc.errno, exc.strerror, path) from None
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, os.stat(target).st_mode & 0o777)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
