"""`check --smtp`: one conversation with a relay up to AUTH, and no further.

It opens the connection exactly as a send does (`smtp.connect`: greeting, EHLO, STARTTLS or
implicit TLS, AUTH), then says QUIT before any MAIL, so nothing is ever sent. Errors are the
send's own (`DeliveryError`), so `check` and a paused send word a problem the same way.
"""

from __future__ import annotations

import aiosmtplib

from kzmail.delivery.smtp import RelayConfig, connect


def _steps(config: RelayConfig, smtp: aiosmtplib.SMTP) -> str:
    tls = {"starttls": "STARTTLS", "ssl": "implicit TLS", "none": "no TLS (tls: none)"}
    steps = ["EHLO", tls[config.tls]]
    if config.tls != "none" and not config.verify_certificate:
        steps[-1] += " (certificate not verified)"
    if config.username:
        steps.append(f"AUTH as {config.username} accepted")
    else:
        offered = " (the relay offers AUTH)" if smtp.supports_extension("auth") else ""
        steps.append(f"no AUTH{offered}")
    return ", ".join(steps) + "; no mail sent"


async def probe(config: RelayConfig) -> str:
    """Connect, TLS and AUTH as configured, then QUIT; say what was done.

    Raises the `DeliveryError` a send would meet at connect (an `UnreachableRelayError`, or a
    `PermanentDeliveryError` naming the relay's reply, 535 for a wrong password).
    """
    smtp = await connect(config)
    try:
        return _steps(config, smtp)
    finally:
        try:
            await smtp.quit(timeout=min(config.timeout, 5.0))
        except Exception:  # noqa: BLE001 - a relay that hangs up first: no harm done
            smtp.close()
