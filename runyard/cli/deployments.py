"""``runyard deployments``: deploy models to targets through plugins, with MLflow's commands
and options (``create``, ``update``, ``delete``, ``list``, ``get``, ``predict``, ``explain``,
``run-local``, ``help`` and the ``*-endpoint`` commands)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from runyard.cli.output import RunyardGroup, echo_json, echo_table, output_option
from runyard.deployments import get_deploy_client
from runyard.deployments import plugins as _plugins
from runyard.deployments.base import SCORING_PAYLOAD_KEYS
from runyard.errors import InvalidParameterValue

__all__ = ["commands"]

TARGET = click.option(
    "--target",
    "-t",
    required=True,
    metavar="TARGET",
    help="Deployment target URI: 'local' (built in) or a plugin's target, e.g. "
    "'sagemaker:/eu-west-1'. An unknown target's error lists the installed ones; "
    "'runyard deployments help -t TARGET' shows its URI format and config keys.",
)
NAME = click.option("--name", "name", required=True, help="Name of the deployment.")
ENDPOINT = click.option("--endpoint", help="Name of the endpoint (targets that have endpoints).")
REQUIRED_ENDPOINT = click.option("--endpoint", required=True, help="Name of the endpoint.")
MODEL_URI = click.option(
    "--model-uri",
    "-m",
    required=True,
    metavar="URI",
    help="Model to deploy: runs:/<run_id>/<path>, models:/<name>/<version|stage>, "
    "models:/<name>@<alias>, models:/<model_id>, an artifact URI or a local path.",
)
FLAVOR = click.option(
    "--flavor", "-f", help="Flavor to deploy (default: chosen by the target; local: pyfunc)."
)
CONFIG = click.option(
    "--config",
    "-C",
    metavar="NAME=VALUE",
    multiple=True,
    help="Target-specific config, repeatable: -C name=value (see 'deployments help -t').",
)
INPUT = click.option(
    "--input-path",
    "-I",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help='JSON file to score: a scoring payload ({"dataframe_split": ...}, "inputs", ...) '
    "or data pandas.read_json reads (records or columns).",
)
OUTPUT = click.option(
    "--output-path",
    "-O",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the result to this JSON file instead of standard output.",
)


def _config_dict(pairs: tuple[str, ...]) -> dict[str, str]:
    """``-C name=value`` options as a dict (values keep any further '=')."""
    config: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadOptionUsage(
                "config", f"Config options are name=value pairs (-C name=value), got {pair!r}."
            )
        if name in config:
            raise click.ClickException(f"Repeated parameter: '{name}'")
        config[name] = value
    return config


def _call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a plugin method, leaving out keyword arguments its signature does not take (plugins
    written for older MLflow interfaces lack ``endpoint`` and ``config``)."""
    accepted = inspect.signature(method).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    given = {k: v for k, v in kwargs.items() if takes_any or k in accepted}
    return method(*args, **given)


def _one_of(name: str | None, endpoint: str | None) -> None:
    if (name is None) == (endpoint is None):
        raise click.UsageError("Must specify exactly one of --name or --endpoint.")


def _read_input(path: str) -> Any:
    """A scoring payload as it is, or (as MLflow does) a DataFrame read by pandas.read_json."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidParameterValue(f"'{path}' is not valid JSON: {exc}") from None
    if isinstance(doc, dict) and SCORING_PAYLOAD_KEYS & set(doc):
        return doc
    import io

    import pandas as pd

    try:
        return pd.read_json(io.StringIO(text))
    except ValueError as exc:
        raise InvalidParameterValue(f"Cannot read '{path}' as a DataFrame: {exc}") from None


def _write_json(data: Any, output_path: str | None) -> None:
    from runyard.models.payload import NumpyEncoder, to_jsonable

    text = json.dumps(to_jsonable(data), cls=NumpyEncoder)
    if output_path is None:
        click.echo(text)
    else:
        Path(output_path).write_text(text + "\n", encoding="utf-8")


def _echo_mapping(desc: dict[str, Any], output: str) -> None:
    if output.lower() == "json":
        echo_json(desc)
        return
    for key, value in desc.items():
        click.echo(f"{key}: {value}")


_LIST_COLUMNS = ("name", "status", "flavor", "model_uri", "model_version", "url", "pid")


def _echo_list(items: list[dict[str, Any]], output: str, what: str) -> None:
    if output.lower() == "json":
        echo_json(items)
        return
    if not items:
        click.echo(f"No {what}.")
        return
    keys = [key for key in _LIST_COLUMNS if any(key in item for item in items)]
    if keys == ["name"]:  # a plugin with other fields: show them all
        keys += [k for item in items for k in item if k != "name"]
        keys = list(dict.fromkeys(keys))
    rows = [[_cell(item.get(key)) for key in keys] for item in items]
    echo_table([key.upper() for key in keys], rows, no_wrap=["NAME", "URL"])


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


@click.group("deployments", cls=RunyardGroup)
def commands() -> None:
    """Deploy models to serving targets and manage the deployments.

    The built-in target 'local' runs runyard's scoring server as a managed background process
    on this machine. Other targets (SageMaker, Azure ML, Kubernetes, ...) are plugins that
    register under the 'runyard.deployments' entry-point group; run
    'runyard deployments help -t TARGET' for a target's URI format and config keys.

    \b
    Example:
        runyard deployments create -t local --name fraud -m models:/fraud@champion
        runyard deployments predict -t local --name fraud -I input.json
        runyard deployments delete -t local --name fraud
    """


@commands.command("create")
@TARGET
@NAME
@MODEL_URI
@FLAVOR
@CONFIG
@ENDPOINT
def create_deployment(
    target: str,
    name: str,
    model_uri: str,
    flavor: str | None,
    config: tuple[str, ...],
    endpoint: str | None,
) -> None:
    """Deploy a model to a target; returns when the deployment serves predictions.

    \b
    Example:
        runyard deployments create -t local --name fraud -m models:/fraud@champion
        runyard deployments create -t local --name fraud -m runs:/<run_id>/model \\
            -C port=8080 -C workers=2
    """
    config_dict = _config_dict(config)
    client = get_deploy_client(target)
    deployment = _call(
        client.create_deployment, name, model_uri, flavor, config=config_dict, endpoint=endpoint
    )
    shown_flavor = deployment.get("flavor") or flavor or "default"
    where = f" at {deployment['url']}" if deployment.get("url") else ""
    click.echo(f"{shown_flavor} deployment {deployment['name']} is created{where}")


@commands.command("update")
@TARGET
@NAME
@click.option(
    "--model-uri", "-m", metavar="URI", help="Model to deploy instead (default: the same model)."
)
@FLAVOR
@CONFIG
@ENDPOINT
def update_deployment(
    target: str,
    name: str,
    model_uri: str | None,
    flavor: str | None,
    config: tuple[str, ...],
    endpoint: str | None,
) -> None:
    """Serve another model and/or config under an existing deployment name.

    The local target starts the new revision on a new port and stops the old process once the
    new one answers (-C port=<current port> restarts in place instead).

    \b
    Example:
        runyard deployments update -t local --name fraud -m models:/fraud/2
        runyard deployments update -t local --name fraud -C workers=4
    """
    config_dict = _config_dict(config)
    client = get_deploy_client(target)
    result = _call(
        client.update_deployment,
        name,
        model_uri=model_uri,
        flavor=flavor,
        config=config_dict,
        endpoint=endpoint,
    )
    shown_flavor = (result or {}).get("flavor") or flavor or "default"
    click.echo(f"Deployment {name} is updated (with flavor {shown_flavor})")


@commands.command("delete")
@TARGET
@NAME
@CONFIG
@ENDPOINT
def delete_deployment(
    target: str, name: str, config: tuple[str, ...], endpoint: str | None
) -> None:
    """Delete a deployment (the local target stops its server and removes its files).

    \b
    Example:
        runyard deployments delete -t local --name fraud
    """
    config_dict = _config_dict(config)
    client = get_deploy_client(target)
    _call(client.delete_deployment, name, config=config_dict, endpoint=endpoint)
    click.echo(f"Deployment {name} is deleted")


@commands.command("list")
@TARGET
@ENDPOINT
@output_option
def list_deployments(target: str, endpoint: str | None, output: str) -> None:
    """List the deployments of a target (local: name, status, model, version, url, pid).

    \b
    Example:
        runyard deployments list -t local
        runyard deployments list -t local --output json | jq -r '.[].url'
    """
    client = get_deploy_client(target)
    items = _call(client.list_deployments, endpoint=endpoint)
    _echo_list(list(items), output, "deployments")


@commands.command("get")
@TARGET
@NAME
@ENDPOINT
@output_option
def get_deployment(target: str, name: str, endpoint: str | None, output: str) -> None:
    """Show one deployment: one 'key: value' line per field (or JSON).

    \b
    Example:
        runyard deployments get -t local --name fraud
    """
    client = get_deploy_client(target)
    _echo_mapping(_call(client.get_deployment, name, endpoint=endpoint), output)


@commands.command("predict")
@TARGET
@click.option("--name", "name", help="Deployment to score with (or --endpoint).")
@click.option("--endpoint", help="Endpoint to score with (or --name).")
@INPUT
@OUTPUT
def predict(
    target: str,
    name: str | None,
    endpoint: str | None,
    input_path: str,
    output_path: str | None,
) -> None:
    """Score a JSON input file with a deployment; prints {"predictions": ...}.

    \b
    Example:
        echo '{"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}' > input.json
        runyard deployments predict -t local --name fraud -I input.json -O out.json
    """
    _one_of(name, endpoint)
    inputs = _read_input(input_path)
    client = get_deploy_client(target)
    result = _call(client.predict, name, inputs, endpoint=endpoint)
    _write_json(dict(result) if isinstance(result, dict) else result, output_path)


@commands.command("explain")
@TARGET
@click.option("--name", "name", help="Deployment to explain (or --endpoint).")
@click.option("--endpoint", help="Endpoint to explain (or --name).")
@INPUT
@OUTPUT
def explain(
    target: str,
    name: str | None,
    endpoint: str | None,
    input_path: str,
    output_path: str | None,
) -> None:
    """Explain a deployment's predictions on an input, where the target supports it.

    \b
    Example:
        runyard deployments explain -t my-plugin --name fraud -I input.json
    """
    _one_of(name, endpoint)
    inputs = _read_input(input_path)
    client = get_deploy_client(target)
    _write_json(_call(client.explain, name, inputs, endpoint=endpoint), output_path)


@commands.command("run-local")
@TARGET
@NAME
@MODEL_URI
@FLAVOR
@CONFIG
def run_local(
    target: str, name: str, model_uri: str, flavor: str | None, config: tuple[str, ...]
) -> None:
    """Serve a model in the foreground as the target would, for testing (not managed).

    \b
    Example:
        runyard deployments run-local -t local --name try -m models:/fraud/3 -C port=5001
    """
    _plugins.run_local(target, name, model_uri, flavor, _config_dict(config))


@commands.command("help")
@TARGET
def target_help(target: str) -> None:
    """Show a target's own help: its URI format and config keys.

    \b
    Example:
        runyard deployments help -t local
    """
    click.echo(_plugins.target_help(target).rstrip("\n"))


# -- endpoints (targets that group deployments under endpoints) ---------------------------------
@commands.command("create-endpoint")
@TARGET
@REQUIRED_ENDPOINT
@CONFIG
def create_endpoint(target: str, endpoint: str, config: tuple[str, ...]) -> None:
    """Create an endpoint at a target that has endpoints.

    \b
    Example:
        runyard deployments create-endpoint -t my-plugin --endpoint chat -C size=small
    """
    client = get_deploy_client(target)
    created = client.create_endpoint(endpoint, config=_config_dict(config))
    click.echo(f"Endpoint {created.get('name', endpoint)} is created")


@commands.command("update-endpoint")
@TARGET
@REQUIRED_ENDPOINT
@CONFIG
def update_endpoint(target: str, endpoint: str, config: tuple[str, ...]) -> None:
    """Change an endpoint's target-specific config.

    \b
    Example:
        runyard deployments update-endpoint -t my-plugin --endpoint chat -C size=large
    """
    client = get_deploy_client(target)
    client.update_endpoint(endpoint, config=_config_dict(config))
    click.echo(f"Endpoint {endpoint} is updated")


@commands.command("delete-endpoint")
@TARGET
@REQUIRED_ENDPOINT
def delete_endpoint(target: str, endpoint: str) -> None:
    """Delete an endpoint.

    \b
    Example:
        runyard deployments delete-endpoint -t my-plugin --endpoint chat
    """
    get_deploy_client(target).delete_endpoint(endpoint)
    click.echo(f"Endpoint {endpoint} is deleted")


@commands.command("list-endpoints")
@TARGET
@output_option
def list_endpoints(target: str, output: str) -> None:
    """List the endpoints of a target.

    \b
    Example:
        runyard deployments list-endpoints -t my-plugin
    """
    _echo_list(list(get_deploy_client(target).list_endpoints()), output, "endpoints")


@commands.command("get-endpoint")
@TARGET
@REQUIRED_ENDPOINT
@output_option
def get_endpoint(target: str, endpoint: str, output: str) -> None:
    """Show one endpoint: one 'key: value' line per field (or JSON).

    \b
    Example:
        runyard deployments get-endpoint -t my-plugin --endpoint chat
    """
    _echo_mapping(get_deploy_client(target).get_endpoint(endpoint), output)
