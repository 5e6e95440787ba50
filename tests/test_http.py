"""s2kit.http against a real loopback HTTP server (pytest-httpserver, werkzeug)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest

import s2kit.http
from s2kit.errors import S2kitError
from s2kit.http import HttpClient, HttpError, HttpNotFound, SourceUnreachable, offline_reason, redact_url
from tests.support.fake_bucket import closed_port
from tests.support.srtm_fixtures import no_sleep, serve_files

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


def test_connection_refused_is_not_retried(tmp_path: Path, connects: list[str]) -> None:
    port = closed_port()
    sleeps: list[float] = []
    url = f"http://user:secret@127.0.0.1:{port}/srtm/f.zip?token=abc"
    http = HttpClient(retries=5, backoff=10.0, sleep=sleeps.append)
    with http, pytest.raises(SourceUnreachable) as info:
        http.download(url, tmp_path / "f.zip")
    assert connects == [f"127.0.0.1:{port}"] and sleeps == []  # one attempt, no retry, no back-off
    assert str(info.value) == (
        f"expected to reach 127.0.0.1:{port} (what was tried: http://127.0.0.1:{port}/srtm/f.zip), "
        "found no connection: connection refused - no server listens there (a wrong address or port, "
        "or the server is down)"
    )
    assert info.value.exit_code == 3 and isinstance(info.value, HttpError)
    assert leftovers(tmp_path) == []


def test_unresolvable_host_is_not_retried_and_says_offline(tmp_path: Path, connects: list[str]) -> None:
    with HttpClient(retries=5, backoff=10.0) as http, pytest.raises(SourceUnreachable) as info:
        http.get("https://nonexistent.invalid/storage/v1/b/x/o", params={"prefix": "tiles/"})
    assert connects == ["nonexistent.invalid:443"]
    message = str(info.value)
    assert message == (
        "expected to reach nonexistent.invalid (what was tried: https://nonexistent.invalid/storage/v1/b/x/o), "
        "found no connection: name does not resolve - this machine seems offline (or the host name is wrong)"
    )
    assert "\n" not in message and "urllib3" not in message and "HTTPSConnection" not in message


def test_offline_errors_are_recognised_through_wrapping() -> None:
    import errno

    wrapped = RuntimeError("outer")
    wrapped.__cause__ = OSError(errno.ENETUNREACH, "Network is unreachable")
    assert offline_reason(wrapped) == "network unreachable"
    assert offline_reason(socket.gaierror(-2, "Name or service not known")) == "name does not resolve"
    assert offline_reason(TimeoutError("timed out")) is None  # slow is not offline: retried
    assert offline_reason(ValueError("x")) is None


def test_get_bytes_refuses_a_body_over_the_cap(httpserver) -> None:  # type: ignore[no-untyped-def]
    from werkzeug import Response

    httpserver.expect_request("/declared").respond_with_data(b"x" * 5000)

    def chunked(_request: object) -> Response:  # no Content-Length: only streaming can stop it
        return Response((b"y" * 1000 for _ in range(1000)), direct_passthrough=True)

    httpserver.expect_request("/chunked").respond_with_handler(chunked)
    httpserver.expect_request("/small").respond_with_data(b"z" * 100)
    with client() as http:
        with pytest.raises(HttpError, match=r"expected MTD of at most 1000 bytes, found Content-Length 5000"):
            http.get_bytes(httpserver.url_for("/declared"), 1000, "MTD")
        with pytest.raises(HttpError, match=r"expected MTD of at most 200000 bytes, found more: refused"):
            http.get_bytes(httpserver.url_for("/chunked"), 200_000, "MTD")
        assert http.get_bytes(httpserver.url_for("/small"), 100, "MTD") == b"z" * 100


def test_credentials_never_printed(httpserver, tmp_path: Path) -> None:
    serve_files(httpserver, {})
    url = httpserver.url_for("/x.zip").replace("http://", "http://data_public:GDdci@")
    with client() as http, pytest.raises(HttpNotFound) as info:
        http.download(url, tmp_path / "x.zip")
    assert "GDdci" not in str(info.value) and "data_public:***@" in str(info.value)
    assert redact_url("http://u:p@h:8080/a") == "http://u:***@h:8080/a"
    assert redact_url("https://h/a") == "https://h/a"
    assert issubclass(HttpError, S2kitError)


# ----------------------------------------------------------------------------- what download hashes
MD5_B64 = base64.b64encode(hashlib.md5(PAYLOAD).digest()).decode()


@pytest.fixture
def sha256_made(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the SHA-256 objects s2kit.http makes (a spy around hashlib.sha256)."""
    made: list[int] = []
    real = hashlib.sha256

    def spy(*args: object, **kwargs: object) -> Any:
        made.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(s2kit.http.hashlib, "sha256", spy)
    return made


def test_download_computes_no_sha256_unless_asked(httpserver, tmp_path: Path, sha256_made: list[int]) -> None:
    serve_files(httpserver, {"/f.zip": PAYLOAD}, faults={"/f.zip": [("truncate", 100_000)]})
    with client() as http:
        result = http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", expected_md5=MD5_B64)
    assert (tmp_path / "f.zip").read_bytes() == PAYLOAD and result.resumed
    assert sha256_made == [] and result.sha256 is None
    assert result.md5 == hashlib.md5(PAYLOAD).hexdigest()


@pytest.mark.parametrize("ask", [{"sha256": True}, {"expected_sha256": SHA}])
def test_sha256_when_asked_is_the_files_also_after_a_resume(
    httpserver, tmp_path: Path, sha256_made: list[int], ask: dict[str, Any]
) -> None:
    # the first run keeps a .part; the second resumes it and hashes the kept bytes + the rest
    serve_files(httpserver, {"/f.zip": PAYLOAD}, faults={"/f.zip": [("truncate", 120_000)]})
    with client(max_resumes=0) as http, pytest.raises(HttpError):
        http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", **ask)
    with client() as http:
        result = http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", expected_md5=MD5_B64, **ask)
    assert result.resumed and result.sha256 == SHA and sha256_made


def test_download_with_wrong_md5_is_refused_and_discarded(httpserver, tmp_path: Path) -> None:
    serve_files(httpserver, {"/f.zip": PAYLOAD})
    wrong = base64.b64encode(bytes(16)).decode()
    with (
        client() as http,
        pytest.raises(HttpError, match=re.escape(f"expected MD5 {wrong}, found {MD5_B64}: discarded")),
    ):
        http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", expected_md5=wrong)
    assert leftovers(tmp_path) == []


def test_download_with_wrong_size_is_refused_and_discarded(httpserver, tmp_path: Path) -> None:
    serve_files(httpserver, {"/f.zip": PAYLOAD})
    with client() as http, pytest.raises(HttpError, match=f"expected {len(PAYLOAD) + 1} bytes, found"):
        http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", expected_size=len(PAYLOAD) + 1)
    assert leftovers(tmp_path) == []


def test_progress_is_reported_in_steps_not_per_block(
    httpserver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s2kit.http, "PROGRESS_SECONDS", 1e9)  # the byte step alone (no clock in the test)
    big = os.urandom(3 * s2kit.http.PROGRESS_EVERY + 12_345)
    serve_files(httpserver, {"/big.bin": big})
    calls: list[tuple[int, int | None]] = []
    with client() as http:
        http.download(
            httpserver.url_for("/big.bin"), tmp_path / "big.bin", progress=lambda w, t: calls.append((w, t))
        )
    assert calls[-1] == (len(big), len(big))  # the end is always reported
    assert len(calls) <= len(big) // s2kit.http.PROGRESS_EVERY + 1
    assert all(b - a >= s2kit.http.PROGRESS_EVERY for (a, _), (b, _) in zip(calls, calls[1:-1], strict=False))


def test_progress_on_a_slow_link_is_reported_by_time(
    httpserver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s2kit.http, "PROGRESS_SECONDS", 0.0)  # every block is "late": each one reported
    monkeypatch.setattr(s2kit.http, "BODY_CHUNK", 50_000)
    serve_files(httpserver, {"/f.zip": PAYLOAD})
    calls: list[int] = []
    with client() as http:
        http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", progress=lambda w, t: calls.append(w))
    assert calls[-1] == len(PAYLOAD) and len(calls) >= len(PAYLOAD) // 50_000


def test_download_without_fsync_starts_the_writeback_and_flushes_nothing(
    httpserver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fsync=False: the caller flushes (s2kit fetch: once per product); the download only asks the
    # kernel to start writing, so that flush waits less
    serve_files(httpserver, {"/f.zip": PAYLOAD})
    synced: list[int] = []
    advised: list[tuple[str, int]] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    monkeypatch.setattr(
        os, "posix_fadvise", lambda fd, _o, _n, how: advised.append((os.readlink(f"/proc/self/fd/{fd}"), how))
    )
    with client() as http:
        http.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", fsync=False)
    assert (tmp_path / "f.zip").read_bytes() == PAYLOAD
    assert synced == [] and advised == [(str(tmp_path / "f.zip.part"), os.POSIX_FADV_DONTNEED)]
