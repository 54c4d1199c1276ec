"""Retry-safe writes: a request that carries an `Idempotency-Key` header is executed once; a retry with the same
key and body gets the first answer again (for 24 hours). Powertools' idempotency utility does the work, with its
records in the single table (PK=IDEMPOTENCY, SK=<hash of the operation and the key>, TTL on expires_at)."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel

from . import aws
from .config import get_settings
from .errors import InvalidRequest, TaskAlreadyRunning

Model = TypeVar("Model", bound=BaseModel)
_TTL_S = 24 * 3600


@lru_cache(maxsize=1)
def _config() -> Any:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    # The hash covers the key alone; the body is checked against the first request's, so a reused key with
    # another body is an error instead of a silent replay.
    return IdempotencyConfig(
        event_key_jmespath="key", payload_validation_jmespath="request", expires_after_seconds=_TTL_S
    )


def _persistence() -> Any:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(
        table_name=get_settings().table_name,
        key_attr="PK",
        sort_key_attr="SK",
        static_pk_value="IDEMPOTENCY",
        expiry_attr="expires_at",
        boto3_client=aws.client("dynamodb"),
    )


_invocation: ContextVar[Any] = ContextVar("lambda_context", default=None)


def remember_invocation(context: Any) -> None:
    """Keeps the Lambda context of this request (cheap: Powertools' utility is imported only when a key is used)."""
    _invocation.set(context)


def once(
    operation: str, key: str | None, request: dict[str, Any], model: type[Model], run: Callable[[], Model]
) -> Model:
    """`run()` once per (operation, key); without a key, every call runs."""
    if key is None:
        return run()
    from aws_lambda_powertools.utilities.idempotency import idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )
    from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

    @idempotent_function(
        data_keyword_argument="call",
        persistence_store=_persistence(),
        config=_config(),
        output_serializer=PydanticSerializer(model),
        key_prefix=operation,
    )
    def execute(call: dict[str, Any]) -> Model:
        return run()

    context = _invocation.get()
    if context is not None:  # an in-progress record expires with the invocation that wrote it: a crash can't block
        _config().register_lambda_context(context)
    try:
        return execute(call={"key": key, "request": request})
    except IdempotencyValidationError as exc:
        raise InvalidRequest(
            "this Idempotency-Key was used with a different request", field="Idempotency-Key", **{"in": "header"}
        ) from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise TaskAlreadyRunning(
            "a request with this Idempotency-Key is still being processed", idempotency_key=key
        ) from exc
