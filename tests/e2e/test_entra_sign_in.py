"""Sign in with Microsoft, in Chromium, through the local OpenID Connect provider's own page."""

from typing import Any

from tests.e2e.conftest import screenshot
from tests.entra_fixtures import Provider


def sign_in_with_microsoft(page: Any, provider: Provider, sub: str) -> None:
    page.goto("/")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    page.wait_for_url(f"{provider.url}/**")
    page.locator("#subject-input").fill(sub)
    page.get_by_role("button", name="Authorize", exact=True).click()


def test_a_person_signs_in_with_microsoft_and_lands_in_the_app(
    page: Any, live_server_url: str, entra: Provider, sim_deployment: Any
) -> None:
    page.goto("/account/sign-in/")
    screenshot(page, "sign-in-with-microsoft")
    sub = entra.add_person(name="Grace Hopper", roles=["Chat.User"])
    sign_in_with_microsoft(page, entra, sub)
    page.wait_for_url(f"{live_server_url}/")
    assert "Signed in as Grace Hopper" in page.locator(".sidebar-footer").inner_text()
    assert page.get_by_role("link", name="Admin").count() == 0

    page.goto("/admin/")
    assert "/admin/" in page.url
    assert page.get_by_role("heading", name="Site administration").count() == 0


def test_an_admin_role_reaches_the_admin(page: Any, live_server_url: str, entra: Provider) -> None:
    sub = entra.add_person(name="Ada Admin", roles=["Chat.User", "Chat.Admin"])
    sign_in_with_microsoft(page, entra, sub)
    page.wait_for_url(f"{live_server_url}/")
    page.get_by_role("link", name="Admin").click()
    page.get_by_role("link", name="Deployments").first.wait_for()
    assert page.url == f"{live_server_url}/admin/"


def test_a_person_without_the_user_role_is_told_to_ask(
    page: Any, live_server_url: str, entra: Provider
) -> None:
    sign_in_with_microsoft(page, entra, entra.add_person(roles=[]))
    page.get_by_role("heading", name="No access yet").wait_for()
    assert "Ask your administrator" in page.locator("#sign-in-refused-message").inner_text()
    screenshot(page, "sign-in-no-access")
