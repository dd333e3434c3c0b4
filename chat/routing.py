from django.urls import path

from chat import consumers

websocket_urlpatterns = [
    path("ws/conversations/<int:conversation_id>/", consumers.ConversationConsumer.as_asgi()),
]
