"""``runyard.pyfunc``: the generic Python-function model flavor (``mlflow.pyfunc``).

Every flavor that can predict adds a ``python_function`` section to its MLmodel file, so any
such model loads with :func:`load_model` and predicts with a signature-checked ``predict``.
Custom models subclass :class:`PythonModel`::

    class AddN(runyard.pyfunc.PythonModel):
        def __init__(self, n):
            self.n = n

        def predict(self, context, model_input, params=None):
            return model_input + self.n

    runyard.pyfunc.save_model("add_n", python_model=AddN(5))
    runyard.pyfunc.load_model("add_n").predict(pd.DataFrame({"x": [1, 2]}))
"""

from runyard.models.env import get_model_dependencies
from runyard.pyfunc.loader import (
    CODE,
    DATA,
    FLAVOR_NAME,
    MAIN,
    PY_VERSION,
    PyFuncModel,
    load_model,
)
from runyard.pyfunc.model import PythonModel, PythonModelContext
from runyard.pyfunc.save import (
    add_to_model,
    get_default_conda_env,
    get_default_pip_requirements,
    log_model,
    save_model,
)

#: MLflow's older name for :func:`load_model`.
load_pyfunc = load_model

__all__ = [
    "CODE",
    "DATA",
    "FLAVOR_NAME",
    "MAIN",
    "PY_VERSION",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "add_to_model",
    "get_default_conda_env",
    "get_default_pip_requirements",
    "get_model_dependencies",
    "load_model",
    "load_pyfunc",
    "log_model",
    "save_model",
]
