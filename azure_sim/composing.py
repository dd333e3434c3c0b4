"""What the simulated model says: deterministic markdown replies and a rough tokenizer.

A reply depends only on the user's text (through a hash), so a test sees the same answer every
run. Replies look like a real model's: headings, lists, a fenced code block, a table, emphasis
and a link, at a chosen length in words.
"""

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

# About one token per piece, as a model streams them: a word with its leading space, a long word
# in parts, a run of up to three punctuation marks, a line break. The pieces cover every character
# exactly once, so joining them gives the text back.
_TOKEN = re.compile(
    r"[ \t]*(?:[^\W\d_]{1,7}|\d{1,3}|_|[^\w\s]{1,3})"
    r"|\n+"
    r"|[ \t]+"
    r"|\s"
)


def split_tokens(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(text))


def count_tokens(text: str) -> int:
    return sum(1 for _ in _TOKEN.finditer(text))


def seed_for(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


_TOPICS = (
    "deployment",
    "latency",
    "throughput",
    "retention",
    "quota",
    "region",
    "cache",
    "stream",
    "response",
    "pipeline",
    "policy",
    "endpoint",
    "identity",
    "budget",
    "workload",
    "replica",
    "schema",
    "index",
    "queue",
    "session",
)
_ADJECTIVES = (
    "regional",
    "stateful",
    "concurrent",
    "cached",
    "resilient",
    "bounded",
    "incremental",
    "observable",
    "isolated",
    "predictable",
)
_VERBS = (
    "reduces",
    "improves",
    "requires",
    "balances",
    "tracks",
    "limits",
    "shapes",
    "protects",
    "measures",
    "simplifies",
)
_OPENERS = (
    "In practice",
    "As a rule",
    "For most teams",
    "Under load",
    "In short",
    "Meanwhile",
    "By contrast",
    "Over time",
)
_LINK = "[the Azure OpenAI documentation](https://learn.microsoft.com/azure/ai-foundry/openai/)"


def _sentence(rng: random.Random) -> str:
    topic, other, third = rng.sample(_TOPICS, 3)
    return (
        f"{rng.choice(_OPENERS)}, the {rng.choice(_ADJECTIVES)} {topic} {rng.choice(_VERBS)} "
        f"the {other} when the {third} {rng.choice(_VERBS)} {rng.choice(_ADJECTIVES)} work."
    )


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng) for _ in range(sentences))


def _code_block(rng: random.Random) -> str:
    topic, other = rng.sample(_TOPICS, 2)
    snippets = {
        "python": (
            f"def plan_{topic}(limit: int) -> list[str]:\n"
            f'    """Spread the {topic} over the {other}."""\n'
            f'    return [f"{other}-{{n}}" for n in range(limit)]'
        ),
        "bash": (
            f"az cognitiveservices account show \\\n  --name {topic}-{other} --query properties"
        ),
        "json": (
            f'{{\n  "{topic}": {rng.randint(2, 64)},\n  "{other}": "{rng.choice(_ADJECTIVES)}"\n}}'
        ),
        "sql": f"SELECT {topic}, count(*)\nFROM {other}\nGROUP BY {topic}\nORDER BY 2 DESC;",
    }
    language = rng.choice(sorted(snippets))
    return f"```{language}\n{snippets[language]}\n```"


def _table(rng: random.Random) -> str:
    rows = [
        f"| {topic} | {rng.randint(1, 500)} | {rng.choice(_ADJECTIVES)} |"
        for topic in rng.sample(_TOPICS, 3)
    ]
    return "\n".join(["| Setting | Value | Notes |", "| --- | ---: | --- |", *rows])


def _short_reply(rng: random.Random, words: int) -> str:
    pool: list[str] = []
    while len(pool) < words:
        pool.extend(_sentence(rng).split())
    return " ".join(pool[:words]).rstrip(",.") + "."


def _long_reply(rng: random.Random, words: int) -> str:
    """Markdown blocks in the order a model tends to write them, as many as the length allows."""
    topic = rng.choice(_TOPICS)
    sections: list[Callable[[], str]] = [
        lambda: f"## Planning the {topic}",
        lambda: (
            f"Here is a **short answer**: the *{rng.choice(_ADJECTIVES)}* {topic} matters most. "
            f"{_paragraph(rng, 2)} See {_LINK} for details."
        ),
        lambda: "\n".join(
            f"- **{item.capitalize()}**: {_sentence(rng)}" for item in rng.sample(_TOPICS, 3)
        ),
        lambda: f"### Example\n\n{_code_block(rng)}",
        lambda: _table(rng),
        lambda: "\n".join(f"{n}. {_sentence(rng)}" for n in range(1, 4)),
    ]
    blocks: list[str] = []
    length = 0
    for section in sections:
        if blocks and length >= words:
            break
        blocks.append(section())
        length += len(blocks[-1].split())
    while length < words:
        blocks.append(_paragraph(rng, rng.randint(2, 4)))
        length += len(blocks[-1].split())
    if len(blocks) > len(sections):
        blocks.append(f"> **Note:** {_sentence(rng)}")
    return "\n\n".join(blocks)


@lru_cache(maxsize=2048)
def compose_reply(seed: int, words: int) -> str:
    """A markdown reply of about ``words`` words; the same seed always gives the same reply."""
    rng = random.Random(seed)  # noqa: S311 - the point is a reproducible reply, not secrecy
    return _short_reply(rng, words) if words < 80 else _long_reply(rng, words)


@lru_cache(maxsize=2048)
def compose_summary(seed: int) -> str:
    """A reasoning summary in the style the models write them: a bold title, then a paragraph."""
    rng = random.Random(seed ^ 0x5EED)  # noqa: S311 - reproducible on purpose
    topic = rng.choice(_TOPICS)
    return f"**Weighing the {topic}**\n\n{_paragraph(rng, 2)}"


def recall_reply(instructions: str | None, history: list[tuple[str, str]]) -> str:
    """Describe what the model sees, so tests can check the context a request carried."""
    lines = [f"instructions: {instructions}"] if instructions else []
    lines.extend(f"{role}: {text}" for role, text in history)
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    """Everything the simulated model will produce for one response."""

    text: str
    summary: str = ""  # the reasoning summary shown, when one was asked for
    reasoning_tokens: int = 0
    reasons: bool = False
    truncated: bool = False  # cut short by max_output_tokens


@lru_cache(maxsize=256)
def stream_tokens(text: str) -> tuple[str, ...]:
    """The tokens a reply streams in; cached because benchmarks ask the same questions often."""
    return split_tokens(text)


_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def is_reasoning_model(deployment: str) -> bool:
    name = deployment.lower()
    return name.startswith(_REASONING_PREFIXES) and not name.startswith("gpt-5-chat")


def plan_reply(
    text: str,
    *,
    reasons: bool,
    with_summary: bool,
    max_output_tokens: int | None,
) -> ReplyPlan:
    """The reply ``text`` after the hidden reasoning a reasoning model spends first."""
    summary = ""
    reasoning_tokens = 0
    if reasons:
        thought = compose_summary(seed_for(text))
        # Models think for longer than the summary they show; a fixed ratio keeps it plausible.
        reasoning_tokens = 3 * count_tokens(thought) + 16
        summary = thought if with_summary else ""
    truncated = False
    if max_output_tokens is not None:
        tokens = split_tokens(text)
        room = max(0, max_output_tokens - reasoning_tokens)
        if len(tokens) > room:
            text = "".join(tokens[:room])
            truncated = True
    return ReplyPlan(
        text=text,
        summary=summary,
        reasoning_tokens=reasoning_tokens,
        reasons=reasons,
        truncated=truncated,
    )
