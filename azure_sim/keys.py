"""Who may call the simulated resource: an API key, or a bearer token that is one or is shaped
like an Entra ID access token; and the 401 a caller without either gets."""

import base64
import hmac
import json

from azure_sim.asgi_http import HTTPError
from azure_sim.defaults import SimulatorConfig
from azure_sim.refusals import ACCESS_DENIED


def looks_like_entra_token(token: str) -> bool:
    """An Entra ID access token is a JWT: three base64url parts, the first a JSON header naming
    its algorithm. An API key is never shaped so, so a wrong key sent as a bearer token fails
    here as it would on Azure."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header


def unauthorized(headers: dict[str, str], config: SimulatorConfig) -> HTTPError:
    offered = headers.get("api-key") or headers.get("authorization", "").partition(" ")[2]
    if config.echo_wrong_key and offered.strip():
        return HTTPError(
            401,
            "invalid_api_key",
            f"Incorrect API key provided: {offered.strip()}. You can find your API key in "
            "the resource's Keys and Endpoint page.",
        )
    return HTTPError(401, "401", ACCESS_DENIED, error_type=None)


def authorized(headers: dict[str, str], config: SimulatorConfig) -> bool:
    key = headers.get("api-key")
    if key is None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        if config.accept_entra_tokens and looks_like_entra_token(token):
            return True
        key = token
    return any(hmac.compare_digest(key.encode(), accepted.encode()) for accepted in config.api_keys)
