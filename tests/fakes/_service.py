"""The loopback HTTP service the fakes build on: a threaded server on 127.0.0.1 that records
requests and injects faults (statuses, delays, dropped or reset connections), and the JWT
checks the cloud fakes share.

:class:`FakeService` is the base of the GCP, Azure and Vault fakes; :class:`Fault` is also
what :class:`tests.fakes.github_oidc.FakeGitHubOIDC` scripts its token requests with.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes import jwt

__all__ = [
    "GITHUB_ISSUER",
    "FakeService",
    "Fault",
    "Reply",
    "Request",
    "interrupt",
    "json_reply",
    "verify_jwt",
]

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
_S = TypeVar("_S", bound="LoopbackServer")


@dataclass(frozen=True)
class Fault:
    """What the next token request gets instead of (or before) a normal answer."""

    status: int | None = None
    """Answer with this status and ``body`` (``None``: answer normally)."""
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Wait this long first (then apply the rest of the fault, or answer normally)."""
    disconnect: bool = False
    """Close the connection without answering."""
    reset: bool = False
    """Abort the connection (TCP RST) without answering."""


@dataclass(frozen=True)
class Request:
    """One request a fake received."""

    method: str
    path: str
    """Percent-decoded path."""
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    @property
    def bearer(self) -> str | None:
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def json_reply(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(
        status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


def verify_jwt(
    token: str,
    *,
    key: jwt.SigningKey,
    audiences: list[str] | None,
    issuer: str | None,
    leeway: float = 0.0,
) -> tuple[dict[str, Any] | None, str | None]:
    """``(claims, None)`` for a valid token, or ``(None, reason)`` for why it is not.

    ``audiences`` None: any ``aud`` is accepted. Reasons are ``signature``, ``malformed``,
    ``expired``, ``not-yet-valid``, ``issuer`` and ``audience``.
    """
    try:
        claims = jwt.verify(token, key.jwks())
    except (ValueError, IndexError, KeyError):
        try:
            jwt.decode(token)
        except (ValueError, IndexError):
            return None, "malformed"
        return None, "signature"
    now = time.time()
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] + leeway < now:
        return None, "expired"
    if isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] - leeway > now:
        return None, "not-yet-valid"
    if issuer is not None and claims.get("iss") != issuer:
        return None, "issuer"
    if audiences is not None:
        aud = claims.get("aud")
        presented = aud if isinstance(aud, list) else [aud]
        if not set(presented) & set(audiences):
            return None, "audience"
    return claims, None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: Any

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Writes to connections a client gave up on (timeouts, injected resets) fail here;
        # that is expected and not worth a traceback in the test output.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        # A proxied request carries an absolute URL; keep it whole so a test can see that.
        path = self.path if not self.path.startswith("/") else unquote(parts.path)
        request = Request(
            method=self.command,
            path=path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        fake.requests.append(request)
        fault = fake._next_fault(path)
        if fault is not None:
            if interrupt(self, fault, fake._stopping):
                return
            if fault.status is not None:
                self._send(Reply(fault.status, fault.body, fault.headers))
                return
        try:
            reply = fake.handle(request)
        except Exception as error:  # a bug in the fake: say so loudly
            reply = json_reply(599, {"fake_error": f"{type(error).__name__}: {error}"})
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1, in a daemon thread, with a queue of faults.

    Subclasses name their request handler class in :attr:`handler`; a handler reaches its
    fake as ``self.server.fake``. Faults are queued per route (a substring of the path; ``""``
    matches every request) and consumed in order. Use it as a context manager.
    """

    handler: ClassVar[type[BaseHTTPRequestHandler]]
    thread_name: ClassVar[str] = "fake-service"
    ssl_context: ssl.SSLContext | None = None
    """Serve HTTPS with this context (set before :meth:`start`)."""

    def __init__(self) -> None:
        self._faults: deque[tuple[str, Any]] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self: _S) -> _S:
        server = _Server(("127.0.0.1", 0), self.handler)
        server.fake = self
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True)
        self._server = server
        # A short poll interval: shutdown() waits for the loop to notice, once per test.
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.02,), name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes delayed handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the fake is not running"
        host, port = self._server.server_address[:2]
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host!s}:{port}"

    # Faults

    def inject(self, route: str, *faults: Any) -> None:
        """Apply ``faults``, in order, to the next requests whose path contains ``route``."""
        with self._lock:
            self._faults.extend((route, fault) for fault in faults)

    def _next_fault(self, path: str = "") -> Any | None:
        with self._lock:
            for index, (route, fault) in enumerate(self._faults):
                if route in path:
                    del self._faults[index]
                    return fault
        return None


class ConnectionFault(Protocol):
    """What :func:`interrupt` needs of a fake's fault."""

    delay: float
    reset: bool
    disconnect: bool


def interrupt(
    handler: BaseHTTPRequestHandler, fault: ConnectionFault, stopping: threading.Event
) -> bool:
    """Wait out ``fault``'s delay, then reset or drop the connection if it says so.

    True when the handler must send nothing more: the connection is gone, or the fake is
    stopping.
    """
    if fault.delay and stopping.wait(fault.delay):
        return True
    if fault.reset:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True
        return True
    if fault.disconnect:
        handler.connection.shutdown(socket.SHUT_RDWR)
        handler.connection.close()
        handler.close_connection = True
        return True
    return False


class FakeService(LoopbackServer):
    """A loopback service that records requests as :class:`Request` and answers them with
    :meth:`handle` (which subclasses implement), unless a :class:`Fault` comes first."""

    handler = _Handler

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []

    def fail(
        self,
        route: str,
        status: int,
        body: bytes | str | Any = b"",
        *,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer ``status`` with ``body`` (JSON-encoded unless bytes or str)."""
        hdrs = dict(headers or {})
        if isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
        else:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        self.inject(route, *[Fault(status=status, body=data, headers=hdrs)] * times)

    def delay(self, route: str, seconds: float, times: int = 1) -> None:
        self.inject(route, *[Fault(delay=seconds)] * times)

    def reset(self, route: str, times: int = 1) -> None:
        self.inject(route, *[Fault(reset=True)] * times)

    def disconnect(self, route: str, times: int = 1) -> None:
        self.inject(route, *[Fault(disconnect=True)] * times)

    def count(self, route: str = "", method: str | None = None) -> int:
        """How many requests whose path contains ``route`` (and of ``method``) arrived."""
        return len(self.matching(route, method))

    def matching(self, route: str = "", method: str | None = None) -> list[Request]:
        return [
            r
            for r in list(self.requests)
            if route in r.path and (method is None or r.method == method)
        ]

    def handle(self, request: Request) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError
