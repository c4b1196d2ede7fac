"""The ``mlflow-artifacts`` proxy (spec §2.7): upload, download, list, delete, streamed.

Paths are relative to ``--artifacts-destination``; every one goes through
:func:`~runyard.store.artifact.clean_artifact_path`, so ``..``, absolute and encoded traversal
attempts are refused before any file is touched.
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
import tempfile
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.protocol.codec import file_info_to_json
from runyard.server.context import ServerContext
from runyard.server.limits import capped_chunks, check_upload_size
from runyard.server.routing import client_gone, error_response, internal_error, json_response
from runyard.store.artifact import LocalArtifactRepository, clean_artifact_path

__all__ = ["PREFIX", "artifact_routes"]

PREFIX = "/api/2.0/mlflow-artifacts"
_NOT_SERVING = "Artifact proxying is disabled on this server (--no-serve-artifacts)."


def _split(path: str) -> tuple[str, str]:
    rel = clean_artifact_path(path)
    if not rel:
        raise InvalidParameterValue("An artifact path is required.")
    return posixpath.dirname(rel), posixpath.basename(rel)


class _FileResponse(FileResponse):
    """Starlette's file response in 1 MiB reads: each read is a hop to a worker thread, and at
    its default 64 KiB the hops, not the disk or the socket, bounded a large download (a 50 MB
    file took ~760 of them). Memory per download stays one chunk."""

    chunk_size = 1 << 20


def _file_response(repo: Any, name: str, missing: str) -> Response:
    """A file of ``repo`` as an attachment: sendfile for local files, streamed otherwise."""
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    headers = {"X-Content-Type-Options": "nosniff"}
    if isinstance(repo, LocalArtifactRepository):
        target = repo.local_path(name)
        if not target.is_file():
            raise ResourceDoesNotExist(missing)
        return _FileResponse(target, media_type=media, filename=name, headers=headers)
    headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return StreamingResponse(repo.open_chunks(name), media_type=media, headers=headers)


async def upload(ctx: ServerContext, request: Request) -> Response:
    """PUT artifacts/<path>: the raw body becomes the file (written to a temp file, renamed)."""
    parent, name = _split(request.path_params["path"])
    limit = ctx.settings.max_upload_size
    check_upload_size(request, limit)  # a declared size over the cap: refused unread
    repo = ctx.proxy_repo(parent)
    if isinstance(repo, LocalArtifactRepository):
        # Stream straight to disk in the event loop: local writes of 64 KiB chunks are cheap and
        # a thread hand-off per chunk would cost more than it saves.
        target = repo.writable_path(name)  # refuses a directory, or a path under a file
        # A short prefix: the temp name must fit wherever the (up to 255-byte) name fits.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name[:64]}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                async for chunk in capped_chunks(request, limit):
                    handle.write(chunk)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
    else:
        await _write_streamed(repo, name, request, limit)
    return Response(status_code=200)


async def _write_streamed(repo: Any, name: str, request: Request, limit: int) -> None:
    """Feed the request body to the blocking ``write_chunks`` (S3...) in a worker thread, one
    chunk at a time: the event loop stays free and the body is never held whole."""
    body = capped_chunks(request, limit)

    def chunks() -> Iterator[bytes]:
        while True:
            try:
                yield anyio.from_thread.run(body.__anext__)
            except StopAsyncIteration:
                return

    await anyio.to_thread.run_sync(repo.write_chunks, name, chunks())


async def download(ctx: ServerContext, request: Request) -> Response:
    """GET artifacts/<path>: the file's bytes, streamed (sendfile for local files)."""
    parent, name = _split(request.path_params["path"])
    missing = f"No such artifact: '{request.path_params['path']}'"
    return _file_response(ctx.proxy_repo(parent), name, missing)


async def get_run_artifact(ctx: ServerContext, request: Request) -> Response:
    """GET /get-artifact?run_id=&path= (the web UI's download link): one file of a run."""
    run_id = request.query_params.get("run_id") or request.query_params.get("run_uuid")
    path = clean_artifact_path(request.query_params.get("path"))
    if not run_id or not path:
        raise InvalidParameterValue("Both run_id and path are required.")
    root = ctx.tracking().get_run(run_id).info.artifact_uri
    parent, name = posixpath.dirname(path), posixpath.basename(path)
    repo = ctx.repo_for(f"{root.rstrip('/')}/{parent}" if parent else root)
    return _file_response(repo, name, f"No such artifact: '{path}' in run {run_id}")


async def list_dir(ctx: ServerContext, request: Request) -> Response:
    """GET artifacts?path=<dir>: direct children, as basenames (a file lists as ``{}``)."""
    rel = clean_artifact_path(request.query_params.get("path"))
    files = ctx.proxy_repo(rel).list_artifacts(None)
    out: dict[str, Any] = {}
    if files:
        out["files"] = [file_info_to_json(f) for f in files]
    return json_response(out)


async def delete(ctx: ServerContext, request: Request) -> Response:
    """DELETE artifacts/<path>: a file or a whole directory."""
    parent, name = _split(request.path_params["path"])
    ctx.proxy_repo(parent).delete_artifacts(name)
    return json_response({})


async def multipart(ctx: ServerContext, request: Request) -> Response:
    """mpu/*: the local destination has no multipart API, exactly as MLflow answers."""
    raise RunyardError(
        "Multipart upload is not supported for the current artifact repository",
        error_code="NOT_IMPLEMENTED",
    )


def _authorize(ctx: ServerContext, request: Request, proxy: bool) -> tuple[str, str] | None:
    """Auth on: a proxied path is checked against the experiment it lies under (its first
    segment); /get-artifact against the run's experiment. Returns what the audit names."""
    principal = request.state.principal
    if not proxy:
        run_id = request.query_params.get("run_id") or request.query_params.get("run_uuid")
        if run_id:
            ctx.auth.check_run(principal, run_id, "read")
        return None
    path = request.path_params.get("path") or request.query_params.get("path") or ""
    exp_id = ctx.auth.check_artifact_path(principal, request.method, path)
    return ("artifact", path) if exp_id is not None or path else None


def _route(
    path: str, handler: Any, methods: list[str], ctx: ServerContext, proxy: bool = True
) -> Route:
    async def run(request: Request) -> Response:
        if proxy and not ctx.settings.serve_artifacts:
            return Response(_NOT_SERVING, status_code=503, media_type="text/plain")
        resource = None
        try:
            if ctx.auth is not None:
                resource = _authorize(ctx, request, proxy)
            response: Response = await handler(ctx, request)
        except RunyardError as exc:
            response = error_response(exc)
        except ClientDisconnect:
            response = client_gone(request)
        except Exception as exc:  # noqa: BLE001 - answered in place, see internal_error
            response = internal_error(request, exc)
        if ctx.auth is not None and request.method not in ("GET", "HEAD"):
            ctx.auth.record(
                request, request.state.principal, "mlflow-artifacts", response.status_code,
                resource,
            )  # fmt: skip
        return response

    return Route(path, run, methods=methods)


def artifact_routes(ctx: ServerContext) -> list[Route]:
    """Routes of the artifact proxy."""
    base = PREFIX + "/artifacts"
    return [
        _route(base, list_dir, ["GET"], ctx),
        _route(base + "/{path:path}", upload, ["PUT"], ctx),
        _route(base + "/{path:path}", download, ["GET"], ctx),
        _route(base + "/{path:path}", delete, ["DELETE"], ctx),
        _route(PREFIX + "/mpu/{action}/{path:path}", multipart, ["POST"], ctx),
        _route("/get-artifact", get_run_artifact, ["GET"], ctx, proxy=False),
    ]
