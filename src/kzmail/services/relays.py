"""The campaign's relays as connection settings (`send`), and `check --smtp`: can we talk to
each of them?

The password comes from the environment the workspace carries, never from a file.
`check_relays` connects to every relay the way a send does (greeting, EHLO, STARTTLS or
implicit TLS, AUTH) and quits before MAIL, so a wrong password or an untrusted certificate
shows before anyone is mailed. These functions return results and raise `KzmailError`s.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from kzmail.delivery.probe import probe
from kzmail.delivery.smtp import RelayConfig
from kzmail.errors import CampaignError, DeliveryError
from kzmail.models import Campaign, RateSettings, SmtpSettings, Workspace


def relay_config(
    ws: Workspace, campaign: Campaign, smtp: SmtpSettings, rate: RateSettings, setting: str
) -> RelayConfig:
    """One relay's connection settings; `setting` names its place in the campaign file."""
    password = ""
    if smtp.username:
        if not smtp.password_env:
            raise CampaignError(
                "smtp.username is set: name the environment variable that holds the password",
                path=campaign.source_path,
                key=f"{setting}.password_env",
            )
        password = ws.environ.get(smtp.password_env, "")
        if not password:
            raise CampaignError(
                f"environment variable {smtp.password_env} is not set",
                path=campaign.source_path,
                key=f"{setting}.password_env",
            )
    return RelayConfig(
        host=smtp.host,
        port=smtp.port,
        tls=smtp.tls,
        username=smtp.username,
        password=password,
        timeout=smtp.timeout,
        verify_certificate=smtp.verify_certificate,
        ca_file=smtp.ca_file,
        messages_per_connection=rate.messages_per_connection,
        setting=setting,
    )


def relay_configs(ws: Workspace, campaign: Campaign) -> list[tuple[RelayConfig, RateSettings]]:
    """Each relay's connection settings (password from the workspace) with its own limits."""
    if not campaign.relays:
        return [(relay_config(ws, campaign, campaign.smtp, campaign.rate, "smtp"), campaign.rate)]
    return [
        (relay_config(ws, campaign, relay, relay.rate, f"relays.{index}"), relay.rate)
        for index, relay in enumerate(campaign.relays)
    ]


@dataclass(frozen=True)
class RelayCheck:
    """One relay's answer to `check --smtp`: `detail` is what was done, or why it failed."""

    relay: str
    ok: bool
    detail: str
    code: int | None = None  # the relay's reply code when it refused (535, say)


async def _check_all(configs: list[RelayConfig]) -> list[RelayCheck]:
    checks: list[RelayCheck] = []
    for config in configs:  # one at a time: the lines come out in the file's order
        try:
            detail = await probe(config)
        except DeliveryError as exc:
            checks.append(RelayCheck(config.describe(), False, str(exc), exc.code))
        else:
            checks.append(RelayCheck(config.describe(), True, detail))
    return checks


def check_relays(ws: Workspace, campaign: Campaign) -> list[RelayCheck]:
    """Connect to each relay of the campaign (TLS and AUTH as configured, no MAIL)."""
    if campaign.smtp.is_local and not campaign.relays:
        return [
            RelayCheck(
                "embedded sink", True, "smtp.host is local: a rehearsal, nothing to connect to"
            )
        ]
    configs = [config for config, _ in relay_configs(ws, campaign)]
    return asyncio.run(_check_all(configs))
