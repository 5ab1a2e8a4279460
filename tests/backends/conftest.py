"""Run the one conformance suite against every backend configuration.

Each configuration is a fixture ``adapter_<id>`` (see ``adapters.py``) defined in a
``config_*.py`` module next to this file. ``pytest_generate_tests`` parametrizes every
test that asks for ``adapter`` over all of them, so each test id names its
configuration, e.g. ``test_round_trip_bytes[redis-cluster]``. Outage tests are only
generated for configurations with a server to stop, and item-limit tests only for
servers that have one: a test that does not apply is not collected, rather than skipped.
"""

from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass

import pytest

from tests.backends.adapters import AdapterUnderTest

# Pull each configuration module's ``adapter_*`` fixtures into this conftest. A module
# that cannot be imported leaves its fixtures undefined, so its tests error with
# "fixture not found": visible, never silently skipped.
for _module_name in (
    "config_compressed",
    "config_disk",
    "config_django",
    "config_locmem",
    "config_memcached",
    "config_near",
    "config_redis",
    "config_sentinel",
):
    try:
        _module = importlib.import_module(f"tests.backends.{_module_name}")
    except ModuleNotFoundError as _error:
        if _error.name != f"tests.backends.{_module_name}":
            raise
        continue
    globals().update(
        {name: value for name, value in vars(_module).items() if not name.startswith("_")}
    )


@dataclass(frozen=True)
class Configuration:
    """What the suite knows about a configuration before its fixture runs."""

    id: str
    has_server: bool = False
    has_item_limit: bool = False

    @property
    def fixture_name(self) -> str:
        return "adapter_" + self.id.replace("-", "_")


CONFIGURATIONS = [
    Configuration("redis", has_server=True),
    Configuration("redis-cluster", has_server=True),
    Configuration("redis-sentinel", has_server=True),
    Configuration("memcached", has_server=True, has_item_limit=True),
    Configuration("memcached-3", has_server=True, has_item_limit=True),
    Configuration("disk"),
    Configuration("disk-fanout"),
    Configuration("django-locmem"),
    Configuration("django-redis", has_server=True),
    Configuration("locmem"),
    # The same adapters through the compression layer (zstd over 1024 bytes).
    Configuration("redis-zstd", has_server=True),
    Configuration("memcached-zstd", has_server=True),
    Configuration("disk-zstd"),
    Configuration("locmem-zstd"),
    # Redis behind the per-process near cache (NEAR_CACHE), over the compression layer.
    Configuration("redis-near", has_server=True),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "adapter" not in metafunc.fixturenames:
        return
    selected = CONFIGURATIONS
    if metafunc.definition.get_closest_marker("needs_server"):
        selected = [config for config in selected if config.has_server]
    if metafunc.definition.get_closest_marker("needs_item_limit"):
        selected = [config for config in selected if config.has_item_limit]
    metafunc.parametrize(
        "adapter",
        [config.fixture_name for config in selected],
        ids=[config.id for config in selected],
        indirect=True,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_server: only for configurations with a server")
    config.addinivalue_line("markers", "needs_item_limit: only for servers with an item size limit")


@pytest.fixture
def adapter(request: pytest.FixtureRequest) -> AdapterUnderTest:
    """The configuration under test, resolved from its fixture name."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def make_backend(adapter: AdapterUnderTest):
    """Build backends on the configuration's server, each in a fresh namespace.

    Every backend made here is cleared and closed after the test, so tests never see
    each other's data even though the servers live for the whole session.
    """
    made = []

    def make(**kwargs):
        kwargs.setdefault("key_prefix", f"t{uuid.uuid4().hex[:12]}")
        backend = adapter.make(**kwargs)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        try:
            backend.clear()
        finally:
            backend.close()


@pytest.fixture
def backend(make_backend):
    """A backend in a namespace of its own."""
    return make_backend()


@pytest.fixture
def round_trips(adapter: AdapterUnderTest, backend):
    """Counter of requests sent to the server(s) by ``backend``, read on the wire side."""
    return adapter.round_trips(backend)
