"""The one place that knows which Azure regions serve the Responses API and which models chat.

Adding a region or a model is one line here; choices, validation and the gateway read it.
"""

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy, pgettext_lazy

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
REFUSED_MODELS: dict[str, Promise] = {
    "computer-use-preview": gettext_lazy(
        "computer-use-preview drives a computer through tool calls and does not answer chat "
        "messages; deploy a chat model such as gpt-4.1 or gpt-5 instead."
    ),
    "gpt-image-1": gettext_lazy(
        "gpt-image-1 generates images and does not answer chat messages; deploy a chat model "
        "such as gpt-4.1 or gpt-5 instead."
    ),
}

REASONING_EFFORTS: tuple[str, ...] = ("minimal", "low", "medium", "high")

REGION_CHOICES: list[tuple[str, str]] = [(region, region) for region in RESPONSES_API_REGIONS]
MODEL_CHOICES: list[tuple[str, str]] = [(name, name) for name in CHAT_MODELS]
REASONING_EFFORT_CHOICES: list[tuple[str, Promise]] = [
    ("minimal", pgettext_lazy("reasoning effort", "Minimal")),
    ("low", pgettext_lazy("reasoning effort", "Low")),
    ("medium", pgettext_lazy("reasoning effort", "Medium")),
    ("high", pgettext_lazy("reasoning effort", "High")),
]


def is_reasoning_model(model: str) -> bool:
    known = CHAT_MODELS.get(model)
    return known.reasoning if known else False


def reasoning_efforts(model: str) -> tuple[str, ...]:
    """The reasoning efforts ``model`` takes, least first; none for a model that does not
    reason. Only the gpt-5 family reasons at "minimal"."""
    if not is_reasoning_model(model):
        return ()
    return REASONING_EFFORTS if model.startswith("gpt-5") else REASONING_EFFORTS[1:]


def reasoning_effort_for(model: str, *choices: str) -> str | None:
    """The first of ``choices`` (the conversation's, then the deployment's) that ``model``
    takes; None leaves the effort to the model."""
    efforts = reasoning_efforts(model)
    return next((choice for choice in choices if choice in efforts), None)


def reads_attachments(model: str) -> bool:
    """Whether the model takes images and PDFs; an unknown model is not sent any."""
    known = CHAT_MODELS.get(model)
    return known.vision if known else False
