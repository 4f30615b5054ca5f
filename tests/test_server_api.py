"""The HTTP service's interface, in process with FastAPI's TestClient (the middleware included): the OpenAPI
document and its examples, the letter file for `Accept: application/pdf` or docx, YAML bodies, /v1/validate,
and /docs off by default. What depends on the real server (slow clients, connection caps, workers) is in
tests/test_server.py."""

from __future__ import annotations

import base64
import io
import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import CHORDOMA, EXAMPLES

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
IDENTIFIERS = ("Jane Q. Sample", "1965-03-14", "XYZ000000000")


def _client(**kwargs: Any) -> Any:
    with warnings.catch_warnings():  # starlette's notice that its test client will move to httpx2
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from lettergen.interfaces.server import create_app

    return TestClient(create_app(**kwargs))


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with _client() as c:
        yield c


@pytest.fixture(scope="module")
def spec(client: Any) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    data: dict[str, Any] = r.json()
    return data


def _case() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(yaml.safe_load(CHORDOMA.read_text()), default=str))
    return data


def _no_echo(r: Any) -> None:
    for ident in IDENTIFIERS:
        assert ident not in r.text, (ident, r.text)


# -- the OpenAPI document ----------------------------------------------------------------------------------


def _examples(spec: dict[str, Any]) -> list[tuple[str, str, Any]]:
    out = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert method in ("get", "post")
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                assert "example" in content, (path, media)
                out.append((path, media, content["example"]))
    return out


def test_every_example_is_answered_with_200(client: Any, spec: dict[str, Any]) -> None:
    # The example shipped before ({"case_id": "example-001", "patient": {...}}) was answered with 422.
    examples = _examples(spec)
    assert {(p, m) for p, m, _ in examples} == {
        ("/v1/check", "application/json"),
        ("/v1/check", "application/yaml"),
        ("/v1/draft", "application/json"),
        ("/v1/draft", "application/yaml"),
        ("/v1/validate", "application/json"),
    }
    for path, media, example in examples:
        if media == "application/json":
            r = client.post(path, json=example)
        else:
            assert isinstance(example, str)
            r = client.post(path, content=example.encode(), headers={"content-type": media})
        assert r.status_code == 200, (path, media, r.text[:500])
        if path == "/v1/validate":
            assert r.json() == {"ok": True, "checked": r.json()["checked"], "issues": []}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref:
        resolved: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return schema


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    document = {**schema, "components": spec["components"]}
    return jsonschema.Draft202012Validator(document)


def test_bodies_are_typed(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    for path in ("/v1/check", "/v1/draft"):
        content = paths[path]["post"]["requestBody"]["content"]
        for media in ("application/json", "application/yaml"):
            refs = [s["$ref"] for s in content[media]["schema"]["oneOf"]]
            assert refs == ["#/components/schemas/Case", "#/components/schemas/FhirBundle"]
    validate = paths["/v1/validate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert _resolve(spec, validate)["title"] == "ValidateRequest"

    def response(path: str) -> dict[str, Any]:
        return _resolve(spec, paths[path]["post"]["responses"]["200"]["content"]["application/json"]["schema"])

    assert response("/v1/check")["title"] == "Decision"
    assert response("/v1/draft")["title"] == "DraftResponse"
    assert response("/v1/validate")["title"] == "ValidationResult"
    case = spec["components"]["schemas"]["Case"]
    assert {"case_id", "patient", "payer", "provider", "diagnoses", "services", "facts"} <= set(case["properties"])
    assert case["additionalProperties"] is False
    ledger = spec["components"]["schemas"]["DraftResponse"]["properties"]["ledger"]
    assert ledger["$ref"] == "#/components/schemas/Ledger"
    draft_200 = paths["/v1/draft"]["post"]["responses"]["200"]["content"]
    assert {"application/pdf", DOCX} <= set(draft_200)


def test_examples_and_answers_fit_their_schemas(client: Any, spec: dict[str, Any]) -> None:
    check = spec["paths"]["/v1/check"]["post"]
    content = check["requestBody"]["content"]["application/json"]
    _validator(spec, content["schema"]).validate(content["example"])
    answer = client.post("/v1/check", json=content["example"]).json()
    _validator(spec, check["responses"]["200"]["content"]["application/json"]["schema"]).validate(answer)
    draft = spec["paths"]["/v1/draft"]["post"]
    answer = client.post("/v1/draft", params={"format": "html"}, json=content["example"]).json()
    _validator(spec, draft["responses"]["200"]["content"]["application/json"]["schema"]).validate(answer)
    validate = spec["paths"]["/v1/validate"]["post"]["requestBody"]["content"]["application/json"]
    _validator(spec, validate["schema"]).validate(validate["example"])


# -- the letter file ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, None),
        ("*/*", None),
        ("application/json", None),
        ("application/pdf", "pdf"),
        (DOCX, "docx"),
        ("application/pdf, */*;q=0.8", "pdf"),
        ("application/pdf, */*", "pdf"),
        ("application/json, application/pdf;q=0.5", None),
        ("application/json;q=0.5, application/pdf", "pdf"),
        ("application/json, application/pdf", None),
        ("application/pdf;q=0", None),
        ("application/pdf;q=nonsense", None),
        ("text/html", None),
        ("APPLICATION/PDF", "pdf"),
    ],
)
def test_accept_header_choice(accept: str | None, expected: str | None) -> None:
    from lettergen.interfaces.server import wanted_file

    assert wanted_file(accept) == expected


@pytest.mark.parametrize(("media", "fmt", "magic"), [("application/pdf", "pdf", b"%PDF-"), (DOCX, "docx", b"PK")])
def test_accept_pdf_or_docx_answers_with_the_file(client: Any, media: str, fmt: str, magic: bytes) -> None:
    pytest.importorskip("weasyprint" if fmt == "pdf" else "docx", exc_type=ImportError)
    r = client.post(
        "/v1/draft", params={"type": "appeal", "date": "2026-11-21"}, json=_appeal(), headers={"accept": media}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == media and r.content.startswith(magic)
    # named by case id and letter type: no patient identifier
    disposition = r.headers["content-disposition"]
    assert disposition == f'attachment; filename="appeal-erisa-chordoma-001.appeal.{fmt}"'
    for ident in (*IDENTIFIERS, "Sample"):
        assert ident not in disposition
    # the same letter as format= gives in the JSON answer
    same = client.post("/v1/draft", params={"type": "appeal", "date": "2026-11-21", "format": fmt}, json=_appeal())
    assert base64.b64decode(same.json()["letter"]) == r.content
    # and format= may say the same thing
    both = client.post(
        "/v1/draft",
        params={"type": "appeal", "date": "2026-11-21", "format": fmt},
        json=_appeal(),
        headers={"accept": media},
    )
    assert both.status_code == 200 and both.content == r.content


def _appeal() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        json.dumps(yaml.safe_load((EXAMPLES / "appeal-erisa-chordoma-biopsy.yaml").read_text()), default=str)
    )
    return data


def test_json_stays_the_default(client: Any) -> None:
    for headers in ({}, {"accept": "*/*"}, {"accept": "application/json"}):
        r = client.post("/v1/draft", params={"date": "2026-11-21"}, json=_case(), headers=headers)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json()["filename"] == "chordoma-gluteal-001.lmn.md" and "content-disposition" not in r.headers


def test_accept_and_format_that_disagree_are_406(client: Any) -> None:
    r = client.post("/v1/draft", params={"format": "md"}, json=_case(), headers={"accept": "application/pdf"})
    assert r.status_code == 406
    assert r.json()["detail"][0]["loc"] == ["header", "accept"]
    _no_echo(r)


# -- YAML bodies -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "media", ["application/yaml", "text/yaml", "application/x-yaml", "application/yaml; charset=utf-8"]
)
def test_a_yaml_case_is_accepted(client: Any, media: str) -> None:
    text = CHORDOMA.read_bytes()  # the example file itself, comments and YAML dates included
    r = client.post("/v1/check", content=text, headers={"content-type": media})
    assert r.status_code == 200, r.text
    assert {s["code"]: s["verdict"] for s in r.json()["services"]} == {"20206": "met", "38505": "insufficient"}
    r = client.post("/v1/draft", params={"date": "2026-11-21"}, content=text, headers={"content-type": media})
    assert r.status_code == 200, r.text
    from lettergen.provenance.ledger import sha256_text

    assert r.json()["ledger"]["case_sha256"] == sha256_text(text)  # as the CLI hashes the file


def test_yaml_and_json_give_the_same_letter(client: Any) -> None:
    params = {"date": "2026-11-21", "format": "txt"}
    as_json = client.post("/v1/draft", params=params, json=_case()).json()
    as_yaml = client.post(
        "/v1/draft", params=params, content=yaml.safe_dump(_case()), headers={"content-type": "application/yaml"}
    ).json()
    assert as_json["letter"] == as_yaml["letter"]


@pytest.mark.parametrize(
    ("content", "loc"),
    [
        (b"patient:\n  name: Jane Q. Sample\n  name: XYZ000000000\n", ["body"]),  # a duplicate key, quoted by PyYAML
        (b"patient: [Jane Q. Sample\n", ["body"]),
        (b"- Jane Q. Sample\n- 1965-03-14\n", ["body"]),
        (b"", ["body"]),
        (b"\xff\xfe Jane Q. Sample", ["body"]),
        (yaml.safe_dump({**_case(), "case_id": "Jane Q. Sample"}).encode(), ["body", "case_id"]),
        (
            yaml.safe_dump({**_case(), "patient": {"name": "Jane Q. Sample", "birth_date": "XYZ000000000"}}).encode(),
            ["body", "patient", "birth_date"],
        ),
    ],
    ids=["duplicate-key", "syntax", "a-list", "empty", "not-utf8", "bad-case-id", "bad-date"],
)
def test_bad_yaml_is_422_without_echo(client: Any, content: bytes, loc: list[Any]) -> None:
    r = client.post("/v1/check", content=content, headers={"content-type": "application/yaml"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][: len(loc)] == loc
    _no_echo(r)
    for entry in r.json()["detail"]:
        assert set(entry) == {"loc", "msg", "type"}


@pytest.mark.parametrize(
    ("problem", "quiet"),
    [
        ("is not valid YAML (line 3: duplicate key 'Jane Q. Sample')", "is not valid YAML (line 3: duplicate key)"),
        ("is not valid YAML (line 2: did not find expected ',' or ']')", "unchanged"),
        ("found character '\\t' that cannot start any token", "found character that cannot start any token"),
    ],
)
def test_yaml_messages_lose_what_they_quote(problem: str, quiet: str) -> None:
    from lettergen.interfaces.server import _quiet

    assert _quiet(problem) == (problem if quiet == "unchanged" else quiet)


def test_yaml_aliases_that_expand_past_the_body_are_refused(client: Any) -> None:
    # Nine levels of ten aliases: a billion leaves when counted out (hashing or validating them would hang)
    lines = ["l0: &l0 [lol]"] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    body = "\n".join([*lines, "enclosures: *l9"]) + "\n"
    r = client.post("/v1/check", content=body.encode(), headers={"content-type": "application/yaml"})
    assert r.status_code == 422 and "aliases" in r.json()["detail"][0]["msg"]


def test_a_yaml_body_has_the_same_size_cap() -> None:
    with _client(max_body=10_000) as small:
        big = yaml.safe_dump({**_case(), "enclosures": ["x" * 200] * 60}).encode()
        assert len(big) > 10_000
        r = small.post("/v1/check", content=big, headers={"content-type": "application/yaml"})
        assert r.status_code == 413


def test_other_content_types_are_still_refused(client: Any) -> None:
    r = client.post("/v1/check", content=json.dumps(_case()).encode(), headers={"content-type": "text/plain"})
    assert r.status_code == 422 and "JSON" in r.json()["detail"][0]["msg"] and "YAML" in r.json()["detail"][0]["msg"]
    _no_echo(r)


# -- /v1/validate ------------------------------------------------------------------------------------------


def _drafted(client: Any, fmt: str) -> dict[str, Any]:
    r = client.post("/v1/draft", params={"format": fmt, "date": "2026-11-21"}, json=_case())
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


@pytest.mark.parametrize("fmt", ["md", "txt", "html"])
def test_validate_a_text_letter(client: Any, fmt: str) -> None:
    drafted = _drafted(client, fmt)
    body = {"letter": drafted["letter"], "ledger": drafted["ledger"]}
    r = client.post("/v1/validate", json=body)
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    # a lie is caught: the answer is the result (200), not an error
    lie = drafted["letter"].replace("October 28, 2026", "October 28, 2025", 1)
    assert lie != drafted["letter"]
    r = client.post("/v1/validate", json={**body, "letter": lie})
    assert r.status_code == 200 and r.json()["ok"] is False
    assert any("2025-10-28" in i["message"] for i in r.json()["issues"])


def test_validate_a_docx_letter(client: Any) -> None:
    docx = pytest.importorskip("docx")
    drafted = _drafted(client, "docx")
    body = {"letter": drafted["letter"], "encoding": "base64", "ledger": drafted["ledger"]}
    r = client.post("/v1/validate", json=body)
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    document = docx.Document(io.BytesIO(base64.b64decode(drafted["letter"])))
    target = next(p for p in document.paragraphs if "October 28, 2026" in p.text)
    for run in target.runs:
        run.text = run.text.replace("October 28, 2026", "October 28, 2025")
    edited = io.BytesIO()
    document.save(edited)
    r = client.post("/v1/validate", json={**body, "letter": base64.b64encode(edited.getvalue()).decode()})
    assert r.status_code == 200 and r.json()["ok"] is False


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        (lambda b: {**b, "encoding": "base64"}, ["body", "encoding"]),  # a text letter sent as base64
        (lambda b: {**b, "ledger": {**b["ledger"], "format": "pdf"}}, ["body", "ledger", "format"]),
        (lambda b: {**b, "ledger": {**b["ledger"], "sentences": "Jane Q. Sample"}}, ["body", "ledger", "sentences"]),
        (lambda b: {**b, "ledger": {**b["ledger"], "extra": "XYZ000000000"}}, ["body", "ledger", "extra"]),
        (lambda b: {"letter": b["letter"]}, ["body", "ledger"]),
        (lambda b: {**b, "encoding": "XYZ000000000"}, ["body", "encoding"]),
    ],
    ids=["text-as-base64", "pdf-ledger", "bad-ledger", "unknown-key", "no-ledger", "bad-encoding"],
)
def test_validate_refuses_what_it_cannot_check(client: Any, change: Any, loc: list[Any]) -> None:
    drafted = _drafted(client, "md")
    r = client.post("/v1/validate", json=change({"letter": drafted["letter"], "ledger": drafted["ledger"]}))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][: len(loc)] == loc
    _no_echo(r)


def test_validate_refuses_a_docx_that_is_not_one(client: Any) -> None:
    drafted = _drafted(client, "docx")
    for letter in ("not base64 at all!", base64.b64encode(b"Jane Q. Sample").decode()):
        r = client.post("/v1/validate", json={"letter": letter, "encoding": "base64", "ledger": drafted["ledger"]})
        assert r.status_code == 422, r.text
        _no_echo(r)


# -- offline docs --------------------------------------------------------------------------------------------


def test_docs_are_off_unless_asked_for(client: Any) -> None:
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert client.get(path).status_code == 404
    assert client.get("/openapi.json").status_code == 200
    with _client(docs=True) as with_docs:
        page = with_docs.get("/docs")
        assert page.status_code == 200 and "swagger-ui" in page.text
        assert with_docs.get("/redoc").status_code == 200


def test_the_docs_setting_reaches_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from lettergen.interfaces import server
    from lettergen.interfaces.serve_settings import SETTINGS_ENV, ServeSettings

    monkeypatch.setenv(SETTINGS_ENV, ServeSettings(docs=True).to_env())
    assert server.settings_from_env().docs is True
    monkeypatch.setenv(SETTINGS_ENV, ServeSettings().to_env())
    assert server.settings_from_env().docs is False
