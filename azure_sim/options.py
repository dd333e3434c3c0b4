"""Per-request behaviour, chosen with ``key=value`` options.

Options are layered, each layer overriding the one before: the server's defaults, the
deployment's own options (set through the control API: ``PUT /_simulator/deployments/<name>``
with ``{"options": "tps=0,fault=rate_limit"}``; a deployment's name stays a name Azure would
accept), the ``x-simulator`` request header
(``ttft_ms=0;fault=rate_limit``) and a ``[[sim ...]]`` directive in the newest user text. A fault
programmed through the control API is applied last. Unknown names and bad values are refused with
a 400 so that a typo in a test cannot pass silently.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from azure_sim.defaults import SimulatorConfig


class Fault(StrEnum):
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    UNAVAILABLE = "unavailable"
    STALL = "stall"
    CUT = "cut"
    CONTENT_FILTER_PROMPT = "content_filter_prompt"
    CONTENT_FILTER_OUTPUT = "content_filter_output"
    FAILED = "failed"
    ERROR_EVENT = "error_event"
    ERROR_EVENT_NESTED = "error_event_nested"
    FORGET = "forget"
    CONTEXT_TOO_LONG = "context_too_long"


# Faults that happen while a reply is being generated; they mean nothing to retrieve or delete.
GENERATION_FAULTS = frozenset(
    {
        Fault.CONTENT_FILTER_OUTPUT,
        Fault.FAILED,
        Fault.ERROR_EVENT,
        Fault.ERROR_EVENT_NESTED,
    }
)

CONTENT_FILTER_CATEGORIES = frozenset(
    {
        "hate",
        "sexual",
        "violence",
        "self_harm",
        "jailbreak",
        "protected_material_text",
        "protected_material_code",
    }
)


class OptionError(ValueError):
    """A simulator option with an unknown name or an unusable value."""


@dataclass(frozen=True, slots=True)
class Options:
    accept_ms: int
    ttft_ms: int
    tps: float
    burst: int
    words: int
    echo: bool = False
    recall: bool = False
    fault: Fault | None = None
    after: int = 5
    times: int | None = None
    retry_after_ms: int = 1000
    category: str = "hate"

    @classmethod
    def from_config(cls, config: SimulatorConfig) -> "Options":
        return cls(
            accept_ms=config.accept_ms,
            ttft_ms=config.ttft_ms,
            tps=config.tps,
            burst=config.burst,
            words=config.words,
        )

    @property
    def delta_interval(self) -> float:
        """Seconds between two text deltas; 0 sends them as fast as possible."""
        return self.burst / self.tps if self.tps > 0 else 0.0


def _bounded_int(low: int, high: int) -> Callable[[object], int]:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise OptionError(f"expected a whole number, got {value!r}")
        try:
            number = int(value)
        except ValueError as exc:
            raise OptionError(f"expected a whole number, got {value!r}") from exc
        if not low <= number <= high:
            raise OptionError(f"expected a number from {low} to {high}, got {number}")
        return number

    return convert


def _rate(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise OptionError(f"expected a number, got {value!r}")
    try:
        number = float(value)
    except ValueError as exc:
        raise OptionError(f"expected a number, got {value!r}") from exc
    if not 0 <= number <= 1_000_000:
        raise OptionError(f"expected a number from 0 to 1000000, got {value!r}")
    return number


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise OptionError(f"expected true or false, got {value!r}")


def _fault(value: object) -> Fault | None:
    text = str(value).strip().lower()
    if text in {"", "none"}:
        return None
    try:
        return Fault(text)
    except ValueError as exc:
        known = ", ".join(sorted(fault.value for fault in Fault))
        raise OptionError(f"unknown fault {value!r}; known faults: {known}") from exc


def _category(value: object) -> str:
    text = str(value).strip().lower()
    if text not in CONTENT_FILTER_CATEGORIES:
        known = ", ".join(sorted(CONTENT_FILTER_CATEGORIES))
        raise OptionError(f"unknown content filter category {value!r}; known: {known}")
    return text


_CONVERTERS: dict[str, Callable[[object], Any]] = {
    "accept_ms": _bounded_int(0, 600_000),
    "ttft_ms": _bounded_int(0, 600_000),
    "tps": _rate,
    "burst": _bounded_int(1, 10_000),
    "words": _bounded_int(1, 50_000),
    "echo": _flag,
    "recall": _flag,
    "fault": _fault,
    "after": _bounded_int(0, 1_000_000),
    "times": _bounded_int(0, 1_000_000),
    "retry_after_ms": _bounded_int(0, 3_600_000),
    "category": _category,
}

OPTION_NAMES = frozenset(_CONVERTERS)


def apply_options(options: Options, raw: Mapping[str, object], *, source: str) -> Options:
    """Return ``options`` with the raw ``key=value`` pairs from ``source`` applied on top."""
    changes: dict[str, Any] = {}
    for name, value in raw.items():
        converter = _CONVERTERS.get(name)
        if converter is None:
            known = ", ".join(sorted(OPTION_NAMES))
            raise OptionError(f"unknown simulator option {name!r} in {source}; known: {known}")
        try:
            changes[name] = converter(value)
        except OptionError as exc:
            raise OptionError(f"simulator option {name!r} in {source}: {exc}") from None
    return replace(options, **changes) if changes else options


_SEPARATORS = re.compile(r"[,;\s]+")


def parse_option_text(text: str) -> dict[str, str]:
    """``"a=1, b=2;c"`` -> ``{"a": "1", "b": "2", "c": "true"}``: a bare name turns a flag on."""
    pairs: dict[str, str] = {}
    for token in _SEPARATORS.split(text.strip()):
        if not token:
            continue
        name, has_value, value = token.partition("=")
        pairs[name.strip().lower()] = value.strip() if has_value else "true"
    return pairs


# The directive and the blank it leaves behind: trailing spaces and, when it sat on a line of its
# own, that line's end, so that echoed text comes back exactly as the user wrote the rest.
DIRECTIVE = re.compile(r"\[\[sim(?P<body>(?:\s[^\]]*)?)\]\][ \t]*(?:\r?\n)?")


def extract_directives(text: str) -> tuple[str, dict[str, str]]:
    """Remove every ``[[sim ...]]`` directive from ``text``; later directives win."""
    options: dict[str, str] = {}
    for match in DIRECTIVE.finditer(text):
        options.update(parse_option_text(match["body"]))
    return DIRECTIVE.sub("", text), options
