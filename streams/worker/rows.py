"""The rows a batch stores: the worker's records shaped into the base tables' columns.

The column lists are sinks/columns.py's (next to the DDL they mirror); this is the streams
side of the boundary, so sinks/ never needs the records' types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from schemas.outputs import ModerationDecision
from sinks.columns import COMMUNITY_STATE_COLUMNS, EVENTS_COLUMNS, MEMBER_STATE_COLUMNS, TIER_CHANGES_COLUMNS
from streams.event_record import JOIN_SOURCE_NAMES, ROLE_NAMES, TYPE_NAMES, EventRecord
from streams.scoring import TIER_NAMES, CommunityRow, MemberRow, TierChangeRecord
from streams.scoring.records import MemberColumns
from streams.scoring.tiers import TIER_CODES
from streams.spam.flags import STATUSES, FlagRecord


def ts(seconds: float) -> float:
    """DateTime64 columns are written as float Unix seconds (see sinks.batch_writer.encode_rows)."""
    return seconds


def moderation_row(decision: ModerationDecision, ingested_at: float) -> list[Any]:
    return [
        decision.decision_id or "",
        decision.community_id,
        decision.member_id,
        decision.action.value,
        decision.moderator,
        decision.reason,
        decision.decided_at.timestamp(),
        ts(ingested_at),
    ]


def event_row(
    rec: EventRecord, source: str, ingested_at: float, partition: int, offset: int, line: int = 0
) -> list[Any]:
    return [
        rec.event_id,
        TYPE_NAMES[rec.type],
        rec.community_id,
        rec.member_id,
        rec.ts,
        source,
        ROLE_NAMES[rec.role],
        rec.target_id,
        rec.target_author_id,
        JOIN_SOURCE_NAMES[rec.join_source],
        rec.fingerprint,
        rec.link_count,
        ingested_at,
        partition,
        offset,
        line,
    ]


def member_state_row(r: MemberRow, spam_status: str, version: int, decay_rate: float) -> list[Any]:
    """`decay_rate` is the scorer's lambda (`ScoringConfig.decay_rate`, ln 2 / half-life, per
    second): the views use it to decay this row's scores from `as_of` to the community clock."""
    return [
        r.community_id,
        r.member_id,
        r.tier,
        r.creation,
        r.curation,
        r.received,
        ts(r.as_of),
        ts(r.first_seen),
        ts(r.last_active),
        r.events_counted,
        r.join_source,
        r.actor_role,
        spam_status,
        version,
        decay_rate,
    ]


def _seq(t: TierChangeRecord) -> int:
    """Identifies the transition, so a re-emitted one (after a restart) collapses."""
    to = TIER_CODES[t.to_tier]
    return TIER_CODES[t.from_tier] * 4 + to if t.from_tier in TIER_CODES else 16 + to


def tier_change_row(t: TierChangeRecord) -> list[Any]:
    seq = _seq(t)
    return [
        t.community_id,
        t.member_id,
        t.from_tier,
        t.to_tier,
        ts(t.at),
        t.creation,
        t.curation,
        t.received,
        seq,
    ]


def community_state_row(r: CommunityRow, version: int) -> list[Any]:
    return [
        r.community_id,
        ts(r.as_of),
        r.members,
        r.lurkers,
        r.curators,
        r.creators,
        r.ambassadors,
        r.active_creators,
        r.top1_creation_share,
        r.top20_creation_share,
        r.flagged_members,
        version,
    ]


def spam_flag_row(f: FlagRecord) -> list[Any]:
    return [
        f.community_id,
        f.member_id,
        ts(f.flagged_at),
        f.score,
        list(f.reasons),
        f.status,
        f.event_id,
        f.decided_by,
        ts(f.decided_at) if f.decided_at is not None else None,
        f.version,
    ]


# --- Arrow: the hot path's tables, column by column ------------------------------------------
# DateTime64 columns take float Unix seconds here too; LowCardinality columns take dictionaries.
_TYPE_DICT = pa.array([TYPE_NAMES[i] for i in range(len(TYPE_NAMES))])
_ROLE_DICT = pa.array([ROLE_NAMES[i] for i in range(len(ROLE_NAMES))])
_JOIN_DICT = pa.array([JOIN_SOURCE_NAMES[i] for i in range(len(JOIN_SOURCE_NAMES))])
_TIER_DICT = pa.array(list(TIER_NAMES))
_STATUS_DICT = pa.array(list(STATUSES))


def _codes(values: Sequence[int], names: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(np.fromiter(values, np.int8, len(values)), names)


def events_arrow(
    records: Sequence[EventRecord],
    sources: Sequence[str],
    ingested_at: float,
    partitions: Sequence[int],
    offsets: Sequence[int],
    lines: Sequence[int],
) -> pa.Table:
    """The `events` rows of a batch; `partitions`/`offsets`/`lines` are each event's log position."""
    n = len(records)
    (event_id, kind, community, member, ts, role, target, target_author, join_source, fp, links) = zip(
        *records, strict=True
    )
    return pa.Table.from_arrays(
        [
            pa.array(event_id, pa.string()),
            _codes(kind, _TYPE_DICT),
            pa.array(community, pa.string()),
            pa.array(member, pa.string()),
            pa.array(ts, pa.float64()),
            pa.array(sources, pa.string()).dictionary_encode(),
            _codes(role, _ROLE_DICT),
            pa.array(target, pa.string()),
            pa.array(target_author, pa.string()),
            _codes(join_source, _JOIN_DICT),
            pa.array(fp, pa.uint64()),
            pa.array(links, pa.uint32()),
            pa.array(np.full(n, ingested_at)),
            pa.array(partitions, pa.uint16()),
            pa.array(offsets, pa.uint64()),
            pa.array(lines, pa.uint32()),
        ],
        names=list(EVENTS_COLUMNS),
    )


def tier_changes_arrow(changes: Sequence[TierChangeRecord]) -> pa.Table:
    """`tier_changes` rows (see `tier_change_row`), column by column."""
    cid, mid, from_tier, to_tier, at, creation, curation, received = zip(*changes, strict=True)
    return pa.Table.from_arrays(
        [
            pa.array(cid, pa.string()),
            pa.array(mid, pa.string()),
            pa.array(from_tier, pa.string()).dictionary_encode(),
            pa.array(to_tier, pa.string()).dictionary_encode(),
            pa.array(at, pa.float64()),
            pa.array(creation, pa.float64()),
            pa.array(curation, pa.float64()),
            pa.array(received, pa.float64()),
            pa.array([_seq(t) for t in changes], pa.uint64()),
        ],
        names=list(TIER_CHANGES_COLUMNS),
    )


def member_state_arrow(blocks: Sequence[MemberColumns], version: int, decay_rate: float) -> pa.Table:
    """`member_state` rows (see `member_state_row`), column by column; row i gets `version + i`."""
    n = sum(map(len, blocks))
    communities = pa.array([b.community_id for b in blocks], pa.string())
    which = np.repeat(np.arange(len(blocks), dtype=np.int32), [len(b) for b in blocks])
    as_of = np.repeat(np.array([b.as_of for b in blocks], np.float64), [len(b) for b in blocks])

    def cat(name: str) -> Any:
        return np.concatenate([getattr(b, name) for b in blocks])

    def codes(name: str, names: pa.Array) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(cat(name).astype(np.int8), names)

    return pa.Table.from_arrays(
        [
            communities.take(pa.array(which)),
            pa.array([mid for b in blocks for mid in b.member_ids], pa.string()),
            codes("tier", _TIER_DICT),
            pa.array(cat("creation")),
            pa.array(cat("curation")),
            pa.array(cat("received")),
            pa.array(as_of),
            pa.array(cat("first_seen")),
            pa.array(cat("last_active")),
            pa.array(cat("events_counted").astype(np.uint64)),
            codes("join_source", _JOIN_DICT),
            codes("actor_role", _ROLE_DICT),
            codes("spam_status", _STATUS_DICT),
            pa.array(np.arange(version, version + n, dtype=np.uint64)),
            pa.array(np.full(n, decay_rate)),
        ],
        names=list(MEMBER_STATE_COLUMNS),
    )


def community_state_arrow(rows: Sequence[CommunityRow], version: int) -> pa.Table:
    """`community_state` rows (see `community_state_row`), column by column; row i gets `version + i`.

    A replay of a quiet community writes about a row an event (one per event-time minute)."""
    (cid, as_of, members, lurkers, curators, creators, ambassadors, active, top1, top20, flagged) = zip(
        *rows, strict=True
    )
    counts = [pa.array(c, pa.uint64()) for c in (members, lurkers, curators, creators, ambassadors, active)]
    return pa.Table.from_arrays(
        [
            pa.array(cid, pa.string()),
            pa.array(as_of, pa.float64()),
            *counts,
            pa.array(top1, pa.float64()),
            pa.array(top20, pa.float64()),
            pa.array(flagged, pa.uint64()),
            pa.array(np.arange(version, version + len(rows), dtype=np.uint64)),
        ],
        names=list(COMMUNITY_STATE_COLUMNS),
    )
