"""The endpoint table and how a request reaches a handler.

Every JSON endpoint is declared once as an :class:`Endpoint` (path, methods, fields, handler).
:func:`json_routes` mounts it under MLflow's prefixes (``/api/2.0/mlflow``, ``/ajax-api/2.0/mlflow``
and the legacy ``/api/2.0/preview/mlflow``; ``3.0`` for newer endpoints), decodes parameters with
MLflow's rules (:mod:`runyard.protocol.requests`) and encodes the handler's dict as JSON. The same
table drives ``/openapi.json``, and later the permission table of the auth layer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.protocol.requests import Field, parse_params
from runyard.server.limits import read_body

if TYPE_CHECKING:
    from runyard.server.context import ServerContext

__all__ = [
    "Endpoint",
    "Handler",
    "JSONBytes",
    "internal_error",
    "json_response",
    "json_routes",
    "page_response",
    "check_max_results",
    "client_gone",
]

log = logging.getLogger(__name__)

Handler = Callable[["ServerContext", dict[str, Any]], Awaitable[Any]]
#: Request bodies larger than this are refused (log-batch has its own 1 MB limit).
MAX_BODY = 16 * 1024 * 1024
_JSON_TYPES = {"application/json"}
#: ``{name}`` in an endpoint path: one path segment, handed to the handler as a parameter.
_PATH_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Endpoint:
    """One MLflow REST endpoint."""

    path: str
    methods: tuple[str, ...]
    handler: Handler
    fields: tuple[Field, ...] = ()
    summary: str = ""
    major: int = 2
    max_body: int = MAX_BODY
    tags: tuple[str, ...] = field(default=("tracking",))
    #: ``mlflow`` for MLflow's API, ``runyard`` for our additions (``/api/2.0/runyard/...``).
    namespace: str = "mlflow"
    #: Handlers for particular methods of a path whose methods do different things (MLflow's
    #: ``registered-models/alias``: POST sets, DELETE removes, GET reads); others use ``handler``.
    method_handlers: tuple[tuple[str, Handler], ...] = ()
    #: Served from ``--read-replica-backend-store-uri`` when one is set: searches and histories
    #: only (reads by id stay on the primary, so a client reads back what it just wrote).
    reads_replica: bool = False


class JSONBytes(Response):
    """A JSON response from already-encoded bytes."""

    media_type = "application/json"


def json_response(doc: Any, status: int = 200) -> Response:
    """``doc`` encoded with orjson (NaN must already be ``"NaN"``, see the codec)."""
    return JSONBytes(orjson.dumps(doc), status_code=status)


def page_response(name: str, items: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    """A search page as MLflow sends it: empty lists and the last page's token omitted."""
    out: dict[str, Any] = {}
    if items:
        out[name] = items
    if token:
        out["next_page_token"] = token
    return out


def check_max_results(value: int | None, limit: int) -> int:
    """``max_results`` must be a positive integer no larger than ``limit``."""
    if value is None or not 0 < value <= limit:
        raise InvalidParameterValue(
            f"Invalid value for max_results. It must be a positive integer at most {limit}, "
            f"but got {value}"
        )
    return value


def error_response(error: RunyardError) -> Response:
    """MLflow's error body with the status of its code."""
    return json_response(error.serialize_as_json(), error.get_http_status_code())


async def _decode(request: Request, endpoint: Endpoint) -> dict[str, Any]:
    if request.method == "GET" and request.url.query:
        params = request.query_params
        data: dict[str, Any] = {key: params.getlist(key) for key in params}
        return parse_params(endpoint.fields, data, query=True)
    if request.method in ("POST", "PUT"):
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in _JSON_TYPES:
            raise InvalidParameterValue(
                "Bad Request. Content-Type must be one of ['application/json']."
            )
    body = await read_body(request, endpoint.max_body, endpoint.path)
    if not body.strip():
        return parse_params(endpoint.fields, {})
    try:
        doc = orjson.loads(body)
        if isinstance(doc, str):  # legacy clients double-encode the body
            doc = orjson.loads(doc)
    except orjson.JSONDecodeError as exc:
        raise InvalidParameterValue(f"Malformed JSON in request body: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidParameterValue("The request body must be a JSON object.")
    return parse_params(endpoint.fields, doc)


def internal_error(request: Request, exc: Exception) -> Response:
    """A bug, never a user mistake: log the traceback, answer MLflow's error shape without it.

    Answered here rather than by Starlette's error middleware, which closes the keep-alive
    connection after a 500 and so breaks the client's next request on it.
    """
    log.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {"error_code": "INTERNAL_ERROR", "message": f"Internal error: {type(exc).__name__}"}
    return json_response(body, status=500)


def client_gone(request: Request) -> Response:
    """The client disconnected (or stalled, see :mod:`runyard.server.limits`) before its body
    was read: nothing to log, and nobody to read the answer."""
    log.debug("Client left during %s %s", request.method, request.url.path)
    return Response(status_code=400)


def _asgi(endpoint: Endpoint, context: ServerContext) -> Callable[[Request], Awaitable[Response]]:
    handlers = dict(endpoint.method_handlers)
    path_names = _PATH_PARAM.findall(endpoint.path)
    if endpoint.reads_replica:
        context = context.for_reads()

    async def run(request: Request) -> Response:
        try:
            params = await _decode(request, endpoint)
            for name in path_names:  # the path wins over a body field of the same name
                params[name] = request.path_params[name]
            result = await handlers.get(request.method, endpoint.handler)(context, params)
        except RunyardError as exc:
            return error_response(exc)
        except ClientDisconnect:
            return client_gone(request)
        except Exception as exc:  # noqa: BLE001 - the one place unexpected errors are answered
            return internal_error(request, exc)
        if isinstance(result, Response):
            return result
        return json_response(result)

    if context.auth is not None:
        return _guarded(endpoint, context, handlers, path_names)

    run.__name__ = endpoint.handler.__name__
    return run


def _guarded(
    endpoint: Endpoint,
    context: ServerContext,
    handlers: dict[str, Handler],
    path_names: list[str],
) -> Callable[[Request], Awaitable[Response]]:
    """``run`` with auth on: the endpoint's rule is applied after decoding (ids in bodies are
    seen) and before the handler; every request that changes something is audited."""
    auth = context.auth
    name = f"{endpoint.namespace}{endpoint.path}"
    rules = auth.rules_of(endpoint)
    # Plain reads (not searches, whose rule shapes their parameters, nor rules with an
    # after-effect) are checked, then go straight to the handler; an admin's skip the check as
    # well (admins pass every check, and reads are not audited).
    plain = {
        method: not write and not rule.after and rule.kind not in ("narrow", "filter")
        for method, (rule, write) in rules.items()
    }

    async def run(request: Request) -> Response:
        principal = request.scope["state"]["principal"]
        method = request.method
        read = plain[method]
        direct = read and principal is not None and principal.is_admin
        access = None if direct else auth.prepare(principal, rules[method])
        error_code = None
        try:
            params = await _decode(request, endpoint)
            for key in path_names:
                params[key] = request.path_params[key]
            params["_principal"] = principal
            handler = handlers.get(method, endpoint.handler)
            if access is not None:
                auth.check(access, params)
            if read or access is None:
                result = await handler(context, params)
            else:
                result = await access.call(handler, context, params)
            response = result if isinstance(result, Response) else json_response(result)
        except RunyardError as exc:
            error_code = exc.error_code
            response = error_response(exc)
        except ClientDisconnect:
            error_code = "CANCELLED"
            response = client_gone(request)
        except Exception as exc:  # noqa: BLE001 - the one place unexpected errors are answered
            error_code = "INTERNAL_ERROR"
            response = internal_error(request, exc)
        if access is not None and access.write:
            auth.record(request, principal, name, response.status_code, access.resource, error_code)
        return response

    run.__name__ = endpoint.handler.__name__
    return run


def api_prefixes(major: int, namespace: str = "mlflow") -> list[str]:
    """Where MLflow mounts an endpoint of this API version (runyard's own under its namespace)."""
    prefixes = [f"/api/{major}.0/{namespace}", f"/ajax-api/{major}.0/{namespace}"]
    if major == 2 and namespace == "mlflow":
        # Gone from MLflow 3, still in the cheat sheet users work from (curl examples).
        prefixes.append("/api/2.0/preview/mlflow")
    return prefixes


def _path_pattern(path: str) -> re.Pattern[str]:
    """``/logged-models/{model_id}/tags`` → a pattern capturing ``model_id`` (one segment)."""
    parts = _PATH_PARAM.split(path)
    # split() alternates literal text and parameter names.
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
    )
    return re.compile(regex)


def _match_template(templates: Any, request: Request, path: str) -> Any:
    """The (endpoint, app) of the first path template matching ``path``, with its values put
    in ``request.path_params``; None when none matches."""
    for pattern, endpoint, app in templates:
        match = pattern.fullmatch(path)
        if match is not None:
            request.scope["path_params"] = {**request.path_params, **match.groupdict()}
            return endpoint, app
    return None


def json_routes(endpoints: Sequence[Endpoint], context: ServerContext) -> list[Route]:
    """One route per API prefix, dispatching on the rest of the path with a dict lookup.

    (A Starlette route per endpoint and prefix means ~60 regex matches per request.) Paths with
    parameters (``/logged-models/{model_id}``) are tried in order, only when no fixed path
    matches.
    """
    routes = []
    for major, namespace in sorted({(e.major, e.namespace) for e in endpoints}):
        group = [e for e in endpoints if e.major == major and e.namespace == namespace]
        table = {e.path: (e, _asgi(e, context)) for e in group if "{" not in e.path}
        templates = [(_path_pattern(e.path), e, _asgi(e, context)) for e in group if "{" in e.path]
        methods = sorted({m for e in group for m in e.methods})

        async def dispatch(
            request: Request, table: Any = table, templates: Any = templates
        ) -> Response:
            path = "/" + request.path_params["endpoint"]
            found = table.get(path)
            if found is None and templates:
                found = _match_template(templates, request, path)
            if found is None:
                return Response("Not Found", status_code=404, media_type="text/plain")
            endpoint, app = found
            if request.method not in endpoint.methods:
                return Response("Method Not Allowed", status_code=405, media_type="text/plain")
            response: Response = await app(request)
            return response

        for prefix in api_prefixes(major, namespace):
            routes.append(Route(prefix + "/{endpoint:path}", dispatch, methods=methods))
    return routes
