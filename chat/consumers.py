"""The conversation websocket: thin. It authorises, parses, and hands turns to the services."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import QueryDict

from accounts.sockets import session_group, session_is_current, user_group
from chat import fragments, replies, services, socket_slots
from chat.forms import MessageForm
from chat.models import Conversation, Message

logger = logging.getLogger(__name__)

# Close codes in the 4000 range: the ws extension does not reconnect on them.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_MANY_SOCKETS = 4429
MAX_FRAME_BYTES = 256 * 1024
SESSION_ENDED_NOTICES = {
    "signed_out": "You signed out in another tab. Reload the page to sign in again.",
    "password_changed": "Your password was changed. Reload the page to continue.",
    "deactivated": "Your account was deactivated. Ask an administrator for access.",
}
SESSION_EXPIRED_NOTICE = "Your session has ended. Reload the page to sign in again."


class FrameRefused(Exception):
    """A frame the consumer will not act on; ``message`` tells the person why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _owned_conversation(user: Any, conversation_id: int) -> Conversation | None:
    return (
        Conversation.objects.for_user(user)
        .select_related("deployment")
        .filter(pk=conversation_id)
        .first()
    )


def _latest_reply(conversation_id: int) -> Message | None:
    return (
        Message.objects.filter(conversation_id=conversation_id, role=Message.Role.ASSISTANT)
        .select_related("deployment")
        .order_by("-id")
        .first()
    )


def _render_message(message_id: int, conversation_id: int) -> str:
    message = Message.objects.filter(pk=message_id, conversation_id=conversation_id).first()
    return fragments.message(message) if message is not None else ""


def _turn_fragment(conversation: Conversation, messages: list[Message], *, replace: bool) -> str:
    """A turn's messages, appended (a new turn) or replacing their old selves (a retry), and the
    reply controls to match."""
    if replace:
        shown = "".join(fragments.message(m) for m in messages)
    else:
        shown = fragments.appended_messages(*messages)
    in_flight = next((m for m in messages if m.in_flight), None)
    return shown + fragments.reply_controls(conversation, in_flight_message=in_flight)


def _render_turn_started(conversation: Conversation, message_ids: list[int], replace: bool) -> str:
    messages = list(Message.objects.filter(pk__in=message_ids, conversation=conversation))
    return _turn_fragment(conversation, messages, replace=replace)


class ConversationConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    conversation: Conversation
    watching: replies.ActiveReply | None = None
    groups_joined: tuple[str, ...] = ()
    holds_slot = False
    # After a refusal, turns wait for their save before asking the model, for a while: a
    # refused sender (rate limit, quota) must not cost the upstream a request per try.
    early_requests_after = 0.0

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.session_key = self.scope["session"].session_key
        if not await socket_slots.slot_acquire(user_id=user.pk, channel=self.channel_name):
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return
        self.holds_slot = True
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        conversation = await database_sync_to_async(_owned_conversation)(user, conversation_id)
        if conversation is None:
            await self._release()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.conversation = conversation
        self.group = replies.tabs_group(conversation.pk)
        self.groups_joined = (self.group, user_group(user.pk), session_group(self.session_key))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        reply = replies.active_reply(conversation.pk)
        if reply is not None:
            await self._watch(reply)
        else:
            await self._catch_up()

    async def _catch_up(self) -> None:
        """After a reconnect, show how the latest reply ended while the socket was away, or
        follow it if another process is still writing it."""
        latest = await database_sync_to_async(_latest_reply)(self.conversation.pk)
        if latest is None:
            return
        if latest.in_flight:
            await replies.reply_watch_remotely(
                conversation_id=self.conversation.pk, message_id=latest.pk
            )
            return
        await self.send_fragment(
            fragments.message(latest)
            + fragments.reply_controls(self.conversation, in_flight_message=None)
        )

    async def disconnect(self, code: int) -> None:
        await self._release()

    async def _release(self) -> None:
        """Let go of what this socket holds; when the server closes it, and again on
        disconnect (a second time finds nothing left)."""
        if self.watching is not None:
            self.watching.unwatch(self.send_fragment)
            self.watching = None
        groups, self.groups_joined = self.groups_joined, ()
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        if self.holds_slot:
            self.holds_slot = False
            await socket_slots.slot_release(
                user_id=self.scope["user"].pk, channel=self.channel_name
            )

    async def _watch(self, reply: replies.ActiveReply) -> None:
        if self.watching is reply:
            return
        if self.watching is not None:
            self.watching.unwatch(self.send_fragment)
        self.watching = reply
        # The reply keeps its conversation up to date (its head, when it finishes).
        self.conversation = reply.turn.conversation
        sent = reply.watch(self.send_fragment)
        if sent:
            await self.send_fragment(fragments.stream_replace(reply.message_id, sent))

    async def send_fragment(self, fragment: str) -> None:
        await self.send(text_data=fragment)

    # Incoming frames

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            payload = self._parse(text_data)
        except FrameRefused as refused:
            await self.send_fragment(fragments.notice(refused.message))
            return
        action = payload.get("action", "send")
        if action == "stop":
            await self._stop(payload)
        elif action == "retry":
            await self._retry(payload)
        elif action == "send":
            await self._send_message(payload)
        else:
            await self.send_fragment(fragments.notice("Unknown action; reload the page."))

    @staticmethod
    def _parse(text_data: str | None) -> QueryDict:
        unreadable = FrameRefused("The page sent something the server could not read. Reload it.")
        if not text_data:
            raise unreadable
        if len(text_data) > MAX_FRAME_BYTES:
            limit = settings.CHAT_MAX_MESSAGE_CHARS
            raise FrameRefused(
                f"That message is too long: at most {limit:,} characters. "
                "Shorten it or split it into parts."
            )
        try:
            raw = json.loads(text_data)
        except (ValueError, RecursionError) as error:
            # RecursionError: a frame nested thousands of levels deep.
            raise unreadable from error
        if not isinstance(raw, dict):
            raise unreadable
        data = QueryDict(mutable=True)
        for key, value in raw.items():
            if key == "HEADERS":
                continue
            if isinstance(value, list):
                data.setlist(key, [str(v) for v in value])
            elif isinstance(value, str | int | float):
                data[key] = str(value)
            else:
                raise unreadable
        return data

    async def _send_message(self, payload: QueryDict) -> None:
        form = MessageForm(payload)
        if not form.is_valid():
            await self.send_fragment(fragments.form_errors(form.errors))
            return
        text = form.cleaned_data["text"]
        early = None
        if time.monotonic() >= self.early_requests_after:
            early = replies.reply_early(self.conversation, text, user=self.scope["user"])
            if early is not None:
                await early.head_start()
        turn = None
        try:
            turn = await self._turn(
                services.turn_start, text=text, client_id=form.cleaned_data["client_id"]
            )
        finally:
            # Refused, or cancelled by a server going down: no copy on Azure left unknown.
            if turn is None and early is not None:
                early.abandon()
        if turn is not None:
            await self._begin(turn, [turn.user_message, turn.assistant_message], early=early)

    async def _retry(self, payload: QueryDict) -> None:
        try:
            message_id = int(payload.get("message_id", ""))
        except ValueError:
            await self.send_fragment(fragments.notice("That reply cannot be retried."))
            return
        turn = await self._turn(services.turn_retry, message_id=message_id)
        if turn is not None:
            await self._begin(turn, [turn.assistant_message], replace=True)

    async def _turn(
        self, service: Callable[..., services.Turn], **arguments: Any
    ) -> services.Turn | None:
        """Run a turn service for this socket's user and conversation; a refusal is shown to
        the tab, and a conversation gone meanwhile closes the socket."""
        try:
            turn: services.Turn = await database_sync_to_async(service)(
                user=self.scope["user"],
                conversation_id=self.conversation.pk,
                session_key=self.session_key,
                **arguments,
            )
        except services.SessionEnded:
            await self._end(SESSION_EXPIRED_NOTICE)
        except services.TurnRefused as refused:
            self.early_requests_after = time.monotonic() + settings.CHAT_RATE_WINDOW
            await self.send_fragment(fragments.notice(refused.message))
        except Conversation.DoesNotExist:
            await self._release()
            await self.close(code=CLOSE_NOT_FOUND)
        else:
            return turn
        return None

    async def _begin(
        self,
        turn: services.Turn,
        messages: list[Message],
        *,
        replace: bool = False,
        early: replies.EarlyRequest | None = None,
    ) -> None:
        await self.send_fragment(
            _turn_fragment(turn.conversation, messages, replace=replace) + fragments.clear_notice()
        )
        if not turn.created:
            if early is not None:
                early.abandon()
            reply = replies.active_reply(self.conversation.pk)
            if reply is not None:
                await self._watch(reply)
            return
        reply = replies.reply_start(turn, early)
        await self._watch(reply)
        await self.channel_layer.group_send(
            self.group,
            {
                "type": "turn.started",
                "message_ids": [m.pk for m in messages],
                "replace": replace,
                "origin": self.channel_name,
            },
        )

    async def _stop(self, payload: QueryDict) -> None:
        current = await database_sync_to_async(session_is_current)(
            user_id=self.scope["user"].pk, session_key=self.session_key
        )
        if not current:
            await self._end(SESSION_EXPIRED_NOTICE)
            return
        try:
            message_id: int | None = int(payload.get("message_id", ""))
        except ValueError:
            message_id = None
        await replies.reply_stop(conversation_id=self.conversation.pk, message_id=message_id)

    async def _end(self, notice: str) -> None:
        """The session is over: say so, and close without the page reconnecting."""
        await self.send_fragment(fragments.notice(notice))
        await self._release()
        await self.close(code=CLOSE_UNAUTHENTICATED)

    # Events from other tabs and processes

    async def session_ended(self, event: dict[str, Any]) -> None:
        await self._end(SESSION_ENDED_NOTICES.get(event.get("reason", ""), SESSION_EXPIRED_NOTICE))

    async def turn_started(self, event: dict[str, Any]) -> None:
        if event["origin"] == self.channel_name:
            return
        shown = await database_sync_to_async(_render_turn_started)(
            self.conversation, event["message_ids"], event["replace"]
        )
        await self.send_fragment(shown)
        reply = replies.active_reply(self.conversation.pk)
        if reply is not None:
            await self._watch(reply)
        else:
            in_flight = max(event["message_ids"])
            await replies.reply_watch_remotely(
                conversation_id=self.conversation.pk, message_id=in_flight
            )

    async def reply_progress(self, event: dict[str, Any]) -> None:
        if event["origin"] == replies.PROCESS_ID:
            return
        await self.send_fragment(fragments.stream_replace(event["message_id"], event["text"]))

    async def reply_finished(self, event: dict[str, Any]) -> None:
        if event["origin"] == replies.PROCESS_ID:
            return
        html = await database_sync_to_async(_render_message)(
            event["message_id"], self.conversation.pk
        )
        await self.send_fragment(
            html + fragments.reply_controls(self.conversation, in_flight_message=None)
        )
