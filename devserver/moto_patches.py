"""What moto's in-memory backends need to serve the dev server and the tests as AWS would, under concurrency.

- Each write (and each transaction) is atomic: moto does not guard against two threads checking a condition at
  once, so one lock goes around its writes (the step lease and the counters rely on conditional writes), and
  around its reads, which iterate what a concurrent write changes.
- A transaction costs what it touches: moto backs up every table a transaction names with a deep copy, once per
  operation, so a transaction's cost grew with the table (seconds, after a day of dev-server use). The backup here
  is of the items the transaction touches, restored when it is cancelled.
- Requests do not queue behind each other for nothing: moto takes one process-wide lock on every request to see
  whether the account's backend exists yet; with a dozen threads busy, that lock convoys behind the GIL (a burst
  of 50 WebSocket handshakes spent more time there than in DynamoDB). Once it exists, no lock is needed.
- A stop right after a start stops the execution: moto marks an execution RUNNING before its worker thread has
  parsed the definition and made its environment, and `StopExecution` in that gap raised AttributeError (a 500 to
  the caller, and the execution went on). The stop now waits, bounded, for the environment; and the program counts
  as running from then on, so a stop before its first state aborts it (moto ignored a stop until the first state
  had begun, and the execution ran on).
"""

from __future__ import annotations

import copy
import threading
import types
from typing import Any

from moto.core.base_backend import BackendDict
from moto.dynamodb import models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.program.program import Program
from moto.stepfunctions.parser.asl.eval.program_state import ProgramRunning, ProgramStopped
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from .moto_speed import patch_speed

# Reads too: moto's Query and Scan iterate the table's dicts, which a concurrent write changes under them
# ("dictionary changed size during iteration").
_SERIALIZED = (
    "put_item", "update_item", "delete_item", "batch_write_item", "execute_transaction",
    "get_item", "query", "scan", "batch_get_item",
)  # fmt: skip
_write_lock = threading.RLock()


def patch_moto() -> None:
    """Patches moto once per process."""
    patch_speed()  # devserver.moto_speed: items written out as they are, lookups made once
    if getattr(DynamoDBBackend.transact_write_items, "_hardened", False):
        return
    BackendDict._create_account_specific_backend = _unless_exists(BackendDict._create_account_specific_backend)  # type: ignore[method-assign]
    for name in _SERIALIZED:
        setattr(DynamoDBBackend, name, _locked(getattr(DynamoDBBackend, name)))
    # moto's own whole-table backup becomes a no-op (a Table "copies" to itself); _transact keeps item backups.
    models.copy = types.SimpleNamespace(deepcopy=_deepcopy_but_tables)  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = _transact(DynamoDBBackend.transact_write_items)  # type: ignore[method-assign]
    _stop_waits_for_start()


def _unless_exists(create: Any) -> Any:
    def create_account_specific_backend(self: BackendDict[Any], account_id: str) -> None:
        if account_id not in self:  # a dict lookup: atomic, and the backend is never removed while the mock runs
            create(self, account_id)

    return create_account_specific_backend


def _locked(method: Any) -> Any:
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _write_lock:
            return method(self, *args, **kwargs)

    return locked


def _deepcopy_but_tables(value: Any, memo: Any = None) -> Any:
    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _transact(original: Any) -> Any:
    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        with _write_lock:
            backups = [_backup(self, op) for item in transact_items for op in item.values()]
            try:
                original(self, transact_items)
            except Exception:
                for restore in reversed(backups):
                    if restore is not None:
                        restore()
                raise

    transact_write_items._hardened = True  # type: ignore[attr-defined]
    return transact_write_items


def _backup(backend: DynamoDBBackend, op: dict[str, Any]) -> Any:
    """A function that puts back the item `op` names as it is now (None: nothing to put back)."""
    try:
        table = backend.get_table(op["TableName"])
        attrs = op.get("Key") or op["Item"]
        key = {name: attrs[name] for name in (table.hash_key_attr, table.range_key_attr) if name}
        hash_key, range_key = backend.get_keys_value(table, key)
    except Exception:  # moto reports what is wrong with the operation itself
        return None
    before = copy.deepcopy(table.get_item(hash_key, range_key))

    def restore() -> None:
        if before is None:
            table.delete_item(hash_key, range_key)
        elif range_key is not None:
            table.items[hash_key][range_key] = before
        else:
            table.items[hash_key] = before

    return restore


_ENVIRONMENT_WAIT_S = 30.0  # parsing the definition takes milliseconds; a loaded machine may take far longer


def _stop_waits_for_start() -> None:
    made = ExecutionWorker._get_evaluation_environment
    stop = ExecutionWorker.stop
    evaluate = Program.eval

    def environment(self: ExecutionWorker) -> Any:
        env = made(self)
        # Running from now on, not from its first state: moto's stop takes effect only on a running program, and a
        # stop that came in between was lost (the execution then ran its first state and ended FAILED or SUCCEEDED).
        env._program_state = ProgramRunning()
        self.env = env  # before the event: a stop that was waiting finds it
        _ready(self).set()
        return env

    def eval_unless_stopped(self: Program, env: Any) -> None:
        if isinstance(env._program_state, ProgramStopped):  # stopped before its first state: it ends ABORTED
            EvalComponent.eval(self, env)  # no state runs; the program records its end as aborted
            return
        evaluate(self, env)

    Program.eval = eval_unless_stopped  # type: ignore[method-assign]

    def stop_when_started(self: ExecutionWorker, **kwargs: Any) -> None:
        if self.env is None and not _ready(self).wait(_ENVIRONMENT_WAIT_S):
            raise RuntimeError("the execution's worker did not start")
        stop(self, **kwargs)

    ExecutionWorker._get_evaluation_environment = environment  # type: ignore[method-assign]
    ExecutionWorker.stop = stop_when_started  # type: ignore[method-assign]


def _ready(worker: ExecutionWorker) -> threading.Event:
    # setdefault on the instance's dict is atomic under the GIL: the stopping and the starting thread share one event.
    return worker.__dict__.setdefault("_environment_ready", threading.Event())  # type: ignore[no-any-return]
