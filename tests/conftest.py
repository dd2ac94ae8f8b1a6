"""Shared fixtures. Tests never touch the network beyond 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from lore_server import LoreServer, sample_series

import pmureview


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
    # the session's own cache folder: no test reads what a developer's runs (or an earlier session)
    # left in ~/.cache/pmureview, so a clean machine and this one run the same tests
    import tempfile

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="pmureview-tests-cache-")
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # hypothesis is test-only; tests that need it import it themselves
        return
    common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
              "derandomize": False, "print_blob": True}
    settings.register_profile("pmureview-ci", max_examples=2_000, **common)
    settings.register_profile("pmureview-slow", max_examples=50_000, **common)
    settings.load_profile("pmureview-slow" if config.getoption("--slow") else "pmureview-ci")


def load_rule(rel: str):
    """A shipped rule's module (`rules/<pack>/<name>.py`), imported once under a stable name, for
    tests of its helper functions."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "pmureview_rules." + rel.removesuffix(".py").replace("/", ".").replace("-", "_")
    if name not in sys.modules:
        path = Path(__file__).resolve().parent.parent / "rules" / rel
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_SRC = str(Path(pmureview.__file__).resolve().parents[1])


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A private HOME/XDG, a fixed identity, and pmureview importable by child processes."""
    home = tmp_path / "home"
    home.mkdir()
    values = {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Ann Author",
        "GIT_AUTHOR_EMAIL": "ann@example.org",
        "GIT_COMMITTER_NAME": "Ann Author",
        "GIT_COMMITTER_EMAIL": "ann@example.org",
        "PYTHONPATH": os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH")) if p),
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("PMUREVIEW_SKIP", raising=False)
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    return {**os.environ, **values}
