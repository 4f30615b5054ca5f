"""The polish step's response cache: one JSON file per (model, endpoint, prompt version, input hash).

A second run of the same letter replays the answers and makes no model call. Entries are written
atomically; a corrupt or mismatched entry is ignored with a warning and rewritten by the next answer.
The directory is ``LETTERGEN_CACHE_DIR`` or ``~/.cache/lettergen``; entries hold locked text only.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from lettergen.files import write_atomic

log = logging.getLogger("lettergen.polish.polisher")


def cache_key(model: str, prompt_ref: str, messages: list[dict[str, str]], *, endpoint: str | None) -> str:
    """The key of one request's answer.

    ``endpoint`` is where the request goes (the API base, or what the provider's route and environment select,
    ``lettergen.polish.polisher.endpoint``): one model name served by two servers is two models, and the answers of
    one must never be replayed for the other."""
    body = json.dumps(messages, sort_keys=True, ensure_ascii=False).encode("utf-8")
    head = json.dumps([model, endpoint, prompt_ref, hashlib.sha256(body).hexdigest()]).encode("utf-8")
    return hashlib.sha256(head).hexdigest()


class ResponseCache:
    def __init__(self, root: Path) -> None:
        self.root = root / "polish"

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str, model: str, prompt_ref: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("polish cache: cannot read %s (%s); asking the model", path.name, exc.strerror)
            return None
        try:
            entry = json.loads(raw.decode("utf-8"))
            ok = (
                isinstance(entry, dict)
                and entry.get("model") == model
                and entry.get("prompt") == prompt_ref
                and isinstance(entry.get("content"), str)
            )
        except (UnicodeDecodeError, json.JSONDecodeError):
            ok = False
        if not ok:
            log.warning("polish cache: ignoring corrupt entry %s; it will be rewritten", path.name)
            return None
        return dict(entry)

    def put(self, key: str, entry: dict[str, Any]) -> None:
        data = json.dumps(entry, sort_keys=True, ensure_ascii=False, indent=1).encode("utf-8")
        try:
            write_atomic(self._path(key), data)
        except OSError as exc:  # a cache that cannot be written costs a model call next time, nothing more
            log.warning("polish cache: cannot write %s (%s)", self.root, exc.strerror)
