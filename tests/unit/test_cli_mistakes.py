"""Every CLI mistake a person can make reads as one line on stderr, with exit 2 (usage) or 1 (failure)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streams.cli import main
from streams.tools.simulate import write_simulation

ENGAGE = [sys.executable, "-m", "streams.cli"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def fake_kafka() -> Iterator[socket.socket]:
    """A listening socket standing where Kafka would be: a command that connects shows up in accept()."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        s.setblocking(False)
        yield s


def connected(listener: socket.socket) -> bool:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own exit
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    return code, err.strip()


@pytest.fixture
def simulated(tmp_path: Path) -> tuple[Path, Path]:
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    write_simulation(
        events, labels, seed=3, communities=1, members_per_community=40, days=1.0, spam_profiles_per_community=1
    )
    return events, labels


def test_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = one_line_error(capsys, [])
    assert code == 2 and "required: COMMAND" in err and "engage --help" in err


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = one_line_error(capsys, ["serve"])
    assert code == 2 and "invalid choice: 'serve'" in err


def test_unknown_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = one_line_error(capsys, ["run", "--demo-rate", "5"])
    assert code == 2 and "unrecognized arguments: --demo-rate 5" in err


def test_missing_argument(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = one_line_error(capsys, ["query"])
    assert code == 2 and err.startswith("engage query:") and "sql" in err


def test_a_value_of_the_wrong_type(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = one_line_error(capsys, ["run", "--kafka-port", "nine"])
    assert code == 2 and "--kafka-port: invalid int value: 'nine'" in err


def test_an_engage_variable_that_does_not_parse(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGAGE_GATEWAY_PORT", "eighty")
    code, err = one_line_error(capsys, ["topics"])
    assert code == 2 and "ENGAGE_GATEWAY_PORT='eighty' is not a valid int" in err


def test_eval_spam_with_a_missing_labels_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = one_line_error(capsys, ["eval-spam", str(tmp_path / "missing.json"), "--data-dir", str(tmp_path)])
    assert code == 2 and "no such labels file" in err and "engage simulate --labels" in err


def test_eval_spam_with_a_labels_file_that_is_not_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "labels.jsonl"
    bad.write_text('{"community_id": "c", "member_id": "m"}\nnot json\n')
    code, err = one_line_error(capsys, ["eval-spam", str(bad), "--data-dir", str(tmp_path)])
    assert code == 2 and "line 2 is not JSON" in err


def test_simulate_into_a_directory_that_does_not_exist(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "nonexistent" / "dir" / "x.jsonl"
    code, err = one_line_error(capsys, ["simulate", "--events", str(target), "--labels", str(tmp_path / "l.jsonl")])
    assert code == 2 and f"directory {target.parent} does not exist (for --events" in err
    assert not (tmp_path / "l.jsonl").exists()  # checked before anything is written


def test_simulate_onto_a_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = one_line_error(capsys, ["simulate", "--events", str(tmp_path), "--labels", str(tmp_path / "l.jsonl")])
    assert code == 2 and "is a directory" in err


def test_replay_a_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = one_line_error(capsys, ["replay", str(tmp_path / "nope.jsonl")])
    assert code == 2 and "no such events file" in err


def test_replay_validates_the_whole_file_before_connecting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, simulated: tuple[Path, Path], fake_kafka: socket.socket
) -> None:
    events, _ = simulated
    lines = events.read_bytes().splitlines()
    lines[5] = orjson.dumps({**orjson.loads(lines[5]), "type": "poke"})
    lines[9] = b"{not json"
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join(lines) + b"\n")
    port = str(fake_kafka.getsockname()[1])
    code, err = one_line_error(capsys, ["replay", str(bad), "--bootstrap", f"127.0.0.1:{port}"])
    assert code == 2 and "line 6: type:" in err and "(and 1 more invalid line(s)); nothing was sent" in err
    assert "--dry-run" in err
    assert not connected(fake_kafka)


def test_replay_dry_run_needs_no_kafka(
    capsys: pytest.CaptureFixture[str], simulated: tuple[Path, Path], fake_kafka: socket.socket
) -> None:
    events, _ = simulated
    n = sum(1 for line in events.read_bytes().splitlines() if line.strip())
    port = str(fake_kafka.getsockname()[1])
    assert main(["replay", "--dry-run", str(events), "--bootstrap", f"127.0.0.1:{port}"]) == 0
    out = capsys.readouterr()
    assert out.out.strip().endswith(f"{n} valid events, 0 invalid line(s); nothing sent (--dry-run)")
    assert not connected(fake_kafka)


def test_replay_with_no_broker_says_so_at_once(
    capsys: pytest.CaptureFixture[str], simulated: tuple[Path, Path]
) -> None:
    events, _ = simulated
    started = time.monotonic()
    code, err = one_line_error(capsys, ["replay", str(events), "--kafka-port", str(closed_port())])
    assert code == 1 and "cannot reach Kafka at 127.0.0.1:" in err and "nothing was sent" in err
    assert time.monotonic() - started < 10


def test_query_where_there_is_no_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = one_line_error(capsys, ["query", "SELECT 1", "--data-dir", str(tmp_path / "fresh")])
    assert code == 1 and "there is no ClickHouse store at" in err and "engage run" in err
    assert not (tmp_path / "fresh").exists()  # looking did not create one


def test_query_on_an_empty_store_gives_a_hint(tmp_path: Path) -> None:
    # its own process: an embedded store is opened once per process
    (tmp_path / "clickhouse").mkdir()
    sql = "SELECT count() FROM engagement.events"
    r = subprocess.run([*ENGAGE, "query", sql, "--data-dir", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "has no `engagement` database yet" in r.stderr and "engage migrate" in r.stderr


def test_version_and_debug(tmp_path: Path) -> None:
    r = subprocess.run([*ENGAGE, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("engage ") and r.stdout.strip() != "engage"
    missing = str(tmp_path / "missing.json")
    r = subprocess.run([*ENGAGE, "--debug", "eval-spam", missing], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" in r.stderr  # --debug: the whole story
    r = subprocess.run([*ENGAGE, "eval-spam", missing], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
