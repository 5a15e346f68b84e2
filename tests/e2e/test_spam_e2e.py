"""Spam flags end to end: a simulated community with planted spam goes through the real
pipeline, `engage eval-spam` meets its targets on the flags in ClickHouse, flagged members
stay out of tiers and counts, and a moderator's decision travels through Kafka."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from streams.config import Settings
from streams.embedded_sql import query
from streams.tools.commands import chunks, eval_spam_command, post_events
from streams.tools.simulate import simulate

from .helpers import api_token, auth, new_token, rows, scalar, wait_for

pytestmark = pytest.mark.usefixtures("stack")
SEED = 4711


@pytest.fixture(scope="module")
def simulated(e2e_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path]:
    events, labels = simulate(
        seed=SEED,
        communities=2,
        members_per_community=600,
        days=7,
        start=datetime(2026, 7, 6, tzinfo=UTC),
        spam_profiles_per_community=24,
        history_days=30,
    )
    evs = list(events)
    labels_path = Path(tmp_path_factory.mktemp("spam")) / "labels.jsonl"
    labels_path.write_bytes(b"\n".join(orjson.dumps(lab) for lab in labels))
    communities = sorted({e["community_id"] for e in evs})
    for batch in chunks(evs, 1000):
        post_events(e2e_settings.gateway_url, batch, api_token(e2e_settings))
    where = "community_id IN (" + ",".join(f"'{c}'" for c in communities) + ")"
    wait_for(
        lambda: scalar(e2e_settings, f"SELECT uniqExact(event_id) FROM engagement.events WHERE {where}") == len(evs),
        180,
        "the simulated communities",
    )
    time.sleep(1.5)  # the batch's member and flag rows are stored in the same flush; let the last one land
    return communities, labels_path


def test_eval_spam_meets_targets(
    e2e_settings: Settings, simulated: tuple[list[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, labels = simulated
    code = eval_spam_command(e2e_settings, str(labels), check=True)
    out = capsys.readouterr().out
    print(out)
    assert "targets:" in out and code == 0, out


def test_flagged_members_are_out_of_tiers_and_counts(e2e_settings: Settings, simulated: tuple[list[str], Path]) -> None:
    communities, _ = simulated
    for cid in communities:
        flagged = scalar(
            e2e_settings,
            f"SELECT count() FROM engagement.member_state FINAL WHERE community_id = '{cid}' "
            "AND spam_status IN ('flagged', 'confirmed')",
        )
        assert flagged > 0
        eligible = scalar(
            e2e_settings,
            f"SELECT count() FROM engagement.member_state FINAL WHERE community_id = '{cid}' "
            "AND actor_role = 'member' AND spam_status IN ('none', 'cleared')",
        )
        latest = rows(
            e2e_settings,
            "SELECT members, lurkers + curators + creators + ambassadors AS tiered, flagged_members "
            f"FROM engagement.community_state FINAL WHERE community_id = '{cid}' ORDER BY as_of DESC, version DESC "
            "LIMIT 1",
        )[0]
        assert latest["members"] == eligible == latest["tiered"]
        assert latest["flagged_members"] >= flagged
        flagged_ambassadors = scalar(
            e2e_settings,
            f"SELECT count() FROM engagement.member_state FINAL WHERE community_id = '{cid}' "
            "AND spam_status IN ('flagged', 'confirmed') AND tier = 'ambassador'",
        )
        assert flagged_ambassadors == 0


def test_moderation_clear_and_confirm_go_through_kafka(
    e2e_settings: Settings, simulated: tuple[list[str], Path]
) -> None:
    communities, _ = simulated
    cid = communities[0]
    flagged = rows(
        e2e_settings,
        "SELECT member_id FROM engagement.member_state FINAL "
        f"WHERE community_id = '{cid}' AND spam_status = 'flagged' ORDER BY member_id LIMIT 2",
    )
    assert len(flagged) == 2
    to_clear, to_confirm = flagged[0]["member_id"], flagged[1]["member_id"]
    members_before = _members(e2e_settings, cid)
    decided = datetime.now(UTC).isoformat()
    # who decided is the token's name: the gateway records it, the request does not say it
    moderator = new_token(e2e_settings, "mod-ana", ["moderation:write"], communities=[cid])
    for member, action in ((to_clear, "clear"), (to_confirm, "confirm")):
        r = httpx.post(
            f"{e2e_settings.gateway_url}/v1/moderation",
            json={
                "community_id": cid,
                "member_id": member,
                "action": action,
                "reason": f"e2e {uuid.uuid4().hex[:6]}",
                "decided_at": decided,
            },
            headers=auth(e2e_settings, moderator),
            timeout=10,
        )
        assert r.status_code == 202, r.text
    status = f"SELECT spam_status FROM engagement.member_state FINAL WHERE community_id = '{cid}' AND member_id = "
    wait_for(lambda: query(e2e_settings, status + f"'{to_clear}'", "TSV").strip() == b"cleared", 60, "the clear")
    wait_for(lambda: query(e2e_settings, status + f"'{to_confirm}'", "TSV").strip() == b"confirmed", 60, "confirm")
    # A decision's rows go to several tables one write after another (member_state first): the
    # flag and the decision itself may land a moment after the status the waits above saw.
    flag_sql = (
        "SELECT status, decided_by FROM engagement.spam_flags FINAL "
        f"WHERE community_id = '{cid}' AND member_id = '{to_clear}' ORDER BY version DESC LIMIT 1"
    )
    wait_for(lambda: rows(e2e_settings, flag_sql) == [{"status": "cleared", "decided_by": "mod-ana"}], 30, "the flag")
    decisions = f"SELECT count() FROM engagement.moderation FINAL WHERE community_id = '{cid}'"
    wait_for(lambda: scalar(e2e_settings, decisions) >= 2, 30, "both decisions stored")
    # the cleared member is back in the community's numbers
    wait_for(lambda: _members(e2e_settings, cid) == members_before + 1, 30, "the cleared member counted")
    r = httpx.post(
        f"{e2e_settings.gateway_url}/v1/moderation", json={"community_id": cid}, headers=auth(e2e_settings), timeout=10
    )
    assert r.status_code == 422 and {e["path"] for e in r.json()["errors"]} >= {"member_id", "action"}


def _members(settings: Settings, cid: str) -> int:
    return int(
        rows(
            settings,
            f"SELECT members FROM engagement.community_state FINAL WHERE community_id = '{cid}' "
            "ORDER BY as_of DESC, version DESC LIMIT 1",
        )[0]["members"]
    )
