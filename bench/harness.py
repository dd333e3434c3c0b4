"""What every benchmark shares.

A fresh PostgreSQL database migrated for the run, the Responses API simulator and the app
(uvicorn, one process, production settings) as separate processes pinned to their cores, sign-in
as a person does it, process meters, percentiles and the results file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import django
import httpx2
import openai
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
LOGS_DIR = RESULTS_DIR / "tmp"  # ignored by git: server logs and profiles of the last runs
MANAGE = str(ROOT / "manage.py")
PYTHON = sys.executable

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
# Runs that share a PostgreSQL server with other runs of the same benchmark name their own.
DATABASE_PREFIX = os.environ.get("BENCH_DATABASE_PREFIX", "bench_")
SIMULATOR_KEY = "sim-key"
PASSWORD = "correct-horse-battery-staple-bench"  # noqa: S105 - the bench users' password
STARTUP_TIMEOUT = 60.0


# --- Cores ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cores:
    """Which CPUs the app gets, and which the simulator and the load generator share."""

    app: str
    load: str

    @classmethod
    def split(cls) -> Cores | None:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return None
        return cls(app=str(cpus[0]), load=",".join(str(cpu) for cpu in cpus[1:]))

    def pin_self(self) -> None:
        os.sched_setaffinity(0, {int(cpu) for cpu in self.load.split(",")})


def pinned(command: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "--cpu-list", cpus, *command] if cpus else command


# --- Services -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{shlex.join(map(str, process.args))} exited; see {log}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=2) as response,  # noqa: S310 - loopback only
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {STARTUP_TIMEOUT:.0f} s; see {log}")


@dataclass(slots=True)
class Service:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_service(
    name: str, command: list[str], env: dict[str, str], ready_path: str, port: int
) -> Service:
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    log = LOGS_DIR / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=output)
    service = Service(name, process, port, log)
    try:
        wait_until_up(service.url + ready_path, process, log)
    except BaseException:
        service.stop()
        raise
    return service


# --- The stack ------------------------------------------------------------------------------


@dataclass(slots=True)
class Stack:
    """One benchmark's database, simulator and app; ``stop`` ends what was started."""

    name: str
    redis_url: str | None = None
    app_settings: dict[str, str] = field(default_factory=dict)
    uvicorn_options: list[str] = field(default_factory=list)
    cores: Cores | None = field(default_factory=Cores.split)
    database: str = ""
    env: dict[str, str] = field(default_factory=dict)
    simulator: Service | None = None
    app: Service | None = None
    floor: Service | None = None  # bench/floor.py, the minimal relay, when the run has one
    code: dict[str, Any] = field(default_factory=dict)  # what the app runs, read at the start

    def __post_init__(self) -> None:
        self.database = f"{DATABASE_PREFIX}{self.name}"
        self.env = self._environment()

    def _environment(self) -> dict[str, str]:
        """Production settings (DJANGO_DEBUG=false), served over plain http on loopback."""
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CHAT_"))
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DJANGO_DEBUG": "false",
                "SECRET_KEY": secrets.token_urlsafe(64),
                "ALLOWED_HOSTS": "127.0.0.1",
                "SECURE_SSL_REDIRECT": "false",
                "ALLOW_LOOPBACK_ENDPOINTS": "true",
                "DATABASE_URL": f"{POSTGRES_URL}/{self.database}",
                "SIMULATOR_API_KEY": SIMULATOR_KEY,
                # One person's tabs carry many conversations here; the per-user limits are not
                # what is measured.
                "CHAT_RATE_LIMIT": "100000000",
                "CHAT_MAX_SOCKETS_PER_USER": "100000",
                "LOG_LEVEL": "WARNING",
            }
        )
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
            env["CHANNEL_LAYER_PREFIX"] = f"bench-{self.name}"
            env["CACHE_KEY_PREFIX"] = f"bench-{self.name}"
        env.update(self.app_settings)
        return env

    def prepare_database(self) -> None:
        """Drop and create the benchmark's database, migrate it, and collect static files."""
        with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{self.database}"')
        for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
            subprocess.run(
                [PYTHON, MANAGE, *command, "-v", "0"],
                env=self.env,
                cwd=ROOT,
                check=True,
            )

    def configure_django(self) -> None:
        """Load Django here too, on the same settings, to create the data and count queries."""
        os.environ.update(self.env)
        django.setup()

    def start_simulator(self, *arguments: str) -> Service:
        port = free_port()
        command = [PYTHON, MANAGE, "simulator", "--port", str(port), *arguments]
        cpus = self.cores.load if self.cores else None
        self.simulator = start_service(
            f"{self.name}-simulator",
            pinned(command, cpus),
            self.env,
            "/_simulator/health",
            port,
        )
        return self.simulator

    def _start_uvicorn(
        self, role: str, application: str, ready_path: str, env: dict[str, str]
    ) -> Service:
        """uvicorn as docker/entrypoint.sh runs it, with the ASGI lifespan, in one process on
        the app's CPU."""
        port = free_port()
        command = [
            PYTHON,
            "-m",
            "uvicorn",
            application,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--ws-per-message-deflate",
            "false",
            *self.uvicorn_options,
        ]
        cpus = self.cores.app if self.cores else None
        return start_service(f"{self.name}-{role}", pinned(command, cpus), env, ready_path, port)

    def start_app(self, settings: dict[str, str] | None = None) -> Service:
        """The app as production serves it, here in one process; ``settings``: environment
        for it alone (a profiler's hook)."""
        env = {**self.env, **(settings or {})}
        self.app = self._start_uvicorn("app", "config.asgi:application", "/readyz", env)
        return self.app

    def start_floor(self, model: str) -> Service:
        """The minimal relay (bench/floor.py), pinned and served like the app, asking the
        simulator for ``model``."""
        if self.simulator is None:
            raise RuntimeError("the floor relays the simulator: start it first")
        env = {
            **self.env,
            "FLOOR_UPSTREAM": f"{self.simulator.url}/openai/v1/",
            "FLOOR_MODEL": model,
        }
        self.floor = self._start_uvicorn("floor", "bench.floor:app", "/readyz", env)
        return self.floor

    def stop(self) -> None:
        for service in (self.app, self.floor, self.simulator):
            if service is not None:
                service.stop()
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as connection,
        ):
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def conditions(self) -> dict[str, Any]:
        return {
            "database": "PostgreSQL (fresh database, migrated by the run)",
            "channel_layer": "Redis" if self.redis_url else "in-memory (one process)",
            "settings": "DJANGO_DEBUG=false (production settings), served over http on loopback",
            "app_server": "uvicorn, 1 process, --lifespan on, --ws-per-message-deflate false, "
            "uvloop, httptools, websockets"
            + "".join(f", {option}" for option in self.uvicorn_options),
            "app_settings": self.app_settings,
            "pinning": (
                f"app on CPU {self.cores.app}; simulator and load generator on CPU "
                f"{self.cores.load}; PostgreSQL unpinned"
                if self.cores
                else "none (one CPU)"
            ),
        }


@contextlib.contextmanager
def running_stack(stack: Stack) -> Iterator[Stack]:
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    stack.code = code_version()
    if stack.cores:
        stack.cores.pin_self()
    try:
        stack.prepare_database()
        stack.configure_django()
        yield stack
    finally:
        stack.stop()


def freeze_heap() -> None:
    """Set-up objects live to the end: keep full collections of them out of the timings."""
    gc.collect()
    gc.freeze()


# --- Profiles -----------------------------------------------------------------------------


def py_spy_samples(path: Path) -> Iterator[tuple[list[str], int]]:
    """py-spy's raw samples: the frames, outermost first, and how many times they were seen
    (no process or thread). A sample py-spy wrote broken across two lines is left out."""
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [frame for frame in stack.split(";") if frame]
        if frames and count.isdigit():
            yield frames, int(count)


class Profile:
    """py-spy sampling a service while the block runs; collapsed stacks go to ``path``."""

    def __init__(self, service: Service, label: str, *, rate: int = 250) -> None:
        self.path = LOGS_DIR / f"{service.name}-{label}.txt"
        self.command = [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(service.process.pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            "--gil",  # only the thread holding the GIL: where the CPU goes, not idle waits
            "--output",
            str(self.path),
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profile:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=60)

    def summary(self, top: int = 25) -> dict[str, Any]:
        """The functions most often on the stack (inclusive) and at its top (self)."""
        samples = 0
        own: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        for stack, weight in py_spy_samples(self.path):
            frames = [_LINE_NUMBER.sub(")", frame) for frame in stack]
            samples += weight
            own[frames[-1]] += weight
            for frame in set(frames):
                inclusive[frame] += weight

        def shares(counter: Counter[str]) -> list[list[Any]]:
            return [[frame, round(100 * n / samples, 1)] for frame, n in counter.most_common(top)]

        return {
            "samples": samples,
            "file": str(self.path.relative_to(ROOT)),
            "self_percent": shares(own),
            "inclusive_percent": shares(inclusive),
        }


_LINE_NUMBER = re.compile(r":\d+\)$")


# --- Signing in -----------------------------------------------------------------------------

_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _take_cookies(response: httpx2.Response, jar: dict[str, str]) -> None:
    # Production cookies are Secure; this client keeps them over http, as a TLS proxy would.
    for header in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        jar.update({name: morsel.value for name, morsel in parsed.items()})


def cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def sign_in(base_url: str, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Sign in through the sign-in form, CSRF token and all; returns the cookies set."""
    jar: dict[str, str] = {}
    with httpx2.Client(base_url=base_url, timeout=30) as client:
        page = client.get("/account/sign-in/")
        page.raise_for_status()
        _take_cookies(page, jar)
        token = _CSRF_FIELD.search(page.text)
        if token is None:
            raise RuntimeError("the sign-in page has no CSRF token")
        answer = client.post(
            "/account/sign-in/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
            headers={
                "Cookie": cookie_header(jar),
                "Origin": base_url,
                "Referer": f"{base_url}/account/sign-in/",
            },
        )
        _take_cookies(answer, jar)
    if answer.status_code != 302 or "sessionid" not in jar:
        raise RuntimeError(f"sign-in as {username} failed ({answer.status_code})")
    return jar


# --- Meters ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    at: float
    cpu: dict[str, float]  # CPU seconds used so far
    rss: dict[str, int]  # bytes
    machine_busy: float  # CPU seconds of the whole machine, every process included


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class Meter:
    """CPU and RSS of the app, the simulator, this load generator and PostgreSQL's backends
    serving the benchmark's database (other databases' backends, and the server's own
    processes, count as other processes)."""

    def __init__(self, stack: Stack) -> None:
        self.processes: dict[str, psutil.Process] = {"driver": psutil.Process()}
        for service in (stack.app, stack.floor, stack.simulator):
            if service is not None:
                self.processes[service.name.rsplit("-", 1)[1]] = service.ps
        self._backend_title = f" {stack.database} "
        self._backends: dict[int, float] = {}  # CPU seconds last read, kept once one exits

    def _postgres_cpu_seconds(self) -> float:
        for process in psutil.process_iter(["name", "cmdline"]):
            if process.info["name"] != "postgres":
                continue
            title = " ".join(process.info["cmdline"] or ()) + " "
            if self._backend_title in title:
                with contextlib.suppress(psutil.Error):
                    self._backends[process.pid] = _cpu_seconds(process)
        return sum(self._backends.values())

    def read(self) -> Reading:
        cpu = {name: _cpu_seconds(process) for name, process in self.processes.items()}
        cpu["postgres"] = self._postgres_cpu_seconds()
        rss = {name: process.memory_info().rss for name, process in self.processes.items()}
        times = psutil.cpu_times()
        busy = sum(times) - times.idle - getattr(times, "iowait", 0.0)
        return Reading(time.monotonic(), cpu, rss, busy)

    def rss(self, name: str) -> int:
        return int(self.processes[name].memory_info().rss)


def usage(before: Reading, after: Reading) -> dict[str, Any]:
    """CPU in cores (CPU seconds per second) between two readings, and RSS at the second."""
    elapsed = after.at - before.at
    cores = {name: round((after.cpu[name] - before.cpu[name]) / elapsed, 3) for name in after.cpu}
    ours = sum(cores.values())
    machine = (after.machine_busy - before.machine_busy) / elapsed
    return {
        "seconds": round(elapsed, 2),
        "cpu_cores": cores,
        "other_processes_cpu_cores": round(max(0.0, machine - ours), 3),
        "rss_mib": {name: round(value / 2**20, 1) for name, value in after.rss.items()},
    }


# --- Figures --------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    index = max(0, min(len(ordered) - 1, int(share * len(ordered) + 0.999999) - 1))
    return ordered[index]


def summary(values: Sequence[float], *, scale: float = 1000.0, digits: int = 2) -> dict[str, Any]:
    """Count, p50, p95, p99 and max, scaled (seconds to milliseconds by default)."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 0.50) * scale, digits),
        "p95": round(percentile(ordered, 0.95) * scale, digits),
        "p99": round(percentile(ordered, 0.99) * scale, digits),
        "max": round(ordered[-1] * scale, digits),
    }


def difference(relay: dict[str, Any], direct: dict[str, Any]) -> dict[str, float]:
    """What the relay adds at each percentile."""
    return {
        key: round(relay[key] - direct[key], 2)
        for key in ("p50", "p95", "p99")
        if key in relay and key in direct
    }


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [[str(cell) for cell in row] for row in (header, *rows)]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    )


# --- Results --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    # --all: this process is pinned to the load generator's CPUs by now.
    nproc = subprocess.run(
        ["nproc", "--all"], capture_output=True, text=True, check=True
    ).stdout.strip()
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": int(nproc),
        "cpu": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "django": django.get_version(),
        "openai": openai.__version__,
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }


def code_version() -> dict[str, Any]:
    """The commit measured, and the app files that differed from it (read-only git)."""

    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout

    changed = git("status", "--porcelain", "--", "accounts", "chat", "config", "templates")
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "uncommitted_app_files": [line[3:] for line in changed.splitlines()],
    }


def command_line() -> str:
    module = Path(sys.argv[0]).stem
    return shlex.join([".venv/bin/python", "-m", f"bench.{module}", *sys.argv[1:]])


def write_results(stack: Stack, started: float, figures: dict[str, Any], **details: Any) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{stack.name}.json"
    document = {
        "benchmark": stack.name,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command_line(),
        "duration_s": round(time.monotonic() - started, 1),
        "machine": machine(),
        "code": stack.code,
        **details,
        "figures": figures,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(ROOT)}")
    return path


def stack_from(name: str, args: argparse.Namespace) -> Stack:
    """The benchmark's stack, as the command line asks for it."""
    settings = dict(setting.split("=", 1) for setting in args.app_setting)
    return Stack(
        name,
        redis_url=args.redis,
        app_settings=settings,
        uvicorn_options=args.uvicorn_option,
    )


def common_arguments(description: str, *, load: bool = False) -> argparse.ArgumentParser:
    """The options every benchmark takes; with ``load``, those of the load-driven ones too."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="use Redis for the channel layer and cache (e.g. redis://127.0.0.1:6379/15)",
    )
    parser.add_argument(
        "--uvicorn-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="an option for the app's uvicorn (repeatable), e.g. --ws-per-message-deflate=false",
    )
    parser.add_argument(
        "--app-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment setting for the app (repeatable), e.g. CHAT_EARLY_REQUEST=true",
    )
    if load:
        parser.add_argument("--seed", type=int, default=6, help="seed of the staggered arrivals")
        parser.add_argument(
            "--profile",
            action="store_true",
            help="sample the app with py-spy while it is measured (bench/results/tmp/)",
        )
    return parser
