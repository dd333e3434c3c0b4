"""Serve the local Azure OpenAI Responses API simulator on a loopback port.

python manage.py simulator --port 8100 --ttft-ms 300 --tps 80
"""

import gc
import resource
from argparse import ArgumentParser
from typing import Any

import uvicorn
from django.core.management.base import BaseCommand, CommandError

from azure_sim import SimulatorConfig, create_app

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
DEFAULTS = SimulatorConfig()


def raise_open_files_limit() -> None:
    """A thousand streams need a thousand sockets; common soft limits stop at 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class Command(BaseCommand):
    help = "Serve the local Azure OpenAI Responses API simulator (loopback only)."
    # The simulator uses no database or app code; it should start even while the app is broken.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="a loopback address only")
        parser.add_argument("--port", type=int, default=8100)
        parser.add_argument(
            "--accept-ms",
            type=int,
            default=DEFAULTS.accept_ms,
            help="wait before answering a create at all, as a busy resource does",
        )
        parser.add_argument("--ttft-ms", type=int, default=DEFAULTS.ttft_ms)
        parser.add_argument("--tps", type=float, default=DEFAULTS.tps, help="0 = no pacing")
        parser.add_argument("--burst", type=int, default=DEFAULTS.burst)
        parser.add_argument("--words", type=int, default=DEFAULTS.words)
        parser.add_argument(
            "--api-key",
            action="append",
            dest="api_keys",
            help="an accepted api-key (repeat for several; default sim-key)",
        )
        parser.add_argument(
            "--strict-bearer",
            action="store_true",
            help="accept only the API keys as bearer tokens, not any token",
        )
        parser.add_argument("--region", default=DEFAULTS.region)
        parser.add_argument("--retention-seconds", type=int, default=DEFAULTS.retention_seconds)
        parser.add_argument(
            "--previous-not-found-status",
            type=int,
            default=DEFAULTS.previous_response_not_found_status,
            help="HTTP status of previous_response_not_found errors",
        )
        parser.add_argument("--access-log", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        host = options["host"]
        if host not in LOOPBACK_HOSTS:
            raise CommandError(
                f"The simulator serves loopback only (127.0.0.1, ::1, localhost), not {host!r}."
            )
        config = SimulatorConfig(
            api_keys=tuple(options["api_keys"] or DEFAULTS.api_keys),
            accept_entra_tokens=not options["strict_bearer"],
            region=options["region"],
            retention_seconds=options["retention_seconds"],
            previous_response_not_found_status=options["previous_not_found_status"],
            accept_ms=options["accept_ms"],
            ttft_ms=options["ttft_ms"],
            tps=options["tps"],
            burst=options["burst"],
            words=options["words"],
        )
        self.stdout.write(
            f"Simulator on http://{host}:{options['port']}/openai/v1/ "
            f"(ttft {config.ttft_ms} ms, {config.tps:g} tokens/s, region {config.region})"
        )
        raise_open_files_limit()
        app = create_app(config)
        # Start-up objects never die; freezing them keeps full collections out of the p99 tail.
        gc.freeze()
        uvicorn.run(
            app,
            host=host,
            port=options["port"],
            log_level="info",
            access_log=options["access_log"],
            lifespan="on",
        )
