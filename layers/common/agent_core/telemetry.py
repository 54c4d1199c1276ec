"""Business metrics as CloudWatch embedded metric format (EMF) log lines, through Powertools Metrics: no API call,
CloudWatch extracts them from the function's log. POWERTOOLS_METRICS_NAMESPACE names them (the template sets it);
POWERTOOLS_METRICS_DISABLED=true silences them (the dev server does)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _metrics() -> Any:
    from aws_lambda_powertools import Metrics

    return Metrics()


def record_step(*, model: str, tokens: int, cost_usd: float, duration_ms: float, tool_calls: int, failed: bool) -> None:
    """One step's usage and outcome, by model."""
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = _metrics()
    metrics.add_dimension(name="model", value=model)
    if metrics.service:
        # The service alone as a second dimension set: all models in one series, which the spend alarm and the
        # dashboard's totals read (a task may pick any allowed model, so no fixed list of model series adds up).
        metrics.add_dimensions(service=metrics.service)
    metrics.add_metric(name="Steps", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="StepErrors", unit=MetricUnit.Count, value=int(failed))
    metrics.add_metric(name="StepTokens", unit=MetricUnit.Count, value=tokens)
    metrics.add_metric(name="StepCostUSD", unit=MetricUnit.NoUnit, value=cost_usd)
    metrics.add_metric(name="StepDuration", unit=MetricUnit.Milliseconds, value=duration_ms)
    metrics.add_metric(name="ToolCalls", unit=MetricUnit.Count, value=tool_calls)
    try:
        metrics.flush_metrics()  # one record per step, whatever else the invocation does
    finally:
        metrics.clear_metrics()  # a disabled flush keeps them: a long-lived dev server must not pile them up
