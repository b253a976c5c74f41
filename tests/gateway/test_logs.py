"""Personal data never reaches the logs whole."""

from __future__ import annotations

import pytest
import structlog
from structlog.testing import capture_logs

from gateway.logs import mask, mask_personal_data


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
