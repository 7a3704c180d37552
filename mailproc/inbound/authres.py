"""Is the From address proven? Read the Authentication-Results our own border MTA added.

Pure. A From header costs nothing to forge, so commands need evidence: RFC 8601
Authentication-Results from an authserv-id we trust, with dkim=pass for a domain aligned with
the From domain, spf=pass for an aligned envelope sender, or dmarc=pass for the From domain.

What counts, and why:
- Fields are parsed by `authres` (dkimpy's RFC 8601 parser): a `;` or `=pass` inside a quoted
  value or a comment is text, not a result.
- Only fields above the topmost Received field that our border added (its `by` host is one of
  `border_hosts`) are ours: everything below it came with the mail, whatever authserv-id it
  claims. A mail without such a Received field proves nothing this way.
- Of those, the topmost field with a trusted authserv-id is the verdict.
- Alignment is relaxed (RFC 7489): the two domains share an organizational domain, read from
  the public-suffix list bundled with `publicsuffixlist` (no network): `header.d=com` aligns
  with nothing, `mail.example.co.uk` with `example.co.uk`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

_COMMENT = re.compile(r"\([^()]*\)")
_BY = re.compile(r"\bby\s+([^\s;()]+)", re.IGNORECASE)


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
    """One Authentication-Results field's value; None when it does not parse."""
    import authres

    try:
        header: Any = authres.AuthenticationResultsHeader.parse_value(value)
    except Exception:  # the library's own syntax errors, and whatever else junk provokes
        return None
    if not header.authserv_id:
        return None
    results = tuple(
        MethodResult(
            str(r.method).lower(),
            str(r.result).lower(),
            {f"{p.type}.{p.name}".lower(): str(p.value) for p in r.properties},
        )
        for r in header.results
    )
    return AuthResults(str(header.authserv_id).lower(), results)


def received_by(value: str) -> str:
    """The host a Received field names after `by`, lower case; '' if none."""
    previous = None
    while previous != value:  # comments nest; peel them from the inside out
        previous, value = value, _COMMENT.sub(" ", value)
    match = _BY.search(value)
    return match.group(1).lower().rstrip(".") if match else ""


def ours(
    names: Sequence[str], headers: Mapping[str, Sequence[str]], border_hosts: Iterable[str]
) -> list[str]:
    """The Authentication-Results values above the topmost Received field by a border host,
    top first. `names`: the mail's field names in order; `headers`: the values per name."""
    if "authentication-results" not in headers:  # most mail inside a company
        return []
    hosts = {h.lower() for h in border_hosts}
    received = iter(headers.get("received", ()))
    results = iter(headers.get("authentication-results", ()))
    above: list[str] = []
    for name in names:
        if name == "received" and received_by(next(received, "")) in hosts:
            return above
        if name == "authentication-results":
            above.append(next(results, ""))
    return []


def trusted_results(headers: Sequence[str], trusted_ids: Iterable[str]) -> AuthResults | None:
    trusted = {t.lower() for t in trusted_ids}
    for value in headers:
        parsed = parse(value)
        if parsed is not None and parsed.authserv_id in trusted:
            return parsed
    return None


@cache
def _suffixes() -> Any:
    """The bundled public-suffix list, read once per process when first needed."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def organizational(domain: str) -> str | None:
    """example.co.uk for mail.example.co.uk; None for a public suffix itself (com, co.uk)."""
    name = domain.lower().strip().strip(".")
    if not name or "." not in name:
        return None
    found: str | None = _suffixes().privatesuffix(name)
    return found


def aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment: both domains share one organizational domain."""
    a, b = organizational(domain), organizational(from_domain)
    return a is not None and a == b


def verdict(headers: Sequence[str], trusted_ids: Iterable[str], from_address: str) -> str | None:
    """Why the From address counts as authenticated, or None when it does not. `headers`: the
    Authentication-Results values our border added (`ours`), top first."""
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
