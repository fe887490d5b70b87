"""Access to the real services tests need: skip on a laptop without them, fail in CI."""

from __future__ import annotations

import os
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(service: str, reachable: bool, how: str) -> None:
    if reachable:
        return
    message = f"{service} is not available ({how})"
    if IN_CI:
        pytest.fail(message + "; CI must provide it", pytrace=False)
    pytest.skip(message)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0
