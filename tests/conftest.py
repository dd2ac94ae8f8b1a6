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


# -- --slow: the long robustness runs (hypothesis at 50,000 examples per property, all rules over the
# 50,000-line corpus hunk). Property tests read their example count from the active profile.

def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False,
                     help="long runs: 50,000 hypothesis examples per property, the big corpus cases "
                          "through all rules")


def pytest_configure(config: pytest.Config) -> None:
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # hypothesis is test-only; tests that need it import it themselves
        return
    common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
              "derandomize": False, "print_blob": True}
    settings.register_profile("pmureview-ci", max_examples=2_000, **common)
    settings.register_profile("pmureview-slow", max_examples=50_000, **common)
    settings.load_profile("pmureview-slow" if config.getoption("--slow") else "pmureview-ci")
