"""Model URIs to files: ``runs:/``, ``models:/`` (version, stage, latest, alias, logged model id),
artifact-store URIs and local paths (spec §7).

``resolve_model_uri`` turns any model URI into the artifact URI where the model's files are;
``download_model`` brings them to a local directory. Models already on the local disk are used in
place (no copy) unless a destination is asked for.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from runyard.errors import InvalidParameterValue, ResourceDoesNotExist

if TYPE_CHECKING:
    from runyard.tracking.client import Client

__all__ = [
    "ModelsUri",
    "download_model",
    "parse_models_uri",
    "registered_version",
    "resolve_model_uri",
    "resolve_registry_source",
]

_DIGITS = re.compile(r"^\d+$")


@dataclass(frozen=True)
class ModelsUri:
    """A parsed ``models:/`` URI: exactly one of version, stage, alias, latest or model_id."""

    name: str | None = None
    version: str | None = None
    stage: str | None = None
    alias: str | None = None
    latest: bool = False
    model_id: str | None = None


def parse_models_uri(uri: str) -> ModelsUri:
    """Split ``models:/name/1``, ``models:/name/Production``, ``models:/name/latest``,
    ``models:/name@champion`` and ``models:/m-<id>``."""
    parsed = urlparse(uri)
    if parsed.scheme != "models":
        raise InvalidParameterValue(f"Not a models:/ URI: '{uri}'")
    path = parsed.path.lstrip("/")  # a trailing "/" leaves an empty, invalid last segment
    if not path:
        raise InvalidParameterValue(
            f"Invalid model URI '{uri}': use models:/<name>/<version|stage|latest>, "
            "models:/<name>@<alias> or models:/<model_id>."
        )
    parts = path.split("/")
    if len(parts) == 1:
        name, at, alias = parts[0].rpartition("@")
        if at:
            if not name or not alias:
                raise InvalidParameterValue(
                    f"Invalid model URI '{uri}': expected models:/<name>@<alias>."
                )
            return ModelsUri(name=name, alias=alias)
        return ModelsUri(model_id=parts[0])
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise InvalidParameterValue(
            f"Invalid model URI '{uri}': expected models:/<name>/<version|stage|latest> "
            "(a model URI has at most two path segments)."
        )
    name, suffix = parts
    if _DIGITS.match(suffix):
        return ModelsUri(name=name, version=suffix)
    if suffix.lower() == "latest":
        return ModelsUri(name=name, latest=True)
    return ModelsUri(name=name, stage=suffix)


def _client(tracking_uri: str | None = None) -> Client:
    from runyard.tracking.client import Client

    return Client(tracking_uri)


def registered_version(client: Client, ref: ModelsUri, uri: str) -> tuple[str, str]:
    """(name, version) a registry reference (version, stage, latest or alias) points at now."""
    assert ref.name is not None
    if ref.version is not None:
        return ref.name, ref.version
    if ref.alias is not None:
        return ref.name, client.get_model_version_by_alias(ref.name, ref.alias).version
    stages = None if ref.latest else [str(ref.stage)]
    versions = client.get_latest_versions(ref.name, stages)
    if not versions:
        where = "any stage" if ref.latest else f"stage '{ref.stage}'"
        raise ResourceDoesNotExist(f"No versions of model '{ref.name}' in {where} ({uri}).")
    best = max(versions, key=lambda v: int(v.version))
    return ref.name, best.version


def _runs_model_location(client: Client, uri: str) -> str:
    rest = uri[len("runs:") :].lstrip("/")
    run_id, _, path = rest.partition("/")
    if not run_id:
        raise InvalidParameterValue(f"Invalid runs URI '{uri}': expected runs:/<run_id>/<path>.")
    run = client.get_run(run_id)
    root = run.info.artifact_uri.rstrip("/")
    path = path.strip("/")
    location = f"{root}/{path}" if path else root
    if not path or _has_mlmodel(client, location):
        return location
    # MLflow 3 keeps a run's models as logged models; runs:/<run>/<name> still names them.
    from runyard.tracking.logged_model_client import run_logged_model

    model = run_logged_model(client, run, path)
    return model.artifact_location if model is not None else location


def _has_mlmodel(client: Client, location: str) -> bool:
    from runyard.store.artifact import get_artifact_repository

    try:
        files = get_artifact_repository(location, client.tracking_uri).list_artifacts(None)
    except ResourceDoesNotExist:
        return False
    return any(posixpath.basename(f.path) == "MLmodel" for f in files)


def resolve_model_uri(model_uri: str, tracking_uri: str | None = None) -> str:
    """The artifact URI (or local path) holding the files of the model ``model_uri`` names.

    A registered version whose source is itself a ``runs:/`` or ``models:/`` URI (as
    ``client.create_model_version(name, "runs:/<run>/model", run_id)`` records it) is followed
    to the files.
    """
    location = model_uri
    for _ in range(5):
        resolved = _resolve_once(location, tracking_uri)
        if resolved == location or urlparse(resolved).scheme not in ("runs", "models"):
            return resolved
        location = resolved
    raise InvalidParameterValue(f"Model URI '{model_uri}' refers to itself in a cycle.")


def _resolve_once(model_uri: str, tracking_uri: str | None) -> str:
    scheme = urlparse(model_uri).scheme
    if scheme == "runs":
        return _runs_model_location(_client(tracking_uri), model_uri)
    if scheme == "models":
        client = _client(tracking_uri)
        ref = parse_models_uri(model_uri)
        if ref.model_id is not None:
            return client.get_logged_model(ref.model_id).artifact_location
        name, version = registered_version(client, ref, model_uri)
        return client.get_model_version_download_uri(name, version)
    return model_uri


def resolve_registry_source(client: Client, model_uri: str) -> tuple[str, str | None]:
    """What a new model version records for ``model_uri``: (source, run_id).

    Registry references are kept as their storage location; logged models as
    ``models:/<model_id>`` with their source run.
    """
    scheme = urlparse(model_uri).scheme
    if scheme == "models":
        ref = parse_models_uri(model_uri)
        if ref.model_id is not None:
            model = client.get_logged_model(ref.model_id)
            return model_uri, model.source_run_id
        name, version = registered_version(client, ref, model_uri)
        mv = client.get_model_version(name, version)
        return client.get_model_version_download_uri(name, version), mv.run_id
    if scheme == "runs":
        run_id, _, path = model_uri[len("runs:") :].lstrip("/").partition("/")
        location = _runs_model_location(client, model_uri)
        found = _logged_model_at(client, location, run_id)
        if found:
            return f"models:/{found}", run_id
        if not _has_mlmodel(client, location):
            # MLflow's refusal: registering nothing would leave a version without files.
            raise ResourceDoesNotExist(
                f"Unable to find a logged_model with artifact_path {path.strip('/')} "
                f"under run {run_id} (and no MLmodel at {model_uri})."
            )
        return model_uri, run_id
    return model_uri, None


def _logged_model_at(client: Client, location: str, run_id: str) -> str | None:
    marker = "/models/"
    if marker not in location:
        return None
    # the last "/models/": the artifact root itself may lie under a folder named "models"
    model_id = location.rsplit(marker, 1)[1].split("/", 1)[0]
    if not model_id.startswith("m-"):
        return None
    try:
        model = client.get_logged_model(model_id)
    except ResourceDoesNotExist:
        return None
    return model.model_id if model.source_run_id in (None, run_id) else None


def _local_path(uri: str) -> str | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return parsed.path
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a path, or a Windows drive letter
        return uri
    return None


def download_model(
    model_uri: str, dst_path: str | None = None, tracking_uri: str | None = None
) -> str:
    """A local directory holding the model's files (MLmodel and the rest).

    Local models are used where they are unless ``dst_path`` is given; remote ones are
    downloaded into ``dst_path`` (a new temporary directory by default).
    """
    location = resolve_model_uri(model_uri, tracking_uri)
    local = _local_path(location)
    if local is not None:
        local = os.path.abspath(os.path.expanduser(local))
        if not os.path.exists(local):
            raise ResourceDoesNotExist(f"No model at '{model_uri}': '{local}' does not exist.")
        if dst_path is None:
            return local
    from runyard.store.artifact import get_artifact_repository
    from runyard.tracking.uri import get_tracking_uri

    repo = get_artifact_repository(location, tracking_uri or get_tracking_uri())
    return repo.download_artifacts("", dst_path)
