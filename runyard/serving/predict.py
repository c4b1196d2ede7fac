"""``runyard models predict``: score a JSON or CSV file offline, parsed exactly as the scoring
server parses ``/invocations`` bodies, and write ``{"predictions": ...}`` as MLflow does.

With ``env_manager="local"`` the model runs in this interpreter. Otherwise the model's
environment is prepared (:func:`runyard.serving.envs.prepare_environment`), the
``pip_requirements_override`` packages are installed into it, and ``python -m
runyard.serving.predict`` runs there with the same input and output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.models.download import download_model
from runyard.models.payload import NumpyEncoder, to_jsonable

__all__ = ["CONTENT_TYPES", "main", "predict", "predict_local", "predictions_text"]

#: ``-t`` values and the media type each is parsed as.
CONTENT_TYPES = {"json": "application/json", "csv": "text/csv"}


def _media_type(content_type: str) -> str:
    try:
        return CONTENT_TYPES[content_type.lower()]
    except KeyError:
        raise InvalidParameterValue(
            f"Unknown content type '{content_type}': use one of {', '.join(CONTENT_TYPES)}."
        ) from None


def _read_input(input_path: str | None, stdin: IO[bytes] | None) -> bytes:
    if input_path is not None:
        with open(input_path, "rb") as handle:
            return handle.read()
    source = stdin if stdin is not None else sys.stdin.buffer
    return source.read()


def predictions_text(raw: Any, *, unwrapped: bool = False) -> str:
    """The JSON MLflow's ``models predict`` writes: ``json.dump`` of ``{"predictions": ...}``."""
    payload = to_jsonable(raw)
    return json.dumps(payload if unwrapped else {"predictions": payload}, cls=NumpyEncoder)


def predict_local(
    model_dir: str,
    *,
    input_path: str | None = None,
    output_path: str | None = None,
    content_type: str = "json",
    stdin: IO[bytes] | None = None,
    stdout: IO[str] | None = None,
) -> None:
    """Score ``input_path`` (or stdin) with the model in ``model_dir`` from this interpreter and
    write the predictions to ``output_path`` (or stdout, with a final newline)."""
    from runyard.serving.app import load_scoring_model
    from runyard.serving.invocations import Scorer, UnsupportedContentType

    media_type = _media_type(content_type)
    body = _read_input(input_path, stdin)
    model, _ = load_scoring_model(model_dir)
    try:
        raw, unwrapped = Scorer(model).score(body, media_type)
    except UnsupportedContentType as exc:  # not reachable for json/csv; kept total
        raise InvalidParameterValue(str(exc)) from None
    text = predictions_text(raw, unwrapped=unwrapped)
    if output_path is not None:
        with open(output_path, "w") as handle:
            handle.write(text)
        return
    out = stdout if stdout is not None else sys.stdout
    out.write(text + "\n")
    out.flush()


def _install_overrides(python: str, requirements: Sequence[str]) -> None:
    pip = [python, "-m", "pip", "install", "--quiet", *requirements]
    uv = shutil.which("uv")
    probe = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False)
    command = (
        pip
        if probe.returncode == 0 or uv is None
        else [uv, "pip", "install", "--quiet", "--python", python, *requirements]
    )
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
        raise RunyardError(
            f"Installing the requirement overrides {', '.join(requirements)} failed: {tail[0]}"
        )


def predict(
    model_uri: str,
    *,
    input_path: str | None = None,
    output_path: str | None = None,
    content_type: str = "json",
    env_manager: str = "local",
    install_runyard: bool = True,
    pip_requirements_override: Sequence[str] | None = None,
    extra_envs: Mapping[str, str] | None = None,
) -> None:
    """Score a JSON or CSV file (or stdin) with the model at ``model_uri``; write
    ``{"predictions": ...}`` to ``output_path`` (or stdout). Raises RunyardError on bad input,
    exactly as the scoring server answers it."""
    from runyard.serving.server import ENV_MANAGERS, temporary_environ

    _media_type(content_type)
    if env_manager not in ENV_MANAGERS:
        raise InvalidParameterValue(
            f"Unknown env manager '{env_manager}': use one of {', '.join(ENV_MANAGERS)}."
        )
    if pip_requirements_override and env_manager == "local":
        raise InvalidParameterValue(
            "`pip_requirements_override` is not supported for local env manager."
        )
    model_dir = download_model(model_uri)
    envs = dict(extra_envs or {})
    if env_manager == "local":
        with temporary_environ(envs):
            predict_local(
                model_dir, input_path=input_path, output_path=output_path, content_type=content_type
            )
        return
    from runyard.serving.envs import prepare_environment

    python = prepare_environment(model_dir, env_manager, install_runyard)
    if pip_requirements_override:
        _install_overrides(python, pip_requirements_override)
    command = [python, "-m", "runyard.serving.predict", "--model-path", model_dir]
    command += ["--content-type", content_type]
    if input_path is not None:
        command += ["--input-path", os.path.abspath(input_path)]
    if output_path is not None:
        command += ["--output-path", os.path.abspath(output_path)]
    status = subprocess.run(command, env={**os.environ, **envs}, check=False).returncode
    if status != 0:
        raise RunyardError(
            f"Prediction in the {env_manager} environment failed (exit status {status}); its "
            "output above says why."
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m runyard.serving.predict``: :func:`predict_local` inside a model's environment."""
    parser = argparse.ArgumentParser(prog="python -m runyard.serving.predict")
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--input-path")
    parser.add_argument("--output-path")
    parser.add_argument("--content-type", default="json", choices=sorted(CONTENT_TYPES))
    args = parser.parse_args(argv)
    try:
        predict_local(
            args.model_path,
            input_path=args.input_path,
            output_path=args.output_path,
            content_type=args.content_type,
        )
    except RunyardError as exc:
        sys.stderr.write("Error: " + " ".join(exc.message.split()) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
