"""What ``runyard.pyfunc`` calls for a PyTorch model: DataFrame, ndarray or tensor in, ndarray out
(a DataFrame with the input's index when the input was a DataFrame), under ``torch.no_grad()``."""

from __future__ import annotations

from typing import Any

__all__ = ["_PyTorchWrapper", "_from_numpy"]


def _from_numpy(torch: Any, array: Any) -> Any:
    """A tensor sharing ``array``'s memory, or a copy's when the array is read-only (pandas
    copy-on-write hands those out), which torch cannot wrap safely."""
    return torch.from_numpy(array if array.flags.writeable else array.copy())


class _PyTorchWrapper:
    """``predict(data, params=None)`` over a loaded ``torch.nn.Module`` on ``device``."""

    def __init__(self, pytorch_model: Any, device: str) -> None:
        self.pytorch_model = pytorch_model
        self.device = device

    def get_raw_model(self) -> Any:
        """The wrapped ``torch.nn.Module``."""
        return self.pytorch_model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Run the module on ``data``; ``params`` become keyword arguments of ``forward``.

        Raises:
            TypeError: for lists/dicts (MLflow's rule) or a module that returns no tensor.
            ValueError: for a ``device`` param (the device is chosen at load time).
        """
        import numpy as np
        import pandas as pd
        import torch

        if params and "device" in params:
            raise ValueError(
                "'device' can no longer be specified as an inference parameter. "
                "It must be specified at load time, for example: "
                "`runyard.pyfunc.load_model(model_uri, model_config={'device': 'cuda'})`."
            )
        if isinstance(data, pd.DataFrame):
            tensor = _from_numpy(torch, data.to_numpy(dtype=np.float32))
        elif isinstance(data, np.ndarray):
            tensor = _from_numpy(torch, data)
        elif isinstance(data, torch.Tensor):
            tensor = data
        elif isinstance(data, (list, dict)):
            raise TypeError(
                "The PyTorch flavor does not support List or Dict input types. "
                "Please use a pandas.DataFrame or a numpy.ndarray"
            )
        else:
            raise TypeError("Input data should be pandas.DataFrame or numpy.ndarray")
        with torch.no_grad():
            preds = self.pytorch_model(tensor.to(self.device), **(params or {}))
        if not isinstance(preds, torch.Tensor):
            raise TypeError(
                "Expected PyTorch model to output a single output tensor, "
                f"but got output of type '{type(preds)}'"
            )
        result = preds.detach().cpu().numpy()
        if isinstance(data, pd.DataFrame):
            frame = pd.DataFrame(result)
            frame.index = data.index
            return frame
        return result
