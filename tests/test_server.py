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
    def __init__(self, **kwargs: Any) -> None:
        from lettergen.server import create_app

        config = uvicorn.Config(create_app(**kwargs), host="127.0.0.1", port=0, log_level="error", lifespan="off")
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
    assert client.get("/docs").status_code == 200


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

    from lettergen import cli, server

    assert inspect.signature(server.serve).parameters["host"].default == "127.0.0.1"
    assert "127.0.0.1" in str(inspect.signature(cli.serve).parameters["host"].default)
