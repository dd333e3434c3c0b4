"""Every string a person reads is marked and translated: the Chinese catalogue is complete and
in step with the code, and the main pages, rendered for a Chinese browser, hold no English of
the interface's own."""

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import translation

from chat.catalog import MODEL_CHOICES
from chat.models import Conversation, Feedback, Message, StoredResponse
from chat.replies.failures import unexpected_error
from tests.entra_fixtures import sign_in
from tests.factories import DeploymentFactory, UserFactory

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")
# Words of the msgids that stay as they are in Chinese too: names and technical terms.
KEPT = {"Azure", "OpenAI", "Microsoft", "Entra", "Chat", "Markdown", "JSON", "Enter", "Shift"}
# Attributes a person reads (or hears, from a screen reader); ``value`` only on inputs (a
# button's label), not on a select's options, whose text is what is read.
READ_ATTRIBUTES = {"aria-label", "title", "placeholder", "alt", "hx-confirm", "value"}


def catalogue() -> polib.POFile:
    return polib.pofile(str(CATALOGUE))


def test_every_chinese_entry_is_translated_and_none_is_fuzzy() -> None:
    entries = list(catalogue())
    assert entries
    untranslated = [e.msgid for e in entries if not e.translated()]
    fuzzy = [e.msgid for e in entries if "fuzzy" in e.flags]
    assert untranslated == [], "entries without a Chinese translation"
    assert fuzzy == [], "fuzzy entries: check and confirm them"


def test_placeholders_survive_translation() -> None:
    for entry in catalogue():
        expected = sorted(PLACEHOLDER.findall(entry.msgid))
        for translated in [entry.msgstr, *entry.msgstr_plural.values()]:
            if translated:
                assert sorted(PLACEHOLDER.findall(translated)) == expected, entry.msgid


def test_the_catalogue_holds_every_marked_string(tmp_path: Path) -> None:
    """makemessages over a copy of the code finds no msgid the committed catalogue lacks."""
    for folder in ("accounts", "chat", "config", "templates", "locale"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.mo"))
    shutil.copy(ROOT / "manage.py", tmp_path / "manage.py")
    extracted = subprocess.run(
        [
            *(sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-location"),
            *("-i", "azure_sim/*", "-i", "chat/management/*"),
        ],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
    )
    assert extracted.returncode == 0, extracted.stderr
    fresh = polib.pofile(str(tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"))
    missing = sorted({e.msgid for e in fresh if not e.translated() or "fuzzy" in e.flags})
    assert missing == [], "marked strings the catalogue lacks: run `make messages`, translate"


def vocabulary() -> set[str]:
    """The interface's English words: those of its msgids (4 letters or more), less the names
    and terms that stay English in the translations too."""
    english: set[str] = set()
    chinese: set[str] = set()
    for entry in catalogue():
        for text in (entry.msgid, entry.msgid_plural):
            english |= set(re.findall(r"[A-Za-z]{4,}", PLACEHOLDER.sub("", text)))
        for text in [entry.msgstr, *entry.msgstr_plural.values()]:
            chinese |= set(re.findall(r"[A-Za-z]{4,}", text))
    return english - chinese - KEPT


class ReadText(HTMLParser):
    """The text a person reads on a page: text nodes and read attributes, without scripts,
    styles, and the person's own words or the model's (``data-user-content``)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag in ("script", "style") or "user-text" in (names.get("class") or "").split():
            self.skipping.append(tag)
        if tag == "input" and names.get("type") == "hidden":
            return
        self.parts += [
            value
            for name, value in attrs
            if name in READ_ATTRIBUTES and value and (name != "value" or tag == "input")
        ]

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def leftover_english(html: str, *, allowed: set[str] = frozenset()) -> set[str]:
    reader = ReadText()
    reader.feed(html)
    words = set(re.findall(r"[A-Za-z]{4,}", " ".join(reader.parts)))
    names = set(re.findall(r"[A-Za-z]{4,}", " ".join(allowed)))
    return words & (vocabulary() - names)


@pytest.fixture
def chinese_client() -> Client:
    return Client(headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.5"})


@pytest.mark.django_db
def test_the_main_pages_are_wholly_chinese(chinese_client: Client, sim_deployment) -> None:
    person = UserFactory(first_name="小", last_name="明")
    names = {
        "English",
        person.username,
        sim_deployment.name,
        sim_deployment.model,
        sim_deployment.region,
    }
    pages = {"sign-in": chinese_client.get(reverse("login"))}
    chinese_client.force_login(person)
    conversation = Conversation.objects.create(
        owner=person, deployment=sim_deployment, title="旅行计划"
    )
    Message.objects.create(conversation=conversation, role="user", text="你好")
    with translation.override("zh-hans"):
        error = unexpected_error().message
    Message.objects.create(
        conversation=conversation, role="assistant", status="failed", error=error
    )
    stranger = Conversation.objects.create(owner=UserFactory(), deployment=sim_deployment)
    pages |= {
        "new chat": chinese_client.get(reverse("home")),
        "conversation": chinese_client.get(reverse("conversation_detail", args=[conversation.pk])),
        "password change": chinese_client.get(reverse("password_change")),
        "403": chinese_client.get("/admin/", follow=True),
        "404": chinese_client.get(reverse("conversation_detail", args=[stranger.pk])),
    }
    chinese_client.post(reverse("logout"))
    pages["signed out"] = chinese_client.get(reverse("signed_out"))
    assert pages["conversation"].status_code == 200
    assert "重试" in pages["conversation"].content.decode(), "the failed reply offers Retry"
    assert pages["403"].status_code == 403
    assert pages["404"].status_code == 404
    for name, response in pages.items():
        html = response.content.decode()
        assert '<html lang="zh-Hans">' in html, name
        assert leftover_english(html, allowed=names) == set(), name


@pytest.mark.django_db
def test_our_admin_pages_are_wholly_chinese(chinese_client: Client) -> None:
    """What staff read in the admin of our own models: lists, the deployment form with its
    errors, actions, the reports, the worker notice."""
    admin = UserFactory(username="guanliyuan", is_staff=True, is_superuser=True)
    person = UserFactory(username="xiaoming")
    deployment = DeploymentFactory(name="瑞典", failover_group="eu", daily_token_quota=1000)
    conversation = Conversation.objects.create(owner=person, deployment=deployment)
    reply = Message.objects.create(
        conversation=conversation,
        role="assistant",
        deployment=deployment,
        input_tokens=120,
        output_tokens=30,
    )
    Feedback.objects.create(message=reply, user=person, rating="up", share_conversation=True)
    StoredResponse.objects.create(
        response_id="resp_1",
        deployment=deployment,
        user=person,
        conversation=conversation,
        message=reply,
        remote_expires_at=reply.created_at,
    )
    chinese_client.force_login(admin)
    deployments = reverse("admin:chat_deployment_changelist")
    change = reverse("admin:chat_deployment_change", args=[deployment.pk])
    pages = {
        "index": chinese_client.get(reverse("admin:index")),
        "deployments": chinese_client.get(deployments),
        "deployment": chinese_client.get(change),
        "deployment errors": chinese_client.post(
            change, {"name": "瑞典", "endpoint": "http://example.com", "api_key_env": "key"}
        ),
        "new deployment": chinese_client.get(reverse("admin:chat_deployment_add")),
        "cannot delete": chinese_client.get(
            reverse("admin:chat_deployment_delete", args=[deployment.pk])
        ),
        "stored responses": chinese_client.get(reverse("admin:chat_storedresponse_changelist")),
        "token usage": chinese_client.get(reverse("admin:chat_tokenusage_changelist")),
        "feedback": chinese_client.get(reverse("admin:chat_feedback_changelist")),
        "shared conversation": chinese_client.get(
            reverse("admin:chat_feedback_conversation", args=[reply.feedback.get().pk])
        ),
        "conversations": chinese_client.get(reverse("admin:chat_conversation_changelist")),
        "conversation": chinese_client.get(
            reverse("admin:chat_conversation_change", args=[conversation.pk])
        ),
        "assistants": chinese_client.get(reverse("admin:chat_preset_add")),
        "users": chinese_client.get(reverse("admin:accounts_user_changelist")),
        "user": chinese_client.get(reverse("admin:accounts_user_change", args=[person.pk])),
    }
    assert "终结点必须使用 https" in pages["deployment errors"].content.decode()
    assert "尚无任务工作进程运行过" in pages["stored responses"].content.decode()
    assert "每日令牌" in pages["token usage"].content.decode()
    # Names and data, and what is not ours: other apps' models in the sidebar, the admin's own
    # search icon, and permissions (named in English by Django when they are created).
    names = {"English", deployment.endpoint, deployment.api_key_env, deployment.deployment_name}
    names |= {label for _, label in MODEL_CHOICES}
    names |= {"Access attempts", "Task Results", "Search"}
    permissions = set(Permission.objects.values_list("name", flat=True))
    for name, response in pages.items():
        assert response.status_code == 200, name
        html = response.content.decode()
        assert '<html lang="zh-hans"' in html, name
        shown = names | permissions if name == "user" else names
        assert leftover_english(html, allowed=shown) == set(), name


@pytest.mark.django_db
def test_the_sign_in_refusal_is_chinese(entra, chinese_client: Client) -> None:
    someone = entra.add_person(tid="99999999-0000-0000-0000-000000000000")
    response = sign_in(chinese_client, entra, someone)
    assert response.status_code == 403
    html = response.content.decode()
    assert "此应用仅接受本组织的账号" in html
    assert leftover_english(html) == set()


def test_the_check_finds_an_unmarked_string() -> None:
    """The page check itself: English of the interface left in a page is found."""
    assert leftover_english("<p>新建对话</p><button>Retry</button>") == {"Retry"}
    assert leftover_english('<p class="user-text">Retry please</p>') == set()
    assert settings.LANGUAGE_CODE == "en"
