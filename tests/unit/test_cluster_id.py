"""The KRaft cluster id of deploy/local/kafka.sh never reads as an option to `kafka-storage format`."""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

LOCAL = Path(__file__).resolve().parents[2] / "deploy" / "local"
KAFKA_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{21}$")  # 16 bytes, URL-safe base64, no padding


def cluster_id_module() -> ModuleType:
    """deploy/local/cluster_id.py, loaded by path: deploy/ is not an installed package."""
    spec = importlib.util.spec_from_file_location("engage_cluster_id", LOCAL / "cluster_id.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_thousands_of_ids_none_usable_as_an_option() -> None:
    draw = cluster_id_module().cluster_id
    ids = [draw() for _ in range(20_000)]
    assert all(KAFKA_ID.match(i) for i in ids), [i for i in ids if not KAFKA_ID.match(i)][:5]
    assert not any(i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)
    # '-' and '_' still appear inside ids: the rule only redraws a leading '-'
    assert any("-" in i for i in ids)


def test_the_old_rule_would_have_failed_about_once_in_64() -> None:
    old = [base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=") for _ in range(20_000)]
    assert 100 < sum(i.startswith("-") for i in old) < 600  # ~312 expected


def test_an_id_that_would_start_with_a_dash_is_drawn_again() -> None:
    module = cluster_id_module()
    draws = iter([b"\xf8" + bytes(15), b"\x01" * 16])  # the first encodes as '-...'
    assert module.encode(b"\xf8" + bytes(15)).startswith("-")
    got = module.cluster_id(lambda n: next(draws))
    assert not got.startswith("-")
    raw = base64.urlsafe_b64decode(got + "==")
    assert len(raw) == 16 and raw[6] >> 4 == 4 and raw[8] >> 6 == 0b10  # a version-4 UUID, as Kafka draws


def test_kafka_sh_formats_with_the_safe_id_as_one_argument() -> None:
    script = (LOCAL / "kafka.sh").read_text()
    assert 'python3 "$HERE/cluster_id.py"' in script
    assert '--cluster-id="$id"' in script  # `--opt=value` even reads an id starting with '-' as a value
    out = subprocess.run([sys.executable, str(LOCAL / "cluster_id.py")], capture_output=True, text=True, check=True)
    assert KAFKA_ID.match(out.stdout.strip())
