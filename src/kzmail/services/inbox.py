"""`kzmail inbox`: read the reply mailbox once and act on what came back.

Each message of the source (`kzmail.inbox.sources`) is read (`kzmail.inbox.bounces`) and
matched to the kzmail delivery it answers, by the Message-ID in the returned headers. Then:
a hard bounce suppresses the address for every list, a complaint for that campaign's list,
a soft bounce is counted and suppresses after `soft_limit` campaigns, a policy or spam block
never suppresses and is counted for a warning, a proven unsubscribe reply suppresses on the
list its token names (without a token: `reply_list`, else the campaign's). A bounce that
matches no delivery acts only with `any_address`; it is remembered as `unmatched`, so later
runs do not report it again, and a later `any_address` run acts on it and says so. A message
handled by an earlier run counts once; `dry_run` writes nothing and flags nothing, and
`InboxResult` says what would have been done. `unsubscribes import` of a mailbox is this run
with `replies_unsubscribe`: there every human reply asks to unsubscribe.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kzmail import campaign_file
from kzmail.errors import KzmailError
from kzmail.inbox.bounces import Failure, Malformed, Reading, read
from kzmail.inbox.replies import (
    Trust,
    Unverified,
    asks_to_unsubscribe,
    auto_reason,
    token_of,
    verify_reply,
)
from kzmail.inbox.sources import Item, Source, open_source
from kzmail.lists.rows import Problem
from kzmail.models import ANY_LIST, Campaign, Workspace
from kzmail.services.send import run_key
from kzmail.state.journal import Journal
from kzmail.state.secret import load_signer
from kzmail.tokens import TokenSigner

KINDS = ("bounce", "complaint", "auto-reply", "unsubscribe", "other", "malformed")
TOTALS = (
    "messages",
    *KINDS,
    "repeated",
    "suppressed",
    "soft_counted",
    "policy_blocked",
    "delayed",
    "unmatched",
    "unmatched_before",
    "unverified",
)
BATCH = 500  # messages per transaction (and per fdatasync) of the state database
WARN_SHARE = 0.05  # policy blocks above this share of a run's bounces are warned about


@dataclass(frozen=True)
class Options:
    """How one run reads and acts (see the module)."""

    source: str
    campaign: Path | None = None
    dry_run: bool = False
    any_address: bool = False
    move_to: str | None = None
    password: str = ""
    cafile: Path | None = None
    trust: Trust = field(default_factory=Trust)
    soft_limit: int | None = None  # None: the campaign's `inbox.soft_limit` (default 3)
    replies_unsubscribe: bool = False  # the mailto unsubscribe mailbox: every reply asks
    reply_list: str | None = None  # the list of proven replies that carry no token


@dataclass
class InboxResult:
    """Every message seen, in order, with the verdict per recipient; totals and warnings."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    totals: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)  # one line each: not read, not acted on
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"messages": self.messages, "totals": {k: self.totals[k] for k in TOTALS}}


def source_of(ws: Workspace, spec: str) -> tuple[str, Campaign | None]:
    """SOURCE as given, or the `inbox.source` of the campaign file SOURCE names."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        campaign = campaign_file.load(path)
        if campaign.inbox.source is None:
            raise KzmailError(f"{path}: the campaign has no inbox.source")
        return campaign.inbox.source, campaign
    return spec, None


class _Runner:
    """One run over one source, with one journal connection."""

    def __init__(self, ws: Workspace, options: Options, campaign: Campaign | None) -> None:
        self._options = options
        self._campaign = campaign
        self._lists = _lists_by_run(ws, campaign)
        self._journal = Journal(ws.state, ws.clock)
        self._signer: TokenSigner = load_signer(ws.state)
        limit = options.soft_limit or (campaign.inbox.soft_limit if campaign else 3)
        self._soft_limit = limit
        self.result = InboxResult(dry_run=options.dry_run)
        self._policy_by_domain: Counter[str] = Counter()
        self._soft_seen: set[tuple[str, str]] = set()  # this run's, for --dry-run counts

    def close(self) -> None:
        try:
            self._journal.rollback_inbox()  # the empty batch `_commit` opened last
        finally:
            self._journal.close()

    def run(self, source: Source) -> None:
        """Every message; state committed (and synced) per batch, and only then flagged."""
        done: list[Item] = []
        self._journal.begin_inbox()
        try:
            for item in source.items():
                if self._one(item) and not self._options.dry_run:
                    done.append(item)
                if len(done) >= BATCH:
                    self._commit(source, done)
            self._commit(source, done)
        except BaseException:
            self._journal.rollback_inbox()
            raise
        self._warn()

    def _commit(self, source: Source, done: list[Item]) -> None:
        if self._options.dry_run:
            self._journal.rollback_inbox()
        else:
            self._journal.commit_inbox()
        for item in done:
            source.handled(item, self._options.move_to)
        done.clear()
        self._journal.begin_inbox()

    def _one(self, item: Item) -> bool:
        """Handle one message; True if it is done with (remembered, flagged)."""
        totals = self.result.totals
        totals["messages"] += 1
        reading = Malformed(item.problem) if item.data is None else read(item.data)
        if isinstance(reading, Malformed):
            totals["malformed"] += 1
            self.result.problems.append(f"{item.where}: {reading.reason}")
            self.result.messages.append({"id": item.id, "kind": "malformed", "recipients": []})
            return False
        before = self._journal.handled_as(reading.key)
        if before == "unmatched" and self._options.any_address:
            self.result.problems.append(
                f"{item.where}: an earlier run left this {reading.kind} unmatched; "
                "acting on it now (--any-address)"
            )
        elif before is not None:
            totals["repeated"] += 1
            totals["unmatched_before"] += before == "unmatched"
            return True  # flagged again: a run cut off after its commit left it unflagged
        entry: dict[str, Any] = {"id": item.id, "kind": reading.kind, "recipients": []}
        done = self._act(item, reading, entry["recipients"])
        entry["kind"] = reading.kind
        totals[reading.kind] += 1
        self.result.messages.append(entry)
        if done is not None and not self._options.dry_run:
            self._journal.remember(reading.key, done)
        return done is not None

    def _act(self, item: Item, reading: Reading, out: list[dict[str, Any]]) -> str | None:
        """What to remember the message as (its kind, or `unmatched`); None: not handled,
        so a later run tries again (a complaint or reply whose list is not known yet)."""
        if reading.kind == "reply":
            return reading.kind if self._reply(item, reading, out) else None
        if reading.kind not in ("bounce", "complaint"):
            return reading.kind
        matched = self._match(reading)
        if not reading.failures:
            self.result.problems.append(f"{item.where}: a {reading.kind} naming no recipient")
            return reading.kind if matched is not None else "unmatched"
        states = {self._failure(item, reading, f, matched, out) for f in reading.failures}
        if False in states:
            return None
        return "unmatched" if None in states else reading.kind

    def _match(self, reading: Reading) -> tuple[str, str] | None:
        """The delivery a bounce returns: by the returned Message-ID, else by VERP."""
        if reading.returned_id is not None:
            found = self._journal.delivery_by_message_id(reading.returned_id)
            if found is not None:
                return found
        local = self._signer.verp_message_local(reading.verp) if reading.verp else None
        return None if local is None else self._journal.delivery_by_message_local(local)

    def _failure(
        self,
        item: Item,
        reading: Reading,
        failure: Failure,
        matched: tuple[str, str] | None,
        out: list[dict[str, Any]],
    ) -> bool | None:
        """True: acted on; None: matches no delivery (not acted on); False: not handled."""
        run, address = matched if matched else (None, failure.address)
        if len(reading.failures) > 1 and matched and matched[1] != failure.address:
            run, address = None, failure.address  # another recipient named in the same report
        verdict = failure.verdict
        row: dict[str, Any] = {
            "address": address,
            "suppress": False,
            "status": failure.status or None,
            "reason": verdict.reason,
            "campaign": run,
        }
        out.append(row)
        if run is None and not self._options.any_address:
            self.result.totals["unmatched"] += 1
            self.result.problems.append(
                f"{item.where}: {reading.kind} for {address} matches no kzmail delivery "
                "(use --any-address to act on it)"
            )
            return None
        if reading.kind == "complaint":
            row["suppress"] = self._complain(item, run, address)
            return True
        if verdict.kind == "delayed":
            self.result.totals["delayed"] += 1
            return True
        if run is not None and not self._options.dry_run:
            detail = f"bounced ({verdict.kind}): {failure.status} {failure.diagnostic}".strip()
            self._journal.mark_bounced(run, address, failure.code, detail[:500])
        if verdict.kind == "policy":
            self.result.totals["policy_blocked"] += 1
            self._policy_by_domain[address.rpartition("@")[2]] += 1
            return True
        if verdict.kind == "soft":
            row["suppress"] = self._soft(address, run or "(no campaign)", failure)
            if row["suppress"]:
                row["reason"] = f"{verdict.reason}; soft bounces in {self._soft_limit} campaigns"
            return True
        row["suppress"] = True
        reason = f"bounced: {failure.status} {verdict.reason}: {failure.diagnostic}"
        self._suppress(ANY_LIST, address, " ".join(reason.split())[:500])
        return True

    def _soft(self, address: str, run: str, failure: Failure) -> bool:
        self.result.totals["soft_counted"] += 1
        if self._options.dry_run:
            self._soft_seen.add((address, run))
            mine = sum(1 for a, _ in self._soft_seen if a == address)
            count = self._journal.soft_count(address) + mine
        else:
            count = self._journal.count_soft(address, run, failure.status, failure.verdict.reason)
        if count < self._soft_limit:
            return False
        self._suppress(ANY_LIST, address, f"bounced: soft bounces in {count} campaigns")
        return True

    def _complain(self, item: Item, run: str | None, address: str) -> bool:
        """Suppress on the list of the campaign complained about: as the journal recorded it
        when sending, else its campaign file's, else `--campaign`'s."""
        list_id = (self._journal.list_of_run(run) if run else None) or self._lists.get(run or "")
        list_id = list_id or (self._campaign.list_id if self._campaign else None)
        if list_id is None:
            self.result.problems.append(
                f"{item.where}: complaint for {address}: no campaign file names its list "
                "(give --campaign)"
            )
            return False
        self._suppress(list_id, address, "complaint: feedback loop report")
        return True

    def _reply(self, item: Item, reading: Reading, out: list[dict[str, Any]]) -> bool:
        message = reading.message
        if message is None:
            return True
        automatic = auto_reason(message)
        if automatic is not None:  # the hardening rules: bounce-like or bulk mail never asks
            reading.kind = "auto-reply"
            return True
        asks = self._options.replies_unsubscribe or asks_to_unsubscribe(message, self._signer)
        if not asks:
            reading.kind = "other"
            return True
        reading.kind = "unsubscribe"
        found = verify_reply(item.where, message, self._options.trust, self._signer)
        if isinstance(found, Problem):
            self.result.problems.append(str(found).replace(":0: ", ": "))
            return True
        address = found.address if isinstance(found, Unverified) else found.lower()
        row: dict[str, Any] = {
            "address": address,
            "suppress": False,
            "status": None,
            "reason": "not verified (no token, no aligned DKIM/SPF pass)",
            "campaign": None,
        }
        out.append(row)
        if isinstance(found, Unverified):
            self.result.totals["unverified"] += 1
            return True
        token = token_of(message, self._signer)
        list_id = token[0] if token and token[1].lower() == address else None
        list_id = list_id or self._options.reply_list
        list_id = list_id or (self._campaign.list_id if self._campaign else None)
        if list_id is None:
            row["reason"] = "unsubscribe reply: give --campaign to name the list"
            return False
        mine = self._campaign is not None and self._campaign.list_id == list_id
        row.update(
            suppress=True,
            reason=f"unsubscribe reply ({list_id})",
            campaign=run_key(self._campaign) if mine and self._campaign else None,
        )
        self._suppress(list_id, address, f"unsubscribe: reply ({item.id})")
        return True

    def _suppress(self, list_id: str, address: str, reason: str) -> None:
        self.result.totals["suppressed"] += 1
        if not self._options.dry_run:
            self._journal.suppress_in_batch(list_id, address, reason)

    def _warn(self) -> None:
        bounces = self.result.totals["bounce"]
        for domain, count in self._policy_by_domain.most_common():
            share = count / max(bounces, 1)
            if share >= WARN_SHARE:
                self.result.warnings.append(
                    f"{share:.0%} of bounces this run say your mail looks like spam or "
                    f"breaks a policy at {domain} ({count}): fix the sending side "
                    "(SPF, DKIM, DMARC, content, reputation); nobody was suppressed for it"
                )


def _lists_by_run(ws: Workspace, campaign: Campaign | None) -> dict[str, str]:
    """Run key -> list id, from the campaign given and those in `campaigns/`."""
    found: dict[str, str] = {}
    if campaign is not None:
        found[run_key(campaign)] = campaign.list_id
    folder = ws.campaigns
    if folder.is_dir():
        for path in sorted(folder.glob("*.y*ml")):
            try:
                other = campaign_file.load(path)
            except KzmailError:
                continue  # a broken campaign file does not stop the inbox
            found.setdefault(run_key(other), other.list_id)
    return found


def inbox(ws: Workspace, options: Options) -> InboxResult:
    """Read the source once and act on it (see the module)."""
    spec, from_file = source_of(ws, options.source)
    campaign = from_file
    if options.campaign is not None:
        campaign = campaign_file.load(options.campaign)
    password = options.password
    if not password and campaign is not None and campaign.inbox.password_env:
        password = ws.environ.get(campaign.inbox.password_env, "")
    source = open_source(spec, password, options.cafile, options.move_to)
    runner = _Runner(ws, options, campaign)
    try:
        runner.run(source)
    finally:
        runner.close()
        source.close()
    return runner.result
