"""RS256 JWTs for tests: a generated key, signing, a JWKS, and decoding.

The key is generated once per test session (RSA generation takes a moment); nothing here
talks to the network.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWTs use it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair with the key id a JWKS publishes it under."""

    private_key: rsa.RSAPrivateKey
    kid: str

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def jwk(self) -> dict[str, str]:
        """The public key as a JWK."""
        numbers = self.public_key.public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": b64url(_int_bytes(numbers.n)),
            "e": b64url(_int_bytes(numbers.e)),
        }

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """A JWKS holding this key."""
        return {"keys": [self.jwk()]}


def generate_key() -> SigningKey:
    """A fresh 2048-bit RSA key; its id is the SHA-1 thumbprint of the public key."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(private_key, b64url(hashlib.sha1(der).digest()))


@functools.cache
def default_key() -> SigningKey:
    """The key shared by every fake in this test session."""
    return generate_key()


def sign(
    claims: dict[str, Any], key: SigningKey | None = None, *, header: dict[str, Any] | None = None
) -> str:
    """An RS256 JWT of ``claims`` (header as GitHub's: typ, alg, x5t, kid)."""
    key = key or default_key()
    head = {"typ": "JWT", "alg": "RS256", "x5t": key.kid, "kid": key.kid, **(header or {})}
    signing_input = f"{_segment(head)}.{_segment(claims)}"
    signature = key.private_key.sign(
        signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{b64url(signature)}"


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of ``token``, without checking the signature."""
    head, payload, _ = token.split(".")
    return json.loads(b64url_decode(head)), json.loads(b64url_decode(payload))


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of ``token``, without checking it; ``{}`` when it is not a JWT."""
    try:
        claims = decode(token)[1]
    except (ValueError, IndexError):
        return {}
    return claims if isinstance(claims, dict) else {}


def verify(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The claims of ``token`` if a key of ``jwks`` signed it; :class:`ValueError` if not."""
    head, payload, signature = token.split(".")
    header, claims = decode(token)
    if header.get("alg") != "RS256":
        raise ValueError(f"unexpected alg {header.get('alg')!r}")
    for jwk in jwks["keys"]:
        if jwk.get("kid") != header.get("kid"):
            continue
        public = rsa.RSAPublicNumbers(
            int.from_bytes(b64url_decode(jwk["e"]), "big"),
            int.from_bytes(b64url_decode(jwk["n"]), "big"),
        ).public_key()
        try:
            public.verify(
                b64url_decode(signature),
                f"{head}.{payload}".encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            raise ValueError("bad signature") from None
        return claims
    raise ValueError(f"no key {header.get('kid')!r} in the JWKS")


def _segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")
