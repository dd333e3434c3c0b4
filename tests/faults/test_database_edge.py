"""The HTTP edge while PostgreSQL restarts or is gone: the app process on the private cluster."""

import time

import requests

from tests.faults.conftest import sign_in


def test_the_first_requests_after_postgresql_restarts_succeed(
    postgres, database_url, start_app
) -> None:
    app = start_app(database_url=database_url)
    session = sign_in(app.base_url)
    # Several requests at once fill the pool with connections, which then sit idle.
    for _ in range(3):
        assert session.get(f"{app.base_url}/", timeout=10).status_code == 200

    postgres.restart()

    statuses = [session.get(f"{app.base_url}/", timeout=10).status_code for _ in range(3)]
    assert statuses == [200, 200, 200], app.output()


def test_a_page_without_its_database_is_a_short_503_page(postgres, database_url, start_app):
    app = start_app(database_url=database_url)
    session = sign_in(app.base_url)
    postgres.kill()

    started = time.monotonic()
    response = session.get(f"{app.base_url}/", timeout=15)
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert "try again in a moment" in response.text
    assert "Traceback" not in response.text
    assert "OperationalError" not in response.text
    assert response.headers["Retry-After"] == "5"
    # A functional bound: the connect timeout (3 s), not the OS's TCP timeout.
    assert elapsed < 6


def test_an_htmx_request_without_its_database_gets_a_notice_fragment(
    postgres, database_url, start_app
):
    app = start_app(database_url=database_url)
    session = sign_in(app.base_url)
    postgres.stop()

    response = session.get(f"{app.base_url}/c/", headers={"HX-Request": "true"}, timeout=15)

    assert response.status_code == 503
    assert response.text.startswith('<div id="notices"')
    assert 'hx-swap-oob="true"' in response.text
    assert "<html" not in response.text
    assert "Try again in a moment" in response.text


def test_a_message_sent_without_its_database_comes_back_in_the_composer(
    postgres, database_url, start_app
):
    app = start_app(database_url=database_url)
    session = sign_in(app.base_url)
    token = session.cookies["csrftoken"]
    postgres.stop()

    draft = 'My long question about <b>tags</b> & "quotes"'
    response = session.post(
        f"{app.base_url}/c/1/messages/",
        data={
            "text": draft,
            "client_id": "7f9c2b4e-1d2a-4c3b-9e8f-0a1b2c3d4e5f",
            "csrfmiddlewaretoken": token,
        },
        headers={"Referer": f"{app.base_url}/c/1/"},
        timeout=15,
    )

    assert response.status_code == 503
    assert "Your message was not sent" in response.text
    # The text, escaped, in a form that sends it again to the same place, same client id.
    assert (
        "My long question about &lt;b&gt;tags&lt;/b&gt; &amp; &quot;quotes&quot;</textarea>"
        in response.text
    )
    assert 'action="/c/1/messages/"' in response.text
    assert 'value="7f9c2b4e-1d2a-4c3b-9e8f-0a1b2c3d4e5f"' in response.text
    assert token not in response.text.split('name="csrfmiddlewaretoken"')[0]

    postgres.start()
    # Sent again once the database is back, the message is taken (the conversation does not
    # exist in this fresh database: 404, not 503).
    again = session.post(
        f"{app.base_url}/c/1/messages/",
        data={"text": draft, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{app.base_url}/c/1/"},
        timeout=15,
    )
    assert again.status_code == 404


def test_the_sign_in_page_without_its_database_is_a_503_page(postgres, database_url, start_app):
    app = start_app(database_url=database_url)
    anonymous = requests.Session()
    anonymous.get(f"{app.base_url}/account/sign-in/", timeout=10)
    postgres.stop()

    response = anonymous.post(
        f"{app.base_url}/account/sign-in/",
        data={
            "username": "someone",
            "password": "something",
            "csrfmiddlewaretoken": anonymous.cookies["csrftoken"],
        },
        headers={"Referer": f"{app.base_url}/account/sign-in/"},
        timeout=15,
    )

    assert response.status_code == 503
    assert "try again in a moment" in response.text
    assert "something" not in response.text


def test_the_first_request_after_a_longer_outage_succeeds(postgres, database_url, start_app):
    app = start_app(database_url=database_url)
    session = sign_in(app.base_url)
    postgres.stop()
    # Requests during the outage set the pool retrying its lost connections.
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        assert session.get(f"{app.base_url}/", timeout=15).status_code == 503

    postgres.start()

    assert session.get(f"{app.base_url}/", timeout=15).status_code == 200
