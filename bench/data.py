"""The benchmark's people, deployments, conversations and history, made through the ORM.

Import this only after ``Stack.configure_django()``: the models load on the bench settings.
"""

from __future__ import annotations

import json
import urllib.request
import zlib
from datetime import timedelta
from itertools import cycle

from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from azure_sim.composing import compose_reply, seed_for
from bench.harness import PASSWORD, Service, sign_in
from bench.lanes import Page
from chat.models import Conversation, Deployment, Message
from chat.rendering import render_markdown


def simulated_deployment(simulator_url: str, options: str) -> str:
    """A deployment name on the simulator that answers with these options (set through its
    control API, as an administrator sets a deployment up on Azure)."""
    name = f"gpt-4.1-b{zlib.crc32(options.encode()):08x}"
    request = urllib.request.Request(  # noqa: S310 - our own simulator on 127.0.0.1
        f"{simulator_url}/_simulator/deployments/{name}",
        data=json.dumps({"options": options}).encode(),
        method="PUT",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        return name


def add_deployment(
    simulator: Service, name: str, options: str, *, stateless: bool = False, default: bool = True
) -> Deployment:
    """Register the simulator as a deployment the way an operator does; the simulator gives
    that deployment these options."""
    arguments = [
        "deployments",
        "add",
        f"--name={name}",
        f"--endpoint={simulator.url}",
        "--region=swedencentral",
        f"--deployment={simulated_deployment(simulator.url, options)}",
        "--model=gpt-4.1",
        "--auth=api-key",
        "--api-key-env=SIMULATOR_API_KEY",
        "--stateless" if stateless else "--stateful",
        "--default" if default else "--no-default",
    ]
    call_command(*arguments, verbosity=0)
    return Deployment.objects.get(name=name)


def create_users(count: int, *, prefix: str = "bench") -> list[User]:
    return [
        User.objects.create_user(username=f"{prefix}{index}", password=PASSWORD)
        for index in range(count)
    ]


def create_conversations(
    owners: list[User], deployment: Deployment, count: int, *, titled: bool = False
) -> list[Conversation]:
    """``count`` conversations, dealt to the owners in turn, newest last."""
    now = timezone.now()
    owner_of = cycle(owners)
    return Conversation.objects.bulk_create(
        Conversation(
            owner=next(owner_of),
            deployment=deployment,
            title=f"Capacity planning question {index}" if titled else "",
            updated_at=now - timedelta(seconds=count - index),
        )
        for index in range(count)
    )


def add_history(conversation: Conversation, messages: int, *, variants: int = 20) -> None:
    """Completed turns of realistic size: a question, then a markdown answer rendered once."""
    answers = [compose_reply(seed_for(f"answer {index}"), 180) for index in range(variants)]
    rendered = [render_markdown(text) for text in answers]
    created = timezone.now() - timedelta(days=1)
    rows = []
    for index in range(messages):
        at = created + timedelta(seconds=index)
        if index % 2 == 0:
            text = f"Question {index // 2}: how should the deployment handle a burst of traffic?"
            rows.append(
                Message(conversation=conversation, role=Message.Role.USER, text=text, created_at=at)
            )
        else:
            variant = index % variants
            rows.append(
                Message(
                    conversation=conversation,
                    role=Message.Role.ASSISTANT,
                    text=answers[variant],
                    html=rendered[variant],
                    status=Message.Status.COMPLETED,
                    deployment=conversation.deployment,
                    output_tokens=240,
                    input_tokens=600,
                    created_at=at,
                    completed_at=at,
                )
            )
    Message.objects.bulk_create(rows, batch_size=500)


def unsaved_deployment(simulator: Service, options: str) -> Deployment:
    """A deployment the gateway can call without a database row (a one-off client)."""
    return Deployment(
        name="Parsing probe",
        endpoint=simulator.url,
        region="swedencentral",
        deployment_name=simulated_deployment(simulator.url, options),
        model="gpt-4.1",
        auth_mode=Deployment.AuthMode.API_KEY,
        api_key_env="SIMULATOR_API_KEY",
        store_policy=Deployment.StorePolicy.STATELESS,
    )


def signed_in_pages(app: Service, conversations: list[Conversation]) -> list[Page]:
    """Each conversation's page, its owner signed in through the sign-in form (once each)."""
    owners = User.objects.filter(pk__in={conversation.owner_id for conversation in conversations})
    cookies = {owner.pk: sign_in(app.url, owner.username) for owner in owners}
    return [Page(conversation.pk, cookies[conversation.owner_id]) for conversation in conversations]
