"""What run_python sends the sandbox function, and what comes back: one JSON document each way.

Both must fit Lambda's limit on a synchronous invocation (6 MB for the request, the same for the response), so the
task's files travel inside them base64-encoded, within a byte budget, and whatever does not fit is named, not lost.
"""

from __future__ import annotations

import base64
import json
import math

from pydantic import BaseModel, ConfigDict, Field

from ..config import Settings, get_settings

# Lambda's 6 MB for a synchronous request and for its response, read as decimal megabytes to stay clear of it.
LAMBDA_PAYLOAD_BYTES = 6_000_000
# Kept free in every payload for the JSON around the files, the limits, the lists of skipped files.
PAYLOAD_RESERVE_BYTES = 192 * 1024
# What fits of a run's files in one payload, each way (files_budget), as the model and the user are told it.
FILES_LIMIT_TEXT = "about 4.3 MB of files in all"
MAX_CODE_CHARS = 128 * 1024
MAX_FILES = 100  # copied in per run
MAX_OUTPUT_FILES = 20  # saved per run


# Every line of a result other than stdout and stderr (a skipped file and why, an error) is cut to this many bytes
# of JSON, so the lists of them, at most 142 lines, stay well inside PAYLOAD_RESERVE_BYTES whatever the names hold.
MAX_LINE_JSON_BYTES = 512
MAX_PATH_CHARS = 1024  # SandboxFile.path


def json_size(value: object) -> int:
    """Bytes `value` takes as JSON on the wire. json.dumps escapes every control and non-ASCII character (\\u0001 is
    6 bytes, an astral character 12): an upper bound of any UTF-8 encoding of the same JSON."""
    return len(json.dumps(value))


def files_budget(*texts: str) -> int:
    """Bytes of encoded files (SandboxFile.encoded_size) that fit in one payload beside these texts."""
    return LAMBDA_PAYLOAD_BYTES - PAYLOAD_RESERVE_BYTES - sum(json_size(t) for t in texts)


def capped_line(line: str, limit: int = MAX_LINE_JSON_BYTES) -> str:
    """`line` as it is when its JSON fits `limit` bytes, else its start and end around an ellipsis that do."""
    if json_size(line) <= limit:
        return line
    keep = limit - 2 - json_size("\u2026")  # the quotes, the ellipsis (escaped)
    head_budget, tail_budget = keep * 2 // 3, keep - keep * 2 // 3
    head: list[str] = []
    for ch in line:
        head_budget -= json_size(ch) - 2
        if head_budget < 0:
            break
        head.append(ch)
    tail: list[str] = []
    for ch in reversed(line[len(head) :]):
        tail_budget -= json_size(ch) - 2
        if tail_budget < 0:
            break
        tail.append(ch)
    return "".join(head) + "\u2026" + "".join(reversed(tail))


class SandboxLimits(BaseModel):
    """The child's limits. The caller may only lower what the settings allow (the runner clamps again)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(20.0, gt=0, le=900)
    memory_mb: int = Field(512, ge=32, le=10_240)
    max_output_bytes: int = Field(64 * 1024, ge=1, le=1024 * 1024)  # kept of each of stdout and stderr
    max_file_bytes: int = Field(4 * 1024 * 1024, ge=1, le=64 * 1024 * 1024)  # largest file in or out

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SandboxLimits:
        s = settings or get_settings()
        return cls(
            timeout_s=s.sandbox_timeout_s,
            memory_mb=s.sandbox_memory_mb,
            max_output_bytes=s.sandbox_max_output_bytes,
            max_file_bytes=s.sandbox_max_file_bytes,
        )

    @property
    def cpu_s(self) -> int:
        # CPU time of one thread cannot outrun the wall clock; this catches threads burning several cores at once.
        return math.ceil(self.timeout_s) + 1

    def within(self, ceiling: SandboxLimits) -> SandboxLimits:
        return SandboxLimits(
            timeout_s=min(self.timeout_s, ceiling.timeout_s),
            memory_mb=min(self.memory_mb, ceiling.memory_mb),
            max_output_bytes=min(self.max_output_bytes, ceiling.max_output_bytes),
            max_file_bytes=min(self.max_file_bytes, ceiling.max_file_bytes),
        )


class SandboxFile(BaseModel):
    path: str = Field(max_length=MAX_PATH_CHARS)  # relative to the working directory: data/sales.csv, output/chart.svg
    data_b64: str

    @classmethod
    def of(cls, path: str, data: bytes) -> SandboxFile:
        return cls(path=path, data_b64=base64.b64encode(data).decode("ascii"))

    @property
    def data(self) -> bytes:
        return base64.b64decode(self.data_b64, validate=True)

    @property
    def encoded_size(self) -> int:
        """Its bytes in the payload's JSON: the base64, the path as escaped, the keys and punctuation."""
        return len(self.data_b64) + json_size(self.path) + 32


class SandboxRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=MAX_CODE_CHARS)
    files: list[SandboxFile] = Field(default_factory=list, max_length=MAX_FILES)
    limits: SandboxLimits


class Stream(BaseModel):
    text: str = ""  # what was kept, decoded as UTF-8 (undecodable bytes replaced)
    kept: int = 0  # bytes of it in `text`
    total: int = 0  # bytes the stream carried, kept or not

    @property
    def cut(self) -> bool:
        return self.total > self.kept


class SandboxResult(BaseModel):
    exit_code: int | None = None  # negative: killed by that signal; None: the code never ran
    timed_out: bool = False
    elapsed_s: float = 0.0
    stdout: Stream = Field(default_factory=Stream)
    stderr: Stream = Field(default_factory=Stream)
    outputs: list[SandboxFile] = Field(default_factory=list)  # new or changed files under output/
    skipped_outputs: list[str] = Field(default_factory=list)  # "output/x (why)"
    skipped_inputs: list[str] = Field(default_factory=list)
    # Set when the sandbox could not run the code at all, or could not finish collecting its output: said to the
    # model as it is, so it explains and (for a missing bubblewrap) says how to fix it.
    error: str | None = None
