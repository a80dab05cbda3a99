"""The Airflow-free HITL text module: identities, codes, the question, the reply parser, decisions."""

from __future__ import annotations

import string
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_waslah.hitl.text import (
    CODE_ALPHABET,
    CODE_LENGTH,
    MAX_TEXT,
    Answered,
    Question,
    decide,
    extract_code,
    format_question,
    format_reply,
    format_time,
    option_label,
    parse_answer,
    sender_is,
    short_code,
    whatsapp_identities,
    whatsapp_identity,
    whatsapp_user,
)

APPROVAL = ["Approve", "Reject"]
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=timezone.utc)


# ------------------------------------------------------------------------------------ identities
@pytest.mark.parametrize(
    ("given_", "identity"),
    [
        ("0812-3456-0010", "6281234560010"),
        ("+62 812 3456 0010", "6281234560010"),
        ("6281234560010", "6281234560010"),
        (6281234560010, "6281234560010"),
        ("6281234560010@s.whatsapp.net", "6281234560010"),
        ("whatsapp:6281234560010", "6281234560010"),
        ("123456789012345@lid", "123456789012345@lid"),
        ("123456789012345@LID", "123456789012345@lid"),
    ],
)
def test_identity_normalised(given_: object, identity: str) -> None:
    assert whatsapp_identity(given_) == identity


@pytest.mark.parametrize("bad", ["", "halo", "120363012345678901@g.us", "0@lid", "123", True, None, "٠٨١٢٣٤٥٦٧٨٩"])
def test_identity_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        whatsapp_identity(bad)


def test_whatsapp_user_is_an_airflow_hitl_user() -> None:
    assert whatsapp_user("0812 3456 0010") == {"id": "whatsapp:6281234560010", "name": "whatsapp:6281234560010"}
    assert whatsapp_user("123456789012345@lid", "Pak Budi") == {
        "id": "whatsapp:123456789012345@lid",
        "name": "Pak Budi",
    }
    users = [whatsapp_user("08123456001"), {"id": "admin", "name": "Admin"}, whatsapp_user("628123456001")]
    assert whatsapp_identities(users) == ["628123456001"]


def test_sender_matching_as_the_reference_describes() -> None:
    phone, lid = "6281234560010", "211198035367129@lid"
    # A phone number asked; the reply from the phone's own chat, or from its privacy-mode (@lid) chat.
    assert sender_is(phone, phone, f"{phone}@s.whatsapp.net")
    assert sender_is(phone, phone, lid)  # `from` holds the phone digits, remote_jid the LID
    assert sender_is(phone, "081234560010", None)
    assert not sender_is(phone, "6281234560011", "6281234560011@s.whatsapp.net")
    assert not sender_is(phone, "6281234560011", f"{phone}0@s.whatsapp.net")
    # An @lid JID asked: only that JID.
    assert sender_is(lid, "211198035367129", lid)
    assert sender_is(lid, "6281234560010", lid)
    assert not sender_is(lid, "211198035367129", "311198035367129@lid")
    # A group chat never answers for a person, whoever wrote in it.
    assert not sender_is(phone, phone, "120363012345678901@g.us")


# ------------------------------------------------------------------------------------ codes
@given(st.uuids())
def test_codes_are_short_letters_and_stable(ti_id: object) -> None:
    code = short_code(ti_id)
    assert len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET)
    assert code == short_code(str(ti_id)) == short_code(ti_id.hex)  # type: ignore[attr-defined]
    assert not set(code) & set("AEIOUL0123456789")


def test_codes_rarely_collide() -> None:
    codes = {short_code(f"ti-{i}") for i in range(2000)}
    assert len(codes) > 1980  # 20**4 = 160,000 codes


# ------------------------------------------------------------------------------------ the question
def test_question_text() -> None:
    text = format_question(
        code="KPRT",
        subject="Payout Rp 12.500.000 ke PT Maju Jaya",
        body="Vendor: PT Maju Jaya\nInvoice: INV-1001",
        options=APPROVAL,
        deadline=NOW + timedelta(hours=4),
        defaults=["Reject"],
        link="http://airflow.example/dags/payout/runs/r1/tasks/approve/required_actions?map_index=-1",
    )
    assert text.splitlines()[:2] == ["*Perlu keputusan Anda* (kode KPRT)", "*Payout Rp 12.500.000 ke PT Maju Jaya*"]
    assert "Vendor: PT Maju Jaya\nInvoice: INV-1001" in text
    assert "Balas 1 = Setujui, 2 = Tolak" in text
    assert "Batas waktu: 25 Nov 2026 18:00 WIB (tanpa jawaban: otomatis Tolak)" in text
    assert "awali balasan dengan kodenya, misalnya: KPRT 1" in text
    assert text.endswith(
        "Buka di Airflow: http://airflow.example/dags/payout/runs/r1/tasks/approve/required_actions?map_index=-1"
    )


def test_question_without_timeout_defaults_or_link() -> None:
    text = format_question(code="BCDF", subject="Stok", options=["Kirim", "Tunda", "Batal"], multiple=True)
    assert "Balas 1 = Kirim, 2 = Tunda, 3 = Batal" in text
    assert "lebih dari satu" in text
    assert "Batas waktu" not in text and "Buka di Airflow" not in text
    timed = format_question(code="BCDF", subject="Stok", options=["Kirim"], deadline=NOW)
    assert "(tanpa jawaban: tugas gagal)" in timed


def test_question_fits_one_whatsapp_text() -> None:
    text = format_question(code="KPRT", subject="S" * 500, body="x" * 10_000, options=APPROVAL, link="http://a/b")
    assert len(text) <= MAX_TEXT
    assert "Balas 1 = Setujui, 2 = Tolak" in text and text.endswith("Buka di Airflow: http://a/b")


def test_time_zones() -> None:
    assert format_time(NOW) == "25 Nov 2026 14:00 WIB"
    assert format_time(NOW, "Asia/Makassar") == "25 Nov 2026 15:00 WITA"
    assert format_time(NOW.replace(month=5, tzinfo=None), "UTC") == "25 Mei 2026 07:00 UTC"


# ------------------------------------------------------------------------------------ parsing replies
@pytest.mark.parametrize(
    ("reply", "chosen"),
    [
        ("1", ["Approve"]),
        (" 2 ", ["Reject"]),
        ("2.", ["Reject"]),
        ("tolak", ["Reject"]),
        ("TOLAK!", ["Reject"]),
        ("*Setujui*", ["Approve"]),
        ("approve", ["Approve"]),
        ("  Reject\n", ["Reject"]),
        ("halo", None),
        ("3", None),
        ("0", None),
        ("1, 2", None),  # one answer only
        ("", None),
        ("setuju", None),  # no guessing: the option, its label or its number
    ],
)
def test_parse_single(reply: str, chosen: list[str] | None) -> None:
    assert parse_answer(reply, APPROVAL) == chosen


@pytest.mark.parametrize(
    ("reply", "chosen"),
    [
        ("1, 3", ["Kirim", "Batal"]),
        ("1 3", ["Kirim", "Batal"]),
        ("3,1", ["Batal", "Kirim"]),
        ("1 dan 3", ["Kirim", "Batal"]),
        ("kirim & TUNDA", ["Kirim", "Tunda"]),
        ("1, tunda", ["Kirim", "Tunda"]),
        ("2", ["Tunda"]),
        ("1, 1", ["Kirim"]),
        ("1, 4", None),
        ("1, halo", None),
    ],
)
def test_parse_multiple(reply: str, chosen: list[str] | None) -> None:
    assert parse_answer(reply, ["Kirim", "Tunda", "Batal"], multiple=True) == chosen


def test_option_texts_with_punctuation_and_numbers() -> None:
    options = ["Kirim ulang (besok)", "Batal, refund", "10", "20"]
    assert parse_answer("kirim ulang besok", options) == ["Kirim ulang (besok)"]
    assert parse_answer("Batal, refund", options, multiple=True) == ["Batal, refund"]
    assert parse_answer("3", options) == ["10"]  # numbers are positions first
    assert parse_answer("20", options) == ["20"]  # ... and text when no such position


def test_two_options_that_read_the_same_choose_neither() -> None:
    assert parse_answer("a b", ["A-B", "A.B"]) is None
    assert parse_answer("a b", ["A-B", "A B!"]) == ["A B!"]  # an exact reading wins over a loose one


options_strategy = st.lists(
    st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=12).filter(lambda s: s.strip()),
    min_size=1,
    max_size=5,
    unique_by=lambda s: " ".join(s.lower().split()),
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.lists(st.text(max_size=30), max_size=6), st.booleans())
def test_parser_never_raises_and_chooses_only_options(reply: str, options: list[str], multiple: bool) -> None:
    chosen = parse_answer(reply, options, multiple)
    if chosen is not None:
        assert chosen and set(chosen) <= set(options)
        assert multiple or len(chosen) == 1
        assert len(set(chosen)) == len(chosen)


@settings(max_examples=200, deadline=None)
@given(options_strategy, st.data())
def test_case_and_spacing_are_ignored(options: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(options) - 1))
    option = options[index]
    spaced = data.draw(st.sampled_from(["", " ", "  ", "\n", "\t"]))
    variant = "".join(ch.upper() if data.draw(st.booleans()) else ch.lower() for ch in option)
    variant = spaced + " ".join(variant.split()).replace(" ", data.draw(st.sampled_from([" ", "  ", " \t"]))) + spaced
    if variant.strip().isdigit():
        return
    assert parse_answer(variant, options) == [option]
    assert parse_answer(f"{spaced}{index + 1}{spaced}", options) == [option]


@settings(max_examples=200, deadline=None)
@given(options_strategy, st.data())
def test_several_numbers_with_multiple(options: list[str], data: st.DataObject) -> None:
    picked = data.draw(st.lists(st.integers(1, len(options)), min_size=1, max_size=len(options), unique=True))
    separator = data.draw(st.sampled_from([",", ", ", " ", " dan ", " & ", ";"]))
    reply = separator.join(str(n) for n in picked)
    assert parse_answer(reply, options, multiple=True) == [options[n - 1] for n in picked]
    if len(picked) > 1:
        assert parse_answer(reply, options, multiple=False) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.lists(st.sampled_from(["KPRT", "BCDF", "ZZZZ"]), max_size=3))
def test_extract_code_never_raises(reply: str, codes: list[str]) -> None:
    code, _rest = extract_code(reply, codes)
    assert code is None or code in codes


def test_extract_code_where_it_is_written() -> None:
    assert extract_code("KPRT 1", ["KPRT"]) == ("KPRT", "1")
    assert extract_code("#kprt tolak", ["KPRT"]) == ("KPRT", "tolak")
    assert extract_code("tolak #KPRT.", ["KPRT"]) == ("KPRT", "tolak")
    assert extract_code("1 ABCD 2", ["ABCD"]) == (None, "1 ABCD 2")  # only the first or last word
    assert extract_code("BCDF 1", ["KPRT"]) == (None, "BCDF 1")  # unknown codes are text


# ------------------------------------------------------------------------------------ decisions
def question(code: str, **kwargs: object) -> Question:
    defaults: dict[str, object] = {"key": code.lower(), "subject": f"Pertanyaan {code}", "options": tuple(APPROVAL)}
    return Question(code=code, **{**defaults, **kwargs})  # type: ignore[arg-type]


def test_one_open_question_needs_no_code() -> None:
    q = question("KPRT")
    assert decide("1", [q]).kind == "answer" and decide("1", [q]).chosen == ("Approve",)
    assert decide("KPRT tolak", [q]).chosen == ("Reject",)
    halo = decide("halo", [q])
    assert halo.kind == "not_understood" and halo.question is q
    text = format_reply(halo, "halo")
    assert text is not None and 'balasan "halo" tidak dikenali' in text and "Balas 1 = Setujui, 2 = Tolak" in text


def test_several_open_questions_need_the_code() -> None:
    a, b = question("KPRT"), question("BCDF", options=("Kirim", "Tunda"))
    missing = decide("1", [a, b])
    assert missing.kind == "choose_code" and missing.questions == (a, b)
    text = format_reply(missing)
    assert text is not None and "Ada 2 pertanyaan terbuka" in text
    assert (
        "KPRT: Pertanyaan KPRT (1 = Setujui, 2 = Tolak)" in text
        and "BCDF: Pertanyaan BCDF (1 = Kirim, 2 = Tunda)" in text
    )
    assert decide("bcdf 2", [a, b]).chosen == ("Tunda",)
    assert decide("2 KPRT", [a, b]).chosen == ("Reject",)
    assert decide("BCDF halo", [a, b]).kind == "not_understood"


def test_answered_questions() -> None:
    answered = question("KPRT", answered=Answered("admin", NOW, ("Approve",)))
    late = decide("tolak", [answered])
    assert late.kind == "already_answered"
    text = format_reply(late)
    assert text == (
        'Pertanyaan KPRT "Pertanyaan KPRT" sudah dijawab oleh admin pada 25 Nov 2026 14:00 WIB: Setujui. '
        "Balasan Anda tidak mengubah apa pun."
    )
    assert decide("terima kasih", [answered]).kind == "ignore"  # not an answer: a message like any other
    assert decide("KPRT", [answered]).kind == "already_answered"  # naming the code is
    timed_out = question("KPRT", answered=Answered(None, NOW, ("Reject",)))
    assert "batas waktu lewat" in (format_reply(decide("1", [timed_out])) or "")
    # An open question wins over answered ones when no code is named.
    fresh = question("BCDF")
    assert decide("1", [answered, fresh]).question is fresh


def test_closed_and_form_only_questions() -> None:
    stopped = question("KPRT", waiting=False)
    assert decide("1", [stopped]).kind == "closed"
    assert decide("halo", [stopped]).kind == "ignore"
    form = question("KPRT", needs_form=True, link="http://a/required_actions")
    decision = decide("1", [form])
    assert decision.kind == "form_only" and "http://a/required_actions" in (format_reply(decision) or "")


def test_no_questions_ignores_everything() -> None:
    assert decide("1", []).kind == "ignore"
    assert not decide("1", []).consumed


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.lists(st.sampled_from(["KPRT", "BCDF", "ZZZZ"]), max_size=3, unique=True), st.data())
def test_decide_never_raises(reply: str, codes: list[str], data: st.DataObject) -> None:
    questions = [
        question(code, answered=Answered("x", NOW, ("Approve",)) if data.draw(st.booleans()) else None)
        for code in codes
    ]
    decision = decide(reply, questions)
    assert decision.kind == "ignore" or decision.question in questions or decision.kind == "choose_code"
    format_reply(decision, reply)


def test_labels() -> None:
    assert option_label("Approve") == "Setujui" and option_label("Reject") == "Tolak" and option_label("OK") == "OK"
