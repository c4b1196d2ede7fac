__version__ = "0.1.0"

#: The MLflow release whose REST protocol and file formats runyard speaks: ``/version`` reports it
#: and MLmodel files carry it as ``mlflow_version`` so MLflow reads them as its own.
MLFLOW_COMPATIBLE_VERSION = "3.17.2"
