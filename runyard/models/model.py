"""``Model``: the MLmodel file of a model directory, and ``ModelInfo``: what ``log_model`` returns.

The YAML is MLflow's (``mlflow.models.Model.to_dict``): keys sorted, the signature's schemas as
JSON strings, ``artifact_path``/``run_id`` omitted when None, ``model_id`` and ``prompts`` kept
even when null, unknown keys preserved. runyard adds ``runyard_version`` next to
``mlflow_version`` (which is the MLflow release runyard is compatible with).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.models import examples
from runyard.models.signature import ModelSignature
from runyard.types.schema import ParamSchema, Schema
from runyard.version import MLFLOW_COMPATIBLE_VERSION, __version__

__all__ = ["MLMODEL_FILE_NAME", "Model", "ModelInfo", "set_signature"]

MLMODEL_FILE_NAME = "MLmodel"


def _utc_now() -> str:
    # MLflow writes naive UTC: `YYYY-MM-DD HH:MM:SS.ffffff`.
    return str(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))


class Model:
    """An MLflow model's metadata: flavors, signature, example info and provenance."""

    def __init__(
        self,
        artifact_path: str | None = None,
        run_id: str | None = None,
        utc_time_created: str | dt.datetime | None = None,
        flavors: dict[str, Any] | None = None,
        signature: ModelSignature | None = None,
        saved_input_example_info: dict[str, Any] | None = None,
        model_uuid: str | Callable[[], str] | None = lambda: uuid.uuid4().hex,
        mlflow_version: str | None = MLFLOW_COMPATIBLE_VERSION,
        metadata: dict[str, Any] | None = None,
        model_size_bytes: int | None = None,
        model_id: str | None = None,
        runyard_version: str | None = __version__,
        **kwargs: Any,
    ) -> None:
        self.run_id = run_id
        self.artifact_path = artifact_path
        self.utc_time_created = str(utc_time_created or _utc_now())
        self.flavors: dict[str, Any] = flavors if flavors is not None else {}
        self._signature: ModelSignature | None = None
        self.signature = signature
        self.saved_input_example_info = saved_input_example_info
        self.model_uuid = model_uuid() if callable(model_uuid) else model_uuid
        self.mlflow_version = mlflow_version
        self.runyard_version = runyard_version
        self.metadata = metadata
        self.prompts: Any = kwargs.pop("prompts", None)
        self.model_size_bytes = model_size_bytes
        self.model_id = model_id
        # Optional MLflow sections that are written only when set.
        self._optional: dict[str, Any] = {
            key: kwargs.pop(key)
            for key in ("resources", "env_vars", "auth_policy")
            if key in kwargs
        }
        # Keys this version does not know are kept and written back unchanged.
        self.__dict__.update(kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and self.to_dict() == other.to_dict()

    def __getattr__(self, name: str) -> Any:
        optional = self.__dict__.get("_optional", {})
        if name in ("resources", "env_vars", "auth_policy"):
            return optional.get(name)
        raise AttributeError(f"'Model' object has no attribute '{name}'")

    @property
    def signature(self) -> ModelSignature | None:
        """The model's signature, if it was saved with one."""
        return self._signature

    @signature.setter
    def signature(self, value: ModelSignature | None) -> None:
        # `signature=False` means "do not infer one" in save_model; it never replaces a value.
        if value is not False:  # type: ignore[comparison-overlap]
            self._signature = value

    @property
    def saved_input_example_info(self) -> dict[str, Any] | None:
        """Where and how the input example is stored (``artifact_path``, ``type``, ...)."""
        return self._saved_input_example_info

    @saved_input_example_info.setter
    def saved_input_example_info(self, value: dict[str, Any] | None) -> None:
        self._saved_input_example_info = value

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The user's free-form metadata dict."""
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any] | None) -> None:
        self._metadata = value

    @property
    def model_size_bytes(self) -> int | None:
        """Total size of the model's files when it was saved."""
        return self._model_size_bytes

    @model_size_bytes.setter
    def model_size_bytes(self, value: int | None) -> None:
        self._model_size_bytes = value

    def get_input_schema(self) -> Schema | None:
        """The input schema, if the model has a signature."""
        return self.signature.inputs if self.signature is not None else None

    def get_output_schema(self) -> Schema | None:
        """The output schema, if the model has a signature."""
        return self.signature.outputs if self.signature is not None else None

    def get_params_schema(self) -> ParamSchema | None:
        """The parameter schema, if the model has a signature with params."""
        return self.signature.params if self.signature is not None else None

    def _is_signature_from_type_hint(self) -> bool:
        return bool(self.signature is not None and self.signature._is_signature_from_type_hint)

    def _is_type_hint_from_example(self) -> bool:
        return bool(self.signature is not None and self.signature._is_type_hint_from_example)

    def add_flavor(self, name: str, **params: Any) -> Model:
        """Add (or replace) a flavor section; returns the model for chaining."""
        self.flavors[name] = params
        return self

    def load_input_example(self, path: str | os.PathLike[str] | None = None) -> Any:
        """The saved input example as its original kind (DataFrame, ndarray, dict, ...), or None.

        ``path`` is the model directory; raises FileNotFoundError if the metadata names an
        example file that is missing.
        """
        if path is None:
            raise InvalidParameterValue("load_input_example needs the model directory's path.")
        return examples.read_example(self, str(path))

    def load_input_example_params(self, path: str | os.PathLike[str]) -> dict[str, Any] | None:
        """The params saved with the input example, or None."""
        return examples.read_example_params(self, str(path))

    def get_serving_input(self, path: str | os.PathLike[str]) -> str | None:
        """The serving payload saved with the model (``serving_input_example.json``), or None."""
        return examples.read_serving_input(self, str(path))

    def get_model_info(self, logged_model: Any = None) -> ModelInfo:
        """A ModelInfo describing this model (``logged_model`` adds name/params/tags/metrics)."""
        return ModelInfo(
            artifact_path=self.artifact_path,
            flavors=self.flavors,
            model_uri=(
                f"models:/{self.model_id}"
                if self.model_id
                else f"runs:/{self.run_id}/{self.artifact_path}"
            ),
            model_uuid=self.model_uuid,
            run_id=self.run_id,
            saved_input_example_info=self.saved_input_example_info,
            signature=self.signature,
            utc_time_created=self.utc_time_created,
            mlflow_version=self.mlflow_version,
            metadata=self.metadata,
            env_vars=self.env_vars,
            prompts=self.prompts,
            logged_model=logged_model,
            model_id=self.model_id,
        )

    def to_dict(self) -> dict[str, Any]:
        """The dict written to the MLmodel file."""
        doc = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        if self.signature is not None:
            doc["signature"] = self.signature.to_dict()
            doc["is_signature_from_type_hint"] = self.signature._is_signature_from_type_hint
            doc["type_hint_from_example"] = self.signature._is_type_hint_from_example
        for key in ("saved_input_example_info", "metadata", "model_size_bytes"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        doc.update({k: v for k, v in self._optional.items() if v is not None})
        for key in ("mlflow_version", "runyard_version", "artifact_path", "run_id"):
            if doc.get(key) is None:
                doc.pop(key, None)
        return doc

    def to_yaml(self, stream: Any = None) -> str:
        """The MLmodel YAML text (also written to ``stream`` when given)."""
        text: str = yaml.safe_dump(self.to_dict(), default_flow_style=False)
        if stream is not None:
            stream.write(text)
        return text

    def __str__(self) -> str:
        return self.to_yaml()

    def to_json(self) -> str:
        """The MLmodel dict as JSON."""
        return json.dumps(self.to_dict())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the MLmodel YAML file at ``path``."""
        with open(path, "w") as out:
            self.to_yaml(out)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """Read a model directory's MLmodel file (``path`` is the directory or the file)."""
        text = str(path)
        if text.startswith("file://"):
            text = text[len("file://") :]
        elif text.startswith("file:"):
            text = text[len("file:") :]
        local = Path(text)
        if not local.exists():
            raise ResourceDoesNotExist(
                f'Could not find an "{MLMODEL_FILE_NAME}" configuration file at "{text}"'
            )
        mlmodel = local / MLMODEL_FILE_NAME if local.is_dir() else local
        if not mlmodel.is_file():
            raise ResourceDoesNotExist(
                f"'{local}' is not a model directory: no {MLMODEL_FILE_NAME} file"
            )
        try:
            doc = yaml.safe_load(mlmodel.read_text())
        except yaml.YAMLError as exc:
            raise InvalidParameterValue(f"'{mlmodel}' is not valid YAML: {exc}") from exc
        if not isinstance(doc, dict):
            raise InvalidParameterValue(
                f"'{mlmodel}' is not an MLmodel file: expected a YAML mapping, "
                f"got {type(doc).__name__}"
            )
        try:
            return cls.from_dict(doc)
        except (RunyardError, KeyError, TypeError, ValueError) as exc:
            raise InvalidParameterValue(f"'{mlmodel}' is not a valid MLmodel file: {exc}") from exc

    @classmethod
    def from_dict(cls, model_dict: dict[str, Any]) -> Model:
        """Build a Model from the MLmodel dict (unknown keys are kept)."""
        doc = dict(model_dict)
        from_hint = doc.pop("is_signature_from_type_hint", False)
        from_example = doc.pop("type_hint_from_example", False)
        if isinstance(doc.get("signature"), dict):
            signature = ModelSignature.from_dict(doc["signature"])
            signature._is_signature_from_type_hint = bool(from_hint)
            signature._is_type_hint_from_example = bool(from_example)
            doc["signature"] = signature
        doc.setdefault("model_uuid", None)
        doc.setdefault("mlflow_version", None)
        doc.setdefault("runyard_version", None)
        return cls(**doc)


class ModelInfo:
    """What ``log_model`` returns: where the model is and what it is (MLflow's attribute names)."""

    def __init__(
        self,
        artifact_path: str | None,
        flavors: dict[str, Any],
        model_uri: str,
        model_uuid: str | None,
        run_id: str | None,
        saved_input_example_info: dict[str, Any] | None,
        signature: ModelSignature | None,
        utc_time_created: str,
        mlflow_version: str | None,
        metadata: dict[str, Any] | None = None,
        registered_model_version: int | None = None,
        env_vars: list[str] | None = None,
        prompts: list[str] | None = None,
        logged_model: Any = None,
        *,
        model_id: str | None = None,
        name: str | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        metrics: list[Any] | None = None,
        creation_timestamp: int | None = None,
        metrics_loader: Callable[[], list[Any] | None] | None = None,
    ) -> None:
        self._artifact_path = artifact_path
        self._flavors = flavors
        self._model_uri = model_uri
        self._model_uuid = model_uuid
        self._run_id = run_id
        self._saved_input_example_info = saved_input_example_info
        self._signature = signature
        self._utc_time_created = utc_time_created
        self._mlflow_version = mlflow_version
        self._metadata = metadata
        self._env_vars = env_vars
        self._prompts = prompts
        self.registered_model_version = registered_model_version
        self._logged_model = logged_model
        # Explicit values win over the LoggedModel's (the logging code may pass either).
        self._explicit = {
            "model_id": model_id,
            "name": name,
            "params": params,
            "tags": tags,
            "metrics": metrics,
            "creation_timestamp": creation_timestamp,
        }
        self._metrics_loader = metrics_loader

    def _from_logged(self, key: str) -> Any:
        if self._explicit[key] is not None:
            return self._explicit[key]
        return getattr(self._logged_model, key, None)

    @property
    def artifact_path(self) -> str | None:
        """The model's artifact location (a full URI for MLflow 3 logged models)."""
        return self._artifact_path

    @property
    def flavors(self) -> dict[str, Any]:
        """The flavors section of the MLmodel file."""
        return self._flavors

    @property
    def model_uri(self) -> str:
        """The URI to load the model with (``models:/<model_id>`` for logged models)."""
        return self._model_uri

    @property
    def model_uuid(self) -> str | None:
        """The MLmodel's ``model_uuid``."""
        return self._model_uuid

    @property
    def run_id(self) -> str | None:
        """The run that logged the model."""
        return self._run_id

    @property
    def saved_input_example_info(self) -> dict[str, Any] | None:
        """The input example metadata."""
        return self._saved_input_example_info

    @property
    def signature(self) -> ModelSignature | None:
        """The model signature."""
        return self._signature

    @property
    def signature_dict(self) -> dict[str, Any] | None:
        """The signature as its MLmodel dict (MLflow 2.x attribute)."""
        return self._signature.to_dict() if self._signature is not None else None

    @property
    def utc_time_created(self) -> str:
        """When the MLmodel was created (naive UTC)."""
        return self._utc_time_created

    @property
    def mlflow_version(self) -> str | None:
        """The MLmodel's ``mlflow_version``."""
        return self._mlflow_version

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The user metadata."""
        return self._metadata

    @property
    def env_vars(self) -> list[str] | None:
        """Environment variables the model needs."""
        return self._env_vars

    @property
    def prompts(self) -> list[str] | None:
        """Prompt URIs associated with the model."""
        return self._prompts

    @property
    def model_id(self) -> str | None:
        """The LoggedModel id (``m-...``)."""
        value: str | None = self._from_logged("model_id")
        return value

    @property
    def name(self) -> str | None:
        """The LoggedModel name."""
        value: str | None = self._from_logged("name")
        return value

    @property
    def params(self) -> dict[str, str] | None:
        """The LoggedModel's params."""
        value: dict[str, str] | None = self._from_logged("params")
        return value

    @property
    def tags(self) -> dict[str, str] | None:
        """The LoggedModel's tags."""
        value: dict[str, str] | None = self._from_logged("tags")
        return value

    @property
    def metrics(self) -> list[Any] | None:
        """The LoggedModel's metrics (read from the store on first access when logged)."""
        if self._explicit["metrics"] is None and self._metrics_loader is not None:
            self._explicit["metrics"], self._metrics_loader = self._metrics_loader(), None
        value: list[Any] | None = self._from_logged("metrics")
        return value

    @property
    def creation_timestamp(self) -> int | None:
        """When the LoggedModel was created (ms since the epoch)."""
        value: int | None = self._from_logged("creation_timestamp")
        return value

    def __repr__(self) -> str:
        return f"ModelInfo(model_uri={self.model_uri!r}, flavors={sorted(self.flavors)})"


def set_signature(model_uri: str, signature: ModelSignature) -> None:
    """Replace the signature in the MLmodel file of the model at ``model_uri`` (a local path).

    ``models:/<name>/<version>`` URIs are refused: registry artifacts are read-only.
    """
    if not isinstance(signature, ModelSignature):
        raise InvalidParameterValue("The signature argument must be a ModelSignature object")
    if model_uri.startswith("models:/"):
        rest = model_uri[len("models:/") :]
        if "/" in rest or "@" in rest:
            raise InvalidParameterValue(
                f"Failed to set signature on {model_uri!r}. "
                "Model URIs with the `models:/<name>/<version>` scheme are not supported."
            )
    path = model_uri[len("file://") :] if model_uri.startswith("file://") else model_uri
    mlmodel = Path(path)
    if mlmodel.name != MLMODEL_FILE_NAME:
        mlmodel = mlmodel / MLMODEL_FILE_NAME
    if not mlmodel.is_file():
        raise ResourceDoesNotExist(
            f'Failed to download an "{MLMODEL_FILE_NAME}" model file from "{model_uri}"'
        )
    model = Model.load(mlmodel)
    model.signature = signature
    model.save(mlmodel)
