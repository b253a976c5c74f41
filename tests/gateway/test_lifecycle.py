"""The lifecycle's one table and one writer (gateway/lifecycle.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from channels.gsm import is_gsm
from gateway import lifecycle
from gateway.config import Config
from gateway.lifecycle import TRANSITIONS, Actor, Change
from gateway.renormalize import corrected_examples
from sinks.store.db import Store
from tests.support.complaints import add_ack, add_complaint, complaint, events, outbox_for

AGENCIES: dict[str, Any] = {
    "dpupr": {"name": "Dinas PUPR", "categories": ["jalan", "jembatan"]},
    "dpupr_tegal": {"name": "DPUPR Kabupaten Tegal", "categories": ["jalan"], "regions": ["33.28"]},
    "dlh": {"name": "Dinas Lingkungan Hidup", "categories": ["sampah"]},
    "kominfo": {"name": "Diskominfo"},
}
ADMIN = Actor("staff", "rina", admin=True)
WITH_AGENCY = ("forwarded", "in_progress", "resolved", "closed")


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config(agencies=AGENCIES)


def move(store: Store, config: Config, tracking_id: str, to: str | None, actor: Actor = ADMIN, **given: Any) -> Any:
    return lifecycle.transition(store, config, tracking_id, Change(to=to, **given), actor)


def needs(to: str) -> dict[str, Any]:
    """What a move to ``to`` must carry to be valid (so only the table decides)."""
    if to == "rejected":
        return {"reason": "not_public_service"}
    if to == "forwarded":
        return {"agency": "dpupr"}
    return {"public_note": "Sudah ditangani petugas."}


def test_every_allowed_move_is_made_and_every_other_is_refused_naming_current_and_allowed(
    store: Store, config: Config
) -> None:
    for current in lifecycle.STATUSES:
        for to in lifecycle.STATUSES:
            agency = "dpupr" if current in WITH_AGENCY else None
            tracking_id = add_complaint(store, status=current, agency=agency)
            if to in TRANSITIONS[current]:
                applied = move(store, config, tracking_id, to, **needs(to))
                assert (applied.event["from"], applied.event["to"]) == (current, to)
                assert complaint(store, tracking_id).status == to
                assert len(events(store, tracking_id)) == 1
            else:
                with pytest.raises(lifecycle.Refused) as refused:
                    move(store, config, tracking_id, to, **needs(to))
                assert refused.value.status == 409
                assert (refused.value.current, refused.value.allowed) == (current, TRANSITIONS[current])
                assert f"is {current}" in str(refused.value)
                assert complaint(store, tracking_id).status == current
                assert events(store, tracking_id) == []


def test_an_agency_moves_only_its_own_complaints_and_only_its_own_moves(store: Store, config: Config) -> None:
    dpupr = Actor("agency", "petugas-pupr", agency="dpupr")
    ours = add_complaint(store, status="forwarded", agency="dpupr")
    theirs = add_complaint(store, status="forwarded", agency="dlh")

    move(store, config, ours, "in_progress", dpupr, public_note="Tim sudah ke lokasi.")
    move(store, config, ours, "resolved", dpupr, public_note="Lubang sudah ditambal.")
    with pytest.raises(lifecycle.Forbidden):
        move(store, config, theirs, "in_progress", dpupr, public_note="bukan milik kami")
    with pytest.raises(lifecycle.Forbidden):
        move(store, config, ours, "closed", dpupr)  # closing is the admin's
    with pytest.raises(lifecycle.Forbidden):
        move(store, config, add_complaint(store), "verified", Actor("staff", "siti"))  # agents enter, not verify
    assert [e.actor_kind for e in events(store, ours)] == ["agency", "agency"]
    assert complaint(store, theirs).status == "forwarded"


def test_a_misrouted_complaint_goes_back_to_the_admin_without_its_agency(store: Store, config: Config) -> None:
    tracking_id = add_complaint(store, status="forwarded", agency="dpupr")
    move(store, config, tracking_id, "verified", Actor("agency", "pupr", agency="dpupr"), internal_note="urusan DLH")
    back = complaint(store, tracking_id)
    assert (back.status, back.agency) == ("verified", None)
    move(store, config, tracking_id, "forwarded", agency="dlh")
    assert complaint(store, tracking_id).agency == "dlh"


def test_a_citizen_can_only_reopen(store: Store, config: Config) -> None:
    citizen = Actor("citizen", "pelapor")
    resolved = add_complaint(store, status="resolved", agency="dpupr")
    move(store, config, resolved, "in_progress", citizen)
    assert complaint(store, resolved).status == "in_progress"
    with pytest.raises(lifecycle.Forbidden):
        move(store, config, add_complaint(store), "verified", citizen)


def test_rejections_need_a_reason_and_a_duplicate_names_its_original(store: Store, config: Config) -> None:
    original = add_complaint(store)
    repeat = add_complaint(store)
    with pytest.raises(lifecycle.Invalid):
        move(store, config, repeat, "rejected")
    with pytest.raises(lifecycle.Invalid):
        move(store, config, repeat, "rejected", reason="duplicate")
    with pytest.raises(lifecycle.Invalid):
        move(store, config, repeat, "rejected", reason="duplicate", duplicate_of="LPR-ZZZZZZ")
    applied = move(store, config, repeat, "rejected", reason="duplicate", duplicate_of=original.lower())
    assert (applied.event["reason"], applied.event["duplicate_of"]) == ("duplicate", original)


def test_resolving_needs_the_answer_for_the_citizen(store: Store, config: Config) -> None:
    tracking_id = add_complaint(store, status="in_progress", agency="dpupr")
    with pytest.raises(lifecycle.Invalid):
        move(store, config, tracking_id, "resolved", public_note="  ")


@pytest.mark.parametrize(
    ("category", "region", "best", "unique"),
    [
        ("jalan", "33.28.05.2001", "dpupr_tegal", True),  # category and the deeper region beat category alone
        ("jalan", "32.01", "dpupr", True),
        ("jembatan", None, "dpupr", True),
        ("sampah", "33.28", "dlh", True),
        ("pungli", None, "kominfo", True),  # the catch-all
    ],
)
def test_the_most_specific_routing_rule_wins(
    config: Config, category: str, region: str | None, best: str, unique: bool
) -> None:
    assert lifecycle.suggest_agencies(config, category, region)[0] == best
    assert lifecycle.unique_suggestion(config, category, region) == (best if unique else None)


def test_two_equally_specific_rules_leave_the_choice_to_the_admin(make_config: Callable[..., Config]) -> None:
    config = make_config(agencies={**AGENCIES, "bpbd": {"name": "BPBD", "categories": ["jalan", "bencana"]}})
    assert set(lifecycle.suggest_agencies(config, "jalan", None)[:2]) == {"bpbd", "dpupr"}
    assert lifecycle.unique_suggestion(config, "jalan", None) is None


def test_forwarding_without_an_agency_takes_the_unique_suggestion(store: Store, config: Config) -> None:
    tracking_id = add_complaint(store, status="verified", category="jalan", region_code="33.28.05")
    move(store, config, tracking_id, "forwarded")
    assert complaint(store, tracking_id).agency == "dpupr_tegal"


def test_auto_forward_sends_a_verified_complaint_on_when_one_rule_matches(
    store: Store, make_config: Callable[..., Config]
) -> None:
    config = make_config(agencies=AGENCIES, lifecycle={"auto_forward": True})
    tracking_id = add_complaint(store, category="sampah")
    move(store, config, tracking_id, "verified")
    assert (complaint(store, tracking_id).status, complaint(store, tracking_id).agency) == ("forwarded", "dlh")
    assert [(e.to_status, e.actor_kind) for e in events(store, tracking_id)] == [
        ("verified", "staff"),
        ("forwarded", "system"),
    ]


def test_a_category_correction_is_an_event_the_trainer_reads(store: Store, config: Config) -> None:
    tracking_id = add_complaint(store, category="jalan", body="Sampah menumpuk di TPS")
    applied = move(store, config, tracking_id, None, category="sampah", region_code="33.28")
    assert (applied.event["from"], applied.event["to"], applied.event["category"]) == ("received", "received", "sampah")
    assert (complaint(store, tracking_id).category, complaint(store, tracking_id).region_code) == ("sampah", "33.28")
    # `normalizer train --from-store` learns from it.
    assert [(e.text, e.category) for e in corrected_examples(store)] == [("Sampah menumpuk di TPS", "sampah")]
    with pytest.raises(lifecycle.Invalid):
        move(store, config, tracking_id, None, category="bukan-kategori")


def test_the_same_dedupe_key_makes_one_event(store: Store, config: Config) -> None:
    tracking_id = add_complaint(store)
    first = lifecycle.transition(store, config, tracking_id, Change(to="verified", dedupe_key="k1"), ADMIN)
    again = lifecycle.transition(store, config, tracking_id, Change(to="verified", dedupe_key="k1"), ADMIN)
    assert (first.created, again.created, again.event["id"]) == (True, False, first.event["id"])
    assert len(events(store, tracking_id)) == 1


def test_each_step_sets_its_due_date_in_working_days(store: Store, config: Config) -> None:
    # Wednesday 23 Dec 2026, 10:00 WIB: 24 Dec is cuti bersama, 25 Dec Christmas, then a weekend.
    at = datetime(2026, 12, 23, 3, 0, tzinfo=UTC)
    tracking_id = add_complaint(store)
    lifecycle.transition(store, config, tracking_id, Change(to="verified", at=at), ADMIN)
    # 3 working days: Mon 28, Tue 29, Wed 30 Dec -> due at the end of Wednesday, WIB.
    assert complaint(store, tracking_id).due_at == datetime(2026, 12, 30, 17, 0, tzinfo=UTC)
    lifecycle.transition(store, config, tracking_id, Change(to="forwarded", agency="dpupr", at=at), ADMIN)
    # 5 working days: 28, 29, 30, 31 Dec, (1 Jan 2027 is New Year) 4 Jan.
    assert complaint(store, tracking_id).due_at == datetime(2027, 1, 4, 17, 0, tzinfo=UTC)
    later = at + timedelta(days=1)
    lifecycle.transition(store, config, tracking_id, Change(to="resolved", public_note="Selesai.", at=later), ADMIN)
    assert complaint(store, tracking_id).due_at is None


# ---- telling the citizen -----------------------------------------------------------------------

CITIZENS = {
    # channel: (outbox target, provider, address, extra the acknowledgement carried)
    "sms": ("twilio", "twilio", "+6281234567890", {"our_number": "+14155550100"}),
    "whatsapp": ("whatsapp", "meta", "6281234567890", {"wamid": "wamid.ack"}),
    "telegram": ("telegram", "telegram", "123456789", {}),
    "email": ("smtp", "smtp", "budi@example.org", {"subject": "Jalan rusak", "message_id": "<a@b>"}),
}


def citizen_complaint(store: Store, channel: str, **columns: Any) -> str:
    target, provider, address, extra = CITIZENS[channel]
    tracking_id = add_complaint(store, channel=channel, provider=provider, reply_address=address, **columns)
    add_ack(store, tracking_id, target, channel, address, extra)
    return tracking_id


def told(store: Store, tracking_id: str) -> list[str]:
    """The texts of the status messages queued for the citizen, in order (the acknowledgement left out)."""
    return [
        r.payload["text"] for r in outbox_for(store, tracking_id, "reply") if r.idempotency_key.startswith("status:")
    ]


@pytest.mark.parametrize("channel", sorted(CITIZENS))
def test_the_citizen_hears_of_each_change_on_their_own_channel(store: Store, config: Config, channel: str) -> None:
    target, _, address, _ = CITIZENS[channel]
    tracking_id = citizen_complaint(store, channel)
    move(store, config, tracking_id, "verified")
    assert told(store, tracking_id) == []  # verification is internal
    move(store, config, tracking_id, "forwarded", agency="dpupr")
    move(store, config, tracking_id, "in_progress", Actor("agency", "pupr", agency="dpupr"))  # no note: nothing
    move(
        store, config, tracking_id, "in_progress", Actor("agency", "pupr", agency="dpupr"), public_note="Tim ke lokasi."
    )
    move(store, config, tracking_id, "resolved", Actor("agency", "pupr", agency="dpupr"), public_note="Sudah ditambal.")
    move(store, config, tracking_id, "in_progress", Actor("citizen", "pelapor"))

    assert told(store, tracking_id) == [
        f"Laporan {tracking_id} telah diteruskan ke Dinas PUPR untuk ditindaklanjuti.",
        f"Laporan {tracking_id} sedang ditindaklanjuti oleh Dinas PUPR: Tim ke lokasi.",
        f"Laporan {tracking_id} telah diselesaikan oleh Dinas PUPR: Sudah ditambal. "
        "Jika belum selesai, balas BELUM SELESAI dalam 14 hari.",
        f"Laporan {tracking_id} dibuka kembali dan diteruskan lagi ke Dinas PUPR.",
    ]
    replies = [r for r in outbox_for(store, tracking_id, "reply") if r.idempotency_key.startswith("status:")]
    assert {(r.target, r.payload["to"], r.payload["channel"]) for r in replies} == {(target, address, channel)}
    assert all("wamid" not in r.payload["extra"] for r in replies)  # not threaded under the old ack
    due = [r.next_attempt_at for r in replies]
    assert due == sorted(due) and len(set(due)) == len(due)  # each waits for the one before: sent in order

    rejected = citizen_complaint(store, channel)
    move(store, config, rejected, "rejected", reason="out_of_area")
    assert told(store, rejected) == [
        f"Maaf, laporan {rejected} tidak dapat diproses: lokasi laporan di luar wilayah kami."
    ]


def test_a_long_answer_fits_three_sms_parts(store: Store, config: Config) -> None:
    tracking_id = citizen_complaint(store, "sms", status="in_progress", agency="dpupr")
    move(store, config, tracking_id, "resolved", public_note="Perbaikan selesai. " * 60)
    (text,) = told(store, tracking_id)
    assert len(text) <= 459
    assert text.endswith("(selengkapnya: kirim STATUS)")
    assert is_gsm(text)  # still three GSM parts, not seven UCS-2 ones
    assert len(lifecycle.fit("Jalan 🚧 rusak parah. " * 30, "sms")) <= 201  # UCS-2: 3 parts of 67
    assert lifecycle.fit("Jalan rusak. " * 30, "telegram") == "Jalan rusak. " * 30


def test_whatsapp_outside_its_24_hour_window_gets_no_message_and_the_timeline_says_so(
    store: Store, config: Config
) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=3)
    tracking_id = citizen_complaint(store, "whatsapp", status="verified", received_at=long_ago)
    applied = move(store, config, tracking_id, "forwarded", agency="dpupr")
    assert told(store, tracking_id) == []
    assert "24 jam" in applied.event["notice"]


def test_anonymous_reporters_get_nothing(store: Store, config: Config) -> None:
    tracking_id = add_complaint(store, status="verified", channel="sms", provider="twilio", anonymity="anonymous")
    applied = move(store, config, tracking_id, "forwarded", agency="dpupr")
    assert told(store, tracking_id) == []
    assert "anonim" in applied.event["notice"]


def test_status_answers_the_step_the_agency_and_the_latest_public_note(store: Store, config: Config) -> None:
    tracking_id = add_complaint(store)

    def status() -> str:
        with store.read() as session:
            return lifecycle.status_reply(session, config, complaint(store, tracking_id))

    assert status() == f"Status laporan {tracking_id}: diterima, menunggu verifikasi."
    move(store, config, tracking_id, "verified")
    assert status() == f"Status laporan {tracking_id}: terverifikasi."
    move(store, config, tracking_id, "forwarded", agency="dpupr")
    assert status() == f"Status laporan {tracking_id}: diteruskan ke instansi terkait. Instansi: Dinas PUPR."
    move(store, config, tracking_id, "in_progress", public_note="Tim ke lokasi.")
    assert status().endswith("sedang ditindaklanjuti. Instansi: Dinas PUPR. Tanggapan: Tim ke lokasi.")
    move(store, config, tracking_id, "resolved", public_note="Sudah ditambal.")
    assert status().endswith(": selesai. Instansi: Dinas PUPR. Tanggapan: Sudah ditambal.")
    move(store, config, tracking_id, "closed")
    assert status().endswith(": ditutup. Instansi: Dinas PUPR. Tanggapan: Sudah ditambal.")


def test_migration_0006_goes_down_and_up_again(store: Store, config: Config) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from sinks.store.db import alembic_config

    command.downgrade(alembic_config(store), "0005")
    assert "complaint_event" not in inspect(store.engine).get_table_names()
    assert "agency" not in {c["name"] for c in inspect(store.engine).get_columns("complaint")}
    command.upgrade(alembic_config(store), "head")
    tracking_id = add_complaint(store)
    move(store, config, tracking_id, "verified")
    assert [e.to_status for e in events(store, tracking_id)] == ["verified"]


def test_the_public_timeline_shows_steps_and_public_notes_only(store: Store, config: Config) -> None:
    tracking_id = add_complaint(store)
    move(store, config, tracking_id, "verified", internal_note="pelapor pernah lapor hal sama")
    move(store, config, tracking_id, None, category="sampah")
    move(store, config, tracking_id, "forwarded", agency="dlh", internal_note="prioritas")
    move(
        store, config, tracking_id, "resolved", Actor("agency", "budi.dlh", agency="dlh"), public_note="Sudah diangkut."
    )
    with store.read() as session:
        steps = lifecycle.public_timeline(session, config, tracking_id)
    assert [(s["status"], s["agency_name"], s["public_note"]) for s in steps] == [
        ("verified", None, None),
        ("forwarded", "Dinas Lingkungan Hidup", None),
        ("resolved", "Dinas Lingkungan Hidup", "Sudah diangkut."),
    ]
    shown = repr(steps)
    assert "budi.dlh" not in shown and "prioritas" not in shown and "pernah lapor" not in shown
