"""The HTTP connection of ``lettergen serve``: uvicorn's h11 protocol with the two limits it lacks.

- **A deadline for a request's headers.** uvicorn arms no timer until a first response is complete, so a
  client that opens a connection and sends half a request line, or a header a byte at a time, held its
  connection (and a file descriptor) for ever: 500 of them held 500 descriptors. Here every request's
  headers must be complete ``header_timeout`` seconds after the connection opened (or, on a kept-alive
  connection, after the idle keep-alive time that follows a response); otherwise the connection gets a 408
  and is closed. The body has its own deadline, kept by the application (``lettergen.interfaces.server``).
- **A cap on open connections.** uvicorn's ``limit_concurrency`` answers 503 to a request beyond the limit,
  but only once the request's headers are in; a connection past the limit is answered 503 and closed the
  moment it opens, so that stalled clients cannot hold more than that many descriptors.

This module imports uvicorn and h11 (the ``server`` extra); ``lettergen serve`` names it to uvicorn by its
import string, so that a worker process of ``--workers N`` builds it too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT = 10.0


def _response(status: bytes, detail: bytes) -> bytes:
    body = b'{"detail":"' + detail + b'"}'
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: close\r\n\r\n"
        + body
    )  # fmt: skip


_HEADERS_TOO_SLOW = _response(b"408 Request Timeout", b"request headers not received in time")
_TOO_MANY = _response(b"503 Service Unavailable", b"too many connections; try again later")


def header_timeout(config: Any) -> float:
    """The header deadline for ``config``: its ``header_timeout`` attribute when set (tests, embedders), else
    the one ``lettergen serve`` put in the environment for its workers, else the default."""
    value = getattr(config, "header_timeout", None)
    if value is None:
        from lettergen.interfaces.serve_settings import settings_from_env

        value = settings_from_env().header_timeout
    return float(value)


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for every request's headers and a hard cap on connections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout(self.config)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.limit_concurrency is not None and len(self.connections) > self.limit_concurrency:
            self.transport.write(_TOO_MANY)
            self.transport.close()
            return
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the request's headers are in (or the connection failed)
            self._disarm()

    def on_response_complete(self) -> None:
        # Armed before uvicorn starts the next cycle, which may read a pipelined request's headers at once.
        if not self.transport.is_closing():
            self._arm(self.timeout_keep_alive + self.header_timeout)
        super().on_response_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(seconds, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.our_state is h11.IDLE:
            self.transport.write(_HEADERS_TOO_SLOW)
        self.transport.close()
