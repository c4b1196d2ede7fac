"""Which artifact locations a client may give a new experiment.

Some artifact schemes make whoever reads the artifacts connect to the host named in the URI
(``ftp://``, ``sftp://``, ``hdfs://``, ``http(s)://``, ``mlflow-artifacts://host`` ...). A server
that later lists or serves such a location would connect wherever a client told it to (server-side
request forgery), so, as MLflow does, the server refuses those locations unless they point at the
host of its own ``--default-artifact-root``, or the operator allows the scheme with
``RUNYARD_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES`` (``MLFLOW_...``).
"""

from __future__ import annotations

from urllib.parse import urlparse

from runyard.config import ENV
from runyard.errors import InvalidParameterValue
from runyard.server.settings import ServerSettings

__all__ = ["HOST_ADDRESSED_SCHEMES", "check_artifact_location"]

HOST_ADDRESSED_SCHEMES = frozenset(
    {"ftp", "sftp", "hdfs", "viewfs", "http", "https", "mlflow-artifacts", "r2", "b2", "abfss"}
)


def check_artifact_location(location: str | None, settings: ServerSettings) -> None:
    """Raise INVALID_PARAMETER_VALUE for a location naming a host the server must not reach."""
    if not location:
        return
    parsed = urlparse(location)
    scheme = parsed.scheme.lower()
    if scheme not in HOST_ADDRESSED_SCHEMES or not parsed.netloc:
        return  # local paths, s3://bucket, mlflow-artifacts:/path (proxied by us)
    allowed = {
        s.strip().lower()
        for s in (ENV.ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES.get() or "").split(",")
    }
    if scheme in allowed:
        return
    root = urlparse(settings.default_artifact_root or "")
    if root.scheme.lower() == scheme and root.netloc.lower() == parsed.netloc.lower():
        return
    raise InvalidParameterValue(
        f"Artifact location '{location}' makes the server connect to host "
        f"'{parsed.hostname}' over {scheme}, which is not allowed. An operator can allow the "
        "scheme with MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES."
    )
