from tests.e2e.conftest import screenshot


def test_sign_in_through_the_real_page(page, live_server_url, user, password) -> None:
    page.goto("/")
    assert "/account/sign-in/" in page.url

    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("That username and password")

    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server_url}/")
    assert screenshot(page, "signed-in").stat().st_size > 0


def test_sign_in_page_has_no_csp_violations(page, live_server_url) -> None:
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    response = page.goto("/account/sign-in/")
    assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    assert not [text for text in violations if "Content Security Policy" in text]
    screenshot(page, "sign-in")


def test_a_locked_out_person_is_told_how_long_is_left(
    page, live_server_url, user, password, settings
) -> None:
    settings.AXES_FAILURE_LIMIT = 2
    page.goto("/account/sign-in/")
    for _ in range(2):
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Sign in").click()

    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    assert "Too many failed sign-ins" in alert.inner_text()
    assert "try again in 15 minutes" in alert.inner_text()
    assert page.get_by_label("Username").input_value() == user.username
    assert "/account/sign-in/" in page.url
    screenshot(page, "sign-in-locked-out")
