"""boto3 clients, created on first use and cached: a client made at import time would escape moto in tests and
would add to every cold start, used or not."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# A Lambda instance makes one call at a time; the dev server's one process makes many at once (max_pool_connections).
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10, max_pool_connections=50
)
# Presigned URLs and POST policies signed with SigV4 (botocore would still presign SigV2 in some regions).
_PER_SERVICE = {
    "s3": _CONFIG.merge(Config(signature_version="s3v4")),
    # The sandbox function runs for up to its timeout; a retry would run the code a second time past the step's end.
    "lambda": _CONFIG.merge(Config(read_timeout=70, retries={"mode": "standard", "max_attempts": 1})),
}


_creating = threading.Lock()


def client(service: str) -> Any:
    """The service's client, made once per process: threads that ask at the same moment (the dev server's, under a
    burst of requests) wait for the one being made instead of each making their own."""
    with _creating:
        return _made(service)


@cache
def _made(service: str) -> Any:
    # AWS_ENDPOINT_URL (honoured by boto3 itself) points every client at the dev server's moto.
    return boto3.client(service, config=_PER_SERVICE.get(service, _CONFIG))


def reset() -> None:
    """Forget cached clients and the adapters built on them (tests start a fresh moto per test)."""
    _made.cache_clear()
