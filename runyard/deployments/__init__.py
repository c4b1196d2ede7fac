"""Deploy models to serving targets through plugins, as ``mlflow.deployments`` does.

``get_deploy_client("local")`` manages runyard's scoring server as background processes on this
machine; other targets (SageMaker, Azure ML, Kubernetes, ...) are plugins registered under the
``runyard.deployments`` entry-point group. See ``docs/deployments.md``.

Example::

    from runyard.deployments import get_deploy_client

    client = get_deploy_client("local")
    client.create_deployment("fraud", "models:/fraud@champion")
    client.predict("fraud", df)["predictions"]
    client.delete_deployment("fraud")
"""

from __future__ import annotations

from runyard.deployments.base import BaseDeploymentClient, PredictionsResponse
from runyard.deployments.plugins import (
    get_deploy_client,
    installed_targets,
    run_local,
    target_help,
)

__all__ = [
    "BaseDeploymentClient",
    "PredictionsResponse",
    "get_deploy_client",
    "installed_targets",
    "run_local",
    "target_help",
]
