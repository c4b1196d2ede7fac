"""``validate_serving_input``: score a scoring-server payload offline, as the server would."""

from __future__ import annotations

import json
from typing import Any

from runyard.models.payload import decode_json_payload, parse_scoring_payload
from runyard.pyfunc.loader import load_model

__all__ = ["validate_serving_input"]


def validate_serving_input(model_uri: str, serving_input: str | dict[str, Any]) -> Any:
    """Load the model, parse ``serving_input`` (JSON text or dict) as ``/invocations`` does and
    return the model's prediction; bad payloads raise MLflow's BAD_REQUEST errors."""
    model = load_model(model_uri)
    doc = decode_json_payload(
        serving_input if isinstance(serving_input, (str, dict)) else json.dumps(serving_input)
    )
    meta = model.metadata
    data, params = parse_scoring_payload(
        doc,
        meta.get_input_schema(),
        meta.get_params_schema(),
        raw_inputs=meta._is_signature_from_type_hint(),
    )
    return model.predict(data, params=params)
