"""Start-up times: ``import <lib>`` in a fresh interpreter, and the CLI's ``--help``/``--version``.

Executed as a script by the interpreter that has the library installed::

    python benchmarks/startup_workload.py --lib runyard [--quick]

Every command is a fresh subprocess of that interpreter (or of the library's console script next
to it), run once untimed (byte-code caches, page cache) and then timed from spawn to exit; the
medians are reported. ``import <lib>`` is also reported net of a bare ``python -c pass``, whose
median is reported separately. Prints one JSON object on the last line of stdout; exits with
status 1 when a command fails or does not say what it should. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

Result = dict[str, Any]


@dataclass(frozen=True)
class StartupSizes:
    """Repetitions; the defaults are the full benchmark."""

    import_reps: int = 7
    cli_reps: int = 5


STARTUP_FULL = StartupSizes()
STARTUP_QUICK = StartupSizes(import_reps=3, cli_reps=2)

#: The group of this script and its one workload.
STARTUP_GROUPS: dict[str, tuple[str, ...]] = {"startup": ("startup",)}


class VerificationError(AssertionError):
    """A command failed or did not print what it should."""


def run(command: list[str]) -> tuple[float, str]:
    """Run ``command`` to completion; its wall time and stdout. Raises when it fails."""
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no stderr"])[-1]
        raise VerificationError(f"{command} exited with {proc.returncode}: {last}")
    return elapsed, proc.stdout


def timed(command: list[str], reps: int, expect: str) -> list[float]:
    """One untimed run (checked to print ``expect``), then ``reps`` timed runs."""
    _, out = run(command)
    if expect not in out:
        raise VerificationError(f"{command} printed {out[:200]!r}, expected {expect!r} in it")
    return [run(command)[0] for _ in range(reps)]


def startup(lib: str, sizes: StartupSizes) -> Result:
    """The start-up workload of ``lib`` under the current interpreter."""
    python = sys.executable
    _, facts = run([python, "-c", f"import {lib}; print({lib}.__version__, {lib}.__file__)"])
    version, module_file = facts.split(maxsplit=1)
    cli = Path(python).parent / lib
    if not cli.exists():
        raise VerificationError(f"no `{lib}` console script next to {python}")
    bare = timed([python, "-c", "pass"], sizes.import_reps, "")
    imports = timed([python, "-c", f"import {lib}"], sizes.import_reps, "")
    helps = timed([str(cli), "--help"], sizes.cli_reps, "Usage")
    versions = timed([str(cli), "--version"], sizes.cli_reps, version)
    bare_s, import_s = statistics.median(bare), statistics.median(imports)
    return {
        "library_version": version,
        "module_file": module_file.strip(),
        "cli": str(cli),
        "python_pass_s": bare_s,
        "import_s": import_s,
        "import_net_s": import_s - bare_s,
        "help_s": statistics.median(helps),
        "version_s": statistics.median(versions),
        "times_s": {"pass": bare, "import": imports, "help": helps, "version": versions},
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the JSON result on the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", required=True, choices=("runyard", "mlflow"))
    parser.add_argument("--group", default="startup", choices=sorted(STARTUP_GROUPS))
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--json", action="store_true", help="no-op: output is always JSON")
    args = parser.parse_args(argv)
    sizes = STARTUP_QUICK if args.quick else STARTUP_FULL
    ok = True
    try:
        result = startup(args.lib, sizes)
    except Exception as exc:  # report the failure in the JSON as the other scripts do
        traceback.print_exc()
        result, ok = {"error": f"{type(exc).__name__}: {exc}"}, False
    payload = {
        "library": args.lib,
        "version": result.get("library_version", "unknown"),
        "python": platform.python_version(),
        "executable": sys.executable,
        "group": args.group,
        "sizes": asdict(sizes),
        "results": {"startup": result},
    }
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
