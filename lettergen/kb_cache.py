"""A cache of the loaded knowledge base, so that a command does not parse forty YAML files to start.

Reading, parsing and checking the data files was the largest part of ``lettergen check``'s own start-up
(some 35 ms, against about 2 ms to read the cached object). An entry is the knowledge base exactly as
:func:`lettergen.kb.load_kb` built it, stored under a key that covers everything it was built from: the
bytes of every data file, the source of the modules that define its classes, and the Python and
pydantic versions. A change to any of them misses, and a miss reads and checks the files as before.
Only a knowledge base that loaded without error is stored, so a broken data file is reported every time.

Entries are pickles, and a pickle runs code as it loads. An entry is therefore read only when this user
owns it and nobody else can write to it (the trust Python gives its own bytecode cache); an entry that
is foreign, unreadable or corrupt is ignored and rebuilt. ``LETTERGEN_KB_CACHE=0`` turns the cache off.
The entries live in ``LETTERGEN_CACHE_DIR`` (or ``~/.cache/lettergen``) under ``kb/``.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from pathlib import Path

from pydantic.version import VERSION as PYDANTIC_VERSION

from lettergen.files import Untrusted, cache_dir, prune, read_trusted, write_atomic

FORMAT = "lettergen-kb-cache-1"
KEEP = 16  # entries kept; older ones (other data folders, earlier edits) are removed when one is added
# The modules whose classes a knowledge base is made of: an edit to any of them must miss.
_MODULES = ("kb", "citations", "policies")
_HERE = Path(__file__).resolve().parent


def _warn(message: str, name: str) -> None:
    import logging  # only when there is something to say: importing logging costs `check` ~5 ms

    logging.getLogger("lettergen.kb").warning(message, name)


def enabled() -> bool:
    return os.environ.get("LETTERGEN_KB_CACHE", "1") != "0"


def key(hashes: dict[str, str]) -> str | None:
    """The entry's key for data files with these sha256 hashes (None: the code cannot be read to key it)."""
    h = hashlib.sha256(f"{FORMAT}|{sys.version}|{PYDANTIC_VERSION}".encode())
    for name in _MODULES:
        try:
            h.update((_HERE / f"{name}.py").read_bytes())
        except OSError:
            return None
    for name, digest in sorted(hashes.items()):
        h.update(f"\n{name}={digest}".encode())
    return h.hexdigest()


def _folder() -> Path:
    return cache_dir() / "kb"


def load(entry_key: str) -> object | None:
    """The cached object, or None (no entry, or one that is foreign, unreadable or corrupt)."""
    path = _folder() / f"{entry_key}.pickle"
    try:
        data = read_trusted(path)
    except Untrusted:
        _warn("knowledge-base cache: ignoring %s (another user owns it or can write to it)", path.name)
        return None
    if data is None:
        return None
    try:
        value: object = pickle.loads(data)
        return value
    # A torn or tampered pickle can fail in many ways (UnpicklingError, EOFError, AttributeError...);
    # every one of them means "not a usable entry", and the files are read instead.
    except Exception:
        _warn("knowledge-base cache: ignoring corrupt entry %s; it will be rebuilt", path.name)
        return None


def store(entry_key: str, value: object) -> None:
    """Write an entry (best effort: a cache that cannot be written only costs the next start its time)."""
    folder = _folder()
    try:
        write_atomic(
            folder / f"{entry_key}.pickle", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), durable=False
        )
    except (OSError, pickle.PicklingError):
        return
    prune(folder, "*.pickle", KEEP)
