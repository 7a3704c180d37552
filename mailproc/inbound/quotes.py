"""Extract the new text of a reply, dropping quoted history, attributions and signatures.

Solvers and callers answer tickets by mail; only what they wrote now belongs in the
ticket journal, not the thread that their mail client quoted underneath.
"""

from __future__ import annotations

import re

__all__ = ["reply_text"]

_MAX_ATTRIBUTION = 300  # attribution lines are short; the limit also bounds regex work
_HEADER_WINDOW = 6  # lines after "From:" in which Outlook puts Sent/To/Subject

_QUOTE = re.compile(r"[ \t]*>")
_SIGNATURE = re.compile(r"-- ?")
_UNDERSCORES = re.compile(r"\s*_{10,}\s*")
_SEPARATOR = re.compile(
    r"\s*-{3,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine"
    r"|Oorspronkelijk bericht|Mensaje original|Původní zpráva|Ursprungligt meddelande"
    r"|Wiadomość oryginalna|Messaggio originale|Mensagem original|Alkuperäinen viesti"
    r"|Oprindelig meddelelse|Opprinnelig melding|Исходное сообщение)\s*-{3,}\s*",
    re.IGNORECASE,
)
# Outlook's header block in its languages (es "Enviado el:", pt "Enviada em:", ja "差出人:",
# zh "发件人:" and "寄件者:", ko "보낸 사람:"); CJK clients write a full-width colon too.
_HEADER_FROM = re.compile(
    r"\s*\*?(?:From|Von|De|Od|Från|Van|Da|Fra|Lähettäjä|От|Remitente|差出人|送信者|发件人|寄件者"
    r"|寄件人|보낸\s?사람)\s*\*?\s*[:：]",
    re.IGNORECASE,
)
_HEADER_SENT = re.compile(
    r"\s*\*?(?:Sent|Gesendet|Envoyé|Date|Datum|Odesláno|Skickat|Verzonden|Enviado(?:\s+el)?"
    r"|Enviada(?:\s+em)?|Enviado\s+em|Fecha|Wysłano|Data|Inviato|Lähetetty|Sendt|Отправлено"
    r"|送信日時|日時|发送时间|發送時間|寄件日期|时间|時間|日期|보낸\s?날짜)\s*\*?\s*[:：]",
    re.IGNORECASE,
)
_HEADER_TO = re.compile(
    r"\s*\*?(?:To|An|À|A|Komu|Till|Aan|Para|Do|Til|Vastaanottaja|Кому|Subject|Betreff|Objet"
    r"|Předmět|Ämne|Onderwerp|Asunto|Temat|Oggetto|Assunto|Aihe|Emne|Тема|宛先|件名|收件人|收件者"
    r"|主题|主題|主旨|받는\s?사람|제목)\s*\*?\s*[:：]",
    re.IGNORECASE,
)
_ATTRIBUTION_LEAD = re.compile(
    r"\s*(?:On|Am|Le|Op|El|W\s+dniu|Dne|Den|Il|Em|Pe|På)\s.*\d", re.IGNORECASE
)
_ATTRIBUTION_ADDRESS = re.compile(r"<[^<>\s]+@[^<>\s]+>")
# The verb ends the line, optionally followed by the writer ("schrieb Tina <t@x.de>:").
_ATTRIBUTION_VERB = re.compile(
    r"(?<!\w)(?:wrote|writes|schrieb|a\s+écrit|schreef|escribió|escribio|pisze|napisał\(a\)"
    r"|napisała|napisał|napsal\(a\)|napsala|napsal|skrev|ha\s+scritto|escreveu|kirjoitti"
    r"|написал\(а\)|написала|написал)(?!\w)[^:]{0,80}:\s*$"
    r"|(?:写道|寫道|님이\s*작성)\s*[:：]\s*$",  # zh Gmail "… <a@b> 于…写道：", ko "…님이 작성:"
    re.IGNORECASE,
)
# ja Gmail: "2026年12月5日(土) 9:00 Tina <tina@example.com>:", no verb at all
_ATTRIBUTION_JA = re.compile(r"\s*\d{4}年\d{1,2}月\d{1,2}日.*<[^<>\s]+@[^<>\s]+>\s*[:：]\s*$")


def reply_text(text: str) -> str:
    """The new part of a reply; a non-reply that would come out empty is returned whole."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    quote_cuts = [
        cut
        for cut in (_quoted_tail(lines), _outlook_block(lines), _bare_attribution(lines))
        if cut is not None
    ]
    signature = next((i for i, line in enumerate(lines) if _SIGNATURE.fullmatch(line)), None)
    cuts = quote_cuts if signature is None else [*quote_cuts, signature]
    kept = "\n".join(_drop_quotes(lines[: min(cuts, default=len(lines))])).strip()
    is_reply = bool(quote_cuts) or any(_QUOTE.match(line) for line in lines)
    return kept if kept or is_reply else "\n".join(lines).strip()


def _is_attribution(line: str) -> bool:
    """'On <date>, <who> wrote:' in many languages, or '... <addr@host> <verb>:'.

    Split into linear-time checks, cheapest first: this runs on many lines.
    """
    if len(line) > _MAX_ATTRIBUTION or not line.rstrip().endswith((":", "：")):
        return False
    if _ATTRIBUTION_JA.match(line):
        return True
    verb = _ATTRIBUTION_VERB.search(line)
    if verb is None:
        return False
    before = line[: verb.start()]
    return bool(_ATTRIBUTION_LEAD.match(before) or _ATTRIBUTION_ADDRESS.search(before))


def _attribution_above(lines: list[str], index: int) -> int | None:
    """Start of a one- or two-line attribution ending at the last non-blank line above index."""
    end = index - 1
    while end >= 0 and not lines[end].strip():
        end -= 1
    if end >= 0 and _is_attribution(lines[end]):
        return end
    if end >= 1 and _is_attribution(f"{lines[end - 1]} {lines[end]}"):
        return end - 1
    return None


def _quoted_tail(lines: list[str]) -> int | None:
    """Where a block of '>' lines running to the end starts, including its attribution."""
    start = None
    for i in range(len(lines) - 1, -1, -1):
        if _QUOTE.match(lines[i]):
            start = i
        elif lines[i].strip():
            break
    if start is None:
        return None
    above = _attribution_above(lines, start)
    return start if above is None else above


def _bare_attribution(lines: list[str]) -> int | None:
    """An attribution with no '>' lines after it: history quoted by indentation (HTML mail)."""
    last_quote = max((i for i, line in enumerate(lines) if _QUOTE.match(line)), default=-1)
    for i in range(last_quote + 1, len(lines)):
        if _is_attribution(lines[i]) or (
            i + 1 < len(lines) and _is_attribution(f"{lines[i]} {lines[i + 1]}")
        ):
            return i
    return None


def _outlook_block(lines: list[str]) -> int | None:
    """Outlook's separator line, or its From/Sent/To header block (with the rule above it)."""
    for i, line in enumerate(lines):
        if _SEPARATOR.fullmatch(line):
            return i
        if _HEADER_FROM.match(line):
            window = lines[i + 1 : i + 1 + _HEADER_WINDOW]
            if any(_HEADER_SENT.match(w) for w in window) and any(
                _HEADER_TO.match(w) for w in window
            ):
                above = i - 1
                while above >= 0 and not lines[above].strip():
                    above -= 1
                return above if above >= 0 and _UNDERSCORES.fullmatch(lines[above]) else i
    return None


def _drop_quotes(lines: list[str]) -> list[str]:
    """Interleaved replies: drop '>' lines and their attributions, keep the answers between."""
    kept: list[str] = []
    dropped = False
    for line in lines:
        if _QUOTE.match(line):
            attribution = None if dropped else _attribution_above(kept, len(kept))
            if attribution is not None:
                del kept[attribution:]
            dropped = True
        elif line.strip():
            kept.append(line)
            dropped = False
        elif not (dropped and kept and not kept[-1].strip()):
            kept.append(line)
    return kept
