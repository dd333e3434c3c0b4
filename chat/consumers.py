from channels.generic.websocket import AsyncWebsocketConsumer


class ConversationConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.close(code=4403)
