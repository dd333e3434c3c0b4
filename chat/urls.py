from django.urls import path

from chat import views

urlpatterns = [
    path("", views.home, name="home"),
    path("c/", views.conversation_list, name="conversation_list"),
    path("c/new/", views.conversation_create, name="conversation_create"),
    path("c/<int:conversation_id>/", views.conversation_detail, name="conversation_detail"),
    path("c/<int:conversation_id>/messages/", views.message_create, name="message_create"),
    path("c/<int:conversation_id>/history/", views.message_list, name="message_list"),
    path(
        "c/<int:conversation_id>/messages/<int:message_id>/retry/",
        views.message_retry,
        name="message_retry",
    ),
    path(
        "c/<int:conversation_id>/messages/<int:message_id>/edit/",
        views.message_edit,
        name="message_edit",
    ),
    path(
        "c/<int:conversation_id>/messages/<int:message_id>/regenerate/",
        views.message_regenerate,
        name="message_regenerate",
    ),
    path(
        "c/<int:conversation_id>/messages/<int:message_id>/show/",
        views.branch_show,
        name="branch_show",
    ),
    path("c/<int:conversation_id>/model/", views.conversation_model, name="conversation_model"),
    path("c/<int:conversation_id>/stop/", views.reply_stop, name="reply_stop"),
    path("c/<int:conversation_id>/rename/", views.conversation_rename, name="conversation_rename"),
    path("c/<int:conversation_id>/delete/", views.conversation_delete, name="conversation_delete"),
]
