"""axe-core (shipped inside axe-playwright-python, so nothing is fetched) run on a page."""

from typing import Any

from axe_playwright_python.sync_playwright import Axe

BLOCKING = ("serious", "critical")
_axe = Axe()


def blocking_violations(page: Any, context: str | None = None) -> list[str]:
    """The serious and critical violations axe finds, one line each with where they are."""
    results = _axe.run(page, context=context)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:5])
        for violation in results.response["violations"]
        if violation["impact"] in BLOCKING
    ]
