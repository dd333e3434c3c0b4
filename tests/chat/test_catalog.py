from chat.catalog import (
    CHAT_MODELS,
    MODEL_CHOICES,
    REFUSED_MODELS,
    REGION_CHOICES,
    RESPONSES_API_REGIONS,
    is_reasoning_model,
)


def test_region_choices_are_the_responses_api_regions() -> None:
    assert [value for value, _ in REGION_CHOICES] == list(RESPONSES_API_REGIONS)
    assert "swedencentral" in RESPONSES_API_REGIONS
    assert len(set(RESPONSES_API_REGIONS)) == len(RESPONSES_API_REGIONS)


def test_model_choices_offer_chat_models_and_never_refused_ones() -> None:
    offered = {value for value, _ in MODEL_CHOICES}
    assert offered == set(CHAT_MODELS)
    assert {"gpt-4.1", "gpt-5", "o4-mini"} <= offered
    assert not offered & set(REFUSED_MODELS)


def test_refused_models_say_why_and_what_to_use() -> None:
    for model, reason in REFUSED_MODELS.items():
        assert model in reason
        assert "chat model" in reason


def test_reasoning_models_are_known() -> None:
    assert is_reasoning_model("gpt-5")
    assert is_reasoning_model("o3")
    assert not is_reasoning_model("gpt-4.1")
    assert not is_reasoning_model("gpt-5-chat")
    assert not is_reasoning_model("unknown-model")
