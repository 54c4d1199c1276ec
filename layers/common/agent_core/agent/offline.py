"""The offline model: deterministic, no network, and it says so. It drives the real tools in a fixed plan:
list the files, analyse them with `run_python` (CSV rows, columns, sums and means; image format and size),
write `report.md`, finish."""

from __future__ import annotations

import json
from typing import Any

from .chat import ToolCall, Turn

MODEL_NAME = "offline"
LABEL = "[offline model]"
REPORT_START, REPORT_END = "=== REPORT ===", "=== END REPORT ==="

# Runs inside the sandbox, in a folder holding copies of the task's files. Plain Python: no numpy there.
ANALYSIS_SCRIPT = r"""
import csv, os, struct

def image_size(data):
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG", struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF", struct.unpack("<HH", data[6:10])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = data[12:16]
        if kind == b"VP8X":
            return "WebP", (int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1)
        if kind == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return "WebP", ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        return "WebP", struct.unpack("<HH", data[26:30])
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return "JPEG", (w, h)
            i += 2 + length
        return "JPEG", None
    return None, None

def number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None

def fmt(x):
    return str(int(x)) if float(x).is_integer() else f"{x:.4g}"

lines = ["# Task files report", "", "_Written by the offline model (no language model was called)._", ""]
files = sorted(os.path.join(d, f)[2:] for d, _, fs in os.walk(".") for f in fs if not d.startswith("./output"))
if not files:
    lines.append("The task has no files yet. Upload some with POST /tasks/{task_id}/artifacts.")
for path in files:
    data = open(path, "rb").read()
    lines += [f"## {path}", "", f"- size: {len(data)} bytes"]
    if path.lower().endswith((".csv", ".tsv")):
        text = data.decode("utf-8-sig", errors="replace")
        rows = list(csv.reader(text.splitlines(), delimiter="\t" if path.lower().endswith(".tsv") else ","))
        header, body = (rows[0], rows[1:]) if rows else ([], [])
        lines += [f"- rows: {len(body)}", f"- columns ({len(header)}): {', '.join(header)}"]
        for i, name in enumerate(header):
            values = [number(r[i]) for r in body if i < len(r) and r[i].strip()]
            if values and all(v is not None for v in values):
                total = sum(values)
                lines.append(f"- {name}: sum {fmt(total)}, mean {fmt(total / len(values))}")
    else:
        kind, size = image_size(data)
        if kind:
            lines.append(f"- image: {kind}" + (f", {size[0]} x {size[1]} pixels" if size else ""))
    lines.append("")
print("=== REPORT ===")
print("\n".join(lines))
print("=== END REPORT ===")
"""


def _first_required(tools: dict[str, dict[str, Any]], name: str, fallback: str) -> str:
    params = (tools.get(name) or {}).get("parameters") or {}
    return next(iter(params.get("required") or []), fallback)


SUMMARY_CHARS = 6_000
_SUMMARY_KEEP = ("## Step", "User: ", "Assistant: ", "Called ", "Result of ")


def offline_summary(messages: list[dict[str, Any]]) -> str:
    """A deterministic, extractive summary of a compaction request (agent/context.py `summary_request`): the memory
    so far, then the first line of every part of each step folded in; the newest kept when it runs long."""
    material = str(messages[-1].get("content") or "") if messages else ""
    earlier, _, steps = material.partition("\n\nSteps ")
    memory = earlier.partition(":\n")[2].strip().removeprefix(LABEL).strip()
    lines = [] if not memory or memory == "(none yet)" else [memory]
    for line in ("Steps " + steps).splitlines():
        if line.startswith(_SUMMARY_KEEP):
            lines.append(line[:200])
    text = "\n".join(lines)
    if len(text) > SUMMARY_CHARS:
        text = "..." + text[-SUMMARY_CHARS:]
    return text


class OfflineChat:
    def complete(self, *, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Turn:
        if not tools:  # a compaction's summary request
            return Turn(model=MODEL_NAME, content=f"{LABEL} {offline_summary(messages)}", offline=True)
        by_name = {t["function"]["name"]: t["function"] for t in tools}
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        plan = [self._list, self._analyse, self._write_report, self._finish]
        content, call = plan[min(turn, len(plan) - 1)](by_name, messages)
        return Turn(
            model=MODEL_NAME,
            content=f"{LABEL} {content}",
            offline=True,
            tool_calls=[ToolCall(id=f"offline-{turn + 1}", name=call[0], arguments=json.dumps(call[1]))],
        )

    def _list(self, tools: dict[str, Any], messages: list[dict[str, Any]]) -> tuple[str, tuple[str, dict[str, Any]]]:
        return "Listing the task's files.", ("list_files", {})

    def _analyse(self, tools: dict[str, Any], messages: list[dict[str, Any]]) -> tuple[str, tuple[str, dict[str, Any]]]:
        key = _first_required(tools, "run_python", "code")
        return "Analysing the files with Python.", ("run_python", {key: ANALYSIS_SCRIPT})

    def _write_report(
        self, tools: dict[str, Any], messages: list[dict[str, Any]]
    ) -> tuple[str, tuple[str, dict[str, Any]]]:
        output = next((str(m.get("content")) for m in reversed(messages) if m.get("role") == "tool"), "")
        start, end = output.find(REPORT_START), output.find(REPORT_END)
        if start >= 0 and end > start:
            report = output[start + len(REPORT_START) : end].strip() + "\n"
        else:
            report = f"# Task files report\n\nThe offline model's analysis failed:\n\n```\n{output[:4000]}\n```\n"
        return "Writing report.md.", ("write_file", {"path": "report.md", "content": report})

    def _finish(self, tools: dict[str, Any], messages: list[dict[str, Any]]) -> tuple[str, tuple[str, dict[str, Any]]]:
        key = _first_required(tools, "finish", "summary")
        summary = "The files are analysed and report.md is written. Set OPENAI_API_KEY to use a real model."
        return "Finishing the task.", ("finish", {key: summary})
