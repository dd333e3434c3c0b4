"""``manage.py serve``: run the app for ``make run``, with the local simulator when needed.

When no real deployment is enabled, the Responses API simulator is started as a subprocess and
registered as the default deployment "Local simulator", so a first run can chat at once. The
app runs under uvicorn in another subprocess and the task worker (``db_worker``: deletions from
Azure) in a third; Ctrl+C (or SIGTERM) stops them all, and so does any one of them ending.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from azure_sim.defaults import SimulatorConfig
from chat.forms_admin import save_deployment
from chat.models import Deployment
from chat.validators import is_loopback_endpoint

SIMULATOR_DEPLOYMENT_NAME = "Local simulator"
SIMULATOR_KEY_ENV = "SIMULATOR_API_KEY"
STARTUP_TIMEOUT = 20.0


def _is_local(deployment: Deployment) -> bool:
    return is_loopback_endpoint(deployment.endpoint)


def needs_simulator() -> bool:
    """True unless some enabled deployment points at a real (non-loopback) resource."""
    return all(_is_local(d) for d in Deployment.objects.filter(enabled=True))


def register_simulator(port: int) -> Deployment:
    """Create or refresh the "Local simulator" deployment and make it the default."""
    deployment = Deployment.objects.filter(name=SIMULATOR_DEPLOYMENT_NAME).first() or Deployment(
        name=SIMULATOR_DEPLOYMENT_NAME
    )
    deployment.endpoint = f"http://127.0.0.1:{port}"
    deployment.region = "swedencentral"
    deployment.model = "gpt-4.1"
    deployment.deployment_name = "gpt-4.1"
    deployment.auth_mode = Deployment.AuthMode.API_KEY
    deployment.api_key_env = SIMULATOR_KEY_ENV
    deployment.enabled = True
    deployment.is_default = True
    try:
        # save_deployment moves the default mark, so the one-default constraint is not checked.
        deployment.full_clean(exclude=["is_default"])
    except ValidationError as error:
        raise CommandError(
            "Could not register the local simulator: " + "; ".join(error.messages)
        ) from error
    return save_deployment(deployment)


def retire_simulator() -> bool:
    """Switch "Local simulator" off once a real deployment exists; say whether it was on.

    Its simulator is not started then, so it must not stay the default.
    """
    deployment = Deployment.objects.filter(name=SIMULATOR_DEPLOYMENT_NAME, enabled=True).first()
    if deployment is None:
        return False
    deployment.enabled = False
    deployment.is_default = False
    deployment.save()
    if not Deployment.objects.filter(is_default=True).exists():
        successor = Deployment.objects.filter(enabled=True).first()
        if successor is not None:
            successor.is_default = True
            successor.save()
    return True


def free_loopback_port() -> int:
    """A port nothing listens on now, so that two checkouts running ``make run`` side by side
    each get a simulator of their own (each registers its own port in its own database)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_listening(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(
                f"The simulator exited at start (is port {port} in use? "
                "choose another with --simulator-port, or leave it out for any free one)."
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise CommandError(f"The simulator did not answer on port {port} within {STARTUP_TIMEOUT:g}s.")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM (docker stop, systemd) into an exception so that the children are stopped.
    raise SystemExit(0)


def _server_command(port: int) -> list[str]:
    # As in production (docker/entrypoint.sh): uvicorn with its lifespan, so replies still
    # streaming are saved at shutdown.
    return [
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
        "--ws-per-message-deflate",
        "false",
        "--timeout-graceful-shutdown",
        "5",
    ]


class Command(BaseCommand):
    help = (
        "Serve the app with uvicorn and run the task worker beside it; start the local "
        "simulator when no real deployment is set."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--simulator-port", type=int, default=None, help="default: any free port"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        manage_py = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        # The children's environment: the server and the worker both reach the simulator with
        # its key, which therefore never has to be typed or stored.
        env = dict(os.environ)
        children: dict[str, subprocess.Popen[bytes]] = {}
        try:
            if needs_simulator():
                port = options["simulator_port"] or free_loopback_port()
                self.stdout.write(
                    f"No Azure deployment is enabled: starting the simulator on {port}."
                )
                # Strict bearer checking: a wrong key is refused, as Azure would.
                command = [*manage_py, "simulator", "--port", str(port), "--strict-bearer"]
                # Our own interpreter and integer ports: nothing untrusted reaches the commands.
                children["simulator"] = subprocess.Popen(command, env=env)  # noqa: S603
                _wait_until_listening(children["simulator"], port)
                register_simulator(port)
                env[SIMULATOR_KEY_ENV] = SimulatorConfig().api_keys[0]
            elif retire_simulator():
                self.stdout.write(
                    f'A real deployment is enabled: "{SIMULATOR_DEPLOYMENT_NAME}" is off.'
                )
            port = options["port"]
            children["server"] = subprocess.Popen(  # noqa: S603
                _server_command(port), cwd=settings.BASE_DIR, env=env
            )
            # Deletions from Azure (and every other task) run here; without it they only queue.
            children["worker"] = subprocess.Popen(  # noqa: S603
                [*manage_py, "db_worker", "--no-reload", "--no-startup-delay"], env=env
            )
            self.stdout.write(
                self.style.SUCCESS(
                    f"Serving on http://127.0.0.1:{port}/ with a task worker (Ctrl+C stops)."
                )
            )
            # Whichever child ends first ends the others: a server without its worker (or the
            # reverse) would look fine while deletions never finish.
            ended, status = os.wait()
            while ended not in (child.pid for child in children.values()):
                ended, status = os.wait()
            name, child = next((n, c) for n, c in children.items() if c.pid == ended)
            child.returncode = os.waitstatus_to_exitcode(status)
            raise CommandError(f"The {name} stopped (exit status {child.returncode}).")
        except KeyboardInterrupt:
            self.stdout.write("Stopping.")
        finally:
            for name in ("server", "worker", "simulator"):
                _stop(children.get(name))
