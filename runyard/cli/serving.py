"""``runyard models serve`` and ``runyard models predict``: the scoring server and offline
scoring, with MLflow's options.

Importing this module adds both commands to the ``models`` group.
"""

from __future__ import annotations

import click

from runyard.cli.models import commands as models_group
from runyard.config import ENV

__all__ = ["predict_command", "serve_command"]

ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")

MODEL_URI = click.option(
    "--model-uri",
    "-m",
    required=True,
    metavar="URI",
    help="URI of the model: runs:/<run_id>/<path>, models:/<name>/<version|stage>, "
    "models:/<name>@<alias>, models:/<model_id> or a local path.",
)
ENV_MANAGER = click.option(
    "--env-manager",
    type=click.Choice(ENV_MANAGERS),
    default=None,
    help="Where the model runs. local (the default): this Python environment, ready in "
    "seconds. virtualenv / uv: an environment built (once, then cached) from the model's "
    "python_env.yaml and requirements.txt, with runyard installed into it; conda: the same from "
    "conda.yaml. MLflow defaults to virtualenv; runyard defaults to local because a model is "
    "most often served where it was trained, and building an environment takes minutes and "
    "needs a package index.",
)
INSTALL_MLFLOW = click.option(
    "--install-mlflow",
    "--install-runyard",
    "install_mlflow",
    is_flag=True,
    help="Accepted for MLflow compatibility: runyard is always installed into environments "
    "that --env-manager builds, since its scoring server runs there.",
)


def _env_manager(env_manager: str | None, no_conda: bool = False) -> str:
    if no_conda:
        click.echo(
            "Warning: --no-conda is deprecated; use --env-manager local.",
            err=True,
        )
        if env_manager not in (None, "local"):
            raise click.UsageError("--no-conda contradicts --env-manager " + str(env_manager))
        return "local"
    return env_manager or "local"


@models_group.command("serve")
@MODEL_URI
@click.option(
    "--port",
    "-p",
    type=int,
    default=None,
    help="Port to listen on (default 5000, or RUNYARD_PORT / MLFLOW_PORT).",
)
@click.option(
    "--host",
    "-h",
    default=None,
    help="Address to bind (default 127.0.0.1, or RUNYARD_HOST / MLFLOW_HOST; 0.0.0.0 for all "
    "interfaces).",
)
@click.option(
    "--workers",
    "-w",
    type=int,
    default=None,
    help="Worker processes, each with its own copy of the model (default 1, or "
    "RUNYARD_MODELS_WORKERS / MLFLOW_MODELS_WORKERS).",
)
@click.option(
    "--timeout",
    "-t",
    type=float,
    default=None,
    help="Seconds one request may take before it is answered 504 (default 60, or "
    "RUNYARD_SCORING_SERVER_REQUEST_TIMEOUT / MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT).",
)
@ENV_MANAGER
@click.option(
    "--no-conda",
    is_flag=True,
    help="Deprecated alias of --env-manager local.",
)
@INSTALL_MLFLOW
def serve_command(
    model_uri: str,
    port: int | None,
    host: str | None,
    workers: int | None,
    timeout: float | None,
    env_manager: str | None,
    no_conda: bool,
    install_mlflow: bool,
) -> None:
    """Serve a pyfunc model over HTTP with MLflow's scoring protocol.

    Routes: GET /ping and /health (200 when the model is loaded), GET /version, POST
    /invocations (JSON dataframe_split / dataframe_records / instances / inputs with optional
    params, the pre-2.0 {"columns": ..., "data": ...} body, CSV, Parquet) and GET /metrics
    (Prometheus). Concurrent requests to scikit-learn, XGBoost and LightGBM models share model
    calls (RUNYARD_SCORING_BATCH_MAX_ROWS=0 turns that off). SIGTERM or Ctrl-C stops it
    gracefully.

    \b
    Example:
        runyard models serve -m models:/fraud-detector@champion -p 5001
        curl http://127.0.0.1:5001/invocations -H 'Content-Type: application/json' \\
            -d '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}'
        runyard models serve -m runs:/5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f/model -w 4 \\
            --env-manager virtualenv
    """
    from runyard.serving.server import serve

    try:
        resolved_port = ENV.PORT.get() if port is None else port
        resolved_host = ENV.HOST.get() if host is None else host
        resolved_workers = ENV.MODELS_WORKERS.get() if workers is None else workers
        resolved_timeout = ENV.SCORING_SERVER_REQUEST_TIMEOUT.get() if timeout is None else timeout
    except ValueError as exc:  # a malformed RUNYARD_*/MLFLOW_* variable
        raise click.ClickException(str(exc)) from None
    serve(
        model_uri,
        host=resolved_host,
        port=resolved_port,
        workers=resolved_workers,
        timeout=resolved_timeout,
        env_manager=_env_manager(env_manager, no_conda),
        install_runyard=True,
    )


def _key_values(pairs: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"{pair!r} is not a valid key value pair, expecting `key=value`",
                param_hint="'--env'",
            )
        values[key] = value
    return values


@models_group.command("predict")
@MODEL_URI
@click.option(
    "--input-path",
    "-i",
    default=None,
    type=click.Path(dir_okay=False),
    help="File with the input: a scoring-server JSON body or a CSV table (default: stdin).",
)
@click.option(
    "--output-path",
    "-o",
    default=None,
    type=click.Path(dir_okay=False),
    help='File to write {"predictions": ...} to as JSON (default: stdout).',
)
@click.option(
    "--content-type",
    "-t",
    type=click.Choice(["json", "csv"], case_sensitive=False),
    default="json",
    show_default=True,
    help="Format of the input: json (dataframe_split, dataframe_records, instances or inputs, "
    "as POSTed to /invocations) or csv.",
)
@ENV_MANAGER
@INSTALL_MLFLOW
@click.option(
    "--pip-requirements-override",
    "-r",
    default=None,
    help="Packages to install over the model's requirements, comma-separated (x==1.0,y==2.1); "
    "only with --env-manager virtualenv, uv or conda.",
)
@click.option(
    "--env",
    "env",
    multiple=True,
    metavar="KEY=VALUE",
    help="Environment variable to set while the model predicts (repeatable).",
)
def predict_command(
    model_uri: str,
    input_path: str | None,
    output_path: str | None,
    content_type: str,
    env_manager: str | None,
    install_mlflow: bool,
    pip_requirements_override: str | None,
    env: tuple[str, ...],
) -> None:
    """Score a JSON or CSV file with a model, offline, as the scoring server would.

    The input is parsed exactly as POST /invocations parses a body of that type (same
    signature checks, same errors) and {"predictions": ...} is written as JSON.

    \b
    Example:
        runyard models predict -m models:/fraud-detector/3 -i batch.json -o predictions.json
        runyard models predict -m runs:/5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f/model -t csv < rows.csv
    """
    from runyard.serving.predict import predict

    overrides = [r.strip() for r in (pip_requirements_override or "").split(",") if r.strip()]
    predict(
        model_uri,
        input_path=input_path,
        output_path=output_path,
        content_type=content_type.lower(),
        env_manager=_env_manager(env_manager),
        install_runyard=True,
        pip_requirements_override=overrides or None,
        extra_envs=_key_values(env),
    )
