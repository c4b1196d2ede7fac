"""The permission table: for every endpoint, what the caller needs on which resource.

This is the one place access rules live. The routing layer asks :class:`~.layer.AuthLayer` to
apply the rule of an endpoint after decoding its parameters (ids sent in POST bodies are seen,
unlike a proxy's ``auth_request``) and before the handler runs. A test checks that every
endpoint of the server has a rule, so a new endpoint cannot go out unprotected.

Rule kinds:

* ``resource``: ``need`` ("read", "use", "update", "delete", "manage") on the resource named by
  ``res`` — an experiment id, a run / logged model (their experiment's permission), a registered
  model name, several experiments or runs (each one), or the target of a grant.
* ``authenticated``: any signed-in user (create an experiment or a model: the creator is then
  granted MANAGE by ``after``).
* ``admin``: admins only; ``self_or_admin``: the ``username`` parameter is the caller (or
  absent), or the caller is an admin.
* ``narrow``: a search over ``experiment_ids``; the ids the caller cannot read are dropped.
* ``filter``: a search whose results are filtered to readable ones (pages refilled).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RULES", "Rule", "rule_for"]


@dataclass(frozen=True)
class Rule:
    """What one endpoint (or one method of it) requires."""

    kind: str
    need: str = "read"
    #: How the resource is found: "experiment", "experiment_name", "experiments", "run",
    #: "runs", "logged_model", "registered_model", "registered_model_create", "grant_target",
    #: "legacy_experiment_grant", "legacy_model_grant".
    res: str = ""
    #: The parameter holding the id (default per ``res``).
    param: str = ""
    #: After success: "grant_experiment", "grant_model", "move_model", "drop_model".
    after: str = ""
    #: ``filter`` rules: the result list, its resource type and the id field of an item.
    items: str = ""
    item_type: str = ""
    item_id: str = ""


def _on(res: str, need: str, param: str = "", after: str = "") -> Rule:
    return Rule("resource", need, res, param, after)


_AUTHENTICATED = Rule("authenticated")
_ADMIN = Rule("admin")
_SELF = Rule("self_or_admin")

#: Keyed by (namespace, major version, path); a dict value distinguishes methods.
RULES: dict[tuple[str, int, str], Rule | dict[str, Rule]] = {
    # -- experiments ---------------------------------------------------------------------------
    ("mlflow", 2, "/experiments/create"): Rule("authenticated", after="grant_experiment"),
    ("mlflow", 2, "/experiments/get"): _on("experiment", "read"),
    ("mlflow", 2, "/experiments/get-by-name"): _on("experiment_name", "read"),
    ("mlflow", 2, "/experiments/search"): Rule(
        "filter", items="experiments", item_type="experiment", item_id="experiment_id"
    ),
    ("mlflow", 2, "/experiments/delete"): _on("experiment", "delete"),
    ("mlflow", 2, "/experiments/restore"): _on("experiment", "delete"),
    ("mlflow", 2, "/experiments/update"): _on("experiment", "update"),
    ("mlflow", 2, "/experiments/set-experiment-tag"): _on("experiment", "update"),
    ("mlflow", 2, "/experiments/delete-experiment-tag"): _on("experiment", "update"),
    # -- runs (their experiment's permission) --------------------------------------------------
    ("mlflow", 2, "/runs/create"): _on("experiment", "update"),
    ("mlflow", 2, "/runs/get"): _on("run", "read"),
    ("mlflow", 2, "/runs/update"): _on("run", "update"),
    ("mlflow", 2, "/runs/delete"): _on("run", "delete"),
    ("mlflow", 2, "/runs/restore"): _on("run", "delete"),
    ("mlflow", 2, "/runs/search"): Rule("narrow", param="experiment_ids"),
    ("mlflow", 2, "/runs/log-metric"): _on("run", "update"),
    ("mlflow", 2, "/runs/log-parameter"): _on("run", "update"),
    ("mlflow", 2, "/runs/set-tag"): _on("run", "update"),
    ("mlflow", 2, "/runs/delete-tag"): _on("run", "update"),
    ("mlflow", 2, "/runs/log-batch"): _on("run", "update"),
    ("mlflow", 2, "/runs/log-inputs"): _on("run", "update"),
    ("mlflow", 2, "/runs/log-model"): _on("run", "update"),
    ("mlflow", 2, "/runs/outputs"): _on("run", "update"),
    ("mlflow", 2, "/metrics/get-history"): _on("run", "read"),
    ("mlflow", 2, "/metrics/get-history-bulk-interval"): _on("runs", "read"),
    ("mlflow", 2, "/artifacts/presigned-upload-url"): _on("run", "update"),
    ("mlflow", 2, "/artifacts/presigned-download-url"): _on("run", "read"),
    ("mlflow", 2, "/artifacts/list"): _on("run", "read"),
    ("runyard", 2, "/runs/keys"): _on("experiments", "read"),
    # The target experiment by name (a missing one is created; the handler grants its creator
    # MANAGE); by id, the handler checks EDIT on it.
    ("runyard", 2, "/runs/import"): _on("experiment_name", "update"),
    ("runyard", 2, "/metrics/get-history-downsampled"): _on("runs", "read"),
    # -- logged models (their experiment's permission) -----------------------------------------
    ("mlflow", 2, "/logged-models"): _on("experiment", "update"),
    ("mlflow", 2, "/logged-models/search"): Rule("narrow", param="experiment_ids"),
    ("mlflow", 2, "/logged-models/{model_id}"): {
        "GET": _on("logged_model", "read"),
        "PATCH": _on("logged_model", "update"),
        "DELETE": _on("logged_model", "delete"),
    },
    ("mlflow", 2, "/logged-models/{model_id}/tags"): _on("logged_model", "update"),
    ("mlflow", 2, "/logged-models/{model_id}/tags/{tag_key}"): _on("logged_model", "update"),
    ("mlflow", 2, "/logged-models/{model_id}/params"): _on("logged_model", "update"),
    ("mlflow", 2, "/logged-models/{model_id}/artifacts/directories"): _on("logged_model", "read"),
    ("mlflow", 2, "/logged-models/{model_id}/artifacts/files"): _on("logged_model", "read"),
    # -- model registry ------------------------------------------------------------------------
    ("mlflow", 2, "/registered-models/create"): Rule("authenticated", after="grant_model"),
    ("mlflow", 2, "/registered-models/get"): _on("registered_model", "read"),
    ("mlflow", 2, "/registered-models/rename"): _on(
        "registered_model", "update", after="move_model"
    ),
    ("mlflow", 2, "/registered-models/update"): _on("registered_model", "update"),
    ("mlflow", 2, "/registered-models/delete"): _on(
        "registered_model", "delete", after="drop_model"
    ),
    ("mlflow", 2, "/registered-models/search"): Rule(
        "filter", items="registered_models", item_type="registered_model", item_id="name"
    ),
    ("mlflow", 2, "/registered-models/get-latest-versions"): _on("registered_model", "read"),
    ("mlflow", 2, "/registered-models/set-tag"): _on("registered_model", "update"),
    ("mlflow", 2, "/registered-models/delete-tag"): _on("registered_model", "update"),
    ("mlflow", 2, "/registered-models/alias"): {
        "GET": _on("registered_model", "read"),
        "POST": _on("registered_model", "update"),
        "DELETE": _on("registered_model", "delete"),
    },
    ("mlflow", 2, "/model-versions/create"): _on("registered_model", "update"),
    ("mlflow", 2, "/registry/register-model"): _on(
        "registered_model_create", "update", after="grant_model"
    ),
    ("mlflow", 2, "/model-versions/get"): _on("registered_model", "read"),
    ("mlflow", 2, "/model-versions/update"): _on("registered_model", "update"),
    ("mlflow", 2, "/model-versions/transition-stage"): _on("registered_model", "update"),
    ("mlflow", 2, "/model-versions/delete"): _on("registered_model", "delete"),
    ("mlflow", 2, "/model-versions/get-download-uri"): _on("registered_model", "read"),
    ("mlflow", 2, "/model-versions/search"): Rule(
        "filter", items="model_versions", item_type="registered_model", item_id="name"
    ),
    ("mlflow", 2, "/model-versions/set-tag"): _on("registered_model", "update"),
    ("mlflow", 2, "/model-versions/delete-tag"): _on("registered_model", "update"),
    ("runyard", 2, "/registered-models/history"): _on("registered_model", "read"),
    # -- service -------------------------------------------------------------------------------
    ("mlflow", 3, "/server-info"): _AUTHENTICATED,
    # -- users and permissions (MLflow's basic-auth endpoints) ---------------------------------
    ("mlflow", 2, "/users/create"): _ADMIN,
    ("mlflow", 2, "/users/get"): _SELF,
    ("mlflow", 2, "/users/current"): _AUTHENTICATED,
    ("mlflow", 2, "/users/list"): _ADMIN,
    ("mlflow", 2, "/users/update-password"): _SELF,
    ("mlflow", 2, "/users/update-admin"): _ADMIN,
    ("mlflow", 2, "/users/delete"): _ADMIN,
    ("mlflow", 3, "/users/permissions/grant"): _on("grant_target", "manage"),
    ("mlflow", 3, "/users/permissions/revoke"): _on("grant_target", "manage"),
    ("mlflow", 3, "/users/permissions/get"): _SELF,
    ("mlflow", 3, "/users/permissions/list"): _SELF,
    ("mlflow", 3, "/users/current/permissions"): _AUTHENTICATED,
    ("mlflow", 2, "/experiments/permissions/create"): _on("experiment", "manage"),
    ("mlflow", 2, "/experiments/permissions/get"): _on("experiment", "manage"),
    ("mlflow", 2, "/experiments/permissions/update"): _on("experiment", "manage"),
    ("mlflow", 2, "/experiments/permissions/delete"): _on("experiment", "manage"),
    ("mlflow", 2, "/registered-models/permissions/create"): _on("registered_model", "manage"),
    ("mlflow", 2, "/registered-models/permissions/get"): _on("registered_model", "manage"),
    ("mlflow", 2, "/registered-models/permissions/update"): _on("registered_model", "manage"),
    ("mlflow", 2, "/registered-models/permissions/delete"): _on("registered_model", "manage"),
    # -- runyard: tokens (own ones; the handler checks another user's need admin) and audit ---
    ("runyard", 2, "/tokens/create"): _AUTHENTICATED,
    ("runyard", 2, "/tokens/list"): _AUTHENTICATED,
    ("runyard", 2, "/tokens/revoke"): _AUTHENTICATED,
    ("runyard", 2, "/audit"): _ADMIN,
}


def rule_for(namespace: str, major: int, path: str, method: str) -> Rule | None:
    """The rule of one endpoint and method; None when the table has none (a bug: denied)."""
    found = RULES.get((namespace, major, path))
    if isinstance(found, dict):
        return found.get(method)
    return found
