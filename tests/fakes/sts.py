"""A fake AWS STS on 127.0.0.1 for the paths moto cannot produce (oidc-anchors.md §9.5, §10.2).

It speaks the query protocol of API version 2011-06-15: a form-encoded ``POST /`` with
``Action`` and ``Version``; success is the ``<ActionResponse>`` XML with every member of the
model, errors are the ``<ErrorResponse>`` envelope with the documented code and HTTP status.
It checks what real STS checks and moto does not: parameter lengths and patterns,
``DurationSeconds`` range, ``AssumeRoleWithWebIdentity`` unsigned with a token present,
``AssumeRole`` signed with keys this fake issued (and their session token).

Faults are scripted per request (:class:`Fault`): any error code, a status with a raw body
(HTML 5xx, malformed XML), a delay (for client timeouts), a dropped or reset connection.
Every request is recorded. Use it as a context manager; it stops itself.
"""

from __future__ import annotations

import base64
import re
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from tests.fakes import jwt
from tests.fakes._service import LoopbackServer, interrupt

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
VERIFICATION_KEY_MESSAGE = (
    "Couldn't retrieve verification key from your identity provider,  please reference "
    "AssumeRoleWithWebIdentity documentation for requirements"
)

# Code -> (HTTP status, fault type, message), from the STS model and observed answers.
ERRORS: dict[str, tuple[int, str, str]] = {
    "AccessDenied": (403, "Sender", "Not authorized to perform sts:AssumeRoleWithWebIdentity"),
    "InvalidIdentityToken": (400, "Sender", "Incorrect token audience"),
    "ExpiredTokenException": (
        400,
        "Sender",
        "The web identity token that was passed is expired or is not valid.",
    ),
    "IDPCommunicationError": (
        400,
        "Sender",
        "The request could not be fulfilled because the identity provider is unreachable.",
    ),
    "IDPRejectedClaim": (403, "Sender", "The identity provider rejected the claim."),
    "Throttling": (400, "Sender", "Rate exceeded"),
    # Throttling codes of other AWS services (Secrets Manager, EC2), retried the same way.
    "ThrottlingException": (400, "Sender", "Rate exceeded"),
    "RequestLimitExceeded": (400, "Sender", "Request limit exceeded."),
    "MalformedPolicyDocument": (400, "Sender", "The policy is not in the valid JSON format."),
    "PackedPolicyTooLarge": (
        400,
        "Sender",
        "Packed size of session tags consumes 142% of allotted space.",
    ),
    "RegionDisabledException": (403, "Sender", "STS is not activated in this region."),
    "ValidationError": (400, "Sender", "1 validation error detected"),
    "InvalidClientTokenId": (
        403,
        "Sender",
        "The security token included in the request is invalid.",
    ),
    "InternalFailure": (500, "Receiver", "An internal error occurred."),
    "ServiceUnavailable": (503, "Receiver", "Service is unavailable."),
}

_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}\Z", re.ASCII)
_ROLE_ARN = re.compile(r"arn:(aws[a-z-]*):iam::(\d{12}):role/(?:[^/]*/)*([^/]+)\Z")
_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")


@dataclass(frozen=True)
class Fault:
    """What the next request gets instead of (or before) a normal answer."""

    code: str | None = None
    """Answer with this error code's ``ErrorResponse`` (status and type from :data:`ERRORS`)."""
    message: str | None = None
    """Override the error's message."""
    status: int | None = None
    """With ``body``: answer this status with that raw body."""
    body: bytes = b""
    content_type: str = "text/xml"
    delay: float = 0.0
    """Wait this long first (then apply the rest, or answer normally)."""
    disconnect: bool = False
    reset: bool = False
    """Abort the connection (TCP RST) without answering."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    params: dict[str, str]
    """The decoded form body."""

    @property
    def action(self) -> str:
        return self.params.get("Action", "")

    @property
    def signed(self) -> bool:
        return "authorization" in self.headers


@dataclass(frozen=True)
class Issued:
    """Credentials the fake handed out."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    arn: str
    expiration: datetime


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._record_and_answer("GET", b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._record_and_answer("POST", self.rfile.read(length))

    def _record_and_answer(self, method: str, raw: bytes) -> None:
        fake = self.server.fake
        headers = {name.lower(): value for name, value in self.headers.items()}
        form = headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        params = (
            dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)) if form else {}
        )
        request = RecordedRequest(method, self.path, headers, params)
        with fake._lock:
            fake.requests.append(request)
        fault = fake._next_fault()
        if fault is not None:
            if interrupt(self, fault, fake._stopping):
                return
            if fault.code is not None:
                self._send(*error_body(fault.code, fault.message))
                return
            if fault.status is not None:
                self._send(fault.status, fault.body, fault.content_type)
                return
        if method != "POST" or not form:
            self._send(*_error("InvalidAction", 400, "Sender", "expected a form-encoded POST"))
            return
        self._send(*fake.answer(request))

    def _send(self, status: int, body: str | bytes, content_type: str = "text/xml") -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)


class FakeSTS(LoopbackServer):
    """``AssumeRoleWithWebIdentity`` and ``AssumeRole`` with scripted faults."""

    handler = _Handler
    thread_name = "fake-sts"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[RecordedRequest] = []
        self.issued: list[Issued] = []

    @property
    def url(self) -> str:
        return self.base_url

    # Fault injection

    def enqueue(self, *faults: Fault) -> None:
        self.inject("", *faults)

    def fail(self, code: str, *, times: int = 1, message: str | None = None) -> None:
        self.enqueue(*[Fault(code=code, message=message)] * times)

    def raw(
        self, status: int, body: bytes, *, content_type: str = "text/xml", times: int = 1
    ) -> None:
        self.enqueue(*[Fault(status=status, body=body, content_type=content_type)] * times)

    def delay(self, seconds: float, *, times: int = 1) -> None:
        self.enqueue(*[Fault(delay=seconds)] * times)

    def reset(self, *, times: int = 1) -> None:
        self.enqueue(*[Fault(reset=True)] * times)

    # Answers

    def answer(self, request: RecordedRequest) -> tuple[int, str]:
        """Status and XML body for a well-formed request (after faults)."""
        params = request.params
        if params.get("Version") != "2011-06-15":
            return _error("InvalidAction", 400, "Sender", "missing or wrong Version")
        if request.action == "AssumeRoleWithWebIdentity":
            if request.signed:
                return _error("InvalidAction", 400, "Sender", "tollgate must not sign this call")
            return self._assume(params, web_identity=True)
        if request.action == "AssumeRole":
            key = self._caller(request)
            if key is None:
                return error_body("InvalidClientTokenId")
            return self._assume(params, web_identity=False)
        return _error("InvalidAction", 400, "Sender", f"Could not find operation {request.action}")

    def _caller(self, request: RecordedRequest) -> Issued | None:
        match = _CREDENTIAL.search(request.headers.get("authorization", ""))
        token = request.headers.get("x-amz-security-token")
        for issued in self.issued:
            if match and issued.access_key_id == match.group(1):
                return issued if issued.session_token == token else None
        return None

    def _assume(self, params: dict[str, str], *, web_identity: bool) -> tuple[int, str]:
        problem = _validate(params, web_identity=web_identity)
        if problem:
            return _error("ValidationError", 400, "Sender", problem)
        role = _ROLE_ARN.match(params["RoleArn"])
        assert role is not None  # _validate checked it
        session = params["RoleSessionName"]
        arn = f"arn:{role.group(1)}:sts::{role.group(2)}:assumed-role/{role.group(3)}/{session}"
        expiration = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(
            seconds=int(params.get("DurationSeconds", "3600"))
        )
        issued = Issued(
            access_key_id="ASIA"
            + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
            secret_access_key=base64.b64encode(secrets.token_bytes(30)).decode(),
            session_token=base64.b64encode(secrets.token_bytes(120)).decode(),
            arn=arn,
            expiration=expiration,
        )
        with self._lock:
            self.issued.append(issued)
        action = "AssumeRoleWithWebIdentity" if web_identity else "AssumeRole"
        extra = ""
        if web_identity:
            claims = jwt.unverified_claims(params["WebIdentityToken"])
            issuer = str(claims.get("iss", "")).removeprefix("https://")
            extra = (
                f"<SubjectFromWebIdentityToken>{escape(str(claims.get('sub', '')))}"
                "</SubjectFromWebIdentityToken>"
                f"<Audience>{escape(str(claims.get('aud', '')))}</Audience>"
                f"<Provider>arn:aws:iam::{role.group(2)}:oidc-provider/{escape(issuer)}</Provider>"
            )
        body = (
            f'<{action}Response xmlns="{NAMESPACE}"><{action}Result>{extra}'
            f"<AssumedRoleUser><Arn>{escape(arn)}</Arn>"
            f"<AssumedRoleId>AROA{uuid.uuid4().hex[:17].upper()}:{escape(session)}</AssumedRoleId>"
            "</AssumedRoleUser><Credentials>"
            f"<AccessKeyId>{issued.access_key_id}</AccessKeyId>"
            f"<SecretAccessKey>{issued.secret_access_key}</SecretAccessKey>"
            f"<SessionToken>{issued.session_token}</SessionToken>"
            f"<Expiration>{expiration.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration>"
            "</Credentials><PackedPolicySize>6</PackedPolicySize>"
            f"</{action}Result><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
            f"</ResponseMetadata></{action}Response>"
        )
        return 200, body


def error_body(code: str, message: str | None = None) -> tuple[int, str]:
    """Status and ``ErrorResponse`` XML for one of :data:`ERRORS`."""
    status, kind, default = ERRORS[code]
    return _error(code, status, kind, default if message is None else message)


def _error(code: str, status: int, kind: str, message: str) -> tuple[int, str]:
    body = (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{kind}</Type><Code>{escape(code)}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
        "</ErrorResponse>"
    )
    return status, body


def _validate(params: dict[str, str], *, web_identity: bool) -> str | None:
    """The first constraint of the STS model the request breaks (None: it is valid)."""
    role_arn = params.get("RoleArn", "")
    if not 20 <= len(role_arn) <= 2048 or not _ROLE_ARN.match(role_arn):
        return "Value at 'roleArn' failed to satisfy constraint"
    if not _SESSION_NAME.match(params.get("RoleSessionName", "")):
        return "Value at 'roleSessionName' failed to satisfy constraint"
    if web_identity and not 4 <= len(params.get("WebIdentityToken", "")) <= 20000:
        return "Value at 'webIdentityToken' failed to satisfy constraint"
    duration = params.get("DurationSeconds", "3600")
    if not duration.isdigit() or not 900 <= int(duration) <= 43200:
        return "Value at 'durationSeconds' failed to satisfy constraint"
    if "Policy" in params and not 1 <= len(params["Policy"]) <= 2048:
        return "Value at 'policy' failed to satisfy constraint"
    return None
