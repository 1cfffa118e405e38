"""The studio's HTTP app: the page, /healthz, /api/models and /api/translate, with their limits and error codes.

Codes: 400 an unknown Host or a corrupt image or a missing choice, 403 a POST from another site (guard.py), 404
unknown model or net, 413 upload over the byte, pixel or side limit, 415 not an image, 422 an image too thin, a
malformed form, or a hint map that does not fit its image or its model, 503 + Retry-After when the queue is full, 504
when a translation outlasts the timeout (its work is stopped, lane.py). Every error body is JSON {"detail": one
string}. Body bytes are counted as they arrive, so an oversized upload is refused without being read to its end,
and an image's size is checked from its header before it is decoded. A colour hint map (the optional `hints` file,
for models trained with hints) is bounded and checked as its image is (upload.py). The page and its files come only
from the package's static folder, and its Content-Security-Policy forbids loading anything from elsewhere: the
studio works offline. No answer holds a path on the server.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from translate.serve.card import describe_export
from translate.serve.guard import LOOPBACK, RequestGuard
from translate.serve.lane import Busy, WorkerError
from translate.serve.limits import Limits
from translate.serve.upload import UploadError, decode_hints, decode_upload, encode_png, read_hint_header, read_size
from translate.serve.worker import HEALTHY, Worker

STATIC = Path(__file__).parent / "static"
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the model / net fields around the file
POLL_S = 0.25  # how often a waiting request looks whether its caller is still there
CSP = ("default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")

__all__ = ["Limits", "create_app"]


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is a 413, by its Content-Length or once that much arrived."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        detail = f"upload too large: the limit is {self.max_bytes / 2**20:.1f} MiB per request"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await JSONResponse({"detail": detail}, 413)(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, detail)  # inside the route's form parsing: FastAPI answers it
            return message

        return await self.app(scope, counted, send)


def validation_detail(error: RequestValidationError) -> str:
    """FastAPI's list of problems as one line: "missing form field 'image'; ..."."""
    problems = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
        if problem.get("type") == "missing":
            problems.append(f"missing form field {where!r}")
        else:
            problems.append(f"{where}: {problem.get('msg', 'invalid')}" if where else problem.get("msg", "invalid"))
    return "; ".join(problems) or "invalid request"


def create_app(workers: dict[str, Worker], limits: Limits | None = None,
               hosts: frozenset[str] | None = frozenset(LOOPBACK)) -> FastAPI:
    """The app over already loaded workers (name -> Worker); it closes them when the server shuts down. `hosts`
    are the Host names it answers to (None: any), see guard.py."""
    limits = limits or Limits()
    models = [describe_export(name, w.path, w.description, w.models) for name, w in workers.items()]

    @asynccontextmanager
    async def lifespan(app):
        yield
        for worker in workers.values():  # after uvicorn has finished the requests in flight
            await run_in_threadpool(worker.close)

    # No /docs or /redoc: their pages load scripts from a CDN. /openapi.json stays.
    app = FastAPI(title="translate studio", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(BodyLimit, max_bytes=2 * limits.max_bytes + FORM_OVERHEAD)  # an image and its hint map
    app.add_middleware(RequestGuard, hosts=hosts)  # outermost: a refused request is not even read
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(UploadError)
    async def refused(request: Request, error: UploadError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, error.status)

    @app.exception_handler(Busy)
    async def busy(request: Request, error: Busy) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, 503, headers={"Retry-After": str(error.retry_after)})

    @app.exception_handler(WorkerError)
    async def unavailable(request: Request, error: WorkerError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, 503)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_detail(error)}, 422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, error: Exception) -> JSONResponse:  # a bug: still one line of JSON
        return JSONResponse({"detail": f"internal error: {type(error).__name__}"}, 500)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": CSP})

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """200 while every worker process is up; 503 while one is being replaced or cannot start."""
        health = {"status": "ok", "models": list(workers),
                  "workers": {name: worker.health() for name, worker in workers.items()}}
        down = [f"{name} {lane} ({state['state']})" for name, lanes in health["workers"].items()
                for lane, state in lanes.items() if state["state"] not in HEALTHY]
        if not down:
            return JSONResponse(health)
        return JSONResponse({"detail": f"worker process down or restarting: {', '.join(down)}",
                             **health, "status": "degraded"}, 503)

    @app.get("/api/models")
    def list_models() -> dict:
        return {"models": models, "limits": {"max_bytes": limits.max_bytes, "max_pixels": limits.max_pixels,
                                             "max_side": limits.max_side, "max_aspect": limits.max_aspect,
                                             "timeout": limits.timeout}}

    @app.post("/api/translate", response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def translate(request: Request, image: Annotated[UploadFile, File()], model: Annotated[str, Form()],
                        net: Annotated[str | None, Form()] = None,
                        hints: Annotated[UploadFile | None, File()] = None) -> Response:
        """The PNG `translate convert` writes for this file with this export and net (and, for a model trained
        with colour hints, this hint map: an image with alpha of the upload's size, as convert --hints reads)."""
        deadline = time.monotonic() + limits.timeout
        worker = workers.get(model)
        if worker is None:
            raise HTTPException(404, f"unknown model {model!r}; served: {', '.join(workers)}")
        if net is None and len(worker.models) > 1:
            raise HTTPException(400, f"model {model!r} has generators {', '.join(worker.models)}: choose one (net)")
        net = net or next(iter(worker.models))
        if net not in worker.models:
            raise HTTPException(404, f"model {model!r} has no generator {net!r}; it has {', '.join(worker.models)}")
        spec = worker.models[net]
        if hints is not None and not spec.hint_channels:
            raise HTTPException(422, f"model {model!r} ({net}) reads no colour hints (it was trained without "
                                     "model.colour_hints): send the image without a hint map")
        data = await read_bounded(image, limits.max_bytes, "upload")
        width, height = read_size(data)
        limits.check_size(width, height)
        hint_data = await read_bounded(hints, limits.max_bytes, "hint map") if hints is not None else None
        hint_size = read_hint_header(hint_data, limits) if hint_data is not None else None
        job = worker.lane_for(width, height).reserve(net, deadline)  # Busy before decoding takes any memory
        try:
            pixels, alpha = await run_in_threadpool(decode_upload, data, worker.input_channels(net), worker.scale)
            fitted = None if hint_data is None else await run_in_threadpool(
                decode_hints, hint_data, hint_size, data, (pixels.shape[1], pixels.shape[0]))
            job.start(pixels, fitted)
            del pixels, fitted  # the lane holds them until they are sent to the worker process, no longer
            output = await wait_for_output(job.future, request, deadline, limits.timeout)
        finally:
            job.release()  # frees the slot now if the job still waits; stops the work if nobody else wants it
        if output is None:  # the caller left (the page aborts a drawing's request when a newer one supersedes it)
            return Response(status_code=499)
        carry_alpha = 4 not in (worker.input_channels(net), spec.out_channels)  # as translate convert
        png = await run_in_threadpool(encode_png, output, alpha if carry_alpha else None)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    return app


async def read_bounded(file: UploadFile, max_bytes: int, what: str) -> bytes:
    """The file's bytes; 413 past `max_bytes`, found without reading more than one byte beyond."""
    data = await file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise HTTPException(413, f"{what} too large: the limit is {max_bytes / 2**20:.1f} MiB per file")
    return data


async def wait_for_output(future: Future, request: Request, deadline: float, timeout: float) -> np.ndarray | None:
    """The worker's output, or None when the caller closed the connection; 504 past the deadline."""
    waiting = asyncio.wrap_future(future)
    while not waiting.done():
        await asyncio.wait([waiting], timeout=max(0.0, min(POLL_S, deadline - time.monotonic())))
        if waiting.done():
            break
        gone = await request.is_disconnected()
        if gone or time.monotonic() >= deadline:
            waiting.add_done_callback(lambda f: f.cancelled() or f.exception())  # a late error is not "unretrieved"
            if gone:
                return None
            raise HTTPException(504, f"translation took longer than {timeout:g} s; try a smaller image or later")
    try:
        return waiting.result()
    except asyncio.CancelledError:
        raise HTTPException(503, "the server is shutting down") from None
    except WorkerError as error:
        raise HTTPException(500, f"translation failed: {error}") from error
