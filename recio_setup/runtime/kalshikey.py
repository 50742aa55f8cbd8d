"""Is this the Kalshi API key a service can sign with? Checked before anything is written.

Kalshi authenticates a request with an API key ID (a UUID) and a signature made with an RSA
private key (RSA-PSS, SHA-256). A wrong file is caught here, each kind with its own one-line
message and fix: an encrypted key (the service has no passphrase to give), a public key, an EC key,
a certificate, a truncated or foreign file. The key is then used once, locally: a signature
made with it must verify with its own public key.

`cryptography` is imported inside the functions: it costs tens of milliseconds, and only
`credentials add` and a `check` of an existing key need it. No message here holds any byte of
the key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from recio_setup.errors import UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

MIN_BITS = 2048
SELF_TEST_MESSAGE = b"recio-setup: Kalshi key self-test"
_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_PKCS1, _PKCS8 = "RSA PRIVATE KEY", "PRIVATE KEY"
_EMAIL = re.compile(r"[^@\s:]+@[^@\s:]+")


KEY_ID_PATTERN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


class KeyRejected(UsageError):
    """A private key file that is not what Kalshi's API needs; `cause` says which kind."""


@dataclass(frozen=True)
class ValidKey:
    """A checked key: its PEM as it will be written, its size and its public fingerprint."""

    pem: bytes = field(repr=False)
    bits: int
    fingerprint: str  # SHA-256 of the DER public key (SubjectPublicKeyInfo), hex


def check_key_id(text: str, origin: str = "--key-id") -> str:
    key_id = text.strip()
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise UsageError(
            f"{origin} is not a Kalshi API key ID (a UUID such as "
            "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d)",
            hint="copy the key ID Kalshi shows beside the API key (account settings, API keys)",
        )
    return key_id  # as Kalshi showed it: the server, not we, decides whether case matters


MAX_EMAIL = 254  # RFC 5321's limit for an address


def check_email(text: str) -> str:
    email = text.strip()
    if len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email):
        raise UsageError(
            "--email is not an email address",
            hint="give the Kalshi account's email, or leave it out",
        )
    return email


def fingerprint_hex(public_der: bytes) -> str:
    return hashlib.sha256(public_der).hexdigest()


def validate_private_key(data: bytes, label: str) -> ValidKey:
    """The key in `data`, checked; KeyRejected (exit 2) naming `label` and the fix otherwise."""
    labels = [match.decode() for match in _LABEL.findall(data)]
    if not labels:
        raise _rejected(label, "garbage")
    if "ENCRYPTED PRIVATE KEY" in labels or b"Proc-Type: 4,ENCRYPTED" in data:
        raise _rejected(label, "encrypted")
    own = [name for name in labels if name in (_PKCS1, _PKCS8)]
    if not own:
        return _other_kind(label, labels[0])
    return _load(data, label, own[0])


def _load(data: bytes, label: str, pem_label: str) -> ValidKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    block = _block(data, pem_label)
    try:
        key = serialization.load_pem_private_key(block, password=None)
    except TypeError:
        raise _rejected(label, "encrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise _rejected(label, "damaged") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _rejected(label, "ec" if "EC" in type(key).__name__ else "not_rsa")
    if key.key_size < MIN_BITS:
        raise KeyRejected(
            f"{label} is a {key.key_size}-bit RSA key; Kalshi's API needs at least {MIN_BITS} bits",
            hint="create a new API key on Kalshi and use the private key it gives you",
            cause="too_small",
        )
    _self_test(key, label)
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if pem_label == _PKCS1
        else serialization.PrivateFormat.PKCS8
    )
    pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ValidKey(pem, key.key_size, fingerprint_hex(public))


def _block(data: bytes, pem_label: str) -> bytes:
    """Only the key's own PEM block: a file may also carry a certificate or a comment."""
    begin = f"-----BEGIN {pem_label}-----".encode()
    end = f"-----END {pem_label}-----".encode()
    start = data.find(begin)
    stop = data.find(end, start)
    return data[start : stop + len(end)] + b"\n" if stop >= 0 else data[start:]


def _self_test(key: RSAPrivateKey, label: str) -> None:
    """Sign as a Kalshi request is signed (RSA-PSS, SHA-256) and verify with the public key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    try:
        signature = key.sign(SELF_TEST_MESSAGE, pss, hashes.SHA256())
        key.public_key().verify(signature, SELF_TEST_MESSAGE, pss, hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise KeyRejected(
            f"{label} failed the signing self-test: a signature made with it does not verify",
            hint="the key is damaged; download it again or create a new API key on Kalshi",
            cause="self_test_failed",
        ) from None


_KINDS = {
    "PUBLIC KEY": "public",
    "RSA PUBLIC KEY": "public",
    "CERTIFICATE": "certificate",
    "TRUSTED CERTIFICATE": "certificate",
    "EC PRIVATE KEY": "ec",
}


def _other_kind(label: str, pem_label: str) -> ValidKey:
    raise _rejected(label, _KINDS.get(pem_label, "not_rsa"))


def _shell_word(label: str) -> str:
    import shlex

    return "KEY.pem" if label == "stdin" else shlex.quote(label)


def _rejected(label: str, kind: str) -> KeyRejected:
    plain = "-----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----"
    texts = {
        "garbage": (
            f"{label} is not a PEM file (no -----BEGIN line)",
            f"give the private key file Kalshi let you download, which starts with {plain}",
        ),
        "encrypted": (
            f"{label} is an encrypted private key; the services have no passphrase to open it",
            "write an unencrypted copy, private from the start: `(umask 077; openssl pkey -in "
            f"{_shell_word(label)} -out kalshi-plain.pem)` (it asks for the passphrase), then "
            "give that file",
        ),
        "public": (
            f"{label} holds a public key; signing needs the private key",
            f"give the private key file Kalshi let you download ({plain})",
        ),
        "certificate": (
            f"{label} holds a certificate, not a private key",
            f"give the private key file Kalshi let you download ({plain})",
        ),
        "ec": (
            f"{label} holds an EC (elliptic-curve) key; Kalshi's API keys are RSA",
            "give the RSA private key Kalshi let you download with the API key",
        ),
        "not_rsa": (
            f"{label} holds no RSA private key",
            f"give the private key file Kalshi let you download ({plain})",
        ),
        "damaged": (
            f"{label} looks like a private key but does not parse (truncated or damaged)",
            "copy the whole file again, from -----BEGIN to -----END, or download a new key",
        ),
    }
    message, hint = texts[kind]
    return KeyRejected(message, hint=hint, cause=f"key_{kind}")


def looks_like_key_material(text: str) -> bool:
    """A PEM block, or a long run of base64 that is no existing file: what a pasted key (or a
    line of one) looks like where a path belongs."""
    compact = "".join(text.split())
    if "-----BEGIN" in text or "-----END" in text:
        return True
    return bool(re.fullmatch(r"[A-Za-z0-9+/]{40,}={0,2}", compact)) and not Path(text).exists()
