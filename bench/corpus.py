"""A deterministic corpus of support mail for the benchmarks.

About 70 % new reports from a few hundred senders and 30 % replies threaded by In-Reply-To and
References, some from solvers with subject-line commands; RFC 2047 subjects and names in
several languages, multipart/alternative with HTML, small attachments. The same seed gives the
same bytes, so runs compare. A manifest maps each reply to the report that opened its thread,
which is how the benchmark checks threading.

    python bench/corpus.py 1000 /tmp/corpus   # writes mail/000001.eml … and manifest.jsonl
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

SUPPORT = "mail-support@example.com"
SOLVERS = [("Tina Solver", "tina@example.com"), ("Sam Admin", "sam@example.com")]
AUTH_RESULTS = "mx.example.com; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com"
FIRST = ["Alice", "Jiří", "Zoë", "Łukasz", "Søren", "Анна", "Björn", "Chloé", "陈", "Ana"]
LAST = ["Novák", "Müller", "Kowalski", "Nørgaard", "Иванова", "García", "Dubois", "Smith"]
TOPICS = [
    "Exchange server is down",
    "Outlook kann keine Mails senden",
    "Tiskárna v 2. patře nefunguje",
    "VPN se nepřipojí",
    "Impossible d'ouvrir ma boîte aux lettres",
    "Сервер почты не отвечает",
    "Drukarka nie drukuje",
    "Printer offline since this morning",
    "メールが送信できません",
    "Shared drive very slow",
]
BODY = (
    "Hello,\n\nsince about {hour}:00 {topic_lower}. I tried restarting, it did not help.\n"
    "Error shown: 0x{code:08X}\n\nRegards,\n{name}\n"
)
COMMANDS = ["[ASSIGN tina]", "[PRIORITY P2]", "[ASSIGN sam] [PRIORITY high]", "[CLOSE]"]


@dataclass(frozen=True)
class Thread:
    root: str
    last: str
    topic: str
    reporter: tuple[str, str]


@dataclass(frozen=True)
class Expected:
    message_id: str
    root: str  # message id of the report that opened the thread (itself for a report)


def _sender(rng: random.Random, i: int) -> tuple[str, str]:
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    return name, f"user{i % 300}@customer.example.org"


def _message(
    rng: random.Random,
    local: str,
    name: str,
    address: str,
    subject: str,
    text: str,
    date: datetime,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = Address(name, addr_spec=address)
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = f"<{local}@customer.example.org>"
    msg.set_content(text)
    if rng.random() < 0.5:
        html = "<html><body>" + "".join(f"<p>{line}</p>" for line in text.splitlines()) + "</body>"
        msg.add_alternative(html + "</html>", subtype="html")
    if rng.random() < 0.15:
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(200, 2000)))
        msg.add_attachment(payload, maintype="image", subtype="png", filename="screenshot.png")
    return msg


def generate(count: int, seed: int = 1, tag: str = "bench") -> Iterator[tuple[bytes, Expected]]:
    rng = random.Random(seed)
    threads: list[Thread] = []
    start = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    for n in range(1, count + 1):
        date = start + timedelta(seconds=30 * n)
        if threads and rng.random() < 0.3:
            yield _reply(rng, f"{tag}-{n}", date, threads)
            continue
        name, address = _sender(rng, rng.randrange(10_000))
        topic = rng.choice(TOPICS)
        text = BODY.format(
            hour=rng.randint(7, 17), topic_lower=topic.lower(), code=rng.getrandbits(32), name=name
        )
        msg = _message(rng, f"{tag}-{n}", name, address, topic, text, date)
        mid = f"{tag}-{n}@customer.example.org"
        threads.append(Thread(mid, mid, topic, (name, address)))
        yield msg.as_bytes(), Expected(mid, mid)


def _reply(
    rng: random.Random, local: str, date: datetime, threads: list[Thread]
) -> tuple[bytes, Expected]:
    index = rng.randrange(max(0, len(threads) - 200), len(threads))
    thread = threads[index]
    root, last, topic = thread.root, thread.last, thread.topic
    solver = rng.random() < 0.4
    if solver:
        name, address = SOLVERS[rng.randrange(len(SOLVERS))]
        subject = f"Re: {topic} {rng.choice(COMMANDS[:3])}"
        text = "Looking into it.\n\nOn Mon, someone wrote:\n> previous text\n"
    else:
        name, address = thread.reporter
        subject = f"AW: {topic}"
        text = "Any news? It is still broken.\n\n-----Original Message-----\nFrom: x\n"
    msg = _message(rng, local, name, address, subject, text, date)
    msg["In-Reply-To"] = f"<{last}>"
    msg["References"] = f"<{root}> <{last}>" if root != last else f"<{root}>"
    if solver:
        msg["Authentication-Results"] = AUTH_RESULTS
        msg["Received"] = "from mail.example.com (mail.example.com [192.0.2.25]) by mx.example.com"
    mid = f"{local}@customer.example.org"
    threads[index] = Thread(root, mid, topic, thread.reporter)
    return msg.as_bytes(), Expected(mid, root)


def write(count: int, folder: Path, seed: int = 1, tag: str = "bench") -> Path:
    """Mails go to FOLDER/mail/, the manifest to FOLDER/manifest.jsonl; returns the mail folder."""
    mail = folder / "mail"
    mail.mkdir(parents=True, exist_ok=True)
    with (folder / "manifest.jsonl").open("w") as out:
        for n, (raw, expected) in enumerate(generate(count, seed, tag), 1):
            (mail / f"{n:06d}.eml").write_bytes(raw)
            out.write(json.dumps({"message_id": expected.message_id, "root": expected.root}))
            out.write("\n")
    return mail


if __name__ == "__main__":
    write(int(sys.argv[1]), Path(sys.argv[2]))
