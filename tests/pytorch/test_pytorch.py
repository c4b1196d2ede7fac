"""runyard.pytorch: whole-module save/load (pickle and pt2), pyfunc, state dicts, MLmodel keys."""

from __future__ import annotations

import pickle
import platform
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

import runyard
import runyard.pytorch as rpt
from runyard import pyfunc
from runyard.errors import InvalidParameterValue, RunyardError
from runyard.models import Model

PY_VERSION = platform.python_version()
TORCH_VERSION = str(torch.__version__)


class TinyNet(nn.Module):
    """Four input features to two outputs through one hidden layer."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x))) * scale


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return np.random.default_rng(5).normal(size=(16, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def net(inputs: np.ndarray) -> TinyNet:
    torch.manual_seed(0)
    model = TinyNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.from_numpy(inputs)
    target = x[:, :2] - x[:, 2:]
    for _ in range(20):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), target).backward()
        optimizer.step()
    return model.eval()


def expected(net: nn.Module, inputs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        result: np.ndarray = net(torch.from_numpy(inputs)).numpy()
    return result


def mlmodel(path: Path) -> dict[str, Any]:
    return yaml.safe_load((path / "MLmodel").read_text())


def test_save_writes_mlflows_layout(tmp_path: Path, net: TinyNet) -> None:
    path = tmp_path / "m"
    rpt.save_model(net, path)

    assert mlmodel(path)["flavors"] == {
        "python_function": {
            "data": "data",
            "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
            "loader_module": "mlflow.pytorch",
            "config": {"device": None},
            "pickle_module_name": "mlflow.pytorch.pickle_module",
            "python_version": PY_VERSION,
        },
        "pytorch": {"code": None, "model_data": "data", "pytorch_version": TORCH_VERSION},
    }
    assert (path / "data" / "model.pth").is_file()
    info = (path / "data" / "pickle_module_info.txt").read_text()
    assert info == "mlflow.pytorch.pickle_module"
    requirements = (path / "requirements.txt").read_text().splitlines()
    assert f"torch=={TORCH_VERSION.split('+')[0]}" in requirements
    assert f"cloudpickle=={cloudpickle.__version__}" in requirements


def test_native_round_trip(tmp_path: Path, net: TinyNet, inputs: np.ndarray) -> None:
    rpt.save_model(net, tmp_path / "m")
    loaded = rpt.load_model(str(tmp_path / "m"))
    assert type(loaded).__name__ == "TinyNet"
    assert not loaded.training
    np.testing.assert_allclose(expected(loaded, inputs), expected(net, inputs), rtol=1e-6)


def test_pyfunc_takes_ndarray_dataframe_and_tensor(
    tmp_path: Path, net: TinyNet, inputs: np.ndarray
) -> None:
    rpt.save_model(net, tmp_path / "m")
    model = pyfunc.load_model(str(tmp_path / "m"))
    want = expected(net, inputs)

    from_array = model.predict(inputs)
    assert isinstance(from_array, np.ndarray)
    np.testing.assert_allclose(from_array, want, rtol=1e-6)

    frame = pd.DataFrame(inputs, index=range(100, 116))
    from_frame = model.predict(frame)
    assert isinstance(from_frame, pd.DataFrame)
    assert list(from_frame.index) == list(range(100, 116))
    np.testing.assert_allclose(from_frame.to_numpy(), want, rtol=1e-6)

    wrapper = rpt._load_pyfunc(str(tmp_path / "m" / "data"))
    np.testing.assert_allclose(wrapper.predict(torch.from_numpy(inputs)), want, rtol=1e-6)


def test_pyfunc_wrapper_rules(tmp_path: Path, net: TinyNet, inputs: np.ndarray) -> None:
    rpt.save_model(net, tmp_path / "m")
    wrapper = rpt._load_pyfunc(str(tmp_path / "m" / "data"), {"device": "cpu"})
    assert wrapper.device == "cpu"
    # Inference params become keyword arguments of forward().
    np.testing.assert_allclose(
        wrapper.predict(inputs, params={"scale": 2.0}), 2 * expected(net, inputs), rtol=1e-6
    )
    with pytest.raises(TypeError, match="does not support List or Dict"):
        wrapper.predict([[1.0, 2.0, 3.0, 4.0]])
    with pytest.raises(ValueError, match="must be specified at load time"):
        wrapper.predict(inputs, params={"device": "cpu"})


def test_signature_inferred_from_ndarray_example(
    tmp_path: Path, net: TinyNet, inputs: np.ndarray
) -> None:
    rpt.save_model(net, tmp_path / "m", input_example=inputs[:3])
    signature = Model.load(str(tmp_path / "m")).signature
    assert signature.inputs.is_tensor_spec()
    assert signature.inputs.inputs[0].shape == (-1, 4)
    assert signature.inputs.inputs[0].type == np.dtype("float32")
    assert signature.outputs.inputs[0].shape == (-1, 2)
    assert (tmp_path / "m" / "input_example.json").is_file()


def test_tensor_example_is_stored_as_ndarray(
    tmp_path: Path, net: TinyNet, inputs: np.ndarray
) -> None:
    rpt.save_model(net, tmp_path / "m", input_example=torch.from_numpy(inputs[:2]))
    model = Model.load(str(tmp_path / "m"))
    np.testing.assert_allclose(model.load_input_example(str(tmp_path / "m")), inputs[:2])


def test_pt2_export_round_trip(tmp_path: Path, net: TinyNet, inputs: np.ndarray) -> None:
    path = tmp_path / "m"
    rpt.save_model(net, path, serialization_format="pt2", input_example=inputs[:5])

    assert (path / "data" / "model.pt2").is_file()
    assert not (path / "data" / "model.pth").exists()
    assert mlmodel(path)["flavors"]["pytorch"]["model_data"] == "data"
    loaded = rpt.load_model(str(path))
    # The batch dimension was exported as dynamic: other batch sizes run too.
    np.testing.assert_allclose(expected(loaded, inputs), expected(net, inputs), rtol=1e-5)
    model = pyfunc.load_model(str(path))
    np.testing.assert_allclose(model.predict(inputs[:7]), expected(net, inputs[:7]), rtol=1e-5)


def test_pt2_needs_an_array_example(tmp_path: Path, net: TinyNet) -> None:
    with pytest.raises(RunyardError, match="input_example is required"):
        rpt.save_model(net, tmp_path / "m", serialization_format="pt2")
    assert not (tmp_path / "m").exists()  # a failed save leaves nothing half-written


def test_unknown_serialization_format(tmp_path: Path, net: TinyNet) -> None:
    with pytest.raises(InvalidParameterValue, match="one of 'pickle' or 'pt2'"):
        rpt.save_model(net, tmp_path / "m", serialization_format="onnx")


def test_not_a_module(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="should be a torch.nn.Module"):
        rpt.save_model({"weight": torch.ones(2)}, tmp_path / "m")


def test_torchscript_module_round_trip(tmp_path: Path, net: TinyNet, inputs: np.ndarray) -> None:
    # TorchScript is deprecated in torch 2.13: scripting, saving and loading all say so.
    with pytest.warns(DeprecationWarning, match="torch.jit.script"):
        scripted = torch.jit.script(net)
    with pytest.warns(DeprecationWarning, match="torch.jit.save"):
        rpt.save_model(scripted, tmp_path / "m")
    with pytest.warns(DeprecationWarning, match="torch.jit.load"):
        loaded = rpt.load_model(str(tmp_path / "m"))
    assert isinstance(loaded, torch.jit.ScriptModule)
    np.testing.assert_allclose(expected(loaded, inputs), expected(net, inputs), rtol=1e-6)


def test_custom_pickle_module_is_recorded_and_used(
    tmp_path: Path, net: TinyNet, inputs: np.ndarray
) -> None:
    rpt.save_model(net, tmp_path / "m", pickle_module=pickle)
    assert (tmp_path / "m" / "data" / "pickle_module_info.txt").read_text() == "pickle"
    assert mlmodel(tmp_path / "m")["flavors"]["python_function"]["pickle_module_name"] == "pickle"
    np.testing.assert_allclose(
        expected(rpt.load_model(str(tmp_path / "m")), inputs), expected(net, inputs), rtol=1e-6
    )


def test_state_dict_round_trip(tmp_path: Path, net: TinyNet, inputs: np.ndarray) -> None:
    rpt.save_state_dict(net.state_dict(), tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "state_dict.pth").is_file()

    state = rpt.load_state_dict(str(tmp_path / "ckpt"))
    fresh = TinyNet()
    fresh.load_state_dict(state)
    fresh.eval()
    np.testing.assert_allclose(expected(fresh, inputs), expected(net, inputs), rtol=1e-6)


def test_save_state_dict_refuses_a_model(tmp_path: Path, net: TinyNet) -> None:
    with pytest.raises(TypeError, match="Invalid object type for `state_dict`"):
        rpt.save_state_dict(net, tmp_path / "ckpt")  # type: ignore[arg-type]


def test_log_state_dict_to_a_run(tracking_env: str, net: TinyNet, inputs: np.ndarray) -> None:
    checkpoint = {"model": net.state_dict(), "epoch": 3}
    with runyard.start_run() as run:
        rpt.log_state_dict(checkpoint, artifact_path="checkpoint")

    state = rpt.load_state_dict(f"runs:/{run.info.run_id}/checkpoint")
    assert state["epoch"] == 3
    fresh = TinyNet()
    fresh.load_state_dict(state["model"])
    fresh.eval()
    np.testing.assert_allclose(expected(fresh, inputs), expected(net, inputs), rtol=1e-6)
