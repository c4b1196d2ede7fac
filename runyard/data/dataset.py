"""Dataset descriptions: a name, a content digest, a source, a schema and a profile.

Digests hash the data itself (first 10,000 rows plus the shape), so logging the same data twice
records one dataset, and changed data gets a new digest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from runyard.entities import Dataset as DatasetEntity
from runyard.errors import InvalidParameterValue
from runyard.tracking.context import current_user

__all__ = ["Dataset", "NumpyDataset", "PandasDataset", "from_numpy", "from_pandas"]

_DIGEST_ROWS = 10_000

_NUMPY_TO_MLFLOW = {
    "b": "boolean",
    "i": "long",
    "u": "long",
    "f": "double",
    "U": "string",
    "S": "binary",
    "O": "string",
    "M": "datetime",
}


def _mlflow_type(dtype: Any) -> str:
    kind = getattr(dtype, "kind", "O")
    if kind == "i" and getattr(dtype, "itemsize", 8) <= 4:
        return "integer"
    if kind == "f" and getattr(dtype, "itemsize", 8) <= 4:
        return "float"
    return _NUMPY_TO_MLFLOW.get(kind, "string")


def _source(source: str | None) -> tuple[str, str]:
    if source is None:
        import sys

        tags = {
            "mlflow.user": current_user(),
            "mlflow.source.name": sys.argv[0] if sys.argv else "",
        }
        return "code", json.dumps({"tags": tags})
    for prefix, kind in (
        ("s3://", "s3"),
        ("http://", "http"),
        ("https://", "http"),
        ("gs://", "gcs"),
    ):
        if source.startswith(prefix):
            return kind, json.dumps({"url" if kind == "http" else "uri": source})
    return "local", json.dumps({"uri": source})


class Dataset:
    """Base of dataset descriptions; ``to_entity()`` gives what the store records."""

    def __init__(self, name: str | None, digest: str, source: str | None) -> None:
        self.digest = digest
        self.name = name or "dataset"
        self.source_type, self.source = _source(source)

    @property
    def schema(self) -> dict[str, Any]:
        """MLflow's column schema JSON (``{"mlflow_colspec": [...]}``)."""
        raise NotImplementedError

    @property
    def profile(self) -> dict[str, Any]:
        """Size facts about the data."""
        raise NotImplementedError

    def to_entity(self) -> DatasetEntity:
        """The store entity for this dataset."""
        return DatasetEntity(
            name=self.name,
            digest=self.digest,
            source_type=self.source_type,
            source=self.source,
            schema=json.dumps(self.schema),
            profile=json.dumps(self.profile),
        )

    _to_mlflow_entity = to_entity

    def to_dict(self) -> dict[str, str]:
        """The dataset as a dict of strings, as MLflow's ``Dataset.to_dict``."""
        entity = self.to_entity()
        return {
            "name": entity.name,
            "digest": entity.digest,
            "source": entity.source,
            "source_type": entity.source_type,
            "schema": entity.schema or "",
            "profile": entity.profile or "",
        }


class PandasDataset(Dataset):
    """A pandas DataFrame, optionally with the name of its target column."""

    def __init__(
        self,
        df: Any,
        source: str | None = None,
        targets: str | None = None,
        name: str | None = None,
        digest: str | None = None,
        predictions: str | None = None,
    ) -> None:
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise InvalidParameterValue("from_pandas expects a pandas DataFrame.")
        for column in (targets, predictions):
            if column is not None and column not in df.columns:
                raise InvalidParameterValue(f"Column '{column}' is not in the DataFrame.")
        self.df = df
        self.targets = targets
        self.predictions = predictions
        if digest is None:
            hashed = pd.util.hash_pandas_object(df.head(_DIGEST_ROWS), index=False).values
            h = hashlib.sha256(hashed.tobytes())
            h.update(repr((df.shape, list(map(str, df.columns)))).encode())
            digest = h.hexdigest()[:8]
        super().__init__(name, digest, source)

    @property
    def schema(self) -> dict[str, Any]:
        """One colspec per column."""
        return {
            "mlflow_colspec": [
                {"type": _mlflow_type(dtype), "name": str(col), "required": True}
                for col, dtype in self.df.dtypes.items()
            ]
        }

    @property
    def profile(self) -> dict[str, Any]:
        """Row and element counts."""
        return {"num_rows": int(len(self.df)), "num_elements": int(self.df.size)}


class NumpyDataset(Dataset):
    """A numpy array of features, optionally with targets."""

    def __init__(
        self,
        features: Any,
        source: str | None = None,
        targets: Any = None,
        name: str | None = None,
        digest: str | None = None,
    ) -> None:
        import numpy as np

        self.features = np.asarray(features)
        self.targets = None if targets is None else np.asarray(targets)
        if digest is None:
            h = hashlib.sha256(np.ascontiguousarray(self.features[:_DIGEST_ROWS]).tobytes())
            h.update(repr(self.features.shape).encode())
            if self.targets is not None:
                h.update(np.ascontiguousarray(self.targets[:_DIGEST_ROWS]).tobytes())
            digest = h.hexdigest()[:8]
        super().__init__(name, digest, source)

    @property
    def schema(self) -> dict[str, Any]:
        """Tensor specs of features (and targets)."""

        def spec(arr: Any) -> dict[str, Any]:
            return {
                "type": "tensor",
                "tensor-spec": {"dtype": str(arr.dtype), "shape": [-1, *arr.shape[1:]]},
            }

        out = {"features": json.dumps([spec(self.features)])}
        if self.targets is not None:
            out["targets"] = json.dumps([spec(self.targets)])
        return {"mlflow_tensorspec": out}

    @property
    def profile(self) -> dict[str, Any]:
        """Shapes and sizes."""
        out: dict[str, Any] = {
            "features_shape": list(self.features.shape),
            "features_size": int(self.features.size),
        }
        if self.targets is not None:
            out["targets_shape"] = list(self.targets.shape)
            out["targets_size"] = int(self.targets.size)
        return out


def from_pandas(
    df: Any,
    source: str | None = None,
    targets: str | None = None,
    name: str | None = None,
    digest: str | None = None,
    predictions: str | None = None,
) -> PandasDataset:
    """Describe a DataFrame for ``runyard.log_input``."""
    return PandasDataset(df, source, targets, name, digest, predictions)


def from_numpy(
    features: Any,
    source: str | None = None,
    targets: Any = None,
    name: str | None = None,
    digest: str | None = None,
) -> NumpyDataset:
    """Describe numpy arrays for ``runyard.log_input``."""
    return NumpyDataset(features, source, targets, name, digest)
