"""The HTTP service, run for real: uvicorn on a free loopback port, hit with httpx."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import CHORDOMA, EXAMPLES

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")


class _Server:
    """The app on uvicorn, with the connection protocol and limits `lettergen serve` uses."""

    def __init__(self, *, header_timeout: float = 10.0, limit_concurrency: int = 64, **kwargs: Any) -> None:
        from lettergen.interfaces.server import create_app
        from lettergen.interfaces.server_protocol import DeadlineH11Protocol

        config = uvicorn.Config(
            create_app(**kwargs),
            host="127.0.0.1",
            port=0,
            log_level="error",
            lifespan="off",
            http=DeadlineH11Protocol,
            limit_concurrency=limit_concurrency,
        )
        config.header_timeout = header_timeout  # type: ignore[attr-defined]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("server did not start")
            self.thread.join(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with _Server() as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> Iterator[Any]:
    with httpx.Client(base_url=base_url, timeout=60) as c:
        yield c


def _case() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(yaml.safe_load(CHORDOMA.read_text()), default=str))
    return data


def _bundle() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / "chordoma-gluteal-mass.fhir.json").read_text())
    return data


def test_healthz_criteria_and_openapi(client: Any) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    codes = {c for p in client.get("/v1/criteria").json() for c in p["codes"]}
    assert {"20206", "38505"} <= codes
    spec = client.get("/openapi.json").json()
    assert {"/v1/check", "/v1/draft", "/v1/criteria", "/healthz"} <= set(spec["paths"])
    assert {"/v1/validate"} <= set(spec["paths"])
    # offline: no page that loads Swagger UI or ReDoc from a CDN, unless the operator asks for it
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404


@pytest.mark.parametrize("body", [_case(), _bundle()], ids=["case-json", "fhir-bundle"])
def test_check_accepts_case_json_and_fhir_bundle(client: Any, body: dict[str, Any]) -> None:
    r = client.post("/v1/check", json=body)
    assert r.status_code == 200, r.text
    verdicts = {s["code"]: s["verdict"] for s in r.json()["services"]}
    assert verdicts == {"20206": "met", "38505": "insufficient"}


@pytest.mark.parametrize(
    ("fmt", "check"),
    [
        ("md", lambda content: "Dear Medical Director" in content),
        ("txt", lambda content: "REFERENCES" in content),
        ("html", lambda content: content.startswith("<!DOCTYPE html>")),
        ("fhir", lambda content: json.loads(content)["resourceType"] == "Bundle"),
    ],
)
def test_draft_returns_letter_and_ledger(client: Any, fmt: str, check: Any) -> None:
    r = client.post("/v1/draft", params={"format": fmt, "date": "2026-11-21"}, json=_case())
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["encoding"] == "utf-8" and check(out["letter"])
    assert out["ledger"]["case_id"] == "chordoma-gluteal-001" and out["ledger"]["format"] == fmt
    assert out["validation"]["ok"] is True
    assert out["filename"] == f"chordoma-gluteal-001.lmn.{'fhir.json' if fmt == 'fhir' else fmt}"


def test_draft_pdf_is_base64(client: Any) -> None:
    pytest.importorskip("weasyprint")
    r = client.post("/v1/draft", params={"format": "pdf", "date": "2026-11-21"}, json=_bundle())
    assert r.status_code == 200, r.text
    assert r.json()["encoding"] == "base64"
    assert base64.b64decode(r.json()["letter"]).startswith(b"%PDF-")


def _without(data: dict[str, Any], *path: str) -> dict[str, Any]:
    node = data
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    return data


def _set(data: dict[str, Any], value: Any, *path: str | int) -> dict[str, Any]:
    node: Any = data
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (_without(_case(), "patient"), ["body", "patient"]),
        (_set(_case(), "1965-13-40", "patient", "birth_date"), ["body", "patient", "birth_date"]),
        (_set(_case(), [{"code": "NOPE"}], "services"), ["body", "services", 0, "code"]),
        # an unknown fact id is not echoed (it may be a member id put there): the fact is named by its position
        (_set(_case(), {"value": True}, "facts", "no_such_fact"), ["body", "facts (entry 7)"]),
        (_set(_case(), "../../etc/passwd", "case_id"), ["body", "case_id"]),
        (_set(_case(), "/etc/passwd", "path"), ["body", "path"]),  # no file paths: an unknown key
        (_set(_bundle(), "not-a-date", "entry", 0, "resource", "birthDate"), ["body", "Bundle"]),
    ],
    ids=["missing-section", "bad-date", "bad-code", "unknown-fact", "unsafe-case-id", "file-path-key", "fhir-bad-date"],
)
def test_bad_input_is_422_with_field_path(client: Any, body: dict[str, Any], loc: list[Any]) -> None:
    r = client.post("/v1/check", json=body)
    assert r.status_code == 422
    got = r.json()["detail"][0]["loc"]
    assert got[: len(loc)] == loc or str(loc[-1]) in " ".join(map(str, got)), got
    assert "Jane Q. Sample" not in r.text and "XYZ000000000" not in r.text


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[1, 2, 3]", b'"examples/chordoma-gluteal-mass.yaml"', b"\xff\xfe"],
    ids=["empty", "not-json", "list", "a-path-string", "binary"],
)
def test_non_object_bodies_are_422(client: Any, content: bytes) -> None:
    r = client.post("/v1/check", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 422


@pytest.mark.parametrize(
    "params",
    [{"type": "../../templates/x"}, {"format": "exe"}, {"type": "{{ 7*7 }}"}, {"date": "yesterday"}],
    ids=["type-path", "format", "type-template", "date"],
)
def test_query_parameters_are_fixed_lists(client: Any, params: dict[str, str]) -> None:
    r = client.post("/v1/draft", params=params, json=_case())
    assert r.status_code == 422


def test_request_data_never_becomes_template_source(client: Any) -> None:
    body = _set(_case(), "{{ 7*7 }} <script>alert(1)</script> {% include '/etc/passwd' %}", "patient", "name")
    r = client.post("/v1/draft", params={"format": "html", "date": "2026-11-21"}, json=body)
    assert r.status_code == 200, r.text
    letter = r.json()["letter"]
    assert "{{ 7*7 }} &lt;script&gt;alert(1)&lt;/script&gt; {% include &#39;/etc/passwd&#39; %}" in letter
    assert "<script>" not in letter and "49" not in letter.split("<main", 1)[1].split("Patient:")[1][:80]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_request_size_limit_is_413(client: Any, declared: bool) -> None:
    big = json.dumps({**_case(), "enclosures": ["x" * 200] * 6000}).encode()
    assert len(big) > 1_000_000
    if declared:
        r = client.post("/v1/check", content=big, headers={"content-type": "application/json"})
    else:
        r = client.post("/v1/check", content=iter([big[i : i + 65536] for i in range(0, len(big), 65536)]))
    assert r.status_code == 413


def test_requests_write_no_files(client: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import lettergen.files as files

    calls: list[Any] = []
    monkeypatch.setattr(files, "write_outputs", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(files, "write_atomic", lambda *a, **k: calls.append(a))
    for fmt in ("md", "fhir"):
        assert client.post("/v1/draft", params={"format": fmt}, json=_case()).status_code == 200
    assert calls == []


@pytest.mark.parametrize(
    ("origins", "allowed"),
    [((), False), (("https://ehr.example",), True)],
    ids=["default-off", "opt-in"],
)
def test_cors_off_by_default(origins: tuple[str, ...], allowed: bool) -> None:
    with _Server(cors_origins=origins) as url:
        headers = {"Origin": "https://ehr.example", "Access-Control-Request-Method": "POST"}
        pre = httpx.options(f"{url}/v1/check", headers=headers)
        get = httpx.get(f"{url}/healthz", headers={"Origin": "https://ehr.example"})
        evil = httpx.get(f"{url}/healthz", headers={"Origin": "https://evil.example"})
    assert ("access-control-allow-origin" in pre.headers) is allowed
    assert ("access-control-allow-origin" in get.headers) is allowed
    assert "access-control-allow-origin" not in evil.headers


def test_serve_binds_loopback_by_default() -> None:
    import inspect

    from lettergen.interfaces import cli, server

    assert inspect.signature(server.serve).parameters["host"].default == "127.0.0.1"
    assert "127.0.0.1" in str(inspect.signature(cli.serve).parameters["host"].default)


# -- no error echoes a request value; slow clients are cut off; `lettergen serve` options -------------------

IDENTIFIERS = ("Jane Q. Sample", "1965-03-14", "XYZ000000000")


def _no_echo(r: Any) -> None:
    for ident in IDENTIFIERS:
        assert ident not in r.text, (ident, r.text)
    for entry in r.json()["detail"]:
        assert set(entry) == {"loc", "msg", "type"}, entry  # no "input", no "ctx"


@pytest.mark.parametrize(
    "headers",
    [{"content-type": "text/plain"}, {}, {"content-type": "application/x-www-form-urlencoded"}],
    ids=["text-plain", "no-content-type", "form"],
)
def test_a_case_sent_without_a_json_content_type_is_not_echoed(client: Any, headers: dict[str, str]) -> None:
    # It was a 422 whose body carried the whole case: name, birth date and member id included.
    r = client.post("/v1/check", content=json.dumps(_case()).encode(), headers=headers)
    assert r.status_code == 422
    _no_echo(r)
    assert r.json()["detail"][0]["loc"] == ["body"] and "JSON" in r.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("params", "content"),
    [
        ({"type": "Jane Q. Sample"}, None),
        ({"format": "XYZ000000000"}, None),
        ({"date": "1965-03-14-Jane Q. Sample"}, None),
        ({}, b'{"patient": {"name": "Jane Q. Sample", "member_id": "XYZ000000000", }'),
        ({}, b'["Jane Q. Sample", "1965-03-14"]'),
    ],
    ids=["type", "format", "date", "invalid-json", "a-list"],
)
def test_validation_errors_never_echo_request_values(client: Any, params: dict[str, str], content: Any) -> None:
    if content is None:
        r = client.post("/v1/draft", params=params, json=_case())
    else:
        r = client.post("/v1/draft", params=params, content=content, headers={"content-type": "application/json"})
    assert r.status_code == 422
    _no_echo(r)


def _read_response(sock: Any, limit: float = 30.0) -> tuple[bytes, bool]:
    """Everything the server sends until it closes the connection (at most ``limit`` seconds: a bound on the
    test's own wait, not a timing claim); and whether it did close."""
    import time

    sock.settimeout(0.5)
    data, end = b"", time.monotonic() + limit
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def _connect(url: str) -> Any:
    import socket

    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


@pytest.fixture(scope="module")
def strict_url() -> Iterator[str]:
    with _Server(header_timeout=1.0, body_timeout=1.0, limit_concurrency=6) as url:
        yield url


def test_headers_that_never_finish_are_cut_off(strict_url: str) -> None:
    # Half a request, then nothing: the connection was held for ever (500 of them held 500 descriptors).
    for start in (b"", b"POST /v1/check HTTP/1.1\r\nHost: x\r\n"):
        with _connect(strict_url) as sock:
            sock.sendall(start)
            data, closed = _read_response(sock)
        assert closed and data.startswith(b"HTTP/1.1 408 "), data


def test_a_header_sent_a_byte_at_a_time_is_cut_off(strict_url: str) -> None:
    import time

    with _connect(strict_url) as sock:
        end = time.monotonic() + 30
        sent = b""
        request = b"POST /v1/check HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
        try:
            for byte in request:
                if time.monotonic() > end:
                    break
                sock.sendall(bytes([byte]))
                sent += bytes([byte])
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, closed = _read_response(sock, 5)
    assert closed and data.startswith(b"HTTP/1.1 408 "), data
    assert len(sent) < len(request)  # cut off before the request was through


def test_a_body_that_trickles_in_is_cut_off(strict_url: str) -> None:
    # A body at one byte per half second kept its connection open as long as the client liked.
    import time

    body = json.dumps(_case()).encode()
    with _connect(strict_url) as sock:
        head = f"POST /v1/check HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: {len(body)}"
        sock.sendall(head.encode() + b"\r\n\r\n")
        end, sent = time.monotonic() + 30, 0
        try:
            while sent < len(body) and time.monotonic() < end:
                sock.sendall(body[sent : sent + 1])
                sent += 1
                time.sleep(0.1)
                sock.settimeout(0.001)
                try:
                    peek = sock.recv(65536, __import__("socket").MSG_PEEK)
                except (TimeoutError, BlockingIOError):
                    peek = b""
                sock.settimeout(10)
                if peek:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, closed = _read_response(sock, 5)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert closed and sent < len(body)
    for ident in IDENTIFIERS:
        assert ident.encode() not in data


def test_connections_past_the_cap_are_refused_at_once(strict_url: str) -> None:
    socks = [_connect(strict_url) for _ in range(8)]
    try:
        answers = [_read_response(s) for s in socks]  # the stalled ones are cut off by the header deadline
    finally:
        for s in socks:
            s.close()
    refused = [data for data, _ in answers if data.startswith(b"HTTP/1.1 503 ")]
    assert len(refused) >= 2, answers  # (more, if the server had yet to see an earlier test's connection go)
    assert all(closed and data.startswith((b"HTTP/1.1 503 ", b"HTTP/1.1 408 ")) for data, closed in answers)
    # and the service answers again once they are gone
    assert httpx.get(f"{strict_url}/healthz", timeout=30).status_code == 200


def test_serve_options_reach_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    from lettergen.interfaces import cli, server
    from tests.conftest import run_cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setenv(server.SETTINGS_ENV, "")  # serve() sets it: put back after the test
    args = ["serve", "--workers", "3", "--header-timeout", "4", "--body-timeout", "7", "--keep-alive", "2"]
    code, _, stderr = run_cli(*args, "--limit-concurrency", "9", "--cors-origin", "https://ehr.example")
    assert code == 0, stderr
    # the workers import the application factory by name; the connection protocol too
    assert seen["app"] == "lettergen.interfaces.server:app_from_env" and seen["factory"] is True
    assert seen["http"] == "lettergen.interfaces.server_protocol:DeadlineH11Protocol"
    assert (seen["workers"], seen["timeout_keep_alive"], seen["limit_concurrency"]) == (3, 2, 9)
    settings = server.settings_from_env()
    assert (settings.header_timeout, settings.body_timeout) == (4.0, 7.0)
    assert settings.cors_origins == ("https://ehr.example",)
    # the documented defaults are the server's
    params = inspect.signature(cli.serve).parameters
    assert params["workers"].default == 1
    assert params["header_timeout"].default == server.HEADER_TIMEOUT
    assert params["body_timeout"].default == server.BODY_TIMEOUT
    assert params["keep_alive"].default == server.KEEP_ALIVE
    assert params["limit_concurrency"].default == server.LIMIT_CONCURRENCY
    for bad in (["--workers", "0"], ["--header-timeout", "0"], ["--limit-concurrency", "0"]):
        assert run_cli("serve", *bad)[0] == 2


def test_lettergen_serve_with_workers_cuts_off_slow_clients(tmp_path: Any) -> None:
    import signal
    import socket
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["serve", "--port", str(port), "--workers", "2", "--header-timeout", "1", "--body-timeout", "1"]
    with open(tmp_path / "stderr", "w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "lettergen", *argv], cwd=ROOT, stderr=err, stdout=err)
        url = f"http://127.0.0.1:{port}"
        try:
            end = time.monotonic() + 120
            while True:
                assert proc.poll() is None and time.monotonic() < end, (tmp_path / "stderr").read_text()
                try:
                    if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            with _connect(url) as sock:
                sock.sendall(b"POST /v1/check HTTP/1.1\r\nHost: x\r\n")
                data, closed = _read_response(sock)
            assert closed and data.startswith(b"HTTP/1.1 408 "), data
            text = json.dumps(_case()).encode()
            r = httpx.post(f"{url}/v1/check", content=text, headers={"content-type": "text/plain"})
            assert r.status_code == 422
            _no_echo(r)
            assert httpx.post(f"{url}/v1/check", json=_bundle(), timeout=60).status_code == 200
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    log = (tmp_path / "stderr").read_text()
    assert log.count("Started server process") == 2, log  # two workers
    for ident in IDENTIFIERS:
        assert ident not in log
