"""The options of ``lettergen serve`` that the application and its connections read, and how the command
hands them to its worker processes (the environment). Apart from the server so that the connection
protocol (:mod:`lettergen.interfaces.server_protocol`) reads them without importing the application."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from functools import lru_cache

MAX_BODY = 1_000_000
BODY_TIMEOUT = 30.0  # seconds for a request's body to arrive, from its headers
HEADER_TIMEOUT = 10.0  # seconds for a request's headers to arrive (lettergen.interfaces.server_protocol)
KEEP_ALIVE = 5  # seconds an idle connection is kept between requests
LIMIT_CONCURRENCY = 64  # open connections and requests in progress, per worker; beyond, 503
SETTINGS_ENV = "LETTERGEN_SERVE_SETTINGS"  # how `lettergen serve` hands its options to its worker processes


@dataclass(frozen=True)
class ServeSettings:
    """What the application and its connections need to know of ``lettergen serve``'s options."""

    cors_origins: tuple[str, ...] = ()
    max_body: int = MAX_BODY
    body_timeout: float = BODY_TIMEOUT
    header_timeout: float = HEADER_TIMEOUT
    docs: bool = False  # /docs and /redoc (Swagger UI and ReDoc load their scripts from a CDN)

    def to_env(self) -> str:
        return json.dumps(asdict(self))


def settings_from_env() -> ServeSettings:
    """The settings ``lettergen serve`` put in ``LETTERGEN_SERVE_SETTINGS`` (the defaults without it)."""
    return _parse_settings(os.environ.get(SETTINGS_ENV, ""))


@lru_cache(maxsize=4)
def _parse_settings(raw: str) -> ServeSettings:
    if not raw:
        return ServeSettings()
    data = json.loads(raw)
    return ServeSettings(
        cors_origins=tuple(data.get("cors_origins", ())),
        max_body=int(data.get("max_body", MAX_BODY)),
        body_timeout=float(data.get("body_timeout", BODY_TIMEOUT)),
        header_timeout=float(data.get("header_timeout", HEADER_TIMEOUT)),
        docs=bool(data.get("docs", False)),
    )
