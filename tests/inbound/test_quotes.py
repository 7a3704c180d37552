"""reply_text: only what the replier wrote now, without quoted history or signature."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproc.inbound.parse import parse_mail
from mailproc.inbound.quotes import reply_text

DATA = Path(__file__).resolve().parent.parent / "data" / "mail"


def test_gmail_reply_sample() -> None:
    text = parse_mail((DATA / "gmail_reply.eml").read_bytes()).text
    assert reply_text(text) == (
        "Hallo zusammen,\n\nder Drucker geht seit dem Neustart wieder. "
        "Danke für die schnelle Hilfe!\n\nTina"
    )


def test_outlook_reply_sample() -> None:
    text = parse_mail((DATA / "outlook_reply.eml").read_bytes()).text
    assert reply_text(text) == (
        "Hallo Herr Becker,\n\ndas Problem besteht weiterhin – der Rechner startet nicht."
        "\n\nMit freundlichen Grüßen\nJörg Schäfer"
    )


@pytest.mark.parametrize(
    "attribution",
    [
        "On Tue, 3 Mar 2026 at 10:00, Tina <tina@example.com> wrote:",
        "On Tue, Mar 3, 2026 at 10:00 AM Tina Example <tina@example.com> wrote:",
        "On 03/03/2026 10:00, Tina Example wrote:",
        "On Tue, 3 Mar 2026 at 10:00, Tina Example <tina@example.com>\nwrote:",
        "On Tue, Mar 3, 2026 at 10:00 AM Tina Example <\ntina@example.com> wrote:",
        "Am 03.03.2026 um 10:00 schrieb Tina <tina@example.de>:",
        "Am Di., 3. März 2026 um 10:00 Uhr schrieb Tina Example <tina@example.de>:",
        "Le mar. 3 mars 2026 à 10:00, Tina <tina@example.fr> a écrit :",
        "Op di 3 mrt. 2026 om 10:00 schreef Tina <tina@example.nl>:",
        "El mar, 3 mar 2026 a las 10:00, Tina (<tina@example.es>) escribió:",
        "W dniu 3.03.2026 o 10:00, Tina pisze:",
        "wt., 3 mar 2026 o 10:00 Tina <tina@example.pl> napisał(a):",
        "Dne 03.03.2026 v 10:00 Tina napsal(a):",
        "út 3. 3. 2026 v 10:00 odesílatel Tina <tina@example.cz> napsal:",
        "Den tis 3 mars 2026 kl 10:00 skrev Tina <tina@example.se>:",
        "Il giorno mar 3 mar 2026 alle ore 10:00 Tina <tina@example.it> ha scritto:",
    ],
)
def test_quoted_tail_and_attribution_are_cut(attribution: str) -> None:
    text = f"Danke, erledigt.\n\nGruß Jan\n\n{attribution}\n\n> Bitte prüfen.\n>\n> Tina\n"
    assert reply_text(text) == "Danke, erledigt.\n\nGruß Jan"


@pytest.mark.parametrize(
    "history",
    [
        "-----Original Message-----\nFrom: Tina\nSent: Tuesday\nTo: Support\nSubject: x",
        "-----Ursprüngliche Nachricht-----\nVon: Tina\nGesendet: Dienstag\nAn: Support",
        "----- Original Message -----\nFrom: Tina",
        "______________________________\nFrom: Tina <t@example.com>\nSent: Tuesday, March 3, 2026"
        " 10:00 AM\nTo: Support <s@example.com>\nSubject: Printer",
        "______________________________\nVon: Tina\nGesendet: Dienstag, 3. März 2026 10:00"
        "\nAn: Support\nBetreff: Drucker",
        "De : Tina <t@example.fr>\nEnvoyé : mardi 3 mars 2026\nÀ : Support\nObjet : Imprimante",
        "Od: Tina <t@example.cz>\nOdesláno: úterý 3. března 2026\nKomu: Podpora\nPředmět: Tiskárna",
        "Från: Tina <t@example.se>\nSkickat: den 3 mars 2026 10:00\nTill: Support\nÄmne: Skrivare",
        "From: Tina <t@example.com>\nDate: Tuesday, 3 March 2026\nTo: Support\nSubject: Printer",
        "*From:* Tina <t@example.com>\n*Sent:* Tuesday\n*To:* Support",
        # Outlook in Spanish, Portuguese, Japanese, Chinese (simplified, traditional), Korean
        "De: Tina <t@example.es>\nEnviado el: martes, 3 de marzo de 2026 10:00\nPara: Soporte"
        "\nAsunto: Impresora",
        "De: Tina <t@example.pt>\nEnviada em: terça-feira, 3 de março de 2026 10:00\n"
        "Para: Suporte\nAssunto: Impressora",
        "差出人: Tina <t@example.jp>\n送信日時: 2026年3月3日 10:00\n宛先: サポート"
        "\n件名: プリンター",
        "发件人: Tina <t@example.cn>\n发送时间: 2026年3月3日 10:00\n收件人: 支持\n主题: 打印机",
        "寄件者：Tina <t@example.tw>\n寄件日期：2026年3月3日 上午 10:00\n收件者：支援"
        "\n主旨：印表機",
        "보낸 사람: Tina <t@example.kr>\n보낸 날짜: 2026년 3월 3일 화요일 10:00\n받는 사람: 지원"
        "\n제목: 프린터",
    ],
)
def test_outlook_history_is_cut(history: str) -> None:
    text = f"New text here.\n\nRegards\nJan\n\n{history}\n\nOld text.\n"
    assert reply_text(text) == "New text here.\n\nRegards\nJan"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello\n\n-- \nJohn Doe\nACME Corp\n", "Hello"),
        ("Hello\n--\nJohn Doe\n", "Hello"),
        ("Hello\n---\nstill text\n", "Hello\n---\nstill text"),
        ("Hello\n-- not a separator\n", "Hello\n-- not a separator"),
        ("Hello\n\n-- \nJohn\n\nOn 3 Mar 2026, Tina <t@x.org> wrote:\n> old\n", "Hello"),
    ],
)
def test_signature_is_cut(text: str, expected: str) -> None:
    assert reply_text(text) == expected


def test_interleaved_answers_are_kept() -> None:
    text = (
        "On Tue, 3 Mar 2026 at 10:00, Tina <tina@example.com> wrote:\n"
        "> Which printer?\n"
        "The one on the 2nd floor.\n"
        "\n"
        "> Since when?\n"
        ">\n"
        "\n"
        "Since Monday.\n"
        "\n"
        "> Thanks, Tina\n"
    )
    assert reply_text(text) == "The one on the 2nd floor.\n\nSince Monday."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Just a new request.\nNo quoting.\n", "Just a new request.\nNo quoting."),
        ("\n\n  Spaced out  \n\n", "Spaced out"),
        ("-- \nonly a signature\n", "-- \nonly a signature"),
        ("> only quoted text\n> nothing new\n", ""),
        ("-----Original Message-----\nFrom: x\n", ""),
        ("", ""),
        ("Line one\r\nLine two\r\n\r\n> old\r\n", "Line one\nLine two"),
    ],
)
def test_edge_cases(text: str, expected: str) -> None:
    assert reply_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "On Monday we rebooted the server.\nIt works now.",
        "From: the logs I can see errors.\nPlease check.",
        "Am Montag schrieb er mir: bitte helfen\nDanke",
        "Subject: printer\nTo: whom it may concern",
    ],
)
def test_ordinary_text_is_not_mistaken_for_history(text: str) -> None:
    assert reply_text(text) == text


def test_history_quoted_by_indentation_is_cut_at_its_attribution() -> None:
    text = "Passt.\n\nOn Tue, 3 Mar 2026 at 10:00, Tina <tina@example.com> wrote:\n\n  old text\n"
    assert reply_text(text) == "Passt."


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab >-_:\n\rOnwrote:From0123")), max_size=300))
def test_result_is_unquoted_lines_of_the_input(text: str) -> None:
    source = {line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")}
    for line in reply_text(text).split("\n"):
        assert not line.strip() or line.strip() in source
        assert not line.lstrip(" \t").startswith(">")


@pytest.mark.parametrize(
    "attribution",
    [
        "2026年3月3日(火) 10:00 Tina <tina@example.jp>:",  # Gmail, Japanese
        "Tina <tina@example.cn> 于2026年3月3日周二 10:00写道：",  # Gmail, Chinese
        "El mar, 3 mar 2026 a las 10:00, Tina (<tina@example.es>) escribió:",
        "Em ter., 3 de mar. de 2026 às 10:00, Tina <tina@example.pt> escreveu:",
    ],
)
def test_localised_attributions_cut_the_history_under_them(attribution: str) -> None:
    text = f"Der Drucker geht wieder.\n\n{attribution}\n\nalte Nachricht\n"
    assert reply_text(text) == "Der Drucker geht wieder."


def test_a_chinese_reply_keeps_only_its_new_text() -> None:
    """The zh case of mail-parser-reply (MIT licence, test/emails/email_zh_1.txt), shortened."""
    text = (
        "安安：\n\n周末聚会的时间和地点我这边已经整理好了，先发你确认一下。\n\n"
        "以上，看到后告诉我是否需要调整。\n\n"
        "雨州 <yuzhou.liu@example.com> 在 2026年2月29日 周六 19:47 写道：\n\n"
        "大家好，这周末想组织一次轻松的线下聚会，先发一个初步想法供大家讨论。\n"
    )
    assert reply_text(text) == (
        "安安：\n\n周末聚会的时间和地点我这边已经整理好了，先发你确认一下。\n\n"
        "以上，看到后告诉我是否需要调整。"
    )
