"""GET /status: the agent's figures, every one read from where it is kept (counters, the agent's state item, the
tools' registry, this process). A client sees its own tasks, runs and spend against its own budget; the operator
the whole agent's."""

from __future__ import annotations

import os
import resource

from . import VERSION, auth
from .agent.registry import capabilities
from .config import get_settings
from .models import AgentStatus, ApiUsage, MemoryUsage
from .runs import store
from .storage.table import get_table


def _resident_mb() -> int:
    """This process's resident memory now (Linux, as on Lambda); its peak where /proc is not there."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # kilobytes on Linux


def _memory() -> MemoryUsage:
    """This process's resident memory against the function's configured size (the machine's, locally)."""
    used_mb = _resident_mb()
    configured = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    if configured:
        total_mb = int(configured)
    else:
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    return MemoryUsage(used=f"{used_mb}MB", total=f"{total_mb}MB")


def agent_status(caller: auth.Caller = auth.OPERATOR) -> AgentStatus:
    settings = get_settings()
    runs = store()
    state = runs.agent_state()
    if "started_at" not in state:  # nothing recorded a start yet (no restart, no /status before this one)
        runs.record_first_start()
        state = runs.agent_state()
    counters = get_table().counters(caller.owner)
    spent = float(counters.get("cost_usd_total", 0))
    budget = settings.budget_usd
    active = int(counters.get("runs_active", 0))
    if caller.owner:  # a client's own: its running tasks, its key's budget (others' spend is not its business)
        key = auth.get_key(caller.owner)
        budget = key.budget_usd if key else None
        active = int(counters.get("tasks_running", 0))
    return AgentStatus(
        agent_id=settings.agent_id,
        status="restarting" if state.get("status") == "restarting" else "running",
        version=VERSION,
        capabilities=capabilities(),
        active_tasks=max(0, active),
        total_tasks=int(counters.get("tasks_total", 0)),
        uptime=str(state["started_at"]),
        memory_usage=_memory(),
        api_usage=ApiUsage(
            openai_tokens_used=int(counters.get("tokens_total", 0)),
            openai_cost=round(spent, 6),
            budget_usd=budget,
            budget_remaining_usd=None if budget is None else round(max(0.0, budget - spent), 6),
        ),
        limits={
            "max_concurrent_tasks": settings.max_concurrent_runs,
            "task_timeout_seconds": settings.run_timeout_s,
            "max_steps_default": settings.run_max_steps_default,
            "max_steps_ceiling": settings.run_max_steps_ceiling,
            "max_file_bytes": settings.max_file_bytes,
        },
    )
