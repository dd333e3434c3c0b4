"""The benchmark's people, deployments, conversations and history, made through the ORM.

Import this only after ``Stack.configure_django()``: the models load on the bench settings.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import cycle

from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from bench.harness import PASSWORD, Service, sign_in
from bench.lanes import Page
from chat.models import Conversation, Deployment, Message
from chat.rendering import render_markdown
from chat.simulator.replies import compose_reply, seed_for


def add_deployment(
    simulator: Service, name: str, options: str, *, stateless: bool = False, default: bool = True
) -> Deployment:
    """Register the simulator as a deployment the way an operator does, with per-request
    simulator options after the ``@`` of the deployment name."""
    arguments = [
        "deployments",
        "add",
        f"--name={name}",
        f"--endpoint={simulator.url}",
        "--region=swedencentral",
        f"--deployment=gpt-4.1@{options}",
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
        deployment_name=f"gpt-4.1@{options}",
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
