"""/readyz with its dependencies killed: it answers at once and says which one is gone."""

import time

import requests

# /readyz gives each check 0.8 s, all at once.
ANSWER_WITHIN = 1.5


def _readyz(base_url: str) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.get(f"{base_url}/readyz", timeout=10)
    return response, time.monotonic() - started


def test_readyz_is_ok_with_everything_up(database_url, redis_server, start_app):
    app = start_app(database_url=database_url, redis_url=redis_server.url)
    response, _ = _readyz(app.base_url)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": True, "channel_layer": True, "cache": True},
    }


def test_readyz_is_degraded_quickly_when_redis_is_killed(database_url, redis_server, start_app):
    app = start_app(database_url=database_url, redis_url=redis_server.url)
    redis_server.kill()

    response, elapsed = _readyz(app.base_url)

    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "checks": {"database": True, "channel_layer": False, "cache": False},
    }
    assert elapsed < ANSWER_WITHIN

    redis_server.start()
    back, _ = _readyz(app.base_url)
    assert back.json()["status"] == "ok"


def test_readyz_is_unavailable_quickly_when_postgresql_is_killed(
    postgres, database_url, redis_server, start_app
):
    app = start_app(database_url=database_url, redis_url=redis_server.url)
    postgres.kill()

    response, elapsed = _readyz(app.base_url)

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": False, "channel_layer": True, "cache": True},
    }
    assert elapsed < ANSWER_WITHIN


def test_readyz_is_unavailable_quickly_when_both_are_killed(
    postgres, database_url, redis_server, start_app
):
    app = start_app(database_url=database_url, redis_url=redis_server.url)
    postgres.kill()
    redis_server.kill()

    response, elapsed = _readyz(app.base_url)

    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": False,
        "channel_layer": False,
        "cache": False,
    }
    assert elapsed < ANSWER_WITHIN
