"""`POST /v1/erasures` needs a token with scope erasure:write; who asked is the token's name."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer

from streams.api_tokens import ERASURE_WRITE, EVENTS_WRITE, create_token
from streams.config import Settings
from streams.gateway.app import build_app


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send_to_every_partition(self, topic: str, key: bytes, value: bytes) -> int:
        self.sent.append((topic, key, value))
        return 8

    async def close(self) -> None:
        return None


async def ready() -> tuple[bool, str]:
    return True, "ok"


BODY = {"community_id": "forum.example.com", "member_id": "p_0123", "reason": "GDPR"}


def post(settings: Settings, producer: Producer, body: dict[str, Any], token: str | None) -> tuple[int, Any]:
    async def go() -> tuple[int, Any]:
        client = TestClient(TestServer(build_app(settings, producer, ready)))  # type: ignore[arg-type]
        await client.start_server()
        try:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            resp = await client.post("/v1/erasures", data=orjson.dumps(body), headers=headers)
            return resp.status, orjson.loads(await resp.read())
        finally:
            await client.close()

    return asyncio.run(go())


def test_no_token_or_the_wrong_scope_is_refused_and_nothing_is_sent(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    writer = create_token(settings.tokens_path, "feeder", [EVENTS_WRITE])
    producer = Producer()
    assert post(settings, producer, BODY, None)[0] == 401
    assert post(settings, producer, BODY, writer)[0] == 403
    assert producer.sent == []


def test_an_erasure_is_filed_without_the_member_id_under_the_token_name(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    dpo = create_token(settings.tokens_path, "dpo", [ERASURE_WRITE])
    producer = Producer()
    status, answer = post(settings, producer, BODY, dpo)
    assert status == 202 and answer["member_key"]
    [(topic, key, value)] = producer.sent
    assert topic == "engagement.erasures" and b"p_0123" not in key + value
    assert orjson.loads(value)["requested_by"] == "dpo"
    status, answer = post(settings, producer, {**BODY, "requested_by": "someone-else"}, dpo)
    assert status == 422 and answer["errors"][0]["path"] == "requested_by"
    status, answer = post(settings, producer, {**BODY, "member_id": ""}, dpo)
    assert status == 422 and "member_id" in orjson.dumps(answer).decode()
    assert len(producer.sent) == 1


def test_a_community_token_forgets_only_there(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    acme = create_token(settings.tokens_path, "acme-dpo", [ERASURE_WRITE], communities=["acme"])
    producer = Producer()
    assert post(settings, producer, BODY, acme)[0] == 403
    assert post(settings, producer, {**BODY, "community_id": "acme"}, acme)[0] == 202
