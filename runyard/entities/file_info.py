"""Artifact listing entries."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FileInfo"]


@dataclass(frozen=True, slots=True)
class FileInfo:
    """An artifact path relative to the run's artifact root; ``file_size`` is None for dirs."""

    path: str
    is_dir: bool
    file_size: int | None = None
