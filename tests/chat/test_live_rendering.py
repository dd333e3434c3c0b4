"""Replies shown as markdown while they stream: the same renderer and allow-list as the final
render, finished blocks rendered once, code highlighted when its fence closes."""

import random
import re

import pytest
from channels.db import database_sync_to_async

from chat import rendering
from chat.fragments import stream_append
from chat.models import Conversation
from chat.rendering import LiveMarkdown, render_markdown
from tests.chat.sockets import connect, receive_until, send_payload, wait_for_reply
from tests.chat.test_rendering import HOSTILE_HTML, assert_inert, parse
from tests.factories import UserFactory

MORE = re.compile(r'<span id="message-1-more" class="stream-more">(.*?)</span>', re.S)

HOSTILE = [
    *HOSTILE_HTML,
    "[x](javascript:alert(1))",
    "![x](javascript:alert(1))",
    "[code-block 0123456789abcdef0123456789abcdef 0]",
    "```html\n<script>alert(1)</script>\n```",
    "```\n<img src=x onerror=alert(1)>",
    "| a | <b onclick=x> |\n|---|---|\n| <script> | y |",
]

DOCUMENT = """# A heading

Some **bold** and *emphasis*, `inline code` and a [link](https://example.com).

- one
- two
  - nested

1. first
2. second

> a quote

```python
def f(x):
    return x * 2
```

| a | b |
|:--|--:|
| 1 | 2 |

The end, with ~~strike~~.
"""


def stream(text: str, *, seed: int = 0) -> list[tuple[str, tuple[str, str] | str]]:
    """Feed ``text`` in random small deltas; each delta's text so far and what was shown."""
    live = LiveMarkdown(1)
    chooser = random.Random(seed)
    shown = []
    at = 0
    while at < len(text):
        step = chooser.randint(1, 8)
        shown.append((text[: at + step], live.add(text[at : at + step])))
        at += step
    return shown


def without_more(html: str) -> str:
    return MORE.sub(r"\1", html)


def rendered(growing: str) -> str:
    """A render's growing block without its "more" span, which holds at most the space that
    the text running on after it needs."""
    (space,) = MORE.findall(growing)
    assert space in ("", " ")
    return MORE.sub("", growing)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_streamed_live_stays_inert(hostile: str) -> None:
    for source in (hostile, f"before\n\n{hostile}\n\nafter", f"- item {hostile}\n\n{hostile}"):
        for _, shown in stream(source):
            if isinstance(shown, str):
                assert parse(stream_append(1, shown)).elements[0].children == []
            else:
                finished, growing = shown
                assert_inert(finished + without_more(growing))


def test_each_render_matches_the_final_render_of_the_text_so_far() -> None:
    renders = 0
    finished_so_far = ""
    for text, shown in stream(DOCUMENT * 3, seed=4):
        if isinstance(shown, str):
            continue
        finished, growing = shown
        finished_so_far += finished
        if text.count("```") % 2 == 0:
            renders += 1
            assert finished_so_far + rendered(growing) == render_markdown(text)
    assert renders > 20


def test_finished_blocks_are_rendered_once_and_parsing_stays_flat(monkeypatch) -> None:
    parsed: list[int] = []
    parse_markdown = rendering._markdown.parse

    def measuring(source, env=None):
        parsed.append(len(source))
        return parse_markdown(source, env)

    monkeypatch.setattr(rendering._markdown, "parse", measuring)
    paragraph = "A sentence of a long reply that goes on for a while. " * 6 + "\n\n"
    reply = paragraph * 300  # about 100,000 characters, 25,000 tokens
    live = LiveMarkdown(1)
    finished = []
    for start in range(0, len(reply), 4):
        shown = live.add(reply[start : start + 4])
        if isinstance(shown, tuple) and shown[0]:
            finished.append(shown[0])
    assert max(parsed) <= 2 * len(paragraph), "only the growing block is parsed again"
    assert sum(parsed) <= 8 * len(reply), "parsing per delta does not grow with the reply"
    assert len(finished) == 299, "each finished paragraph sent once"


@pytest.mark.parametrize("ending", [" ", "\n"])
def test_text_running_on_after_a_render_keeps_the_space_before_it(ending: str) -> None:
    live = LiveMarkdown(1)
    shown = live.add(f"Say hello to the{ending}")
    assert isinstance(shown, tuple)
    _, growing = shown
    assert live.add("world") == "world", "appended, not rendered"
    visible = re.sub(r"<[^>]*>", "", growing.replace("</span>", "world</span>"))
    words = ["Say", "hello", "to", "the", "world"]
    assert visible.split() == words
    assert re.sub(r"<[^>]*>", "", without_more(live.snapshot()[1])).split() == words


def test_code_keeps_its_own_whitespace_while_its_fence_is_open() -> None:
    live = LiveMarkdown(1)
    shown = live.add("```\ncode \n")
    assert isinstance(shown, tuple)
    assert MORE.findall(shown[1]) == [""], "nothing added inside the code"


def test_code_is_highlighted_when_its_fence_closes() -> None:
    live = LiveMarkdown(1)
    open_block = live.add("```python\ndef f(x):\n    return x\n")
    assert isinstance(open_block, tuple)
    assert '<span class="k">' not in open_block[1]
    assert "def f(x):" in open_block[1]
    closed = live.add("```\n" + "x" * 40)
    assert isinstance(closed, tuple)
    assert '<span class="k">def</span>' in closed[0]


def test_a_tab_arriving_mid_reply_sees_the_text_so_far_rendered() -> None:
    live = LiveMarkdown(1)
    for part in ("# Title\n\nSome **bold** words", " and more", "."):
        live.add(part)
    finished, growing = live.snapshot()
    assert finished == "<h1>Title</h1>\n"
    assert without_more(growing) == "<p>Some <strong>bold</strong> words and more.</p>\n"


@pytest.mark.django_db(transaction=True)
async def test_markdown_streams_rendered_before_the_reply_is_saved(
    sim_deployment, clean_simulator
) -> None:
    owner = await database_sync_to_async(UserFactory)()
    conversation = await Conversation.objects.acreate(owner=owner, deployment=sim_deployment)
    communicator, _, _ = await connect(owner, conversation)
    text = "# Plan\n\nFirst **bold** step.\n\n- one\n- two\n\n" + "More words here. " * 20
    await communicator.send_to(text_data=send_payload(f"[[sim echo burst=1]]{text}"))
    frames = await receive_until(communicator, r"message-assistant status-completed")
    await communicator.disconnect()
    live_part = frames[: frames.index("message-assistant status-completed")]
    assert re.search(r'-done" hx-swap-oob="beforeend"><h1>Plan</h1>', live_part)
    assert "<p>First <strong>bold</strong> step.</p>" in live_part
    assert "<li>one</li>" in live_part
    assert re.search(r'-tail" hx-swap-oob="innerHTML"><p>More words', live_part)
    assert "<script" not in live_part
    reply = await wait_for_reply(conversation)
    assert reply.html.startswith("<h1>Plan</h1>")
