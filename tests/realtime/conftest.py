"""Helpers for scale-out tests (the throwaway Redis fixture lives in tests/conftest.py)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
