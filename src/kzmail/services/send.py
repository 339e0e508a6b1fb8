"""Sending services: `send` and `retry` (`status` and `report` are in `services.status`).

`send` checks the list, asks `confirm`, settles what a crash left behind (rows still
`sending` become `uncertain`), builds the lanes (connections x relays, each behind its
rate gate, the limits' history read back from the journal) and runs the `Sender`.
Ctrl-C (SIGINT) asks the sender to stop: transactions in flight finish and are recorded.
These functions return plain results and raise `KzmailError`s; they never print.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kzmail.delivery.engine import Lane, Mode, Progress, RetryPolicy, Sender, SendReport
from kzmail.delivery.ratelimit import Gate, RateLimiter, windows_for
from kzmail.delivery.sink import EmbeddedSink
from kzmail.delivery.smtp import RelayConfig, SmtpTransport
from kzmail.errors import (
    InputError,
    Interrupted,
    SubscriberListError,
)
from kzmail.lists.checker import ListSummary
from kzmail.lists.rows import clean_test_address
from kzmail.models import (
    Campaign,
    RateSettings,
    SmtpSettings,
    Subscriber,
    Workspace,
    pick_subscriber,
)
from kzmail.services.outcome import Outcome, outcome
from kzmail.services.relays import relay_configs
from kzmail.services.workspace import (
    Prepared,
    find_subscriber,
    list_checker,
    prepare,
    refuse_remote,
    sendable,
)
from kzmail.state.journal import Delivery, Journal
from kzmail.state.runlock import run_lock

__all__ = [
    "Mode",
    "SendPlan",
    "SendReport",
    "SendResult",
    "run_key",
    "send",
]


@dataclass(frozen=True)
class SendPlan:
    """What `send` is about to do, shown to the user before it starts."""

    campaign: Campaign
    summary: ListSummary
    relay: str
    outbox: Path | None
    dry_run: bool
    to: str | None
    mode: Mode = "send"
    notes: tuple[str, ...] = ()  # lines worth reading before it starts (e.g. about `--to`)


@dataclass
class SendResult:
    plan: SendPlan
    report: SendReport
    built: int = 0
    uncertain: list[Delivery] = field(default_factory=list)  # left by a crash, not re-sent
    run_key: str = ""
    outcome: Outcome | None = None  # who still lacks the message (not for --to or a dry run)


def run_key(campaign: Campaign, *, test_only: bool = False) -> str:
    """The journal's name for a run: `<name>`, `<name>#sink` (rehearsal), `<name>#test`."""
    if test_only:
        return f"{campaign.name}#test"
    return (
        f"{campaign.name}#sink" if campaign.smtp.is_local and not campaign.relays else campaign.name
    )


def _limiter(journal: Journal | None, scope: str, rate: RateSettings) -> RateLimiter:
    windows = windows_for(rate)
    if journal is None or not windows:
        return RateLimiter(windows)
    span = max(seconds for _, seconds in windows)
    return RateLimiter(
        windows,
        history=journal.rate_history(scope, span),
        on_stamp=lambda at: journal.add_rate_stamp(scope, at),
    )


def _lanes(
    campaign: Campaign,
    journal: Journal,
    sink: RelayConfig | None,
    relays: list[tuple[RelayConfig, RateSettings]],
) -> list[Lane]:
    """Connections per relay, each behind its relay's gate (which includes the campaign's)."""
    if sink is not None:
        gate = Gate([_limiter(None, "sink", campaign.rate)])
        return [Lane(SmtpTransport(sink), gate) for _ in range(campaign.rate.connections)]
    if not campaign.relays:
        config, rate = relays[0]
        scope = f"relay {config.describe()} {config.username}"
        gate = Gate([_limiter(journal, scope, rate)])
        return [Lane(SmtpTransport(config), gate) for _ in range(rate.connections)]
    shared = _limiter(journal, f"campaign {campaign.name}", campaign.rate)
    lanes: list[Lane] = []
    for config, rate in relays:
        own = _limiter(journal, f"relay {config.describe()} {config.username}", rate)
        gate = Gate([own, shared])
        lanes += [Lane(SmtpTransport(config), gate) for _ in range(rate.connections)]
    return lanes


def _limited(items: Iterator[Subscriber], limit: int | None) -> Iterator[Subscriber]:
    for count, item in enumerate(items):
        if limit is not None and count >= limit:
            return
        yield item


def _test_recipient(
    prepared: Prepared, journal: Journal, address: str
) -> tuple[Subscriber, tuple[str, ...]]:
    """`--to`: the list's own entry for that address if any, else the address (a special-use
    name such as `you@localhost` allowed, see `clean_test_address`) with the first sendable
    subscriber's extra fields as sample data (no name), and notes saying so."""
    try:
        return find_subscriber(prepared, journal, address), ()
    except InputError:
        pass
    try:
        email, rule = clean_test_address(address)
    except ValueError as exc:
        raise InputError(str(exc), key="--to") from exc
    notes: list[str] = []
    if rule is not None:
        notes.append(f"--to {email} is accepted for a test message because {rule}")
    sample = pick_subscriber(sendable(prepared, journal), None)
    if sample is None or not sample.fields:
        return Subscriber(email=email), tuple(notes)
    notes.append(
        f"--to {email} is not in the list: the message uses row {sample.line}'s fields "
        f"({', '.join(sample.fields)}) as sample data, and no name"
    )
    return Subscriber(email=email, fields=dict(sample.fields)), tuple(notes)


def _empty_maildir(folder: Path) -> None:
    """Remove earlier rehearsal messages; only Maildir message files, nothing else."""
    for sub in ("new", "cur", "tmp"):
        for item in (folder / sub).glob("*"):
            if item.is_file():
                item.unlink()


def _to_do(journal: Journal, key: str, valid: int, mode: Mode, resend_uncertain: bool) -> int:
    counts = journal.counts(key)
    temporary = sum(1 for d in journal.deliveries(key, ("failed",)) if d.retryable)
    if mode == "retry":
        return temporary
    # a send re-attempts the temporary failures of earlier runs too
    done = counts.get("sent", 0) + counts.get("failed", 0) + counts.get("bounced", 0) - temporary
    if not resend_uncertain:
        done += counts.get("uncertain", 0)
    return max(0, valid - done)


def send(
    ws: Workspace,
    path: Path,
    *,
    dry_run: bool = False,
    to: str | None = None,
    limit: int | None = None,
    resend_uncertain: bool = False,
    mode: Mode = "send",
    confirm: Callable[[SendPlan], bool] = lambda _: True,
    on_start: Callable[[int], None] = lambda _: None,
    on_progress: Callable[[Progress], None] = lambda _: None,
) -> SendResult:
    """Check the list, ask `confirm`, then build (dry run) or send every message still due."""
    prepared = prepare(ws, path)
    refuse_remote(prepared)
    campaign = prepared.campaign
    journal = Journal(ws.state, ws.clock)
    checker = list_checker(prepared, journal)
    try:
        summary = checker.check()
        if summary.errors:
            first = summary.errors[0]
            raise SubscriberListError(first.reason, path=first.file, line=first.line or None)
        if summary.sendable:  # a template mistake stops us here, before any connection
            prepared.render(find_subscriber(prepared, journal, None))
        local = campaign.smtp.is_local and not campaign.relays
        outbox = (campaign.outbox or ws.outbox(campaign.name)) if local else None
        relays: list[SmtpSettings] = [*campaign.relays] or [campaign.smtp]
        relay = "embedded sink" if local else ", ".join(f"{r.host}:{r.port}" for r in relays)
        notes: tuple[str, ...] = ()
        if to is not None:
            test, notes = _test_recipient(prepared, journal, to)
            recipients: Iterator[Subscriber] = iter([test])
        else:
            recipients = _limited(checker.subscribers(), limit)
        plan = SendPlan(campaign, summary, relay, outbox, dry_run, to, mode, notes)
        if summary.sendable == 0 and to is None:
            raise InputError("no sendable subscriber in the list", path=campaign.list_paths[0])
        # a missing password shows before the question
        configs = relay_configs(ws, campaign) if not dry_run and not local else []
        if not confirm(plan):
            return SendResult(plan, SendReport())
        key = run_key(campaign, test_only=to is not None)
        if dry_run:
            on_start(1 if to else min(summary.sendable, limit or summary.sendable))
            built = 0
            for subscriber in recipients:
                prepared.build(subscriber)
                built += 1
                on_progress(Progress(subscriber.email))
            return SendResult(plan, SendReport(), built, run_key=key)
        with run_lock(ws.state, key):  # one send of a run at a time
            if to is not None or (local and mode == "send"):
                journal.forget(key)  # a test message, or a sink rehearsal: start afresh
                if local and to is None and outbox is not None:
                    _empty_maildir(outbox)
            uncertain = journal.settle_interrupted(key)
            journal.record_run(key, campaign.list_id)  # complaints find the list by it
            total = 1 if to else _to_do(journal, key, summary.sendable, mode, resend_uncertain)
            on_start(min(total, limit) if limit else total)
            try:
                report = asyncio.run(
                    _deliver(
                        prepared,
                        journal,
                        recipients,
                        key,
                        outbox,
                        configs,
                        mode=mode,
                        resend_uncertain=resend_uncertain,
                        on_progress=on_progress,
                    )
                )
            except asyncio.CancelledError:
                raise Interrupted(
                    "stopped at once (Ctrl-C twice): messages that were in "
                    "flight are uncertain; `kzmail send` resumes and names "
                    "them"
                ) from None
            left = [] if resend_uncertain else uncertain
            partial = report.paused is not None or report.interrupted or limit is not None
            after = None if to is not None else outcome(prepared, journal, key, partial=partial)
        return SendResult(plan, report, uncertain=left, run_key=key, outcome=after)
    finally:
        checker.close()
        journal.close()


def interrupt(sender: Sender, task: asyncio.Task[SendReport] | None) -> None:
    """First Ctrl-C: finish what is in flight, then stop. Second: stop at once."""
    if sender.stopping and task is not None:
        task.cancel()
    else:
        sender.stop()


async def _deliver(
    prepared: Prepared,
    journal: Journal,
    recipients: Iterator[Subscriber],
    key: str,
    outbox: Path | None,
    relays: list[tuple[RelayConfig, RateSettings]],
    *,
    mode: Mode,
    resend_uncertain: bool,
    on_progress: Callable[[Progress], None],
) -> SendReport:
    campaign = prepared.campaign
    retry = campaign.retry
    policy = RetryPolicy(
        attempts=retry.attempts,
        backoff=retry.backoff,
        backoff_max=retry.backoff_max,
        pause_after=retry.pause_after,
    )

    async def run(sink: RelayConfig | None) -> SendReport:
        # DKIM: the private-key operation runs in a signing process, off the event loop
        pool = prepared.sign_pool()
        sender = Sender(
            run_key=key,
            envelope_from=prepared.factory.envelope_from,
            build=prepared.build if pool is None else prepared.build_unsealed,
            lanes=_lanes(campaign, journal, sink, relays),
            log=journal,
            policy=policy,
            mode=mode,
            resend_uncertain=resend_uncertain,
            on_progress=on_progress,
            seal=None if pool is None else prepared.sealer(pool),
        )
        loop = asyncio.get_running_loop()
        no_signals = (NotImplementedError, RuntimeError, ValueError)  # not the main thread
        with contextlib.suppress(*no_signals):
            loop.add_signal_handler(signal.SIGINT, interrupt, sender, asyncio.current_task())
        try:
            if pool is not None:
                await pool.start()
            return await sender.run(recipients)
        finally:
            if pool is not None:
                await pool.close()
            with contextlib.suppress(*no_signals):
                loop.remove_signal_handler(signal.SIGINT)

    if outbox is None:
        return await run(None)
    async with EmbeddedSink(outbox) as sink:
        return await run(
            RelayConfig(
                host=sink.host,
                port=sink.port,
                tls="none",
                messages_per_connection=campaign.rate.messages_per_connection,
            )
        )


# status and report ----------------------------------------------------------------------
