import factory
from django.conf import settings
from django.contrib.auth.hashers import make_password

from accounts.models import User
from chat.models import Deployment

PASSWORD = "correct horse battery staple"
# Hashing once keeps factories fast; every factory user signs in with PASSWORD.
_PASSWORD_HASH = make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = _PASSWORD_HASH


class DeploymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Deployment

    name = factory.Sequence(lambda n: f"GPT-4.1 Sweden {n}")
    endpoint = "https://contoso-sweden.openai.azure.com"
    region = "swedencentral"
    deployment_name = "gpt41"
    model = "gpt-4.1"
    auth_mode = Deployment.AuthMode.API_KEY
    api_key_env = "AZURE_OPENAI_API_KEY"


def session_for(user: User) -> str:
    """A real signed-in session for ``user``; returns its key (the ``sessionid`` cookie)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


def socket_headers(
    session_key: str, *, origin: bytes = b"http://127.0.0.1", host: bytes = b"127.0.0.1"
) -> list[tuple[bytes, bytes]]:
    """What a browser sends when a page on ``origin`` opens a socket to ``host``."""
    cookie = f"{settings.SESSION_COOKIE_NAME}={session_key}".encode()
    return [(b"origin", origin), (b"host", host), (b"cookie", cookie)]
