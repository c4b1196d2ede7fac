"""``runyard models``: the model registry from the shell — list models and versions, register,
move stages and aliases, read the history, and promote behind conditions (for CI/CD)."""

from __future__ import annotations

import json

import click

from runyard.cli.output import (
    RunyardGroup,
    collect_pages,
    echo_json,
    echo_table,
    format_time,
    get_client,
    max_results_option,
    output_option,
)
from runyard.entities import ModelVersion, RegisteredModel, RegistryEvent

__all__ = ["commands"]

NAME = click.argument("name")
VERSION = click.option(
    "--version", "-v", "version", required=True, help="Version number of the registered model."
)
STAGES = ("None", "Staging", "Production", "Archived")


@click.group("models", cls=RunyardGroup)
def commands() -> None:
    """Work with the model registry: registered models, versions, stages, aliases, history.

    The registry lives in the tracking store: RUNYARD_TRACKING_URI (or MLFLOW_TRACKING_URI),
    by default sqlite:///runyard.db in the current directory; an http(s):// URI talks to a
    server.

    \b
    Example:
        runyard models list
        runyard models versions fraud-detector
        runyard models promote fraud-detector --version 3 --alias champion \\
            --require "metrics.auc >= 0.9"
    """


def _model_json(model: RegisteredModel) -> dict[str, object]:
    from runyard.protocol.registry_codec import registered_model_to_json

    return registered_model_to_json(model)


def _version_json(version: ModelVersion) -> dict[str, object]:
    from runyard.protocol.registry_codec import model_version_to_json

    return model_version_to_json(version)


@commands.command("list")
@click.option("--filter", "filter_string", help="Search filter, e.g. \"name LIKE 'fraud%'\".")
@max_results_option(1000, "registered models")
@output_option
def list_models(filter_string: str | None, max_results: int, output: str) -> None:
    """List registered models: name, latest version per stage, aliases, last update.

    \b
    Example:
        runyard models list --filter "name LIKE 'fraud%'"
        runyard models list --output json | jq -r '.[].name'
    """
    client = get_client()
    models, more = collect_pages(
        lambda size, token: client.search_registered_models(
            filter_string, min(size, 1000), None, token
        ),
        max_results,
    )
    if output.lower() == "json":
        echo_json([_model_json(m) for m in models])
    else:
        rows = []
        for m in models:
            latest = ", ".join(f"{v.current_stage}: v{v.version}" for v in m.latest_versions)
            aliases = ", ".join(f"@{a} → v{v}" for a, v in sorted(m.aliases.items()))
            rows.append([m.name, latest, aliases, format_time(m.last_updated_timestamp)])
        echo_table(["Name", "Latest versions", "Aliases", "Updated"], rows, no_wrap=["Updated"])
    if more:
        click.echo(f"Showing the first {len(models)}; pass --max-results to see more.", err=True)


@commands.command("versions")
@NAME
@max_results_option(1000, "versions")
@output_option
def versions(name: str, max_results: int, output: str) -> None:
    """List the versions of a registered model, newest first.

    \b
    Example:
        runyard models versions fraud-detector
    """
    client = get_client()
    client.get_registered_model(name)  # an unknown name is an error, not an empty list
    quoted = name.replace("'", "\\'")
    found, more = collect_pages(
        lambda size, token: client.search_model_versions(
            f"name = '{quoted}'", size, ["version_number DESC"], token
        ),
        max_results,
    )
    if output.lower() == "json":
        echo_json([_version_json(v) for v in found])
    else:
        rows = [
            [
                v.version,
                v.current_stage,
                ", ".join(f"@{a}" for a in v.aliases),
                v.run_id or "",
                v.source or "",
                format_time(v.creation_timestamp),
            ]
            for v in found
        ]
        echo_table(
            ["Version", "Stage", "Aliases", "Run ID", "Source", "Created"],
            rows,
            no_wrap=["Run ID", "Created"],
        )
    if more:  # also with --output json: on stderr, so stdout stays valid JSON
        click.echo(f"Showing the first {len(found)}; pass --max-results to see more.", err=True)


@commands.command("register")
@click.option(
    "--model-uri",
    "-m",
    required=True,
    help="Model to register: runs:/<run_id>/<path>, models:/<model_id>, or an artifact URI.",
)
@click.option("--name", "-n", required=True, help="Registered model name (created if new).")
def register(model_uri: str, name: str) -> None:
    """Register a logged model as a new version of a registered model.

    \b
    Example:
        runyard models register -m runs:/5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f/model -n fraud-detector
    """
    from runyard.models.logging import register_model

    version = register_model(model_uri, name)
    click.echo(f"Registered version {version.version} of '{name}'.")


@commands.command("transition")
@NAME
@VERSION
@click.option(
    "--stage",
    "-s",
    required=True,
    type=click.Choice(STAGES, case_sensitive=False),
    help="Target stage.",
)
@click.option(
    "--archive-existing",
    is_flag=True,
    help="Move the versions now in the target stage to Archived.",
)
def transition(name: str, version: str, stage: str, archive_existing: bool) -> None:
    """Move a version to another stage (None, Staging, Production, Archived).

    \b
    Example:
        runyard models transition fraud-detector --version 3 --stage Production --archive-existing
    """
    mv = get_client().transition_model_version_stage(name, version, stage, archive_existing)
    click.echo(f"Version {mv.version} of '{name}' is now in stage {mv.current_stage}.")


@commands.group("alias", cls=RunyardGroup)
def alias() -> None:
    """Set or delete aliases (named pointers such as 'champion' to a version).

    \b
    Example:
        runyard models alias set fraud-detector champion --version 3
        runyard models alias delete fraud-detector champion
    """


@alias.command("set")
@NAME
@click.argument("alias_name", metavar="ALIAS")
@VERSION
def alias_set(name: str, alias_name: str, version: str) -> None:
    """Point ALIAS of model NAME at a version (moves it if it pointed elsewhere).

    \b
    Example:
        runyard models alias set fraud-detector champion --version 3
    """
    get_client().set_registered_model_alias(name, alias_name, version)
    click.echo(f"Alias '{alias_name}' of '{name}' now points at version {version}.")


@alias.command("delete")
@NAME
@click.argument("alias_name", metavar="ALIAS")
def alias_delete(name: str, alias_name: str) -> None:
    """Delete ALIAS of model NAME.

    \b
    Example:
        runyard models alias delete fraud-detector champion
    """
    get_client().delete_registered_model_alias(name, alias_name)
    click.echo(f"Alias '{alias_name}' of '{name}' deleted.")


def _event_text(event: RegistryEvent) -> str:
    version = f"v{event.version}" if event.version is not None else ""
    if event.action == "transition_stage" or (event.action == "promote" and event.to_stage):
        return f"{version}: {event.from_stage} → {event.to_stage}"
    if event.action in ("set_alias", "promote"):
        moved = f" (was v{event.previous_version})" if event.previous_version else ""
        return f"@{event.alias} → {version}{moved}"
    if event.action == "delete_alias":
        return f"@{event.alias} removed (was {version})"
    return version


@commands.command("history")
@NAME
@output_option
def history(name: str, output: str) -> None:
    """Show every version creation, stage transition, alias move and promotion of a model,
    oldest first: when, who, what changed, and the evidence of gated promotions.

    \b
    Example:
        runyard models history fraud-detector
        runyard models history fraud-detector --output json
    """
    from runyard.protocol.registry_codec import registry_event_to_json

    client = get_client()
    events, _ = collect_pages(
        lambda size, token: client.get_registered_model_history(name, size, token), None
    )
    if output.lower() == "json":
        echo_json([registry_event_to_json(e) for e in events])
        return
    rows = [
        [
            format_time(e.timestamp),
            e.user_id or "",
            e.action,
            _event_text(e),
            json.dumps(e.evidence["requirements"]) if e.evidence else "",
        ]
        for e in events
    ]
    echo_table(["When", "Who", "Action", "Change", "Evidence"], rows, no_wrap=["When"])


@commands.command("promote")
@NAME
@VERSION
@click.option(
    "--stage",
    type=click.Choice(STAGES[1:], case_sensitive=False),
    help="Stage to move the version to.",
)
@click.option("--alias", "alias_name", help="Alias to point at the version, e.g. champion.")
@click.option(
    "--require",
    multiple=True,
    help="Condition on the version's source run in search syntax, e.g. "
    '"metrics.auc >= 0.9"; repeat for several. All must hold.',
)
@click.option(
    "--archive-existing",
    is_flag=True,
    help="With --stage: move the versions now in that stage to Archived.",
)
def promote(
    name: str,
    version: str,
    stage: str | None,
    alias_name: str | None,
    require: tuple[str, ...],
    archive_existing: bool,
) -> None:
    """Promote a version to a stage or alias if its run meets every --require condition.

    Exits non-zero, changing nothing, when a condition fails (each failed one is named). The
    promotion and the values it was checked against go into 'runyard models history'.

    \b
    Example:
        runyard models promote fraud-detector --version 3 --alias champion \\
            --require "metrics.auc >= 0.9" --require "metrics.latency_ms < 50"
    """
    if (stage is None) == (alias_name is None):
        raise click.UsageError("Pass exactly one of --stage or --alias.")
    get_client().promote_model_version(
        name, version, stage, alias_name, list(require), archive_existing
    )
    target = f"stage {stage}" if stage else f"alias '{alias_name}'"
    plural = "" if len(require) == 1 else "s"
    checked = f" ({len(require)} condition{plural} met)" if require else ""
    click.echo(f"Promoted version {version} of '{name}' to {target}{checked}.")
