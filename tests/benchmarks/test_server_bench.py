"""The server suite's building blocks: RSS sampling, streamed transfers, rows and footnotes.

The workloads themselves run against real servers in CI through ``python -m benchmarks
--smoke`` (.ci/run), not here.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from benchmarks import loadgen, rss
from benchmarks.__main__ import parse_args
from benchmarks.server_bulk import make_artifact_file
from benchmarks.server_report import (
    WORKERS,
    ServerCollected,
    render_server_table,
    server_rows,
)
from benchmarks.server_suite import (
    ALL_GROUPS,
    GROUP_ORDER,
    GROUP_SERVERS,
    WORKERS_GROUPS,
    SuiteOptions,
    workload_job,
)
from benchmarks.server_workloads import GROUPS, SERVER_FULL, SERVER_QUICK
from benchmarks.servers import ServerSpec, with_workers

MB = 1_000_000


def test_peak_sampler_sees_memory_touched_inside_the_block() -> None:
    before, _ = rss.tree_rss_bytes(os.getpid())
    with rss.PeakSampler(os.getpid(), interval_s=0.01) as sampler:
        block = b"\x01" * (64 * MB)  # written, so resident
        time.sleep(0.1)
    del block
    assert sampler.peak_bytes is not None
    assert sampler.samples >= 3
    assert sampler.peak_bytes >= before + 60 * MB


def test_peak_sampler_without_a_pid_measures_nothing() -> None:
    with rss.PeakSampler(None) as sampler:
        pass
    assert sampler.peak_bytes is None
    assert sampler.peak_mb is None
    assert sampler.samples == 0


@pytest.mark.slow
def test_process_tree_includes_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in rss.process_tree(os.getpid())
        total, count = rss.tree_rss_bytes(os.getpid())
        assert count >= 2
        assert total > rss.vm_rss_bytes(os.getpid())
    finally:
        child.kill()
        child.wait()


def test_make_artifact_file_writes_the_size_and_returns_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    digest = make_artifact_file(path, 20 * (1 << 20) + 3)  # crosses the 8 MiB pieces
    data = path.read_bytes()
    assert len(data) == 20 * (1 << 20) + 3
    assert hashlib.sha256(data).hexdigest() == digest


class _Sink(http.server.BaseHTTPRequestHandler):
    """PUT stores the body's size and hash (read in pieces); GET sends a stored file."""

    stored: dict[str, tuple[int, str]] = {}
    serve: Path

    def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
        left = int(self.headers["Content-Length"])
        sha, size = hashlib.sha256(), 0
        while left:
            chunk = self.rfile.read(min(left, 1 << 16))
            sha.update(chunk)
            size += len(chunk)
            left -= len(chunk)
        self.stored[self.path] = (size, sha.hexdigest())
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        data = self.serve.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


@pytest.fixture
def sink_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    source = tmp_path / "source.bin"
    _Sink.serve = source
    _Sink.stored = {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", source
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("kind", ["stdlib", "httpx"])
def test_upload_and_download_stream_files(
    kind: str, sink_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, source = sink_server
    digest = make_artifact_file(source, 3 * (1 << 20) + 17)
    client = loadgen.connect(kind, url)
    try:
        status, _ = client.upload("PUT", "/up/file.bin", source)
        assert status == 200
        assert _Sink.stored["/up/file.bin"] == (source.stat().st_size, digest)
        target = tmp_path / "down.bin"
        with target.open("wb") as sink:
            status, size, sha = client.download("/down", None, sink)
        assert (status, size, sha) == (200, source.stat().st_size, digest)
        assert target.read_bytes() == source.read_bytes()
    finally:
        client.close()


def test_every_raw_group_runs_in_the_suite() -> None:
    assert set(GROUPS) <= set(GROUP_ORDER)
    assert GROUPS["long_history"] == ("history_paged", "history_bulk", "history_downsampled")
    assert set(ALL_GROUPS) == set(GROUP_ORDER)


def test_quick_sizes_are_small_and_page_the_long_history() -> None:
    quick = SERVER_QUICK
    assert quick.artifact_bytes == 20 * MB
    assert quick.long_history_points == 20_000
    assert quick.long_history_points > quick.long_history_page  # paging runs
    assert SERVER_FULL.artifact_bytes == 1_000 * MB
    assert SERVER_FULL.long_history_points == 1_000_000
    assert SERVER_FULL.long_history_page == 25_000  # MLflow's client page
    assert SERVER_FULL.downsample_points <= 2_500  # bulk-interval's limit


def test_rows_order_and_mlflow_size_in_labels() -> None:
    rows = server_rows(SERVER_FULL)
    workloads = [row.workload for row in rows]
    assert (
        workloads.index("history") < workloads.index("history_paged") < workloads.index("runs_get")
    )
    peaks = [i for i, row in enumerate(rows) if "peak" in row.label]
    assert len(peaks) == 4
    assert max(peaks) < workloads.index("server")
    paged = rows[workloads.index("history_paged")]
    assert "1,000,000-point series (MLflow: 250,000 points, per-point rate)" in paged.label
    assert "1 GB" in rows[peaks[0]].label
    same = replace(SERVER_FULL, mlflow_long_history_points=1_000_000)
    assert all("MLflow:" not in row.label for row in server_rows(same))


def _collected() -> ServerCollected:
    data = ServerCollected(ALL_GROUPS)
    paged = {"points_per_s": 1e6, "rss_peak_mb": 90.0}
    data.values = {
        "runyard": {"history_paged": paged, "history_downsampled": {"median_ms": 12.0}},
        "mlflow": {
            "history_paged": {"points_per_s": 1e4, "rss_peak_mb": 2500.0},
            "history_downsampled": {"median_ms": None, "median_ms_na": "a runyard endpoint"},
        },
        "fasttrackml": {
            "history_paged": {"points_per_s": 2e5, "rss_peak_mb": 60.0, "note": "one page"},
            "history_downsampled": {"median_ms": None, "median_ms_na": "a runyard endpoint"},
        },
    }
    return data


def test_table_shares_footnotes_and_marks_notes() -> None:
    table = render_server_table(_collected(), SERVER_FULL, quick=False)
    lines = table.splitlines()
    paged = next(line for line in lines if "paged as the client reads it" in line)
    assert "1,000,000 points/s" in paged
    assert "200,000 points/s (1)" in paged
    assert "100× faster" in paged
    assert "✅ met" in paged
    downsampled = next(line for line in lines if "get-history-downsampled" in line)
    assert downsampled.count("n/a (2)") == 2
    assert "1. FastTrackML: one page." in lines
    assert "2. MLflow, FastTrackML: a runyard endpoint." in lines


def test_the_workers_row_compares_runyard_workers_with_the_others_plain_figures() -> None:
    data = ServerCollected(ALL_GROUPS)
    data.values = {
        "runyard": {
            "runs_get": {"requests_per_s": 2_000.0},
            "runs_get_workers": {"requests_per_s": 4_000.0},
        },
        "mlflow": {"runs_get": {"requests_per_s": 100.0}},
        "fasttrackml": {"runs_get": {"requests_per_s": 3_200.0}},
    }
    lines = render_server_table(data, SERVER_FULL, quick=False).splitlines()
    plain = next(line for line in lines if "raw: runs/get, 16" in line)
    workers = next(line for line in lines if f"`--workers {WORKERS}`" in line)
    assert "2,000 req/s" in plain
    assert "1.6× slower" in plain
    cells = [c.strip() for c in workers.split("|")]
    assert cells[2:5] == ["4,000 req/s", "100 req/s", "3,200 req/s"]
    assert cells[5:7] == ["40.0× faster", "1.25× faster"]
    assert GROUPS["concurrency_workers"] == ("runs_get_workers",)
    assert "concurrency_workers" in WORKERS_GROUPS


def test_runyard_client_rows_compare_with_the_official_client_sync_and_async() -> None:
    data = ServerCollected(ALL_GROUPS)
    sync = {"calls_per_s": 120.0, "end_to_end_calls_per_s": 100.0, "p50_ms": 8.0}
    data.values = {
        "runyard": {
            "client_log_metric": {"calls_per_s": 450.0, "end_to_end_calls_per_s": 400.0},
            "client_log_metric_own": {"end_to_end_calls_per_s": 20_000.0, "p50_ms": 0.004},
            "client_runs_own": {"runs_per_s": 250.0},
        },
        "mlflow": {
            "client_log_metric": sync,
            "client_log_metric_async": {"end_to_end_calls_per_s": 200.0},
            "client_runs": {"runs_per_s": 17.0},
        },
    }
    lines = render_server_table(data, SERVER_FULL, quick=False).splitlines()
    official = next(line for line in lines if "official client: calls/s over the loop" in line)
    own = next(line for line in lines if "all stored" in line)
    against_async = next(line for line in lines if "asynchronous logging" in line)
    runs_own = next(line for line in lines if "runs as above, runyard's client" in line)
    assert [c.strip() for c in official.split("|")][-3:-1] == ["", ""]  # no target there
    cells = [c.strip() for c in own.split("|")]
    assert cells[2:4] == ["20,000 calls/s", "100 calls/s"]
    assert "200× faster" in own
    assert "✅ met" in own
    assert [c.strip() for c in against_async.split("|")][2:4] == ["20,000 calls/s", "200 calls/s"]
    assert "250 runs/s | 17.0 runs/s" in runs_own


def test_client_groups_run_the_right_client_on_the_right_servers(tmp_path: Path) -> None:
    assert GROUP_SERVERS["client_log_metric_own"] == ("runyard",)
    assert GROUP_SERVERS["client_runs_own"] == ("runyard",)
    assert "runyard" not in GROUP_SERVERS["client_log_metric_async"]
    assert "client_log_metric" not in GROUP_SERVERS  # every server
    spec = ServerSpec("runyard", lambda scratch, port: ["runyard"])
    server = SimpleNamespace(url="http://127.0.0.1:5999", process=SimpleNamespace(pid=1))
    options = SuiteOptions(("runyard",), quick=True, install=False, mlflow_workers="1")
    mlflow_python = tmp_path / "mlflow-python"

    def job(group: str) -> Any:
        return workload_job(spec, group, server, options, mlflow_python)  # type: ignore[arg-type]

    own, official, in_async = (
        job("client_log_metric_own"),
        job("client_log_metric"),
        job("client_log_metric_async"),
    )
    assert own.python == Path(sys.executable)
    assert own.args[-2:] == ("--library", "runyard")
    assert official.python == in_async.python == mlflow_python
    assert "--library" not in official.args
    assert in_async.env["MLFLOW_ENABLE_ASYNC_LOGGING"] == "true"
    assert "MLFLOW_ENABLE_ASYNC_LOGGING" not in official.env
    assert own.env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5999"


def test_with_workers_appends_the_option_and_names_the_variant(tmp_path: Path) -> None:
    spec = ServerSpec("runyard", lambda scratch, port: ["runyard", "server", "--port", str(port)])
    more = with_workers(spec, 3)
    assert more.command(tmp_path, 5000) == ["runyard", "server", "--port", "5000", "--workers", "3"]
    assert (more.name, more.variant) == ("runyard", " (--workers 3)")


def test_default_run_is_the_core_on_both_backends() -> None:
    args = parse_args([])
    assert args.suite == "core"
    assert args.backend is None
    assert parse_args(["--servers", "--backend", "both"]).backend == "both"
