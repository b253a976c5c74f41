"""Personal data never reaches the logs whole."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
import structlog
from structlog.testing import capture_logs

from gateway.logs import configure_logging, mask, mask_personal_data


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("dari 081234567890", "081234567890"),
        ("dari +6281234567890", "+6281234567890"),
        ("dari 6281234567890", "6281234567890"),
        ("dari 0812-3456-7890", "0812-3456-7890"),
        ("NIK 3201234567890123 pelapor", "3201234567890123"),
        ("surel budi.santoso@example.go.id", "budi.santoso@example.go.id"),
        ("US +14155552671", "+14155552671"),
    ],
)
def test_mask_hides_phone_numbers_nik_and_email(text: str, hidden: str) -> None:
    masked = mask(text)
    assert hidden not in masked
    assert masked.split()[0] == text.split()[0]  # the words around are untouched


def test_mask_keeps_ordinary_numbers() -> None:
    assert mask("inbox_id 1234 attempts 3 LPR-7K3Q9X") == "inbox_id 1234 attempts 3 LPR-7K3Q9X"


def test_the_log_processor_masks_every_value() -> None:
    log = structlog.get_logger("test")
    with capture_logs(processors=[mask_personal_data]) as captured:
        log.info(
            "inbox.accepted",
            sender="+6281234567890",
            detail={"email": "warga@example.org", "nik": ["3201234567890123"]},
        )

    [entry] = captured
    flat = repr(entry)
    assert "+6281234567890" not in flat
    assert "warga@example.org" not in flat
    assert "3201234567890123" not in flat
    assert entry["sender"].startswith("+628")
    assert entry["event"] == "inbox.accepted"


def _lines_of(run: Callable[[], None], capsys: pytest.CaptureFixture[str]) -> list[str]:
    configure_logging("info", "json")
    try:
        run()
    finally:
        root = logging.getLogger()
        root.removeHandler(next(h for h in root.handlers if h.get_name() == "lapor-gateway"))
    return capsys.readouterr().err.splitlines()


def _crash() -> None:
    raise RuntimeError("boom\nsecond line of the message")


def test_a_library_traceback_is_one_json_line_with_the_traceback_in_one_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def run() -> None:
        try:
            _crash()
        except RuntimeError:
            # What uvicorn does with an exception that escapes the app.
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")

    [line] = _lines_of(run, capsys)
    entry = json.loads(line)
    assert entry["event"] == "Exception in ASGI application"
    assert entry["logger"] == "uvicorn.error"
    assert entry["level"] == "error"
    assert "Traceback" in entry["exception"] and "_crash" in entry["exception"]


def test_our_own_exception_log_is_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    def run() -> None:
        try:
            _crash()
        except RuntimeError:
            structlog.get_logger("test").exception("worker.crashed", phone="081234567890")

    [line] = _lines_of(run, capsys)
    entry = json.loads(line)
    assert entry["event"] == "worker.crashed"
    assert "RuntimeError: boom" in entry["exception"]
    assert "081234567890" not in line


def test_a_library_log_is_masked_too(capsys: pytest.CaptureFixture[str]) -> None:
    [line] = _lines_of(lambda: logging.getLogger("aiosmtpd").warning("from warga@example.org"), capsys)
    assert "warga@example.org" not in line
    assert json.loads(line)["logger"] == "aiosmtpd"
