"""Settings, read once from the environment the template sets (and the dev server copies from the template)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


# The GPT-3.5 and GPT-4 families the spec names, and their current successors.
DEFAULT_ALLOWED_MODELS = "gpt-4o-mini,gpt-4o,gpt-4.1,gpt-4.1-mini,gpt-4-turbo,gpt-4,gpt-3.5-turbo"

# File types (extensions) an upload may have: common documents, data, images, code and archives. `*` allows any.
DEFAULT_FILE_TYPES = (
    "txt,md,markdown,rst,pdf,doc,docx,odt,rtf,ppt,pptx,odp,xls,xlsx,ods,html,htm,tex,epub,"
    "csv,tsv,json,jsonl,ndjson,xml,yaml,yml,toml,ini,cfg,log,parquet,avro,feather,sqlite,db,bin,dat,"
    "png,jpg,jpeg,gif,webp,bmp,svg,tif,tiff,ico,heic,"
    "py,ipynb,js,mjs,ts,tsx,jsx,java,kt,scala,c,h,cc,cpp,hpp,cs,go,rs,rb,php,swift,r,sql,sh,css,scss,lua,pl,dart,"
    "zip,tar,gz,tgz,bz2,xz,7z"
)


def _file_types(raw: str | None) -> frozenset[str]:
    return frozenset(t.strip().lstrip(".").lower() for t in (raw or DEFAULT_FILE_TYPES).split(",") if t.strip())


@dataclass(frozen=True)
class Settings:
    table_name: str
    bucket_name: str
    # Request limits. JSON bodies larger than this are refused with 413 before parsing.
    max_json_body_bytes: int
    # A task's `input` (characters) and its `additional_input` (bytes of JSON): both live in one DynamoDB item (400 KB).
    max_input_chars: int
    max_additional_input_bytes: int
    max_page_size: int
    # Origins browsers may call the API from (comma-separated, or *); the template's API Cors answers preflights.
    cors_allow_origins: tuple[str, ...]
    # Artifacts (agent_core/artifacts.py). A multipart upload through the API may be at most max_upload_body_bytes:
    # API Gateway base64-encodes it, and the event must fit Lambda's 6 MB (the WAF rule in template.yaml uses the
    # same figure). Larger files go through a presigned S3 POST, up to max_file_bytes. The per-task cap keeps the
    # artifact summary on the task item (storage/table.py) far below DynamoDB's 400 KB.
    max_upload_body_bytes: int
    max_file_bytes: int
    max_artifacts_per_task: int
    allowed_file_types: frozenset[str]
    download_url_ttl_s: int
    upload_url_ttl_s: int
    # The agent (docs/agent.md, "Configuration"). No key and no key parameter: the offline model answers.
    openai_api_key: str | None
    openai_api_key_parameter: str | None
    openai_base_url: str | None
    openai_model: str
    openai_allowed_models: tuple[str, ...]
    openai_timeout_s: float
    openai_max_retries: int
    openai_prices_json: str | None
    budget_usd: float | None
    step_lease_s: int
    step_time_budget_s: float
    # The agent's memory (agent/context.py, docs/agent.md): tokens one request to the model may hold (never more
    # than the model's window minus its answer, agent/catalog.py).
    context_budget_tokens: int
    # run_python's sandbox (agent_core/sandbox): the function the steps function invokes, how the child is isolated
    # there (sandbox/isolation.py), wall clock, address space, bytes kept of each of stdout and stderr, and the largest
    # file copied in or saved from output/. The timeout must leave room in the API's 29 s for the model.
    sandbox_function_name: str
    sandbox_isolation: str
    sandbox_timeout_s: float
    sandbox_memory_mb: int
    sandbox_max_output_bytes: int
    sandbox_max_file_bytes: int
    # fetch_url (agent/tools/web.py): seconds for the whole fetch, redirects included, and bytes of body read.
    fetch_timeout_s: float
    fetch_max_bytes: int
    # Multi-step runs (agent_core/runs.py): the state machine, runs at once (the spec's 5), the step budget a run
    # gets without additional_input.max_steps and the most it may ask for, the run's time limit (the state
    # machine's TimeoutSeconds: the spec's hour), and the agent's id in GET /status.
    state_machine_arn: str
    max_concurrent_runs: int
    run_max_steps_default: int
    run_max_steps_ceiling: int
    run_timeout_s: int
    # A run's step is not bound by API Gateway's 29 s: it may work longer, and holds the task longer, than one
    # through the Steps API. A runner invocation starts a step only with the lease and a margin left (runs.run_step).
    run_step_time_budget_s: float
    run_step_lease_s: int
    agent_id: str
    # WebSocket pushes (agent_core/push.py): the API's management endpoint (https://<id>.execute-api.<region>.
    # amazonaws.com/<stage>; the dev server's own URL locally). Empty: nothing is pushed.
    websocket_endpoint: str | None
    # Who may call (agent_core/auth.py): `keys` (every deployed stage unless the operator allows anonymous access;
    # `AUTH=keys make dev`) or `open` (the spec's development profile). The operator's key: ADMIN_API_KEY locally,
    # else the Secrets Manager secret ADMIN_API_KEY_SECRET names. How long a process trusts a key it has checked.
    auth_mode: str
    admin_api_key: str | None
    admin_api_key_secret: str | None
    auth_cache_ttl_s: float
    # The task list's write scale-out (storage/counters.py, docs/scaling.md): counter shards and index shards (a
    # divisor of the counter shards). One of each takes about 500 creates a second and makes a page cheapest.
    task_count_shards: int
    task_index_shards: int


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(
        table_name=os.environ.get("TABLE_NAME", "agent-table"),
        bucket_name=os.environ.get("BUCKET_NAME", "agent-artifacts"),
        max_json_body_bytes=_int("MAX_JSON_BODY_BYTES", 512 * 1024),
        max_input_chars=_int("MAX_INPUT_CHARS", 65_536),
        max_additional_input_bytes=_int("MAX_ADDITIONAL_INPUT_BYTES", 65_536),
        max_page_size=100,
        cors_allow_origins=tuple(
            o.strip() for o in (os.environ.get("CORS_ALLOW_ORIGINS") or "*").split(",") if o.strip()
        ),
        max_upload_body_bytes=_int("MAX_UPLOAD_BODY_BYTES", 4_500_000),
        max_file_bytes=_int("MAX_FILE_BYTES", 100 * 1024 * 1024),
        max_artifacts_per_task=_int("MAX_ARTIFACTS_PER_TASK", 100),
        allowed_file_types=_file_types(os.environ.get("ALLOWED_FILE_TYPES")),
        download_url_ttl_s=_int("DOWNLOAD_URL_TTL_SECONDS", 300),
        upload_url_ttl_s=_int("UPLOAD_URL_TTL_SECONDS", 3600),
        openai_api_key=os.environ.get("OPENAI_API_KEY") or None,
        openai_api_key_parameter=os.environ.get("OPENAI_API_KEY_PARAMETER") or None,
        openai_base_url=os.environ.get("OPENAI_BASE_URL") or None,
        openai_model=os.environ.get("OPENAI_MODEL") or "gpt-4o-mini",
        openai_allowed_models=tuple(
            m.strip()
            for m in (os.environ.get("OPENAI_ALLOWED_MODELS") or DEFAULT_ALLOWED_MODELS).split(",")
            if m.strip()
        ),
        # One step must end inside API Gateway's 29 s: two tries of 12 s plus backoff by default.
        openai_timeout_s=float(os.environ.get("OPENAI_TIMEOUT_S") or 12),
        openai_max_retries=_int("OPENAI_MAX_RETRIES", 1),
        openai_prices_json=os.environ.get("OPENAI_PRICES_JSON") or None,
        budget_usd=float(os.environ["OPENAI_BUDGET_USD"]) if os.environ.get("OPENAI_BUDGET_USD") else None,
        step_lease_s=_int("STEP_LEASE_SECONDS", 60),
        # Tools stop starting (and run_python shortens its limit) once a step has run this long: 29 s API limit.
        step_time_budget_s=float(os.environ.get("STEP_TIME_BUDGET_S") or 25),
        context_budget_tokens=_int("CONTEXT_BUDGET_TOKENS", 32_000),
        sandbox_function_name=os.environ.get("SANDBOX_FUNCTION_NAME") or "SandboxFunction",
        sandbox_isolation=os.environ.get("SANDBOX_ISOLATION") or "auto",
        sandbox_timeout_s=float(os.environ.get("SANDBOX_TIMEOUT_S") or 20),
        sandbox_memory_mb=_int("SANDBOX_MEMORY_MB", 512),
        sandbox_max_output_bytes=_int("SANDBOX_MAX_OUTPUT_BYTES", 64 * 1024),
        sandbox_max_file_bytes=_int("SANDBOX_MAX_FILE_BYTES", 4 * 1024 * 1024),
        fetch_timeout_s=float(os.environ.get("FETCH_TIMEOUT_S") or 10),
        fetch_max_bytes=_int("FETCH_MAX_BYTES", 1024 * 1024),
        state_machine_arn=os.environ.get("STATE_MACHINE_ARN")
        or "arn:aws:states:us-east-1:123456789012:stateMachine:AgentRunStateMachine",
        max_concurrent_runs=_int("MAX_CONCURRENT_RUNS", 5),
        run_max_steps_default=_int("RUN_MAX_STEPS_DEFAULT", 20),
        run_max_steps_ceiling=_int("RUN_MAX_STEPS_CEILING", 100),
        run_timeout_s=_int("RUN_TIMEOUT_SECONDS", 3600),
        run_step_time_budget_s=float(os.environ.get("RUN_STEP_TIME_BUDGET_S") or 150),
        run_step_lease_s=_int("RUN_STEP_LEASE_SECONDS", 200),
        agent_id=os.environ.get("AGENT_ID") or "agent-main",
        websocket_endpoint=os.environ.get("WEBSOCKET_ENDPOINT") or None,
        auth_mode="keys" if (os.environ.get("AUTH") or "").strip().lower() == "keys" else "open",
        admin_api_key=os.environ.get("ADMIN_API_KEY") or None,
        admin_api_key_secret=os.environ.get("ADMIN_API_KEY_SECRET") or None,
        auth_cache_ttl_s=float(os.environ.get("AUTH_CACHE_TTL_S") or 0),
        task_count_shards=_int("TASK_COUNT_SHARDS", 1),
        task_index_shards=_int("TASK_INDEX_SHARDS", 1),
    )
