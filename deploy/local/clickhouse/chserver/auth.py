"""Who a request is from: ClickHouse's three ways to pass credentials, and the password check.

Two steps rather than one so that the request log can name the claimed user even when its
password turns out wrong.
"""

from __future__ import annotations

import base64
import hmac
from typing import Dict, Tuple

from .errors import ClickHouseError
from .request import Request


def credentials(request: Request) -> Tuple[str, str]:
    """The (user, password) a request claims; mixing ways of passing them is refused."""
    headers = request.headers
    header_user = headers.get("x-clickhouse-user")
    header_key = headers.get("x-clickhouse-key")
    authorization = headers.get("authorization")
    param_user = request.param("user")
    param_password = request.param("password")
    using_headers = header_user is not None or header_key is not None
    using_params = param_user is not None or param_password is not None
    if using_headers and (authorization is not None or using_params):
        raise ClickHouseError.of(
            "AUTHENTICATION_FAILED",
            "Invalid authentication: it is not allowed to use X-ClickHouse HTTP headers "
            "and other authentication methods simultaneously",
        )
    if authorization is not None and using_params:
        raise ClickHouseError.of(
            "AUTHENTICATION_FAILED",
            "Invalid authentication: it is not allowed to use Authorization HTTP header "
            "and authentication via parameters simultaneously",
        )
    user, password = "default", ""
    if using_headers:
        user, password = header_user or "default", header_key or ""
    elif authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise ClickHouseError.of(
                "AUTHENTICATION_FAILED", f"Invalid authentication: '{scheme}' HTTP Authorization scheme is not supported"
            )
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise ClickHouseError.of("AUTHENTICATION_FAILED", "Invalid authentication: malformed Basic credentials") from None
        user, _, password = decoded.partition(":")
        user = user or "default"
    elif using_params:
        user, password = param_user or "default", param_password or ""
    return user, password


def check_password(users: Dict[str, str], user: str, password: str) -> None:
    expected = users.get(user)
    if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
        raise ClickHouseError.of(
            "AUTHENTICATION_FAILED",
            f"{user}: Authentication failed: password is incorrect, or there is no user with such name.",
        )
