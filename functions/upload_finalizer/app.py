"""S3 `Object Created` (through EventBridge): finalizes the presigned upload the object belongs to."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent, event_source

from agent_core import artifacts

logger = Logger()


@logger.inject_lambda_context
@event_source(data_class=S3EventBridgeNotificationEvent)
def handler(event: S3EventBridgeNotificationEvent, context: Any) -> dict[str, Any]:
    artifact = artifacts.finalize_object(object_key=event.detail.object.key)
    return {"finalized": artifact.artifact_id if artifact else None}
