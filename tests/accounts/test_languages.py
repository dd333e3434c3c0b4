"""The language chooser: kept on the account, applied to every page; and a socket's language."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.languages import language_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_choosing_chinese_is_kept_on_the_account_and_switches_the_pages(client: Client) -> None:
    person = UserFactory()
    client.force_login(person)
    assert '<html lang="en">' in client.get(reverse("home")).content.decode()
    response = client.post(reverse("language_choose"), {"language": "zh-hans", "next": "/"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    person.refresh_from_db()
    assert person.language == "zh-hans"
    elsewhere = Client(headers={"accept-language": "en"})
    elsewhere.force_login(person)
    page = elsewhere.get(reverse("home")).content.decode()
    assert '<html lang="zh-Hans">' in page, "another device follows the account"
    assert "新建对话" in page
    assert 'id="language-choice"' in page


def test_the_sign_in_page_offers_the_chooser_and_follows_the_browser() -> None:
    page = Client(headers={"accept-language": "zh-CN"}).get(reverse("login")).content.decode()
    assert '<html lang="zh-Hans">' in page
    assert f'action="{reverse("language_choose")}"' in page
    assert "登录" in page


def test_a_socket_speaks_the_account_language_then_the_browser_one() -> None:
    chooser = UserFactory(language="zh-hans")
    browser_only = UserFactory()
    chinese_browser = [(b"accept-language", b"zh-CN,zh;q=0.9")]
    assert language_of(chooser, [(b"accept-language", b"en")]) == "zh-hans"
    assert language_of(browser_only, chinese_browser) == "zh-hans"
    assert language_of(browser_only, [(b"accept-language", b"fr-FR, *;q=0.1")]) == "en"
    assert language_of(browser_only) == "en"
