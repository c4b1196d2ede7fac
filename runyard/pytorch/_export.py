"""The ``pt2`` serialization format: ``torch.export`` a module against its input example.

An exported program is a traced graph plus weights, so loading it runs no pickled code. Every
dimension the signature's tensor spec leaves open (``-1``) is exported as dynamic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runyard._flavor_utils import require
from runyard.errors import RunyardError
from runyard.pytorch._wrapper import _from_numpy

__all__ = ["export_pt2"]


def export_pt2(pytorch_model: Any, example: Any, signature: Any, path: Path) -> None:
    """Write ``torch.export.save`` of ``pytorch_model`` traced on ``example`` to ``path``."""
    import numpy as np

    torch = require("torch", package="torch", extra="pytorch")
    if isinstance(pytorch_model, torch.jit.ScriptModule):
        raise RunyardError(
            "The 'pt2' serialization format is not supported for torch.jit.ScriptModule "
            "models, please set `serialization_format` to 'pickle'."
        )
    examples = list(example) if isinstance(example, (list, tuple)) else [example]
    if example is None or not all(isinstance(v, np.ndarray) for v in examples):
        raise RunyardError(
            "If `serialization_format` is set to 'pt2', then input_example is required. "
            "It must be a numpy array or torch tensor, or a tuple/list of numpy arrays "
            "or torch tensors: PyTorch traces the model graph by running model.forward on it."
        )
    inputs = getattr(getattr(signature, "inputs", None), "inputs", None)
    if not inputs or not signature.inputs.is_tensor_spec():
        raise RunyardError(
            "Unsupported signature type for the selected serialization format. "
            "If the `serialization_format` argument is set to 'pt2', the input signature "
            "must be specified using `TensorSpec`. Please update the model signature or "
            "set `serialization_format` to 'pickle'."
        )
    if len(inputs) != len(examples):
        raise RunyardError(
            f"The signature has {len(inputs)} tensor inputs but the input example has "
            f"{len(examples)}."
        )
    # Dim.AUTO lets the exporter keep a dimension static when the example pins it (size 1).
    dynamic_shapes = [
        {i: torch.export.Dim.AUTO for i, size in enumerate(spec.shape) if size == -1} or None
        for spec in inputs
    ]
    tensors = tuple(_from_numpy(torch, v) for v in examples)
    program = torch.export.export(pytorch_model, tensors, dynamic_shapes=dynamic_shapes)
    torch.export.save(program, str(path))
