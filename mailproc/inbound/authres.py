"""Is the From address proven? Read the Authentication-Results our own mail servers added.

Pure. A From header costs nothing to forge, so commands need evidence: RFC 8601
Authentication-Results from an authserv-id we trust, with dkim=pass for a domain aligned with
the From domain, spf=pass for an aligned envelope sender, or dmarc=pass for the From domain.
Only the topmost header with a trusted authserv-id counts: our border MTA adds its result
above anything the sender wrote, and must strip incoming headers that claim its id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*([a-z0-9_.-]+)\s*=\s*([a-z]+)\b(.*)$", re.IGNORECASE | re.DOTALL)
_PROPERTY = re.compile(r"([a-z0-9_-]+)\.([a-z0-9_-]+)\s*=\s*(\"[^\"]*\"|[^\s;]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class MethodResult:
    method: str  # dkim, spf, dmarc, ...
    result: str  # pass, fail, none, ...
    properties: dict[str, str] = field(default_factory=dict)  # "header.d" -> "example.org"


@dataclass(frozen=True, slots=True)
class AuthResults:
    authserv_id: str
    results: tuple[MethodResult, ...]


def parse(value: str) -> AuthResults | None:
    """One Authentication-Results header value; None when it has no authserv-id."""
    text = _strip_comments(value)
    parts = [p.strip() for p in text.split(";")]
    head = parts[0].split()
    if not head:
        return None
    results = []
    for part in parts[1:]:
        match = _RESULT.match(part)
        if match is None:
            continue
        props = {
            f"{p.lower()}.{n.lower()}": v.strip('"') for p, n, v in _PROPERTY.findall(match[3])
        }
        results.append(MethodResult(match[1].lower(), match[2].lower(), props))
    return AuthResults(head[0].lower(), tuple(results))


def _strip_comments(value: str) -> str:
    previous = None
    while previous != value:  # comments nest; peel them from the inside out
        previous, value = value, _COMMENT.sub(" ", value)
    return value


def trusted_results(headers: Sequence[str], trusted_ids: Iterable[str]) -> AuthResults | None:
    trusted = {t.lower() for t in trusted_ids}
    for value in headers:
        parsed = parse(value)
        if parsed is not None and parsed.authserv_id in trusted:
            return parsed
    return None


def aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment without a public suffix list: the same domain, or one a subdomain of
    the other (mail.example.org and example.org align; example.org and evil.org do not)."""
    a, b = domain.lower().strip("."), from_domain.lower().strip(".")
    return bool(a and b) and (a == b or a.endswith("." + b) or b.endswith("." + a))


def verdict(headers: Sequence[str], trusted_ids: Iterable[str], from_address: str) -> str | None:
    """Why the From address counts as authenticated, or None when it does not."""
    found = trusted_results(headers, trusted_ids)
    from_domain = from_address.rpartition("@")[2]
    if found is None or not from_domain:
        return None
    for r in found.results:
        if r.result != "pass":
            continue
        if r.method == "dkim" and aligned(r.properties.get("header.d", ""), from_domain):
            return f"dkim=pass for {r.properties['header.d']} ({found.authserv_id})"
        if r.method == "spf":
            envelope = r.properties.get("smtp.mailfrom", "").rpartition("@")[2]
            if aligned(envelope, from_domain):
                return f"spf=pass for {envelope} ({found.authserv_id})"
        if r.method == "dmarc" and aligned(r.properties.get("header.from", ""), from_domain):
            return f"dmarc=pass for {from_domain} ({found.authserv_id})"
    return None
