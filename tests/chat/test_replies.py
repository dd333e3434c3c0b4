"""The relay between a reply's deltas and the tabs watching it."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from chat import llm, replies, services
from chat.models import Conversation, Message, StoredResponse


@pytest.fixture
def active_reply(db, user, sim_deployment):
    conversation = Conversation.objects.create(owner=user, deployment=sim_deployment)
    question = Message.objects.create(conversation=conversation, role="user", text="hi")
    answer = Message.objects.create(
        conversation=conversation, role="assistant", status="pending", reply_to=question
    )
    turn = services.Turn(conversation, sim_deployment, question, answer, True)
    return replies.ActiveReply(turn)


async def feed(reply: replies.ActiveReply, deltas: list[str]) -> list[str]:
    frames: list[str] = []

    async def watcher(fragment: str) -> None:
        frames.append(fragment)

    reply.watch(watcher)
    for delta in deltas:
        flushing = reply._on_delta(delta)
        if flushing is not None:
            await flushing
    await asyncio.sleep(0.12)
    return frames


def streamed_text(frames: list[str]) -> str:
    return "".join(frame.split('beforeend">', 1)[1].rsplit("</span>", 1)[0] for frame in frames)


async def test_the_first_deltas_go_out_at_once_and_a_burst_is_coalesced(
    active_reply, settings
) -> None:
    settings.CHAT_FLUSH_INTERVAL = 0.05
    frames = await feed(active_reply, ["Hel", "lo", ", ", "wor", "ld"])
    assert [streamed_text([frame]) for frame in frames[: int(replies.FLUSH_BURST)]] == ["Hel", "lo"]
    assert len(frames) == 3, "the rest of the burst shares one frame"
    assert streamed_text(frames) == "Hello, world"


async def test_deltas_arriving_at_the_flush_rate_are_not_delayed(active_reply, settings) -> None:
    settings.CHAT_FLUSH_INTERVAL = 0.02
    frames: list[str] = []

    async def watcher(fragment: str) -> None:
        frames.append(fragment)

    active_reply.watch(watcher)
    for index in range(10):
        flushing = active_reply._on_delta(f"{index} ")
        if flushing is not None:
            await flushing
        # Slightly faster than the interval, as a real stream's jitter makes it at times.
        await asyncio.sleep(0.018)
        assert len(frames) >= index, "no delta waits a whole interval behind the stream"


async def test_a_surrogate_pair_split_across_deltas_arrives_whole(active_reply) -> None:
    frames = await feed(active_reply, ["smile \ud83d", "\ude00 done"])
    text = streamed_text(frames)
    assert text == "smile 😀 done"
    text.encode("utf-8")


async def test_nul_and_lone_surrogates_from_the_model_are_dropped(active_reply) -> None:
    frames = await feed(active_reply, ["a\x00b", "\udc00c"])
    assert streamed_text(frames) == "abc"


async def test_streamed_text_is_escaped(active_reply) -> None:
    frames = await feed(active_reply, ["<script>alert(1)</script> & more"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in frames[0]
    assert "<script>" not in frames[0]


async def test_a_new_watcher_gets_exactly_what_was_sent_so_far(active_reply) -> None:
    await feed(active_reply, ["one ", "two ", "three"])

    async def late(fragment: str) -> None:
        return None

    assert active_reply.watch(late) == "one two three"


# Early requests: sent only where the turn is all but certain to use them.


@pytest.fixture
def chained(db, user, make_sim_deployment):
    """A conversation continuing from a usable stored head."""

    def make(**deployment_fields) -> Conversation:
        deployment = make_sim_deployment(**deployment_fields)
        return Conversation.objects.create(
            owner=user,
            deployment=deployment,
            head_response_id="resp_head",
            head_deployment=deployment,
            head_created_at=timezone.now(),
        )

    return make


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "why",
    ["setting off", "daily quota", "rate limit reached", "reply in flight", "head expired"],
)
async def test_no_early_request_where_the_turn_may_not_use_it(
    chained, user, settings, clean_simulator, why
) -> None:

    fields = {"daily_token_quota": 1000} if why == "daily quota" else {}
    conversation = await sync_to_async(chained)(**fields)
    if why == "setting off":
        settings.CHAT_EARLY_REQUEST = False
    if why == "rate limit reached":
        settings.CHAT_RATE_LIMIT = 1
        await sync_to_async(services.rate_limit_hit)(user=user)
    if why == "head expired":
        conversation.head_created_at = timezone.now() - conversation.deployment.remote_retention
    if why == "reply in flight":
        replies._active[conversation.pk] = object()  # type: ignore[assignment]
    try:
        assert replies.reply_early(conversation, "Next", user=user) is None
    finally:
        replies._active.pop(conversation.pk, None)
    await asyncio.sleep(0.05)
    assert clean_simulator.requests(op="create") == []


@pytest.mark.django_db(transaction=True)
async def test_an_abandoned_early_request_is_closed_and_its_copy_deleted(
    chained, user, clean_simulator
) -> None:

    conversation = await sync_to_async(chained)()
    async for event in llm.stream_reply(
        conversation.deployment,
        input="First",
        previous_response_id=None,
        instructions="",
        store=True,
    ):
        if isinstance(event, llm.Started):
            conversation.head_response_id = event.response_id
    early = replies.reply_early(conversation, "Next", user=user)
    assert early is not None
    early.abandon()
    await asyncio.gather(*replies._abandoning)

    _, sent = clean_simulator.requests(op="create")
    assert sent["json"]["previous_response_id"] == conversation.head_response_id
    row = await StoredResponse.objects.aget()
    assert row.response_id == early.named.response_id
    assert row.state == StoredResponse.State.DELETING
    assert row.conversation_id is None
