"""The interface a deployment target implements: :class:`BaseDeploymentClient`.

A deployment plugin is a module that holds exactly one subclass of
:class:`BaseDeploymentClient` plus two module-level functions,
``run_local(name, model_uri, flavor=None, config=None)`` (serve the model in the foreground, for
testing) and ``target_help() -> str`` (what ``runyard deployments help -t <target>`` prints).
The method names and signatures are MLflow's (``mlflow.deployments.BaseDeploymentClient``), so a
plugin written for MLflow ports by changing its imports.

Subclasses raise :class:`~runyard.errors.RunyardError` (``MlflowException``) subclasses on
failure, e.g. :class:`~runyard.errors.ResourceAlreadyExists` for a taken deployment name.
"""

from __future__ import annotations

import abc
import json
from typing import TYPE_CHECKING, Any

from runyard.errors import InvalidParameterValue, RunyardError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["SCORING_PAYLOAD_KEYS", "BaseDeploymentClient", "PredictionsResponse"]

#: Keys that make a JSON object a complete scoring request (``/invocations`` body).
SCORING_PAYLOAD_KEYS = frozenset(
    {"dataframe_split", "dataframe_records", "instances", "inputs", "messages", "prompt", "input"}
)


def _unimplemented() -> RunyardError:
    return RunyardError(
        "Method is unimplemented in base client. Implementation should be "
        "provided by specific target plugins.",
        error_code="NOT_IMPLEMENTED",
    )


class PredictionsResponse(dict[str, Any]):
    """The body a scoring server answers ``/invocations`` with: ``{"predictions": ...}``."""

    def get_predictions(
        self, predictions_format: str = "dataframe", dtype: Any = None
    ) -> pd.DataFrame | np.ndarray[Any, Any]:
        """The predictions as a pandas DataFrame (``"dataframe"``) or numpy array (``"ndarray"``,
        cast to ``dtype`` when given)."""
        import numpy as np
        import pandas as pd

        predictions = self["predictions"]
        if predictions_format == "dataframe":
            if isinstance(predictions, str):
                return pd.DataFrame(data=[predictions])
            if isinstance(predictions, dict) and not any(
                isinstance(value, (list, tuple)) for value in predictions.values()
            ):
                return pd.DataFrame(data=predictions, index=[0])
            return pd.DataFrame(data=predictions)
        if predictions_format == "ndarray":
            return np.array(predictions, dtype)
        raise InvalidParameterValue(f"Unrecognized predictions format: '{predictions_format}'")

    def to_json(self, path: str | None = None) -> str | None:
        """The response as JSON text, or written to ``path`` (then None)."""
        if path is None:
            return json.dumps(dict(self))
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(dict(self), fh)
        return None

    @classmethod
    def from_json(cls, json_str: str | bytes) -> PredictionsResponse:
        """Parse a scoring server's response body; it must be an object with ``predictions``."""
        try:
            parsed = json.loads(json_str)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunyardError("Predictions response contents are not valid JSON") from exc
        if not isinstance(parsed, dict) or "predictions" not in parsed:
            raise RunyardError(
                "Invalid response. Predictions response contents must be a dictionary "
                f"containing a 'predictions' field. Instead, received: {parsed}"
            )
        return cls(parsed)


class BaseDeploymentClient(abc.ABC):
    """Deploy models to one kind of target and manage the deployments there.

    ``target_uri`` is what the user passed to ``get_deploy_client``: the target's name,
    optionally followed by ``:`` and a target-specific suffix (``local:/srv/deployments``,
    ``sagemaker:/eu-west-1``). The ``create``/``update`` methods block until the deployment can
    serve predictions. Endpoint methods are optional; the defaults raise NOT_IMPLEMENTED.
    """

    def __init__(self, target_uri: str) -> None:
        self.target_uri = target_uri

    @abc.abstractmethod
    def create_deployment(
        self,
        name: str,
        model_uri: str,
        flavor: str | None = None,
        config: dict[str, Any] | None = None,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        """Deploy ``model_uri`` as ``name``; returns a dict with at least ``name`` (and
        ``flavor``). A taken name raises ResourceAlreadyExists."""

    @abc.abstractmethod
    def update_deployment(
        self,
        name: str,
        model_uri: str | None = None,
        flavor: str | None = None,
        config: dict[str, Any] | None = None,
        endpoint: str | None = None,
    ) -> dict[str, Any] | None:
        """Serve a new model and/or configuration under ``name``; blocks until it serves."""

    @abc.abstractmethod
    def delete_deployment(
        self, name: str, config: dict[str, Any] | None = None, endpoint: str | None = None
    ) -> None:
        """Remove the deployment ``name``; deleting an unknown name is not an error."""

    @abc.abstractmethod
    def list_deployments(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Every deployment, each a dict with at least a ``name`` key."""

    @abc.abstractmethod
    def get_deployment(self, name: str, endpoint: str | None = None) -> dict[str, Any]:
        """The deployment as a dict with at least ``name``; unknown → ResourceDoesNotExist."""

    @abc.abstractmethod
    def predict(
        self,
        deployment_name: str | None = None,
        inputs: Any = None,
        endpoint: str | None = None,
    ) -> PredictionsResponse:
        """Score ``inputs`` (a DataFrame, dict, list or array) with the deployment."""

    def predict_stream(
        self,
        deployment_name: str | None = None,
        inputs: Any = None,
        endpoint: str | None = None,
    ) -> Any:
        """Streamed predictions, where the target supports them (default: NOT_IMPLEMENTED)."""
        raise _unimplemented()

    def explain(
        self, deployment_name: str | None = None, df: Any = None, endpoint: str | None = None
    ) -> Any:
        """Explanations of the deployment's predictions on ``df`` (default: not supported)."""
        raise RunyardError(
            "Computing model explanations is not yet supported for this deployment target",
            error_code="NOT_IMPLEMENTED",
        )

    def create_endpoint(self, name: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create an endpoint (a container for deployments) where the target has them."""
        raise _unimplemented()

    def update_endpoint(self, endpoint: str, config: dict[str, Any] | None = None) -> None:
        """Change an endpoint's target-specific configuration."""
        raise _unimplemented()

    def delete_endpoint(self, endpoint: str) -> None:
        """Delete an endpoint; deleting an unknown one is not an error."""
        raise _unimplemented()

    def list_endpoints(self) -> list[dict[str, Any]]:
        """Every endpoint, each a dict with at least a ``name`` key."""
        raise _unimplemented()

    def get_endpoint(self, endpoint: str) -> dict[str, Any]:
        """The endpoint as a dict with at least a ``name`` key."""
        raise _unimplemented()
