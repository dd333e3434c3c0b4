"""``manage.py deployments list|add|update|disable|test``: the model deployments from a shell.

Everything is validated like the admin does it (the same form, the model's ``full_clean``), and
an API key is never printed: only whether its environment variable is set.
"""

import argparse
import asyncio
import os
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.forms.models import model_to_dict

from chat import llm
from chat.catalog import CHAT_MODELS, REASONING_EFFORTS, REFUSED_MODELS, RESPONSES_API_REGIONS
from chat.forms_admin import DeploymentForm, save_deployment
from chat.models import Deployment

AUTH_MODES = {"api-key": Deployment.AuthMode.API_KEY, "entra-id": Deployment.AuthMode.ENTRA_ID}

# Command-line option (its argparse dest) -> model field.
OPTION_FIELDS = {
    "name": "name",
    "endpoint": "endpoint",
    "region": "region",
    "deployment": "deployment_name",
    "model": "model",
    "auth": "auth_mode",
    "api_key_env": "api_key_env",
    "managed_identity_client_id": "managed_identity_client_id",
    "store_policy": "store_policy",
    "retention_hours": "remote_retention_hours",
    "instructions": "default_instructions",
    "reasoning_effort": "reasoning_effort",
    "failover_group": "failover_group",
    "priority": "priority",
    "enabled": "enabled",
    "default": "is_default",
}
REQUIRED_TO_ADD = ("name", "endpoint", "region", "deployment", "model")


def key_status(deployment: Deployment) -> str:
    if deployment.auth_mode == Deployment.AuthMode.ENTRA_ID:
        return "Entra ID"
    state = "set" if os.environ.get(deployment.api_key_env) else "NOT SET"
    return f"{deployment.api_key_env} ({state})"


def _add_field_options(parser: CommandParser) -> None:
    parser.add_argument("--name", help="Display name, unique.")
    parser.add_argument("--endpoint", help="Resource URL, e.g. https://myres.openai.azure.com")
    parser.add_argument("--region", help="Azure region of the resource, e.g. swedencentral.")
    parser.add_argument("--deployment", help="The deployment's name on the resource.")
    parser.add_argument("--model", help="Model family, e.g. gpt-4.1.")
    parser.add_argument("--auth", choices=sorted(AUTH_MODES), help="How the app signs in.")
    parser.add_argument(
        "--api-key-env", help="Name of the environment variable holding the API key."
    )
    parser.add_argument(
        "--managed-identity-client-id", help="Client id of a user-assigned managed identity."
    )
    store = parser.add_mutually_exclusive_group()
    store.add_argument(
        "--stateless",
        dest="store_policy",
        action="store_const",
        const=Deployment.StorePolicy.STATELESS,
        help="Keep nothing on Azure; send the whole history every turn.",
    )
    store.add_argument(
        "--stateful",
        dest="store_policy",
        action="store_const",
        const=Deployment.StorePolicy.STATEFUL,
        help="Let Azure keep responses and continue with previous_response_id.",
    )
    parser.add_argument(
        "--retention-hours", type=int, help="Delete stored responses after this many hours."
    )
    parser.add_argument("--instructions", help="Default instructions for new conversations.")
    parser.add_argument(
        "--reasoning-effort",
        choices=["", *REASONING_EFFORTS],
        help="A reasoning model's default effort; empty for the model's own.",
    )
    parser.add_argument("--failover-group")
    parser.add_argument("--priority", type=int, help="Lower goes first in a failover group.")
    enabled = parser.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_const", const=True)
    enabled.add_argument("--disable", dest="enabled", action="store_const", const=False)
    parser.add_argument(
        "--default",
        action=argparse.BooleanOptionalAction,
        help="Make this the default deployment (the previous default stops being one).",
    )


class Command(BaseCommand):
    help = "List, add, update, disable and test the model deployments."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        actions.add_parser("list", help="Show every deployment.")
        _add_field_options(actions.add_parser("add", help="Add a deployment."))
        update = actions.add_parser("update", help="Change a deployment.")
        update.add_argument("deployment_to_update", metavar="NAME")
        _add_field_options(update)
        disable = actions.add_parser("disable", help="Stop offering a deployment.")
        disable.add_argument("deployment_to_change", metavar="NAME")
        test = actions.add_parser("test", help="Send a tiny request and report how it went.")
        test.add_argument("deployment_to_test", metavar="NAME")

    def handle(self, *args: Any, **options: Any) -> None:
        match options["action"]:
            case "list":
                self.list_deployments()
            case "add":
                self.add(options)
            case "update":
                self.update(self.get(options["deployment_to_update"]), options)
            case "disable":
                self.disable(self.get(options["deployment_to_change"]))
            case "test":
                self.test(self.get(options["deployment_to_test"]))

    def get(self, name: str) -> Deployment:
        try:
            return Deployment.objects.get(name=name)
        except Deployment.DoesNotExist:
            names = ", ".join(Deployment.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f'No deployment is named "{name}" (there are: {names}).') from None

    def list_deployments(self) -> None:
        header = ("NAME", "MODEL", "REGION", "DEPLOYMENT", "STORE", "CREDENTIALS", "ON", "DEFAULT")
        rows = [
            (
                d.name,
                d.model,
                d.region,
                d.deployment_name,
                d.store_policy,
                key_status(d),
                "yes" if d.enabled else "no",
                "yes" if d.is_default else "",
            )
            for d in Deployment.objects.all()
        ]
        if not rows:
            self.stdout.write("No deployments yet. Add one with: manage.py deployments add --help")
            return
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
        for row in (header, *rows):
            self.stdout.write(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )

    def add(self, options: dict[str, Any]) -> None:
        missing = [f"--{name}" for name in REQUIRED_TO_ADD if options[name] is None]
        if missing:
            raise CommandError(f"A new deployment needs {', '.join(missing)}.")
        deployment = self.save(Deployment(), options)
        self.stdout.write(self.style.SUCCESS(f'Added deployment "{deployment}".'))
        if deployment.auth_mode == Deployment.AuthMode.API_KEY and not os.environ.get(
            deployment.api_key_env
        ):
            self.stdout.write(
                self.style.WARNING(
                    f"{deployment.api_key_env} is not set in this environment; set it where the "
                    "app runs."
                )
            )

    def update(self, deployment: Deployment, options: dict[str, Any]) -> None:
        deployment = self.save(deployment, options)
        self.stdout.write(self.style.SUCCESS(f'Updated deployment "{deployment}".'))

    def disable(self, deployment: Deployment) -> None:
        deployment.enabled = False
        was_default, deployment.is_default = deployment.is_default, False
        deployment.save()
        note = " It is no longer the default." if was_default else ""
        self.stdout.write(self.style.SUCCESS(f'Disabled deployment "{deployment}".{note}'))

    def test(self, deployment: Deployment) -> None:
        async def run() -> llm.ConnectionReport:
            try:
                return await llm.test_connection(deployment)
            finally:
                await llm.aclose_clients()

        report = asyncio.run(run())
        if report.error is not None:
            error = report.error
            raise CommandError(
                f'"{deployment}" failed: {error.message} [{error.kind}: {error.detail}]'
            )
        self.stdout.write(
            self.style.SUCCESS(
                f'"{deployment}" answered in {report.latency_ms} ms: region '
                f"{report.region or 'unknown'}, model {report.model or 'unknown'}"
                + (f", request id {report.request_id}" if report.request_id else "")
            )
        )

    def save(self, deployment: Deployment, options: dict[str, Any]) -> Deployment:
        model = options.get("model")
        if model in REFUSED_MODELS:
            raise CommandError(f"Model {model} cannot be used: {REFUSED_MODELS[model]}")
        changes = {
            field: options[option]
            for option, field in OPTION_FIELDS.items()
            if options.get(option) is not None
        }
        if "auth_mode" in changes:
            changes["auth_mode"] = AUTH_MODES[changes["auth_mode"]]
        data = model_to_dict(deployment, fields=DeploymentForm.Meta.fields)
        data.update(changes)
        form = DeploymentForm(data, instance=deployment)
        if not form.is_valid():
            raise CommandError(self.describe_errors(form))
        return save_deployment(form.save(commit=False))

    @staticmethod
    def describe_errors(form: DeploymentForm) -> str:
        lines = ["The deployment was not saved:"]
        for field, messages in form.errors.get_json_data().items():
            text = " ".join(str(message["message"]) for message in messages)
            if field == NON_FIELD_ERRORS:
                lines.append(f"  {text}")
                continue
            option = next((o for o, f in OPTION_FIELDS.items() if f == field), field)
            lines.append(f"  --{option.replace('_', '-')}: {text}")
            if field == "region":
                lines.append(
                    "    Regions serving the Responses API: " + ", ".join(RESPONSES_API_REGIONS)
                )
            elif field == "model":
                lines.append("    Chat models: " + ", ".join(CHAT_MODELS))
        return "\n".join(lines)
