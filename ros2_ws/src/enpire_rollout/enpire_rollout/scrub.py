"""One scrub for everything a policy can make appear in a reason, an event, a log, a bag or the index:
secret-shaped strings removed, length capped. A second line of defence: the sandbox already keeps the
secrets out of a policy's reach (its environment is an allow-list, its file view holds none).

    reason = scrub(text)              # str, capped at REASON_CHARS
    detail = scrub_value(obj)         # dicts, lists and tuples scrubbed string by string
"""
from __future__ import annotations

import base64
import functools
import os
import re

REASON_CHARS = 2000
REDACTED = '[redacted]'
# Environment variables whose values are secrets, by name.
SECRET_NAME = re.compile(r'KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE', re.IGNORECASE)
# Well-known API key and token formats.
KEY_FORMATS = re.compile('|'.join((
    r'sk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_\-]{16,}',      # OpenAI, Anthropic, Stripe-like
    r'(?:AKIA|ASIA)[0-9A-Z]{16}',                              # AWS access key ids
    r'gh[pousr]_[A-Za-z0-9]{20,}', r'github_pat_[A-Za-z0-9_]{20,}',
    r'glpat-[A-Za-z0-9_\-]{20,}', r'xox[abprs]-[A-Za-z0-9\-]{10,}', r'AIza[0-9A-Za-z_\-]{30,}',
    r'hf_[A-Za-z0-9]{30,}', r'(?i:bearer)\s+[A-Za-z0-9._~+/\-]{20,}=*',
    r'-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)',
)))
_MIN_SECRET_CHARS = 8


def secret_values(environ=None) -> list[str]:
    """Values of this process's secret-looking environment variables, longest first."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if SECRET_NAME.search(k) and len(v) >= _MIN_SECRET_CHARS}
    return sorted(values, key=len, reverse=True)


def encoded_forms(value: str) -> list[str]:
    """`value` and the forms it takes when encoded inside a longer text: hex (either case), base64 and
    urlsafe base64 at each of the three byte alignments (the characters that depend on the neighbouring
    bytes left out), reversed."""
    raw = value.encode()
    forms = {value, value[::-1], raw.hex(), raw.hex().upper()}
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b'\0' * offset + raw).decode().rstrip('=')
            head = (offset * 4 + 2) // 3          # characters that carry a neighbour's bits
            tail = len(text) - (len(text) % 4 != 0)
            core = text[head:tail]
            if len(core) >= _MIN_SECRET_CHARS:
                forms.add(core)
    return sorted(forms, key=len, reverse=True)


@functools.lru_cache(maxsize=64)
def _forms_of(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(form for value in values for form in encoded_forms(value))


def scrub(text, limit: int = REASON_CHARS, environ=None) -> str:
    """`text` without secrets (the environment's secret values, plain or hex/base64-encoded, and API key
    formats), at most `limit` chars."""
    if not isinstance(text, str):
        text = str(text)
    for form in _forms_of(tuple(secret_values(environ))):
        if form in text:
            text = text.replace(form, REDACTED)
    text = KEY_FORMATS.sub(REDACTED, text)
    if len(text) > limit:
        cut = len(text) - limit
        text = text[:limit] + f'... ({cut} more characters cut)'
    return text


def scrub_value(value, limit: int = REASON_CHARS):
    """Strings inside dicts, lists and tuples scrubbed; keys too; other values as they are."""
    if isinstance(value, str):
        return scrub(value, limit)
    if isinstance(value, dict):
        return {scrub(str(k), 200): scrub_value(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(v, limit) for v in value]
    return value
