"""The ID token: checked before anything in it is believed.

Signature from the tenant's JWKS (RS256 only), ``iss`` equal to the discovery document's issuer,
``aud`` equal to our client id, ``exp``/``nbf``/``iat`` within a minute's clock skew, ``nonce``
equal to the one this session sent, ``tid`` equal to our tenant, and an ``oid`` to know the
person by. Guests (``acct`` = 1, or an identity from another issuer) only with
ENTRA_ALLOW_GUESTS. Every refusal is a :class:`SignInRefused` with a sentence for the person and
a short reason for the log; the token itself is never logged.
"""

from __future__ import annotations

import hmac
import threading
from typing import Any

import jwt
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy

from accounts.entra_config import Discovery

CLOCK_SKEW_SECONDS = 60
ALGORITHMS = ["RS256"]

TRY_AGAIN = gettext_lazy(
    "Signing in with Microsoft did not complete. Start again from the sign-in page."
)


class SignInRefused(Exception):
    def __init__(
        self, reason: str, message: str | Promise = TRY_AGAIN, *, status: int = 403
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message
        self.status = status


_lock = threading.Lock()
_key_sets: dict[str, jwt.PyJWKClient] = {}


def _key_set(jwks_uri: str, *, timeout: float) -> jwt.PyJWKClient:
    with _lock:
        client = _key_sets.get(jwks_uri)
        if client is None:
            # Keys are cached for five minutes; an unknown key id refetches the set once, so
            # a key Microsoft rotates in is found.
            client = jwt.PyJWKClient(jwks_uri, lifespan=300, timeout=int(timeout) or 1)
            _key_sets[jwks_uri] = client
        return client


def validate_id_token(
    token: str,
    *,
    nonce: str | None,
    discovery: Discovery,
    client_id: str,
    tenant_id: str,
    allow_guests: bool,
    timeout: float,
) -> dict[str, Any]:
    """The token's claims, once every check has passed."""
    try:
        key = _key_set(discovery.jwks_uri, timeout=timeout).get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=ALGORITHMS,
            audience=client_id,
            issuer=discovery.issuer,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise SignInRefused("expired") from error
    except jwt.InvalidAudienceError as error:
        raise SignInRefused("wrong_audience") from error
    except jwt.InvalidIssuerError as error:
        raise SignInRefused("wrong_issuer") from error
    except jwt.ImmatureSignatureError as error:
        raise SignInRefused("not_yet_valid") from error
    except (jwt.PyJWKClientError, jwt.InvalidSignatureError) as error:
        raise SignInRefused("bad_signature") from error
    except jwt.PyJWTError as error:
        raise SignInRefused(f"invalid_token:{error.__class__.__name__}") from error
    if not nonce or not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise SignInRefused("nonce_mismatch")
    if str(claims.get("tid", "")).lower() != tenant_id.lower():
        raise SignInRefused(
            "wrong_tenant",
            gettext(
                "This app accepts accounts of its own organisation only. Sign in with your work "
                "account."
            ),
        )
    if not claims.get("oid"):
        raise SignInRefused("no_object_id")
    if not allow_guests and _is_guest(claims):
        raise SignInRefused(
            "guest",
            gettext(
                "Guest accounts cannot use this app. Sign in with an account of this "
                "organisation, or ask your administrator."
            ),
        )
    return claims


def _is_guest(claims: dict[str, Any]) -> bool:
    """``acct`` 1 is a guest in Entra's own words; an ``idp`` other than the issuer is an
    identity that another organisation or provider vouches for."""
    if str(claims.get("acct", "0")) == "1":
        return True
    idp = claims.get("idp")
    return bool(idp) and idp != claims.get("iss")
