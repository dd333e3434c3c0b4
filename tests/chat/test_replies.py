"""The relay between a reply's deltas and the tabs watching it, and early requests."""

import asyncio
import html
import re
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from chat import llm, replies
from chat.models import Conversation, StoredResponse
from chat.rate_limits import rate_limit_hit
from chat.replies import registry, request
from chat.replies.relay import Relay


@pytest.fixture
def relay() -> Relay:
    return Relay(message_id=7)


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", fragment)).rstrip("\n")


# Where each out-of-band part of a message begins: a socket's message may carry several.
_OOB_PART = re.compile(r"(?=<(?:div|span|details)\b[^>]*\bhx-swap-oob=)")


def streamed_text(frames: list[str]) -> str:
    """The text the frames show, as the page's swaps put it together: renders of the growing
    block replace it, escaped text runs on after it, a whole replacement starts over."""
    finished, growing = "", ""
    for frame in frames:
        for part in _OOB_PART.split(frame):
            if 'hx-swap-oob="outerHTML"' in part and "-stream" in part:
                finished, growing = text_of(part), ""
            elif '-done" hx-swap-oob="beforeend">' in part:
                finished += text_of(part)
            elif '-tail" hx-swap-oob="innerHTML">' in part:
                growing = text_of(part)
            elif '-more" hx-swap-oob="beforeend">' in part:
                growing += text_of(part)
    return finished + growing


async def until(condition, *, within: float = 15) -> None:
    """Wait for a state (the watchers' tasks send in the background); returns as soon as it
    comes, and gives a loaded machine 15 s, as the socket tests do."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the state never came"
        await asyncio.sleep(0.005)


async def feed(relay: Relay, deltas: list[str]) -> list[str]:
    frames: list[str] = []

    async def watcher(fragment: str) -> None:
        frames.append(fragment)

    relay.watch(watcher)
    for delta in deltas:
        relay.add(delta)
    expected = "".join(deltas).replace("\x00", "")
    await until(
        lambda: len(streamed_text(frames)) >= len(expected) - 2 and not relay._answer.pending
    )
    return frames


async def loop_turns(count: int = 4) -> None:
    """Let the event loop run ``count`` times: a flush, then the watcher's send."""
    for _ in range(count):
        await asyncio.sleep(0)


async def test_a_delta_goes_out_at_once(relay) -> None:
    frames: list[str] = []

    async def watcher(fragment: str) -> None:
        frames.append(fragment)

    relay.watch(watcher)
    for index, delta in enumerate(["Hel", "lo", ", ", "wor", "ld"]):
        relay.add(delta)
        await loop_turns()
        assert len(frames) == index + 1, "no delta waits for a timer or for the next one"
    assert streamed_text(frames) == "Hello, world"


async def test_deltas_that_arrive_together_share_a_frame(relay) -> None:
    frames: list[str] = []

    async def watcher(fragment: str) -> None:
        frames.append(fragment)

    relay.watch(watcher)
    for delta in ["Hel", "lo", ", ", "wor", "ld"]:  # one read of the stream
        relay.add(delta)
    await loop_turns()
    assert len(frames) == 1
    assert streamed_text(frames) == "Hello, world"


async def test_a_socket_that_is_behind_catches_up_in_one_message(relay) -> None:
    frames: list[str] = []
    sending = asyncio.Event()

    async def slow(fragment: str) -> None:
        frames.append(fragment)
        await sending.wait()

    relay.watch(slow)
    for delta in ["one ", "two ", "three ", "four"]:
        relay.add(delta)
        await loop_turns()
    assert len(frames) == 1, "the first frame is still being sent"
    sending.set()
    await until(lambda: len(frames) == 2)
    assert streamed_text(frames) == "one two three four"


async def test_a_surrogate_pair_split_across_deltas_arrives_whole(relay) -> None:
    frames = await feed(relay, ["smile \ud83d", "\ude00 done"])
    text = streamed_text(frames)
    assert text == "smile 😀 done"
    text.encode("utf-8")


async def test_nul_and_lone_surrogates_from_the_model_are_dropped(relay) -> None:
    frames = await feed(relay, ["a\x00b", "\udc00c"])
    assert streamed_text(frames) == "abc"


async def test_streamed_text_is_escaped(relay) -> None:
    frames = await feed(relay, ["<script>alert(1)</script> & more"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in frames[0]
    assert "<script>" not in frames[0]


async def test_a_new_watcher_gets_exactly_what_was_sent_so_far(relay) -> None:
    await feed(relay, ["one ", "two ", "three"])
    late: list[str] = []

    async def watcher(fragment: str) -> None:
        late.append(fragment)

    relay.watch(watcher)
    relay.add(" four")
    await until(lambda: len(late) == 2)
    assert 'hx-swap-oob="outerHTML">' in late[0], "the text so far, replaced"
    assert streamed_text(late[:1]) == "one two three"
    assert streamed_text(late[1:]) == " four"


async def test_a_watcher_that_attaches_after_the_final_frame_gets_it(relay) -> None:
    await feed(relay, ["done"])
    relay.finish("<final/>")
    late: list[str] = []

    async def watcher(fragment: str) -> None:
        late.append(fragment)

    relay.watch(watcher)
    await until(lambda: late == ["<final/>"])


async def test_no_text_is_shown_while_held(relay) -> None:
    """Held while Azure's copy is not yet in the ledger; released, everything goes out."""
    frames: list[str] = []

    async def watcher(fragment: str) -> None:
        frames.append(fragment)

    relay.watch(watcher)
    relay.hold()
    relay.add("secret ")
    relay.add("until recorded")
    await asyncio.sleep(0.1)
    assert frames == []
    relay.release()
    await until(lambda: streamed_text(frames) == "secret until recorded")


async def test_a_tab_that_stops_reading_slows_nobody_and_is_told_to_catch_up(
    relay, settings
) -> None:
    settings.CHAT_WATCHER_MAX_BYTES = 10_000
    stuck = asyncio.Event()
    fell_behind = asyncio.Event()
    reader: list[str] = []

    async def never_reads(fragment: str) -> None:
        await stuck.wait()

    async def tell() -> None:
        fell_behind.set()

    async def reads(fragment: str) -> None:
        reader.append(fragment)

    relay.watch(never_reads, fell_behind=tell)
    relay.watch(reads)
    for index in range(400):
        relay.add(f"word{index} " * 10)
        await asyncio.sleep(0)
    await asyncio.wait_for(fell_behind.wait(), timeout=15)
    assert not relay.watching(never_reads), "dropped, its queue with it"
    # Every word, in order (a rendered paragraph does not keep the reply's trailing space).
    await until(lambda: streamed_text(reader).split() == relay.text().split())
    assert len(relay.text()) > 10_000, "the reply went on past the slow tab's limit"


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
    settings.CHAT_EARLY_REQUEST = why != "setting off"
    if why == "rate limit reached":
        settings.CHAT_RATE_LIMIT = 1
        settings.CHAT_RATE_WINDOW = 86_400  # windows are aligned to the clock: none ends here
        await sync_to_async(rate_limit_hit)(user=user)
    if why == "head expired":
        conversation.head_created_at = timezone.now() - conversation.deployment.remote_retention
    if why == "reply in flight":
        registry._active[conversation.pk] = SimpleNamespace(settled=False)  # type: ignore[assignment]
    try:
        assert replies.reply_early(conversation, "Next", user=user) is None
    finally:
        registry._active.pop(conversation.pk, None)
    await asyncio.sleep(0.05)
    assert clean_simulator.requests(op="create") == []


@pytest.mark.django_db(transaction=True)
async def test_an_abandoned_early_request_is_closed_and_its_copy_deleted(
    chained, user, clean_simulator, settings
) -> None:
    settings.CHAT_EARLY_REQUEST = True

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
    await asyncio.gather(*request.abandoning)

    _, sent = clean_simulator.requests(op="create")
    assert sent["json"]["previous_response_id"] == conversation.head_response_id
    row = await StoredResponse.objects.aget()
    assert row.response_id == early.named.response_id
    assert row.state == StoredResponse.State.DELETING
    assert row.conversation_id is None
