"""Loaded by a service started with this folder on PYTHONPATH (``bench.package_profile``):
cProfile over every thread of the process, between a ``start`` and a ``stop`` file in
``BENCH_CPROFILE_DIR``, its statistics then written there as ``profile``. Python 3.12's
cProfile counts every thread (it uses ``sys.monitoring``), the database thread included."""

import cProfile
import os
import threading
import time
from pathlib import Path

POLL_SECONDS = 0.05


def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(POLL_SECONDS)
    path.unlink()


def _serve(directory: Path) -> None:
    while True:
        _wait_for(directory / "start")
        profile = cProfile.Profile()
        profile.enable()
        _wait_for(directory / "stop")
        profile.disable()
        written = directory / "profile.part"
        profile.dump_stats(written)
        written.rename(directory / "profile")


if _directory := os.environ.get("BENCH_CPROFILE_DIR"):
    threading.Thread(
        target=_serve, args=(Path(_directory),), name="bench-cprofile", daemon=True
    ).start()
