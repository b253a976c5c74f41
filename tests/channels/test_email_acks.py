"""Whom an acknowledgement may go to: RFC 8601 Authentication-Results from our own MTA, aligned with the address."""

from __future__ import annotations

import pytest

from channels.email.acks import authenticated_by, parse_authentication_results

MX = "mx.kota.go.id"


def test_a_header_with_comments_properties_and_a_version_is_read() -> None:
    authserv_id, results = parse_authentication_results(
        "mx.kota.go.id 1; spf=pass (sender SPF authorized) smtp.mailfrom=Warga@Contoh.ID;"
        ' dkim=pass header.d=contoh.id header.s="s1"; dmarc=fail header.from=contoh.id'
    )
    assert authserv_id == MX
    assert [(r.method, r.result) for r in results] == [("spf", "pass"), ("dkim", "pass"), ("dmarc", "fail")]
    assert results[0].properties == {"smtp.mailfrom": "warga@contoh.id"}
    assert results[1].properties["header.s"] == "s1"


@pytest.mark.parametrize(
    ("headers", "address", "vouched"),
    [
        ([f"{MX}; dmarc=pass header.from=contoh.id"], "warga@contoh.id", "dmarc"),
        ([f"{MX}; dkim=pass header.d=contoh.id"], "warga@mail.contoh.id", "dkim"),  # relaxed alignment
        ([f"{MX}; dkim=pass header.i=@contoh.id"], "warga@contoh.id", "dkim"),
        ([f"{MX}; spf=pass smtp.mailfrom=bounce@contoh.id"], "warga@contoh.id", "spf"),
        ([f"{MX}; spf=pass smtp.mailfrom=bounce@contoh.id"], "korban@korban.example", None),  # forged Reply-To
        ([f"{MX}; dkim=pass header.d=id"], "warga@contoh.idx", None),
        ([f"{MX}; dkim=pass header.d=contoh.id"], "warga@evilcontoh.id", None),  # not a subdomain
        ([f"{MX}; spf=softfail smtp.mailfrom=contoh.id"], "warga@contoh.id", None),
        ([f"{MX}; none"], "warga@contoh.id", None),
        (["mx.lain.example; dmarc=pass header.from=contoh.id"], "warga@contoh.id", None),  # not our MTA
        # Ours on top says fail; a "pass" the sender wrote below it does not count.
        ([f"{MX}; spf=fail smtp.mailfrom=contoh.id", f"{MX}; spf=pass smtp.mailfrom=contoh.id"], "a@contoh.id", None),
        (["mx.lain.example; none", f"{MX}; dmarc=pass header.from=contoh.id"], "warga@contoh.id", "dmarc"),
        ([], "warga@contoh.id", None),
    ],
)
def test_only_our_mtas_topmost_pass_aligned_with_the_address_vouches(
    headers: list[str], address: str, vouched: str | None
) -> None:
    assert authenticated_by(headers, MX, address) == vouched
