"""The one place that knows which Azure regions serve the Responses API and which models chat.

Adding a region or a model is one line here; choices, validation and the gateway read it.
"""

from dataclasses import dataclass

RESPONSES_API_REGIONS: tuple[str, ...] = (
    "australiaeast",
    "eastus",
    "eastus2",
    "francecentral",
    "japaneast",
    "norwayeast",
    "polandcentral",
    "southindia",
    "swedencentral",
    "switzerlandnorth",
    "uaenorth",
    "uksouth",
    "westus",
    "westus3",
)


@dataclass(frozen=True, slots=True)
class ChatModel:
    name: str
    reasoning: bool = False
    # Reads images (input_image) and PDFs (input_file, whose pages it sees as text and images).
    vision: bool = True


CHAT_MODELS: dict[str, ChatModel] = {
    model.name: model
    for model in (
        ChatModel("gpt-5", reasoning=True),
        ChatModel("gpt-5-mini", reasoning=True),
        ChatModel("gpt-5-nano", reasoning=True),
        ChatModel("gpt-5-chat"),
        ChatModel("gpt-4o"),
        ChatModel("gpt-4o-mini"),
        ChatModel("gpt-4.1"),
        ChatModel("gpt-4.1-mini"),
        ChatModel("gpt-4.1-nano"),
        ChatModel("o1", reasoning=True),
        ChatModel("o3", reasoning=True),
        ChatModel("o3-mini", reasoning=True, vision=False),
        ChatModel("o4-mini", reasoning=True),
    )
}

# Models the Responses API serves that cannot hold a chat, with the reason shown to admins.
REFUSED_MODELS: dict[str, str] = {
    "computer-use-preview": (
        "computer-use-preview drives a computer through tool calls and does not answer chat "
        "messages; deploy a chat model such as gpt-4.1 or gpt-5 instead."
    ),
    "gpt-image-1": (
        "gpt-image-1 generates images and does not answer chat messages; deploy a chat model "
        "such as gpt-4.1 or gpt-5 instead."
    ),
}

REGION_CHOICES: list[tuple[str, str]] = [(region, region) for region in RESPONSES_API_REGIONS]
MODEL_CHOICES: list[tuple[str, str]] = [(name, name) for name in CHAT_MODELS]


def is_reasoning_model(model: str) -> bool:
    known = CHAT_MODELS.get(model)
    return known.reasoning if known else False


def reads_attachments(model: str) -> bool:
    """Whether the model takes images and PDFs; an unknown model is not sent any."""
    known = CHAT_MODELS.get(model)
    return known.vision if known else False
