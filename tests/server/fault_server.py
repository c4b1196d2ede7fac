"""A ``runyard server`` process on any backend store, for fault-injection tests.

:func:`launch` starts one (SQLite or PostgreSQL URI) on a free port and waits for ``/health``;
:meth:`ServerProcess.kill` sends SIGKILL, :meth:`ServerProcess.terminate` SIGTERM, and
:meth:`ServerProcess.restart` starts a new process on the same store and port. Unlike
``tests/live_server.py`` (a SQLite server per session) these servers are meant to die.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import FOREIGN_ENV
from tests.live_server import _free_port, wait_healthy

__all__ = ["ServerProcess", "launch"]


@dataclass
class ServerProcess:
    """One ``runyard server`` process; ``restart`` replaces it with a new one."""

    backend: str
    root: Path
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        """The base URL (http://127.0.0.1:PORT)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where the current process writes its output."""
        return self.root / f"server-{self.starts}.log"

    def start(self) -> None:
        """Start the process and wait until it answers ``/health``."""
        command = [
            str(Path(sys.executable).parent / "runyard"), "server",
            "--backend-store-uri", self.backend,
            "--artifacts-destination", str(self.root / "art"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
        env.update(self.extra_env)
        self.starts += 1
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        if not wait_healthy(self.url, self.process, timeout=60):
            self.kill()
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"runyard server did not start:\n{tail}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, open transactions are cut off."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def terminate(self) -> None:
        """SIGTERM: uvicorn's graceful shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30) -> int:
        """Wait for the process to end; its exit status."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def restart(self) -> None:
        """Kill the running process (if any) and start a new one on the same store and port."""
        self.kill()
        self.start()

    def logs(self) -> str:
        """Everything every process of this server wrote."""
        return "".join(
            (self.root / f"server-{n}.log").read_text(errors="replace")
            for n in range(1, self.starts + 1)
        )

    def stop(self) -> None:
        """End the process (SIGTERM, then SIGKILL after 15 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def launch(backend: str, root: Path, extra_env: dict[str, str] | None = None) -> ServerProcess:
    """A started server on ``backend`` (its artifacts and logs under ``root``)."""
    server = ServerProcess(backend, root, _free_port(), dict(extra_env or {}))
    server.start()
    return server
