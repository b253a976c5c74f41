"""The citizens' doors over HTTP (SQLite and PostgreSQL): /lapor, /cek and the public API, and their abuse rules."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from gateway import lifecycle
from gateway.app import Gateway
from gateway.config import Config
from gateway.context import AttachmentFiles
from gateway.lifecycle import Actor, Change
from gateway.public import Doors
from sinks.store.db import Store
from tests.support.e2e import stored_complaints, stored_inbox

PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 200
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
APP_KEY = "android-key-7f3a"
_HIDDEN = re.compile(r'name="(csrf_token|form_token)" value="([^"]+)"')
_TRACKING = re.compile(r'id="nomor-laporan">(LPR-[A-Z0-9]+)<')
REPORT = {
    "isi": "Jalan berlubang besar di Jl. Merdeka depan SDN 2, sudah dua motor jatuh",
    "judul": "Jalan berlubang",
    "lokasi": "Jl. Merdeka, Kota Bogor",
    "lat": "-6.5950",
    "lon": "106.7972",
    "nama": "Budi Santoso",
    "telepon": "0812 3456 7890",
    "email": "budi@example.org",
    "kerahasiaan": "publik",
    "persetujuan": "ya",
}


@pytest.fixture
def site(
    make_config: Callable[..., Config], running_client: Callable[[Config], TestClient]
) -> Callable[..., TestClient]:
    def start(**web: Any) -> TestClient:
        settings = {"min_fill_seconds": 0, **web}
        return running_client(make_config(web=settings, public_api={"keys": {"android": APP_KEY}}))

    return start


@pytest.fixture
def client(site: Callable[..., TestClient]) -> Iterator[TestClient]:
    with site() as running:
        yield running


def hidden_fields(client: TestClient) -> dict[str, str]:
    page = client.get("/lapor")
    assert page.status_code == 200
    return dict(_HIDDEN.findall(page.text))


def submit(
    client: TestClient,
    fields: dict[str, str] | None = None,
    files: list[tuple[str, bytes, str]] | None = None,
    tokens: dict[str, str] | None = None,
) -> Any:
    data = {**(tokens or hidden_fields(client)), **(REPORT if fields is None else fields)}
    uploads = [("lampiran", (name, content, claimed)) for name, content, claimed in files or []]
    # With no file chosen a browser still sends an empty part: multipart either way.
    return client.post("/lapor", data=data, files=uploads or [("lampiran", ("", b"", "application/octet-stream"))])


def tracking_id(response: Any) -> str:
    found = _TRACKING.search(response.text)
    assert found, response.text[-1500:]
    return found.group(1)


def attachment_files(config: Config) -> list[Path]:
    root = AttachmentFiles(config.data_dir).root
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def test_form_page_is_accessible_and_loads_nothing_from_outside(client: TestClient) -> None:
    page = client.get("/lapor")
    html = page.text
    assert page.status_code == 200
    for field in ("isi", "judul", "lokasi", "lat", "lon", "lampiran", "nama", "telepon", "email", "persetujuan"):
        assert re.search(f'<label[^>]* for="{field}"', html), field
        assert f'id="{field}"' in html
    for choice in ("publik", "rahasia", "anonim"):
        assert f'<label class="inline" for="kerahasiaan-{choice}"' in html
        assert f'id="kerahasiaan-{choice}-hint"' in html  # each choice is explained
    assert re.findall(r"<script[^>]*>", html) == [
        '<script src="/static/app.js" defer>',
        '<script src="/static/public.js" defer>',
    ]  # no inline script: the CSP allows none
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "geolocation=(self)" in page.headers["permissions-policy"]
    assert 'id="pakai-lokasi" hidden' in html  # shown by public.js only where geolocation exists
    assert client.get("/static/public.js").status_code == 200


def test_report_with_a_photo_and_a_pdf_is_stored_and_its_status_page_shows_it(
    client: TestClient, store: Store, config: Config
) -> None:
    # The names and the browser's types lie; the bytes decide.
    sent = submit(client, files=[("foto.txt", PHOTO, "text/plain"), ("surat.jpg", PDF, "image/jpeg")])
    assert sent.status_code == 200
    number = tracking_id(sent)
    assert f'href="/cek/{number}"' in sent.text
    (complaint,) = stored_complaints(store)
    assert complaint.tracking_id == number
    assert (complaint.channel, complaint.provider) == ("web", "webform")
    assert (complaint.reporter_name, complaint.reporter_phone) == ("Budi Santoso", "+6281234567890")
    assert (complaint.lat, complaint.lon, complaint.subject) == (-6.595, 106.7972, "Jalan berlubang")
    assert [(a["filename"], a["content_type"]) for a in complaint.attachments] == [
        ("foto.txt", "image/jpeg"),
        ("surat.jpg", "application/pdf"),
    ]
    assert [path.name for path in attachment_files(config)] == sorted(
        hashlib.sha256(data).hexdigest() for data in (PHOTO, PDF)
    )
    status = client.get(f"/cek/{number}")
    assert status.status_code == 200
    assert number in status.text and "Diterima" in status.text
    assert "Budi" not in status.text and "budi@example.org" not in status.text and "3456" not in status.text


def test_anonymous_report_keeps_no_identity_in_its_raw_row_nor_its_complaint(client: TestClient, store: Store) -> None:
    sent = submit(client, {**REPORT, "kerahasiaan": "anonim"})
    assert sent.status_code == 200
    (row,) = stored_inbox(store)
    for identity in (b"Budi", b"3456", b"budi@example.org"):
        assert identity not in row.raw
    assert row.headers == {"content-type": "application/json"}
    (complaint,) = stored_complaints(store)
    assert (complaint.anonymity, complaint.reporter_name, complaint.reporter_email) == ("anonymous", None, None)


def test_confidential_reports_status_page_shows_neither_identity_nor_body(client: TestClient, store: Store) -> None:
    number = tracking_id(submit(client, {**REPORT, "kerahasiaan": "rahasia"}))
    (complaint,) = stored_complaints(store)
    assert complaint.reporter_name == "Budi Santoso"  # kept for staff
    page = client.get(f"/cek/{number}").text
    for private in ("Budi", "budi@", "3456", "berlubang besar", "Jalan berlubang"):
        assert private not in page
    assert "Laporan rahasia" in page


def test_status_page_follows_the_lifecycle_with_agency_and_public_notes_only(
    make_config: Callable[..., Config], running_client: Callable[[Config], TestClient], store: Store
) -> None:
    agencies = {"dpupr": {"name": "Dinas PUPR Kota Bogor", "categories": ["jalan"]}}
    config = make_config(web={"min_fill_seconds": 0}, agencies=agencies)
    admin = Actor("staff", "rina.admin", admin=True)
    with running_client(config) as client:
        number = tracking_id(submit(client))
        for to, extra in (
            ("verified", {"internal_note": "pelapor sering lapor"}),
            ("forwarded", {"agency": "dpupr"}),
            ("in_progress", {"public_note": "Tim survei dijadwalkan Kamis."}),
        ):
            lifecycle.transition(store, config, number, Change(to=to, **extra), admin)
        page = client.get(f"/cek/{number}").text
        api = client.get(f"/api/v1/public/reports/{number}", headers={"X-Api-Key": "none"})
    assert re.search(r'id="instansi">\s*Dinas PUPR Kota Bogor', page)
    steps = re.findall(r"<li><span class=\"when\">[^<]*</span> <strong>([^<]+)</strong>", page)
    assert steps == ["Diterima", "Terverifikasi", "Diteruskan", "Ditindaklanjuti"]
    assert "Tim survei dijadwalkan Kamis." in page
    for internal in ("rina.admin", "sering lapor", "Budi"):
        assert internal not in page
    assert api.status_code == 401  # the API view needs an app key (the same steps otherwise)


def test_double_submit_of_one_form_is_one_complaint(client: TestClient, store: Store) -> None:
    tokens = hidden_fields(client)
    first, second = submit(client, tokens=tokens), submit(client, tokens=tokens)
    assert tracking_id(first) == tracking_id(second)
    assert len(stored_complaints(store)) == 1


def test_concurrent_copies_of_one_form_make_one_complaint(site: Callable[..., TestClient], store: Store) -> None:
    with site(rate_limit="50/minute") as client:
        tokens = hidden_fields(client)
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda _: submit(client, tokens=tokens), range(6)))
    assert {tracking_id(answer) for answer in answers} == {stored_complaints(store)[0].tracking_id}
    assert len(stored_inbox(store)) == 1 and len(stored_complaints(store)) == 1


def test_honeypot_is_refused_and_stores_nothing(client: TestClient, store: Store, config: Config) -> None:
    refused = submit(client, {**REPORT, "situs": "http://spam.example"}, files=[("a.jpg", PHOTO, "image/jpeg")])
    assert refused.status_code == 400
    assert "Formulir tidak dapat diproses" in refused.text
    assert stored_inbox(store) == [] and attachment_files(config) == []


def test_form_posted_faster_than_a_person_types_is_refused_and_kept_for_a_second_try(
    site: Callable[..., TestClient], store: Store
) -> None:
    with site(min_fill_seconds=3600) as client:
        refused = submit(client)
    assert refused.status_code == 400
    assert "terlalu cepat" in refused.text
    assert REPORT["isi"] in refused.text  # what was typed is not lost
    assert stored_inbox(store) == []


@pytest.mark.parametrize("tamper", ["forged token", "other browser", "no csrf"])
def test_forged_or_foreign_forms_are_refused(client: TestClient, store: Store, tamper: str) -> None:
    tokens = hidden_fields(client)
    if tamper == "forged token":
        tokens["form_token"] = tokens["form_token"][:-4] + "AAAA"
    elif tamper == "other browser":
        client.cookies.set("lapor_form_csrf", "another-browsers-cookie")
    else:
        tokens["csrf_token"] = ""
    assert submit(client, tokens=tokens).status_code == 403
    assert stored_inbox(store) == []


def test_flood_is_refused_with_429_and_retry_after(site: Callable[..., TestClient], store: Store) -> None:
    with site(rate_limit="2/minute") as client:
        codes = [submit(client).status_code for _ in range(3)]
        flood = submit(client)
    assert codes == [200, 200, 429]
    assert flood.status_code == 429
    assert 0 < int(flood.headers["retry-after"]) <= 60
    assert "Terlalu banyak permintaan" in flood.text
    assert len(stored_complaints(store)) == 2


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([("foto.jpg", b"GIF89a not what it claims" + b"\x00" * 50, "image/jpeg")], "bukan foto"),
        ([("kosong.jpg", b"", "image/jpeg")], "kosong"),
        ([(f"{n}.jpg", PHOTO, "image/jpeg") for n in range(4)], "paling banyak 3 berkas"),
        ([("besar.jpg", PHOTO + b"\x00" * 2000, "image/jpeg")], "lebih dari"),
    ],
    ids=["type from bytes", "empty", "too many", "too big"],
)
def test_unacceptable_files_are_named_beside_the_field_and_nothing_is_stored(
    site: Callable[..., TestClient], store: Store, config: Config, files: list[tuple[str, bytes, str]], message: str
) -> None:
    with site(max_file_bytes=2048) as client:
        refused = submit(client, files=files)
    assert refused.status_code in (413, 422), refused.text
    assert message in refused.text or refused.status_code == 413
    assert stored_inbox(store) == [] and attachment_files(config) == []


def test_body_over_the_limit_is_refused_before_it_is_read(site: Callable[..., TestClient], store: Store) -> None:
    with site(max_files=1, max_file_bytes=1024 * 1024) as client:
        refused = submit(client, files=[("a.jpg", PHOTO + b"\x00" * (1400 * 1024), "image/jpeg")])
        api = client.post("/api/v1/public/reports", content=b"x" * (1400 * 1024), headers={"X-Api-Key": APP_KEY})
    assert refused.status_code == 413
    assert refused.headers["content-type"].startswith("text/html")  # a page a person can read, not JSON
    assert "terlalu besar" in refused.text
    assert api.status_code == 413 and "detail" in api.json()
    assert stored_inbox(store) == []


def test_more_parts_than_the_form_has_or_a_broken_body_is_refused(client: TestClient, store: Store) -> None:
    files = [(f"{n}.jpg", PHOTO, "image/jpeg") for n in range(6)]
    assert submit(client, files=files).status_code == 413
    broken = client.post(
        "/lapor", content=b"--x\r\nnot a part", headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert broken.status_code in (400, 403)
    assert stored_inbox(store) == []


def test_missing_text_or_consent_is_named_beside_its_field(client: TestClient, store: Store) -> None:
    refused = submit(client, {**REPORT, "isi": "   ", "persetujuan": "", "email": "bukan-email"})
    assert refused.status_code == 422
    assert 'id="isi-error"' in refused.text and 'id="persetujuan-error"' in refused.text
    assert "bukan alamat e-mail" in refused.text
    assert stored_inbox(store) == []


def test_unknown_and_malformed_ids_get_one_answer_and_lookups_are_rate_limited(
    site: Callable[..., TestClient],
) -> None:
    with site(lookup_rate_limit="3/minute") as client:
        unknown = client.get("/cek/LPR-ZZZZZZ")
        malformed = client.get("/cek/%3Cscript%3E")
        lowercase = client.get("/cek/lpr-zzzzzz")
        flood = client.get("/cek/LPR-YYYYYY")
    assert [r.status_code for r in (unknown, malformed, lowercase)] == [404, 404, 404]
    assert unknown.text == malformed.text == lowercase.text
    assert flood.status_code == 429 and int(flood.headers["retry-after"]) > 0


def test_lookup_form_works_without_javascript(client: TestClient) -> None:
    page = client.get("/cek")
    assert page.status_code == 200 and '<label for="nomor"' in page.text
    redirected = client.get("/cek", params={"nomor": " lpr-7k3q9x "}, follow_redirects=False)
    assert (redirected.status_code, redirected.headers["location"]) == (303, "/cek/lpr-7k3q9x")


def test_switched_off_channel_has_no_public_pages(
    make_config: Callable[..., Config], running_client: Callable[[Config], TestClient]
) -> None:
    with running_client(make_config(channels={"smtp": {"enabled": False}, "web": {"enabled": False}})) as client:
        assert client.get("/lapor").status_code == 404
        assert client.get("/api/v1/public/reports/LPR-ZZZZZZ", headers={"X-Api-Key": "x"}).status_code == 404


# ---- the public API ----------------------------------------------------------------------------------


def api_post(client: TestClient, body: dict[str, Any], key: str | None = APP_KEY, **headers: str) -> Any:
    return client.post("/api/v1/public/reports", json=body, headers={**({"X-Api-Key": key} if key else {}), **headers})


JSON_REPORT = {
    "body": "Lampu PJU mati di Jl. Sudirman",
    "location": {"text": "Jl. Sudirman", "lat": -6.59, "lon": 106.8},
    "reporter": {"name": "Siti", "phone": "081298765432", "anonymity": "confidential"},
    "consent": True,
    "attachments": [{"filename": "pju.jpg", "content_base64": base64.b64encode(PHOTO).decode()}],
}


def test_app_reports_by_json_with_a_photo_and_reads_the_public_view(client: TestClient, store: Store) -> None:
    created = api_post(client, JSON_REPORT, **{"Idempotency-Key": "android-0001"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "received" and body["status_url"].endswith(f"/cek/{body['tracking_id']}")
    again = api_post(client, JSON_REPORT, **{"Idempotency-Key": "android-0001"})
    assert again.json()["tracking_id"] == body["tracking_id"]
    reused = api_post(client, {**JSON_REPORT, "body": "Lain lagi"}, **{"Idempotency-Key": "android-0001"})
    assert reused.status_code == 422
    (complaint,) = stored_complaints(store)
    assert complaint.reporter_name == "Siti" and complaint.attachments[0]["content_type"] == "image/jpeg"
    view = client.get(f"/api/v1/public/reports/{body['tracking_id']}", headers={"X-Api-Key": APP_KEY})
    assert view.status_code == 200
    assert view.json()["confidential"] is True and view.json()["summary"] is None
    assert "Siti" not in view.text and "0812" not in view.text


def test_app_reports_by_multipart_with_the_forms_field_names(client: TestClient, store: Store) -> None:
    created = client.post(
        "/api/v1/public/reports",
        data={"isi": "Sampah menumpuk", "kerahasiaan": "anonim", "nama": "Rudi", "persetujuan": "ya"},
        files=[("lampiran", ("x.bin", PDF, "application/octet-stream"))],
        headers={"X-Api-Key": APP_KEY},
    )
    assert created.status_code == 201, created.text
    (row,) = stored_inbox(store)
    assert b"Rudi" not in row.raw
    (complaint,) = stored_complaints(store)
    assert complaint.attachments[0]["content_type"] == "application/pdf"


def test_app_without_a_known_key_is_refused(client: TestClient, store: Store) -> None:
    assert api_post(client, JSON_REPORT, key=None).status_code == 401
    assert api_post(client, JSON_REPORT, key="guessed").status_code == 401
    assert client.get("/api/v1/public/reports/LPR-ZZZZZZ").status_code == 401
    assert stored_inbox(store) == []


def test_app_report_breaking_the_rules_is_refused(site: Callable[..., TestClient], store: Store) -> None:
    with site(rate_limit="2/minute") as client:
        no_consent = api_post(client, {**JSON_REPORT, "consent": False})
        bad_file = api_post(
            client, {**JSON_REPORT, "attachments": [{"content_base64": base64.b64encode(b"hi").decode()}]}
        )
        flood = api_post(client, JSON_REPORT)
        not_json = client.post("/api/v1/public/reports", content=b"{", headers={"X-Api-Key": APP_KEY})
    assert no_consent.status_code == 422 and no_consent.json()["detail"][0]["loc"] == ["body", "consent"]
    assert bad_file.status_code == 422
    assert flood.status_code == 429 and "retry-after" in flood.headers
    assert not_json.status_code == 429  # the limiter counts every attempt, first
    assert stored_inbox(store) == []


def test_api_unknown_ids_get_one_answer(client: TestClient) -> None:
    answers = [
        client.get(f"/api/v1/public/reports/{each}", headers={"X-Api-Key": APP_KEY}) for each in ("LPR-ZZZZZZ", "zz")
    ]
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].json() == answers[1].json()


# ---- who is asking --------------------------------------------------------------------------------


def request_from(peer: str, forwarded: str | None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "method": "POST", "path": "/lapor", "headers": headers, "client": (peer, 5000)})


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),  # not our proxy: its header is anyone's word
        ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.5", "6.6.6.6, 198.51.100.1, 10.0.0.9", "198.51.100.1"),  # spoofed first hop ignored
        ("10.0.0.5", None, "10.0.0.5"),
    ],
)
def test_client_address_comes_from_x_forwarded_for_only_behind_a_trusted_proxy(
    make_config: Callable[..., Config], store: Store, peer: str, forwarded: str | None, client: str
) -> None:
    doors = Doors(Gateway(make_config(http={"trusted_proxies": ["10.0.0.0/8"]}), store))
    assert doors.client(request_from(peer, forwarded)) == client
