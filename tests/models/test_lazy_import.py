"""``import runyard`` stays light: model submodules load on first attribute access."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

import runyard

SCRIPT = """
import json, sys
import runyard
watched = ("pandas", "numpy", "runyard.models", "runyard.pyfunc")
before = sorted(m for m in watched if m in sys.modules)
schema = runyard.types.Schema
pyfunc = runyard.pyfunc
print(json.dumps({
    "before": before,
    "after": sorted(m for m in ("pandas", "runyard.pyfunc", "runyard.types") if m in sys.modules),
    "same": pyfunc is sys.modules["runyard.pyfunc"],
    "schema": schema.__module__,
}))
"""


@pytest.mark.slow
def test_models_are_imported_lazily() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["before"] == []
    assert got["after"] == ["pandas", "runyard.pyfunc", "runyard.types"]
    assert got["same"] is True
    assert got["schema"] == "runyard.types.schema"


def test_every_lazy_name_is_a_real_submodule() -> None:
    names = {"models", "pyfunc", "types", "sklearn", "pytorch", "xgboost", "lightgbm"}
    assert names <= set(dir(runyard))
    for name in names:
        assert importlib.util.find_spec(f"runyard.{name}") is not None, name
    assert runyard.models.ModelSignature.__name__ == "ModelSignature"


def test_unknown_attributes_still_raise() -> None:
    with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):
        runyard.no_such_thing  # noqa: B018
