"""Fixtures and helpers for the tests that talk HTTP to a fake server on loopback.

The fixtures are registered in tests/conftest.py, so a test asks for ``client``,
``fake_server`` or ``connects`` by name; a module that needs another client (more retries)
defines its own ``client`` with :func:`make_client`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from s2kit.http import HttpClient

from .fake_bucket import count_connections, loopback_server

__all__ = ["base_url", "client", "connects", "fake_server", "make_client"]


def make_client(retries: int = 2) -> HttpClient:
    """An HttpClient for fake servers: no back-off, short timeouts."""
    return HttpClient(retries=retries, backoff=0.0, timeout=(2.0, 5.0))


def base_url(server: Any) -> str:
    """The server's root URL without the trailing slash."""
    return str(server.url_for("/")).rstrip("/")


@pytest.fixture
def client() -> Iterator[HttpClient]:
    with make_client() as c:
        yield c


@pytest.fixture
def fake_server() -> Iterator[HTTPServer]:
    yield from loopback_server()


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every connection attempt urllib3 makes ("host:port")."""
    return count_connections(monkeypatch)
