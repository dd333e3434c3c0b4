"""Forms of keeping one's work: feedback on a reply, and saving instructions as a preset."""

from django import forms
from django.utils.translation import gettext, gettext_lazy as _

from chat.forms import validate_storable_text
from chat.models import Feedback

FEEDBACK_COMMENT_CHARS = 2000


class FeedbackForm(forms.Form):
    rating = forms.ChoiceField(choices=Feedback.Rating.choices)
    comment = forms.CharField(
        label=_("Comment (optional)"),
        required=False,
        max_length=FEEDBACK_COMMENT_CHARS,
        validators=[validate_storable_text],
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    share = forms.BooleanField(
        label=_("Share this conversation with the administrators"), required=False
    )


class PresetSaveForm(forms.Form):
    name = forms.CharField(
        label=_("Preset name"), max_length=100, validators=[validate_storable_text]
    )
    description = forms.CharField(
        label=_("Description"), required=False, max_length=300, validators=[validate_storable_text]
    )

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(gettext("Give the preset a name."))
        return name
