"""Previews of a run's artifact files: ``/runs/<run_id>/artifact-preview?path=<p>``.

The answer is an HTML fragment the run page's artifact browser puts into its preview pane. At
most the first megabyte of a file is read (streamed through ``open_chunks``, never the whole
file); the fragment says so when the file is longer. Text is shown as text, JSON pretty-printed,
CSV/TSV as a table, images through ``<img>`` pointing at the download URL (an SVG is never
inlined), an ``MLmodel`` file (or a model directory) as its flavors and signature. Everything a
user logged is escaped by the template.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import posixpath
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import yaml
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from runyard.entities import FileInfo
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.server.context import ServerContext
from runyard.server.ui import access
from runyard.server.ui.render import prefix_of, render
from runyard.store.artifact import ArtifactRepository, clean_artifact_path

__all__ = [
    "CSV_MAX_ROWS",
    "PREVIEW_LIMIT",
    "format_size",
    "preview_endpoint",
    "preview_kind",
    "read_head",
]

log = logging.getLogger(__name__)

#: Bytes of a file a preview reads at most.
PREVIEW_LIMIT = 1024 * 1024
#: Data rows of a CSV/TSV file shown in its table.
CSV_MAX_ROWS = 500

_TEXT = frozenset(
    "txt text log md markdown rst py pyi sh bash zsh r sql js ts css html htm xml ini cfg "
    "conf toml properties env out err java scala c h cc cpp hpp go rs rb pl jsonl ndjson "
    "gitignore dockerfile".split()
)
_JSON = frozenset({"json", "geojson"})
_YAML = frozenset({"yaml", "yml"})
_TABLES = {"csv": ",", "tsv": "\t"}
_IMAGES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp"})
MLMODEL = "MLmodel"


def format_size(size: int | None) -> str:
    """``532 B``, ``12.4 KB``, ``3.1 MB`` ("" when unknown)."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover - the loop always returns


def preview_kind(path: str) -> str:
    """What preview a file gets from its name: ``text``, ``json``, ``yaml``, ``table``,
    ``image``, ``mlmodel``, ``sniff`` (no extension: text if it looks like text) or ``none``."""
    name = posixpath.basename(path)
    if name == MLMODEL:
        return "mlmodel"
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return "sniff"
    ext = ext.lower()
    if ext in _TEXT:
        return "text"
    if ext in _JSON:
        return "json"
    if ext in _YAML:
        return "yaml"
    if ext in _TABLES:
        return "table"
    if ext in _IMAGES:
        return "image"
    return "none"


def read_head(
    repo: ArtifactRepository, path: str, limit: int = PREVIEW_LIMIT
) -> tuple[bytes, bool]:
    """The first ``limit`` bytes of a file and whether the file is longer, streamed."""
    chunks: Iterator[bytes] = repo.open_chunks(path)
    buffer = bytearray()
    try:
        for chunk in chunks:
            buffer += chunk
            if len(buffer) > limit:
                break
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            close()  # releases the file handle or HTTP response of a generator
    return bytes(buffer[:limit]), len(buffer) > limit


def _looks_like_text(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        return exc.start >= len(sample) - 3
    return True


@dataclass
class Preview:
    """What ``run/preview.html`` renders."""

    kind: str
    path: str
    size: int | None = None
    truncated: bool = False
    text: str = ""
    note: str = ""
    rows: list[list[str]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    more_rows: bool = False
    model: dict[str, Any] | None = None
    children: list[FileInfo] = field(default_factory=list)
    #: The directory selected when this previews a model directory's MLmodel file.
    directory: str = ""

    @property
    def name(self) -> str:
        """The file's base name."""
        return posixpath.basename(self.path)


def _table(text: str, delimiter: str, truncated: bool) -> tuple[list[str], list[list[str]], bool]:
    if truncated and "\n" in text:
        text = text[: text.rindex("\n")]  # the last line may be cut in the middle
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header: list[str] = []
    rows: list[list[str]] = []
    try:
        header = next(reader, [])
        for row in reader:
            if len(rows) == CSV_MAX_ROWS:
                return header, rows, True
            rows.append(row)
    except csv.Error as exc:
        raise ValueError(str(exc)) from exc
    return header, rows, truncated


def _file_preview(repo: ArtifactRepository, info: FileInfo) -> Preview:
    kind = preview_kind(info.path)
    preview = Preview(kind=kind, path=info.path, size=info.file_size)
    if kind in ("image", "none"):
        return preview
    data, preview.truncated = read_head(repo, info.path)
    if kind == "sniff":
        preview.kind = kind = "text" if _looks_like_text(data) else "none"
        if kind == "none":
            return preview
    text = data.decode("utf-8", errors="replace")
    preview.text = text
    if kind == "json" and not preview.truncated:
        try:
            preview.text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            preview.note = "This file is not valid JSON; it is shown as text."
    elif kind == "table":
        delimiter = _TABLES[posixpath.splitext(info.path)[1].lower().lstrip(".")]
        try:
            preview.header, preview.rows, preview.more_rows = _table(
                text, delimiter, preview.truncated
            )
        except ValueError as exc:
            preview.kind = "text"
            preview.note = f"This file could not be read as a table ({exc}); it is shown as text."
    elif kind == "mlmodel":
        preview.model = mlmodel_summary(text)
    return preview


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _spec_rows(schema: Any) -> list[dict[str, str]]:
    """Rows (name, type, required, shape) of a Schema's columns or tensors."""
    rows = []
    for spec in schema.inputs:
        doc = spec.to_dict()
        tensor = doc.get("tensor-spec")
        if tensor is not None:
            kind = f"tensor of {tensor.get('dtype')}"
            shape = "(" + ", ".join(str(d) for d in tensor.get("shape", [])) + ")"
        else:
            details = {k: v for k, v in doc.items() if k not in ("name", "required")}
            plain = details.get("type") if len(details) == 1 else None
            kind = str(plain) if plain is not None else json.dumps(details, sort_keys=True)
            shape = ""
        rows.append(
            {
                "name": str(doc.get("name", "")),
                "type": kind,
                "required": "yes" if doc.get("required", True) else "no",
                "shape": shape,
            }
        )
    return rows


def _param_rows(params: Any) -> list[dict[str, str]]:
    rows = []
    for spec in params.params:
        doc = spec.to_dict()
        details = {k: v for k, v in doc.items() if k not in ("name", "default", "shape")}
        plain = details.get("type") if len(details) == 1 else None
        shape = doc.get("shape")
        rows.append(
            {
                "name": str(doc.get("name", "")),
                "type": str(plain) if plain is not None else json.dumps(details, sort_keys=True),
                "default": json.dumps(doc.get("default")),
                "shape": "" if shape is None else "(" + ", ".join(map(str, shape)) + ")",
            }
        )
    return rows


def mlmodel_summary(text: str) -> dict[str, Any]:
    """What the MLmodel preview shows: flavors, identity, signature tables, or ``error``."""
    # runyard.models pulls in pandas; only an MLmodel preview needs it.
    from runyard.models.model import Model

    try:
        doc = yaml.safe_load(text)
        if not isinstance(doc, dict):
            raise ValueError("expected a YAML mapping")
        model = Model.from_dict(doc)
    except (yaml.YAMLError, RunyardError, KeyError, TypeError, ValueError) as exc:
        message = exc.message if isinstance(exc, RunyardError) else str(exc)
        return {"error": f"This MLmodel file could not be read: {message}"}
    flavors = []
    for name, conf in sorted((model.flavors or {}).items()):
        details = conf.items() if isinstance(conf, dict) else []
        flavors.append((name, [(k, str(v)) for k, v in sorted(details) if _scalar(v)]))
    about = [
        ("Model UUID", model.model_uuid),
        ("Created (UTC)", model.utc_time_created),
        ("Run", model.run_id),
        ("Artifact path", model.artifact_path),
        ("Logged model", model.model_id),
        ("MLflow version", model.mlflow_version),
        ("Size", format_size(model.model_size_bytes) if model.model_size_bytes else None),
    ]
    signature = model.signature
    return {
        "flavors": flavors,
        "about": [(label, str(value)) for label, value in about if value],
        "inputs": _spec_rows(signature.inputs) if signature and signature.inputs else None,
        "outputs": _spec_rows(signature.outputs) if signature and signature.outputs else None,
        "params": _param_rows(signature.params) if signature and signature.params else None,
        "has_signature": signature is not None,
    }


def build_preview(repo: ArtifactRepository, path: str, run_id: str) -> Preview:
    """The preview of ``path`` (a file, a model directory or another directory) of a run."""
    parent = posixpath.dirname(path)
    entry = next((f for f in repo.list_artifacts(parent or None) if f.path == path), None)
    if entry is None:
        raise ResourceDoesNotExist(f"No artifact at '{path}' in run {run_id}.")
    if not entry.is_dir:
        return _file_preview(repo, entry)
    children = repo.list_artifacts(path)
    mlmodel = next((f for f in children if posixpath.basename(f.path) == MLMODEL), None)
    if mlmodel is not None and not mlmodel.is_dir:
        preview = _file_preview(repo, mlmodel)
        preview.kind = "model-dir" if preview.kind == "mlmodel" else preview.kind
        preview.directory = path
    else:
        preview = Preview(kind="dir", path=path)
    preview.children = children
    return preview


def _fragment_error(request: Request, status: int, message: str) -> Response:
    return render(request, "run/preview_error.html", status=status, message=message)


def _preview(ctx: ServerContext, request: Request) -> Response:
    run_id = request.path_params["run_id"]
    raw = request.query_params.get("path", "")
    path = clean_artifact_path(raw)
    if not path:
        raise InvalidParameterValue("Choose a file to preview: the 'path' parameter is required.")
    try:
        run = ctx.tracking().get_run(run_id)
    except ResourceDoesNotExist:
        raise ResourceDoesNotExist(f"Run '{run_id}' does not exist.") from None
    access.require_runs(ctx, request, [run])
    repo = ctx.repo_for(run.info.artifact_uri)
    preview = build_preview(repo, path, run_id)
    response = render(
        request,
        "run/preview.html",
        preview=preview,
        run_id=run_id,
        # url() cannot take a ``path`` query parameter (its first argument is named so).
        download=prefix_of(request)
        + "/get-artifact?"
        + urlencode({"run_id": run_id, "path": preview.path}),
        size=format_size(preview.size),
        limit=format_size(PREVIEW_LIMIT),
        max_rows=CSV_MAX_ROWS,
        format_size=format_size,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def preview_endpoint(ctx: ServerContext) -> Callable[[Request], Awaitable[Response]]:
    """The fragment endpoint: reads in a worker thread; errors become a message fragment
    (404 for a missing run or path, 400 for a bad path) the browser shows in the pane."""

    async def endpoint(request: Request) -> Response:
        try:
            return await run_in_threadpool(_preview, ctx, request)
        except RunyardError as exc:
            status = exc.get_http_status_code()
            if status >= 500:
                log.exception("Artifact preview %s failed", request.url)
            return _fragment_error(request, status, exc.message)
        except Exception:
            log.exception("Artifact preview %s failed", request.url)
            message = "The server failed to preview this file; its log has the details."
            return _fragment_error(request, 500, message)

    return endpoint
