"""``channels.smpp`` as the operator writes it: defaults, limits, one clear line per mistake."""

from __future__ import annotations

from typing import Any

import pytest

from channels.smpp import SmppSettings
from gateway.config import parse_config
from normalizer.errors import ConfigError


def test_defaults_bind_as_transceiver_with_gsm_and_five_minute_concat_timeout() -> None:
    settings = SmppSettings(enabled=True, system_id="lapor1708")
    assert (settings.host, settings.port, settings.short_code) == ("127.0.0.1", 2775, "1708")
    assert (settings.bind_mode, settings.default_alphabet) == ("transceiver", "gsm0338")
    assert (settings.concat_timeout_s, settings.enquire_link_s) == (300.0, 30.0)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"enabled": True}, "channels.smpp.system_id is empty"),
        ({"system_id": "x", "password": "123456789"}, "channels.smpp.password: Value error, longer than the 8"),
        ({"system_id": "x" * 16}, "channels.smpp.system_id: String should have at most 15"),
        ({"bind_mode": "transmitter"}, "channels.smpp.bind_mode: Input should be 'transceiver' or 'receiver'"),
        ({"default_data_coding": 8}, "channels.smpp.default_data_coding"),
        ({"default_alphabet": "utf8"}, "channels.smpp.default_alphabet: Input should be 'gsm0338', 'latin1'"),
        ({"concat_timeout_s": 0}, "channels.smpp.concat_timeout_s: Input should be greater than 0"),
        ({"window": 10}, "config: channels.smpp.window is not a known key"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_key(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_config({"channels": {"smpp": block}})


@pytest.mark.parametrize("key", ["default_alphabet", "default_data_coding"])
def test_default_alphabet_is_read_under_its_name_and_its_first_name(key: str) -> None:
    config = parse_config({"channels": {"smpp": {"system_id": "x", key: "latin1"}}})
    assert config.channel("smpp").default_alphabet == "latin1"


@pytest.mark.parametrize("channel", ["jasmin", "kannel"])
def test_http_sms_gateways_take_the_same_default_alphabet_key(channel: str) -> None:
    assert parse_config({"channels": {channel: {}}}).channel(channel).default_alphabet == "gsm0338"
    config = parse_config({"channels": {channel: {"default_alphabet": "ascii"}}})
    assert config.channel(channel).default_alphabet == "ascii"
    with pytest.raises(ConfigError, match=rf"channels\.{channel}\.default_alphabet"):
        parse_config({"channels": {channel: {"default_alphabet": "gsm"}}})


def test_password_is_a_secret_in_reprs() -> None:
    settings = SmppSettings(system_id="lapor1708", password="rahasia")
    assert "rahasia" not in repr(settings)
