"""The ledger's admin (stored responses) and the usage page, as staff and as anyone else."""

import re
from datetime import date, timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from accounts.models import User
from azure_sim.testing import SimulatorServer
from chat.models import Deployment, Message, StoredResponse
from tests.chat.test_tasks import ledger_row, run_worker, store_remote
from tests.factories import DeploymentFactory, UserFactory

pytestmark = pytest.mark.django_db

State = StoredResponse.State
CHANGELIST = "admin:chat_storedresponse_changelist"


@pytest.fixture
def staff_client(client: Client, staff_user: User) -> Client:
    client.force_login(staff_user)
    return client


@pytest.fixture
def deployment() -> Deployment:
    return DeploymentFactory(name="GPT-4.1 Sweden")


def act(client: Client, action: str, rows: list[StoredResponse]) -> list[str]:
    response = client.post(
        reverse(CHANGELIST), {"action": action, "_selected_action": [row.pk for row in rows]}
    )
    assert response.status_code == 302
    return [str(message) for message in get_messages(response.wsgi_request)]


def states(*rows: StoredResponse) -> list[str]:
    return [StoredResponse.objects.get(pk=row.pk).state for row in rows]


def test_the_ledger_lists_rows_with_links_to_conversation_and_message(
    staff_client: Client, deployment: Deployment
) -> None:
    row = ledger_row(deployment, "resp_listed", user=UserFactory(username="ada"))
    StoredResponse.objects.filter(pk=row.pk).update(state=State.FAILED, last_error="500 oops")

    response = staff_client.get(reverse(CHANGELIST))

    html = response.content.decode()
    assert response.status_code == 200
    assert "resp_listed" in html
    assert "ada" in html
    assert "500 oops" in html
    assert reverse("admin:chat_conversation_change", args=[row.conversation_id]) in html
    assert reverse("admin:chat_message_change", args=[row.message_id]) in html
    detail = staff_client.get(reverse("admin:chat_storedresponse_change", args=[row.pk]))
    assert detail.status_code == 200
    assert "500 oops" in detail.content.decode()


def test_the_ledger_filters_and_searches(staff_client: Client, deployment: Deployment) -> None:
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    expiring = ledger_row(deployment, "resp_soon", user=ada, age=timedelta(hours=700))
    this_week = ledger_row(deployment, "resp_week", user=bob, age=timedelta(hours=600))
    later = ledger_row(deployment, "resp_later", user=bob)
    failed = ledger_row(deployment, "resp_failed", user=bob, state=State.FAILED)
    other = ledger_row(DeploymentFactory(name="Norway"), "resp_norway", user=bob)

    def listed(**query: object) -> set[str]:
        html = staff_client.get(reverse(CHANGELIST), query).content.decode()
        return set(re.findall(r">(resp_[a-z]+)<", html))

    everything = {"resp_soon", "resp_week", "resp_later", "resp_failed", "resp_norway"}
    assert listed() == everything
    assert listed(expiring="day") == {expiring.response_id}
    assert listed(expiring="week") == {expiring.response_id, this_week.response_id}
    assert listed(state__exact="failed") == {failed.response_id}
    assert listed(deployment__id__exact=other.deployment_id) == {other.response_id}
    assert listed(user__id__exact=ada.pk) == {expiring.response_id}
    assert listed(q="ada") == {expiring.response_id}
    assert listed(q="resp_lat") == {later.response_id}


def test_the_ledger_is_read_only(staff_client: Client, deployment: Deployment) -> None:
    row = ledger_row(deployment)

    assert staff_client.get(reverse("admin:chat_storedresponse_add")).status_code == 403
    delete = staff_client.post(
        reverse("admin:chat_storedresponse_delete", args=[row.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    assert StoredResponse.objects.filter(pk=row.pk).exists()


def test_delete_selected_remotely_queues_only_the_selected(
    staff_client: Client, deployment: Deployment, staff_user: User
) -> None:
    chosen, deleted, untouched = (
        ledger_row(deployment),
        ledger_row(deployment, state=State.DELETED),
        ledger_row(deployment),
    )

    (message,) = act(staff_client, "delete_remotely", [chosen, deleted])

    assert "1 deletion(s) from Azure queued" in message
    assert "1 selected copy(ies) were already" in message
    assert states(chosen, deleted, untouched) == [State.DELETING, State.DELETED, State.LIVE]
    assert StoredResponse.objects.get(pk=chosen.pk).deleted_by == staff_user
    assert DBTaskResult.objects.count() == 1


def test_delete_everything_of_a_user(staff_client: Client, deployment: Deployment) -> None:
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    selected = ledger_row(deployment, user=ada)
    also_adas = ledger_row(DeploymentFactory(), user=ada)
    bobs = ledger_row(deployment, user=bob)

    (message,) = act(staff_client, "delete_everything_of_users", [selected])

    assert message.startswith("Every copy of ada: 2 deletion(s)")
    assert states(selected, also_adas, bobs) == [State.DELETING, State.DELETING, State.LIVE]


def test_delete_everything_on_a_deployment(staff_client: Client, deployment: Deployment) -> None:
    selected = ledger_row(deployment)
    same_deployment = ledger_row(deployment)
    elsewhere = ledger_row(DeploymentFactory())

    (message,) = act(staff_client, "delete_everything_on_deployments", [selected])

    assert message.startswith("Every copy on GPT-4.1 Sweden: 2 deletion(s)")
    assert states(selected, same_deployment, elsewhere) == [
        State.DELETING,
        State.DELETING,
        State.LIVE,
    ]


def test_failed_rows_can_be_queued_again(staff_client: Client, deployment: Deployment) -> None:
    failed = ledger_row(deployment, state=State.FAILED, attempts=6, last_error="Gave up")
    live = ledger_row(deployment)

    (message,) = act(staff_client, "requeue_failed", [failed, live])

    assert "Failed copies: 1 deletion(s)" in message
    assert states(failed, live) == [State.DELETING, State.LIVE]
    failed.refresh_from_db()
    assert (failed.attempts, failed.last_error) == (0, "")


@pytest.mark.django_db(transaction=True)
def test_an_admin_deletion_finishes_on_the_simulator(
    staff_client: Client, sim_deployment: Deployment, clean_simulator: SimulatorServer
) -> None:
    row = ledger_row(sim_deployment, store_remote(clean_simulator, sim_deployment))

    act(staff_client, "delete_remotely", [row])
    run_worker()

    assert states(row) == [State.DELETED]
    assert len(clean_simulator.requests(op="delete")) == 1


def test_non_staff_never_reach_the_ledger_or_the_usage_page(
    client: Client, user: User, deployment: Deployment
) -> None:
    row = ledger_row(deployment)
    client.force_login(user)
    login = reverse("admin:login")

    for url in (
        reverse(CHANGELIST),
        reverse("admin:chat_storedresponse_change", args=[row.pk]),
        reverse("admin:chat_tokenusage_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(login)
    action = client.post(
        reverse(CHANGELIST), {"action": "delete_remotely", "_selected_action": [row.pk]}
    )
    assert action["Location"].startswith(login)
    assert states(row) == [State.LIVE]


def test_staff_without_permissions_cannot_act_on_the_ledger(
    client: Client, deployment: Deployment
) -> None:
    client.force_login(UserFactory(is_staff=True))
    row = ledger_row(deployment)

    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert client.get(reverse("admin:chat_tokenusage_changelist")).status_code == 403
    client.post(reverse(CHANGELIST), {"action": "delete_remotely", "_selected_action": [row.pk]})
    assert states(row) == [State.LIVE]


def test_the_usage_page_shows_the_table_and_an_svg_chart(
    staff_client: Client, deployment: Deployment
) -> None:
    row = ledger_row(deployment, user=UserFactory(username="ada"))
    Message.objects.filter(pk=row.message_id).update(input_tokens=1234, output_tokens=5678)
    today = row.created_at.date()

    response = staff_client.get(
        reverse("admin:chat_tokenusage_changelist"),
        {"start": (today - timedelta(days=6)).isoformat(), "end": today.isoformat()},
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "6,912 tokens in 1 replies" in html
    assert "ada" in html
    assert "GPT-4.1 Sweden" in html
    assert "1,234" in html
    assert html.count('class="chat-usage-input"') == 7
    chart = html[html.index('<figure class="chat-usage-chart">') : html.index("</figure>")]
    assert "style=" not in chart
    assert (
        reverse("admin:chat_tokenusage_changelist")
        in staff_client.get(reverse("admin:index")).content.decode()
    )


def test_the_usage_page_refuses_a_backwards_range(staff_client: Client) -> None:
    response = staff_client.get(
        reverse("admin:chat_tokenusage_changelist"),
        {"start": date(2026, 3, 2).isoformat(), "end": date(2026, 3, 1).isoformat()},
    )

    assert response.status_code == 200
    assert "The start comes after the end." in response.content.decode()
    assert "chat-usage-chart" not in response.content.decode()
