"""Is a mail's From address proven well enough to let its commands change an incident?

Pure. A From header costs nothing to forge, so a command needs evidence, as the configuration
(`security.command_authentication`) asks: the sender's personal reply token — in the address the
mail was delivered to, in a signed Message-ID of ours the reply names, or in the subject's
`[INC-n.<tag>]` (mailproc.signing) — or a trusted Authentication-Results header
(mailproc.inbound.authres), or either. `none` trusts the From header and is for closed test setups.
Comments need no proof: they change nothing but the history, and say who wrote them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mailproc import signing
from mailproc.config.safety import CommandAuth
from mailproc.config.settings import Settings
from mailproc.inbound import authres
from mailproc.inbound.parse import InboundMail

_DELIVERED = ("to", "cc", "delivered-to", "x-original-to")


def unproven(
    mail: InboundMail,
    settings: Settings,
    incident: int | None,
    lists: Iterable[str] = (),
    subject_tag: str = "",
) -> str | None:
    """None when the sender is proven for commands on `incident` (None: a new incident);
    else why not, in words for the sender's transcript. `lists`: further addresses whose
    reply token the sender may present (`list_tokens`). `subject_tag`: the signed tag read
    from the subject's `[INC-n.<tag>]`, if any."""
    mode = settings.security.command_authentication
    if mode is CommandAuth.NONE:
        return None
    sender = mail.sender.email if mail.sender else ""
    if not sender:
        return "not authenticated: the mail has no sender address"
    if mode in (CommandAuth.EITHER, CommandAuth.REPLY_TOKEN) and incident is not None:
        for address in (sender, *lists):
            if _token(mail, settings.verification_keys, incident, address, subject_tag):
                return None
    if mode in (CommandAuth.EITHER, CommandAuth.AUTHENTICATION_RESULTS):
        security = settings.security
        border = security.border_hosts or security.trusted_authserv_ids
        headers = authres.ours(mail.field_names, mail.headers, border)
        if authres.verdict(headers, security.trusted_authserv_ids, sender):
            return None
    return _why(mode, sender, incident)


def _token(
    mail: InboundMail, keys: Sequence[bytes], incident: int, address: str, subject_tag: str
) -> bool:
    """Whether the reply carries `address`'s token: in the address it was delivered to, in a
    Message-ID of ours it names, or in the subject's tag."""
    delivered = [v for name in _DELIVERED for v in mail.headers.get(name, ())]
    return (
        signing.vouches(keys, delivered, incident, address)
        or signing.references_vouch(keys, (*mail.in_reply_to, *mail.references), incident, address)
        or signing.subject_vouches(keys, subject_tag, incident, address)
    )


def list_tokens(settings: Settings, sender: str, service: str | None) -> tuple[str, ...]:
    """The team and first-line addresses of the service, when the sender is one of its
    solvers (or an admin): a notice to such a list carries the list's token, and a solver who
    answers it from their own address shows with it that they received the mail through the
    list. Anyone else, a list member who is not a configured solver included, gains nothing."""
    person = settings.people_by_email.get(sender)
    if service is None or person is None or not person[1].solves(service):
        return ()
    config = settings.services[service]
    return tuple(a for a in (config.team, config.first_line) if a and a != sender)


def _why(mode: CommandAuth, sender: str, incident: int | None) -> str:
    signed = f"send from a mail server that signs your mail for {sender.rpartition('@')[2]} (DKIM)"
    if incident is None:
        fresh = "a new mail carries no reply token, so it cannot command"
        advice = fresh if mode is CommandAuth.REPLY_TOKEN else signed
    else:
        token = (
            f"reply to one of our notifications about INC-{incident} (its Reply-To address, "
            "its Message-ID and the tag in its subject carry your personal token)"
        )
        advice = {
            CommandAuth.EITHER: f"{token}, or {signed}",
            CommandAuth.REPLY_TOKEN: token,
            CommandAuth.AUTHENTICATION_RESULTS: signed,
        }[mode]
    return f"not authenticated: the From address {sender} alone is not proof; {advice}"
