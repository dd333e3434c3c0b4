from typing import Any

from django import forms
from django.conf import settings
from django.core.validators import MaxLengthValidator

from chat.models import Conversation, Deployment


class MessageForm(forms.Form):
    """A user's message: the same form validates the websocket payload and the HTTP fallback."""

    text = forms.CharField(
        label="Message",
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 1, "placeholder": "Message the model…", "autocomplete": "off"}
        ),
        error_messages={"required": "Type a message before sending."},
    )
    client_id = forms.UUIDField(
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": "The page sent a malformed message id; reload the page."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = settings.CHAT_MAX_MESSAGE_CHARS
        self.fields["text"].validators.append(
            MaxLengthValidator(
                limit,
                message=f"That message is too long: at most {limit:,} characters "
                "(it has %(show_value)s). Shorten it or split it into parts.",
            )
        )

    def clean_text(self) -> str:
        text: str = self.cleaned_data["text"]
        if not text.strip():
            raise forms.ValidationError("Type a message before sending.")
        if "\x00" in text:
            raise forms.ValidationError("The message contains a NUL character; remove it.")
        return text


class NewConversationForm(MessageForm):
    deployment = forms.ModelChoiceField(
        label="Model",
        queryset=Deployment.objects.none(),
        empty_label=None,
        error_messages={"invalid_choice": "That model is no longer available; pick another."},
    )
    instructions = forms.CharField(
        label="Instructions",
        required=False,
        strip=True,
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "placeholder": "Optional: how the model should answer (system prompt)",
            }
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        deployments = Deployment.objects.filter(enabled=True).order_by("-is_default", "name")
        field = self.fields["deployment"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = deployments
        self.fields["instructions"].validators.append(
            MaxLengthValidator(settings.CHAT_MAX_INSTRUCTIONS_CHARS)
        )
        if not self.is_bound:
            default = next((d for d in deployments if d.is_default), None)
            if default is not None:
                self.initial.setdefault("deployment", default.pk)
                self.initial.setdefault("instructions", default.default_instructions)


class RenameForm(forms.ModelForm[Conversation]):
    class Meta:
        model = Conversation
        fields = ("title",)
        labels = {"title": "Title"}

    def clean_title(self) -> str:
        title: str = self.cleaned_data["title"].strip()
        if not title:
            raise forms.ValidationError("A title cannot be empty.")
        return title
