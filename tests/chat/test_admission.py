"""Past what the process streams smoothly, new replies wait their turn, visibly
(chat/replies/admission.py)."""

import asyncio
import contextlib
import json
import time

import pytest
from channels.layers import get_channel_layer

from chat import fragments
from chat.models import Message
from chat.replies import admission as admission_module
from chat.replies.admission import ALWAYS_ADMITTED, Admission
from chat.replies.bridge import Bridge, tabs_group
from chat.replies.registry import reply_watch_remotely
from chat.replies.relay import Relay
from tests.chat.sockets import connect, conversation_on, receive_until, send_payload, wait_for_reply

pytestmark = pytest.mark.django_db(transaction=True)

BUSY = "The server is busy: your reply starts in a moment."


@pytest.fixture
def prompt_notice(monkeypatch) -> None:
    """The wait is told at once (not after NOTICE_AFTER_SECONDS), so the order shows it."""
    monkeypatch.setattr(admission_module, "NOTICE_AFTER_SECONDS", 0)


async def until(condition) -> None:
    """Wait for a state the gate reaches on the loop's own time (no event says so)."""
    async with asyncio.timeout(5):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)


async def entered(gate: Admission, order: list[int], name: int) -> None:
    await gate.enter(waiting=lambda: order.append(-name))
    order.append(name)


async def one_streaming_two_waiting(
    settings,
) -> tuple[Admission, list[int], asyncio.Future[None], asyncio.Future[None]]:
    """A cap of one stream: the first reply streams, the next two wait, in that order."""
    settings.CHAT_MAX_STREAMS = 1
    gate, order = Admission(), []
    await entered(gate, order, 1)
    second = asyncio.ensure_future(entered(gate, order, 2))
    third = asyncio.ensure_future(entered(gate, order, 3))
    await until(lambda: len(order) == 3)
    assert order == [1, -2, -3], "both were told they wait"
    return gate, order, second, third


async def test_past_the_cap_replies_wait_first_come_first_served(settings, prompt_notice) -> None:
    gate, order, second, third = await one_streaming_two_waiting(settings)
    gate.leave()
    await asyncio.wait_for(second, 5)
    assert not third.done()
    gate.leave()
    await asyncio.wait_for(third, 5)
    assert order == [1, -2, -3, 2, 3]
    assert gate.streaming == 1


async def test_a_reply_cancelled_while_waiting_gives_up_its_place(settings, prompt_notice) -> None:
    gate, order, second, third = await one_streaming_two_waiting(settings)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    gate.leave()
    await asyncio.wait_for(third, 5)
    assert order == [1, -2, -3, 3]
    assert gate.streaming == 1


async def test_a_short_wait_is_not_told(settings) -> None:
    settings.CHAT_MAX_STREAMS = 1
    gate, order = Admission(), []
    await entered(gate, order, 1)
    second = asyncio.ensure_future(entered(gate, order, 2))
    await until(lambda: gate._waiting)
    gate.leave()
    await asyncio.wait_for(second, 5)
    assert order == [1, 2], "no line flickers for a wait shorter than NOTICE_AFTER_SECONDS"


async def test_no_reply_waits_past_the_longest_wait(settings, monkeypatch, prompt_notice) -> None:
    settings.CHAT_MAX_STREAMS = 1
    monkeypatch.setattr(admission_module, "MAX_WAIT_SECONDS", 0.2)
    gate, order = Admission(), []
    await entered(gate, order, 1)
    await asyncio.wait_for(entered(gate, order, 2), 5)
    assert order == [1, -2, 2]
    assert gate.streaming == 2


async def test_while_the_loop_lags_new_replies_wait_and_start_once_it_keeps_time(
    settings, prompt_notice
) -> None:
    settings.CHAT_MAX_STREAMS = 0
    settings.CHAT_ADMISSION_LAG_MS = 20
    gate, order = Admission(), []
    for name in range(1, ALWAYS_ADMITTED + 2):
        await entered(gate, order, name)
    assert all(name > 0 for name in order), "a loop that keeps time admits at once"
    # The loop falls behind: one callback holds it for 150 ms.
    asyncio.get_running_loop().call_soon(time.sleep, 0.15)
    await until(lambda: gate.lag >= 0.02)
    late = asyncio.ensure_future(entered(gate, order, 9))
    await until(lambda: order[-1] != ALWAYS_ADMITTED + 1)
    assert order[-1] == -9, "it waits while the loop lags"
    # Nothing ends; the loop keeps time again and the lag fades.
    await asyncio.wait_for(late, 5)
    assert order[-1] == 9
    assert gate.lag < 0.02


async def test_a_busy_process_shows_the_wait_and_starts_the_reply_after(
    owner, make_sim_deployment, clean_simulator, settings
) -> None:
    settings.CHAT_MAX_STREAMS = 1
    slow = await conversation_on(owner, make_sim_deployment, options="tps=100,words=60")
    waiting = await conversation_on(owner, make_sim_deployment, options="tps=400,words=20")
    first, _, _ = await connect(owner, slow)
    second, _, _ = await connect(owner, waiting)
    await first.send_to(text_data=send_payload("A long answer, please"))
    await receive_until(first, r'hx-swap-oob="beforeend">[^<]')
    await second.send_to(text_data=send_payload("[[sim echo]]Me next"))
    frames = await receive_until(second, BUSY)
    assert "message-assistant status-pending" in frames, "the turn itself is saved and shown"
    frames = await receive_until(second, r"message-assistant status-completed", within=20)
    assert 'class="message-queued" hx-swap-oob="outerHTML" hidden' in frames, "the line goes"
    assert (await wait_for_reply(slow)).status == Message.Status.COMPLETED
    reply = await wait_for_reply(waiting)
    assert reply.status == Message.Status.COMPLETED
    assert reply.text == "Me next"
    await first.disconnect()
    await second.disconnect()


async def test_stop_while_waiting_saves_the_reply_as_stopped(
    owner, make_sim_deployment, clean_simulator, settings
) -> None:
    settings.CHAT_MAX_STREAMS = 1
    slow = await conversation_on(owner, make_sim_deployment, options="tps=40,words=200")
    waiting = await conversation_on(owner, make_sim_deployment)
    first, _, _ = await connect(owner, slow)
    second, _, _ = await connect(owner, waiting)
    await first.send_to(text_data=send_payload("A long answer, please"))
    await receive_until(first, r'hx-swap-oob="beforeend">[^<]')
    await second.send_to(text_data=send_payload("Me next"))
    await receive_until(second, BUSY)
    reply_id = (await Message.objects.filter(conversation=waiting, role="assistant").alast()).pk
    await second.send_to(text_data=json.dumps({"action": "stop", "message_id": reply_id}))
    frames = await receive_until(second, r"status-cancelled")
    assert "You stopped this reply." in frames
    assert (await wait_for_reply(waiting)).status == Message.Status.CANCELLED
    requests = clean_simulator.requests(op="create")
    assert len(requests) == 1, "the model was never asked for the stopped reply"
    await first.disconnect()
    await second.disconnect()


async def test_a_tab_in_another_process_that_starts_watching_a_waiting_reply_is_told() -> None:
    """A tab served elsewhere asks the reply's process over the channel layer for the reply so
    far: while the reply waits, that includes the busy line; once it starts, the line is gone."""
    relay = Relay(message_id=7001)
    bridge = Bridge(conversation_id=7002, message_id=7001, stop=lambda: None, shown=relay.shown)
    layer = get_channel_layer()
    tab = await layer.new_channel()
    await layer.group_add(tabs_group(7002), tab)
    listening = asyncio.ensure_future(bridge.listen())

    async def progress_on_watch() -> str:
        # The bridge joins its control group on its own time: ask until it answers.
        async with asyncio.timeout(10):
            while True:
                await reply_watch_remotely(conversation_id=7002, message_id=7001)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        event = await layer.receive(tab)
                        assert event["type"] == "reply.progress"
                        return str(event["fragment"])

    try:
        relay.announce(fragments.reply_queued(7001, queued=True), lasting=True)
        assert BUSY in await progress_on_watch()
        relay.announce(fragments.reply_queued(7001, queued=False), lasting=False)
        assert BUSY not in await progress_on_watch()
    finally:
        listening.cancel()
        await layer.group_discard(tabs_group(7002), tab)
