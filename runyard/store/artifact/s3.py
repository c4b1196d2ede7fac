"""Artifacts in an S3-compatible object store (AWS S3, MinIO, Ceph...): ``s3://bucket/prefix``.

The endpoint comes from ``RUNYARD_S3_ENDPOINT_URL`` / ``MLFLOW_S3_ENDPOINT_URL`` (unset: AWS),
credentials from boto3's standard chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, config files, instance roles); nothing is hard-coded. Files at least
``MULTIPART_UPLOAD_MINIMUM_FILE_SIZE`` bytes are uploaded in parts of
``MULTIPART_UPLOAD_CHUNK_SIZE``; streamed writes (the server's proxy) buffer one part at a time and
reads stream the object body, so no transfer holds a whole file in memory.

boto3 is imported on first use (``pip install 'runyard[s3]'``); botocore errors are turned into
:mod:`runyard.errors` classes with a message that names the bucket and what to check.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runyard.config import ENV
from runyard.entities import FileInfo
from runyard.errors import (
    InvalidParameterValue,
    PermissionDenied,
    ResourceDoesNotExist,
    RunyardError,
)
from runyard.store.artifact.base import (
    CHUNK_SIZE,
    clean_artifact_path,
    download_target,
    walk_files,
)

__all__ = ["S3ArtifactRepository", "parse_s3_uri", "s3_client"]

#: S3 refuses parts smaller than this (except the last one of an upload).
MIN_PART_SIZE = 5 * 1024 * 1024
# ``delete_objects`` takes at most this many keys per call.
_DELETE_BATCH = 1000
# Parallel transfers for directories: enough to hide round trips, few enough to be polite.
_MAX_WORKERS = 8

_clients: dict[tuple[str | None, bool], Any] = {}
_clients_lock = threading.Lock()


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` → ``("bucket", "a/b")``; the prefix has no leading/trailing ``/``."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "s3" or not parts.netloc:
        raise InvalidParameterValue(f"Not an S3 URI: '{uri}'. Expected s3://<bucket>[/<prefix>].")
    prefix = parts.path.strip("/")
    if prefix:
        try:
            cleaned = clean_artifact_path(prefix)
        except InvalidParameterValue:
            cleaned = ""
        if cleaned != prefix:
            raise InvalidParameterValue(
                f"Invalid S3 URI '{uri}': the prefix must be a plain path without '.', '..' "
                "or empty segments."
            )
    return parts.netloc, prefix


def _boto3() -> Any:
    try:
        import boto3
    except ImportError as exc:
        raise RunyardError(
            "S3 artifact storage needs boto3, which is not installed: pip install 'runyard[s3]'"
        ) from exc
    return boto3


def s3_client(endpoint_url: str | None = None, verify: bool = True) -> Any:
    """The process's boto3 S3 client for ``(endpoint_url, verify)``, created once.

    boto3 clients are thread-safe once made; making one is not, hence the lock. Each client gets
    its own session, so credentials resolve through the standard AWS chain at creation time.
    """
    key = (endpoint_url, verify)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            boto3 = _boto3()
            from botocore.config import Config

            config = Config(
                signature_version="s3v4",
                max_pool_connections=max(10, _MAX_WORKERS * 2),
                retries={"max_attempts": 5, "mode": "standard"},
            )
            session = boto3.session.Session()
            client = session.client("s3", endpoint_url=endpoint_url, verify=verify, config=config)
            _clients[key] = client
        return client


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _upload_extra_args() -> dict[str, Any]:
    raw = ENV.S3_UPLOAD_EXTRA_ARGS.get()
    if not raw:
        return {}
    try:
        extra = json.loads(raw)
    except ValueError as exc:
        raise InvalidParameterValue(
            f"MLFLOW_S3_UPLOAD_EXTRA_ARGS / RUNYARD_S3_UPLOAD_EXTRA_ARGS is not valid JSON: {exc}"
        ) from exc
    if not isinstance(extra, dict):
        raise InvalidParameterValue(
            "MLFLOW_S3_UPLOAD_EXTRA_ARGS / RUNYARD_S3_UPLOAD_EXTRA_ARGS must be a JSON object, "
            'e.g. {"ServerSideEncryption": "aws:kms"}.'
        )
    return extra


def _content_args(name: str) -> dict[str, Any]:
    """``ContentType``/``ContentEncoding`` guessed from the name, then the configured extras."""
    args: dict[str, Any] = {}
    mime, encoding = mimetypes.guess_type(name)
    if mime:
        args["ContentType"] = mime
    if encoding:
        args["ContentEncoding"] = encoding
    args.update(_upload_extra_args())
    return args


def _part_size() -> int:
    return max(ENV.MULTIPART_UPLOAD_CHUNK_SIZE.get(), MIN_PART_SIZE)


class S3ArtifactRepository:
    """Reads and writes artifacts under ``s3://bucket/prefix``.

    Args:
        artifact_uri: ``s3://<bucket>[/<prefix>]``.
        endpoint_url: an S3-compatible endpoint such as ``http://minio:9000`` (default:
            ``RUNYARD_S3_ENDPOINT_URL`` / ``MLFLOW_S3_ENDPOINT_URL``, else AWS).
        verify_tls: check the endpoint's TLS certificate (default: not ``S3_IGNORE_TLS``).
    """

    def __init__(
        self,
        artifact_uri: str,
        endpoint_url: str | None = None,
        verify_tls: bool | None = None,
    ) -> None:
        self.bucket, self.prefix = parse_s3_uri(artifact_uri)
        _boto3()  # a missing boto3 is reported here, with the command that installs it
        self.artifact_uri = artifact_uri.rstrip("/")
        self.endpoint_url = endpoint_url or ENV.S3_ENDPOINT_URL.get()
        self.verify_tls = (not ENV.S3_IGNORE_TLS.get()) if verify_tls is None else verify_tls

    @property
    def client(self) -> Any:
        """The shared boto3 client for this repository's endpoint."""
        return s3_client(self.endpoint_url, self.verify_tls)

    def _key(self, rel: str) -> str:
        return _join(self.prefix, rel)

    @contextlib.contextmanager
    def _errors(self, action: str, rel: str = "") -> Iterator[None]:
        """Turn botocore/boto3 failures of ``action`` into runyard errors with a clear message."""
        import boto3.exceptions
        import botocore.exceptions as bce

        where = f"s3://{self.bucket}/{self._key(rel)}"
        try:
            yield
        except bce.ClientError as exc:
            raise self._client_error(exc, action, where) from exc
        except boto3.exceptions.S3UploadFailedError as exc:
            cause = exc.__context__
            if isinstance(cause, bce.ClientError):
                raise self._client_error(cause, action, where) from exc
            raise RunyardError(f"Could not {action} {where}: {exc}") from exc
        except bce.NoCredentialsError as exc:
            raise PermissionDenied(
                f"Could not {action} {where}: no AWS credentials were found. Set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE / a credentials "
                "file / an instance role)."
            ) from exc
        except (bce.EndpointConnectionError, bce.ConnectionClosedError) as exc:
            raise RunyardError(
                f"Could not {action} {where}: the S3 endpoint "
                f"{self.endpoint_url or '(AWS default)'} cannot be reached ({exc}). Check "
                "MLFLOW_S3_ENDPOINT_URL / RUNYARD_S3_ENDPOINT_URL.",
                error_code="TEMPORARILY_UNAVAILABLE",
            ) from exc
        except bce.BotoCoreError as exc:
            raise RunyardError(f"Could not {action} {where}: {exc}") from exc

    def _client_error(self, exc: Any, action: str, where: str) -> RunyardError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        detail = error.get("Message") or code
        if code == "NoSuchBucket":
            return ResourceDoesNotExist(
                f"Could not {action} {where}: the bucket '{self.bucket}' does not exist "
                f"at {self.endpoint_url or 'AWS S3'}."
            )
        if code in ("NoSuchKey", "404", "NotFound"):
            return ResourceDoesNotExist(f"No such artifact: {where}")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return PermissionDenied(
                f"Could not {action} {where}: access denied ({detail}). Check the AWS "
                "credentials and the bucket policy."
            )
        return RunyardError(f"Could not {action} {where}: {code}: {detail}")

    # -- writes ------------------------------------------------------------------------------
    def _upload(self, local_file: str, rel: str) -> None:
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=ENV.MULTIPART_UPLOAD_MINIMUM_FILE_SIZE.get(),
            multipart_chunksize=_part_size(),
        )
        with self._errors("upload to", rel):
            self.client.upload_file(
                local_file,
                self.bucket,
                self._key(rel),
                ExtraArgs=_content_args(rel),
                Config=config,
            )

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Upload one file to ``<prefix>/<artifact_path>/<basename>``."""
        rel = _join(clean_artifact_path(artifact_path), os.path.basename(local_file))
        self._upload(local_file, rel)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Upload every file below ``local_dir`` to ``<prefix>/<artifact_path>/``."""
        dest = clean_artifact_path(artifact_path)
        _run_parallel(
            [partial(self._upload, full, _join(dest, rel)) for full, rel in walk_files(local_dir)]
        )

    def write_chunks(self, artifact_path: str, chunks: Iterable[bytes]) -> None:
        """Upload a file from a stream of chunks, holding at most one part in memory.

        A stream shorter than one part (``MULTIPART_UPLOAD_CHUNK_SIZE``, at least 5 MiB) is one
        ``PutObject``; a longer one is a multipart upload, aborted if the stream fails.
        """
        rel = clean_artifact_path(artifact_path)
        if not rel:
            raise InvalidParameterValue("An artifact file path is required.")
        part_size = _part_size()
        buffer = bytearray()
        stream = iter(chunks)
        for chunk in stream:
            buffer += chunk
            if len(buffer) >= part_size:
                self._multipart(rel, buffer, stream, part_size)
                return
        with self._errors("upload to", rel):
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(rel), Body=bytes(buffer), **_content_args(rel)
            )

    def _multipart(
        self, rel: str, buffer: bytearray, stream: Iterator[bytes], part_size: int
    ) -> None:
        key = self._key(rel)
        with self._errors("upload to", rel):
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, **_content_args(rel)
            )["UploadId"]
        parts: list[dict[str, Any]] = []

        def send(data: bytes | bytearray) -> None:
            number = len(parts) + 1
            with self._errors("upload to", rel):
                done = self.client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
                )
            parts.append({"PartNumber": number, "ETag": done["ETag"]})

        def send_full_parts() -> None:
            while len(buffer) >= part_size:
                with memoryview(buffer) as view:
                    part = bytes(view[:part_size])
                del buffer[:part_size]
                send(part)

        try:
            send_full_parts()
            for chunk in stream:
                buffer += chunk
                send_full_parts()
            if buffer or not parts:
                send(buffer)
            with self._errors("upload to", rel):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            # Parts of an unfinished upload are billed until aborted; never leave them behind.
            with contextlib.suppress(RunyardError), self._errors("abort the upload of", rel):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """Remove a file or everything below a directory (missing keys are fine)."""
        rel = clean_artifact_path(artifact_path)
        keys = [self._key(rel)] if rel else []
        keys.extend(key for key, _size in self._iter_objects(rel))
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start : start + _DELETE_BATCH]]
            with self._errors("delete", rel):
                done = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            failed = [e for e in done.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if failed:
                first = failed[0]
                raise RunyardError(
                    f"Could not delete {len(failed)} object(s) under s3://{self.bucket}/"
                    f"{self._key(rel)}: {first.get('Key')}: {first.get('Code')} "
                    f"{first.get('Message', '')}".rstrip()
                )

    # -- reads -------------------------------------------------------------------------------
    def _dir_prefix(self, rel: str) -> str:
        key = self._key(rel)
        return f"{key}/" if key else ""

    def _iter_objects(self, rel: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` of every object below the directory ``rel`` (all pages)."""
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors("list", rel):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._dir_prefix(rel)):
                for obj in page.get("Contents", ()):
                    yield obj["Key"], int(obj["Size"])

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """Direct children of ``path`` (directories and files with sizes), sorted by path."""
        rel = clean_artifact_path(path)
        prefix = self._dir_prefix(rel)
        infos: list[FileInfo] = []
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors("list", rel):
            pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/")
            for page in pages:
                for common in page.get("CommonPrefixes", ()):
                    name = common["Prefix"][len(prefix) :].rstrip("/")
                    if name:
                        infos.append(FileInfo(_join(rel, name), True, None))
                for obj in page.get("Contents", ()):
                    name = obj["Key"][len(prefix) :]
                    # A zero-byte "folder marker" object named like the directory is not a file.
                    if name:
                        infos.append(FileInfo(_join(rel, name), False, int(obj["Size"])))
        return sorted(infos, key=lambda info: info.path)

    def download_artifacts(self, artifact_path: str = "", dst_path: str | None = None) -> str:
        """Download a file or a directory tree into ``dst_path`` (a temp dir by default).

        The copy lands at ``<dst_path>/<artifact_path>``; its local path is returned.
        """
        rel, _, out = download_target(artifact_path, dst_path)
        prefix = self._dir_prefix(rel)
        files = [key[len(prefix) :] for key, _size in self._iter_objects(rel)]
        files = [name for name in files if name and not name.endswith("/")]
        if rel and not files:
            self._download(rel, out)
            return str(out.resolve())
        out.mkdir(parents=True, exist_ok=True)
        tasks: list[Callable[[], None]] = []
        for name in files:
            safe = clean_artifact_path(name)
            tasks.append(partial(self._download, _join(rel, safe), out / safe))
        _run_parallel(tasks)
        return str(out.resolve())

    def _download(self, rel: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self._errors("download", rel):
            self.client.download_file(self.bucket, self._key(rel), str(dest))

    def open_chunks(self, artifact_path: str) -> Iterator[bytes]:
        """Stream a file's bytes in 1 MiB chunks.

        The object is requested at once, so a missing file raises here (before a caller starts
        a response); the body is then read chunk by chunk and closed when the iterator ends.
        """
        rel = clean_artifact_path(artifact_path)
        if not rel:
            raise InvalidParameterValue("An artifact file path is required.")
        with self._errors("download", rel):
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"]
        return self._iter_body(body, rel)

    def _iter_body(self, body: Any, rel: str) -> Iterator[bytes]:
        try:
            with self._errors("download", rel):
                yield from body.iter_chunks(CHUNK_SIZE)
        finally:
            body.close()


def _run_parallel(tasks: list[Callable[[], None]]) -> None:
    """Run transfers on a few threads; the first failure is raised after all have ended."""
    if len(tasks) <= 1:
        for task in tasks:
            task()
        return
    with ThreadPoolExecutor(max_workers=min(_MAX_WORKERS, len(tasks))) as pool:
        futures = [pool.submit(task) for task in tasks]
    for future in futures:
        future.result()
