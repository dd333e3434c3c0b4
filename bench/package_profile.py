"""Where a service's CPU goes by package: cProfile over all its threads while a block runs,
each function's own time summed by the package it belongs to (Django, psycopg, markdown-it,
the app's own modules, the standard library's...).

py-spy's stacks of the app are often cut short under asyncio, so its samples cannot always
say which library a delta's cost is in; cProfile's own times can. cProfile slows the service
down (most where the calls are many and small), so the shares are for comparing the parts,
not absolute costs. The time functions spend waiting (a thread waiting for work or for the
database, the profiler's own polling) is left out of the shares.
"""

from __future__ import annotations

import pstats
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import LOGS_DIR, ROOT

SITE = Path(__file__).parent / "cprofile_site"
DUMP_TIMEOUT = 120.0
# Functions whose own time is waiting, not CPU: a thread pool's idle workers, the profiler's
# polling, psycopg waiting for the server, the event loop's poll.
_WAITS = (
    re.compile(r"method 'get' of '_queue\.SimpleQueue'"),
    re.compile(r"built-in method time\.sleep"),
    re.compile(r"psycopg/connection\.py:\d+\(wait\)"),
    re.compile(r"method '(?:poll|select|control)' of"),
    re.compile(r"method 'acquire' of '_thread\.lock'"),
)
_PACKAGE = re.compile(r"site-packages/([^/]+)/")
_C_METHOD = re.compile(r"of '([\w.]+)' objects")
_C_FUNCTION = re.compile(r"built-in method ([\w.]+)")


def _directory(name: str) -> Path:
    """Where the site hook of service ``name`` and this module meet: its files and statistics."""
    return LOGS_DIR / f"{name}-cprofile"


def settings_for(name: str) -> dict[str, str]:
    """The environment a service needs to be profiled: this folder's site hook on its path."""
    directory = _directory(name)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.iterdir():
        stale.unlink()
    return {"PYTHONPATH": str(SITE), "BENCH_CPROFILE_DIR": str(directory)}


class PackageProfile:
    """cProfile of the service started with ``settings_for(name)``, while the block runs."""

    def __init__(self, name: str) -> None:
        self.directory = _directory(name)
        self.path = self.directory / "profile"

    def __enter__(self) -> PackageProfile:
        self.path.unlink(missing_ok=True)
        (self.directory / "start").touch()
        self._wait(lambda: not (self.directory / "start").exists(), "start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        (self.directory / "stop").touch()
        self._wait(self.path.exists, "write its statistics")

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DUMP_TIMEOUT
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the profiled service did not {what} (is it profiled?)")
            time.sleep(0.05)

    def summary(self, top: int = 25) -> dict[str, Any]:
        """Shares of the CPU (own time, waits left out) by package and by function."""
        stats: dict[Any, Any] = pstats.Stats(str(self.path)).stats  # type: ignore[attr-defined]
        packages: Counter[str] = Counter()
        functions: Counter[str] = Counter()
        for (file, line, name), (_, _, own, _, _) in stats.items():
            function = f"{_short(file)}:{line}({name})"
            if any(wait.search(function) for wait in _WAITS):
                continue
            packages[_package(file, name)] += own
            functions[function] += own
        total = sum(packages.values())

        def shares(counter: Counter[str]) -> list[list[Any]]:
            return [[key, round(100 * own / total, 1)] for key, own in counter.most_common(top)]

        return {
            "file": str(self.path.relative_to(ROOT)),
            "cpu_seconds_profiled": round(total, 3),
            "package_percent": shares(packages),
            "function_percent": shares(functions),
        }


def _short(file: str) -> str:
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1]
    if file.startswith(str(ROOT)):
        return file[len(str(ROOT)) + 1 :]
    return file.rsplit("/lib/python3", 1)[-1]


def _package(file: str, name: str) -> str:
    if match := _PACKAGE.search(file):
        return match[1]
    if file.startswith(str(ROOT)):
        return "app: " + file[len(str(ROOT)) + 1 :].split("/", 1)[0]
    if file == "~":  # written in C: its own name says what it is
        if match := _C_METHOD.search(name) or _C_FUNCTION.search(name):
            return f"C: {match[1]}"
        return "C: other"
    return "stdlib: " + Path(file).name
