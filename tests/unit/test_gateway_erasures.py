"""`POST /v1/erasures` is admin-only until tokens exist: refused from anywhere but the gateway's host."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import Mock

import orjson
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from streams.config import Settings
from streams.gateway.app import Gateway


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send_to_every_partition(self, topic: str, key: bytes, value: bytes) -> int:
        self.sent.append((topic, key, value))
        return 8


async def ready() -> tuple[bool, str]:
    return True, "ok"


def request(peer: str, body: dict[str, Any]) -> web.Request:
    transport = Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (peer, 5555) if name == "peername" else default
    req = make_mocked_request("POST", "/v1/erasures", transport=transport)
    data = orjson.dumps(body)

    async def read() -> bytes:
        return data

    req.read = read  # type: ignore[method-assign]
    return req


BODY = {"community_id": "forum.example.com", "member_id": "p_0123", "reason": "GDPR", "requested_by": "dpo"}


def test_a_remote_caller_is_refused_and_nothing_is_sent() -> None:
    producer = Producer()
    gw = Gateway(Settings(), producer, ready)  # type: ignore[arg-type]
    resp = asyncio.run(gw.post_erasures(request("10.1.2.3", BODY)))
    assert resp.status == 403 and producer.sent == []


def test_a_local_caller_files_an_erasure_without_the_member_id() -> None:
    producer = Producer()
    gw = Gateway(Settings(), producer, ready)  # type: ignore[arg-type]
    resp = asyncio.run(gw.post_erasures(request("127.0.0.1", BODY)))
    assert resp.status == 202
    [(topic, key, value)] = producer.sent
    assert topic == "engagement.erasures" and b"p_0123" not in key + value
    bad = asyncio.run(gw.post_erasures(request("127.0.0.1", {**BODY, "member_id": ""})))
    assert bad.status == 422 and b"member_id" in bad.body  # type: ignore[operator]
