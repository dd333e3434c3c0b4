"""Infrastructure faults: a private PostgreSQL and Redis that a test may stop, kill and restart.

Never the machine's own servers: each runs from a temporary directory on a free loopback port
(PostgreSQL as the ``postgres`` OS user, since initdb refuses root). The app under test runs as
a real subprocess (uvicorn ``config.asgi:application``) pointed at them, because Django's own
test database is fixed when the test process starts. Without the binaries the tests are skipped
with the reason, except where REQUIRE_FAULT_TESTS is set (CI), where a skip would hide a failure.

Every wait is for a state (pg_isready, PING, /healthz), bounded by a deadline.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0
POLL = 0.05
USERNAME = "faults"
PASSWORD = "a fault-test password, long enough"


def require(condition: bool, reason: str) -> None:
    """Skip (or, with REQUIRE_FAULT_TESTS=1, fail) unless ``condition`` holds."""
    if condition:
        return
    if os.environ.get("REQUIRE_FAULT_TESTS") == "1":
        pytest.fail(f"fault tests are required here but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(state: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not state():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:g}s")
        time.sleep(POLL)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child we started and that died stays a zombie until reaped; it is gone all the same.
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    return False


def _children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().split(") ")[-1].split()[1]) == pid:
                children.append(int(stat.parent.name))
    return children


# --- PostgreSQL ---------------------------------------------------------------------------------


def _postgres_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


@dataclass
class PostgresCluster:
    """A throwaway PostgreSQL cluster: trust auth, its socket in its own directory."""

    bindir: Path
    root: Path
    port: int = field(default_factory=free_port)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # initdb and pg_ctl refuse to run as root; the cluster belongs to the postgres user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *command], check=check, capture_output=True, text=True, timeout=60
        )

    def init(self) -> None:
        self.socket_dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def is_ready(self) -> bool:
        command = [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)]
        ready = subprocess.run(
            [*command, "-U", "postgres", "-d", "postgres", "-t", "2", "-q"],
            check=False,
            timeout=10,
        )
        return ready.returncode == 0

    @property
    def postmaster_pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.socket_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        started = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.root / "postgres.log"),
            "-o",
            options,
            "-w",
            "start",
            check=False,
        )
        if started.returncode:
            log = (self.root / "postgres.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"PostgreSQL did not start: {started.stderr}\n{log}")
        wait_for(self.is_ready, "PostgreSQL did not accept connections")

    def ensure_running(self) -> None:
        if not self.is_ready():
            self.start()

    def stop(self) -> None:
        """A clean, fast shutdown: sessions are ended, then the server stops."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop")
        wait_for(lambda: not self.is_ready(), "PostgreSQL still answered after stop")

    def kill(self) -> None:
        """kill -9 the postmaster, as a crash or an OOM kill would, and wait for its backends."""
        pid = self.postmaster_pid
        assert pid is not None, "PostgreSQL is not running"
        backends = _children_of(pid)
        os.kill(pid, signal.SIGKILL)
        # The backends notice their postmaster is gone and exit; the next start needs them gone.
        wait_for(
            lambda: not any(_pid_alive(p) for p in [pid, *backends]),
            "PostgreSQL's processes were still alive after kill -9",
        )
        # The dead postmaster may linger as a zombie (where PID 1 reaps no orphans), and
        # PostgreSQL would take it for a server still running: its lock files go, as an
        # operator would remove them once the processes are gone.
        (self.datadir / "postmaster.pid").unlink(missing_ok=True)
        for lock in self.socket_dir.glob(".s.PGSQL.*"):
            lock.unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def createdb(self, name: str, *, template: str = "template1") -> str:
        self._run(
            str(self.bindir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-T",
            template,
            name,
        )
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    bindir = _postgres_bindir()
    require(bindir is not None, "PostgreSQL's server binaries are not installed (postgresql)")
    assert bindir is not None
    if os.geteuid() == 0:
        require(shutil.which("runuser") is not None, "runuser is missing (util-linux)")
        require(_has_user("postgres"), "there is no postgres OS user to run the cluster as")
    # Not pytest's tmp_path: its directories are private to root, and the cluster is not root's.
    cluster = PostgresCluster(bindir, Path(tempfile.mkdtemp(prefix="faults-pg-")))
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.postmaster_pid and _pid_alive(cluster.postmaster_pid):
            with contextlib.suppress(subprocess.SubprocessError, AssertionError):
                cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def postgres(postgres_cluster: PostgresCluster) -> Iterator[PostgresCluster]:
    """The private cluster, running at the start of the test and again after it."""
    postgres_cluster.ensure_running()
    yield postgres_cluster
    postgres_cluster.ensure_running()


@pytest.fixture(scope="session")
def migrated_template(postgres_cluster: PostgresCluster) -> str:
    """A database with every migration applied once, copied for each test that needs one."""
    postgres_cluster.ensure_running()
    name = "faults_template"
    env = app_env(database_url=postgres_cluster.createdb(name), redis_url="")
    manage("migrate", "--noinput", "-v0", env=env)
    create_user = (
        "from accounts.models import User; "
        f"User.objects.create_user({USERNAME!r}, password={PASSWORD!r})"
    )
    manage("shell", "-c", create_user, env=env)
    return name


@pytest.fixture
def database_url(postgres: PostgresCluster, migrated_template: str) -> str:
    """A fresh, migrated database on the private cluster."""
    return postgres.createdb(f"faults_{uuid.uuid4().hex[:12]}", template=migrated_template)


# --- Redis ----------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A throwaway redis-server: no persistence, a free port, started again on the same port."""

    executable: str
    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        command = [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.root),
            "--logfile",
            str(self.root / "redis.log"),
        ]
        self.process = subprocess.Popen(command)
        wait_for(self.ping, "Redis did not answer PING")

    def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.start()

    def _wait_gone(self) -> None:
        assert self.process is not None
        self.process.wait(timeout=10)
        wait_for(lambda: not self.ping(), "Redis still answered after it stopped")

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self._wait_gone()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self._wait_gone()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def redis_service() -> Iterator[RedisServer]:
    executable = shutil.which("redis-server")
    require(executable is not None, "redis-server is not installed (redis-server)")
    assert executable is not None
    server = RedisServer(executable, Path(tempfile.mkdtemp(prefix="faults-redis-")))
    try:
        server.start()
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=10)
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def redis_server(redis_service: RedisServer) -> Iterator[RedisServer]:
    """The private Redis, running and empty at the start of the test."""
    redis_service.ensure_running()
    with socket.create_connection(("127.0.0.1", redis_service.port), timeout=2) as sock:
        sock.sendall(b"FLUSHALL\r\n")
        assert sock.recv(16).startswith(b"+OK")
    yield redis_service
    redis_service.ensure_running()


# --- The app and the simulator as processes ------------------------------------------------------


def app_env(*, database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of an app process: this one's, pointed at the given services only.

    An empty ``database_url`` means the embedded default (a SQLite file), an empty
    ``redis_url`` the in-process channel layer and cache.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST", "DJANGO_")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="true",
        REDIS_URL=redis_url,
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True, timeout=120)


def sign_in(base_url: str) -> requests.Session:
    """A session signed in as USERNAME (in every database copied from the template)."""
    session = requests.Session()
    page = session.get(f"{base_url}/account/sign-in/", timeout=10)
    assert page.status_code == 200, page.text
    response = session.post(
        f"{base_url}/account/sign-in/",
        data={
            "username": USERNAME,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{base_url}/account/sign-in/"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text
    return session


@dataclass
class Process:
    """A subprocess whose output goes to a file, shown when it fails to start."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_until(self, state: Callable[[], bool], what: str) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited at start:\n{self.output()}")
            return state()

        wait_for(ready, f"{self.name}: {what}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def start_process(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start a subprocess (stopped at teardown): ``start_process(name, command, env=...)``."""
    started: list[Process] = []

    def start(
        name: str, command: list[str], *, env: dict[str, str], port: int | None = None
    ) -> Process:
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        process = Process(name, popen, log, port or 0)
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()


@pytest.fixture
def start_app(start_process: Callable[..., Process]) -> Callable[..., Process]:
    """Serve the app in a subprocess, as production does, and wait until /healthz answers:
    ``start_app(database_url=..., redis_url=..., SOME_SETTING="x")``."""

    def start(*, database_url: str, redis_url: str = "", **settings: str) -> Process:
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--timeout-graceful-shutdown",
            "2",
        ]
        env = app_env(database_url=database_url, redis_url=redis_url, **settings)
        app = start_process("app", command, env=env, port=port)
        app.wait_until(lambda: _answers(f"{app.base_url}/healthz"), "/healthz did not answer")
        return app

    return start
