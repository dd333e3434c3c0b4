import pytest

from tests.entra_fixtures import entra, oidc_provider  # noqa: F401  (sign-in and browser tests)
from tests.factories import PASSWORD, UserFactory
from tests.simulator_fixtures import *  # noqa: F403  (fixtures shared by chat and browser tests)


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test runs in its own event loop; a channel layer's locks and pools belong to one."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def fresh_cache():
    """Rate limits and reply heartbeats live in the cache; tests start with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def english_by_default():
    """A request activates its language in the thread that served it and leaves it there;
    every test starts in the default language."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()
