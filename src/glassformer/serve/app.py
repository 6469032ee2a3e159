"""The HTTP server: a Starlette app with one model endpoint, ``/health`` and ``/openapi.json``, run by uvicorn.

Every answer that is not a result is one line of JSON, ``{"error": "..."}``, with its status:

=======  ======================================================================================
400      the body is not JSON
413      the body is larger than ``max_body_bytes``, or a text longer than ``max_text_chars``
422      the JSON is not what the endpoint reads (missing or unknown fields, wrong types, empty
         text), or the model refused the input (a special token under ``"special_tokens": "raise"``)
503      the queue already holds ``queue_size`` requests (with ``Retry-After``), or shutting down
504      no answer within ``timeout`` seconds
500      a bug: its type and message, never a traceback (the traceback goes to the server's log)
=======  ======================================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from concurrent.futures import Executor
from dataclasses import asdict
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from glassformer.serve.batcher import BatcherClosed, MicroBatcher, QueueFull
from glassformer.serve.endpoints import BadRequest, Endpoint, kind_of
from glassformer.serve.settings import ServeSettings

log = logging.getLogger("glassformer.serve")
RETRY_AFTER_S = 1


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """``{"error": message}`` on one line with `status`."""
    return JSONResponse({"error": " ".join(message.split())}, status, headers)


def one_line(exc: BaseException) -> str:
    """An exception as one line; a bug's type is named, since its message alone may not say much."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return message if isinstance(exc, (ValueError, TypeError)) else f"{type(exc).__name__}: {message}"


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, refused (413) past `limit` bytes before more is read."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BadRequest(f"the body has {int(length):,} bytes; the server takes at most {limit:,}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"the body has more than {limit:,} bytes; the server takes at most {limit:,}", 413)
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON ({one_line(exc)})", 400) from None
    if not isinstance(body, dict):
        raise BadRequest(f"expected a JSON object, got {kind_of(body)}")
    return body


def _failure(exc: BaseException, timeout: float) -> JSONResponse:
    """The error answer for what a batch raised (or the wait for it)."""
    if isinstance(exc, QueueFull):
        return error(503, f"the server is busy ({exc}); try again shortly", {"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, BatcherClosed):
        return error(503, str(exc), {"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, asyncio.TimeoutError):
        return error(504, f"no answer within the server's timeout of {timeout:g} s")
    if isinstance(exc, BadRequest):
        return error(exc.status, str(exc))
    if isinstance(exc, (ValueError, TypeError)):
        return error(422, one_line(exc))
    log.error("a request failed", exc_info=exc)
    return error(500, f"internal error: {one_line(exc)}")


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(endpoint: Endpoint, settings: ServeSettings = ServeSettings(),
               info: dict[str, Any] | None = None, executor: Executor | None = None) -> Starlette:
    """The app serving `endpoint` through a :class:`MicroBatcher`; `info` (model, precision) is shown by ``/health``.

    `executor`: where to run the batches, e.g. the :func:`~glassformer.serve.batcher.model_thread` the endpoint's
    model was loaded in (it stays the caller's); without it the batcher starts a thread of its own.
    """
    batcher = MicroBatcher(endpoint.run, max_batch=settings.max_batch, max_wait_ms=settings.max_wait_ms,
                           queue_size=settings.queue_size, burst_gap_ms=settings.burst_gap_ms, executor=executor)
    details = {"family": endpoint.family, "endpoint": endpoint.path, **(info or {})}

    async def predict(request: Request) -> Response:
        try:
            body = await read_json(request, settings.max_body_bytes)
            items, options = endpoint.parse(body, settings)
        except BadRequest as exc:
            return error(exc.status, str(exc))
        if endpoint.streams and body.get("stream"):
            return await _stream(request, items, options)
        try:
            results = await batcher.submit(items, options, settings.timeout)
        except Exception as exc:  # noqa: BLE001 - every failure becomes its one-line JSON answer
            for item in items:  # a generation still running stops instead of running on unread
                if hasattr(item, "stop"):
                    item.stop.set()
            return _failure(exc, settings.timeout)
        return JSONResponse(endpoint.answer(results))

    async def _stream(request: Request, items: list[Any], options: Any) -> Response:
        """Server-sent events: ``token`` with each piece as it is drawn, then ``done`` (or ``error``)."""
        job = items[0]
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str] = asyncio.Queue()
        job.on_piece = lambda piece: loop.call_soon_threadsafe(pieces.put_nowait, piece)
        try:
            queued = batcher.enqueue(items, options)
        except (QueueFull, BatcherClosed) as exc:
            return _failure(exc, settings.timeout)
        finished = asyncio.ensure_future(batcher.result(queued))
        first = asyncio.ensure_future(pieces.get())
        # The status is sent with the first byte, so wait for the first token (or the end) before answering.
        done, _ = await asyncio.wait({first, finished}, timeout=settings.timeout, return_when=asyncio.FIRST_COMPLETED)
        if not done or (finished in done and first not in done and finished.exception() is not None):
            job.stop.set()
            first.cancel()
            finished.cancel()
            return _failure(finished.exception() if done else asyncio.TimeoutError(), settings.timeout)

        async def events() -> AsyncIterator[str]:
            getter = first
            try:
                while True:
                    await asyncio.wait({getter, finished}, return_when=asyncio.FIRST_COMPLETED)
                    if getter.done():
                        yield _sse("token", {"text": getter.result()})
                        if await request.is_disconnected():
                            return
                        getter = asyncio.ensure_future(pieces.get())
                        continue
                    while not pieces.empty():  # the worker hands every piece over before it finishes
                        yield _sse("token", {"text": pieces.get_nowait()})
                    if finished.exception() is not None:
                        yield _sse("error", {"error": one_line(finished.exception())})
                    else:
                        yield _sse("done", finished.result()[0])
                    return
            finally:
                job.stop.set()  # the client left, or the stream ended: either way the worker moves on
                getter.cancel()

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def health(request: Request) -> Response:
        status = "shutting down" if batcher.closing else "ok"
        return JSONResponse({"status": status, **details, "waiting": batcher.waiting, "batches": batcher.batches_run,
                             "items": batcher.items_run, "model_seconds": round(batcher.run_seconds, 4)},
                            200 if status == "ok" else 503)

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document(endpoint, settings))

    async def http_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return error(exc.status_code, str(exc.detail), exc.headers)
        log.error("a request failed", exc_info=exc)
        return error(500, f"internal error: {one_line(exc)}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.close()  # uvicorn has stopped accepting; finish what was accepted

    return Starlette(routes=[Route(endpoint.path, predict, methods=["POST"]), Route("/health", health, methods=["GET"]),
                             Route("/openapi.json", openapi, methods=["GET"])],
                     exception_handlers={HTTPException: http_error, Exception: http_error}, lifespan=lifespan)


def openapi_document(endpoint: Endpoint, settings: ServeSettings) -> dict[str, Any]:
    """An OpenAPI 3.1 description of the served routes, their bodies and their error answers."""
    problem = {"description": "one-line error", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}}}}
    errors = {str(code): {**problem, "description": text} for code, text in (
        (400, "the body is not JSON"), (413, "body or text too large"), (422, "the JSON is not what this reads"),
        (503, "queue full (see Retry-After) or shutting down"), (504, "no answer within the timeout"))}
    answer = {"description": "what the CLI's --json prints for the same input", "content": {"application/json": {}}}
    if endpoint.streams:
        answer["content"]["text/event-stream"] = {"description": 'with "stream": true: token events, then done'}
    return {
        "openapi": "3.1.0",
        "info": {"title": "glassformer serve", "version": _version(),
                 "description": f"serves a {endpoint.family} model; limits: {json.dumps(asdict(settings))}"},
        "paths": {
            endpoint.path: {"post": {
                "summary": endpoint.summary,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "properties": endpoint.fields, "additionalProperties": False}}}},
                "responses": {"200": answer, **errors}}},
            "/health": {"get": {"summary": "liveness, the model served and the queue",
                                "responses": {"200": {"description": "ok"}, "503": problem}}},
            "/openapi.json": {"get": {"summary": "this document", "responses": {"200": {"description": "OpenAPI"}}}},
        },
    }


def _version() -> str:
    from glassformer import __version__

    return __version__


def run_server(app: Starlette, host: str = "127.0.0.1", port: int = 8000, *, timeout: float = 30.0,
               announce: str = "") -> None:
    """Serve `app` with uvicorn until Ctrl-C or SIGTERM, then finish the accepted requests (up to `timeout` s more)."""
    import uvicorn

    if announce:
        print(announce, file=sys.stderr, flush=True)
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                  timeout_graceful_shutdown=int(timeout) + 5)).run()
