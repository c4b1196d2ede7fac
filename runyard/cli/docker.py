"""``runyard models generate-dockerfile`` and ``runyard models build-docker``: Docker images that
serve a model with runyard's scoring server on port 8080.

Importing this module adds both commands to the ``models`` group.
"""

from __future__ import annotations

import click

from runyard.cli.models import commands as models_group

__all__ = ["build_docker_command", "generate_dockerfile_command"]

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
    type=click.Choice(["virtualenv", "local"]),
    default="virtualenv",
    show_default=True,
    help="virtualenv: install the model's requirements and runyard into a virtualenv in the "
    "image; local: into the image's own Python.",
)


@models_group.command("generate-dockerfile")
@MODEL_URI
@click.option(
    "--output-directory",
    "-d",
    default="runyard-dockerfile",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory the build context (Dockerfile, model_dir/, requirements) is written to.",
)
@ENV_MANAGER
def generate_dockerfile_command(model_uri: str, output_directory: str, env_manager: str) -> None:
    """Write a Docker build context that serves a model on port 8080.

    The context holds a Dockerfile (python:<the model's Python>-slim, the model's own pinned
    requirements and runyard, a non-root user), the model in model_dir/ and its
    requirements.txt; build it anywhere with `docker build`.

    \b
    Example:
        runyard models generate-dockerfile -m models:/fraud-detector@champion -d fraud-image
        docker build -t fraud-detector fraud-image
        docker run -p 5001:8080 fraud-detector
    """
    from runyard.serving.docker import generate_dockerfile

    dockerfile = generate_dockerfile(model_uri, output_directory, env_manager)
    click.echo(f"Generated {dockerfile}; build it with: docker build -t NAME {dockerfile.parent}")


@models_group.command("build-docker")
@MODEL_URI
@click.option(
    "--name",
    "-n",
    default="runyard-pyfunc-servable",
    show_default=True,
    help="Name (and optional :tag) of the image to build.",
)
@ENV_MANAGER
def build_docker_command(model_uri: str, name: str, env_manager: str) -> None:
    """Build a Docker image that serves a model on port 8080.

    Needs a running Docker engine; where none answers, it fails with one line (use
    generate-dockerfile and build elsewhere).

    \b
    Example:
        runyard models build-docker -m models:/fraud-detector/3 -n fraud-detector:3
        docker run -p 5001:8080 fraud-detector:3
        curl -X POST localhost:5001/invocations -H "Content-Type: application/json" \\
            -d '{"dataframe_split": {"columns": ["amount"], "data": [[12.5]]}}'
    """
    from runyard.serving.docker import build_docker

    build_docker(model_uri, name, env_manager)
    click.echo(f"Built image {name}; run it with: docker run -p 5001:8080 {name}")
