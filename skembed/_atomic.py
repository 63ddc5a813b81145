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
import errno
import os
import uuid

__all__ = ["start_writeback", "within_name_limit", "write_atomically", "write_together"]


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
    interruption, the temporary file is removed and the error re-raised (an
    ``OSError`` of creating or renaming the file names ``path``, never the
    temporary file; one raised by ``write`` is left as it was). A ``path``
    that exists but is not a regular file or a folder (a device, a pipe or
    a socket, which the rename would remove) raises ``ValueError`` before
    ``write`` is called.
    """
    write_together([(path, write)], suffix=suffix)


def write_together(writes, *, suffix=".part"):
    """Write several files so that none is replaced unless all were written.

    Parameters
    ----------
    writes : list of (path, write) pairs
        Each file and the callable that writes it, as for
        :func:`write_atomically`.
    suffix : str, default=".part"
        Ending of the temporary names.

    Every file is first written to its own temporary file, in order; only
    when all are complete are they renamed over their targets. Files that
    belong together (search results and their scores) then never mix a new
    one with an old one after a failed write. The renames themselves are
    atomic one by one, not as a group: an ``OSError`` of a failed rename has
    an attribute ``replaced``, the paths renamed before it (which hold their
    new content while the rest keep their old one).
    """
    staged = []
    replaced = []
    try:
        for path, write in writes:
            staged.append(_stage(path, write, suffix))
        for path, temporary, target in staged:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(temporary, os.stat(target).st_mode & 0o777)
            try:
                os.replace(temporary, target)
            except OSError as exc:
                # Name the file asked for, not the hidden temporary one (a
                # second name set to None still printed as "-> None").
                error = type(exc)(exc.errno, exc.strerror, path)
                error.replaced = tuple(replaced)
                raise error from None
            replaced.append(path)
    finally:
        for _, temporary, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)


def start_writeback(file, start):
    """Ask the system to start writing ``file``'s bytes from ``start`` to disk.

    For a writer of a large file in chunks, called after each chunk. The
    file is synced before its rename (:func:`write_atomically`), and without
    this the sync waits, after the last chunk, for every byte still only in
    memory. Advising that the new bytes are not needed (Linux's
    ``POSIX_FADV_DONTNEED`` starts the writeback of dirty pages without
    waiting for it) lets the disk write each chunk while the next one is
    computed. Where the advice does not exist or is refused, nothing
    happens: it changes when bytes are written, never which.

    Returns the position up to which the writeback was asked: the
    ``start`` of the next call.
    """
    file.flush()
    end = file.tell()
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None and end > start:
        with contextlib.suppress(OSError):
            advise(file.fileno(), start, end - start, os.POSIX_FADV_DONTNEED)
    return end


def within_name_limit(name, folder, added):
    """``name``, cut short enough that ``added`` more characters still make a
    legal file name in ``folder``: a legal output name near the limit (255
    bytes on most file systems) must not fail only for its temporary file."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):
        limit = 255
    room = max(limit - added, 1)
    while len(name.encode("utf-8", "surrogateescape")) > room:
        name = name[:-1]
    return name


def _stage(path, write, suffix):
    """``write`` into a new hidden file beside ``path``: (path, it, target)."""
    path = os.fspath(path)
    if isinstance(path, bytes):
        separators = tuple(os.fsencode(s) for s in (os.sep, os.altsep) if s)
    else:
        separators = tuple(s for s in (os.sep, os.altsep) if s)
    if path.endswith(separators):
        # A name ending in a separator names a folder, as open() reads it;
        # realpath would drop the separator, and a file would be written (or
        # replaced) where the folder was meant.
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    # Through a symbolic link, the file it points to is replaced, not the link.
    target = os.path.realpath(path)
    if os.path.isdir(target):
        # The rename would refuse it, but only after the whole write (a
        # pass over a large index, for translate_file).
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if os.path.exists(target) and not os.path.isfile(target):
        # A rename would remove a device, a pipe or a socket and leave a
        # regular file in its place (as root, even /dev/null).
        raise ValueError(
            f"{path!r} exists and is not a regular file (a device, a pipe or a "
            "socket); skembed writes a complete new file and renames it over "
            "the old one, which would remove it. Give the name of a file."
        )
    folder = os.path.dirname(target)
    name = within_name_limit(os.path.basename(target), folder, 34 + len(suffix))
    temporary = os.path.join(folder, f".{name}.{uuid.uuid4().hex}{suffix}")
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
    except BaseException:
        # The writer's error as it was raised: it may come from reading the
        # input or from the caller's own code, not from this file.
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    return path, temporary, target
