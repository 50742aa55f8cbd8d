"""What counts as a secret, and how it is masked: the one rule every output path applies.

Output.redact passes every string it prints, writes as JSON or logs through `mask_text` (free
text: URL credentials, `password=`, a secret-named `KEY=value` or query parameter, a JWT) and
through `mask_secrets` (the exact secrets of this run). A message that quotes a URL masks it first
with `redact_url`, which knows where the URL starts and ends and so can mask every shape of it,
even one no parser accepts. Where the shape is ambiguous, it masks: a less helpful message about a
malformed URL is the price of never echoing a password.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from urllib.parse import quote, quote_plus, unquote

from recio_setup.result import MASK

# Words that make a name (an .env key, a query parameter, a conninfo keyword) secret. Whole words,
# so PASS does not catch PASSFILE (a path) or BYPASS, and AUTH_ENABLED stays visible.
_PASSWORD_WORDS = ("PASS", "PASSWORD", "PASSWORDS", "PASSWD", "PWD", "PW", "PASSPHRASE", "OTP")
_TOKEN_WORDS = ("SECRET", "SECRETS", "TOKEN", "TOKENS", "JWT", "COOKIE", "COOKIES", "SALT")
_KEY_WORDS = ("KEY", "KEYS", "APIKEY", "PRIVATE", "CREDENTIAL", "CREDENTIALS", "CREDS", "SIG")
SECRET_WORDS = frozenset((*_PASSWORD_WORDS, *_TOKEN_WORDS, *_KEY_WORDS, "SIGNATURE"))
# Parts that are secret even glued to other words (DBPASSWORD, ACCESSTOKEN, MYSECRET).
SECRET_PARTS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "CREDENTIAL", "APIKEY")
# Names secret only on their own (AUTH=... is, AUTH_ENABLED=... is not).
SECRET_ALONE = frozenset(("AUTH", "AUTHORIZATION", "BEARER", "SESSION", "SESSIONID", "SID"))

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
# Every pattern is linear in its text (a hostile .env line may be a megabyte long): a name is
# matched on its own and its value only when the name is secret, so no value is scanned twice.
# KEY=value in free text, as .env lines, conninfo and comments write it; not after a `-` (flags)
# or a query separator (see _PARAM_NAME). The value: quoted (maybe unterminated) or to a space.
_PAIR_NAME = re.compile(r"(?<![\w?&;.-])([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*")
_PAIR_VALUE = re.compile(r"""'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|[^\s'"]+""")
_PARAM_NAME = re.compile(r"[?&;]([^=&#;?\s'\"]+)=")
_PARAM_VALUE = re.compile(r"[^&#\s'\"]*")
_WORD = re.compile(r"[^\s'\"]+")
_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
# Where a URL's authority begins: after `scheme:` and its slashes, or after bare slashes.
_AUTHORITY_START = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*:(?=/))?/*")
_CONNINFO = re.compile(r"\s*[A-Za-z_]+\s*=")
_IPV6 = re.compile(r"\[[^\]]*\]")

Span = tuple[int, int]


@functools.lru_cache(maxsize=512)
def is_secret_name(name: str) -> bool:
    """Whether a key or parameter name says its value is a secret (DB_PWD, accessToken, JWT)."""
    words = {word.upper() for word in _WORD_SPLIT.split(name) if word}
    upper = name.upper()
    return (
        bool(words & SECRET_WORDS)
        or any(part in upper for part in SECRET_PARTS)
        or re.sub(r"[^A-Z0-9]", "", upper) in SECRET_ALONE
    )


def _secret_values(
    text: str, name: re.Pattern[str], value: re.Pattern[str], decode: bool = False
) -> Iterator[Span]:
    position = 0
    while found := name.search(text, position):
        position = found.end()
        key = unquote(found.group(1)) if decode else found.group(1)
        if is_secret_name(key) and (secret := value.match(text, position)):
            yield secret.span()
            position = max(position, secret.end())


def _credentials(text: str) -> Iterator[Span]:
    """Credentials of a URL in free text, whatever its shape: in each word with an `@`, from the
    first `:` that is not a scheme's (followed by `/`) to the last `@` (a password may hold
    `/ ? # @ :`). `postgresql://u@h` holds none."""
    for word in _WORD.finditer(text):
        at = word.group().rfind("@")
        colon = word.group().find(":", 0, max(at, 0))
        while colon != -1 and word.group().startswith("/", colon + 1):
            colon = word.group().find(":", colon + 1, at)
        if colon != -1:
            yield word.start() + colon + 1, word.start() + at


def _text_spans(text: str) -> Iterator[Span]:
    yield from _secret_values(text, _PAIR_NAME, _PAIR_VALUE)
    yield from _secret_values(text, _PARAM_NAME, _PARAM_VALUE, decode=True)
    yield from _credentials(text)
    for match in _JWT.finditer(text):
        yield match.span()


def _url_spans(url: str) -> Iterator[Span]:
    """What may be a password in a string meant as a URL or conninfo, however malformed."""
    yield from _text_spans(url)
    if _CONNINFO.match(url):
        return  # key=value conninfo has no userinfo; its password= is a pair above
    start = _AUTHORITY_START.match(url)
    begin = start.end() if start else 0
    at = url.rfind("@")
    if at >= begin:
        # Everything before the last `@` may be userinfo; the user is what precedes its first `:`.
        colon = url.find(":", begin, at)
        if colon != -1:
            yield colon + 1, at
            # libpq ends the userinfo at the first `@`: what follows one inside the password
            # becomes part of the host, which connection errors then echo.
            inner = url.find("@", colon + 1, at)
            while inner != -1:
                yield inner + 1, at
                inner = url.find("@", inner + 1, at)
        return
    # No `@`: `USER:PASSWORD` without its host reads as host:port. A port is digits; anything else
    # after a `:` may be a password holding `/ ? #`, so it is masked to the end.
    end = next((i for i, ch in enumerate(url) if i >= begin and ch in "/?#"), len(url))
    offset = begin
    for host in url[begin:end].split(","):
        bare = _IPV6.sub("", host, count=1) if host.startswith("[") else host
        colon = bare.find(":")
        port = bare[colon + 1 :]
        if colon != -1 and port and not port.isdigit():
            yield offset + (len(host) - len(bare)) + colon + 1, len(url)
            return
        offset += len(host) + 1


def _apply(text: str, spans: Iterable[Span]) -> str:
    merged: list[list[int]] = []
    for begin, end in sorted(spans):
        if end <= begin:
            continue
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    pieces: list[str] = []
    shown_from = 0
    for begin, end in merged:
        pieces += [text[shown_from:begin], MASK]
        shown_from = end
    return "".join([*pieces, text[shown_from:]])


def mask_text(text: str) -> str:
    """Free text with URL credentials, secret-named values and JWTs masked."""
    return _apply(text, _text_spans(text))


def _any(spans: Iterator[Span]) -> bool:
    return any(end > begin for begin, end in spans)


def has_secret(text: str) -> bool:
    """Whether `mask_text` would mask anything in `text`."""
    return _any(_text_spans(text))


def redact_url(url: str) -> str:
    """A URL or key=value conninfo with anything that may be a password masked, whatever its
    shape: `postgresql:/u:PW@h`, `u:PW@h/db`, `//u:PW@h`, `postgresql://u:PW`, `password=PW`."""
    return _apply(url, _url_spans(url))


def url_holds_secret(url: str) -> bool:
    """Whether a URL may hold a password (anything `redact_url` would mask)."""
    return _any(_url_spans(url))


def url_secrets(url: str | None) -> list[str]:
    """The strings of `url` that may be a password, raw, percent-decoded and unquoted, so that
    an echo of any of them (a value parsed out of a malformed URL) is masked too."""
    if not url:
        return []
    found: list[str] = []
    for begin, end in _url_spans(url):
        raw = url[begin:end]
        found += [raw, raw.strip("'\""), unquote(raw, errors="ignore")]
    return [secret for secret in found if secret]


def mask_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every given secret (raw, URL-encoded or conninfo-quoted) masked."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        forms = {
            secret,
            # surrogateescape: an undecodable byte from the environment must not break masking.
            quote(secret, safe="", errors="surrogateescape"),
            quote_plus(secret, errors="surrogateescape"),
            secret.replace("\\", "\\\\").replace("'", "\\'"),
        }
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, MASK)
    return text
