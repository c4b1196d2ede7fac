"""cloudpickle in the shape ``torch.save(..., pickle_module=...)`` expects (``Pickler``,
``Unpickler``, ``dump``, ``load``), so whole modules are saved with their class definitions even
when those live in ``__main__``. MLmodel files name it ``mlflow.pytorch.pickle_module``, MLflow's
module of the same purpose, and runyard maps that name back here when loading.
"""

from pickle import Unpickler

from cloudpickle import CloudPickler as Pickler
from cloudpickle import dump, dumps, load, loads

__all__ = ["Pickler", "Unpickler", "dump", "dumps", "load", "loads"]
