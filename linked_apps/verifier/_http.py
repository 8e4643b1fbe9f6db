"""One bounded GET for the verifier's key and userinfo fetches.

- **One total deadline** per fetch: connect, headers and every read of the body together. The fetch runs in a
  worker thread and the caller stops waiting at the deadline, so a server that trickles a byte at a time holds
  no caller past it. A worker outliving its deadline ends at its next read; at most `MAX_WORKERS` run at once,
  beyond that a fetch fails at once (so a slow server cannot pile up threads either).
- **A body cap** enforced while streaming, on the bytes received and again after decompression: we ask for
  `identity`; a gzip/deflate answer is inflated chunk by chunk, never past the cap.
- **Proxies**: a fetch to this machine (a loopback mirror, tests) never goes through a proxy, whatever the
  environment says: a proxy there would answer in the issuer's place. An https fetch to the team domain may
  use the proxy the environment names (`HTTPS_PROXY`/`ALL_PROXY`, `NO_PROXY` honoured), which can only tunnel
  it (CONNECT): the TLS certificate is still checked for the team domain, so the proxy cannot hand us keys.
  A client passed in by the caller is used as given (its own proxy settings), under the same deadline and cap.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..model.rules import is_loopback

if TYPE_CHECKING:
    import httpx

MAX_WORKERS = 8
"""Fetches that may run at once in this process (a worker past its deadline still counts until it ends)."""

_WORKERS = threading.BoundedSemaphore(MAX_WORKERS)
_CLIENTS: dict[bool, httpx.Client] = {}
_CLIENTS_LOCK = threading.Lock()


class FetchFailed(Exception):
    """The fetch gave no usable answer; the message says why, for a deny reason."""


def client_for(url: str) -> httpx.Client:
    """The process's pooled client for `url`: never proxied to loopback, environment proxies elsewhere."""
    local = is_loopback(url)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(local)
        if client is None:
            import httpx

            client = _CLIENTS[local] = httpx.Client(trust_env=not local)
        return client


def get(url: str, *, timeout: float, max_body: int, headers: dict[str, str] | None = None,
        client: httpx.Client | None = None) -> tuple[int, bytes]:
    """`(status, body)` of a GET, within `timeout` seconds in all; FetchFailed otherwise."""
    deadline = time.monotonic() + timeout
    if not _WORKERS.acquire(blocking=False):
        raise FetchFailed(f"{MAX_WORKERS} fetches are still running (a slow server); not starting another")
    result: dict[str, object] = {}
    done = threading.Event()

    def work() -> None:
        try:
            result["value"] = _get(url, client or client_for(url), deadline, timeout, max_body, headers or {})
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who turns it into a reason
            result["error"] = exc
        finally:
            _WORKERS.release()
            done.set()

    threading.Thread(target=work, name="linked-apps-fetch", daemon=True).start()
    if not done.wait(max(0.0, deadline - time.monotonic())):
        raise FetchFailed(f"no complete answer within {timeout:g} s")
    error = result.get("error")
    if error is not None:
        raise error if isinstance(error, FetchFailed) else FetchFailed(_describe(error))
    return result["value"]  # type: ignore[return-value]


def _get(url: str, client: httpx.Client, deadline: float, timeout: float, max_body: int,
         headers: dict[str, str]) -> tuple[int, bytes]:
    with client.stream("GET", url, timeout=timeout, follow_redirects=False,
                       headers={**headers, "accept-encoding": "identity"}) as response:
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
            raise FetchFailed(f"the answer is {encoding[:20]}-encoded, which this client does not read")
        inflate = zlib.decompressobj(32 + zlib.MAX_WBITS) if encoding not in ("identity", "") else None
        chunks: Iterable[bytes] = response.iter_raw()
        if response.is_stream_consumed:  # an in-memory answer (httpx.MockTransport): already whole and decoded
            chunks, inflate = (response.content,), None
        body = bytearray()
        for chunk in chunks:
            if time.monotonic() > deadline:
                raise FetchFailed(f"no complete answer within {timeout:g} s")
            # Inflate at most one byte past the cap, however much the chunk would expand: input left over
            # (zlib's unconsumed_tail) means that limit was reached, so the answer is refused anyway.
            body += inflate.decompress(chunk, max_body + 1 - len(body)) if inflate else chunk
            if len(body) > max_body:
                raise FetchFailed(f"the answer is larger than {max_body} bytes")
        if inflate is not None:  # all input was taken, so this is only what zlib still holds back (a few bytes)
            body += inflate.flush()
            if len(body) > max_body:
                raise FetchFailed(f"the answer is larger than {max_body} bytes")
        return response.status_code, bytes(body)


def _describe(exc: BaseException) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "cannot connect"
    if isinstance(exc, zlib.error):
        return "the compressed answer is corrupt"
    return str(exc)[:200] or type(exc).__name__
