"""Background scoring-server processes for the ``local`` target: start one detached, wait until
it answers ``/ping``, tell whether it still runs, stop it (SIGTERM, then SIGKILL).

A server runs in its own session (process group), so stopping it also stops its uvicorn
workers, and neither Ctrl-C in the shell that created it nor that shell's exit reaches it. A pid
read back from a state file is only signalled after ``/proc/<pid>/cmdline`` shows it is still
the scoring server started for that deployment (pids are reused after a reboot).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from runyard.errors import InvalidParameterValue, RunyardError

__all__ = [
    "ServerFailed",
    "check_port_free",
    "connect_host",
    "free_port",
    "is_alive",
    "is_our_server",
    "log_tail",
    "spawn",
    "stop",
    "url_for",
    "wait_until_healthy",
]

#: Processes this interpreter started, kept so they can be reaped (no zombies, no
#: "subprocess is still running" warnings) when they stop while we are still around.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

_SERVING_MODULE = "runyard.serving"


class ServerFailed(RunyardError):
    """The scoring server exited or stayed silent before it answered ``/ping``."""


def connect_host(host: str) -> str:
    """The address to reach a server bound to ``host`` (a wildcard means this machine)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def url_for(host: str, port: int) -> str:
    """``http://host:port`` for a server bound to ``host``, IPv6 literals in brackets."""
    address = connect_host(host)
    if ":" in address:
        address = f"[{address}]"
    return f"http://{address}:{port}"


def _probe_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    if sys.platform != "win32":
        # As servers do: a port whose old connections linger in TIME_WAIT is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def free_port(host: str) -> int:
    """A port nobody listens on at ``host`` now (the OS picks it)."""
    with _probe_socket(host) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def check_port_free(host: str, port: int) -> None:
    """Raise InvalidParameterValue when ``host:port`` cannot be bound (in use, or not ours)."""
    with _probe_socket(host) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise InvalidParameterValue(
                f"Cannot serve on {host}:{port}: {exc.strerror or exc}. "
                "Choose another port with -C port=<port>, or leave it out to get a free one."
            ) from None


def spawn(command: Sequence[str], log_path: Path) -> int:
    """Start ``command`` detached (own session, no stdin, output appended to ``log_path``)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
            proc = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                creationflags=flags,
            )
        else:
            proc = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _proc_file(pid: int, name: str) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return None


def is_alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie counts as gone)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    except OSError:  # pragma: no cover - Windows reports a gone pid this way
        return False
    stat = _proc_file(pid, "stat")
    if stat is not None:
        # "pid (comm) S ...": the state letter follows the last ')'.
        state = stat.rsplit(b")", 1)[-1].split()[0:1]
        return state not in ([b"Z"], [b"X"])
    return True


def is_our_server(pid: int, marker: str) -> bool:
    """True when ``pid`` runs the scoring server and its command line contains ``marker``."""
    if not is_alive(pid):
        return False
    cmdline = _proc_file(pid, "cmdline")
    if cmdline is None:
        return True  # no /proc (macOS): the pid check is all we have
    args = cmdline.decode(errors="replace").split("\0")
    return _SERVING_MODULE in args and any(marker in arg for arg in args)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            os.kill(pid, sig)
        else:
            os.killpg(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.05)
    return not is_alive(pid)


def stop(pid: int, grace_period: float = 10.0) -> None:
    """Stop the server ``pid`` and its workers: SIGTERM, then SIGKILL after ``grace_period``."""
    if is_alive(pid):
        _signal_group(pid, signal.SIGTERM)
        if not _wait_gone(pid, grace_period) and sys.platform != "win32":
            _signal_group(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)
    if sys.platform != "win32":
        # Workers the server left behind share its process group.
        _signal_group(pid, signal.SIGKILL)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5.0)


def log_tail(log_path: Path, lines: int = 8) -> str:
    """The last ``lines`` non-blank lines of the server log ('' when there is none)."""
    try:
        with open(log_path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(fh.tell() - 16384, 0))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    # Tracebacks underline the failing expression with ^ and ~; on one line that is noise.
    kept = [line.rstrip() for line in text.splitlines() if line.strip(" \t^~")]
    return "\n".join(kept[-lines:])


def _ping_status(url: str) -> int | None:
    try:
        return httpx.get(f"{url}/ping", timeout=2.0).status_code
    except httpx.HTTPError:
        return None


def wait_until_healthy(pid: int, url: str, log_path: Path, timeout: float, what: str) -> None:
    """Block until ``url``/ping answers 200; raise ServerFailed (with the log's last lines) if
    the process exits first, /ping answers 404 (no model loaded) or ``timeout`` seconds pass.
    The process is left to the caller."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        if not is_alive(pid):
            child = _CHILDREN.get(pid)
            status = f" with status {child.returncode}" if child is not None else ""
            headline = f"{what} exited{status} before it answered /ping"
            raise ServerFailed(_failure(headline, log_path))
        status_code = _ping_status(url)
        if status_code == 200:
            return
        if status_code == 404:  # the scoring server's answer when its model failed to load
            raise ServerFailed(_failure(f"{what} answered /ping with 404", log_path))
        if time.monotonic() >= deadline:
            raise ServerFailed(
                _failure(f"{what} did not answer {url}/ping within {timeout:g}s", log_path)
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _failure(headline: str, log_path: Path) -> str:
    tail = log_tail(log_path)
    return f"{headline}. Server log (last lines):\n{tail}" if tail else f"{headline} (no output)."
