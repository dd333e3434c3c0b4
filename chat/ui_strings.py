"""The words chat.js shows, in the page's language: the page hands them over as JSON
(``{{ ui_strings|json_script:"ui-strings" }}``), so the script carries no English of its own."""

from django.http import HttpRequest
from django.utils.translation import gettext


def ui_strings(request: HttpRequest) -> dict[str, dict[str, str]]:
    return {
        "ui_strings": {
            "copy": gettext("Copy"),
            "copyCode": gettext("Copy code"),
            "copied": gettext("Copied"),
            "copyFailed": gettext("Copy failed"),
            "sending": gettext("Sending…"),
            "busy": gettext("A reply is still being written: press Stop or wait, then send."),
            "signedOut": gettext("Signed out: reload to sign in again"),
            "gone": gettext("This conversation is no longer available"),
            "tooManyTabs": gettext("Too many chat tabs are open: close some, then reload this one"),
            "reconnecting": gettext("Reconnecting…"),
        }
    }
