"""Accessibility as a test: axe-core finds no serious or critical violation on any page, on a
desktop and a phone, in the light and the dark theme."""

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.axe import blocking_violations
from tests.e2e.test_chat import last_reply, sign_in
from tests.factories import UserFactory

CODE_REPLY = (
    "[[sim echo]]## Reading a file\n\n"
    "Use `open`, then read it:\n\n"
    "```python\n"
    "with open('a-file-with-a-rather-long-name-so-that-this-line-scrolls-sideways.csv') as f:"
    "  print(f.read())\n"
    "```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
)
VIEWPORTS = {"desktop": (1280, 860), "phone": (390, 844)}


@pytest.fixture(params=["light", "dark"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(VIEWPORTS))
def themed_page(request: pytest.FixtureRequest, browser, live_server_url, scheme) -> Any:
    width, height = VIEWPORTS[request.param]
    context = browser.new_context(
        viewport={"width": width, "height": height}, color_scheme=scheme, base_url=live_server_url
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def assert_accessible(page: Any, what: str) -> None:
    violations = blocking_violations(page)
    assert violations == [], f"{what}: " + "; ".join(violations)


def test_signed_out_pages(themed_page, db) -> None:
    page = themed_page
    page.goto("/account/sign-in/")
    assert_accessible(page, "sign-in")
    page.goto("/account/sign-in/?next=/")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    assert_accessible(page, "sign-in with an error")


def test_signed_in_pages(themed_page, live_server_url, user, sim_deployment) -> None:
    page = themed_page
    sign_in(page, live_server_url, user)
    page.goto("/")
    assert_accessible(page, "new chat")

    page.get_by_label("Message", exact=True).fill(CODE_REPLY)
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/c/\d+/$"))
    expect(last_reply(page)).to_have_attribute("data-status", "completed")
    page.get_by_label("Message", exact=True).fill("[[sim fault=server_error times=3]] Again")
    page.get_by_label("Message", exact=True).press("Enter")
    expect(last_reply(page)).to_have_attribute("data-status", "failed")
    expect(page.locator(".code-block pre")).to_be_visible()
    assert_accessible(page, "a conversation with code, a table and a failed reply")
    page.locator("#instructions summary").click()
    assert_accessible(page, "the conversation with its instructions open")

    if page.viewport_size["width"] < 760:
        page.get_by_role("button", name="Show conversations").click()
        expect(page.locator(".sidebar")).to_be_in_viewport()
        assert_accessible(page, "the phone's sidebar")

    page.goto("/account/password/")
    assert_accessible(page, "password change")
    page.goto("/c/999999/")
    assert_accessible(page, "not found")
    page.goto("/admin/")
    expect(page.get_by_role("heading", name="You need administrator access")).to_be_visible()
    assert_accessible(page, "no administrator access")
    page.goto("/")
    if page.viewport_size["width"] < 760:
        page.get_by_role("button", name="Show conversations").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
    assert_accessible(page, "signed out")


def test_the_admin_index(themed_page, live_server_url, db) -> None:
    page = themed_page
    sign_in(page, live_server_url, UserFactory(is_staff=True, is_superuser=True))
    page.goto("/admin/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    assert_accessible(page, "admin index")
