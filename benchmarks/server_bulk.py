"""The large-data raw-HTTP server workloads: a 1 GB artifact through the artifact proxy and a
1,000,000-point metric history, each with the server's memory sampled while it serves them.

Standard library only (plus :mod:`benchmarks.loadgen`, :mod:`benchmarks.rss` and
:mod:`benchmarks.server_api`); :class:`BulkWorkloads` is the base of
:class:`benchmarks.server_workloads.RawWorkloads`, which runs them as a standalone script.

- ``artifacts``: a file of ``artifact_bytes`` random bytes, generated on disk once
  (:func:`make_artifact_file`), is uploaded with ``PUT`` (streamed from disk) and
  downloaded with ``GET``: once untimed, streamed to disk and hashed (size and SHA-256 must
  match), then timed reads that only count the bytes; the client never holds it in memory.
  The server's
  process-tree RSS is sampled every 50 ms during each transfer (:class:`rss.PeakSampler`).
- ``long_history``: one run with a ``long_history_points`` series ``loss`` (logged untimed
  with ``log-batch`` of 1,000 metrics), then, timed: the raw ``metrics/get-history`` read
  the way MLflow's client reads it (``max_results=25000`` and ``page_token`` until there is
  none, see ``mlflow.tracking._tracking_service.client.TrackingServiceClient``), with the
  server's RSS sampled meanwhile; ``metrics/get-history-bulk-interval`` with
  ``max_results=2000`` (MLflow allows up to 2,500); and runyard's
  ``/api/2.0/runyard/metrics/get-history-downsampled`` with ``max_points=2000``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import time
import urllib.parse
from pathlib import Path
from typing import Any

try:
    from benchmarks import rss
    from benchmarks.server_api import (
        API,
        ARTIFACTS_API,
        ApiClient,
        Result,
        VerificationError,
        check,
        proxied_artifact_path,
    )
except ImportError:  # run as a script: benchmarks/ itself is sys.path[0]
    import rss  # type: ignore[no-redef]
    from server_api import (  # type: ignore[no-redef]
        API,
        ARTIFACTS_API,
        ApiClient,
        Result,
        VerificationError,
        check,
        proxied_artifact_path,
    )

RUNYARD_API = "/api/2.0/runyard"
GENERATE_CHUNK = 8 << 20
LOG_CHUNK = 1_000  # metrics per log-batch request (MLflow's limit)


def make_artifact_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path`` in 8 MiB pieces; their SHA-256 hex digest."""
    sha = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(GENERATE_CHUNK, left))
            sha.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return sha.hexdigest()


def local_artifact_dir(artifact_uri: str) -> Path:
    """The directory of a run's ``file://`` (or plain path) artifact URI."""
    parsed = urllib.parse.urlparse(artifact_uri)
    check(parsed.scheme in ("file", ""), f"run artifact URI {artifact_uri!r} is not local")
    return Path(urllib.parse.unquote(parsed.path))


def _mb(peaks: list[int | None]) -> float | None:
    known = [p for p in peaks if p is not None]
    return max(known) / 1e6 if known else None


class BulkWorkloads(ApiClient):
    """The artifact and long-history workloads (see the module docstring)."""

    _long_history_run_id: str | None = None
    _long_history_error: str | None = None
    _long_history_log_s = 0.0

    @property
    def long_points(self) -> int:
        """Points of the long series on this server: MLflow gets a shorter one (its
        per-point rates are compared, see ``ServerSizes.mlflow_long_history_points``)."""
        if self.server == "mlflow":
            return int(self.sizes.mlflow_long_history_points)
        return int(self.sizes.long_history_points)

    # -- artifacts ------------------------------------------------------------------

    def _artifact_source(self) -> tuple[Path, str]:
        """The prepared file, or one generated now in the working directory."""
        if self.artifact_file is not None:
            prepared, digest = Path(self.artifact_file[0]), self.artifact_file[1]
            check(
                prepared.stat().st_size == self.sizes.artifact_bytes,
                f"{prepared} is not {self.sizes.artifact_bytes} bytes",
            )
            return prepared, digest
        path = Path.cwd() / "artifact-source.bin"
        return path, make_artifact_file(path, self.sizes.artifact_bytes)

    def artifacts_workload(self) -> Result:
        """Upload and download of one ``artifact_bytes`` file, streamed; median MB/s of reps,
        and the server's RSS peak during the transfers."""
        return self._artifacts(self.sizes.artifact_bytes, *self._artifact_source())

    def small_artifacts_workload(self) -> Result:
        """The same with a ``small_artifact_bytes`` file (generated in the working directory)."""
        nbytes = self.sizes.small_artifact_bytes
        path = Path.cwd() / "small-artifact.bin"
        return self._artifacts(nbytes, path, make_artifact_file(path, nbytes))

    def _artifacts(self, nbytes: int, source: Path, digest: str) -> Result:
        s = self.sizes
        info = self.create_run(self.create_experiment(f"bench-artifacts-{nbytes}"), "artifacts")
        result: Result = {"bytes": nbytes, "reps": s.artifact_reps}
        result["mode"] = self.artifacts_mode
        if self.artifacts_mode == "proxied":
            base = f"{ARTIFACTS_API}/{proxied_artifact_path(info['artifact_uri'])}"
            up_times, up_peaks = [], []
            for rep in range(s.artifact_reps):
                with rss.PeakSampler(self.server_pid) as sampler:
                    start = time.perf_counter()
                    status, content = self.http.upload("PUT", f"{base}/bench-{rep}.bin", source)
                    up_times.append(time.perf_counter() - start)
                check(status == 200, f"upload: HTTP {status}: {content[:300]!r}")
                up_peaks.append(sampler.peak_bytes)
            download_url = f"{base}/bench-0.bin"
            download_params: dict[str, str] | None = None
            result["upload_mb_s"] = nbytes / 1e6 / statistics.median(up_times)
            result["upload_times_s"] = up_times
            result["upload_rss_peak_mb"] = _mb(up_peaks)
        else:
            # No proxied upload: show that the server refuses it, then place the file
            # where its local artifact root says (as a client on this host would).
            probe, _ = self.http.request("PUT", f"{ARTIFACTS_API}/probe/bench.bin", body=b"x")
            check(probe >= 400, f"PUT {ARTIFACTS_API} unexpectedly answered {probe}")
            result["upload_mb_s"] = result["upload_rss_peak_mb"] = None
            result["upload_na"] = result["upload_rss_peak_mb_na"] = (
                f"no proxied artifact upload (PUT {ARTIFACTS_API}/… answers HTTP "
                f"{probe}); clients write to the artifact root directly"
            )
            target = local_artifact_dir(info["artifact_uri"]) / "bench-0.bin"
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)  # same file system: no second GB written
            except OSError:
                shutil.copyfile(source, target)
            download_url = f"{API}/artifacts/get"
            download_params = {"run_id": info["run_id"], "path": "bench-0.bin"}
            result["download_api"] = "GET /api/2.0/mlflow/artifacts/get"
        # Checked once, untimed: streamed to disk, size and SHA-256 compared. The timed reads
        # only count the bytes (hashing is the client's cost, not the server's).
        sink_path = Path.cwd() / "downloaded.bin"
        with sink_path.open("wb") as sink:
            status, size, sha = self.http.download(download_url, download_params, sink)
        on_disk = sink_path.stat().st_size
        sink_path.unlink()
        check(status == 200, f"download: HTTP {status}")
        check(
            size == on_disk == nbytes and sha == digest,
            f"download returned {size} bytes ({on_disk} written) that differ from the "
            f"{nbytes} uploaded",
        )
        down_times, down_peaks = [], []
        for _ in range(s.artifact_reps):
            with rss.PeakSampler(self.server_pid) as sampler:
                start = time.perf_counter()
                status, size, _ = self.http.download(download_url, download_params, digest=False)
                down_times.append(time.perf_counter() - start)
            check(status == 200, f"download: HTTP {status}")
            check(size == nbytes, f"download returned {size} bytes")
            down_peaks.append(sampler.peak_bytes)
        result["download_mb_s"] = nbytes / 1e6 / statistics.median(down_times)
        result["download_times_s"] = down_times
        result["download_rss_peak_mb"] = _mb(down_peaks)
        return result

    # -- a 1,000,000-point history ------------------------------------------------------

    def long_history_run(self) -> str:
        """The run holding the long ``loss`` series, logged on first use (untimed)."""
        if self._long_history_error is not None:
            raise VerificationError(
                f"the long series could not be logged: {self._long_history_error}"
            )
        run_id = self._long_history_run_id
        if run_id is None:
            try:
                experiment_id = self.create_experiment("bench-long-history")
                run_id = str(self.create_run(experiment_id, "long-history")["run_id"])
                started = time.perf_counter()
                self.log_series(run_id, "loss", self.long_points, LOG_CHUNK)
            except Exception as exc:
                self._long_history_error = f"{type(exc).__name__}: {exc}"
                raise
            self._long_history_log_s = time.perf_counter() - started
            self._long_history_run_id = run_id
        return run_id

    def paged_history(self, run_id: str) -> tuple[list[int], int, float]:
        """Every point of ``loss`` as MLflow's client reads it: their steps, the pages and
        the exchange seconds (decoding the pages is not timed).

        ``GET metrics/get-history`` with ``run_uuid``, ``run_id``, ``metric_key`` and
        ``max_results``, then the same with each ``next_page_token`` until there is none.
        """
        page = str(self.sizes.long_history_page)
        params = {"run_uuid": run_id, "run_id": run_id, "metric_key": "loss", "max_results": page}
        steps: list[int] = []
        seconds, pages = 0.0, 0
        limit = self.long_points // self.sizes.long_history_page + 2
        while pages < limit:
            status, content, elapsed = self.timed_get(f"{API}/metrics/get-history", params)
            seconds += elapsed
            pages += 1
            check(status == 200, f"get-history: HTTP {status}: {content[:300]!r}")
            body = json.loads(content) if content else {}
            steps.extend(int(point["step"]) for point in body.get("metrics", []))
            token = body.get("next_page_token")
            if not token:
                return steps, pages, seconds
            params["page_token"] = token
        raise VerificationError(f"get-history kept returning page tokens after {pages} pages")

    def history_paged_workload(self) -> Result:
        """The client's paged read of the long series; median of reps, server RSS peak."""
        s = self.sizes
        run_id = self.long_history_run()
        times, peaks, pages = [], [], 0
        for _ in range(s.long_history_reps):
            with rss.PeakSampler(self.server_pid) as sampler:
                steps, pages, elapsed = self.paged_history(run_id)
            times.append(elapsed)
            peaks.append(sampler.peak_bytes)
            check(
                len(steps) == self.long_points
                and len(set(steps)) == self.long_points
                and min(steps) == 0
                and max(steps) == self.long_points - 1,
                f"paged get-history returned {len(steps)} points ({len(set(steps))} distinct "
                f"steps), expected steps 0 … {self.long_points - 1} once each",
            )
        expected_pages = -(-self.long_points // s.long_history_page)
        result: Result = {
            "points": self.long_points,
            "page_size": s.long_history_page,
            "pages": pages,
            "reps": len(times),
            "median_s": statistics.median(times),
            "points_per_s": self.long_points / statistics.median(times),
            "times_s": times,
            "rss_peak_mb": _mb(peaks),
            "log_s": self._long_history_log_s,
        }
        if pages < expected_pages:
            result["note"] = (
                f"ignores max_results on metrics/get-history: all {self.long_points:,} "
                f"points came in {pages} page{'s' if pages > 1 else ''}, not {expected_pages}"
            )
        return result

    def _sampled(
        self, path: str, params: dict[str, str], name: str, pick: Any
    ) -> Result | tuple[list[dict[str, Any]], list[float], Result]:
        """An untimed first request (verified), then ``long_history_reps`` timed ones.

        ``pick`` turns a decoded answer into (points, extra fields). An HTTP 404 on the
        first request means the server has no such endpoint: returns the n/a result.
        """
        status, content, _ = self.timed_get(path, params)
        if status == 404 and self.server != "runyard":
            reason = f"no {name} endpoint (HTTP 404)"
            return {"median_ms": None, "median_ms_na": reason}
        check(status == 200, f"{name}: HTTP {status}: {content[:300]!r}")
        points, extra = pick(json.loads(content))
        times = []
        for _ in range(self.sizes.long_history_reps):
            status, content, elapsed = self.timed_get(path, params)
            check(status == 200, f"{name}: HTTP {status}: {content[:300]!r}")
            times.append(elapsed)
            check(len(pick(json.loads(content))[0]) == len(points), f"{name}: answers changed")
        return points, times, extra

    def _check_sampled(self, name: str, points: list[dict[str, Any]], limit: int) -> list[int]:
        total = self.long_points
        steps = [int(p["step"]) for p in points]
        wanted = min(total, limit)
        check(
            max(1, wanted // 4) <= len(points) <= wanted
            and steps == sorted(set(steps))
            and steps[0] == 0
            and steps[-1] == total - 1,
            f"{name} returned {len(points)} points (steps {steps[:2]} … {steps[-2:]}), expected "
            f"at most {wanted} in step order from 0 to {total - 1}",
        )
        return steps

    def history_bulk_workload(self) -> Result:
        """``metrics/get-history-bulk-interval`` of the long series, ``downsample_points``."""
        limit = self.sizes.downsample_points
        run_id = self.long_history_run()
        params = {"run_ids": run_id, "metric_key": "loss", "max_results": str(limit)}
        outcome = self._sampled(
            f"{API}/metrics/get-history-bulk-interval",
            params,
            "metrics/get-history-bulk-interval",
            lambda body: (body.get("metrics", []), {}),
        )
        if isinstance(outcome, dict):
            return outcome
        points, times, _ = outcome
        for point in points:
            check(point.get("run_id") == run_id, f"bulk-interval point of another run: {point}")
        self._check_sampled("get-history-bulk-interval", points, limit)
        return self._sampled_result(points, times, limit)

    def history_downsampled_workload(self) -> Result:
        """runyard's ``metrics/get-history-downsampled`` of the long series."""
        limit = self.sizes.downsample_points
        run_id = self.long_history_run()
        params = {"run_ids": run_id, "metric_key": "loss", "max_points": str(limit)}

        def pick(body: dict[str, Any]) -> tuple[list[dict[str, Any]], Result]:
            series = body.get("series", [])
            check(len(series) == 1, f"get-history-downsampled: {len(series)} series, expected 1")
            return series[0].get("points", []), {"total_points": series[0].get("total_points")}

        outcome = self._sampled(
            f"{RUNYARD_API}/metrics/get-history-downsampled",
            params,
            "runyard metrics/get-history-downsampled",
            pick,
        )
        if isinstance(outcome, dict):
            outcome["median_ms_na"] = "a runyard endpoint (HTTP 404 here)"
            return outcome
        points, times, extra = outcome
        total = self.long_points
        check(extra["total_points"] == total, f"total_points {extra['total_points']} != {total}")
        self._check_sampled("get-history-downsampled", points, limit)
        return self._sampled_result(points, times, limit)

    def _sampled_result(self, points: list[Any], times: list[float], limit: int) -> Result:
        return {
            "points": self.long_points,
            "max_points": limit,
            "returned": len(points),
            "reps": len(times),
            "median_ms": statistics.median(times) * 1000,
            "times_ms": [t * 1000 for t in times],
        }
