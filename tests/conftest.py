"""Shared fixtures. Tests never touch the network beyond 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lore_server import LoreServer, sample_series


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment would route b4's 127.0.0.1 requests away from the fake servers.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("PMUREVIEW_MIDMASK", raising=False)


@pytest.fixture
def lore_server() -> Iterator[LoreServer]:
    """A fake lore server holding `sample_series()` under /test/."""
    with LoreServer(sample_series()) as srv:
        yield srv
