"""The HTTP service (extra ``server``): FastAPI on uvicorn, bound to 127.0.0.1 by default.

Safety rules, each tested:

- Request bodies are capped (``MAX_BODY`` bytes, 413 beyond it), whether or not Content-Length is sent, and
  must arrive within ``body_timeout`` seconds of the headers (408 beyond it). The headers have a deadline too,
  and open connections a cap (:mod:`lettergen.interfaces.server_protocol`); both are ``lettergen serve`` options.
- A request carries the case itself (case JSON or YAML, or a FHIR Bundle), never a path: no file is read or
  written because of a request, and letters are returned in the response (as JSON with the ledger, or with
  ``Accept: application/pdf`` or the docx media type as the file itself). A YAML body is read with
  lettergen's strict loader, and one whose aliases would expand past its own size is refused.
- Templates are the shipped ones; request data reaches them only as values (sandboxed, escaped).
  Letter type and format are checked against fixed lists before use.
- CORS is off unless the operator names allowed origins (``lettergen serve --cors-origin``).
- Bad input is 422 with the field path; errors never echo a request value: FastAPI's own validation errors
  (a body that is not a JSON object, a query parameter off its list) keep their location, type and a plain
  message, never the ``input`` they would otherwise carry (the whole case, for a body sent as text/plain).
- No outbound call: requests are answered from the shipped knowledge base, offline (no model: the service
  does not polish). /docs and /redoc, whose pages load Swagger UI and ReDoc from a CDN, are off unless
  ``create_app(docs=True)``; /openapi.json is always there.
- The OpenAPI document types every body: the case (:mod:`lettergen.interfaces.server_models`), the decision,
  the draft response, the validate request and result; each example in it is answered with 200.
"""

# No `from __future__ import annotations` here: FastAPI reads the route annotations, which refer to
# names local to create_app (the lazily imported Body and Query).
import asyncio
import base64
import json
import os
import re
from datetime import date
from typing import Annotated, Any, Literal

from lettergen import __version__
from lettergen.errors import MissingExtra
from lettergen.interfaces.serve_settings import (
    BODY_TIMEOUT,
    HEADER_TIMEOUT,
    KEEP_ALIVE,
    LIMIT_CONCURRENCY,
    MAX_BODY,
    SETTINGS_ENV,
    ServeSettings,
    settings_from_env,
)

LetterTypeParam = Literal["lmn", "appeal", "external_review", "peer_to_peer", "determination"]
FormatParam = Literal["md", "txt", "html", "pdf", "docx", "fhir"]
MEDIA = {
    "md": "text/markdown; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "fhir": "application/fhir+json",
}
_BINARY = ("pdf", "docx")


def app_from_env() -> Any:
    """The application factory uvicorn calls in each worker (``lettergen.interfaces.server:app_from_env``)."""
    settings = settings_from_env()
    return create_app(
        cors_origins=settings.cors_origins,
        max_body=settings.max_body,
        body_timeout=settings.body_timeout,
        docs=settings.docs,
    )


class _BodyLimit:
    """ASGI middleware: read the whole body first, refusing one over ``limit`` bytes with 413 (counting what
    actually arrives) and one that has not arrived ``timeout`` seconds after the headers with 408; then hand
    it to the application. A client sending a byte every half second no longer holds a connection open."""

    def __init__(self, app: Any, limit: int, timeout: float = BODY_TIMEOUT) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _refuse(send, 413, f"request body exceeds {self.limit} bytes")
            return
        # Read the whole body first (at most `limit` bytes, within `timeout` seconds), then replay it: a chunked
        # upload that grows past the limit, or a body that trickles in, is refused before any handler sees it.
        chunks: list[bytes] = []
        seen = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                await _refuse(send, 408, f"request body not received within {self.timeout:g} seconds")
                return
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await _refuse(send, 413, f"request body exceeds {self.limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Any, status: int, detail: str) -> None:
    """Answer before the body is read, and close: the rest of the body is not waited for."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _loc(field: str) -> list[str | int]:
    out: list[str | int] = ["body"]
    for part in field.replace("[", ".[").split("."):
        if not part:
            continue
        out.append(int(part[1:-1]) if part.startswith("[") and part[1:-1].isdigit() else part)
    return out


def _plain_errors(errors: Any, json_body: bool) -> list[dict[str, Any]]:
    """FastAPI's validation errors without the values they carry: location, type and a message that quotes
    nothing of the request (a message that contains the value it refused is replaced by a generic one)."""
    out: list[dict[str, Any]] = []
    for e in errors:
        loc = [p if isinstance(p, int) else str(p) for p in e.get("loc", ())]
        kind = str(e.get("type", "value_error"))
        msg = str(e.get("msg", "invalid value"))
        value = e.get("input")
        if loc[:1] == ["body"] and kind in ("dict_type", "model_attributes_type") and not json_body:
            msg = "the body must be a JSON object, sent with content-type: application/json"
        elif kind == "json_invalid":
            msg, loc = "the body is not valid JSON", ["body"]  # the position in loc would locate a value
        elif isinstance(value, str) and len(value) > 1 and value in msg:
            msg = "invalid value"
        out.append({"loc": loc, "msg": msg, "type": kind})
    return out


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


_FILE_MEDIA = {MEDIA["pdf"]: "pdf", MEDIA["docx"]: "docx"}
_JSON_WILDCARDS = ("*/*", "application/*")
_YAML_MEDIA = ("application/yaml", "text/yaml", "application/x-yaml")


def wanted_file(accept: str | None) -> str | None:
    """The format (pdf or docx) an ``Accept`` header asks to be answered with as the file itself, or None for
    the JSON answer: a file media type with a q-value above that of ``application/json``, and at least that of
    a wildcard (``*/*`` alone, or no header, is JSON)."""
    best, best_q, json_q, wild_q = None, 0.0, 0.0, 0.0
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media in _FILE_MEDIA and q > best_q:
            best, best_q = _FILE_MEDIA[media], q
        elif media == "application/json":
            json_q = max(json_q, q)
        elif media in _JSON_WILDCARDS:
            wild_q = max(wild_q, q)
    return best if best is not None and best_q > json_q and best_q >= wild_q else None


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _expanded_size(data: Any, limit: int) -> int:
    """The number of values in ``data`` counted as a tree (a shared node once per place it appears), stopping
    past ``limit``. A YAML body is parsed into shared nodes (an alias is not copied), so a small document can
    stand for a huge tree, which hashing or validating would walk: one whose tree has more values than its
    byte count could hold is refused."""
    count, stack = 0, [data]
    while stack and count <= limit:
        node = stack.pop()
        count += 1
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


_QUOTED = re.compile(r"( ?)'([^'\n]*)'")


def _quiet(problem: str) -> str:
    """A parser's message without what it quotes of the document (a duplicate key, say), keeping the single
    characters of its syntax ("expected ',' or ']'")."""
    return _QUOTED.sub(lambda m: m.group(0) if len(m.group(2)) <= 1 else "", problem)


def create_app(
    *,
    cors_origins: tuple[str, ...] = (),
    max_body: int = MAX_BODY,
    body_timeout: float = BODY_TIMEOUT,
    docs: bool = False,
) -> Any:
    """The application. ``docs`` serves Swagger UI at /docs and ReDoc at /redoc, pages whose scripts the browser
    loads from a CDN: off by default, so that the service is wholly offline; /openapi.json is always served."""
    try:
        from fastapi import Body, FastAPI, Query, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse, Response
        from starlette.concurrency import run_in_threadpool
    except ImportError:
        raise MissingExtra("server", "lettergen serve") from None

    from lettergen import api
    from lettergen.case.load import case_from_data
    from lettergen.decision.engine import Decision, check_facts
    from lettergen.errors import CaseError, EnvironmentProblem, InputError, LettergenError, ValidationFailed
    from lettergen.interfaces.server_models import DraftResponse, ValidateRequest, ValidationResult, add_request_bodies
    from lettergen.knowledge.store import load_kb
    from lettergen.provenance.ledger import sha256_text
    from lettergen.yamlio import parse_mapping

    kb = load_kb()
    app = FastAPI(
        title="lettergen",
        version=__version__,
        description="Deterministic medical-necessity decisions and cited letters. Cases travel in the request "
        "body (case JSON or YAML, contract v1, or a FHIR R4 Bundle); nothing is written to disk. "
        "POST /v1/draft with `Accept: application/pdf` (or the docx media type) for the letter file itself.",
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        swagger_ui_oauth2_redirect_url="/docs/oauth2-redirect" if docs else None,
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = add_request_bodies(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    def unprocessable(field: str, message: str, kind: str = "value_error") -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": [{"loc": _loc(field), "msg": message, "type": kind}]})

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Any, exc: RequestValidationError) -> JSONResponse:
        detail = _plain_errors(exc.errors(), _is_json(request.headers.get("content-type")))
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(LettergenError)
    async def _lettergen_error(request: Any, exc: LettergenError) -> JSONResponse:
        if isinstance(exc, CaseError):
            return unprocessable(exc.field, exc.problem)
        if isinstance(exc, ValidationFailed):
            issues = [
                {"loc": ["letter", i.sentence or ""], "msg": i.message, "type": f"rule_{i.rule}"}
                for i in exc.issues
                if getattr(i, "level", "error") == "error"
            ]
            return JSONResponse(status_code=422, content={"detail": issues or [{"loc": ["letter"], "msg": str(exc)}]})
        if isinstance(exc, InputError):
            return JSONResponse(status_code=422, content={"detail": [{"loc": ["query"], "msg": str(exc)}]})
        if isinstance(exc, EnvironmentProblem):
            return JSONResponse(status_code=503, content={"detail": str(exc)})
        return JSONResponse(status_code=500, content={"detail": type(exc).__name__})

    async def read_case(request: Request) -> api.LoadedCase:
        """The case in the request body: JSON (``application/json`` or ``+json``) or YAML (``application/yaml``,
        ``text/yaml``), a lettergen case or a FHIR Bundle. The body is already within ``max_body`` bytes."""
        file = "request"
        raw = await request.body()
        content_type = request.headers.get("content-type")
        yaml_body = _media(content_type) in _YAML_MEDIA
        if not (yaml_body or _is_json(content_type)):
            raise CaseError(
                file,
                "",
                "the body must be a JSON object, sent with content-type: application/json "
                "(or YAML, with content-type: application/yaml)",
            )
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CaseError(file, "", "the body is not UTF-8 text") from None
        if not text.strip():
            raise CaseError(file, "", "the body is empty")
        if yaml_body:
            try:
                body = parse_mapping(text, file, CaseError)
            except CaseError as exc:
                raise CaseError(file, "", "the body " + _quiet(exc.problem)) from None
            if _expanded_size(body, len(raw)) > len(raw):
                raise CaseError(file, "", "the body's YAML aliases expand past its size")
            sha = sha256_text(text)  # as the CLI hashes a case file's text
        else:
            try:
                body = parse_mapping(text, file, CaseError, json_only=True)
            except CaseError as exc:
                raise CaseError(file, "", "the body " + exc.problem) from None
            sha = sha256_text(json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")))
        case = case_from_data(body, file)
        check_facts(case, kb, file)
        return api.LoadedCase(case=case, sha256=sha, file=file)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/v1/criteria")
    def criteria() -> list[dict[str, Any]]:
        return [p.summary() for p in kb.policies.values()]

    @app.post("/v1/check", response_model=Decision)
    async def check(request: Request) -> Any:
        """The decision for every requested code: its verdict, the criteria one by one, the facts still
        missing; with a denial, the appeal deadline."""
        loaded = await read_case(request)
        return await run_in_threadpool(api.check, loaded.case, kb)

    binary_content = {"schema": {"type": "string", "format": "binary"}}

    @app.post(
        "/v1/draft",
        response_model=DraftResponse,
        responses={
            200: {
                "description": "The letter and its ledger (JSON), or with `Accept: application/pdf` or "
                f"`Accept: {MEDIA['docx']}` the letter file itself, named in Content-Disposition.",
                "content": {MEDIA["pdf"]: binary_content, MEDIA["docx"]: binary_content},
            },
            406: {"description": "The Accept header asks for a file of another format than `format` names."},
        },
    )
    async def draft(
        request: Request,
        type: Annotated[LetterTypeParam | None, Query(description="Letter type (default: the case's).")] = None,
        format: Annotated[
            FormatParam | None,
            Query(description="Letter format (default: md, or the pdf or docx the Accept header asks for)."),
        ] = None,
        on: Annotated[
            date | None, Query(alias="date", description="Letter date (default: the case's, else today).")
        ] = None,
        voice: Annotated[Literal["physician", "patient"], Query()] = "physician",
    ) -> Any:
        """Draft the letter, validate it, and answer with it and its ledger; a letter that fails validation
        is a 422 naming the rule broken."""
        as_file = wanted_file(request.headers.get("accept"))
        if as_file is not None and format not in (None, as_file):
            return JSONResponse(
                status_code=406,
                content={
                    "detail": [
                        {
                            "loc": ["header", "accept"],
                            "msg": "the Accept header asks for another format than the format parameter names",
                            "type": "not_acceptable",
                        }
                    ]
                },
            )
        fmt = as_file or format or "md"
        loaded = await read_case(request)
        result = await run_in_threadpool(
            api.draft, loaded, letter_type=type, fmt=fmt, letter_date=on, kb=kb, voice=voice
        )
        letter_name, ledger_name = result.filenames()
        if as_file is not None:
            return Response(
                content=result.content,
                media_type=MEDIA[fmt],
                headers={"content-disposition": f'attachment; filename="{letter_name}"'},
            )
        binary = fmt in _BINARY
        return DraftResponse(
            filename=letter_name,
            media_type=MEDIA[fmt],
            encoding="base64" if binary else "utf-8",
            letter=base64.b64encode(result.content).decode("ascii") if binary else result.content.decode("utf-8"),
            ledger_filename=ledger_name,
            ledger=result.ledger,
            validation=result.validation,
        )

    @app.post("/v1/validate", response_model=ValidationResult)
    def validate(body: Annotated[ValidateRequest, Body()]) -> Any:
        """Re-check a letter, possibly edited by a person, against the ledger drafted with it: the answer is
        the validation result (``ok`` false, with the issues, when an edit changed what the letter claims)."""
        from lettergen.outputs.docx_out import docx_text

        ledger = body.ledger
        if ledger.format in ("pdf", "fhir"):
            return unprocessable(
                "ledger.format", f"a {ledger.format} letter cannot be edited; validate the md, txt, html or docx"
            )
        if (body.encoding == "base64") != (ledger.format == "docx"):
            need = "a docx document in base64 (encoding: base64)" if ledger.format == "docx" else "its text"
            return unprocessable("encoding", f"the ledger is of a {ledger.format} letter: send {need}")
        if body.encoding == "base64":
            try:
                data = base64.b64decode(body.letter, validate=True)
            except ValueError:
                return unprocessable("letter", "is not base64")
            text = docx_text(data, "letter")
        else:
            text = body.letter
        return api.validate_text(text, ledger)

    if cors_origins:  # off unless the operator opts in, origin by origin
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"], allow_headers=["*"]
        )
    app.add_middleware(_BodyLimit, limit=max_body, timeout=body_timeout)
    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    cors_origins: tuple[str, ...] = (),
    *,
    workers: int = 1,
    header_timeout: float = HEADER_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
    keep_alive: int = KEEP_ALIVE,
    limit_concurrency: int = LIMIT_CONCURRENCY,
    max_body: int = MAX_BODY,
    docs: bool = False,
) -> None:
    """Run the service with uvicorn: ``workers`` processes sharing the port, each building the application
    from ``lettergen.interfaces.server:app_from_env`` with these settings (handed over in
    ``LETTERGEN_SERVE_SETTINGS``). ``docs`` serves /docs and /redoc (see :func:`create_app`)."""
    from lettergen.errors import UsageError

    for name, value in (("--header-timeout", header_timeout), ("--body-timeout", body_timeout)):
        if not value > 0:
            raise UsageError(f"{name}: must be more than 0 seconds")
    if keep_alive < 1:
        raise UsageError(f"--keep-alive: must be at least 1 second, not {keep_alive}")
    if workers < 1:
        raise UsageError(f"--workers: must be at least 1, not {workers}")
    if limit_concurrency < 1:
        raise UsageError(f"--limit-concurrency: must be at least 1, not {limit_concurrency}")
    try:
        import uvicorn

        import lettergen.interfaces.server_protocol  # noqa: F401  (the extra's h11, before uvicorn is told of it)
    except ImportError:
        raise MissingExtra("server", "lettergen serve") from None
    settings = ServeSettings(
        cors_origins=cors_origins,
        max_body=max_body,
        body_timeout=body_timeout,
        header_timeout=header_timeout,
        docs=docs,
    )
    os.environ[SETTINGS_ENV] = settings.to_env()  # read by this process and by each spawned worker
    uvicorn.run(
        "lettergen.interfaces.server:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http="lettergen.interfaces.server_protocol:DeadlineH11Protocol",
        timeout_keep_alive=keep_alive,
        limit_concurrency=limit_concurrency,
        log_level="info",
        server_header=False,
        access_log=False,
    )
