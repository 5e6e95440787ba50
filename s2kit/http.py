"""One HTTP client for s2kit: a requests session with retries, back-off and timeouts.

Modelled on pystac-client's ``StacApiIO`` (stac-utils/pystac-client, ``stac_api_io.py``): a
single :class:`requests.Session` that carries the headers, mounted with an
:class:`~requests.adapters.HTTPAdapter` whose ``max_retries`` is an int or a ready
:class:`urllib3.util.Retry`, and a per-request ``timeout``. urllib3 retries connection
errors and the transient statuses (429, 500, 502, 503, 504) with exponential back-off and
honours ``Retry-After``.

:meth:`HttpClient.download` adds what urllib3 cannot retry: a body that breaks off half-way.
Bytes go to ``<dest>.part``; an interrupted transfer is resumed with an HTTP ``Range``
request (guarded by ``If-Range`` with the ETag/Last-Modified seen first, kept in
``<dest>.part.json``), so a re-run - or the next attempt of the same run - continues where the
last one stopped. Only a complete, size-checked (and optionally SHA-256-checked) file is
renamed to *dest*: a reader never sees a half-written download. Bodies are requested with
``Accept-Encoding: identity`` so byte offsets are offsets in the file.

Every failure is an :class:`HttpError` (an :class:`~s2kit.errors.S2kitError`) with one line
saying what was expected and what was found; credentials in URLs are never printed.
A host name that does not resolve, a refused connection or an unreachable network is not
retried (no back-off): it raises :class:`SourceUnreachable` at once (exit code 3 in the CLI),
with a short, whole message naming the host and what was tried.

Checksums are computed while the bytes arrive (no second pass over the file), and only those
asked for: MD5 when ``expected_md5`` is given (hex, or base64 as Google Cloud Storage's
``md5Hash``), SHA-256 when ``expected_sha256`` is given or ``sha256=True`` (a caller that records
the digest, e.g. the DEM source cache). The body is read in 256 KiB blocks into one reusable buffer
(hashlib releases the GIL on blocks that large, so parallel downloads hash on every core), and the
*progress* callback every few MiB or quarter second, not per block. ``fsync=False`` leaves the flush to
disk to the caller (s2kit fetch flushes a product's files once, before its completion manifest).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import http.client
import json
import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from . import __version__
from .errors import S2kitError, display_path
from .fsutil import atomic_write_text, sha256_file

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "DownloadResult",
    "HttpClient",
    "HttpError",
    "HttpNotFound",
    "SourceUnreachable",
    "is_url",
    "md5_bytes",
    "redact_url",
    "sha256_file",
]

DEFAULT_TIMEOUT: tuple[float, float] = (15.0, 120.0)  # (connect, read) seconds
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF = 1.0  # seconds; urllib3 sleeps backoff * 2**(n-1) between retries
DEFAULT_MAX_RESUMES = 5
RETRY_STATUSES = (429, 500, 502, 503, 504)
CHUNK = 1 << 16  # read_capped's block: a capped read stops at most this far past its cap
# download block, filled in place by the socket, hashed, written: 256 KiB measured best on the
# benchmark machine (4 streams, 2 cores): 64 KiB costs more calls, 1 MiB 30 % more CPU (the
# buffers of 4 streams no longer stay in the 2 MiB L2 cache between recv, hash and write).
# A broken connection loses at most one unfinished block.
BODY_CHUNK = 1 << 18
PROGRESS_EVERY = 4 << 20  # bytes between two progress callbacks of one download ...
PROGRESS_SECONDS = 0.25  # ... or seconds, whichever comes first (a slow link still shows progress)

_CONTENT_RANGE_RE = re.compile(r"^bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\Z")


class HttpError(S2kitError):
    """An HTTP request or download failed (after its retries)."""


class HttpNotFound(HttpError):
    """The server answered 404/410: the resource does not exist there."""


class SourceUnreachable(HttpError):
    """No connection at all: the host name does not resolve, the connection is refused, or the
    network is unreachable. Raised at once (never retried); the CLI exits with code 3."""

    exit_code = 3


_OFFLINE_ERRNOS = {errno.ENETUNREACH: "network unreachable", errno.EHOSTUNREACH: "host unreachable"}


def offline_reason(exc: BaseException | None) -> str | None:
    """Why *exc* (or an exception it wraps) means "no connection at all", or None.

    ``socket.gaierror`` -> the name does not resolve; ``ConnectionRefusedError`` -> refused;
    ``ENETUNREACH``/``EHOSTUNREACH`` -> unreachable. Timeouts are not offline (they are retried).
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, socket.gaierror):
            return "name does not resolve"
        if isinstance(cur, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cur, OSError) and not isinstance(cur, TimeoutError) and cur.errno in _OFFLINE_ERRNOS:
            return _OFFLINE_ERRNOS[cur.errno]
        todo += [cur.__cause__, cur.__context__, getattr(cur, "reason", None)]
        todo += [a for a in getattr(cur, "args", ()) if isinstance(a, BaseException)]
    return None


def bare_url(url: str) -> str:
    """*url* as ``scheme://host[:port]/path``: no user, password, query or fragment (no secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    with contextlib.suppress(ValueError):
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    text = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def unreachable(url: str, reason: str) -> SourceUnreachable:
    """The one-line error for a source that cannot be reached at all."""
    parts = urlsplit(url)
    host = parts.hostname or "the server"
    with contextlib.suppress(ValueError):
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    host = "".join(c if c.isprintable() else repr(c)[1:-1] for c in host)
    if reason == "name does not resolve":
        why = "this machine seems offline (or the host name is wrong)"
    elif reason == "connection refused":
        why = "no server listens there (a wrong address or port, or the server is down)"
    else:
        why = "this machine seems offline"
    return SourceUnreachable(
        f"expected to reach {host} (what was tried: {bare_url(url)}), found no connection: {reason} - {why}"
    )


class _FailFastRetry(Retry):
    """urllib3 ``Retry`` that gives up at once when there is no connection at all (see
    :func:`offline_reason`): retrying a name that does not resolve only makes the user wait."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: TracebackType | None = None,
    ) -> _FailFastRetry:
        if error is not None and offline_reason(error) is not None:
            raise MaxRetryError(_pool, url or "", error) from error
        return super().increment(method, url, response, error, _pool, _stacktrace)


@dataclass(frozen=True)
class DownloadResult:
    """A finished download: where it is, how big, its checksums, and what the server said.

    ``sha256`` is None unless the download was asked for it (``sha256=True`` or
    ``expected_sha256``)."""

    url: str
    path: Path
    size: int
    sha256: str | None
    resumed: bool
    etag: str | None = None
    last_modified: str | None = None
    md5: str | None = None  # hex; set when the download was asked to check an MD5


def is_url(text: str) -> bool:
    """True for ``http(s)://`` addresses."""
    return urlsplit(text).scheme.lower() in ("http", "https")


def redact_url(url: str) -> str:
    """The URL without its password (``user:secret@host`` -> ``user:***@host``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def md5_bytes(text: str) -> bytes:
    """The 16 bytes of an MD5 written as 32 hex digits or as base64 (GCS ``md5Hash``)."""
    value = text.strip()
    try:
        if len(value) == 32:
            return bytes.fromhex(value)
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 16:
        raise HttpError(f"expected an MD5 as 32 hex digits or base64, found {text!r}")
    return raw


class _StreamDigests:
    """The digests asked for (MD5, SHA-256, or none) of ``<dest>.part``, updated as blocks are written.

    :meth:`sync` re-reads the file only when the digests do not cover exactly the bytes on
    disk (a ``.part`` left by an earlier run, or a restart from byte 0). Nothing is read or
    hashed when no digest is asked for.
    """

    def __init__(self, part: Path, with_md5: bool, with_sha256: bool = True) -> None:
        self.part = part
        self.with_md5 = with_md5
        self.with_sha256 = with_sha256
        self.reset()

    def reset(self) -> None:
        self.sha256 = hashlib.sha256() if self.with_sha256 else None
        self.md5 = hashlib.md5(usedforsecurity=False) if self.with_md5 else None
        self._hashes = [h for h in (self.md5, self.sha256) if h is not None]
        self.pos = 0

    def update(self, block: bytes | memoryview) -> None:
        for digest in self._hashes:
            digest.update(block)
        self.pos += len(block)

    def sync(self, size: int) -> None:
        if self.pos == size:
            return
        self.reset()
        if not size or not self._hashes:
            self.pos = size
            return
        with open(self.part, "rb") as fh:
            while self.pos < size and (block := fh.read(min(BODY_CHUNK, size - self.pos))):
                self.update(block)


def _retry(retries: int | Retry, backoff: float) -> Retry:
    if isinstance(retries, Retry):
        return retries
    if retries < 0:
        raise HttpError(f"expected retries >= 0, found {retries}")
    return _FailFastRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,  # the last response comes back; its status is reported below
    )


class _Interrupted(Exception):
    """The body ended early (internal: triggers a resume)."""


class HttpClient:
    """A requests session with retries, back-off, timeouts and resumable downloads.

    *timeout* is seconds, or ``(connect, read)``; *retries* an int or a urllib3 ``Retry``;
    *max_resumes* how often one :meth:`download` continues an interrupted body. Use it as a
    context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int | Retry = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        max_resumes: int = DEFAULT_MAX_RESUMES,
        headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pool_maxsize: int = 10,
    ) -> None:
        self.timeout = timeout
        self.backoff = backoff
        self.max_resumes = max_resumes
        self._sleep = sleep
        self._retry = _retry(retries, backoff)
        self.session = session if session is not None else requests.Session()
        adapter = HTTPAdapter(max_retries=self._retry, pool_maxsize=max(1, pool_maxsize))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = f"s2kit/{__version__} (+requests {requests.__version__})"
        self.session.headers.update(headers or {})

    # ------------------------------------------------------------------ plumbing
    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    @property
    def read_timeout(self) -> float:
        return self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout

    def _explain(self, url: str, exc: BaseException) -> HttpError:
        offline = offline_reason(exc)
        if offline is not None:
            return unreachable(url, offline)
        where = redact_url(url)
        tries = self._retry.total if isinstance(self._retry.total, int) else "its"
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return HttpError(
                f"{where}: expected a connection, found none after {tries} retries (connect timeout)"
            )
        if isinstance(exc, requests.exceptions.ReadTimeout) or "Read timed out" in str(exc):
            return HttpError(
                f"{where}: expected data within {self.read_timeout:g} s, found none after {tries} retries "
                "(server too slow)"
            )
        if isinstance(exc, requests.exceptions.ConnectionError):
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return HttpError(
                f"{where}: expected a connection, found an error after {tries} retries ({reason[:200]})"
            )
        return HttpError(f"{where}: request failed ({type(exc).__name__}: {str(exc)[:200]})")

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send one request (urllib3 retries included); transport errors become :class:`HttpError`."""
        kwargs.setdefault("timeout", self.timeout)
        try:
            return self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise self._explain(url, exc) from None

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        """GET that must answer 2xx: 404/410 raise :class:`HttpNotFound`, other errors :class:`HttpError`."""
        response = self.request("GET", url, **kwargs)
        self._check_status(url, response)
        return response

    def get_bytes(self, url: str, max_bytes: int, what: str = "a body", **kwargs: Any) -> bytes:
        """GET *url* (2xx as :meth:`get`) and return its body, refusing more than *max_bytes*.

        The body is streamed: a declared ``Content-Length`` above the cap is refused before
        reading, and reading stops one block after the cap, so a hostile server costs at most
        about *max_bytes* of memory and the time to send them.
        """
        return self.get_capped(url, max_bytes, what, **kwargs)[0]

    def get_capped(
        self, url: str, max_bytes: int, what: str = "a body", **kwargs: Any
    ) -> tuple[bytes, Mapping[str, str]]:
        """:meth:`get_bytes`, plus the response headers."""
        kwargs["stream"] = True
        response = self.get(url, **kwargs)
        return self.read_capped(response, url, max_bytes, what), response.headers

    def read_capped(
        self, response: requests.Response, url: str, max_bytes: int, what: str = "a body"
    ) -> bytes:
        """The body of a streamed *response*, refusing more than *max_bytes* (then closed)."""
        with contextlib.closing(response):
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise HttpError(
                    f"{redact_url(url)}: expected {what} of at most {max_bytes} bytes, found "
                    f"Content-Length {int(length)}: refused"
                )
            data = bytearray()
            try:
                for block in response.iter_content(CHUNK):
                    data += block
                    if len(data) > max_bytes:
                        raise HttpError(
                            f"{redact_url(url)}: expected {what} of at most {max_bytes} bytes, "
                            "found more: refused"
                        )
            except requests.RequestException as exc:
                raise HttpError(
                    f"{redact_url(url)}: expected {what}, found the transfer broken off ({_short(exc)})"
                ) from None
        return bytes(data)

    def _check_status(self, url: str, response: requests.Response, ok: tuple[int, ...] = (200,)) -> None:
        if response.status_code in ok:
            return
        status = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
        response.close()
        if response.status_code in (404, 410):
            raise HttpNotFound(f"{redact_url(url)}: expected the file, found {status} (not on the server)")
        retried = " after retries" if response.status_code in RETRY_STATUSES else ""
        raise HttpError(f"{redact_url(url)}: expected HTTP {'/'.join(map(str, ok))}, found {status}{retried}")

    # ------------------------------------------------------------------ download
    def download(
        self,
        url: str,
        dest: str | os.PathLike[str],
        *,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
        progress: Callable[[int, int | None], None] | None = None,
        expected_md5: str | None = None,
        sha256: bool = False,
        fsync: bool = True,
    ) -> DownloadResult:
        """Download *url* to *dest* (resuming ``<dest>.part`` if present); return what was stored.

        Nothing is at *dest* unless the whole body arrived and matched the expected size and
        checksums; an incomplete ``.part`` is kept (and resumed next time) only when the server
        supports ranges. The SHA-256 is computed (in the same pass) only when *sha256* is true or
        *expected_sha256* is given. With *fsync* (default) *dest* is flushed to disk before it
        gets its name; ``fsync=False`` leaves that to the caller, who must flush it before it
        records the file as durable. *progress(written, total)* is called every
        :data:`PROGRESS_EVERY` bytes or :data:`PROGRESS_SECONDS`, and at the end of each body.
        Raises :class:`HttpNotFound` (404/410) or :class:`HttpError`.
        """
        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        meta_path = target.with_name(target.name + ".part.json")
        meta = _read_meta(meta_path) if part.exists() else {}
        if meta and meta.get("url") != redact_url(url):
            meta = {}
            _unlink(part)
        resumed = False
        interruptions = 0
        total: int | None = None
        md5_wanted = md5_bytes(expected_md5) if expected_md5 is not None else None
        digests = _StreamDigests(
            part, with_md5=md5_wanted is not None, with_sha256=sha256 or expected_sha256 is not None
        )
        while True:
            offset = part.stat().st_size if part.exists() else 0
            headers = {"Accept-Encoding": "identity"}
            if offset:
                headers["Range"] = f"bytes={offset}-"
                validator = meta.get("etag") or meta.get("last_modified")
                if validator:
                    headers["If-Range"] = str(validator)
            try:
                response = self.request("GET", url, headers=headers, stream=True)
            except SourceUnreachable:
                raise  # no connection at all: waiting and resuming cannot help
            except HttpError:
                if interruptions >= self.max_resumes or not offset:
                    raise
                interruptions += 1
                self._sleep(self.backoff * 2 ** (interruptions - 1))
                continue
            with contextlib.closing(response):
                if response.status_code == 416 and offset:
                    _, _, size = _content_range(response.headers.get("Content-Range", ""))
                    if size == offset:
                        total = size
                        break  # the .part was already complete
                    _unlink(part)  # the file changed on the server: start again
                    meta = {}
                    continue
                self._check_status(url, response, ok=(200, 206))
                if response.status_code == 206:
                    start, _end, total = _content_range(response.headers.get("Content-Range", ""))
                    if start != offset:
                        raise HttpError(
                            f"{redact_url(url)}: expected content from byte {offset}, found "
                            f"Content-Range {response.headers.get('Content-Range')!r}"
                        )
                    mode = "ab"
                    resumed = True
                else:  # 200: the whole body (the server ignored Range, or the file changed)
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    offset, mode = 0, "wb"
                meta = {
                    "url": redact_url(url),
                    "etag": response.headers.get("ETag") or meta.get("etag"),
                    "last_modified": response.headers.get("Last-Modified") or meta.get("last_modified"),
                    "size": total,
                }
                atomic_write_text(meta_path, json.dumps(meta) + "\n", fsync=fsync)
                try:
                    digests.sync(offset)
                    written = self._write_body(
                        response, part, mode, offset, total, progress, sink=digests.update
                    )
                except (requests.RequestException, _Interrupted) as exc:
                    interruptions += 1
                    kept = part.stat().st_size if part.exists() else 0
                    if interruptions > self.max_resumes:
                        raise HttpError(
                            f"{redact_url(url)}: expected {total if total is not None else 'all'} bytes, "
                            f"found the transfer interrupted {interruptions} times ({_short(exc)}); "
                            + (
                                f"{kept} bytes kept in {display_path(part)}: run again to resume"
                                if kept
                                else "nothing kept"
                            )
                        ) from None
                    self._sleep(self.backoff * 2 ** (interruptions - 1))
                    continue
            if total is not None and written != total:
                _unlink(part)
                _unlink(meta_path)
                raise HttpError(f"{redact_url(url)}: expected {total} bytes, found {written}: discarded")
            break

        size = part.stat().st_size
        if expected_size is not None and size != expected_size:
            _unlink(part)
            _unlink(meta_path)
            raise HttpError(f"{redact_url(url)}: expected {expected_size} bytes, found {size}: discarded")
        digests.sync(size)
        digest = digests.sha256.hexdigest() if digests.sha256 is not None else None
        if expected_sha256 is not None and digest != expected_sha256.lower():
            _unlink(part)
            _unlink(meta_path)
            raise HttpError(
                f"{redact_url(url)}: expected SHA-256 {expected_sha256}, found {digest}: discarded"
            )
        md5_hex = digests.md5.hexdigest() if digests.md5 is not None else None
        if md5_wanted is not None and md5_hex != md5_wanted.hex():
            _unlink(part)
            _unlink(meta_path)
            raise HttpError(
                f"{redact_url(url)}: expected MD5 {base64.b64encode(md5_wanted).decode()}, found "
                f"{base64.b64encode(bytes.fromhex(md5_hex or '')).decode()}: discarded"
            )
        if fsync:
            with open(part, "rb+") as fh:
                os.fsync(fh.fileno())
        else:
            _start_writeback(part)  # the caller's one flush per product then waits less
        os.replace(part, target)
        _unlink(meta_path)
        return DownloadResult(
            url=redact_url(url),
            path=target,
            size=size,
            sha256=digest,
            resumed=resumed,
            etag=meta.get("etag"),
            last_modified=meta.get("last_modified"),
            md5=md5_hex,
        )

    @staticmethod
    def _write_body(
        response: requests.Response,
        part: Path,
        mode: str,
        offset: int,
        total: int | None,
        progress: Callable[[int, int | None], None] | None,
        sink: Callable[[memoryview], None] | None = None,
    ) -> int:
        written = offset
        encoded = response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        buf = memoryview(bytearray(BODY_CHUNK))  # one buffer per body, filled in place
        read = _body_reader(response, encoded)
        reported, reported_at = written, time.monotonic()
        with open(part, mode, buffering=0) as fh:  # unbuffered: each block goes to the kernel once
            try:
                while n := read(buf):
                    done = 0
                    while done < n:  # a raw write may take less than the whole block
                        done += fh.write(buf[done:n]) or 0
                    if sink is not None:
                        sink(buf[:n])
                    written += n
                    if progress is not None and (
                        written - reported >= PROGRESS_EVERY
                        or time.monotonic() - reported_at >= PROGRESS_SECONDS
                    ):
                        reported, reported_at = written, time.monotonic()
                        progress(written, total)
            except _ReadFailed as exc:
                if encoded:  # offsets of a decoded body are no offsets in the file: no resume
                    fh.truncate(0)
                raise _Interrupted(str(exc)) from None
            finally:
                if progress is not None and written != reported:
                    progress(written, total)
        if total is not None and written < total:
            raise _Interrupted(f"connection closed after {written} of {total} bytes")
        return written


class _ReadFailed(Exception):
    """Reading the body failed (internal; a write error is not one: it propagates as it is)."""


def _body_reader(response: requests.Response, encoded: bool) -> Callable[[memoryview], int]:
    """``read(buffer) -> n``: fill *buffer* with the next bytes of the body (0 at its end).

    An identity-encoded body is read straight from the connection into the buffer (the
    :class:`http.client.HTTPResponse` under urllib3: no intermediate bytes objects); an encoded
    one goes through urllib3's decoder. A broken connection raises :class:`_ReadFailed`.
    """
    raw = response.raw
    fp = getattr(raw, "_fp", None)
    if not encoded and isinstance(fp, http.client.HTTPResponse):

        def read_direct(buf: memoryview) -> int:
            try:
                return fp.readinto(buf)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                raise _ReadFailed(_short(exc)) from None

        return read_direct

    def read_urllib3(buf: memoryview) -> int:
        try:
            # read1 hands over every byte received, also just before a broken connection
            block = raw.read1(len(buf), decode_content=encoded)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _ReadFailed(_short(exc)) from None
        buf[: len(block)] = block
        return len(block)

    return read_urllib3


def _start_writeback(path: Path) -> None:
    """Ask the kernel to start writing *path*'s dirty pages to disk now, without waiting for it
    (Linux: ``posix_fadvise(DONTNEED)`` starts the writeback; the pages still dirty stay
    cached). Not a flush: the caller's fsync is what makes the file durable; this only lets the
    disk work while the other downloads go on. A no-op where it is not available."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            advise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _content_range(value: str) -> tuple[int | None, int | None, int | None]:
    match = _CONTENT_RANGE_RE.match(value.strip())
    if match is None:
        return None, None, None
    start, end, size = match.groups()
    return (
        int(start) if start is not None else None,
        int(end) if end is not None else None,
        int(size) if size not in (None, "*") else None,
    )


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
