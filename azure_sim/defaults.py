"""Server-wide settings of the simulator: the defaults every request starts from."""

from dataclasses import dataclass

THIRTY_DAYS = 30 * 24 * 60 * 60


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    api_keys: tuple[str, ...] = ("sim-key",)
    # Entra ID tokens cannot be checked offline, so a bearer token shaped like one (a JWT)
    # passes unless switched off; any other bearer token is an API key and must be one of these.
    accept_entra_tokens: bool = True
    # Answer a wrong key as OpenAI's own API and some gateways do, repeating it in the 401's
    # message ("Incorrect API key provided: ..."), so the app's redaction can be tested.
    echo_wrong_key: bool = False
    region: str = "swedencentral"
    retention_seconds: int = THIRTY_DAYS
    previous_response_not_found_status: int = 400
    # Milliseconds a create request waits before it is answered at all, as on a busy resource.
    accept_ms: int = 0
    ttft_ms: int = 300
    tps: float = 80.0
    burst: int = 1
    words: int = 300
    # Bounds on memory for long benchmark runs: the oldest responses are evicted first.
    max_stored_responses: int = 20_000
    request_log_size: int = 10_000
