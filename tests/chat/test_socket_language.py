"""The socket's fragments are in its owner's language, not the server's: notices, the page's
partials, and the reply task's final frame with its explanation of a failure."""

import pytest
from channels.db import database_sync_to_async

from accounts.models import User
from tests.chat.sockets import connect, receive_until, send_payload, wait_for_reply
from tests.factories import session_for, socket_headers

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_failed_reply_is_explained_in_the_owners_language(
    owner, conversation, clean_simulator
) -> None:
    await User.objects.filter(pk=owner.pk).aupdate(language="zh-hans")
    owner.language = "zh-hans"
    communicator, connected, _ = await connect(owner, conversation)
    assert connected
    await communicator.send_to(text_data=send_payload("[[sim fault=server_error times=9]] 你好"))
    frames = await receive_until(communicator, r"message-assistant status-failed")
    assert "模型服务暂时不可用" in frames, "the reply task's final frame"
    assert "重试" in frames
    assert ">Retry<" not in frames
    reply = await wait_for_reply(conversation)
    assert reply.error.startswith("模型服务暂时不可用")
    await communicator.disconnect()


async def test_without_a_choice_the_handshake_language_is_used(owner, conversation) -> None:
    session_key = await database_sync_to_async(session_for)(owner)
    headers = [*socket_headers(session_key), (b"accept-language", b"zh-CN,zh;q=0.9")]
    communicator, connected, _ = await connect(owner, conversation, headers=headers)
    assert connected
    await communicator.send_to(text_data=send_payload("again", action="retry"))
    frames = await receive_until(communicator, r'id="notices"')
    assert "这条回复无法重试" in frames
    await communicator.disconnect()


async def test_an_english_browser_gets_english(owner, conversation) -> None:
    session_key = await database_sync_to_async(session_for)(owner)
    headers = [*socket_headers(session_key), (b"accept-language", b"en-GB")]
    communicator, connected, _ = await connect(owner, conversation, headers=headers)
    assert connected
    await communicator.send_to(text_data=send_payload("again", action="retry"))
    frames = await receive_until(communicator, r'id="notices"')
    assert "That reply cannot be retried." in frames
    await communicator.disconnect()
