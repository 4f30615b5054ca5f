"""A cache of compiled templates, so that a command does not compile its Jinja templates to Python again.

Compiling a letter's template and its includes was about 70 ms of ``lettergen draft``'s start, and compiling
every template of a format about 0.2 s of a batch's, before any case; loading compiled code takes a few
milliseconds. Jinja stores each template's code object with a checksum of its source and compiles again
when the source has changed. The key here adds what else that code depends on: Jinja's optimizer runs a
filter on constant arguments at compile time (``{{ "Summary" | h(2) }}`` is stored as the heading it
makes), so the key covers the format the environment's filters were made for, the environment (its class, options and
filter names),
the source of the modules that define the filters (``render.py``, ``layout.py``), and the Jinja and
Python versions. Letters are the same with the cache and without it; the tests hold them equal.

Compiled code runs as it loads, so an entry is trusted as the knowledge-base cache trusts its pickles
(:func:`lettergen.files.read_trusted`): read only when this user owns it and nobody else can write to
it. An entry that is foreign, unreadable or corrupt is ignored and the template compiled as before.
``LETTERGEN_TEMPLATE_CACHE=0`` turns the cache off. Entries live under ``templates/`` in
``LETTERGEN_CACHE_DIR`` (or ``~/.cache/lettergen``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import types
from pathlib import Path

import jinja2
from jinja2.bccache import Bucket, BytecodeCache

from lettergen.files import Untrusted, cache_dir, prune, read_trusted, write_atomic

FORMAT = "lettergen-template-cache-1"
KEEP = 256  # entries kept (13 templates in 3 formats is 39); older ones are removed when one is added
SUFFIX = ".jinja-code"
# The modules whose functions a template's compiled code may hold the results of (constant filter calls).
_MODULES = ("render", "layout")
_HERE = Path(__file__).resolve().parent


def enabled() -> bool:
    return os.environ.get("LETTERGEN_TEMPLATE_CACHE", "1") != "0"


def _warn(message: str, name: str) -> None:
    import logging  # only when there is something to say

    logging.getLogger("lettergen.render").warning(message, name)


def flavour(env: jinja2.Environment, tag: str = "") -> str | None:
    """What a template's compiled code depends on besides its source, hashed (None: the code cannot be read).

    ``tag`` names what the environment's filters were made for (the format: md and txt have the same options
    and filter names, and a different ``bold``)."""
    options = (
        FORMAT,
        tag,
        sys.version,
        jinja2.__version__,
        f"{type(env).__module__}.{type(env).__qualname__}",
        env.autoescape,
        env.optimized,
        env.trim_blocks,
        env.lstrip_blocks,
        env.keep_trailing_newline,
        env.newline_sequence,
        (env.block_start_string, env.variable_start_string, env.comment_start_string, env.line_statement_prefix),
        sorted(env.extensions),
        sorted(env.filters),
    )
    h = hashlib.sha256(repr(options).encode())
    for name in _MODULES:
        try:
            h.update((_HERE / f"{name}.py").read_bytes())
        except OSError:
            return None
    return h.hexdigest()


class TemplateCache(BytecodeCache):
    """Jinja's bytecode cache, keyed as above, trusted as above, best effort throughout."""

    def __init__(self, tag: str) -> None:
        self.tag = tag  # see flavour()
        self._flavour: str | None = None
        self._keyed = False  # each cache serves one environment, whose filters are set after it is made

    def _path(self, bucket: Bucket) -> Path | None:
        if not self._keyed:
            self._flavour, self._keyed = flavour(bucket.environment, self.tag), True
        if self._flavour is None:
            return None
        # bucket.key is Jinja's hash of the template's name and file path: one entry per data folder.
        name = hashlib.sha256(f"{self._flavour}|{bucket.key}".encode()).hexdigest()
        return cache_dir() / "templates" / f"{name}{SUFFIX}"

    def load_bytecode(self, bucket: Bucket) -> None:
        path = self._path(bucket) if enabled() else None
        if path is None:
            return
        try:
            data = read_trusted(path)
        except Untrusted:
            _warn("template cache: ignoring %s (another user owns it or can write to it)", path.name)
            return
        if not data:
            return
        # Jinja checks the entry's magic and its source's checksum, and leaves the bucket empty on a mismatch
        # (an edited template: compiled again, and the entry replaced). A torn or tampered body can fail to
        # unmarshal in ways Jinja does not catch; each means "compile instead".
        try:
            bucket.bytecode_from_string(data)
            if bucket.code is not None and not isinstance(bucket.code, types.CodeType):
                raise TypeError("not compiled code")
        except Exception:
            bucket.reset()
            _warn("template cache: ignoring corrupt entry %s; it will be rebuilt", path.name)

    def dump_bytecode(self, bucket: Bucket) -> None:
        path = self._path(bucket) if enabled() else None
        if path is None:
            return
        # Best effort: a cache that cannot be written only costs the next start its compile.
        with contextlib.suppress(OSError, ValueError):
            write_atomic(path, bucket.bytecode_to_string(), durable=False)
            prune(path.parent, f"*{SUFFIX}", KEEP)
