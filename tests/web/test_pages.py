"""The web pages over HTTP against a real uvicorn server, on SQLite and PostgreSQL: sign-in, CSRF, roles,
entry, masking, the failed list with dry run, replay and audit, channels, recap and CSV import."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from channels import csv_import
from gateway.audit import recent
from gateway.cli_web import store_accept
from gateway.config import Config
from gateway.context import AttachmentFiles
from gateway.users import disable_user
from sinks.store import queries
from sinks.store.db import Store
from sinks.store.models import InboxMessage, Throttle, utcnow
from tests.web.support import (
    PASSWORD,
    Site,
    add_staff,
    complaints,
    count_complaints,
    csrf_of,
    failed_row,
    live_site,
    post_form,
    quiet_channels,
    signed_in,
    wait_until,
)

REPORT = {
    "isi": "Lampu jalan mati sejak seminggu di Jl. Sudirman",
    "judul": "PJU mati",
    "sumber": "phone",
    "nama": "Budi Santoso",
    "telepon": "0812-3456-7890",
    "email": "budi@example.org",
    "kerahasiaan": "public",
    "kategori": "pju",
    "lokasi": "Jl. Sudirman, Kota Bogor",
    "lat": "-6.595",
    "lon": "106.816",
}
TRACKING_ID = re.compile(r"LPR-[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{6}")


@pytest.fixture
def site(make_config: Callable[..., Config], store: Store) -> Iterator[Site]:
    add_staff(store)
    with live_site(make_config(channels=quiet_channels()), store) as running:
        yield running


@pytest.fixture
def agent(site: Site) -> Iterator[httpx.Client]:
    with signed_in(site, "siti") as client:
        yield client


@pytest.fixture
def admin(site: Site) -> Iterator[httpx.Client]:
    with signed_in(site, "rina") as client:
        yield client


def enter(client: httpx.Client, report: dict[str, str], key: str = "") -> httpx.Response:
    data = {**report, "idempotency_key": key} if key else report
    return post_form(client, "/laporan/baru", "/laporan/baru", data)


def test_sign_in_leads_strangers_to_login_and_staff_back_to_their_page(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        for path in ("/laporan/baru", "/pengaduan", "/gagal", "/rekap", "/impor", "/kanal", "/audit", "/"):
            response = client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == f"/login?next={path}"
        for target, landing in (("//evil.example", "/"), ("https://evil.example", "/"), ("/rekap", "/rekap")):
            form = {"username": "siti", "password": PASSWORD, "csrf_token": csrf_of(client.get("/login").text)}
            assert client.post("/login", data={**form, "next": target}).headers["location"] == landing
        assert client.get("/").headers["location"] == "/laporan/baru"  # agents start at entry
    with signed_in(site, "rina") as admin:
        assert admin.get("/").headers["location"] == "/pengaduan"  # admins at the list


def test_every_response_carries_the_security_headers(site: Site, agent: httpx.Client) -> None:
    for response in (agent.get("/login"), agent.get("/pengaduan"), agent.get("/healthz"), agent.get("/static/app.js")):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
    assert "<script>" not in agent.get("/laporan/baru").text  # no inline script a strict CSP would block


def test_session_cookie_is_httponly_and_lax(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        token = csrf_of(client.get("/login").text)
        answer = client.post("/login", data={"username": "siti", "password": PASSWORD, "csrf_token": token})
    cookie = answer.headers["set-cookie"].lower()
    assert "lapor_session=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # public_url is http here; see the https test below


def test_session_cookie_is_secure_when_the_browser_came_over_https(
    make_config: Callable[..., Config], store: Store
) -> None:
    add_staff(store)
    config = make_config(channels=quiet_channels(), http={"public_url": "https://lapor.example.go.id"})
    with live_site(config, store) as site, httpx.Client(base_url=site.url) as client:
        # The providers' URL is https, the staff's intranet is plain http: the cookie must not be Secure.
        assert "secure" not in client.get("/login").headers["set-cookie"].lower()
        # A TLS-terminating proxy on this host says the browser used https (uvicorn trusts 127.0.0.1).
        https = {"X-Forwarded-Proto": "https"}
        page = client.get("/login", headers=https)
        assert "secure" in page.headers["set-cookie"].lower()
        # httpx keeps Secure cookies off plain http, as a browser would: hand the login cookie over by hand.
        cookie = f"lapor_login_csrf={page.cookies['lapor_login_csrf']}"
        form = {"username": "siti", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
        answer = client.post("/login", data=form, headers={"Cookie": cookie, **https})
    assert answer.status_code == 303
    assert "secure" in answer.headers["set-cookie"].lower()


@pytest.mark.parametrize("forced", [True, False])
def test_web_cookie_secure_overrides_the_request(
    make_config: Callable[..., Config], store: Store, forced: bool
) -> None:
    config = make_config(channels=quiet_channels(), web={"cookie_secure": forced})
    with live_site(config, store) as site, httpx.Client(base_url=site.url) as client:
        for headers in ({}, {"X-Forwarded-Proto": "https"}):
            cookie = client.get("/login", headers=headers).headers["set-cookie"].lower()
            assert ("secure" in cookie) is forced


def test_a_form_post_without_its_csrf_token_is_refused(site: Site, agent: httpx.Client, admin: httpx.Client) -> None:
    refused = agent.post("/laporan/baru", data=REPORT)
    assert refused.status_code == 403
    assert "tidak sah" in refused.text
    forged = agent.post("/laporan/baru", data={**REPORT, "csrf_token": "forged"})
    assert forged.status_code == 403
    assert count_complaints(site.store) == 0
    assert admin.post("/gagal/putar-ulang", data={"id": "inbox-1"}).status_code == 403
    assert agent.post("/logout").status_code == 403
    with httpx.Client(base_url=site.url) as stranger:
        login = stranger.post("/login", data={"username": "siti", "password": PASSWORD})
        assert login.status_code == 403
        assert "lapor_session" not in login.headers.get("set-cookie", "")


def test_an_agent_gets_403_on_admin_pages(site: Site, agent: httpx.Client, admin: httpx.Client) -> None:
    for path in ("/gagal", "/audit", "/kanal"):
        assert agent.get(path).status_code == 403, path
        assert admin.get(path).status_code == 200, path
    token = csrf_of(agent.get("/laporan/baru").text)
    for action in ("/gagal/pratinjau", "/gagal/putar-ulang"):
        assert agent.post(action, data={"id": "inbox-1", "csrf_token": token}).status_code == 403
    assert "Gagal" not in agent.get("/pengaduan").text.split("</nav>")[0]  # not even in the menu


def test_a_report_is_stored_once_however_often_its_form_is_sent(site: Site, agent: httpx.Client) -> None:
    token = csrf_of(agent.get("/laporan/baru").text)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', agent.get("/laporan/baru").text)
    assert key
    first = agent.post("/laporan/baru", data={**REPORT, "csrf_token": token, "idempotency_key": key.group(1)})
    again = agent.post("/laporan/baru", data={**REPORT, "csrf_token": token, "idempotency_key": key.group(1)})

    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    [stored] = complaints(site.store)
    assert first.headers["location"] == f"/laporan/{stored.tracking_id}/terkirim"
    sent = agent.get(first.headers["location"])
    assert f'id="nomor-laporan" aria-live="polite">{stored.tracking_id}<' in sent.text
    record = queries.complaint_record(stored)
    assert record["channel"] == "manual"
    assert record["provider"] == "callcenter"
    assert record["source"] == "phone"
    assert record["entered_by"] == "siti"
    assert record["category"] == "pju"
    assert record["reporter"]["phone"] == "+6281234567890"
    assert record["location"]["lat"] == -6.595

    # The same key with another body (the form edited after sending) stores nothing new.
    other = agent.post(
        "/laporan/baru", data={**REPORT, "isi": "Lain", "csrf_token": token, "idempotency_key": key.group(1)}
    )
    assert other.status_code == 409
    assert "sudah pernah dikirim" in other.text
    assert count_complaints(site.store) == 1


def test_validation_messages_stand_next_to_their_fields(site: Site, agent: httpx.Client) -> None:
    response = enter(agent, {**REPORT, "isi": "  ", "email": "bukan-email", "lat": "-6.5", "lon": ""})

    assert response.status_code == 422
    assert re.search(r'id="isi"[^>]*aria-invalid="true" aria-describedby="isi-error"', response.text)
    assert '<span class="field-error" id="isi-error">wajib diisi</span>' in response.text
    assert '<span class="field-error" id="email-error">bukan alamat e-mail</span>' in response.text
    assert 'id="lon-error">isi lintang dan bujur bersama-sama' in response.text
    assert 'value="bukan-email"' in response.text  # what was typed is kept
    assert count_complaints(site.store) == 0


def test_an_anonymous_reporter_is_shown_nowhere(site: Site, agent: httpx.Client, admin: httpx.Client) -> None:
    anonymous = {**REPORT, "nama": "Pelapor Bersembunyi", "telepon": "081299990000", "kerahasiaan": "anonymous"}
    location = enter(agent, anonymous).headers["location"]
    tracking_id = TRACKING_ID.search(location)
    assert tracking_id
    # A failed entry with the same identity: its raw payload on the failed list is masked too.
    failed_row(
        site.store,
        json.dumps(
            {
                "body": "x",
                "source": "phone",
                "reporter": {"name": "Pelapor Bersembunyi", "phone": "081299990000", "anonymity": "anonymous"},
            }
        ).encode(),
    )

    pages = [
        agent.get(location).text,
        agent.get("/pengaduan").text,
        admin.get(f"/pengaduan/{tracking_id.group(0)}").text,
        admin.get("/gagal").text,
    ]
    for page in pages:
        assert "Bersembunyi" not in page
        assert "99990000" not in page
    assert "pelapor memilih anonim" in pages[2]


def test_confidential_content_is_for_signed_in_staff_only(site: Site, agent: httpx.Client) -> None:
    location = enter(agent, {**REPORT, "kerahasiaan": "confidential"}).headers["location"]
    tracking_id = location.split("/")[2]

    detail = agent.get(f"/pengaduan/{tracking_id}")
    assert "Budi Santoso" in detail.text
    assert "Laporan rahasia" in detail.text
    assert "Budi Santoso" not in agent.get("/pengaduan").text  # the list shows a badge instead of the name
    with httpx.Client(base_url=site.url) as stranger:
        assert stranger.get(f"/pengaduan/{tracking_id}").status_code == 303
        assert stranger.get(f"/laporan/{tracking_id}/terkirim").status_code == 303


def test_the_list_filters_searches_and_pages_newest_first(site: Site, agent: httpx.Client) -> None:
    sheet = io.StringIO()
    writer = csv.writer(sheet)
    writer.writerow(["isi", "sumber", "kategori"])
    for number in range(27):
        writer.writerow([f"Banjir nomor {number}", "radio", "banjir"])
    writer.writerow(["Jalan berlubang", "surat", "jalan"])
    parsed = csv_import.read_csv(sheet.getvalue().encode(), site.config.categories)
    _import(site, parsed)

    first = agent.get("/pengaduan", params={"q": "banjir", "kategori": "banjir", "sumber": "radio"})
    bodies = re.findall(r"Banjir nomor \d+", first.text)
    assert len(bodies) == 25
    assert bodies[0] == "Banjir nomor 26"  # newest first
    older = re.search(r'href="(/pengaduan\?[^"]+)" rel="next"', first.text)
    assert older
    second = agent.get(older.group(1).replace("&amp;", "&"))
    assert sorted(re.findall(r"Banjir nomor \d+", second.text)) == ["Banjir nomor 0", "Banjir nomor 1"]
    assert "Jalan berlubang" not in first.text + second.text
    letters = agent.get("/pengaduan", params={"sumber": "letter"}).text
    assert "Jalan berlubang" in letters and "Banjir nomor" not in letters
    today = utcnow().date()
    future = agent.get("/pengaduan", params={"dari": str(today + timedelta(days=2))}).text
    assert "Tidak ada pengaduan." in future
    assert "Banjir nomor 3<" in agent.get("/pengaduan", params={"sampai": str(today + timedelta(days=1))}).text
    assert agent.get("/pengaduan", params={"dari": "kemarin"}).status_code == 400


def _import(site: Site, parsed: csv_import.CsvFile) -> None:
    asyncio.run(csv_import.submit(parsed, store_accept(site.store), "siti", "uji.csv"))
    site.gateway.worker.wake.set()
    wait_until(lambda: count_complaints(site.store) >= len(parsed.good), "the worker to store the import")


def test_detail_shows_follow_ups_attachments_and_provenance_for_admins(
    site: Site, agent: httpx.Client, admin: httpx.Client
) -> None:
    parent = enter(agent, REPORT).headers["location"].split("/")[2]
    photo = AttachmentFiles(site.config.data_dir)(b"\xff\xd8 a photo", "lampu.jpg", "image/jpeg")
    follow_up = enter(agent, {**REPORT, "isi": "Tambahan: masih mati", "kerahasiaan": "public"}).headers["location"]
    follow_up_id = follow_up.split("/")[2]
    with site.store.write() as session:
        stored = queries.complaint_by_tracking_id(session, follow_up_id)
        assert stored is not None
        stored.parent_tracking_id = parent
        parent_row = queries.complaint_by_tracking_id(session, parent)
        assert parent_row is not None
        parent_row.attachments = [
            {"filename": "lampu.jpg", "content_type": "image/jpeg", "size": photo.size, "sha256": photo.sha256}
        ]

    detail = admin.get(f"/pengaduan/{parent}").text
    assert follow_up_id in detail
    assert f"/pengaduan/{parent}/lampiran/{photo.sha256}" in detail
    assert "Payload mentah" in detail and "Lampu jalan mati sejak seminggu" in detail
    assert "Payload mentah" not in agent.get(f"/pengaduan/{parent}").text
    download = agent.get(f"/pengaduan/{parent}/lampiran/{photo.sha256}")
    assert download.status_code == 200
    assert download.content == b"\xff\xd8 a photo"
    assert download.headers["content-disposition"].startswith("attachment")
    assert agent.get(f"/pengaduan/{parent}/lampiran/{'0' * 64}").status_code == 404
    assert agent.get("/pengaduan/LPR-ZZZZZZ").status_code == 404


def test_dry_run_and_replay_are_both_in_the_audit_log(site: Site, admin: httpx.Client) -> None:
    body = {"body": "Sampah belum diangkut tiga hari", "source": "whatsapp", "category": "sampah"}
    inbox_id = failed_row(site.store, json.dumps(body).encode())
    listing = admin.get("/gagal").text
    assert f"inbox-{inbox_id}" in listing and "StoreUnavailable" in listing

    preview = post_form(admin, "/gagal", "/gagal/pratinjau", {"id": f"inbox-{inbox_id}"})
    assert preview.status_code == 200
    assert "Sampah belum diangkut tiga hari" in preview.text and "would_store" in preview.text
    assert count_complaints(site.store) == 0  # a dry run changes nothing

    replayed = post_form(admin, "/gagal", "/gagal/putar-ulang", {"id": f"inbox-{inbox_id}"})
    assert replayed.status_code == 303
    assert "1 pesan diantrekan ulang" in admin.get(replayed.headers["location"]).text
    wait_until(lambda: count_complaints(site.store) == 1, "the replayed row to be stored")

    entries = recent(site.store)
    assert [(e.actor, e.action, e.target, e.result) for e in entries] == [
        ("rina", "replay", f"inbox-{inbox_id}", "pending"),
        ("rina", "replay_dry_run", f"inbox-{inbox_id}", "previewed"),
    ]
    page = admin.get("/audit").text
    assert page.count(f"inbox-{inbox_id}") == 2 and "Putar ulang" in page and "Uji coba" in page
    again = post_form(admin, "/gagal", "/gagal/putar-ulang", {"id": f"inbox-{inbox_id}"})
    assert "0 pesan diantrekan ulang" in admin.get(again.headers["location"]).text
    assert recent(site.store)[0].result == "not_failed"


def test_channels_page_warns_about_a_channel_gone_silent(site: Site, admin: httpx.Client) -> None:
    now = utcnow()
    with site.store.write() as session:
        for number in range(400):  # a busy call center two days ago, silent since
            at = now - timedelta(days=2, minutes=number)
            session.add(
                InboxMessage(
                    channel="manual",
                    provider="callcenter",
                    external_id=f"old-{number}",
                    received_at=at,
                    raw=b"{}",
                    status="done",
                    next_attempt_at=at,
                )
            )
        session.add(
            InboxMessage(
                channel="manual",
                provider="csv",
                external_id="recent",
                received_at=now,
                raw=b"{}",
                status="done",
                next_attempt_at=now,
            )
        )
    page = admin.get("/kanal").text
    manual_row = page.split('<th scope="row">manual</th>')[1].split("</tr>")[0]
    csv_row = page.split('<th scope="row">csv</th>')[1].split("</tr>")[0]
    assert "Sepi lebih dari 60 menit" in manual_row
    assert "<td>0</td>\n    <td>0</td>" in manual_row  # nothing in the last hour or day
    assert "Normal" in csv_row and "<td>1</td>\n    <td>1</td>" in csv_row


def test_recap_counts_the_period_and_exports_csv_and_xlsx(site: Site, agent: httpx.Client) -> None:
    enter(agent, REPORT)
    enter(agent, {**REPORT, "sumber": "radio", "kategori": "sampah"})
    enter(agent, {**REPORT, "sumber": "radio", "kategori": "sampah", "isi": "lain"})
    today = utcnow().astimezone(ZoneInfo("Asia/Jakarta")).date().isoformat()
    period = {"dari": today, "sampai": today}

    page = agent.get("/rekap", params=period).text
    assert '<strong id="total">3</strong>' in page
    lines = list(csv.reader(io.StringIO(agent.get("/rekap.csv", params=period).content.decode("utf-8-sig"))))
    assert ["Total", "", "Semua laporan", "3"] in lines
    assert ["Sumber", "radio", "Radio", "2"] in lines
    assert ["Kategori", "sampah", "Sampah & Kebersihan", "2"] in lines
    xlsx = agent.get("/rekap.xlsx", params=period)
    book = load_workbook(io.BytesIO(xlsx.content))
    assert [row for row in book["Kanal"].iter_rows(values_only=True)] == [
        ("Kode", "Nama", "Jumlah"),
        ("manual", "Petugas (manual)", 3),
    ]
    empty = agent.get("/rekap", params={"dari": "2020-01-01", "sampai": "2020-01-31"}).text
    assert '<strong id="total">0</strong>' in empty
    assert agent.get("/rekap", params={"dari": "2020-02-01", "sampai": "2020-01-01"}).status_code == 400


def test_csv_import_previews_row_errors_and_a_second_upload_adds_nothing(site: Site, agent: httpx.Client) -> None:
    data = csv_import.sample_csv() + "Jalan rusak,,merpati,,,,,,,,\r\n"
    token = csrf_of(agent.get("/impor").text)
    preview = agent.post(
        "/impor/pratinjau", data={"csrf_token": token}, files={"berkas": ("rekap.csv", data.encode(), "text/csv")}
    )
    assert preview.status_code == 200
    assert "sumber: &#39;merpati&#39; tidak dikenal" in preview.text
    assert "Impor 2 laporan" in preview.text
    hidden = re.search(r'name="data" value="([^"]+)"', preview.text)
    assert hidden
    form = {"csrf_token": token, "nama_berkas": "rekap.csv", "data": hidden.group(1)}

    first = agent.post("/impor/kirim", data=form)
    assert "<strong>2</strong> laporan baru" in first.text and "<strong>1</strong> baris dilewati" in first.text
    wait_until(lambda: count_complaints(site.store) == 2, "the import to be stored")
    second = agent.post("/impor/kirim", data=form)
    assert "<strong>0</strong> laporan baru, <strong>2</strong> sudah pernah diimpor" in second.text
    stored = complaints(site.store)
    assert {c.provider for c in stored} == {"csv"} and {c.channel for c in stored} == {"manual"}
    assert {c.entered_by for c in stored} == {"siti"}
    assert count_complaints(site.store) == 2
    sample = agent.get("/impor/contoh.csv")
    assert sample.content.decode("utf-8-sig").startswith("isi,judul,sumber,")


def test_wrong_passwords_slow_the_sign_in_alike_for_real_and_made_up_names(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:

        def attempt(username: str, password: str) -> httpx.Response:
            token = csrf_of(client.get("/login").text)
            return client.post("/login", data={"username": username, "password": password, "csrf_token": token})

        for username in ("siti", "tidak-ada"):
            for _ in range(4):
                wrong = attempt(username, "salah-salah-salah")
                assert wrong.status_code == 400
                assert "Nama pengguna atau kata sandi salah." in wrong.text
        with site.store.write() as session:
            rows = {row.key: row for row in session.execute(select(Throttle)).scalars()}
            assert rows["login-user:siti"].count == rows["login-user:tidak-ada"].count == 4
            # A wait in force (as after many misses): set far ahead, so no clock on a loaded machine decides.
            for row in rows.values():
                row.retry_at = utcnow() + timedelta(minutes=10)
        for username in ("siti", "tidak-ada"):
            waiting = attempt(username, PASSWORD)
            assert waiting.status_code == 429
            assert "Terlalu banyak kata sandi salah. Coba lagi dalam" in waiting.text
            assert 590 <= int(waiting.headers["retry-after"]) <= 600
            assert "lapor_session" not in waiting.headers.get("set-cookie", "")


def test_logout_and_disabling_end_the_session(site: Site, agent: httpx.Client) -> None:
    with signed_in(site, "rina") as other:
        disable_user(site.store, "rina")
        assert other.get("/pengaduan").status_code == 303
    token = csrf_of(agent.get("/pengaduan").text)
    assert agent.post("/logout", data={"csrf_token": token}).status_code == 303
    assert agent.get("/pengaduan").status_code == 303


def test_a_raw_payload_that_cannot_be_pretty_printed_never_breaks_the_failed_list(
    site: Site, admin: httpx.Client
) -> None:
    # A mail body of 5,000 `[` (what an attacker sent), valid JSON nested 500 deep, and markup.
    failed_row(site.store, b"[" * 5000, channel="email", provider="smtp")
    failed_row(site.store, b"[" * 500 + b"]" * 500, channel="email", provider="smtp")
    failed_row(site.store, b"<script>alert(1)</script>", channel="email", provider="smtp")
    for _ in range(2):  # every load, not only the first
        page = admin.get("/gagal")
        assert page.status_code == 200
        assert "[" * 5000 in page.text
        assert "[" * 500 + "]" * 500 in page.text
        assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text


def test_audit_paging_beyond_64_bits_is_refused_not_a_crash(admin: httpx.Client) -> None:
    assert admin.get(f"/audit?sebelum={2**64}").status_code == 422
    assert admin.get(f"/gagal?diantrekan={2**64}").status_code == 422
