"""Assistants: the presets administrators offer everyone on the new-chat page.

People's personal presets are made from their own instructions and are not listed here."""

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from chat.models import Preset


@admin.register(Preset)
class AssistantAdmin(admin.ModelAdmin[Preset]):
    list_display = ("name", "description", "deployment", "created_at")
    list_select_related = ("deployment",)
    search_fields = ("name", "description")
    fields = ("name", "description", "deployment", "instructions")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Preset]:
        return super().get_queryset(request).filter(owner__isnull=True)

    def save_model(
        self, request: HttpRequest, obj: Preset, form: ModelForm[Preset], change: bool
    ) -> None:
        obj.owner = None
        super().save_model(request, obj, form, change)
