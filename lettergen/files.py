"""Writing files whole or not at all, and where the polish answers are cached."""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path

from lettergen.errors import OutputError


def cache_dir() -> Path:
    """``LETTERGEN_CACHE_DIR``, or ``~/.cache/lettergen``."""
    env = os.environ.get("LETTERGEN_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "lettergen"


def config_dir() -> Path:
    """lettergen's folder of user settings: ``$XDG_CONFIG_HOME/lettergen`` (an absolute path), else
    ``~/.config/lettergen``."""
    config = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if config and os.path.isabs(config) else Path.home() / ".config"
    return base / "lettergen"


_COUNTER = itertools.count()


def _stage(path: Path, data: bytes, durable: bool) -> str:
    """``data`` in a temporary file beside ``path``, for the caller to rename into place or remove.

    The temporary name is this process's and unique within it; O_EXCL refuses a name that exists (a leftover
    of a crashed process that had the same pid), and then tempfile picks a random one. The folder is made
    only when the first try finds it missing. A batch stages two files per case, so this path is kept short.
    """
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{next(_COUNTER)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, flags, 0o600)
    except FileExistsError:
        import tempfile  # here, not at the top: `check` imports this module for cache_dir and writes nothing

        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            _write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _write_all(fd: int, data: bytes) -> None:
    # os.write on the descriptor: a buffered file object around the one write cost a batch more than the write.
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]  # after a short write (a signal), the rest


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write a file so that it either appears whole or not at all (an OSError reaches the caller).

    ``durable=False`` skips the fsync, for a cache: a file torn by a crash is read as corrupt and rebuilt.
    """
    tmp = _stage(path, data, durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_outputs(files: dict[Path, bytes], *, durable: bool = True) -> None:
    """Write several files all-or-nothing: every file is staged first, then renamed into place.

    ``durable=False`` skips the per-file fsync; the caller then owes one :func:`sync_all` before it
    reports the files as written (only where :data:`CAN_SYNC_ALL`). ``batch`` does this: a fsync per
    file cost a case about as much as drafting it, and a file torn by a crash before that one sync
    fails its ledger's hash on resume and is drafted again. An OSError becomes an OutputError.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            try:
                staged.append((_stage(path, data, durable), path))
            except OSError as exc:
                raise OutputError(f"{path.parent}: cannot write output ({exc.strerror or exc})") from None
        for tmp, path in staged:
            os.replace(tmp, path)
        staged.clear()
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


# Where the OS can flush every file at once, a batch defers durability to one call at its end.
CAN_SYNC_ALL = hasattr(os, "sync")


def sync_all() -> None:
    """Flush every written file to disk (POSIX ``sync``); see :func:`write_outputs`."""
    os.sync()
