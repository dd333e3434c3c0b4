"""The conversation websocket: thin. It authorises, parses, and hands turns to the services."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError
from django.http import QueryDict
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts.languages import language_of
from accounts.sockets import session_group, session_is_current, user_group
from chat import fragments, replies, services, socket_slots, tab_views
from chat.forms import MessageForm
from chat.frames import FrameRefused, frame_after, frame_message_id, parse_frame
from chat.models import Conversation, Message
from chat.remote_following import RemoteFollowing

logger = logging.getLogger(__name__)

# Close codes in the 4000 range: the ws extension does not reconnect on them. 1013 ("try
# again later") it does: the page comes back and catches up.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_MANY_SOCKETS = 4429
CLOSE_TRY_AGAIN = 1013

SESSION_ENDED_NOTICES = {
    "signed_out": _("You signed out in another tab. Reload the page to sign in again."),
    "password_changed": _("Your password was changed. Reload the page to continue."),
    "deactivated": _("Your account was deactivated. Ask an administrator for access."),
}
SESSION_EXPIRED_NOTICE = _("Your session has ended. Reload the page to sign in again.")
DATABASE_DOWN_NOTICE = _(
    "The chat cannot reach its database right now, so your message was not sent. It is still "
    "in the box: try again in a moment."
)


class ConversationConsumer(RemoteFollowing, AsyncWebsocketConsumer):  # type: ignore[misc]
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
        # Everything this socket renders, in this task and the threads and tasks it starts,
        # is in its owner's language, not the server's.
        translation.activate(language_of(user, self.scope.get("headers", ())))
        self.session_key = self.scope["session"].session_key
        if not await socket_slots.slot_acquire(user_id=user.pk, channel=self.channel_name):
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return
        self.holds_slot = True
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        try:
            conversation = await database_sync_to_async(tab_views.owned_conversation)(
                user, conversation_id
            )
        except DatabaseError:
            await self._release()
            await self.close(code=CLOSE_TRY_AGAIN)
            return
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
        await self._show_missed(frame_after(self.scope))

    async def _show_missed(self, after: int | None) -> None:
        """After a reconnect: what the tab missed, then the reply in flight, here or elsewhere."""
        try:
            missed, in_flight = await database_sync_to_async(tab_views.catch_up)(
                self.conversation, after
            )
        except DatabaseError:
            return
        if missed:
            await self.send_fragment(missed)
        await self._watch_in_flight(in_flight)

    async def _watch_in_flight(self, in_flight: Message | None) -> None:
        """Watch the conversation's reply, here or in the process that writes it."""
        reply = replies.active_reply(self.conversation.pk)
        if reply is not None:
            self._watch(reply)
        elif in_flight is not None:
            await self._follow_remotely(in_flight.pk)

    async def disconnect(self, code: int) -> None:
        await self._release()

    async def _release(self) -> None:
        """Let go of what this socket holds; when the server closes it, and again on
        disconnect (a second time finds nothing left)."""
        if self.watching is not None:
            self.watching.unwatch(self.send_fragment)
            self.watching = None
        self._stop_following()
        groups, self.groups_joined = self.groups_joined, ()
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        if self.holds_slot:
            self.holds_slot = False
            await socket_slots.slot_release(
                user_id=self.scope["user"].pk, channel=self.channel_name
            )

    def _watch(self, reply: replies.ActiveReply) -> None:
        if self.watching is reply:
            return
        if self.watching is not None:
            self.watching.unwatch(self.send_fragment)
        self._stop_following()
        self.watching = reply
        # The reply keeps its conversation up to date (its head, when it finishes).
        self.conversation = reply.turn.conversation
        reply.watch(self.send_fragment, fell_behind=self._fell_behind)

    async def _fell_behind(self) -> None:
        self.watching = None
        await self.close(code=CLOSE_TRY_AGAIN)

    async def send_fragment(self, fragment: str) -> None:
        await self.send(text_data=fragment)

    # Incoming frames

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            payload = parse_frame(text_data)
        except FrameRefused as refused:
            await self.send_fragment(fragments.notice(refused.message))
            return
        action = payload.get("action", "send")
        try:
            if action == "stop":
                await self._stop(payload)
            elif action == "retry":
                await self._retry(payload)
            elif action == "send":
                await self._send_message(payload)
            elif action == "edit":
                await self._edit(payload)
            elif action == "regenerate":
                await self._regenerate(payload)
            else:
                await self.send_fragment(fragments.notice(_("Unknown action; reload the page.")))
        except DatabaseError:
            logger.warning("conversation %s: database unreachable for a turn", self.conversation.pk)
            await self.send_fragment(fragments.notice(DATABASE_DOWN_NOTICE))

    async def _send_message(self, payload: QueryDict) -> None:
        switching = payload.get("deployment", "") not in ("", str(self.conversation.deployment_id))
        if not switching:
            payload = payload.copy()
            payload.pop("deployment", None)
        form = MessageForm(payload, user=self.scope["user"])
        # Only a change of model asks the database to check the pick.
        valid = await database_sync_to_async(form.is_valid)() if switching else form.is_valid()
        if not valid:
            await self.send_fragment(fragments.form_errors(form.errors))
            return
        text, attachment_ids = form.cleaned_data["text"], form.cleaned_data["attachments"]
        early = None
        # Files are read from storage and checked in the turn: no request guessed before it.
        if not switching and not attachment_ids and time.monotonic() >= self.early_requests_after:
            early = replies.reply_early(self.conversation, text, user=self.scope["user"])
            if early is not None:
                await early.head_start()
        started = None
        try:
            started = await self._turn(
                services.turn_start,
                text=text,
                client_id=form.cleaned_data["client_id"],
                deployment=form.cleaned_data["deployment"],
                attachment_ids=attachment_ids,
            )
        finally:
            # Refused, or cancelled by a server going down: no copy on Azure left unknown.
            if started is None and early is not None:
                early.abandon()
        if started is not None:
            turn, prepared = started
            await self._begin(
                turn, [turn.user_message, turn.assistant_message], early=early, prepared=prepared
            )

    async def _edit(self, payload: QueryDict) -> None:
        """A new version of one of the person's messages, sent on a new branch."""
        form = MessageForm(payload)
        message_id = frame_message_id(payload)
        if message_id is None:
            await self.send_fragment(fragments.notice(_("That message cannot be edited.")))
            return
        if not form.is_valid():
            await self.send_fragment(fragments.form_errors(form.errors))
            return
        started = await self._turn(
            services.turn_start,
            text=form.cleaned_data["text"],
            client_id=form.cleaned_data["client_id"],
            edit_of=message_id,
        )
        if started is not None:
            await self._begin_branch(*started)

    async def _regenerate(self, payload: QueryDict) -> None:
        message_id = frame_message_id(payload)
        if message_id is None:
            await self.send_fragment(fragments.notice(_("That reply cannot be regenerated.")))
            return
        started = await self._turn(services.turn_regenerate, message_id=message_id)
        if started is not None:
            await self._begin_branch(*started)

    async def _begin_branch(self, turn: services.Turn, prepared: replies.Prepared | None) -> None:
        """A turn on a new branch: the tab, and the conversation's other tabs, show that
        branch in place of the one they showed."""
        if not turn.created:
            await self._begin(turn, [turn.user_message, turn.assistant_message])
            return
        reply = replies.reply_start(turn, prepared=prepared)
        await asyncio.sleep(0)  # the reply asks the model before the branch is rendered
        shown, _ = await database_sync_to_async(tab_views.branch_fragment)(turn.conversation)
        await self.send_fragment(shown + fragments.clear_notice())
        self._watch(reply)
        await replies.branch_shown(conversation_id=self.conversation.pk, origin=self.channel_name)

    async def _retry(self, payload: QueryDict) -> None:
        message_id = frame_message_id(payload)
        if message_id is None:
            await self.send_fragment(fragments.notice(_("That reply cannot be retried.")))
            return
        started = await self._turn(services.turn_retry, message_id=message_id)
        if started is not None:
            turn, prepared = started
            await self._begin(turn, [turn.assistant_message], replace=True, prepared=prepared)

    async def _turn(
        self, service: Callable[..., services.Turn], **arguments: Any
    ) -> tuple[services.Turn, replies.Prepared | None] | None:
        """Run a turn service for this socket's user and conversation, and the reply's first
        database work with it, in one trip to the database thread; a refusal is shown to the
        tab, and a conversation gone meanwhile closes the socket."""

        def start() -> tuple[services.Turn, replies.Prepared | None]:
            turn = service(
                user=self.scope["user"],
                conversation_id=self.conversation.pk,
                session_key=self.session_key,
                **arguments,
            )
            return turn, replies.reply_prepare_ahead(turn)

        try:
            started: tuple[services.Turn, replies.Prepared | None] = await database_sync_to_async(
                start
            )()
        except services.SessionEnded:
            await self._end(SESSION_EXPIRED_NOTICE)
        except services.TurnRefused as refused:
            self.early_requests_after = time.monotonic() + settings.CHAT_RATE_WINDOW
            await self.send_fragment(fragments.notice(refused.message))
        except Conversation.DoesNotExist:
            await self._release()
            await self.close(code=CLOSE_NOT_FOUND)
        else:
            return started
        return None

    async def _begin(
        self,
        turn: services.Turn,
        messages: list[Message],
        *,
        replace: bool = False,
        early: replies.EarlyRequest | None = None,
        prepared: replies.Prepared | None = None,
    ) -> None:
        if not turn.created:
            # The same send again (a double click, a replay after reconnecting): the page
            # already shows this turn, so it is replaced, never appended twice.
            if early is not None:
                early.abandon()
            await self.send_fragment(
                tab_views.turn_fragment(turn.conversation, messages, replace=True)
                + fragments.clear_notice()
            )
            reply = replies.active_reply(self.conversation.pk)
            if reply is not None:
                self._watch(reply)
            return
        # The reply starts before the first frame is rendered: it asks the model while the
        # turn is shown, and a Stop that follows finds it.
        reply = replies.reply_start(turn, early, prepared)
        await asyncio.sleep(0)
        await self.send_fragment(
            tab_views.turn_fragment(turn.conversation, messages, replace=replace)
            + fragments.clear_notice()
        )
        self._watch(reply)
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

    async def _end(self, notice: str | Promise) -> None:
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
        shown = await database_sync_to_async(tab_views.turn_started)(
            self.conversation, event["message_ids"], event["replace"]
        )
        await self.send_fragment(shown)
        reply = replies.active_reply(self.conversation.pk)
        if reply is not None:
            self._watch(reply)
        else:
            await self._follow_remotely(max(event["message_ids"]))

    async def branch_shown(self, event: dict[str, Any]) -> None:
        if event["origin"] == self.channel_name:
            return
        shown, in_flight = await database_sync_to_async(tab_views.branch_fragment)(
            self.conversation
        )
        await self.send_fragment(shown)
        await self._watch_in_flight(in_flight)
