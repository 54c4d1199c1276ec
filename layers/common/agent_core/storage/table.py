"""The single DynamoDB table (DESIGN §2), one module per record kind behind one object:

task      storage/tasks.py      PK=TASK#<id>  SK=TASK; the list indexes ByCreated and ByStatus, sharded
step      storage/steps.py      PK=TASK#<id>  SK=STEP#<seq>; LSI ByRef: REF=STEP#<step_id>
artifact  storage/artifacts.py  PK=TASK#<id>  SK=ARTIFACT#<artifact_id>, and UPLOAD#<artifact_id> (TTL)
counters  storage/counters.py   PK=COUNTERS#<shard>[#DAYS|#MINUTES]: task counts (total, days, minutes), spend; PK=AGENT
run       storage/runs.py       PK=RUNS       SK=RUN#<run_id>: a concurrent-run slot
socket    storage/connections.py  PK=WS#<channel> / CONN#<connection_id>
"""

from __future__ import annotations

from functools import lru_cache

from ..config import get_settings
from .artifacts import ArtifactItems
from .steps import StepItems
from .tasks import TaskItems


class TaskTable(TaskItems, StepItems, ArtifactItems):
    pass


@lru_cache(maxsize=1)
def get_table() -> TaskTable:
    return TaskTable(get_settings().table_name)
