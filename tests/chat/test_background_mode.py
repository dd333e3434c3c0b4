"""Background mode: a dropped stream resumes from Azure's copy, Stop cancels on Azure, and a
reply whose process is gone is taken over by another and finished from where it was."""

import asyncio
import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone
from openai import OpenAI

from chat import replies
from chat.models import Message, StoredResponse
from chat.replies.registry import reply_take_over
from chat.saving import replies_take_over
from tests.chat.sockets import (
    connect,
    conversation_on,
    model_requests,
    receive_until,
    send_payload,
    wait_for_reply,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _stored_text(simulator, response_id: str) -> str:
    with OpenAI(base_url=simulator.openai_base_url, api_key=simulator.api_key) as client:
        return client.responses.retrieve(response_id).output_text


async def _logged(simulator, op: str, *, named: bool = False) -> list[dict]:
    """The simulator's requests of ``op``, once there is one (with ``named``, once the last
    has made its response: a create the simulator may still keep waiting, ``accept_ms``)."""
    for _ in range(400):
        logged = simulator.requests(op=op)
        if logged and (not named or logged[-1].get("response_id")):
            return logged
        await asyncio.sleep(0.025)
    raise AssertionError(f"no {op} request reached the simulator")


async def _stop(communicator, conversation) -> Message:
    pending = await Message.objects.filter(conversation=conversation, role="assistant").alast()
    await communicator.send_to(text_data=json.dumps({"action": "stop", "message_id": pending.pk}))
    return await wait_for_reply(conversation)


async def test_a_dropped_background_stream_resumes_with_nothing_lost_or_repeated(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment, background_mode=True)
    communicator, _, _ = await connect(owner, conversation)

    await communicator.send_to(text_data=send_payload("[[sim fault=cut after=5]] Hello"))
    reply = await wait_for_reply(conversation)

    assert reply.status == Message.Status.COMPLETED, reply.error
    assert model_requests(clean_simulator)[0]["background"] is True
    resumed = clean_simulator.requests(op="retrieve")
    assert resumed
    assert resumed[0]["query"]["stream"] == "true"
    assert int(resumed[0]["query"]["starting_after"]) > 5
    stored = await asyncio.to_thread(_stored_text, clean_simulator, reply.response_id)
    assert reply.text == stored
    assert reply.resume_response_id == ""
    await communicator.disconnect()


async def test_without_background_mode_a_dropped_stream_stays_cut_short(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment)
    communicator, _, _ = await connect(owner, conversation)

    await communicator.send_to(text_data=send_payload("[[sim fault=cut after=5]] Hello"))
    reply = await wait_for_reply(conversation)

    assert reply.status == Message.Status.INCOMPLETE
    assert "background" not in model_requests(clean_simulator)[0]
    await communicator.disconnect()


async def test_stop_cancels_a_background_reply_on_azure(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(
        owner, make_sim_deployment, background_mode=True, options="tps=20"
    )
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=send_payload("Hello"))
    # Text has arrived: Azure has named the response (the turn's frame alone says nothing).
    await receive_until(communicator, r'-more" hx-swap-oob="beforeend">[^<]')

    reply = await _stop(communicator, conversation)
    cancels = await _logged(clean_simulator, "cancel")

    assert reply.status == Message.Status.CANCELLED
    assert [entry["path"] for entry in cancels] == [
        f"/openai/v1/responses/{reply.response_id}/cancel"
    ]
    with OpenAI(base_url=clean_simulator.openai_base_url, api_key=clean_simulator.api_key) as sdk:
        assert (await asyncio.to_thread(sdk.responses.retrieve, reply.response_id)).status == (
            "cancelled"
        )
    await communicator.disconnect()


@pytest.mark.parametrize("background", [True, False], ids=["background", "foreground"])
async def test_stop_before_azure_names_the_response_still_puts_its_copy_in_the_ledger(
    owner, make_sim_deployment, clean_simulator, background
) -> None:
    conversation = await conversation_on(
        owner, make_sim_deployment, background_mode=background, options="accept_ms=2000,tps=20"
    )
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(text_data=send_payload("Hello"))
    # The simulator keeps the request waiting: Azure has a copy the app was not told of.
    response_id = str((await _logged(clean_simulator, "create", named=True))[-1]["response_id"])

    reply = await _stop(communicator, conversation)
    await communicator.disconnect()

    assert reply.status == Message.Status.CANCELLED
    assert reply.text == ""
    assert reply.response_id == response_id
    assert await StoredResponse.objects.filter(response_id=response_id).aexists(), (
        "the copy Azure made is in the ledger, to be deleted"
    )
    if background:
        assert [entry["path"] for entry in await _logged(clean_simulator, "cancel")] == [
            f"/openai/v1/responses/{response_id}/cancel"
        ], "a background reply would go on generating (and cost) on Azure"


async def test_stop_while_a_refused_request_waits_to_be_retried_sends_no_other(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(owner, make_sim_deployment)
    communicator, _, _ = await connect(owner, conversation)
    await communicator.send_to(
        text_data=send_payload("[[sim fault=rate_limit retry_after_ms=3000 times=1]] Hello")
    )
    await _logged(clean_simulator, "create")

    reply = await _stop(communicator, conversation)
    await communicator.disconnect()

    assert reply.status == Message.Status.CANCELLED
    assert len(model_requests(clean_simulator)) == 1, "nothing is sent after Stop"
    assert not await StoredResponse.objects.filter(conversation=conversation).aexists()


async def test_a_reply_whose_process_is_gone_is_taken_over_and_finished(
    owner, make_sim_deployment, clean_simulator
) -> None:
    conversation = await conversation_on(
        owner, make_sim_deployment, background_mode=True, options="tps=400"
    )
    deployment = conversation.deployment

    def begin() -> tuple[str, int, str]:
        """What the gone process had: the first deltas of a background stream."""
        with OpenAI(base_url=clean_simulator.openai_base_url, api_key=clean_simulator.api_key) as c:
            stream = c.responses.create(
                model=deployment.deployment_name, input="Hello", background=True, stream=True
            )
            seen = []
            for event in stream:
                seen.append(event)
                if sum(e.type == "response.output_text.delta" for e in seen) == 4:
                    break
            stream.close()
        text = "".join(e.delta for e in seen if e.type == "response.output_text.delta")
        return seen[0].response.id, seen[-1].sequence_number, text

    response_id, after, partial = await asyncio.to_thread(begin)
    question = await Message.objects.acreate(conversation=conversation, role="user", text="Hello")
    await Message.objects.acreate(
        conversation=conversation,
        role="assistant",
        status=Message.Status.STREAMING,
        reply_to=question,
        parent=question,
        deployment=deployment,
        text=partial,
        resume_response_id=response_id,
        resume_after=after,
        alive_until=timezone.now() - timedelta(seconds=1),
    )

    taken = await database_sync_to_async(replies_take_over)()
    again = await database_sync_to_async(replies_take_over)()
    assert len(taken) == 1
    assert again == [], "one claim wins"
    reply_take_over(taken[0])
    reply = await wait_for_reply(conversation)

    assert reply.status == Message.Status.COMPLETED, reply.error
    assert reply.response_id == response_id
    assert reply.text == await asyncio.to_thread(_stored_text, clean_simulator, response_id)
    assert clean_simulator.requests(op="retrieve")[0]["query"]["starting_after"] == str(after)
    assert replies.active_reply(conversation.pk) is None
