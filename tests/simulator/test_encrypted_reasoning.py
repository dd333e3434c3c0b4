"""Zero-retention reasoning, through the real SDK: the encrypted items come back with
``include``, go back verbatim with the history, and a tampered or missing one is refused."""

from typing import Any

import openai
import pytest
from openai import OpenAI


def first_turn(client: OpenAI) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    response = client.responses.create(
        model="o4-mini",
        input="Plan a picnic.",
        store=False,
        include=["reasoning.encrypted_content"],
        reasoning={"effort": "low", "summary": "auto"},
    )
    (reasoning,) = [item.model_dump() for item in response.output if item.type == "reasoning"]
    history = [
        {"role": "user", "content": "Plan a picnic."},
        {
            "id": reasoning["id"],
            "type": "reasoning",
            "summary": reasoning["summary"],
            "encrypted_content": reasoning["encrypted_content"],
        },
        {"role": "assistant", "content": response.output_text},
        {"role": "user", "content": "And if it rains?"},
    ]
    return reasoning, history


def test_encrypted_reasoning_comes_back_and_is_accepted_verbatim(client: OpenAI) -> None:
    reasoning, history = first_turn(client)
    assert reasoning["encrypted_content"]

    again = client.responses.create(model="o4-mini", input=history, store=False)
    assert again.status == "completed"


def test_without_include_there_is_nothing_to_send_back(client: OpenAI) -> None:
    response = client.responses.create(model="o4-mini", input="Hi", store=False)
    (reasoning,) = [item for item in response.output if item.type == "reasoning"]
    assert reasoning.encrypted_content is None


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        (
            lambda item: item.update(encrypted_content=item["encrypted_content"][:-2] + "xx"),
            400,
            "could not be verified",
        ),
        (lambda item: item.pop("encrypted_content"), 404, "Items are not persisted"),
        (lambda item: item.update(id="rs_someone_else"), 400, "could not be verified"),
    ],
    ids=["tampered", "missing", "another item's"],
)
def test_a_tampered_or_missing_item_is_refused(
    client: OpenAI, change: Any, status: int, message: str
) -> None:
    _, history = first_turn(client)
    change(history[1])
    with pytest.raises(openai.APIStatusError) as refused:
        client.responses.create(model="o4-mini", input=history, store=False)
    assert refused.value.status_code == status
    assert message in str(refused.value)
