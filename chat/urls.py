from django.urls import path

from chat import attachment_views, keeping_views, picker_views, turn_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("c/", views.conversation_list, name="conversation_list"),
    path("c/new/", views.conversation_create, name="conversation_create"),
    path("c/<int:conversation_id>/", views.conversation_detail, name="conversation_detail"),
    path("c/<int:conversation_id>/messages/", turn_views.message_create, name="message_create"),
    path("c/<int:conversation_id>/history/", views.message_list, name="message_list"),
    path(
        "c/<int:conversation_id>/messages/<int:message_id>/retry/",
        turn_views.message_retry,
        name="message_retry",
    ),
    path(
        "c/<int:conversation_id>/messages/<int:message_id>/edit/",
        turn_views.message_edit,
        name="message_edit",
    ),
    path(
        "c/<int:conversation_id>/messages/<int:message_id>/regenerate/",
        turn_views.message_regenerate,
        name="message_regenerate",
    ),
    path(
        "c/<int:conversation_id>/messages/<int:message_id>/show/",
        turn_views.branch_show,
        name="branch_show",
    ),
    path(
        "c/<int:conversation_id>/model/",
        picker_views.conversation_model,
        name="conversation_model",
    ),
    path(
        "c/<int:conversation_id>/effort/",
        picker_views.conversation_effort,
        name="conversation_effort",
    ),
    path("c/<int:conversation_id>/stop/", turn_views.reply_stop, name="reply_stop"),
    path("c/<int:conversation_id>/rename/", views.conversation_rename, name="conversation_rename"),
    path("c/<int:conversation_id>/delete/", views.conversation_delete, name="conversation_delete"),
    path(
        "c/<int:conversation_id>/export.<str:extension>",
        keeping_views.conversation_export,
        name="conversation_export",
    ),
    path("c/export.json", keeping_views.account_export, name="account_export"),
    path("c/<int:conversation_id>/pin/", keeping_views.conversation_pin, name="conversation_pin"),
    path(
        "c/<int:conversation_id>/archive/",
        keeping_views.conversation_archive,
        name="conversation_archive",
    ),
    path(
        "c/<int:conversation_id>/messages/<int:message_id>/feedback/",
        keeping_views.message_feedback,
        name="message_feedback",
    ),
    path("c/<int:conversation_id>/preset/", keeping_views.preset_save, name="preset_save"),
    path("presets/<int:preset_id>/delete/", keeping_views.preset_delete, name="preset_delete"),
    path("attachments/", attachment_views.attachment_upload, name="attachment_upload"),
    path(
        "attachments/<int:attachment_id>/",
        attachment_views.attachment_file,
        name="attachment_file",
    ),
    path(
        "attachments/<int:attachment_id>/remove/",
        attachment_views.attachment_remove,
        name="attachment_remove",
    ),
    path(
        "c/<int:conversation_id>/instructions/",
        views.conversation_instructions,
        name="conversation_instructions",
    ),
]
