import pytest
from django.test import Client, override_settings


def test_healthz_answers_without_sign_in(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_database_channel_layer_and_cache(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": True, "channel_layer": True, "cache": True},
    }


@pytest.mark.django_db
def test_readyz_is_degraded_when_the_channel_layer_is_unreachable(client: Client) -> None:
    # Pages and replies still work in each process: it stays in rotation, and says why.
    unreachable = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Port 9 on loopback: nothing listens there, so connecting fails at once.
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:9/0"}]},
        }
    }
    from channels.layers import channel_layers

    with override_settings(CHANNEL_LAYERS=unreachable):
        channel_layers.backends.clear()
        try:
            response = client.get("/readyz")
        finally:
            channel_layers.backends.clear()
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["channel_layer"] is False
