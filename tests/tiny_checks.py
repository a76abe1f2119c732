"""Checks shared by the tiny-model builder tests: file hashes and times, and no network access."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from tiny_build import file_hashes  # noqa: F401  (the builder's own, shared with its tests)


def file_mtimes(root: Path) -> dict[str, int]:
    return {path.relative_to(root).as_posix(): path.stat().st_mtime_ns for path in [root, *root.rglob("*")]}


def _refuse_network(*args, **kwargs):
    raise OSError("network access attempted in an offline test")


def block_network(patch: pytest.MonkeyPatch) -> None:
    patch.setattr(socket.socket, "connect", _refuse_network)
    patch.setattr(socket, "create_connection", _refuse_network)
