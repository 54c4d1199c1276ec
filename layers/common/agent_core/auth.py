"""Who is calling: client keys (made, listed and revoked by the operator), the key a request presents, and the
caller it stands for (DESIGN §8).

A client key reads `agk_<key_id>_<secret>`: the id finds its item with one GetItem, the secret is compared as a
SHA-256 digest in constant time. The operator's key is ADMIN_API_KEY locally, a Secrets Manager secret on AWS.
The authorizer (functions/authorizer) turns a key into a caller once, at the edge; the functions read the caller
from the request's authorizer context and never see the key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .config import get_settings
from .errors import Conflict, Forbidden, KeyNotFound, Unauthorized
from .storage.keys import KeyItems, KeyRecord
from .timeutil import now_iso

_PREFIX = "agk_"
_ID_HEX = 16
OPERATOR_ID = "operator"


@dataclass(frozen=True)
class Caller:
    """A client (its key's id) or the operator, who sees every task. With authentication off everyone is the
    operator, as the spec's development profile has no notion of clients."""

    client_id: str
    operator: bool = False

    @property
    def owner(self) -> str | None:
        """What a task this caller creates records as its owner: nothing for the operator (tasks made before keys
        existed have no owner either, and so belong to the operator)."""
        return None if self.operator else self.client_id

    def sees(self, owner: str | None) -> bool:
        return self.operator or owner == self.client_id

    def require_operator(self) -> None:
        if not self.operator:
            raise Forbidden()

    def context(self) -> dict[str, str]:
        """What the authorizer hands the functions (API Gateway passes string values)."""
        return {"client_id": self.client_id, "role": "operator" if self.operator else "client"}


OPERATOR = Caller(OPERATOR_ID, operator=True)
ANONYMOUS = Caller("anonymous", operator=True)


def required() -> bool:
    return get_settings().auth_mode == "keys"


# -- the key a request presents ------------------------------------------------------------------------------------


def presented_key(headers: Mapping[str, str] | None, query: Mapping[str, str] | None = None) -> str | None:
    """`Authorization: Bearer <key>`, else `x-api-key`, else, given a WebSocket handshake's `query`, `?token=`: the
    one way a browser's WebSocket can send a key. REST requests have headers for it: a key in their URL would end
    up in histories and proxies' logs, so it does not count there."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    scheme, _, value = (lowered.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if key := (lowered.get("x-api-key") or "").strip():
        return key
    return ((query or {}).get("token") or "").strip() or None


_TOKEN_IN_URL = re.compile(r"(?i)([?&]token=)[^&\s\"']*")


def redacted(text: str) -> str:
    """`text` with the value of any `token=` query parameter replaced, for logs."""
    return _TOKEN_IN_URL.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """Takes keys out of URLs in log records (Mangum's and the dev server's access lines name the query string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg, record.args = redacted(record.getMessage()), None
        elif isinstance(record.msg, str):
            record.msg = redacted(record.msg)
        return True


def caller_of(key: str | None) -> Caller | None:
    """The caller `key` stands for, or None for no key, an unknown one or a revoked one."""
    if not key:
        return None
    admin = _admin_key()
    if admin and hmac.compare_digest(_digest(key), _digest(admin)):
        return OPERATOR
    key_id = _key_id(key)
    record = _cached_key(key_id) if key_id else None
    if record is None or record.revoked_at or not hmac.compare_digest(_digest(key), record.secret_sha256):
        return None
    return Caller(record.key_id)


def from_context(authorizer: Mapping[str, Any] | None) -> Caller:
    """The caller the authorizer named for this request. With authentication on, a request that reached a function
    without one (a route left without the authorizer) is refused rather than trusted."""
    client_id = str((authorizer or {}).get("client_id") or "")
    if client_id:
        return Caller(client_id, operator=(authorizer or {}).get("role") == "operator")
    if required():
        raise Unauthorized()
    return ANONYMOUS


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _key_id(key: str) -> str | None:
    key_id = key[len(_PREFIX) : len(_PREFIX) + _ID_HEX]
    well_formed = key.startswith(_PREFIX) and key[len(_PREFIX) + _ID_HEX : len(_PREFIX) + _ID_HEX + 1] == "_"
    return key_id if well_formed and all(c in "0123456789abcdef" for c in key_id) else None


def _admin_key() -> str | None:
    settings = get_settings()
    if settings.admin_api_key:
        return settings.admin_api_key
    if not settings.admin_api_key_secret:
        return None
    from aws_lambda_powertools.utilities import parameters  # only where the secret is used: the authorizer

    return str(parameters.get_secret(settings.admin_api_key_secret, max_age=300))


_cache: dict[str, tuple[float, KeyRecord | None]] = {}
_cache_lock = threading.Lock()


def _cached_key(key_id: str) -> KeyRecord | None:
    """The key's record, trusted for AUTH_CACHE_TTL_S (0 locally: a revocation holds at once)."""
    ttl = get_settings().auth_cache_ttl_s
    with _cache_lock:
        hit = _cache.get(key_id)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    record = keys().get_key(key_id)
    if ttl > 0:
        with _cache_lock:
            _cache[key_id] = (time.monotonic() + ttl, record)
    return record


def forget_cached_keys() -> None:
    with _cache_lock:
        _cache.clear()


# -- the operator's routes -----------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def keys() -> KeyItems:
    return KeyItems(get_settings().table_name)


def create_key(name: str, budget_usd: float | None = None) -> tuple[KeyRecord, str]:
    """A new client key and its secret, which is not kept: the caller shows it once."""
    key_id = secrets.token_hex(_ID_HEX // 2)
    secret = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = KeyRecord(
        key_id=key_id, name=name, created_at=now_iso(), secret_sha256=_digest(secret), budget_usd=budget_usd
    )
    keys().put_key(record)
    return record, secret


def public_key(record: KeyRecord) -> dict[str, Any]:
    """A key as its routes show it: everything but the secret's digest."""
    return {k: v for k, v in vars(record).items() if k != "secret_sha256"}


def list_keys() -> list[KeyRecord]:
    return sorted(keys().list_keys(), key=lambda k: (k.created_at, k.key_id), reverse=True)


def get_key(key_id: str) -> KeyRecord | None:
    return keys().get_key(key_id)


def revoke_key(key_id: str) -> KeyRecord:
    try:
        record = keys().revoke_key(key_id, now_iso())
    except Conflict as exc:
        raise KeyNotFound(key_id=key_id) from exc
    with _cache_lock:
        _cache.pop(key_id, None)
    return record
