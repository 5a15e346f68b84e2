"""Starts every time, stops completely: the README's own commands as a person runs them.

`engage run --no-demo` in a data directory on free ports, as a subprocess; then a
signal (SIGINT, SIGTERM, SIGHUP) to it, or SIGKILL of it, must leave no process and
no listening port within 20 s. A worker whose Kafka was killed first still stops
within 15 s of SIGTERM. A port already taken gives one line and starts nothing.
These tests use their own stacks (not the session's), one at a time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streams.config import Settings
from streams.shutdown import EXIT_ABANDONED
from streams.tools.commands import post_events
from streams.tools.local_stack import free_port, free_port_pair, local_token_path, port_in_use, ready_instance

ENGAGE = str(Path(sys.executable).parent / "engage")
STOP_WITHIN_S = 20.0
WORKER_STOP_WITHIN_S = 15.0


@dataclass
class Ports:
    kafka: int
    gateway: int
    worker: int

    @property
    def all(self) -> list[int]:
        return [self.kafka, self.kafka + 1, self.gateway, self.worker]

    def flags(self) -> list[str]:
        return [
            "--kafka-port", str(self.kafka), "--gateway-port", str(self.gateway), "--worker-port", str(self.worker)
        ]  # fmt: skip



def fresh_ports() -> Ports:
    return Ports(free_port_pair(), free_port(), free_port())


def env_for(ports: Ports) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env["ENGAGE_KAFKA_CONTROLLER_PORT"] = str(ports.kafka + 1)
    env["ENGAGE_FLUSH_SECONDS"] = "0.3"
    return env


def processes_of(data_dir: Path) -> list[int]:
    """Every live process started for `data_dir`: its path is in their environment (whoever their parent is)."""
    marker = f"ENGAGE_DATA_DIR={data_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if "State:\tZ" in (entry / "status").read_text():
                continue  # dead, waiting to be reaped
        except OSError:
            continue
        found.append(int(entry.name))
    return found


def listening(ports: Ports) -> list[int]:
    return [p for p in ports.all if port_in_use("127.0.0.1", p)]


def wait_gone(data_dir: Path, ports: Ports, within_s: float) -> float:
    """Seconds until no process of `data_dir` and no port of `ports` is left; fails past `within_s`."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if not processes_of(data_dir) and not listening(ports):
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(
        f"after {within_s:.0f}s still running: {processes_of(data_dir)}, still listening: {listening(ports)}"
    )


@dataclass
class Run:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    ports: Ports
    stderr: Path

    @property
    def settings(self) -> Settings:
        return Settings.from_env(
            {},
            data_dir=str(self.data_dir),
            kafka_port=self.ports.kafka,
            gateway_port=self.ports.gateway,
            worker_port=self.ports.worker,
        )

    def err(self) -> str:
        return self.stderr.read_text(errors="replace")


def engage_run(data_dir: Path, ports: Ports) -> Run:
    """`engage run --no-demo` as a person starts it (its own process group, like a shell's job)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    stderr = data_dir.parent / f"{data_dir.name}-run-{uuid.uuid4().hex[:6]}.err"
    env = env_for(ports)
    env["ENGAGE_DATA_DIR"] = str(data_dir)  # as well as the flag: so processes_of() sees this process too
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [ENGAGE, "run", "--no-demo", "--data-dir", str(data_dir), *ports.flags()],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Run(proc, data_dir, ports, stderr)


def wait_started(run: Run, timeout_s: float = 240.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if run.proc.poll() is not None:
            raise AssertionError(f"engage run exited with {run.proc.returncode}: {run.err()}")
        if "running; Ctrl-C stops everything" in run.err():
            return
        time.sleep(0.3)
    raise AssertionError(f"engage run did not start within {timeout_s:.0f}s: {run.err()}")


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    """Whatever a test started is gone when it ends, whatever happened."""
    started: list[Run] = []
    yield started
    for run in started:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()
        for pid in processes_of(run.data_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory for the module's stacks, fresh for the first (Kafka formats it)."""
    return Path(tmp_path_factory.mktemp("lifecycle")).resolve() / "data"


def post_one(settings: Settings, tag: str) -> None:
    event = {
        "event_id": f"lifecycle-{tag}",
        "type": "join",
        "community_id": f"lifecycle-{tag}",
        "member_id": "u-1",
        "occurred_at": "2026-11-01T12:00:00Z",
        "source": "api",
        "join_source": "invite",
    }
    token = local_token_path(settings).read_text().strip()  # the stack issues its own at start
    assert post_events(settings.gateway_url, [event], token) == 1


def engage_query_count(run: Run, community: str) -> int:
    """The README's own `engage query`, from another terminal."""
    out = subprocess.run(
        [
            ENGAGE, "query", f"SELECT count() FROM engagement.events WHERE community_id = '{community}'",
            "--format", "TSV", "--data-dir", str(run.data_dir), *run.ports.flags(),
        ],
        env=env_for(run.ports), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


@pytest.mark.parametrize("which", ["kafka", "worker", "gateway"])
def test_a_port_already_taken_gives_one_line_and_starts_nothing(tmp_path: Path, which: str) -> None:
    ports = fresh_ports()
    taken = {"kafka": ports.kafka, "worker": ports.worker, "gateway": ports.gateway}[which]
    data = tmp_path / "data"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen(1)
        r = subprocess.run(
            [ENGAGE, "run", "--no-demo", "--data-dir", str(data), *ports.flags()],
            env=env_for(ports), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"port {taken} on 127.0.0.1" in r.stderr and "already in use" in r.stderr
    assert f"--{which}-port" in r.stderr and "nothing was started" in r.stderr
    assert not processes_of(data)
    assert not (data / "kafka").exists() and not (data / "logs").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_engage_run_stops_everything_on_a_signal(runs: list[Run], data_dir: Path, sig: signal.Signals) -> None:
    run = engage_run(data_dir, fresh_ports())
    runs.append(run)
    wait_started(run)
    pids = processes_of(data_dir)
    assert len(pids) == 4, pids  # engage run, Kafka, the worker, the gateway
    # the children answer as this stack's own instance
    instance = ready_instance(f"{run.settings.worker_url}/readyz")
    assert instance and ready_instance(f"{run.settings.gateway_url}/readyz") == instance

    tag = uuid.uuid4().hex[:8]
    post_one(run.settings, tag)  # events flow: gateway -> Kafka -> worker -> ClickHouse
    deadline = time.monotonic() + 60
    while engage_query_count(run, f"lifecycle-{tag}") < 1:
        assert time.monotonic() < deadline, "the event did not reach ClickHouse in 60s"
        time.sleep(0.5)

    os.kill(run.proc.pid, sig)
    took = wait_gone(data_dir, run.ports, STOP_WITHIN_S)
    assert run.proc.wait(timeout=5) == 0, run.err()  # everything stopped cleanly
    assert "Traceback" not in run.err()
    print(f"{sig.name}: everything gone in {took:.1f}s")


def test_children_die_when_engage_run_is_killed(runs: list[Run], data_dir: Path) -> None:
    run = engage_run(data_dir, fresh_ports())
    runs.append(run)
    wait_started(run)
    assert len(processes_of(data_dir)) == 4
    os.kill(run.proc.pid, signal.SIGKILL)  # OOM killer, kill -9, a crash: no chance to clean up
    run.proc.wait()
    took = wait_gone(data_dir, run.ports, STOP_WITHIN_S)
    print(f"SIGKILL of engage run: everything gone in {took:.1f}s")


def test_a_worker_whose_kafka_was_killed_still_stops_on_sigterm(
    runs: list[Run], data_dir: Path, tmp_path: Path
) -> None:
    """An operator's worker (`engage worker`, its own store and group) on the stack's Kafka; Kafka gets kill -9."""
    run = engage_run(data_dir, fresh_ports())
    runs.append(run)
    wait_started(run)
    own = tmp_path / "operator"
    worker_port = free_port()
    env = env_for(run.ports)
    env.update(ENGAGE_DATA_DIR=str(own), ENGAGE_APP_ID="engage-lifecycle-operator")
    log = tmp_path / "operator-worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [ENGAGE, "worker", "--kafka-port", str(run.ports.kafka), "--worker-port", str(worker_port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while ready_instance(f"http://127.0.0.1:{worker_port}/readyz") is None:
            assert worker.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "the operator's worker did not get ready"
            time.sleep(0.3)
        time.sleep(2.0)  # it has joined its group and fetches

        kafka_pid = int((data_dir / "kafka" / "broker.pid").read_text())
        os.kill(kafka_pid, signal.SIGKILL)
        time.sleep(1.0)  # the worker now spins reconnecting
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=WORKER_STOP_WITHIN_S + 5)
        took = time.monotonic() - started
        assert took < WORKER_STOP_WITHIN_S, f"worker took {took:.1f}s"
        assert code in (0, EXIT_ABANDONED), code
        assert not port_in_use("127.0.0.1", worker_port)
        print(f"worker without Kafka stopped in {took:.1f}s with exit code {code}")
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    # the stack saw its broker die: it says so in one line and stops the rest by itself
    took = wait_gone(data_dir, run.ports, STOP_WITHIN_S)
    assert run.proc.wait(timeout=5) == 1
    last = run.err().strip().splitlines()[-1]
    assert last.startswith("engage run: kafka exited with code -9"), run.err()
    print(f"the stack stopped by itself in {took:.1f}s after its broker was killed")
