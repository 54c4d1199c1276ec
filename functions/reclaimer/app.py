"""Gives back run slots whose end was lost: every few minutes (the template's Schedule), each held slot's execution
is looked up, and a run whose execution has ended, or never started, is ended through the same path as the
execution's status event (agent_core.runs.reclaim_slots). Nothing is done for a run still running."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger

from agent_core import runs

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    reclaimed = runs.reclaim_slots(grace_s=int(os.environ.get("RECLAIM_GRACE_S", "600")))
    if reclaimed:
        logger.warning("run slots given back", extra={"runs": reclaimed})
    return {"reclaimed": reclaimed}
