"""Per-community state of one worker: a scorer and a spam detector per community.

Pure: no Faust, no Kafka, no ClickHouse. The worker feeds it batches in log
order (with each event's Kafka partition and offset) and moderation decisions,
and gets back the rows and records to store and publish. Snapshots are bytes.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import orjson

from schemas.outputs import ModerationDecision
from streams.event_record import JOIN_SOURCE_NAMES, ROLE_NAMES, EventRecord
from streams.forgotten import ForgottenMembers
from streams.scoring import TIER_NAMES, CommunityRow, CommunityScorer, MemberRow, ScoringConfig, TierChangeRecord
from streams.scoring.records import MemberColumns
from streams.spam.config import SpamConfig
from streams.spam.detector import SpamDetector
from streams.spam.flags import STATUSES, FlagRecord

SNAPSHOT_VERSION = 1


@dataclass
class Community:
    scorer: CommunityScorer
    spam: SpamDetector
    partition: int
    last_offset: int = -1  # newest offset of the events topic applied to this state
    dirty: bool = False
    # erasures this state was rebuilt without: "community|member_key" -> erased_at (streams/worker/erasures.py)
    erasures: dict[str, float] = field(default_factory=dict)
    # ids of the moderation decisions applied: a copy met again in the log is ignored
    decisions: set[str] = field(default_factory=set)


@dataclass
class Outputs:
    """What one batch (or decision) changed."""

    # the rows of the members whose state changed, a block per community and step, in the
    # order they were produced (a member in two blocks: the later one is current)
    members: list[MemberColumns] = field(default_factory=list)
    community_rows: list[CommunityRow] = field(default_factory=list)
    tier_changes: list[TierChangeRecord] = field(default_factory=list)
    flags: list[FlagRecord] = field(default_factory=list)
    scored: int = 0
    duplicates: int = 0
    late: int = 0
    skipped: int = 0  # events at or before a community's last applied offset (already in state)

    def member_rows(self) -> dict[tuple[str, str], tuple[MemberRow, str]]:
        """(community, member) -> (row, spam status), the current row of each (not the hot path)."""
        out: dict[tuple[str, str], tuple[MemberRow, str]] = {}
        for block in self.members:
            for row, status in zip(member_rows_of(block), block.spam_status.tolist(), strict=True):
                out[(row.community_id, row.member_id)] = (row, STATUSES[status])
        return out

    def member_row_count(self) -> int:
        return sum(map(len, self.members))


def member_block(c: Community, members: Iterable[str], rows: dict[str, int] | None = None) -> MemberColumns:
    """The rows of `members` of one community as columns, with each member's spam status
    (`rows`: row indexes the scorer already resolved, `BatchOutcome.touched_rows`)."""
    block = c.scorer.member_columns(members, rows)
    block.spam_status = c.spam.status_codes(block.member_ids)
    return block


def member_rows_of(block: MemberColumns) -> list[MemberRow]:
    """A block's rows one by one (for tests and tools; the worker stores the columns)."""
    return [
        MemberRow(block.community_id, mid, TIER_NAMES[tier], creation, curation, received, block.as_of, first,
                  last, counted, JOIN_SOURCE_NAMES[source], ROLE_NAMES[role], bool(excluded))
        for mid, tier, creation, curation, received, first, last, counted, source, role, excluded in zip(
            block.member_ids, block.tier.tolist(), block.creation.tolist(), block.curation.tolist(),
            block.received.tolist(), block.first_seen.tolist(), block.last_active.tolist(),
            block.events_counted.tolist(), block.join_source.tolist(), block.actor_role.tolist(),
            block.excluded.tolist(), strict=True,
        )
    ]


def compress_snapshot(raw: bytes) -> bytes:
    """What a snapshot is stored as (zlib releases the GIL: it may run beside a batch)."""
    return zlib.compress(raw, 1)


class StateRegistry:
    def __init__(self, scoring: ScoringConfig, spam: SpamConfig) -> None:
        self.scoring = scoring
        self.spam_config = spam
        self.communities: dict[str, Community] = {}
        self.forgotten = ForgottenMembers()  # screens every event before state and storage

    def community(self, community_id: str, partition: int) -> Community:
        c = self.communities.get(community_id)
        if c is None:
            c = Community(
                CommunityScorer(community_id, self.scoring),
                SpamDetector(community_id, self.spam_config),
                partition,
            )
            self.communities[community_id] = c
        return c

    def apply(self, records: Sequence[tuple[EventRecord, int, int]], *, outputs: bool = True) -> Outputs:
        """Apply events (record, partition, offset) in log order."""
        return self.apply_columns(
            [r for r, _, _ in records], [p for _, p, _ in records], [o for _, _, o in records], outputs=outputs
        )

    def apply_columns(
        self,
        records: Sequence[EventRecord],
        partitions: Sequence[int],
        offsets: Sequence[int],
        *,
        outputs: bool = True,
    ) -> Outputs:
        """Apply events in log order, given column by column (each event's partition and offset)."""
        out = Outputs()
        groups: dict[str, tuple[list[EventRecord], list[int], int]] = {}
        get = groups.get
        for rec, partition, offset in zip(records, partitions, offsets, strict=True):
            g = get(rec[2])  # community_id
            if g is None:
                g = groups[rec[2]] = ([], [], partition)
            g[0].append(rec)
            g[1].append(offset)
        for cid, (items, item_offsets, partition) in groups.items():
            c = self.community(cid, partition)
            if item_offsets[0] > c.last_offset:
                fresh = items
            else:  # the log tail overlaps the snapshot (recovery): skip what state already holds
                fresh = [rec for rec, offset in zip(items, item_offsets, strict=True) if offset > c.last_offset]
            out.skipped += len(items) - len(fresh)
            if not fresh:
                continue
            c.last_offset = item_offsets[-1]
            c.dirty = True
            outcome = c.scorer.apply(fresh)
            # the spam core sees each event once: duplicates and late events were dropped by the scorer
            flags = c.spam.observe(outcome.accepted)
            out.scored += outcome.scored
            out.duplicates += outcome.duplicates
            out.late += outcome.late
            exclusions = [change for flag in flags for change in c.scorer.set_excluded(flag.member_id, True)]
            if not outputs:  # replaying the log tail into state: nothing to store or publish
                continue
            out.tier_changes.extend(outcome.tier_changes)
            out.tier_changes.extend(exclusions)
            out.flags.extend(flags)
            # one row per event-time minute the batch touched; flags change the open minute's counts
            out.community_rows.extend(outcome.community_rows)
            if flags:
                out.community_rows.append(c.scorer.minute_row())
            self._members(c, outcome.touched | {flag.member_id for flag in flags}, out, outcome.touched_rows)
        return out

    def moderate(self, decision: ModerationDecision, partition: int, key: str | None = None) -> Outputs:
        """Apply a decision once: a second one with the same `key` (its decision id) changes nothing."""
        out = Outputs()
        c = self.community(decision.community_id, partition)
        if key is not None:
            if key in c.decisions:
                out.skipped = 1
                return out
            c.decisions.add(key)
        flag = c.spam.apply_moderation(
            decision.member_id,
            decision.action.value,
            decision.moderator,
            decision.reason,
            decision.decided_at.timestamp(),
        )
        c.dirty = True
        out.tier_changes.extend(
            c.scorer.set_excluded(decision.member_id, c.spam.is_excluded(decision.member_id))
        )
        if flag is not None:
            out.flags.append(flag)
        if math.isfinite(c.scorer.clock):  # the open minute's row, now with the decision
            out.community_rows.append(c.scorer.minute_row())
        with contextlib.suppress(KeyError):  # decided before any event of the member reached the scorer
            self._members(c, [decision.member_id], out)
        return out

    def _members(
        self, c: Community, touched: Iterable[str], out: Outputs, rows: dict[str, int] | None = None
    ) -> None:
        """The member rows of `touched`, with each member's spam status."""
        out.members.append(member_block(c, touched, rows))

    # --- snapshots ---------------------------------------------------------
    def snapshot(self, community_id: str) -> bytes:
        return compress_snapshot(self.snapshot_json(community_id))

    def snapshot_json(self, community_id: str) -> bytes:
        """A community's state as JSON bytes: a copy that later batches cannot change."""
        c = self.communities[community_id]
        doc = {
            "v": SNAPSHOT_VERSION,
            "partition": c.partition,
            "last_offset": c.last_offset,
            "scoring": c.scorer.snapshot(),
            "spam": c.spam.snapshot(),
            "erasures": c.erasures,
            "decisions": sorted(c.decisions),
        }
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)

    def restore(self, community_id: str, blob: bytes) -> Community:
        doc = orjson.loads(zlib.decompress(blob))
        if doc.get("v") != SNAPSHOT_VERSION:
            raise ValueError(
                f"snapshot of {community_id!r} has version {doc.get('v')}, expected {SNAPSHOT_VERSION}"
            )
        c = Community(
            CommunityScorer.restore(community_id, self.scoring, doc["scoring"]),
            SpamDetector.restore(doc["spam"], self.spam_config),
            int(doc["partition"]),
            int(doc["last_offset"]),
            erasures={k: float(v) for k, v in doc.get("erasures", {}).items()},
            decisions=set(doc.get("decisions", ())),
        )
        for key, erased_at in c.erasures.items():
            erased_community, member_key = key.rsplit("|", 1)
            self.forgotten.add(erased_community, member_key, erased_at)
        self.communities[community_id] = c
        return c

    def in_partition(self, partition: int) -> list[str]:
        return [cid for cid, c in self.communities.items() if c.partition == partition]

    def drop_partition(self, partition: int) -> None:
        for cid in self.in_partition(partition):
            del self.communities[cid]

    def tracked_members(self) -> int:
        return sum(c.scorer.members_count for c in self.communities.values())
