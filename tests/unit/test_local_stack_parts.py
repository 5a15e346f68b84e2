"""The local stack's checks that need no process: ports, instance ids, dying with the parent."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from streams.config import Settings
from streams.tools.die_with_parent import EXIT_USAGE
from streams.tools.local_stack import (
    LocalStack,
    PortTaken,
    StackError,
    free_port,
    free_port_pair,
    port_in_use,
    ready_instance,
)


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


def settings(tmp_path: Path, **ports: int) -> Settings:
    # Kafka's controller listens one port above it: that one has to be free too
    base = {"kafka_port": free_port_pair(), "gateway_port": free_port(), "worker_port": free_port()}
    return Settings.from_env({}, data_dir=str(tmp_path / "data"), **{**base, **ports})


def test_a_port_in_use_is_named_with_what_to_do(tmp_path: Path, listening: int) -> None:
    stack = LocalStack(settings(tmp_path, gateway_port=listening), quiet=True)
    with pytest.raises(PortTaken) as err:
        stack.check_ports()
    msg = str(err.value)
    assert f"port {listening} on 127.0.0.1 (for the gateway) is already in use" in msg
    assert "--gateway-port or ENGAGE_GATEWAY_PORT" in msg and "\n" not in msg
    assert not (tmp_path / "data").exists()


def test_kafka_and_its_controller_port_are_checked(tmp_path: Path) -> None:
    kafka = free_port_pair()  # the port below the taken one must be free, or Kafka's is named first
    with socket.socket() as controller:
        controller.bind(("127.0.0.1", kafka + 1))
        controller.listen()
        stack = LocalStack(settings(tmp_path, kafka_port=kafka), quiet=True)
        with pytest.raises(PortTaken, match="Kafka's controller"):
            stack.check_ports()
        stack.check_ports(with_kafka=False)  # a broker of this data dir already runs: its ports are ours


def test_two_services_on_one_port_is_a_mistake(tmp_path: Path) -> None:
    p = free_port()
    with pytest.raises(PortTaken, match="given to two services"):
        LocalStack(settings(tmp_path, gateway_port=p, worker_port=p), quiet=True).check_ports()


def test_free_ports_pass_and_time_wait_does_not_count(tmp_path: Path) -> None:
    LocalStack(settings(tmp_path), quiet=True).check_ports()
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp and Kafka do
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = int(server.getsockname()[1])
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server side closes first: its socket waits in TIME_WAIT
        time.sleep(0.05)
        client.close()
    time.sleep(0.05)
    assert not port_in_use("127.0.0.1", port)


def test_each_stack_has_its_own_instance_id(tmp_path: Path) -> None:
    a, b = LocalStack(settings(tmp_path), quiet=True), LocalStack(settings(tmp_path), quiet=True)
    assert a.instance and b.instance and a.instance != b.instance


def test_die_with_parent_usage() -> None:
    r = subprocess.run([sys.executable, "-m", "streams.tools.die_with_parent", "sleep", "1"], capture_output=True)
    assert r.returncode == EXIT_USAGE


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_gets_sigterm_when_its_parent_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    # bash is the parent: it starts `sleep` through die_with_parent and waits; then we SIGKILL bash
    parent = subprocess.Popen(
        [
            "bash",
            "-c",
            f'{sys.executable} -m streams.tools.die_with_parent $$ -- sleep 300 & echo $! > "$1"; wait',
            "bash",
            str(pidfile),
        ],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pidfile.read_text())
        time.sleep(0.5)  # the child has exec'd `sleep` by now
        assert Path(f"/proc/{child}/cmdline").read_bytes().startswith(b"sleep")
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
            status = Path(f"/proc/{child}/status").read_text() if Path(f"/proc/{child}").exists() else ""
            if "State:\tZ" in status:  # dead, waiting for init to reap it
                break
            time.sleep(0.05)
        status = Path(f"/proc/{child}/status").read_text() if Path(f"/proc/{child}").exists() else ""
        assert not status or "State:\tZ" in status, status
    finally:
        with_suppressed_kill(parent.pid)


def with_suppressed_kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _Readyz(BaseHTTPRequestHandler):
    instance = "someone-else"

    def do_GET(self) -> None:
        body = json.dumps({"ok": True, "instance": self.instance}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_ready_answer_from_another_instance_is_not_taken_for_ours(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Readyz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/readyz"
        assert ready_instance(url) == "someone-else"
        stack = LocalStack(settings(tmp_path), quiet=True)
        with pytest.raises(StackError, match="answers for another instance"):
            stack.wait_until("the worker", stack._ours(url), 5)
        _Readyz.instance = stack.instance
        stack.wait_until("the worker", stack._ours(url), 5)  # its own instance: ready
    finally:
        _Readyz.instance = "someone-else"
        server.shutdown()
        server.server_close()
