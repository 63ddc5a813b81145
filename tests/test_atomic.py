"""Tests of the atomic file writes every skembed output goes through."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import errno
import os

import pytest

from skembed._atomic import write_atomically, write_together


def _fail_with(error):
    def write(file):
        file.write(b"partial")
        raise error

    return write


def test_files_written_together_are_all_new_or_all_old(tmp_path):
    """Check that a failed second write leaves the first file untouched."""
    first, second = tmp_path / "neighbours.csv", tmp_path / "scores.npy"
    first.write_bytes(b"old neighbours")
    second.write_bytes(b"old scores")
    full = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError) as caught:
        write_together(
            [
                (first, lambda file: file.write(b"new neighbours")),
                (second, _fail_with(full)),
            ]
        )
    # The writer's own error, unchanged (it may not be about the file).
    assert caught.value is full and full.filename is None
    assert first.read_bytes() == b"old neighbours"
    assert second.read_bytes() == b"old scores"
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name, second.name]
    write_together(
        [
            (first, lambda file: file.write(b"new neighbours")),
            (second, lambda file: file.write(b"new scores")),
        ]
    )
    assert first.read_bytes() == b"new neighbours"
    assert second.read_bytes() == b"new scores"


def test_a_failed_second_rename_says_which_files_are_new(tmp_path, monkeypatch):
    """Check a rename failing after another names the file already replaced."""
    first, second = tmp_path / "neighbours.csv", tmp_path / "scores.npy"
    first.write_bytes(b"old neighbours")
    second.write_bytes(b"old scores")
    replace = os.replace
    calls = []

    def replace_once(source, target):
        calls.append(target)
        if len(calls) == 2:
            raise PermissionError(errno.EACCES, "Permission denied", source)
        replace(source, target)

    monkeypatch.setattr("skembed._atomic.os.replace", replace_once)
    with pytest.raises(PermissionError) as caught:
        write_together(
            [
                (first, lambda file: file.write(b"new neighbours")),
                (second, lambda file: file.write(b"new scores")),
            ]
        )
    assert caught.value.filename == os.fspath(second)
    assert caught.value.replaced == (os.fspath(first),)
    assert first.read_bytes() == b"new neighbours"
    assert second.read_bytes() == b"old scores"
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name, second.name]
    # a first rename that fails has replaced nothing
    calls.clear()
    calls.append("skip")
    with pytest.raises(PermissionError) as caught:
        write_atomically(first, lambda file: file.write(b"newer"))
    assert caught.value.replaced == () and first.read_bytes() == b"new neighbours"


def test_errors_other_than_os_errors_pass_unchanged(tmp_path):
    """Check that a writer's own error is re-raised as it is, nothing left."""
    target = tmp_path / "model.npz"
    with pytest.raises(ValueError, match="not storable"):
        write_atomically(target, _fail_with(ValueError("not storable")))
    assert not list(tmp_path.iterdir())


def test_missing_folder_and_failed_rename_name_the_file_asked_for(tmp_path):
    """Check the path in the error: the user's, never the hidden temporary."""
    missing = tmp_path / "no" / "model.npz"
    with pytest.raises(FileNotFoundError) as caught:
        write_atomically(missing, lambda file: file.write(b"x"))
    assert caught.value.filename == os.fspath(missing)
    folder = tmp_path / "a folder"
    folder.mkdir()
    written = []
    with pytest.raises(IsADirectoryError) as caught:
        write_atomically(folder, written.append)
    assert caught.value.filename == os.fspath(folder)
    assert caught.value.filename2 is None
    assert (
        str(caught.value) == f"[Errno {errno.EISDIR}] Is a directory: {str(folder)!r}"
    )
    # Refused before writing: translate_file made a whole pass first.
    assert written == []
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]


def test_a_failed_rename_prints_the_file_asked_for_alone(tmp_path, monkeypatch):
    """Check the message: the second file name set to None printed '-> None'."""

    def refuse(source, target):
        raise PermissionError(errno.EACCES, "Permission denied", source, None, target)

    monkeypatch.setattr("skembed._atomic.os.replace", refuse)
    target = tmp_path / "model.npz"
    with pytest.raises(PermissionError) as caught:
        write_atomically(target, lambda file: file.write(b"x"))
    assert (
        str(caught.value)
        == f"[Errno {errno.EACCES}] Permission denied: {str(target)!r}"
    )
    assert caught.value.replaced == ()
    assert list(tmp_path.iterdir()) == []


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    """Check that the new file takes the mode of the one it replaces."""
    target = tmp_path / "index.npy"
    target.write_bytes(b"old")
    target.chmod(0o600)
    write_atomically(target, lambda file: file.write(b"new"))
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o600


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_a_pipe_at_the_path_is_refused_not_replaced(tmp_path):
    """Check that a device, pipe or socket is never renamed over.

    The rename removed a named pipe and left a regular file in its place; as
    root the same happened to a device node (``save_aligner(m, "/dev/null")``
    replaced the system's null device).
    """
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    called = []
    with pytest.raises(ValueError, match="model.npz' exists and is not a regular"):
        write_atomically(fifo, called.append)
    assert not called
    assert fifo.is_fifo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


@pytest.mark.parametrize("existing", [False, True])
def test_a_name_ending_in_a_separator_is_a_folder(tmp_path, existing):
    """Check ``NAME/``: refused like open() refuses it, nothing written.

    ``realpath`` drops the separator: ``save_aligner(m, "models/")`` created
    a file ``models``, and ``"notes.txt/"`` replaced the file ``notes.txt``.
    """
    target = tmp_path / "notes.txt"
    if existing:
        target.write_bytes(b"keep")
    called = []
    for path in (f"{target}{os.sep}", os.fsencode(f"{target}{os.sep}")):
        with pytest.raises(IsADirectoryError):
            write_atomically(path, called.append)
    assert not called
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        ["notes.txt"] if existing else []
    )
    if existing:
        assert target.read_bytes() == b"keep"


def test_a_name_near_the_length_limit_is_written(tmp_path):
    """Check a legal name of 250 bytes: its temporary name (the name plus 40
    characters) exceeded the limit, so the write failed after all the work."""
    try:
        limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):
        limit = 255  # the limit of most file systems, as the writer assumes
    for name in ("m" * (limit - 4) + ".npz", "é" * ((limit - 4) // 2) + ".npz"):
        if len(name.encode()) > limit:
            continue
        path = tmp_path / name
        write_atomically(path, lambda file: file.write(b"x"))
        assert path.read_bytes() == b"x"
        assert [p.name for p in tmp_path.iterdir()] == [name]
        path.unlink()
