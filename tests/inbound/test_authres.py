"""Authentication-Results: only our servers' verdicts count, and only when aligned with From."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailproc.inbound.authres import aligned, ours, parse, received_by, verdict

TRUSTED = ["mx.example.com"]


def test_parse_a_typical_header():
    parsed = parse(
        "mx.example.com 1; dkim=pass (2048-bit key) header.d=example.org header.s=sel "
        'header.b="abc"; spf=pass (sender ok) smtp.mailfrom=bounce@example.org; '
        "dmarc=pass (p=reject) header.from=example.org"
    )
    assert parsed is not None and parsed.authserv_id == "mx.example.com"
    assert [(r.method, r.result) for r in parsed.results] == [
        ("dkim", "pass"),
        ("spf", "pass"),
        ("dmarc", "pass"),
    ]
    assert parsed.results[0].properties["header.d"] == "example.org"
    assert parsed.results[1].properties["smtp.mailfrom"] == "bounce@example.org"


@pytest.mark.parametrize(
    ("header", "sender", "expected"),
    [
        ("mx.example.com; dkim=pass header.d=example.org", "tina@example.org", "dkim=pass"),
        ("mx.example.com; dkim=pass header.d=mail.example.org", "tina@example.org", "dkim=pass"),
        ("mx.example.com; spf=pass smtp.mailfrom=example.org", "tina@example.org", "spf=pass"),
        ("MX.Example.COM; dmarc=pass header.from=example.org", "tina@example.org", "dmarc=pass"),
        ("mx.example.com; dkim=pass header.d=evil.org", "tina@example.org", None),
        ("mx.example.com; dkim=fail header.d=example.org", "tina@example.org", None),
        ("mx.example.com; spf=softfail smtp.mailfrom=example.org", "tina@example.org", None),
        ("mx.example.com; spf=pass smtp.mailfrom=x@evil.org", "tina@example.org", None),
        ("evil.example.net; dkim=pass header.d=example.org", "tina@example.org", None),
        ("mx.example.com; none", "tina@example.org", None),
        (
            "mx.example.com; dkim=pass (comment (nested)) header.d=example.org",
            "t@example.org",
            "dkim=pass",
        ),
    ],
)
def test_verdict(header, sender, expected):
    found = verdict([header], TRUSTED, sender)
    assert (found.split(" ")[0] if found else None) == expected


def test_only_the_topmost_trusted_header_counts():
    ours = "mx.example.com; dkim=fail header.d=example.org"
    forged_below = "mx.example.com; dkim=pass header.d=example.org"
    assert verdict([ours, forged_below], TRUSTED, "tina@example.org") is None


def test_headers_from_untrusted_servers_are_ignored():
    untrusted = "attacker.example.net; dkim=pass header.d=example.org"
    ours = "mx.example.com; dkim=pass header.d=example.org"
    assert verdict([untrusted, ours], TRUSTED, "tina@example.org") is not None
    assert verdict([untrusted], TRUSTED, "tina@example.org") is None


@pytest.mark.parametrize(
    ("a", "b", "ok"),
    [
        ("example.org", "example.org", True),
        ("mail.example.org", "example.org", True),
        ("example.org", "sub.example.org", True),
        ("badexample.org", "example.org", False),
        ("example.org", "evil.org", False),
        ("", "example.org", False),
    ],
)
def test_alignment(a, b, ok):
    assert aligned(a, b) is ok


@given(st.text())
def test_parse_never_raises(value):
    parse(value)
    verdict([value], TRUSTED, "a@example.org")


def test_a_semicolon_in_a_quoted_value_cannot_smuggle_a_pass():
    header = 'mx.example.com; dkim=fail reason="bad; dkim=pass header.d=example.org"'
    assert verdict([header], TRUSTED, "tina@example.org") is None


@pytest.mark.parametrize(
    ("domain", "from_domain", "expected"),
    [
        ("com", "example.com", False),  # a public suffix aligns with nothing
        ("co.uk", "example.co.uk", False),
        ("mail.example.co.uk", "example.co.uk", True),
        ("example.co.uk", "other.co.uk", False),
        ("eu.mail.example.com", "support.example.com", True),  # one organization
        ("example.com.evil.net", "example.com", False),
    ],
)
def test_alignment_by_organizational_domain(domain, from_domain, expected):
    assert aligned(domain, from_domain) is expected


def test_a_pass_for_a_public_suffix_proves_nothing():
    assert verdict(["mx.example.com; dkim=pass header.d=com"], TRUSTED, "t@example.com") is None


HEADERS = {
    "received": ("from lmtp by imap.example.com", "from x by mx.example.com", "from a by b"),
    "authentication-results": ("mx.example.com; dkim=pass header.d=example.org",),
}


def test_only_results_above_our_borders_received_field_are_ours():
    above = ["received", "authentication-results", "received", "received"]
    assert ours(above, HEADERS, TRUSTED) == [HEADERS["authentication-results"][0]]
    below = ["received", "received", "authentication-results", "received"]  # the sender's
    assert ours(below, HEADERS, TRUSTED) == []
    assert ours(["authentication-results"], HEADERS, TRUSTED) == []  # no border: nothing


def test_received_by_reads_the_host_outside_comments():
    value = "from a (helo by evil.net) by MX.Example.com. (Postfix) with ESMTPS id 1; Mon"
    assert received_by(value) == "mx.example.com"
