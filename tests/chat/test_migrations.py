"""Data migrations, run with Django's migration executor on the test database."""

from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE_THE_KEY_RULE = [("chat", "0007_worker_heartbeat")]
THE_KEY_RULE = [("chat", "0008_deployment_key_variable_rule")]


@pytest.fixture
def before_the_key_rule(transactional_db: None) -> Iterator[MigrationExecutor]:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_THE_KEY_RULE)
    executor.loader.build_graph()
    yield executor
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_deployments_naming_the_apps_secrets_are_switched_off_with_the_reason(
    before_the_key_rule: MigrationExecutor,
) -> None:
    old = before_the_key_rule.loader.project_state(BEFORE_THE_KEY_RULE).apps
    OldDeployment = old.get_model("chat", "Deployment")
    common = {
        "endpoint": "https://contoso.openai.azure.com",
        "region": "swedencentral",
        "deployment_name": "gpt41",
        "model": "gpt-4.1",
    }
    OldDeployment.objects.create(name="Secret", api_key_env="SECRET_KEY", is_default=True, **common)
    OldDeployment.objects.create(name="Home", api_key_env="HOME", **common)
    OldDeployment.objects.create(name="Fine", api_key_env="AZURE_OPENAI_API_KEY", **common)
    OldDeployment.objects.create(name="Entra", auth_mode="entra_id", api_key_env="", **common)

    before_the_key_rule.loader.build_graph()
    before_the_key_rule.migrate(THE_KEY_RULE)

    # The model as that migration left it: later fields do not exist yet.
    migrated = before_the_key_rule.loader.project_state(THE_KEY_RULE).apps
    rows = {d.name: d for d in migrated.get_model("chat", "Deployment").objects.all()}
    assert not rows["Secret"].enabled
    assert not rows["Secret"].is_default
    assert "SECRET_KEY is one of the app's own settings" in rows["Secret"].disabled_reason
    assert not rows["Home"].enabled
    assert "API_KEY_ENV_PATTERN" in rows["Home"].disabled_reason
    for kept in ("Fine", "Entra"):
        assert rows[kept].enabled
        assert rows[kept].disabled_reason == ""


BEFORE_BRANCHES = [("chat", "0011_attachments")]
BRANCHES = [("chat", "0012_message_branches")]


def test_linear_conversations_become_one_branch_each(transactional_db: None) -> None:
    from tests.factories import UserFactory

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_BRANCHES)
    old = executor.loader.project_state(BEFORE_BRANCHES).apps
    OldConversation = old.get_model("chat", "Conversation")
    OldMessage = old.get_model("chat", "Message")
    owner = UserFactory()
    chats = [OldConversation.objects.create(owner_id=owner.pk) for _ in range(2)]
    ids = {
        chat.pk: [
            OldMessage.objects.create(conversation=chat, role=role, text=f"{chat.pk} {n}").pk
            for n, role in enumerate(["user", "assistant"] * 3)
        ]
        for chat in chats
    }
    OldConversation.objects.create(owner_id=owner.pk)  # no messages yet
    executor.loader.build_graph()
    executor.migrate(BRANCHES)
    new = executor.loader.project_state(BRANCHES).apps
    Message = new.get_model("chat", "Message")
    Conversation = new.get_model("chat", "Conversation")
    for chat_id, message_ids in ids.items():
        parents = dict(
            Message.objects.filter(conversation_id=chat_id).values_list("id", "parent_id")
        )
        assert parents == dict(zip(message_ids, [None, *message_ids[:-1]], strict=True))
        assert Conversation.objects.get(pk=chat_id).current_leaf_id == message_ids[-1]
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
