"""Atomic file writes: a reader sees the old file or the new one, never a torn one.

The content goes to a temporary file in the same folder, which is flushed and fsynced, then
renamed over the target (``os.replace`` is atomic on POSIX and Windows); the folder is fsynced
so the rename survives a power cut. Any failure (disk full, read-only folder, an output path
that is a folder or lies under a file) leaves the old file as it was, removes the temporary
file and raises :class:`WriteError` naming the output and the reason. A write killed outright
(SIGKILL, power cut) leaves its hidden temporary file, which the first write of a later process
into the same folder removes once its writer is gone.

Usage::

    atomic_write("ck/last.pt", lambda tmp: torch.save(state, tmp))
    write_json("run/config.json", cfg.to_dict())
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


class WriteError(OSError):
    """An output that could not be written (``errno`` as the system gave it, e.g. ENOSPC);
    the old file, if any, is unchanged and no temporary file is left."""

    def __init__(self, path: str | Path, reason: str, code: int | None = None) -> None:
        super().__init__(code, reason, str(path))

    def __str__(self) -> str:
        return f"cannot write '{self.filename}': {self.strerror}"

    def __reduce__(self) -> tuple:  # survives pickling (errors of worker processes)
        return type(self), (self.filename, self.strerror, self.errno)


def _os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``: itself, or one in its cause / context chain (torch.save
    into a file object reports a failed write as a RuntimeError raised from the OSError)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _prepare_folder(path: Path) -> None:
    """Create the folder of ``path``, refusing outputs under a file or onto a folder."""
    for parent in (path.parent, *path.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise WriteError(path, f"'{parent}' is a file, not a folder", errno.ENOTDIR)
            break
    if path.is_dir():
        raise WriteError(path, "it is an existing folder, not a file", errno.EISDIR)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(path, f"cannot create its folder ({exc.strerror})", exc.errno) from exc


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` over ``path`` (same filesystem).

    The file ends with the mode a plain ``open(path, "w")`` would give it (0666 less the
    umask), not the owner-only 0600 of the temporary file, so other users can read models
    and pages as before. A failed write (an OSError with an errno, also one that the writer
    wrapped) becomes :class:`WriteError` naming ``path``; other exceptions pass unchanged.
    """
    path = Path(path)
    _prepare_folder(path)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
        )
    except OSError as exc:
        raise WriteError(path, exc.strerror or str(exc), exc.errno) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        cause = _os_error_in(exc) if isinstance(exc, (OSError, RuntimeError)) else None
        # An OSError without an errno is the writer's own message (a download that failed, a
        # missing source), not a failed write: it passes unchanged.
        if cause is None or cause.errno is None or isinstance(exc, WriteError):
            raise
        raise WriteError(path, cause.strerror or str(cause), cause.errno) from exc
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # not supported on every platform/filesystem; the rename is still atomic
    _remove_stale_temporaries(path)
    return path


STALE_SECONDS = 60.0  # a temporary file this old whose writer is dead is a killed write's
_swept: set[str] = set()  # folders this process has cleared of killed writes' leftovers


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files that killed writes left in ``path``'s folder, once per folder
    and process (not on every write: a folder of 10^5 outputs would be listed 10^5 times).

    A temporary file's name carries its writer's PID (``.NAME.PID.RANDOM.tmp``); it is removed
    when that process no longer exists here and the file has not changed for a minute (a PID
    from another machine or container sharing the folder is never current here, so the age
    keeps a live remote writer's file). Best effort: a file that cannot be removed stays hidden.
    """
    folder = str(path.parent.resolve())
    if folder in _swept:
        return
    _swept.add(folder)
    try:
        names = [n for n in os.listdir(folder) if n.startswith(".") and n.endswith(".tmp")]
    except OSError:
        return
    now = time.time()
    for name in names:
        parts = name[: -len(".tmp")].rsplit(".", 2)  # ".NAME", PID, RANDOM (mkstemp: no dots)
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid() or _alive(pid):
            continue
        stale = Path(folder) / name
        try:
            if now - stale.stat().st_mtime > STALE_SECONDS:
                stale.unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


def write_json(path: str | Path, data: Any) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))


class FolderLockedError(RuntimeError):
    """Another live process holds the folder's lock; the message names its PID."""


@contextmanager
def folder_lock(folder: str | Path, *, name: str = ".lock") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder/.lock`` for the duration of the block.

    The lock is the kernel's (``fcntl.flock`` on the open file): it is released when the block
    ends or the process dies however it dies, so there are no stale locks to clean up, and two
    processes that start at the same moment cannot both get it. The file holds the holder's
    PID and host, which a refused process names in :class:`FolderLockedError`. (Network file
    systems may not honour ``flock``; keep run folders on a local disk.)
    """
    import fcntl
    import socket

    path = Path(folder) / name
    try:
        f = open(path, "a+")  # noqa: SIM115 (held open for the lock's lifetime)
    except OSError as exc:  # a read-only folder: refused before anything is written
        raise WriteError(path, f"cannot lock '{folder}' ({exc.strerror})", exc.errno) from exc
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise FolderLockedError(
                f"'{folder}' is in use by process {holder} (lock file '{path}'); wait for it to "
                "finish or stop it"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        yield path
    finally:
        f.close()  # closing the file releases the lock
