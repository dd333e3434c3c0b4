"""The 500 handler: a database error outside any view still gets the 503 page."""

from django.db import OperationalError
from django.test import RequestFactory

from config.unavailable import server_error


def test_a_database_error_outside_a_view_is_the_503_page(rf: RequestFactory) -> None:
    request = rf.get("/")
    try:
        raise OperationalError("connection refused")
    except OperationalError:
        response = server_error(request)
    assert response.status_code == 503
    assert b"try again in a moment" in response.content
    assert b"connection refused" not in response.content


def test_any_other_error_is_still_a_500(rf: RequestFactory) -> None:
    request = rf.get("/")
    try:
        raise ValueError("a bug")
    except ValueError:
        response = server_error(request)
    assert response.status_code == 500
