"""The HTTP service (extra ``server``): FastAPI on uvicorn, bound to 127.0.0.1 by default.

Safety rules, each tested:

- Request bodies are capped (``MAX_BODY`` bytes, 413 beyond it), whether or not Content-Length is sent.
- A request carries the case itself (case JSON or a FHIR Bundle), never a path: no file is read or
  written because of a request, and letters are returned in the response.
- Templates are the shipped ones; request data reaches them only as values (sandboxed, escaped).
  Letter type and format are checked against fixed lists before use.
- CORS is off unless the operator names allowed origins (``lettergen serve --cors-origin``).
- Bad input is 422 with the field path; errors never echo a patient value.
"""

# No `from __future__ import annotations` here: FastAPI reads the route annotations, which refer to
# names local to create_app (the lazily imported Body and Query).
import base64
import json
from datetime import date
from typing import Annotated, Any, Literal

from lettergen import __version__
from lettergen.errors import MissingExtra

MAX_BODY = 1_000_000
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


class _BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes with 413, counting what actually arrives."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(send, self.limit)
            return
        # Read the whole body first (at most `limit` bytes), then replay it: a chunked upload that grows
        # past the limit is refused before any handler sees it.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await _too_large(send, self.limit)
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


async def _too_large(send: Any, limit: int) -> None:
    body = json.dumps({"detail": f"request body exceeds {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _loc(field: str) -> list[str | int]:
    out: list[str | int] = ["body"]
    for part in field.replace("[", ".[").split("."):
        if not part:
            continue
        out.append(int(part[1:-1]) if part.startswith("[") and part[1:-1].isdigit() else part)
    return out


def create_app(*, cors_origins: tuple[str, ...] = (), max_body: int = MAX_BODY) -> Any:
    try:
        from fastapi import Body, FastAPI, Query
        from fastapi.responses import JSONResponse
    except ImportError:
        raise MissingExtra("server", "lettergen serve") from None

    from lettergen import api
    from lettergen.case import case_from_data
    from lettergen.criteria import check_facts
    from lettergen.errors import CaseError, EnvironmentProblem, InputError, LettergenError, ValidationFailed
    from lettergen.kb import load_kb
    from lettergen.ledger import ledger_json, sha256_text

    kb = load_kb()
    app = FastAPI(
        title="lettergen",
        version=__version__,
        description="Deterministic medical-necessity decisions and cited letters. Cases travel in the request "
        "body (case JSON, contract v1, or a FHIR R4 Bundle); nothing is written to disk.",
    )

    def unprocessable(field: str, message: str, kind: str = "value_error") -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": [{"loc": _loc(field), "msg": message, "type": kind}]})

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

    def load(body: dict[str, Any]) -> api.LoadedCase:
        file = "request"
        case = case_from_data(body, file)
        check_facts(case, kb, file)
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return api.LoadedCase(case=case, sha256=sha256_text(canonical), file=file)

    case_body = Body(
        description="The case: lettergen case JSON (contract v1) or a FHIR R4 Bundle.",
        examples=[{"case_id": "example-001", "patient": {"name": "...", "birth_date": "1965-03-14"}}],
    )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/v1/criteria")
    def criteria() -> list[dict[str, Any]]:
        return [p.summary() for p in kb.policies.values()]

    @app.post("/v1/check")
    def check(body: Annotated[dict[str, Any], case_body]) -> dict[str, Any]:
        loaded = load(body)
        return api.check(loaded.case, kb).model_dump(mode="json")

    @app.post("/v1/draft")
    def draft(
        body: Annotated[dict[str, Any], case_body],
        type: Annotated[LetterTypeParam | None, Query(description="Letter type (default: the case's).")] = None,
        format: Annotated[FormatParam, Query(description="Letter format.")] = "md",
        on: Annotated[
            date | None, Query(alias="date", description="Letter date (default: the case's, else today).")
        ] = None,
        voice: Annotated[Literal["physician", "patient"], Query()] = "physician",
    ) -> dict[str, Any]:
        loaded = load(body)
        result = api.draft(loaded, letter_type=type, fmt=format, letter_date=on, kb=kb, voice=voice)
        letter_name, ledger_name = result.filenames()
        binary = format in _BINARY
        return {
            "filename": letter_name,
            "media_type": MEDIA[format],
            "encoding": "base64" if binary else "utf-8",
            "letter": base64.b64encode(result.content).decode("ascii") if binary else result.content.decode("utf-8"),
            "ledger_filename": ledger_name,
            "ledger": json.loads(ledger_json(result.ledger)),
            "validation": result.validation.model_dump(mode="json"),
        }

    if cors_origins:  # off unless the operator opts in, origin by origin
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"], allow_headers=["*"]
        )
    app.add_middleware(_BodyLimit, limit=max_body)
    return app


def serve(host: str = "127.0.0.1", port: int = 8000, cors_origins: tuple[str, ...] = ()) -> None:
    app = create_app(cors_origins=cors_origins)
    try:
        import uvicorn
    except ImportError:
        raise MissingExtra("server", "lettergen serve") from None
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False, access_log=False)
