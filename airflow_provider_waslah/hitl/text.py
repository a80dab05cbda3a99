"""The WhatsApp side of Airflow's human-in-the-loop (HITL) questions, without Airflow.

Who is asked, how a question reads on WhatsApp, how a reply is read, and what is answered back:
plain functions over plain data, so they are unit-tested (with Hypothesis for the reply parser)
without a metadata DB. The Airflow sides are :mod:`airflow_provider_waslah.hitl.notifier` (asks, in
the worker) and :mod:`airflow_provider_waslah.hitl.responder` (answers, in the api-server).

Definitions (docs/hitl.md):

- **Identity.** A WhatsApp number asked a question is an Airflow HITL assignee whose id is
  ``whatsapp:<number or JID>``: ``whatsapp:6281234560010`` (a phone, normalised to ``62…``) or
  ``whatsapp:123456789012345@lid`` (a privacy-mode JID, kept as given). The reply's sender matches
  a phone when the event's ``from`` digits (or its ``remote_jid`` ``<phone>@s.whatsapp.net``) are
  that phone, and a ``@lid`` JID when ``remote_jid`` is that JID (or ``from`` its digits); answers
  always go back to ``remote_jid`` verbatim (the reference: a message to an ``@lid`` user's ``from``
  never arrives). Group chats (``@g.us``) never answer.
- **Short code.** Four letters derived from the task instance's id (``#KPRT``): stable for the
  question, different for every try, no state to keep. A reply names it (``KPRT 1``, ``#kprt
  tolak``, ``1 KPRT``) only when its sender has more than one question open.
- **Replies.** An option's number (as listed: ``1``), its text, or its Indonesian label for
  ``ApprovalOperator`` (``Setujui``/``Tolak``), case, spacing and surrounding punctuation ignored;
  with ``multiple=True`` several, separated by commas, spaces, ``dan`` or ``&`` (``1, 3``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import Any, Literal

#: Prefix of the HITL assignee ids (and responder ids) that are WhatsApp numbers or JIDs.
WHATSAPP_PREFIX = "whatsapp:"
#: Consonants without L (mistaken for 1): codes never spell words or look like option numbers.
CODE_ALPHABET = "BCDFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 4
#: Indonesian labels shown (and accepted, besides the option itself) for Airflow's fixed options.
OPTION_LABELS: Mapping[str, str] = {"Approve": "Setujui", "Reject": "Tolak"}
#: Questions are written for Indonesian approvers: times in WIB unless the notifier says otherwise.
DEFAULT_TIMEZONE = "Asia/Jakarta"
#: WhatsApp's limit is Waslah's: 4,000 characters per text.
MAX_TEXT = 4000
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")
_SUBJECT_IN_REPLY = 80
_QUOTED_REPLY = 40
_PHONE = re.compile(r"[1-9][0-9]{7,14}")
_JID_DIGITS = re.compile(r"[1-9][0-9]{0,19}")
# Separators between several chosen options; whitespace alone separates only numbers ("1 3").
_SEPARATORS = re.compile(r"\s*(?:[,;/&+\n]|\bdan\b|\band\b)\s*")
# Characters stripped from both ends of a reply or a piece of it: punctuation and WhatsApp's
# *bold* _italic_ ~strike~ `mono` markers.
_EDGE_PUNCTUATION = " \t\r\n.,;:!?*_~`'\"()[]{}<>«»“”‘’"


# ---------------------------------------------------------------------------------------- identity
def whatsapp_identity(number_or_jid: object) -> str:
    """The normalised identity of a person on WhatsApp: ``62…`` for a phone, ``…@lid`` kept as given.

    ``0812-3456-0010``, ``+62 812 3456 0010`` and ``6281234560010@s.whatsapp.net`` all give
    ``6281234560010``. Groups (``…@g.us``) are refused: a group cannot answer for one person.

    :raises ValueError: not a phone number or a person's JID.
    """
    text = str(number_or_jid).strip() if isinstance(number_or_jid, (str, int)) else ""
    if isinstance(number_or_jid, bool):
        text = ""
    if text.lower().startswith(WHATSAPP_PREFIX):
        text = text[len(WHATSAPP_PREFIX) :].strip()
    if "@" in text:
        local, _, domain = text.partition("@")
        domain = domain.lower()
        if domain == "s.whatsapp.net" and _PHONE.fullmatch(local):
            return local
        if domain == "lid" and _JID_DIGITS.fullmatch(local):
            return f"{local}@lid"
        raise ValueError(f"{number_or_jid!r} is not a person's WhatsApp number or JID (groups cannot answer)")
    digits = re.sub(r"[ \-().]", "", text)
    digits = digits[1:] if digits.startswith("+") else digits
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    if not digits.isascii() or not _PHONE.fullmatch(digits):
        raise ValueError(f"{number_or_jid!r} is not a WhatsApp number (8-15 digits, e.g. 0812…, +62812…, 62812…)")
    return digits


def whatsapp_user(number_or_jid: str | int, name: str | None = None) -> dict[str, str]:
    """An Airflow HITL assignee (``HITLUser``) for a WhatsApp number or ``@lid`` JID.

    Put it in ``assigned_users=[...]`` of any HITL operator: the :class:`WaslahHITLNotifier` asks
    every such assignee on WhatsApp, and only they can answer by replying.

    :param number_or_jid: ``0812…``, ``+62812…``, ``62812…``, ``…@s.whatsapp.net`` or ``…@lid``.
    :param name: shown in the Airflow UI's assignee list (default: the id, ``whatsapp:62812…``).
    """
    user_id = WHATSAPP_PREFIX + whatsapp_identity(number_or_jid)
    return {"id": user_id, "name": name or user_id}


def whatsapp_identities(assigned_users: Iterable[Mapping[str, Any]] | None) -> list[str]:
    """The WhatsApp identities among HITL assignees (ids ``whatsapp:…``), deduplicated, in order.

    :raises ValueError: an assignee id starts with ``whatsapp:`` but is not a number or person's JID.
    """
    found: list[str] = []
    for user in assigned_users or ():
        user_id = user.get("id") if isinstance(user, Mapping) else None
        if isinstance(user_id, str) and user_id.lower().startswith(WHATSAPP_PREFIX):
            identity = whatsapp_identity(user_id)
            if identity not in found:
                found.append(identity)
    return found


def sender_is(identity: str, from_: object, remote_jid: object) -> bool:
    """Whether a ``message.received`` event's sender (``from``, ``remote_jid``) is ``identity``.

    Never true for a group chat: only one person's own chat answers for them.
    """
    jid = remote_jid.strip().lower() if isinstance(remote_jid, str) else ""
    if jid.endswith("@g.us"):
        return False
    sender = from_.strip() if isinstance(from_, str) else str(from_) if isinstance(from_, int) else ""
    if identity.endswith("@lid"):
        return jid == identity.lower() or (not jid and sender == identity[: -len("@lid")])
    if jid.endswith("@s.whatsapp.net") and jid.partition("@")[0] == identity:
        return True
    if not sender or "@" in sender:
        return False
    try:
        return whatsapp_identity(sender) == identity
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------- codes
def short_code(question_id: object) -> str:
    """The question's short code: :data:`CODE_LENGTH` letters of :data:`CODE_ALPHABET` from its id.

    A UUID gives the same code in any spelling (``01a2…`` as stored by SQLite, ``01a2…-…`` as printed).
    """
    try:
        key = str(uuid.UUID(str(question_id)))
    except ValueError:
        key = str(question_id)
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    letters = []
    for _ in range(CODE_LENGTH):
        digest, index = divmod(digest, len(CODE_ALPHABET))
        letters.append(CODE_ALPHABET[index])
    return "".join(letters)


# ---------------------------------------------------------------------------------------- options
def option_label(option: str) -> str:
    """How an option reads on WhatsApp: its Indonesian label (``Approve`` -> ``Setujui``) or itself."""
    return OPTION_LABELS.get(option, option)


def _numbered(options: Sequence[str]) -> str:
    return ", ".join(f"{number} = {option_label(option)}" for number, option in enumerate(options, 1))


def options_line(options: Sequence[str]) -> str:
    """``Balas 1 = Setujui, 2 = Tolak``."""
    return "Balas " + _numbered(options)


def _normalize(text: str) -> str:
    """Case-folded, Unicode-normalised, single-spaced, without punctuation at either end."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in folded)
    return " ".join(folded.split()).strip(_EDGE_PUNCTUATION)


def _loose(text: str) -> str:
    """Letters and digits only, single-spaced: ``"Kirim ulang (besok)"`` -> ``"kirim ulang besok"``."""
    return " ".join("".join(ch if ch.isalnum() else " " for ch in _normalize(text)).split())


def _match_text(piece: str, options: Sequence[str]) -> str | None:
    """The one option whose text or label is ``piece`` (exactly, then ignoring punctuation), else ``None``."""
    for key in (_normalize, _loose):
        wanted = key(piece)
        if not wanted:
            return None
        found = {option for option in options if wanted in (key(option), key(option_label(option)))}
        if len(found) == 1:
            return found.pop()
        if found:
            return None  # two options read the same: neither is meant more than the other
    return None


def _match_piece(piece: str, options: Sequence[str]) -> str | None:
    """An option by its number (1-based, as listed) or, failing that, by its text."""
    cleaned = _normalize(piece)
    if cleaned.isdigit() and cleaned.isascii() and len(cleaned) <= 4 and 1 <= int(cleaned) <= len(options):
        return options[int(cleaned) - 1]
    return _match_text(cleaned, options)


def parse_answer(text: object, options: Sequence[str], multiple: bool = False) -> list[str] | None:
    """The options a reply chooses, in the order given, or ``None`` when it chooses none validly.

    ``"1"``, ``" TOLAK! "``, ``"tolak"`` and ``"2"`` choose the same option of
    ``["Setujui", "Tolak"]``; with ``multiple=True``, ``"1, 3"``, ``"1 3"`` or ``"1 dan 3"`` choose
    two. A number chooses by position when it is one (``1``-``n``), by text otherwise. With
    ``multiple=False`` exactly one option must be chosen. Never raises.
    """
    if not isinstance(text, str) or not options:
        return None
    try:
        whole = _normalize(text)
        if not whole or len(whole) > 1000:
            return None
        single = _match_piece(whole, options)
        if single is not None:
            return [single]
        pieces = [piece for piece in _SEPARATORS.split(whole) if piece.strip(_EDGE_PUNCTUATION)]
        if len(pieces) == 1:
            words = pieces[0].split()
            if len(words) > 1 and all(_normalize(word).isdigit() for word in words):
                pieces = words
        if len(pieces) < 2 or not multiple:
            return None
        chosen: list[str] = []
        for piece in pieces:
            option = _match_piece(piece, options)
            if option is None:
                return None
            if option not in chosen:
                chosen.append(option)
        return chosen
    except Exception:  # a parser must never fail a webhook delivery; anything odd is "not understood"
        return None


def extract_code(text: object, codes: Iterable[str]) -> tuple[str | None, str]:
    """``(code, rest)`` when the reply's first or last word is one of ``codes`` (``#`` optional, any case).

    Only known codes are taken out, so an option text that happens to look like a code is left alone.
    """
    if not isinstance(text, str):
        return None, ""
    known = {code.upper() for code in codes}
    words = text.split()
    for index in (0, len(words) - 1) if words else ():
        word = words[index].strip(_EDGE_PUNCTUATION.replace("#", "")).lstrip("#").strip(_EDGE_PUNCTUATION)
        if word.upper() in known:
            rest = words[:index] + words[index + 1 :]
            return word.upper(), " ".join(rest)
    return None, text


# ---------------------------------------------------------------------------------------- time
def _zone(name: str | None) -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except Exception:  # no tz database on the machine: UTC still says when
        return timezone.utc


def format_time(moment: datetime, tz: str | None = None) -> str:
    """``25 Nov 2026 14:00 WIB`` (Indonesian month names, the zone's abbreviation)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    local = moment.astimezone(_zone(tz))
    zone = local.tzname() or "UTC"
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year} {local:%H:%M} {zone}"


# ---------------------------------------------------------------------------------------- texts
def _cut(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _labels(options: Iterable[str]) -> str:
    return ", ".join(option_label(option) for option in options)


def format_question(
    *,
    code: str,
    subject: str,
    options: Sequence[str],
    body: str | None = None,
    multiple: bool = False,
    deadline: datetime | None = None,
    defaults: Sequence[str] | None = None,
    link: str | None = None,
    tz: str | None = None,
) -> str:
    """The question as sent on WhatsApp: code, subject, body, numbered options, deadline, link.

    At most :data:`MAX_TEXT` characters: the body is shortened first (the link, options and code are
    what the reply needs).
    """
    head = [f"*Perlu keputusan Anda* (kode {code})", f"*{_cut(subject, 300)}*"]
    tail = ["", options_line(options)]
    if multiple:
        tail.append("Boleh pilih lebih dari satu, pisahkan dengan koma, misalnya: 1, 2")
    tail.append("Balas dengan angka atau teks pilihannya.")
    if deadline is not None:
        fallback = f"otomatis {_labels(defaults)}" if defaults else "tugas gagal"
        tail.append(f"Batas waktu: {format_time(deadline, tz)} (tanpa jawaban: {fallback})")
    tail.append(f"Jika ada beberapa pertanyaan terbuka, awali balasan dengan kodenya, misalnya: {code} 1")
    if link:
        tail.append(f"Buka di Airflow: {link}")
    fixed = "\n".join(head) + "\n" + "\n".join(tail)
    if body and body.strip():
        room = MAX_TEXT - len(fixed) - 2
        text = body.strip()
        if len(text) > room:
            text = text[: max(0, room - 1)] + "…"
        return "\n".join(head) + "\n\n" + text + "\n" + "\n".join(tail)
    return fixed[:MAX_TEXT]


@dataclass(frozen=True)
class Answered:
    """How a question was answered: by whom (``None``: the timeout's defaults), when, what."""

    by: str | None
    at: datetime
    chosen: tuple[str, ...]


@dataclass(frozen=True)
class Question:
    """One HITL question as the reply logic needs it (built from Airflow's HITL detail by the responder)."""

    key: str
    code: str
    subject: str
    options: tuple[str, ...]
    multiple: bool = False
    link: str | None = None
    answered: Answered | None = None
    #: The question has form fields without a default: it can only be answered in the Airflow UI.
    needs_form: bool = False
    #: Still waiting for an answer (an unanswered question whose task stopped waiting is closed).
    waiting: bool = True

    @property
    def is_open(self) -> bool:
        """Unanswered and its task still waits."""
        return self.answered is None and self.waiting


Kind = Literal[
    "answer", "not_understood", "choose_code", "already_answered", "closed", "form_only", "not_allowed", "ignore"
]


@dataclass(frozen=True)
class Decision:
    """What a reply does: answer ``question`` with ``chosen``, or which message goes back."""

    kind: Kind
    question: Question | None = None
    chosen: tuple[str, ...] = ()
    questions: tuple[Question, ...] = field(default=())

    @property
    def consumed(self) -> bool:
        """Whether the message was a reply to a question (and not a message for the DAGs on the asset)."""
        return self.kind != "ignore"


def decide(text: object, questions: Sequence[Question]) -> Decision:
    """What a reply from one person does, given the questions put to them (open or recently answered).

    - Naming a code picks that question; without a code, the one open question is meant.
    - More than one open and no code: nothing is answered; the person gets the open questions and codes.
    - An open question and a valid answer: ``answer``; an invalid one: ``not_understood`` (options back).
    - Nothing open: a valid answer to (or the code of) a question answered recently gets
      ``already_answered`` (or ``closed`` when its task stopped waiting unanswered); anything else is
      not a reply (``ignore``) and goes to the DAGs like any message.
    """
    reply = text if isinstance(text, str) else ""
    by_code: dict[str, list[Question]] = {}
    for question in questions:
        by_code.setdefault(question.code.upper(), []).append(question)
    code, rest = extract_code(reply, by_code)
    if code is not None:
        named = by_code[code]
        if len(named) > 1:  # two questions with one code (1 in 160,000 per pair): the UI settles it
            return Decision("choose_code", questions=tuple(named))
        return _decide_for(named[0], rest, explicit=True)
    open_questions = [q for q in questions if q.is_open]
    if len(open_questions) == 1:
        return _decide_for(open_questions[0], reply, explicit=True)
    if len(open_questions) > 1:
        return Decision("choose_code", questions=tuple(open_questions))
    done = sorted((q for q in questions if not q.is_open), key=_closed_at, reverse=True)
    for question in done[:1]:
        if parse_answer(reply, question.options, question.multiple) is not None:
            return _decide_for(question, reply, explicit=False)
    return Decision("ignore")


def _closed_at(question: Question) -> datetime:
    return question.answered.at if question.answered else datetime.min.replace(tzinfo=timezone.utc)


def _decide_for(question: Question, reply: str, *, explicit: bool) -> Decision:
    if question.answered is not None:
        return Decision("already_answered", question)
    if not question.waiting:
        return Decision("closed", question)
    if question.needs_form:
        return Decision("form_only", question)
    chosen = parse_answer(reply, question.options, question.multiple)
    if chosen is None:
        return Decision("not_understood", question) if explicit else Decision("ignore")
    return Decision("answer", question, tuple(chosen))


def _about(question: Question) -> str:
    return f'{question.code} "{_cut(question.subject, _SUBJECT_IN_REPLY)}"'


def format_reply(decision: Decision, reply: str = "", tz: str | None = None) -> str | None:
    """The WhatsApp text that answers a reply, or ``None`` (``ignore``)."""
    question = decision.question
    if decision.kind == "answer" and question is not None:
        return f"Terima kasih. Jawaban Anda untuk {_about(question)} tercatat: {_labels(decision.chosen)}."
    if decision.kind == "not_understood" and question is not None:
        lines = [
            f'Maaf, balasan "{_cut(reply, _QUOTED_REPLY)}" tidak dikenali untuk {_about(question)}.',
            options_line(question.options),
        ]
        if question.multiple:
            lines.append("Boleh pilih lebih dari satu, pisahkan dengan koma, misalnya: 1, 2")
        lines.append("Balas dengan angka atau teks pilihannya.")
        return "\n".join(lines)
    if decision.kind == "choose_code":
        questions = decision.questions
        example = questions[0].code if questions else "KODE"
        lines = [
            f"Ada {len(decision.questions)} pertanyaan terbuka untuk Anda. Awali balasan dengan kodenya, "
            f"misalnya: {example} 1"
        ]
        lines += [f"{q.code}: {_cut(q.subject, _SUBJECT_IN_REPLY)} ({_numbered(q.options)})" for q in questions]
        if len({q.code for q in decision.questions}) < len(decision.questions):
            lines.append("Kode ini dipakai lebih dari satu pertanyaan; silakan jawab di Airflow:")
            lines += [q.link for q in decision.questions if q.link]
        return "\n".join(lines)
    if decision.kind == "already_answered" and question is not None and question.answered is not None:
        answered = question.answered
        when = format_time(answered.at, tz)
        if answered.by is None:
            return (
                f"Pertanyaan {_about(question)} sudah ditutup: batas waktu lewat pada {when}, "
                f"pilihan bawaan dipakai: {_labels(answered.chosen)}. Balasan Anda tidak mengubah apa pun."
            )
        return (
            f"Pertanyaan {_about(question)} sudah dijawab oleh {answered.by} pada {when}: "
            f"{_labels(answered.chosen)}. Balasan Anda tidak mengubah apa pun."
        )
    if decision.kind == "closed" and question is not None:
        return f"Pertanyaan {_about(question)} sudah ditutup tanpa jawaban. Balasan Anda tidak mengubah apa pun."
    where = f": {question.link}" if question is not None and question.link else "."
    if decision.kind == "form_only" and question is not None:
        return f"Pertanyaan {_about(question)} perlu diisi formulirnya; silakan jawab di Airflow{where}"
    if decision.kind == "not_allowed" and question is not None:
        return f"Pertanyaan {_about(question)} tidak bisa dijawab lewat WhatsApp; silakan jawab di Airflow{where}"
    return None


__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "DEFAULT_TIMEZONE",
    "OPTION_LABELS",
    "WHATSAPP_PREFIX",
    "Answered",
    "Decision",
    "Question",
    "decide",
    "extract_code",
    "format_question",
    "format_reply",
    "format_time",
    "option_label",
    "options_line",
    "parse_answer",
    "sender_is",
    "short_code",
    "whatsapp_identities",
    "whatsapp_identity",
    "whatsapp_user",
]
