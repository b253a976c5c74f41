"""``channels.smpp`` in config.yaml: the keys are a contract, see docs/channels/smpp.md."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from channels.base import ChannelSettings
from channels.gsm import Alphabet


class SmppSettings(ChannelSettings):
    host: str = "127.0.0.1"
    port: int = Field(default=2775, ge=1, le=65535)
    # SMPP 3.4 caps system_id at 15 and password at 8 octets; smpplib would cut them silently.
    system_id: str = Field(default="", max_length=15)
    password: SecretStr = Field(default=SecretStr(""))
    system_type: str = Field(default="", max_length=12)
    # Our address on the operator's network: the source_addr of replies.
    short_code: str = Field(default="1708", max_length=20)
    # "receiver" takes messages only: replies then fail for good (no transmitter on the bind).
    bind_mode: Literal["transceiver", "receiver"] = "transceiver"
    # What data_coding 0 ("SMSC default alphabet") means on this SMSC, in both directions; the
    # same key as on Jasmin and Kannel (``default_data_coding``, its first name, is still read).
    default_alphabet: Alphabet = Field(
        default="gsm0338", validation_alias=AliasChoices("default_alphabet", "default_data_coding")
    )
    # How long parts of a concatenated message wait for their siblings before being stored incomplete.
    concat_timeout_s: float = Field(default=300.0, gt=0)
    # Silence after which we send enquire_link; three unanswered ones mean the link is dead.
    enquire_link_s: float = Field(default=30.0, gt=0)

    @field_validator("password")
    @classmethod
    def _password_fits(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) > 8:
            raise ValueError("longer than the 8 characters SMPP 3.4 allows")
        return value

    @model_validator(mode="after")
    def _checked(self) -> SmppSettings:
        if self.enabled and not self.system_id:
            raise ValueError("channels.smpp.system_id is empty — set the system_id the operator gave you")
        return self
