"""`python -m devserver`: moto, the template's resources, and the API on http://localhost:8000/ap/v1/agent."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import socket
import sys
import time

from .template import ROOT, Template


def build(rate_limit_per_minute: int | None = None):
    """Everything but the listening socket: moto up, resources created, functions loaded."""
    from .resources import create_resources, start_moto

    sys.path.insert(0, str(ROOT / "layers" / "common"))
    template = Template()
    moto_url = start_moto(int(os.environ["MOTO_SERVER_PORT"]) if os.environ.get("MOTO_SERVER_PORT") else None)
    # Open, as the spec's development environment is, unless AUTH=keys; keys then checked at every request (no cache)
    # against ADMIN_API_KEY and the table, never a Secrets Manager secret.
    os.environ.setdefault("AUTH", "open")
    os.environ.setdefault("AUTH_CACHE_TTL_S", "0")
    if os.environ["AUTH"] == "keys" and not os.environ.get("ADMIN_API_KEY"):
        os.environ["ADMIN_API_KEY"] = "adm-" + secrets.token_urlsafe(24)
        print(f"ADMIN_API_KEY was not set: the operator's key for this run is {os.environ['ADMIN_API_KEY']}")
    os.environ["ADMIN_API_KEY_SECRET"] = ""
    os.environ["CONSOLE_WEBSOCKET_URL"] = ""  # the console's live channels are this server's own, as its API is
    for key, value in template.environment().items():
        os.environ.setdefault(key, value)  # the caller's environment wins (OPENAI_API_KEY, limits, ...)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # EMF lines are for CloudWatch, not a terminal
    create_resources(template)
    from .lambdas import route_invokes

    route_invokes(template)  # lambda.invoke of a template function runs its handler (the sandbox, for run_python)
    from .events import EventRouter
    from .gateway import Gateway

    EventRouter(template).create().start()  # the template's EventBridge rules (S3 object events -> finalizer)
    from .executions import ExecutionEvents

    ExecutionEvents(template).start()  # runs' status changes -> EventBridge -> the run_events function

    _warm(os.environ.get("WEBSOCKET_ENDPOINT"))
    if rate_limit_per_minute is None:
        raw = os.environ.get("RATE_LIMIT_PER_MINUTE", "")
        rate_limit_per_minute = int(raw) if raw.strip() else int(template.parameter_default("RateLimitPerMinute") or 0)
    return Gateway(template, rate_limit_per_minute=rate_limit_per_minute), moto_url


def _warm(websocket_endpoint: str | None) -> None:
    """What a deployed API has done before its first client, done before this one's: the functions' clients made,
    and moto's request router built for each service they call (a second each, paid by the first request
    otherwise: a burst of 50 WebSocket clients at start-up waited on it)."""
    from agent_core import aws, push

    aws.client("lambda").list_functions(MaxItems=1)
    aws.client("stepfunctions").list_state_machines(maxResults=1)
    aws.client("dynamodb").list_tables(Limit=1)
    aws.client("events").list_rules(Limit=1)
    aws.client("s3").list_buckets()
    if websocket_endpoint:
        push.management_client(websocket_endpoint)


def _port_is_free(host: str, port: int) -> None:
    """Says so at once when the port is taken, before anything starts (and before the ready line is printed)."""
    with socket.socket() as probe:
        # As uvicorn binds: a port left in TIME_WAIT by the last server is free, a listening one is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            sys.exit(f"port {port} on {host} is not free ({exc.strerror}): stop what uses it, or pick another port, "
                     f"e.g. PORT={port + 1} make dev")  # fmt: skip


def _isolation() -> str:
    from agent_core.sandbox.isolation import choose

    isolation = choose(os.environ.get("SANDBOX_ISOLATION", ""))
    why = isolation.unavailable()
    if why is not None:
        return f"REFUSES to run code: {why}"
    if isolation.name == "none":
        return "NOT ISOLATED (SANDBOX_ISOLATION=none): the agent's code can read and change what this user can"
    return f"isolated by {isolation.name} (SANDBOX_ISOLATION); {isolation.bounds()}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devserver", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args()
    _port_is_free(args.host, args.port)
    # Pushes reach this server's @connections endpoint, as they reach the WebSocket API's on AWS.
    os.environ["WEBSOCKET_ENDPOINT"] = f"http://127.0.0.1:{args.port}"
    started = time.monotonic()
    gateway, moto_url = build()
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(message)s")  # Mangum's one line per request is the access log
    logging.getLogger("botocore").setLevel(logging.WARNING)
    limit = gateway.limiter.per_minute
    print(
        f"moto (AWS APIs) on {moto_url}; table, bucket and functions from template.yaml "
        f"({len(gateway.routes)} routes, ready in {time.monotonic() - started:.1f}s)"
    )
    print(f"rate limit: {limit or 'off'} requests/minute per client (RATE_LIMIT_PER_MINUTE)")
    if os.environ.get("AUTH") == "keys":
        print("authentication: keys (AUTH=keys): send Authorization: Bearer <key>; the operator's is ADMIN_API_KEY")
    else:
        print("authentication: off, as the spec's development environment (AUTH=keys turns it on)")
    print(f"run_python: {_isolation()}")
    print(f"Agent Protocol API: http://localhost:{args.port}/ap/v1/agent", flush=True)
    print(f"WebSocket: ws://localhost:{args.port}/ap/v1/agent/tasks/{{task_id}}/ws and .../logs/ws")
    print(f"Console: http://localhost:{args.port}/console/", flush=True)
    uvicorn.run(gateway, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
