"""One whole conversation in Chinese in a real browser (zh-CN): send, stream, stop, a failure
with Retry; the language chooser; and the Chinese screenshots."""

import os
import re
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import User
from tests.e2e.test_chat import last_reply, sign_in

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def chinese_page(browser, live_server_url, user, sim_deployment):
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, base_url=live_server_url, locale="zh-CN"
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server_url, user)
    yield page
    context.close()


def send(page, text: str) -> None:
    page.get_by_role("textbox", name="消息").fill(text)
    page.get_by_role("textbox", name="消息").press("Enter")


def test_a_whole_conversation_in_chinese(chinese_page, make_sim_deployment) -> None:
    page = chinese_page
    make_sim_deployment(name="Slow", options="tps=30,words=400", is_default=False)
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.get_by_role("heading", name="新建对话")).to_be_visible()
    send(page, "你好，请介绍一下你自己")  # noqa: RUF001  (Chinese punctuation)
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    expect(last_reply(page).get_by_role("button", name="重新生成此回复")).to_be_visible()
    page.get_by_label("下一条回复使用的模型").select_option(label="Slow")
    send(page, "请写一篇很长的文章")
    expect(page.locator(".message-stream")).not_to_be_empty(timeout=15_000)  # a loaded machine
    expect(page.locator("#reply-controls")).to_contain_text("正在生成…")
    page.get_by_role("button", name="停止生成").click()
    expect(last_reply(page)).to_have_attribute("data-status", "cancelled")
    expect(last_reply(page)).to_contain_text("你已停止生成此回复。")
    page.get_by_label("下一条回复使用的模型").select_option(label="Simulator")
    send(page, "[[sim fault=server_error times=3]] 再试一次")
    expect(last_reply(page)).to_have_attribute("data-status", "failed")
    expect(last_reply(page).get_by_role("alert")).to_contain_text("模型服务暂时不可用")
    last_reply(page).get_by_role("button", name="重试").click()
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    last_reply(page).get_by_role("button", name="复制消息").click()
    expect(last_reply(page).get_by_role("button", name="复制消息")).to_have_text(
        re.compile("已复制|复制失败")
    )


def test_the_chooser_saves_on_the_account_and_switches_the_page(
    browser, live_server_url, user, sim_deployment
) -> None:
    context = browser.new_context(base_url=live_server_url, locale="en-US")
    page = context.new_page()
    sign_in(page, live_server_url, user)
    page.goto("/")
    expect(page.get_by_role("heading", name="New chat")).to_be_visible()
    expect(page.locator("[data-language-submit]")).to_be_hidden()
    page.get_by_label("Language").select_option("zh-hans")
    expect(page.get_by_role("heading", name="新建对话")).to_be_visible()
    # The new page's script is running once it has hidden the button it replaces.
    expect(page.locator("[data-language-submit]")).to_be_hidden()
    assert User.objects.get(pk=user.pk).language == "zh-hans"
    page.get_by_label("语言").select_option("en")
    expect(page.get_by_role("heading", name="New chat")).to_be_visible()
    context.close()


@pytest.mark.parametrize(
    ("name", "scheme", "viewport"),
    [("desktop-light", "light", (1280, 860)), ("phone-dark", "dark", (390, 844))],
)
def test_chinese_screenshots(
    browser, live_server_url, user, sim_deployment, name, scheme, viewport
) -> None:
    context = browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]},
        color_scheme=scheme,
        base_url=live_server_url,
        locale="zh-CN",
    )
    page = context.new_page()
    folder = ROOT / ("docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else "test-results")
    folder.mkdir(parents=True, exist_ok=True)
    if name == "desktop-light":
        page.goto(reverse("login"))
        expect(page.get_by_role("heading", name="登录")).to_be_visible()
        page.screenshot(path=str(folder / "zh-sign-in.png"))
    sign_in(page, live_server_url, user)
    page.goto("/")
    send(page, "如何用 Python 读取 CSV 文件？")  # noqa: RUF001  (Chinese punctuation)
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    page.screenshot(path=str(folder / f"zh-conversation-{name}.png"))
    context.close()
