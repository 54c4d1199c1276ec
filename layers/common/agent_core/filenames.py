"""Rules for the names of a task's files: relative paths that stay inside the task, sanitised file names, the
allow-list of file types, and the headers a download carries. Pure functions, no I/O."""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from urllib.parse import quote

from .errors import FileTypeNotAllowed, InvalidRequest

MAX_PATH_BYTES = 512  # UTF-8; with the per-task cap this bounds the summary on the task item
MAX_SEGMENT_BYTES = 255  # what common file systems allow for one name
# Bidirectional overrides and isolates make a name display as something else (`evil‮txt.exe`).
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][\w!#$&^.+-]*/[\w!#$&^.+-]+$")


def _bad_character(text: str) -> str | None:
    for ch in text:
        if ch == "\\":
            return "backslashes are not allowed; use /"
        if unicodedata.category(ch) == "Cc" or ch in _BIDI:
            return f"control character U+{ord(ch):04X} is not allowed"
    return None


def _check_segment(segment: str, field: str) -> None:
    if segment == "..":
        raise InvalidRequest("'..' is not allowed: the path must stay inside the task", field=field)
    if len(segment.encode()) > MAX_SEGMENT_BYTES:
        raise InvalidRequest(f"a name may have at most {MAX_SEGMENT_BYTES} bytes (UTF-8)", field=field)


def normalize_relative_path(value: str, field: str = "relative_path") -> tuple[str, bool]:
    """The path in canonical form (NFC, `/` separators, no `.` or empty segments) and whether it names a folder
    (a trailing `/`). Raises InvalidRequest for `..`, absolute paths, backslashes, control characters, over-long
    paths."""
    text = unicodedata.normalize("NFC", value)
    problem = _bad_character(text)
    if problem:
        raise InvalidRequest(problem, field=field)
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise InvalidRequest("absolute paths are not allowed: give a path inside the task", field=field)
    segments = [s for s in text.split("/") if s not in ("", ".")]
    for segment in segments:
        _check_segment(segment, field)
    path = "/".join(segments)
    if len(path.encode()) > MAX_PATH_BYTES:
        raise InvalidRequest(f"the path may have at most {MAX_PATH_BYTES} bytes (UTF-8)", field=field)
    return path, text.endswith("/") or not segments


def sanitize_file_name(value: str, field: str = "file_name") -> str:
    """The name without any folders a client put in front of it (`C:\\fakepath\\a.csv` -> `a.csv`), NFC."""
    name = unicodedata.normalize("NFC", re.split(r"[/\\]", value)[-1]).strip()
    problem = _bad_character(name)
    if problem:
        raise InvalidRequest(problem, field=field)
    if name in ("", "."):
        raise InvalidRequest("the file needs a name", field=field)
    _check_segment(name, field)
    return name


def resolve_path(relative_path: str | None, file_name: str) -> str:
    """Where an uploaded file lands (DESIGN §1). Without `relative_path`, at the task's root under its own name.
    `relative_path` is the file's full path and name when its last segment has an extension or is the file's own
    name (`data/renamed.csv` renames the upload); otherwise it is a folder and the file's own name is appended:
    `data/`, and `data`, which is how Agent Protocol clients (agbenchmark, the official client) name a folder."""
    name = sanitize_file_name(file_name)
    if relative_path is None or relative_path == "":
        return name
    path, is_folder = normalize_relative_path(relative_path)
    last = file_name_of(path)
    if not is_folder and ("." in last.lstrip(".") or last == name):
        return path
    full = f"{path}/{name}" if path else name
    if len(full.encode()) > MAX_PATH_BYTES:
        raise InvalidRequest(f"the path may have at most {MAX_PATH_BYTES} bytes (UTF-8)", field="relative_path")
    return full


def file_name_of(path: str) -> str:
    return path.rsplit("/", 1)[-1]


# Text files known by their whole name, without an extension; allowed with the text types (`txt`).
TEXT_FILE_NAMES = frozenset(
    ("makefile", "dockerfile", "containerfile", "readme", "license", "licence", "notice", "authors", "changelog",
     "contributing", "copying", "procfile", "gemfile", "rakefile", "vagrantfile", "jenkinsfile", "brewfile")
)  # fmt: skip


def check_file_type(file_name: str, allowed: frozenset[str]) -> None:
    """Raises FileTypeNotAllowed unless the name's extension is on the list (`*` allows every type)."""
    if "*" in allowed:
        return
    stem, dot, extension = file_name.rpartition(".")
    extension = extension.lower() if dot and stem else ""
    if not extension and "txt" in allowed and file_name.lower() in TEXT_FILE_NAMES:
        return
    if extension not in allowed:
        raise FileTypeNotAllowed(
            f"files of type {('.' + extension) if extension else '(no extension)'} are not accepted",
            field="file",
            file_name=file_name,
            allowed_types=sorted(allowed),
        )


def content_type_for(file_name: str, declared: str | None = None) -> str:
    """The declared media type when it is a specific, well-formed one; else the one the extension implies."""
    declared = (declared or "").split(";")[0].strip().lower()
    if declared and declared != "application/octet-stream" and _MEDIA_TYPE.match(declared):
        return declared
    return mimetypes.guess_type(file_name)[0] or "application/octet-stream"


def content_disposition(file_name: str) -> str:
    """`attachment` with the name as RFC 6266 wants it: a plain `filename` for ASCII names, plus `filename*`
    (RFC 8187, UTF-8) for any other, with an ASCII stand-in in `filename` for clients that only read that."""
    ascii_name = unicodedata.normalize("NFKD", file_name).encode("ascii", "ignore").decode()
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in ascii_name)
    if ascii_name == file_name:
        return f'attachment; filename="{file_name}"'
    stem, dot, extension = ascii_name.rpartition(".")
    if not (stem if dot else ascii_name).strip("_ "):
        ascii_name = f"download.{extension}" if dot and extension else "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name, safe='')}"
