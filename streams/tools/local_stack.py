"""The whole pipeline on one machine: Kafka, the worker and the gateway as child processes.

Used by `engage run` and `engage demo`. What it promises:

1. Nothing starts unless every port it needs is free: otherwise `PortTaken`, one
   line naming the port and what to do, and no process, no file in the data dir.
2. A health check counts only from our own child: Kafka is our child process on a
   port that was free a moment before, and the worker and the gateway answer
   `/readyz` with the instance id this stack gave them (a process left over from
   another data directory on the same port is never taken for ours).
3. On Ctrl-C, SIGTERM, SIGHUP or an error, everything stops within 20 s: the worker
   and the gateway get SIGTERM together and stop within their own deadline
   (`shutdown_seconds`, streams/shutdown.py); then Kafka; whatever is still alive
   when its budget runs out is killed. A second signal while stopping kills at once.
4. Children die with the parent, however it dies: each is started through
   streams/tools/die_with_parent.py, which sets Linux's parent-death signal
   (`prctl(PR_SET_PDEATHSIG, SIGTERM)`) and then execs the command.

Why the parent-death signal rather than a watchdog pipe the child reads: the
kernel delivers it however the parent dies (SIGKILL, the OOM killer), with no
help from the child. A pipe is only as good as the child's reading of it: the
Kafka JVM is not ours to change, and a worker whose event loop is stuck in a
Kafka reconnect loop (the very case that motivated this) would not read it
either. Its two known limits are handled: it is tied to the thread that forked
the child (children are spawned by the thread that runs the stack, which
outlives them), and a parent that died before the child's `prctl` is caught by
checking `getppid()` right after it. It is Linux-only; elsewhere the children
still stop with the parent's Ctrl-C, SIGTERM and SIGHUP.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, TracebackType

from streams.api_tokens import ERASURE_WRITE, EVENTS_WRITE, MODERATION_WRITE, SQL_READ, create_token
from streams.config import Settings
from streams.shutdown import STOP_SIGNALS
from streams.topics import ensure_topics

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = REPO_ROOT / "deploy" / "local" / "kafka.sh"
LOCAL_TOKEN_NAME = "local-stack"


def local_token_path(settings: Settings) -> Path:
    """Where the local stack keeps its own API token (0600), for curl and the e2e tests."""
    return settings.data_path / "local-stack.token"


def issue_local_token(settings: Settings) -> str:
    """A fresh token for this stack's demo feed and helpers; it replaces the previous run's."""
    token = create_token(
        settings.tokens_path, LOCAL_TOKEN_NAME, (EVENTS_WRITE, MODERATION_WRITE, SQL_READ, ERASURE_WRITE), replace=True
    )
    path = local_token_path(settings)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


KAFKA_STOP_SECONDS = 5.0  # a single-node broker's controlled shutdown; then SIGKILL
KAFKA_CLEAN_EXITS = (0, 143)  # the JVM exits 128+15 after its SIGTERM shutdown hook ran


class StackError(RuntimeError):
    """The local stack could not start or keep running; the message is one line for a person."""


class PortTaken(StackError):
    pass


class StopRequested(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP reached the process running the stack."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ENGAGE_DATA_DIR": str(settings.data_path),
            "ENGAGE_KAFKA_PORT": str(settings.kafka_port),
            "ENGAGE_KAFKA_CONTROLLER_PORT": str(settings.controller_port),
            "ENGAGE_KAFKA_BOOTSTRAP": settings.bootstrap,
            "ENGAGE_KAFKA_PARTITIONS": str(settings.partitions),
            "ENGAGE_PARTITIONS": str(settings.partitions),
            "ENGAGE_CLICKHOUSE_DSN": settings.dsn,
            "ENGAGE_GATEWAY_HOST": settings.gateway_host,
            "ENGAGE_GATEWAY_PORT": str(settings.gateway_port),
            "ENGAGE_WORKER_HOST": settings.worker_host,
            "ENGAGE_WORKER_PORT": str(settings.worker_port),
            "ENGAGE_BATCH_SIZE": str(settings.batch_size),
            "ENGAGE_FLUSH_SECONDS": str(settings.flush_seconds),
            "ENGAGE_APP_ID": settings.app_id,
            "ENGAGE_SNAPSHOT_SECONDS": str(settings.snapshot_seconds),
            "ENGAGE_SINK_MAX_RETRY_SECONDS": str(settings.sink_max_retry_seconds),
            "ENGAGE_FAULT_CLICKHOUSE_FILE": settings.fault_clickhouse_file,
            "ENGAGE_STALL_SECONDS": str(settings.stall_seconds),
            "ENGAGE_API_TOKENS_FILE": str(settings.tokens_path),
            "ENGAGE_INSTANCE_ID": settings.instance_id,
            "ENGAGE_SHUTDOWN_SECONDS": str(settings.shutdown_seconds),
            "ENGAGE_FAULT_KILL_FILE": settings.fault_kill_file,
            "ENGAGE_KAFKA_SESSION_TIMEOUT_SECONDS": str(settings.kafka_session_timeout_seconds),
        }
    )
    return env


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def ready_instance(url: str, timeout_s: float = 2.0) -> str | None:
    """The instance id a ready `/readyz` at `url` reports ('' when it reports none); None when not ready."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("ok") is not True:
        return None
    return str(body.get("instance") or "")


def free_port() -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_pair() -> int:
    """A port p with p+1 also free (Kafka's broker and controller listeners)."""
    for _ in range(50):
        p = free_port()
        if not port_in_use("127.0.0.1", p + 1):
            return p
    raise RuntimeError("no free pair of ports")


def port_in_use(host: str, port: int) -> bool:
    """Does something listen on host:port? (A socket in TIME_WAIT does not count.)"""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


class LocalStack:
    """Context manager: start what is needed, stop what was started."""

    def __init__(self, settings: Settings, log_dir: Path | None = None, quiet: bool = False) -> None:
        self.settings = settings if settings.instance_id else settings.with_(instance_id=uuid.uuid4().hex[:16])
        self.log_dir = log_dir or self.settings.data_path / "logs"
        self.quiet = quiet
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.exit_codes: dict[str, int] = {}
        self.started_kafka = False  # a broker started by `kafka.sh start` (detached), stopped by `kafka.sh stop`
        self.stopping = False
        self.api_token = ""
        self.clean = True  # every child stopped by itself, with a clean exit code

    @property
    def instance(self) -> str:
        return self.settings.instance_id

    def say(self, msg: str) -> None:
        if not self.quiet:
            print(msg, file=sys.stderr, flush=True)

    def kafka(self, command: str) -> None:
        env = child_env(self.settings)
        subprocess.run(["bash", str(KAFKA_SCRIPT), command], check=True, env=env)

    def kafka_running(self) -> bool:
        env = child_env(self.settings)
        return subprocess.run(["bash", str(KAFKA_SCRIPT), "status"], env=env, check=False).returncode == 0

    def ports(self, with_kafka: bool) -> list[tuple[str, int, str, str]]:
        """(host, port, what, how to choose another) for every port this stack will listen on."""
        s = self.settings
        ports = [
            (s.worker_host, s.worker_port, "the worker", "--worker-port or ENGAGE_WORKER_PORT"),
            (s.gateway_host, s.gateway_port, "the gateway", "--gateway-port or ENGAGE_GATEWAY_PORT"),
        ]
        if with_kafka:
            ports[:0] = [
                ("127.0.0.1", s.kafka_port, "Kafka", "--kafka-port or ENGAGE_KAFKA_PORT"),
                (
                    "127.0.0.1",
                    s.controller_port,
                    "Kafka's controller",
                    "ENGAGE_KAFKA_CONTROLLER_PORT (or another --kafka-port)",
                ),
            ]
        return ports

    def check_ports(self, with_kafka: bool = True) -> None:
        """Raise PortTaken, naming the first port something else listens on."""
        seen: set[int] = set()
        for host, port, what, how in self.ports(with_kafka):
            if port in seen:
                raise PortTaken(f"port {port} is given to two services ({what} and another); pick another with {how}")
            seen.add(port)
            if port_in_use(host, port):
                raise PortTaken(
                    f"port {port} on {host} (for {what}) is already in use by another process: stop that "
                    f"process, or pick another port with {how}; nothing was started"
                )

    def _popen(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "streams.tools.die_with_parent", str(os.getpid()), "--", *command],
                env=child_env(self.settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            )
        self.children.append((name, proc))
        return proc

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start `engage ARGS...` as a child named `name`."""
        return self._popen(name, [sys.executable, "-m", "streams.cli", *args])

    def spawn_kafka(self) -> subprocess.Popen[bytes]:
        return self._popen("kafka", ["bash", str(KAFKA_SCRIPT), "run"])

    def check_children(self, what: str = "running") -> None:
        """Raise StackError if a child has exited."""
        for name, proc in self.children:
            if proc.poll() is not None:
                log = self.log_dir / f"{name}.log"
                tail = last_line(log)
                raise StackError(
                    f"{name} exited with code {proc.returncode} while {what}"
                    + (f" ({tail})" if tail else "")
                    + f"; its log: {log}"
                )

    def wait_until(self, what: str, check: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_children(f"waiting for {what}")
            if check():
                return
            time.sleep(0.3)
        raise StackError(f"timed out after {timeout_s:.0f}s waiting for {what}; logs in {self.log_dir}")

    def _ours(self, url: str) -> Callable[[], bool]:
        def check() -> bool:
            got = ready_instance(url)
            if got is None:
                return False
            if got != self.instance:
                raise StackError(
                    f"{url} answers for another instance ({got or 'unnamed'}), not this stack's: "
                    "another engage process holds that port; stop it or pick another port"
                )
            return True

        return check

    def start(self) -> LocalStack:
        s = self.settings
        reuse_kafka = self.kafka_running()
        self.check_ports(with_kafka=not reuse_kafka)
        if reuse_kafka:
            self.say(f"Kafka already running on {s.bootstrap} (from {s.data_path})")
        else:
            self.kafka("install")
            self.spawn_kafka()
            self.wait_until("Kafka", lambda: port_in_use("127.0.0.1", s.kafka_port), 120)
        created = ensure_topics(s)
        if created:
            self.say(f"created topics: {', '.join(created)}")
        self.spawn("worker", "worker")
        self.wait_until("the worker", self._ours(f"{s.worker_url}/readyz"), 120)
        self.api_token = issue_local_token(s)
        self.spawn("gateway", "gateway")
        self.wait_until("the gateway", self._ours(f"{s.gateway_url}/readyz"), 60)
        self.say(
            f"gateway {s.gateway_url}  worker {s.worker_url}  Kafka {s.bootstrap}  ClickHouse {s.dsn}\n"
            f"logs: {self.log_dir}\n"
            f"API token (Authorization: Bearer ...) in {local_token_path(s)}"
        )
        return self

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)  # its whole group: kafka.sh's own children too

    def _stop_group(self, group: list[tuple[str, subprocess.Popen[bytes]]], budget_s: float) -> None:
        """SIGTERM every child of `group` at once; SIGKILL those still alive after `budget_s`."""
        for _name, proc in group:
            self._signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + budget_s
        for name, proc in group:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{name} did not stop in {budget_s:.0f}s; killing it")
                self._signal(proc, signal.SIGKILL)
                self.clean = False
                proc.wait()
            code = proc.returncode
            self.exit_codes[name] = code
            if code not in (KAFKA_CLEAN_EXITS if name == "kafka" else (0,)):
                self.clean = False
            with contextlib.suppress(ValueError):
                self.children.remove((name, proc))

    def kill_all(self) -> None:
        """SIGKILL every child now (a second signal while stopping)."""
        for _name, proc in self.children:
            self._signal(proc, signal.SIGKILL)
        self.clean = False

    def stop_child(self, name: str) -> None:
        self._stop_group([c for c in self.children if c[0] == name], self.settings.shutdown_seconds + 3)

    def stop_kafka(self) -> None:
        """Stop the broker (a fault drill): the one this stack runs as a child, else a detached one."""
        if any(name == "kafka" for name, _ in self.children):
            self._stop_group([c for c in self.children if c[0] == "kafka"], KAFKA_STOP_SECONDS)
        else:
            self.kafka("stop")

    def start_kafka(self) -> None:
        """Start the broker again as this stack's child, on the same data directory and ports."""
        self.spawn_kafka()
        self.wait_until("Kafka", lambda: port_in_use("127.0.0.1", self.settings.kafka_port), 120)

    def restart_worker(self) -> None:
        """Stop the worker (SIGTERM, as an orchestrator would) and start a new one."""
        self.stop_child("worker")
        self.spawn("worker", "worker")
        self.wait_until("the worker", self._ours(f"{self.settings.worker_url}/readyz"), 120)

    def stop(self) -> bool:
        """Stop every child (services first, Kafka last); True when all stopped cleanly."""
        self.stopping = True
        try:
            services = [c for c in self.children if c[0] != "kafka"]
            # the worker's own deadline plus its interpreter's exit
            self._stop_group(list(reversed(services)), self.settings.shutdown_seconds + 2)
            self._stop_group([c for c in self.children if c[0] == "kafka"], KAFKA_STOP_SECONDS)
            if self.started_kafka:
                self.kafka("stop")
                self.started_kafka = False
        finally:
            self.stopping = False
        return self.clean

    @contextlib.contextmanager
    def stopping_on_signals(self) -> Iterator[None]:
        """SIGINT, SIGTERM and SIGHUP raise StopRequested; while stopping, they kill every child at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self.stopping:
                self.say(f"{signal.Signals(signum).name} while stopping: killing everything now")
                self.kill_all()
                return
            raise StopRequested(signum)

        previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __enter__(self) -> LocalStack:
        self._signals = self.stopping_on_signals()
        self._signals.__enter__()
        try:
            return self.start()
        except BaseException:
            self.stop()
            self._signals.__exit__(None, None, None)
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop()
        finally:
            self._signals.__exit__(None, None, None)
