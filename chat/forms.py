import re
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.utils.formats import number_format
from django.utils.translation import gettext, gettext_lazy as _

from accounts.models import User
from chat.models import Conversation, Deployment
from chat.selectors import usable_deployments

SEARCH_MAX_CHARS = 200
# Half of a UTF-16 surrogate pair on its own: JSON can carry one ("\ud83d"), UTF-8 cannot.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def validate_storable_text(value: str) -> None:
    """Refuse text the database cannot keep: a lone surrogate cannot be encoded as UTF-8, so
    saving it would fail. (Django's CharField already refuses NUL characters, which PostgreSQL
    cannot store either.)"""
    if _LONE_SURROGATE.search(value):
        raise ValidationError(
            gettext(
                "The text contains a broken character (half of an emoji or symbol, often left "
                "by a copy and paste); remove it, or type that character again."
            ),
            code="lone_surrogate",
        )


class SearchField(forms.CharField):
    """A search box: characters no stored text can contain are dropped, not refused, so the
    search simply runs on the rest."""

    def to_python(self, value: Any) -> str:
        text = super().to_python(value) or ""
        return _LONE_SURROGATE.sub("", text.replace("\x00", ""))[:SEARCH_MAX_CHARS].strip()


class SearchForm(forms.Form):
    q = SearchField(required=False, max_length=None)

    def query(self) -> str:
        return self.cleaned_data["q"] if self.is_valid() else ""


class AttachmentIdsField(forms.Field):
    """The composer's draft attachments (``attachments``, repeated): their ids, each once.
    Whose they are is the turn's to check."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        values = [value] if isinstance(value, str) else list(value or [])
        if not all(isinstance(v, str) and v.isdigit() for v in values):
            raise ValidationError(
                "The page sent a malformed attachment; reload the page.", code="invalid"
            )
        return list(dict.fromkeys(int(v) for v in values))


class MessageForm(forms.Form):
    """A user's message: the same form validates the websocket payload and the HTTP fallback.

    Text, files (``attachments``), or both."""

    text = forms.CharField(
        label=_("Message"),
        required=False,
        strip=False,
        validators=[validate_storable_text],
        widget=forms.Textarea(
            attrs={"rows": 1, "placeholder": _("Message the model…"), "autocomplete": "off"}
        ),
    )
    attachments = AttachmentIdsField(required=False)
    client_id = forms.UUIDField(
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": _("The page sent a malformed message id; reload the page.")},
    )
    # The composer's model picker: the next turn goes to this deployment (empty: as before).
    deployment = forms.ModelChoiceField(
        label=_("Model"),
        queryset=Deployment.objects.none(),
        required=False,
        error_messages={"invalid_choice": _("That model is no longer available; pick another.")},
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if user is not None:
            field = self.fields["deployment"]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = usable_deployments(user)
        limit = settings.CHAT_MAX_MESSAGE_CHARS
        self.fields["text"].validators.append(
            MaxLengthValidator(
                limit,
                # The validator fills in show_value itself, when it refuses.
                message=gettext(
                    "That message is too long: at most %(limit)s characters "
                    "(it has %(show_value)s). Shorten it or split it into parts."
                )
                % {
                    "limit": number_format(limit, force_grouping=True),
                    "show_value": "%(show_value)s",
                },
            )
        )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if "text" in cleaned and not cleaned["text"].strip():
            cleaned["text"] = ""
            if not cleaned.get("attachments"):
                self.add_error("text", gettext("Type a message before sending."))
        return cleaned


class DeploymentSelect(forms.Select):
    """The model picker: each option says what Azure keeps of its conversations."""

    def create_option(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option: dict[str, Any] = super().create_option(*args, **kwargs)
        deployment = getattr(option["value"], "instance", None)
        if isinstance(deployment, Deployment):
            option["attrs"]["data-retention"] = deployment.retention_label
            option["attrs"]["data-store-policy"] = deployment.store_policy
        return option


class NewConversationForm(MessageForm):
    deployment = forms.ModelChoiceField(
        label=_("Model"),
        queryset=Deployment.objects.none(),
        empty_label=None,
        widget=DeploymentSelect(attrs={"aria-describedby": "store-note"}),
        error_messages={"invalid_choice": _("That model is no longer available; pick another.")},
    )
    instructions = forms.CharField(
        label=_("Instructions"),
        required=False,
        strip=True,
        validators=[validate_storable_text],
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "placeholder": _("Optional: how the model should answer (system prompt)"),
            }
        ),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        deployments = Deployment.objects.usable_by(user).order_by("-is_default", "name")
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

    def chosen_deployment(self) -> Deployment | None:
        """The deployment the picker shows as chosen, for the note on what Azure keeps."""
        field = self.fields["deployment"]
        assert isinstance(field, forms.ModelChoiceField)
        deployments = list(field.queryset or [])
        chosen = str(self["deployment"].value() or "")
        return next((d for d in deployments if str(d.pk) == chosen), next(iter(deployments), None))


class InstructionsForm(forms.ModelForm[Conversation]):
    """A conversation's instructions (system prompt), changed at any time: they are sent with
    every request, so the next turn follows them."""

    class Meta:
        model = Conversation
        fields = ("instructions",)
        widgets = {
            "instructions": forms.Textarea(
                attrs={"rows": 4, "placeholder": _("How the model should answer (system prompt)")}
            )
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["instructions"].validators += [
            validate_storable_text,
            MaxLengthValidator(settings.CHAT_MAX_INSTRUCTIONS_CHARS),
        ]
        self.fields["instructions"].widget.attrs["maxlength"] = settings.CHAT_MAX_INSTRUCTIONS_CHARS


class RenameForm(forms.ModelForm[Conversation]):
    class Meta:
        model = Conversation
        fields = ("title",)
        labels = {"title": _("Title")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["title"].validators.append(validate_storable_text)

    def clean_title(self) -> str:
        title: str = self.cleaned_data["title"].strip()
        if not title:
            raise forms.ValidationError(gettext("A title cannot be empty."))
        return title


class ModelPickForm(forms.Form):
    """The composer's model picker, changed on its own: the conversation's next turn goes to
    the deployment picked."""

    deployment = forms.ModelChoiceField(
        queryset=Deployment.objects.none(),
        error_messages={"invalid_choice": _("That model is no longer available; pick another.")},
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["deployment"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = usable_deployments(user)


class ReasoningEffortForm(forms.Form):
    """The composer's effort picker: one of the efforts the conversation's model takes, or ""
    for the deployment's default."""

    reasoning_effort = forms.ChoiceField(
        required=False,
        error_messages={"invalid_choice": "This model does not take that effort; pick another."},
    )

    def __init__(self, *args: Any, deployment: Deployment | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["reasoning_effort"]
        assert isinstance(field, forms.ChoiceField)
        efforts = deployment.reasoning_effort_choices if deployment is not None else []
        field.choices = [("", "Default"), *efforts]
