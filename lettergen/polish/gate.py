"""The gate on requests in flight: each polishing thread holds a slot while its request is out, so that
many letters share a bounded number of model requests (:func:`lettergen.polish.pool.polish_many`)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any


class _Gate(threading.local):
    """This thread's share of the requests in flight, set by the thread that polishes a letter."""

    slots: threading.Semaphore | None = None
    held: bool = False  # the caller holds a slot around the whole model call (routes that bypass the gate)
    seen: bool = False  # a request of this thread went through the GatedTransport
    queued: float = 0.0  # seconds this thread has waited for a slot, in all (not waiting for the model)

    @contextlib.contextmanager
    def queue(self) -> Iterator[None]:
        """Hold a slot (when ``slots`` is set), counting the wait for it in ``queued``."""
        slots = self.slots
        if slots is None:
            yield
            return
        start = time.monotonic()
        with slots:
            self.queued += time.monotonic() - start
            yield


GATE = _Gate()


def gated_client() -> Any:
    """An httpx client, configured as litellm configures its own, whose requests wait for a slot."""
    import httpx
    from litellm.llms.custom_httpx.http_handler import get_ssl_configuration, http2_enabled

    class GatedTransport(httpx.BaseTransport):
        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner = inner

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            gate = GATE
            gate.seen = True
            if gate.slots is None or gate.held:
                return self.inner.handle_request(request)
            with gate.queue():
                response = self.inner.handle_request(request)
                try:
                    response.read()  # the answer is in before the slot is given back
                except BaseException:
                    response.close()
                    raise
                return response

        def close(self) -> None:
            self.inner.close()

    verify = get_ssl_configuration()
    http2 = http2_enabled()
    inner = httpx.HTTPTransport(verify=verify, http2=http2)
    return httpx.Client(transport=GatedTransport(inner), verify=verify, http2=http2, follow_redirects=True)
