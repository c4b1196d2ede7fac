"""docs/cli.md is generated from the commands' help; it must be current and complete."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from runyard.cli import main
from runyard.cli.docs import HELP_WIDTH, iter_commands, render_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"

_COMMANDS = [
    (ctx.command_path, command)
    for command, ctx in iter_commands(
        main, click.Context(main, info_name="runyard", terminal_width=HELP_WIDTH)
    )
]


def test_cli_reference_is_current() -> None:
    assert DOCS.exists(), "run: python -m runyard.cli.docs > docs/cli.md"
    assert DOCS.read_text(encoding="utf-8") == render_markdown(), (
        "docs/cli.md is stale; run: python -m runyard.cli.docs > docs/cli.md"
    )


def test_every_command_is_in_the_reference() -> None:
    text = render_markdown()
    for path, _command in _COMMANDS:
        assert f"`{path}`" in text


def test_reference_covers_the_seed_commands() -> None:
    paths = {path for path, _ in _COMMANDS}
    for expected in (
        "runyard experiments create",
        "runyard experiments list",
        "runyard experiments search",
        "runyard runs list",
        "runyard artifacts download",
    ):
        assert expected in paths


@pytest.mark.parametrize(("path", "command"), _COMMANDS, ids=[path for path, _ in _COMMANDS])
def test_command_has_help(path: str, command: click.Command) -> None:
    assert (command.help or "").strip(), f"{path} has no help text"
    if not isinstance(command, click.Group):
        assert "Example:" in (command.help or ""), f"{path}: add an example to its docstring"
    for param in command.params:
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"{path} {param.opts[0]} has no help text"
