"""Deliver routed appeals into Bitrix24 exactly once, in as few requests as possible.

For the appeals a worker claimed: (1) read them and the outbox; (2) commit *intents* for every
contact, deal and comment still to create; (3) one lookup request: is the person a contact
already, and — where an earlier attempt left an intent unresolved — did it create the thing;
(4) creates in batches of ``batch_appeals`` appeals, contact → deal → comment chained by
``$result[...]`` references; each batch's outcome is committed to the outbox at once. A batch is
never retried blindly: whatever it may have created stays an intent, and the next attempt looks it
up by ``originId`` (or the comment's marker) before creating anything (invariant 2).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.bitrix24 import plan
from hub.bitrix24.batch import MAX_COMMANDS, Batch, BatchResult, Ref
from hub.bitrix24.client import Bitrix24Client
from hub.bitrix24.errors import AmbiguousResult, Bitrix24Error
from hub.bitrix24.lookup import Key, LookupRequest, run_lookups
from hub.db import session_scope
from hub.models import Appeal, AppealState, Job
from hub.storage import crm_links
from hub.storage.crm_links import Claim, Intent
from hub.timeutil import utcnow


@dataclass(frozen=True)
class DeliveryConfig:
    public_url: str
    batch_appeals: int = 12
    kill_point: str = ""  # crash tests: "deliver.appeal:after_batch" dies before the outbox


@dataclass
class Work:
    job: Job
    appeal: Appeal
    who: plan.Identity | None
    entity: str
    deal: Key
    comment: Key
    contact_id: int | None = None
    entity_id: int | None = None
    comment_id: int | None = None
    visible_at: datetime | None = None
    error: str | None = None
    retry: bool = True
    skip: bool = False  # filtered: kept, never delivered

    @property
    def contact(self) -> Key | None:
        return ("contact", self.who.key) if self.who else None

    @property
    def open(self) -> bool:
        return not self.skip and self.error is None and self.comment_id is None

    def pairs(self) -> list[Key]:
        return [k for k in (self.contact, self.deal, self.comment) if k is not None]

    def fail(self, error: str, *, retry: bool = True) -> None:
        if self.error is None:
            self.error, self.retry = error, retry


@dataclass
class Delivery:
    """One handler run over a batch of jobs."""

    client: Bitrix24Client
    engine: Engine
    config: DeliveryConfig
    owner: str
    ids: dict[Key, int] = field(default_factory=dict)
    origins: dict[Key, str] = field(default_factory=dict)
    blocked: dict[Key, str] = field(default_factory=dict)  # failed or uncertain in this run
    claims: dict[Key, crm_links.ClaimResult] = field(default_factory=dict)
    requests: int = 0

    def run(self, jobs: Sequence[Job], read: Callable[[], object]) -> list[Work]:
        works = self._load(jobs, read)
        live = [w for w in works if w.open]
        if live:
            self._claim(live)
            self._lookup([w for w in live if w.open])
            self._create([w for w in live if w.open])
        return works

    # -- 1. read -------------------------------------------------------------------------------
    def _load(self, jobs: Sequence[Job], read: Callable[[], object]) -> list[Work]:
        ids = [int(j.payload.get("appeal_id") or j.appeal_id or 0) for j in jobs]
        with read() as s:  # type: ignore[attr-defined]
            appeals = {
                a.id: a for a in s.execute(select(Appeal).where(Appeal.id.in_(ids))).scalars()
            }
            entities = self._thread_entities(s, list(appeals.values()))
            works = []
            for job, appeal_id in zip(jobs, ids, strict=True):
                appeal = appeals.get(appeal_id)
                if appeal is None:
                    dummy = Appeal(id=appeal_id, channel="?", source="?", kind="?")
                    w = Work(job, dummy, None, "deal", ("deal", ""), ("comment", ""))
                    w.fail(f"appeal {appeal_id} does not exist", retry=False)
                    works.append(w)
                    continue
                entity = entities.get(plan.thread_key(appeal)) or plan.entity_of(appeal)
                works.append(
                    Work(
                        job,
                        appeal,
                        plan.identity(appeal),
                        entity,
                        (entity, plan.thread_key(appeal)),
                        ("comment", plan.comment_key(appeal)),
                        skip=bool(appeal.filtered_reason) or appeal.state == AppealState.filtered,
                    )
                )
            links = crm_links.get_links(s, [k for w in works if not w.skip for k in w.pairs()])
        for pair, link in links.items():
            if link.crm_id != crm_links.PENDING:
                self.ids[pair] = link.crm_id
        for w in works:
            self._absorb(w)
        return works

    @staticmethod
    def _thread_entities(s: Session, appeals: list[Appeal]) -> dict[str, str]:
        """Whether each thread is a deal or a lead: what the CRM already has for it (or an
        intent), else what its earliest appeal here was routed to. A later message of a thread
        may route elsewhere (a customer's reply asks for a price list: a supplier lead), but it
        is a comment in the thread's item, never a second item."""
        live = sorted(
            (a for a in appeals if not a.filtered_reason and a.state != AppealState.filtered),
            key=lambda a: a.id or 0,
        )
        keys = {plan.thread_key(a) for a in live if a.thread_key}
        pairs = [(entity, key) for key in keys for entity in ("deal", "lead")]
        found = sorted(crm_links.get_links(s, pairs).values(), key=lambda link: link.id or 0)
        out: dict[str, str] = {}
        for link in found:
            out.setdefault(link.key, link.kind)
        for a in live:
            out.setdefault(plan.thread_key(a), plan.entity_of(a))
        return out

    def _absorb(self, w: Work) -> None:
        w.contact_id = self.ids.get(w.contact) if w.contact else None
        w.entity_id = self.ids.get(w.deal)
        w.comment_id = self.ids.get(w.comment)
        if w.comment_id is not None and w.visible_at is None:
            w.visible_at = utcnow()

    # -- 2. intents ----------------------------------------------------------------------------
    def _claim(self, works: list[Work]) -> None:
        intents: dict[Key, Intent] = {}
        for w in works:
            for pair in w.pairs():
                if pair not in self.ids and pair not in intents:
                    origin = w.who.key if pair == w.contact and w.who else str(w.appeal.id)
                    intents[pair] = Intent(pair[0], pair[1], origin, w.appeal.id, w.job.id)
        with session_scope(self.engine) as s:
            claims = crm_links.claim_intents(s, intents.values(), owner=self.owner)
        self.claims = claims
        for pair, c in claims.items():
            self.origins[pair] = c.origin_id or intents[pair].origin_id
            if c.state == Claim.resolved and c.crm_id:
                self.ids[pair] = c.crm_id
            elif c.state == Claim.busy:
                self.blocked[pair] = f"{pair[0]} {pair[1]} is being created by another worker"
        for w in works:
            self._absorb(w)
            for pair in w.pairs():
                if pair in self.blocked:
                    w.fail(self.blocked[pair])

    # -- 3. lookups ----------------------------------------------------------------------------
    def _lookup(self, works: list[Work]) -> None:
        req = LookupRequest()
        for w in works:
            c = w.contact
            if c and w.who and c not in self.ids:
                req.contacts[c[1]] = w.who  # every new person: do they exist in the CRM?
            if w.deal not in self.ids and self._doubt(w.deal):
                req.items[w.deal] = self.origins[w.deal]
            if w.comment not in self.ids and self._doubt(w.comment) and w.deal in self.ids:
                req.comments[w.comment] = (w.entity, self.ids[w.deal], w.appeal.id or 0)
        if not (req.contacts or req.items or req.comments):
            return
        out = run_lookups(req, self._send_lookup)
        # A comment whose deal was only just found: look for it too (rare: after a crash).
        late = LookupRequest()
        for w in works:
            if w.deal in out.found and w.comment not in self.ids and self._doubt(w.comment):
                late.comments[w.comment] = (w.entity, out.found[w.deal], w.appeal.id or 0)
        if late.comments:
            more = run_lookups(late, self._send_lookup)
            out.found.update(more.found)
            out.failed.update(more.failed)
        self._record(found=out.found)
        for pair, error in out.failed.items():
            self.blocked[pair] = f"lookup failed: {error}"
        for w in works:
            self._absorb(w)
            for pair in w.pairs():
                if pair in self.blocked and pair not in self.ids:
                    w.fail(self.blocked[pair])

    def _doubt(self, pair: Key) -> bool:
        claim = self.claims.get(pair)
        return claim is not None and claim.state == Claim.doubt

    def _send_lookup(self, batch: Batch) -> BatchResult | str:
        try:
            self.requests += 1
            return self.client.batch(batch)
        except Bitrix24Error as exc:
            return str(exc)

    # -- 4. creates ----------------------------------------------------------------------------
    def _create(self, works: list[Work]) -> None:
        group: list[Work] = []
        size = 0
        for w in works:
            need = self._commands_needed(w)
            if group and (len(group) >= self.config.batch_appeals or size + need > MAX_COMMANDS):
                self._create_group(group)
                group, size = [], 0
            group.append(w)
            size += need
        if group:
            self._create_group(group)

    def _commands_needed(self, w: Work) -> int:
        return sum(1 for pair in w.pairs() if pair not in self.ids) + 1

    def _create_group(self, group: list[Work]) -> None:
        batch = Batch()
        made: dict[Key, str] = {}  # key -> the command creating it in this batch
        uses: dict[str, list[Work]] = {}
        for i, w in enumerate(group):
            if not w.open:
                continue
            blocked = [p for p in w.pairs() if p in self.blocked and p not in self.ids]
            if blocked:
                w.fail(self.blocked[blocked[0]])
                continue
            url = plan.appeal_link(self.config.public_url, w.appeal.id or 0)
            contact = self._ref(made, w.contact)
            if w.contact and w.who and contact is None:
                fields = plan.contact_fields(w.appeal, w.who)
                contact = self._add(
                    batch,
                    made,
                    w.contact,
                    f"c{i}",
                    "crm.item.add",
                    {"entityTypeId": 3, "fields": fields},
                )
            deal = self._ref(made, w.deal)
            if deal is None:
                origin = self.origins.get(w.deal, str(w.appeal.id))
                fields = plan.item_fields(w.appeal, origin_id=origin, contact=contact, link=url)
                deal = self._add(
                    batch,
                    made,
                    w.deal,
                    f"d{i}",
                    "crm.item.add",
                    {"entityTypeId": plan.ENTITY_TYPE_IDS[w.entity], "fields": fields},
                )
            if self._ref(made, w.comment) is None:
                text = plan.comment_text(w.appeal, url)
                fields = {"ENTITY_ID": deal, "ENTITY_TYPE": w.entity, "COMMENT": text}
                self._add(
                    batch, made, w.comment, f"m{i}", "crm.timeline.comment.add", {"fields": fields}
                )
            for pair in w.pairs():
                if pair in made:
                    uses.setdefault(made[pair], []).append(w)
        if not len(batch):
            return
        self.requests += 1
        try:
            result = self.client.batch(batch)
        except Bitrix24Error as exc:
            # Whatever this batch may have created stays an intent: the next attempt looks up.
            for pair in made:
                self.blocked[pair] = f"batch failed: {exc}"
            for w in group:
                if w.open:
                    w.fail(f"batch failed: {exc}", retry=exc.transient)
            return
        returned = utcnow()
        self._maybe_crash()
        found: dict[Key, int] = {}
        released: list[Key] = []
        for pair, cmd in made.items():
            error = result.errors.get(cmd)
            value = result.results.get(cmd)
            if error is None and value is not None:
                found[pair] = int(value["item"]["id"]) if isinstance(value, dict) else int(value)
                continue
            error = error or AmbiguousResult("batch", "", f"no answer for {cmd}")
            self.blocked[pair] = str(error)
            if not isinstance(error, AmbiguousResult):
                released.append(pair)  # refused outright: nothing was created
            for w in uses.get(cmd, []):
                w.fail(str(error), retry=error.transient)
        self._record(found=found, released=released)
        for w in group:
            self._absorb(w)
            if w.comment_id is not None:
                w.visible_at = returned
                w.error = None

    def _ref(self, made: dict[Key, str], pair: Key | None) -> int | Ref | None:
        """The id if the entity exists, a reference if this batch creates it, else None."""
        if pair is None:
            return None
        if pair in self.ids:
            return self.ids[pair]
        cmd = made.get(pair)
        if cmd is None:
            return None
        return Ref(cmd, ("item", "id")) if pair[0] != "comment" else Ref(cmd)

    @staticmethod
    def _add(
        batch: Batch, made: dict[Key, str], pair: Key, cmd: str, method: str, params: dict
    ) -> Ref:
        batch.add(cmd, method, params)
        made[pair] = cmd
        return Ref(cmd, ("item", "id")) if pair[0] != "comment" else Ref(cmd)

    def _record(self, *, found: dict[Key, int], released: Sequence[Key] = ()) -> None:
        """Commit what now exists in the CRM at once, so a crash later cannot forget it."""
        if not found and not released:
            return
        self.ids.update(found)
        with session_scope(self.engine) as s:
            for (kind, key), crm_id in found.items():
                crm_links.resolve(s, kind=kind, key=key, crm_id=crm_id)
            for kind, key in released:
                crm_links.release(s, kind=kind, key=key, owner=self.owner)

    def _maybe_crash(self) -> None:
        if self.config.kill_point == "deliver.appeal:after_batch":
            os.kill(os.getpid(), signal.SIGKILL)  # crash tests: the batch ran, nothing recorded
