import re

import pytest

from azure_sim.composing import (
    compose_reply,
    count_tokens,
    is_reasoning_model,
    plan_reply,
    seed_for,
    split_tokens,
)
from azure_sim.options import extract_directives, parse_option_text

SAMPLES = [
    "",
    "plain words here",
    "internationalization_of   tabs\tand\r\nwindows lines\n\n\n",
    "ünïcödé 日本語のテキスト emoji 🎉🎉 and ```code``` | tables |",
    "1234567 numbers, 3.14159 and snake_case_names",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_tokens_join_back_to_the_text(text: str) -> None:
    tokens = split_tokens(text)

    assert "".join(tokens) == text
    assert count_tokens(text) == len(tokens)


def test_tokens_are_word_sized() -> None:
    tokens = split_tokens(compose_reply(seed_for("anything"), 300))

    assert max(len(token.strip()) for token in tokens) <= 7
    assert sum(len(token) for token in tokens) / len(tokens) < 6


def test_long_reply_has_real_markdown() -> None:
    reply = compose_reply(seed_for("What should we plan?"), 300)

    assert re.search(r"^## \w", reply, re.MULTILINE)
    assert re.search(r"^- \*\*\w+\*\*:", reply, re.MULTILINE)
    assert re.search(r"^1\. ", reply, re.MULTILINE)
    assert re.search(r"^```(python|bash|json|sql)\n.+?\n```$", reply, re.MULTILINE | re.DOTALL)
    assert re.search(r"^\| Setting \| Value \| Notes \|\n\| --- \|", reply, re.MULTILINE)
    assert re.search(r"\*[a-z]+\*", reply)
    assert re.search(r"\[[^\]]+\]\(https://[^)]+\)", reply)


@pytest.mark.parametrize("words", [1, 7, 79, 80, 300, 1000])
def test_reply_length_follows_words(words: int) -> None:
    count = len(compose_reply(seed_for("x"), words).split())

    assert words <= count <= words * 1.25 + 40


def test_reasoning_models_are_recognised_by_name() -> None:
    names = ["o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-chat", "gpt-4.1", "gpt-4o"]

    assert [is_reasoning_model(name) for name in names] == [True] * 5 + [False] * 3


def test_max_output_tokens_counts_reasoning_first() -> None:
    plan = plan_reply("one two three four", reasons=True, with_summary=False, max_output_tokens=2)

    assert plan.text == ""
    assert plan.truncated


def test_option_text_parsing() -> None:
    assert parse_option_text(" ttft_ms=0; fault=rate_limit ,echo ") == {
        "ttft_ms": "0",
        "fault": "rate_limit",
        "echo": "true",
    }


def test_later_directives_win_and_all_are_removed() -> None:
    text, options = extract_directives("[[sim words=5]]\nHello [[sim words=9 echo]] there")

    assert text == "Hello there"
    assert options == {"words": "9", "echo": "true"}


def test_text_that_only_looks_like_a_directive_is_kept() -> None:
    text, options = extract_directives("[[simulate]] and [[ sim x=1]]")

    assert text == "[[simulate]] and [[ sim x=1]]"
    assert options == {}
