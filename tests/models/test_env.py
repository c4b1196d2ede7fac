"""Environment files: requirements.txt, conda.yaml, python_env.yaml in MLflow's layouts."""

from __future__ import annotations

import importlib.metadata
import platform
from pathlib import Path

import pytest
import yaml

from runyard.errors import InvalidParameterValue, ResourceDoesNotExist
from runyard.models.env import (
    get_model_dependencies,
    get_pinned_requirement,
    parse_pip_requirements,
    resolve_requirements,
    write_env_files,
)
from runyard.version import __version__

PY = platform.python_version()
PIP = importlib.metadata.version("pip")
CLOUDPICKLE = f"cloudpickle=={importlib.metadata.version('cloudpickle')}"


def test_default_files(tmp_path: Path) -> None:
    write_env_files(tmp_path, [get_pinned_requirement("cloudpickle")])
    assert (tmp_path / "requirements.txt").read_text() == f"runyard=={__version__}\n{CLOUDPICKLE}"
    assert (tmp_path / "conda.yaml").read_text() == (
        "channels:\n"
        "- conda-forge\n"
        "dependencies:\n"
        f"- python={PY}\n"
        f"- pip<={PIP}\n"
        "- pip:\n"
        f"  - runyard=={__version__}\n"
        f"  - {CLOUDPICKLE}\n"
        "name: mlflow-env\n"
    )
    python_env = (tmp_path / "python_env.yaml").read_text().splitlines()
    assert python_env[0] == f"python: {PY}"
    assert python_env[1] == "build_dependencies:"
    assert python_env[2] == f"- pip=={PIP}"
    assert python_env[3].startswith("- setuptools")
    assert python_env[4].startswith("- wheel")
    assert python_env[5:] == ["dependencies:", "- -r requirements.txt"]
    assert not (tmp_path / "constraints.txt").exists()


def test_user_requirements_extra_and_constraints(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("numpy<3\n")
    (tmp_path / "r.txt").write_text("# comment\npandas>=2  # inline\n-c c.txt\n")
    reqs, constraints = parse_pip_requirements(str(tmp_path / "r.txt"))
    assert reqs == ["pandas>=2"]
    assert constraints == ["numpy<3"]
    _, lines, _ = resolve_requirements(["cloudpickle==3.1.3"], pip_requirements=["scikit-learn"])
    assert lines == [f"runyard=={__version__}", "scikit-learn"]
    _, lines, _ = resolve_requirements(["cloudpickle==3.1.3"], extra_pip_requirements=["torch"])
    assert lines == [f"runyard=={__version__}", "cloudpickle==3.1.3", "torch"]
    _, lines, _ = resolve_requirements([], pip_requirements=["runyard==9.9", "a", "a==1"])
    assert lines == ["runyard==9.9", "a==1"]
    out = tmp_path / "model"
    out.mkdir()
    write_env_files(out, [], pip_requirements=str(tmp_path / "r.txt"))
    assert (out / "requirements.txt").read_text() == (
        f"runyard=={__version__}\npandas>=2\n-c constraints.txt"
    )
    assert (out / "constraints.txt").read_text() == "numpy<3"


def test_conda_env_argument(tmp_path: Path) -> None:
    conda = {
        "name": "custom",
        "channels": ["defaults"],
        "dependencies": ["python=3.11", {"pip": ["xgboost"]}],
    }
    write_env_files(tmp_path, ["ignored==1"], conda_env=conda)
    written = yaml.safe_load((tmp_path / "conda.yaml").read_text())
    assert written == {
        "name": "custom",
        "channels": ["defaults"],
        "dependencies": ["python=3.11", {"pip": [f"runyard=={__version__}", "xgboost"]}],
    }
    assert (tmp_path / "requirements.txt").read_text() == f"runyard=={__version__}\nxgboost"


def test_only_one_env_argument() -> None:
    with pytest.raises(ValueError, match="Only one of `conda_env`, `pip_requirements`"):
        resolve_requirements([], pip_requirements=["a"], extra_pip_requirements=["b"])


def test_pinning() -> None:
    assert get_pinned_requirement("pyyaml") == f"pyyaml=={importlib.metadata.version('pyyaml')}"
    assert get_pinned_requirement("torch", version="2.3.0+cu121") == "torch==2.3.0"
    with pytest.raises(InvalidParameterValue, match="not installed"):
        get_pinned_requirement("surely-not-a-real-package-xyz")


def test_get_model_dependencies(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text(
        "flavors:\n  python_function:\n    env:\n      conda: conda.yaml\n"
        "    loader_module: mlflow.pyfunc.model\n"
    )
    (tmp_path / "conda.yaml").write_text(
        "dependencies:\n- python=3.11\n- pip:\n  - runyard==0.1.0\n  - numpy\nname: mlflow-env\n"
    )
    assert get_model_dependencies(str(tmp_path), format="conda") == str(tmp_path / "conda.yaml")
    fallback = get_model_dependencies(str(tmp_path))
    assert Path(fallback).read_text() == "runyard==0.1.0\nnumpy\n"
    (tmp_path / "requirements.txt").write_text("runyard==0.1.0")
    assert get_model_dependencies(str(tmp_path)) == str(tmp_path / "requirements.txt")
    with pytest.raises(InvalidParameterValue, match="Illegal format argument 'npm'"):
        get_model_dependencies(str(tmp_path), format="npm")
    (tmp_path / "requirements.txt").unlink()
    (tmp_path / "conda.yaml").write_text("dependencies:\n- python=3.11\n")
    with pytest.raises(ResourceDoesNotExist, match="No pip section found"):
        get_model_dependencies(str(tmp_path))
