"""s2kit.http against a real loopback HTTP server (pytest-httpserver, werkzeug)."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest
from srtm_fixtures import no_sleep, serve_files

from s2kit.errors import S2kitError
from s2kit.http import HttpClient, HttpError, HttpNotFound, redact_url

PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def client(**kwargs: object) -> HttpClient:
    kwargs.setdefault("retries", 2)
    kwargs.setdefault("backoff", 0.0)
    kwargs.setdefault("timeout", (2.0, 5.0))
    return HttpClient(sleep=no_sleep(), **kwargs)  # type: ignore[arg-type]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_download_whole_file(httpserver, tmp_path: Path) -> None:
    server = serve_files(httpserver, {"/f.zip": PAYLOAD})
    with client() as http:
        result = http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", expected_sha256=SHA)
    assert (tmp_path / "f.zip").read_bytes() == PAYLOAD
    assert (result.size, result.sha256, result.resumed) == (len(PAYLOAD), SHA, False)
    assert result.etag is not None
    assert leftovers(tmp_path) == ["f.zip"]  # no .part, no .part.json
    assert server.requests == [("/f.zip", None)]


def test_404_is_not_found_and_writes_nothing(httpserver, tmp_path: Path) -> None:
    serve_files(httpserver, {})
    with client() as http, pytest.raises(HttpNotFound, match=r"expected the file, found HTTP 404"):
        http.download(httpserver.url_for("/missing.zip"), tmp_path / "missing.zip")
    assert leftovers(tmp_path) == []


def test_transient_500_is_retried(httpserver, tmp_path: Path) -> None:
    server = serve_files(
        httpserver, {"/f.zip": PAYLOAD}, faults={"/f.zip": [("status", 500), ("status", 503)]}
    )
    with client(retries=3) as http:
        http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip")
    assert (tmp_path / "f.zip").read_bytes() == PAYLOAD
    assert len(server.requests) == 3


def test_persistent_500_is_one_clear_error(httpserver, tmp_path: Path) -> None:
    serve_files(httpserver, {"/f.zip": PAYLOAD}, faults={"/f.zip": [("status", 500)] * 10})
    with client(retries=2) as http, pytest.raises(HttpError) as info:
        http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip")
    message = str(info.value)
    assert "expected HTTP 200/206, found HTTP 500" in message and "after retries" in message
    assert "\n" not in message
    assert leftovers(tmp_path) == []


def test_slow_server_times_out_with_a_clear_error(httpserver, tmp_path: Path) -> None:
    server = serve_files(httpserver, {"/f.zip": PAYLOAD}, faults={"/f.zip": [("slow", 0.6)] * 2})
    with client(retries=1, timeout=(2.0, 0.2)) as http, pytest.raises(HttpError) as info:
        http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip")
    assert "expected data within 0.2 s" in str(info.value)
    assert not (tmp_path / "f.zip").exists()
    server.wait_done(2)  # one try + one retry, both abandoned by the client


def test_interrupted_body_is_resumed_with_range(httpserver, tmp_path: Path) -> None:
    server = serve_files(httpserver, {"/f.zip": PAYLOAD}, faults={"/f.zip": [("truncate", 100_000)]})
    with client() as http:
        result = http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", expected_sha256=SHA)
    assert (tmp_path / "f.zip").read_bytes() == PAYLOAD
    assert result.resumed, server.requests
    assert server.requests[0] == ("/f.zip", None)
    assert server.requests[1][1] is not None and server.requests[1][1].startswith("bytes=")
    assert int(server.requests[1][1].removeprefix("bytes=").rstrip("-")) >= 100_000 - 65_536
    assert leftovers(tmp_path) == ["f.zip"]


def test_interrupted_run_keeps_part_and_next_run_resumes(httpserver, tmp_path: Path) -> None:
    server = serve_files(httpserver, {"/f.zip": PAYLOAD}, faults={"/f.zip": [("truncate", 120_000)]})
    dest = tmp_path / "f.zip"
    with client(max_resumes=0) as http, pytest.raises(HttpError) as info:
        http.download(httpserver.url_for("/f.zip"), dest)
    assert "run again to resume" in str(info.value)
    assert not dest.exists()
    part = tmp_path / "f.zip.part"
    kept = part.stat().st_size
    assert 0 < kept < len(PAYLOAD)
    with client() as http:
        result = http.download(httpserver.url_for("/f.zip"), dest, expected_sha256=SHA)
    assert result.resumed and dest.read_bytes() == PAYLOAD
    path, rng = server.requests[-1]
    assert rng == f"bytes={kept}-"
    assert leftovers(tmp_path) == ["f.zip"]


def test_if_range_guards_a_resume(httpserver, tmp_path: Path) -> None:
    server = serve_files(httpserver, {"/f.zip": PAYLOAD}, faults={"/f.zip": [("truncate", 150_000)]})
    with client() as http:
        http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip")
    etag = server.if_ranges[1]
    assert server.if_ranges[0] is None and etag is not None and etag.startswith('"')


def test_server_ignoring_range_restarts_cleanly(httpserver, tmp_path: Path) -> None:
    serve_files(
        httpserver, {"/f.zip": PAYLOAD}, faults={"/f.zip": [("truncate", 90_000), ("ignore-range", None)]}
    )
    with client() as http:
        result = http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", expected_sha256=SHA)
    assert not result.resumed
    assert (tmp_path / "f.zip").read_bytes() == PAYLOAD


def test_complete_part_and_416(httpserver, tmp_path: Path) -> None:
    server = serve_files(httpserver, {"/f.zip": PAYLOAD})
    (tmp_path / "f.zip.part").write_bytes(PAYLOAD)
    with client() as http:
        http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", expected_sha256=SHA)
    assert server.requests == [("/f.zip", f"bytes={len(PAYLOAD)}-")]
    assert (tmp_path / "f.zip").read_bytes() == PAYLOAD


def test_checksum_mismatch_discards(httpserver, tmp_path: Path) -> None:
    serve_files(httpserver, {"/f.zip": PAYLOAD})
    with client() as http, pytest.raises(HttpError, match="expected SHA-256 0000, found"):
        http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", expected_sha256="0000")
    assert leftovers(tmp_path) == []


def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with client(retries=1) as http, pytest.raises(HttpError, match="expected a connection, found"):
        http.download(f"http://127.0.0.1:{port}/f.zip", tmp_path / "f.zip")
    assert leftovers(tmp_path) == []


def test_credentials_never_printed(httpserver, tmp_path: Path) -> None:
    serve_files(httpserver, {})
    url = httpserver.url_for("/x.zip").replace("http://", "http://data_public:GDdci@")
    with client() as http, pytest.raises(HttpNotFound) as info:
        http.download(url, tmp_path / "x.zip")
    assert "GDdci" not in str(info.value) and "data_public:***@" in str(info.value)
    assert redact_url("http://u:p@h:8080/a") == "http://u:***@h:8080/a"
    assert redact_url("https://h/a") == "https://h/a"
    assert issubclass(HttpError, S2kitError)
