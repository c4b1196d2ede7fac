"""``python -m runyard.serving --model-path DIR ...``: the scoring server for a local model
directory, in whatever environment this interpreter is (a model's virtualenv, a Docker image).

``runyard models serve`` runs this inside environments it builds; the deployments ``local``
target and generated Dockerfiles run it directly.
"""

from __future__ import annotations

import argparse
import logging
import sys

from runyard.config import ENV
from runyard.errors import RunyardError
from runyard.serving.server import serve_model_dir


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (defaults from RUNYARD_*/MLFLOW_* variables)."""
    parser = argparse.ArgumentParser(
        prog="python -m runyard.serving",
        description="Serve a local pyfunc model directory with runyard's scoring server.",
    )
    parser.add_argument("--model-path", required=True, help="local model directory (MLmodel)")
    parser.add_argument("--host", default=ENV.HOST.get(), help="address to bind")
    parser.add_argument("--port", type=int, default=ENV.PORT.get(), help="port to bind")
    parser.add_argument(
        "--workers", type=int, default=ENV.MODELS_WORKERS.get(), help="worker processes"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=ENV.SCORING_SERVER_REQUEST_TIMEOUT.get(),
        help="seconds one request may take before a 504",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until stopped; exit status 1 with one ``Error:`` line on a RunyardError."""
    try:
        args = parse_args(argv)
    except ValueError as exc:  # a malformed RUNYARD_*/MLFLOW_* variable
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        serve_model_dir(
            args.model_path,
            host=args.host,
            port=args.port,
            workers=args.workers,
            timeout=args.timeout,
        )
    except RunyardError as exc:
        sys.stderr.write("Error: " + " ".join(exc.message.split()) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
