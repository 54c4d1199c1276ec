"""The rules for a task's file names: paths stay inside the task, names are sanitised, types are allow-listed, and
downloads name the file the way browsers and HTTP clients read it."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from agent_core.errors import FileTypeNotAllowed, InvalidRequest
from agent_core.filenames import (
    MAX_PATH_BYTES,
    check_file_type,
    content_disposition,
    content_type_for,
    normalize_relative_path,
    resolve_path,
    sanitize_file_name,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("data/sales.csv", ("data/sales.csv", False)),
        ("./data//sales.csv", ("data/sales.csv", False)),
        ("data/", ("data", True)),
        (".", ("", True)),
        ("reports/月度报告.txt", ("reports/月度报告.txt", False)),
        ("cafe\u0301.txt", ("café.txt", False)),  # NFC: one spelling per name
    ],
)
def test_normalize_relative_path_canonical_forms(given: str, expected: tuple[str, bool]) -> None:
    assert normalize_relative_path(given) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "a/../../b",
        "a/..",
        "..",
        "/etc/passwd",
        "C:/Windows/win.ini",
        "a\\b",
        "a\x00b",
        "a\nb",
        "a\x7fb",
        "evil\u202etxt.exe",
        "x" * 256,
        "/".join(["abcdefgh"] * 60),  # 539 bytes
    ],
)
def test_normalize_relative_path_refuses_escapes_and_junk(bad: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        normalize_relative_path(bad)
    assert raised.value.details["field"] == "relative_path"


@pytest.mark.parametrize(
    ("relative_path", "file_name", "expected"),
    [
        ("data/sales.csv", "sales.csv", "data/sales.csv"),  # the spec's example: the full path
        ("data/renamed.csv", "foo.csv", "data/renamed.csv"),  # a full path with another name renames the upload
        ("renamed.csv", "foo.csv", "renamed.csv"),
        ("data/", "sales.csv", "data/sales.csv"),  # a trailing / is a folder
        ("data/renamed.csv/", "foo.csv", "data/renamed.csv/foo.csv"),
        ("data", "sales.csv", "data/sales.csv"),  # no extension: a folder, as agbenchmark and the official client send
        ("a/b/.config", "x.json", "a/b/.config/x.json"),  # a leading dot is no extension
        ("build", "Makefile", "build/Makefile"),
        ("build/Makefile", "Makefile", "build/Makefile"),  # the file's own name, extension or not
        (None, "sales.csv", "sales.csv"),  # no relative_path: the root, under the file's own name
        ("", "sales.csv", "sales.csv"),
        (".", "sales.csv", "sales.csv"),
    ],
)
def test_resolve_path_full_path_folder_and_root(relative_path: str | None, file_name: str, expected: str) -> None:
    assert resolve_path(relative_path, file_name) == expected


def test_resolve_path_refuses_a_folder_that_makes_the_path_too_long() -> None:
    folder = "/".join(["f" * 100] * 5)  # 504 bytes
    with pytest.raises(InvalidRequest):
        resolve_path(folder, "a-long-file-name.csv")
    assert len(resolve_path(folder, "a.csv").encode()) <= MAX_PATH_BYTES


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("C:\\fakepath\\report.pdf", "report.pdf"),
        ("../../report.pdf", "report.pdf"),
        (" notes.md ", "notes.md"),
        ("数据.csv", "数据.csv"),
    ],
)
def test_sanitize_file_name_keeps_only_the_name(given: str, expected: str) -> None:
    assert sanitize_file_name(given) == expected


@pytest.mark.parametrize("bad", ["", ".", "..", "dir/", "a\x00.txt", "a\r\n.txt", "n" * 256 + ".txt"])
def test_sanitize_file_name_refuses_what_names_no_file(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        sanitize_file_name(bad)


def test_check_file_type_allows_listed_extensions_case_insensitively() -> None:
    allowed = frozenset({"csv", "png"})
    check_file_type("Sales.CSV", allowed)
    check_file_type("anything.exe", frozenset({"*"}))
    for refused in ("tool.exe", "Makefile", ".csv"):
        with pytest.raises(FileTypeNotAllowed) as raised:
            check_file_type(refused, allowed)
        assert raised.value.details["allowed_types"] == ["csv", "png"]
        assert raised.value.status == 400 and raised.value.code == "INVALID_REQUEST"


@pytest.mark.parametrize("name", ["Makefile", "Dockerfile", "README", "LICENSE"])
def test_text_files_known_by_name_are_text(name: str) -> None:
    check_file_type(name, frozenset({"txt"}))  # with the text types
    with pytest.raises(FileTypeNotAllowed):
        check_file_type(name, frozenset({"csv"}))  # not without them
    with pytest.raises(FileTypeNotAllowed):
        check_file_type("randomname", frozenset({"txt"}))  # any other name without an extension is still refused


def test_content_type_for_prefers_a_specific_declared_type() -> None:
    assert content_type_for("data.csv", "application/octet-stream") == "text/csv"
    assert content_type_for("data.bin", None) == "application/octet-stream"
    assert content_type_for("chart.png", "image/png; charset=binary") == "image/png"
    assert content_type_for("a.txt", "text/plain\r\nX-Evil: 1") == "text/plain"  # never a header injection


def _download_name(header: str) -> str:
    """The name an RFC 6266 client saves the file under: `filename*` when present, else `filename`."""
    params = dict(p.strip().split("=", 1) for p in header.split(";")[1:])
    if "filename*" in params:
        charset, _, encoded = params["filename*"].split("'", 2)
        return unquote(encoded, encoding=charset)
    return params["filename"].strip('"')


def test_content_disposition_ascii_name_is_the_spec_form() -> None:
    assert content_disposition("sales_data.csv") == 'attachment; filename="sales_data.csv"'
    assert _download_name(content_disposition("sales_data.csv")) == "sales_data.csv"


def test_content_disposition_non_ascii_name_uses_filename_star() -> None:
    header = content_disposition("月度报告.txt")
    assert header.isascii()
    assert _download_name(header) == "月度报告.txt"
    assert 'filename="download.txt"' in header  # the stand-in for clients that only read `filename`


def test_content_disposition_accented_name_keeps_a_readable_fallback() -> None:
    header = content_disposition('résumé "final".pdf')
    assert 'filename="resume _final_.pdf"' in header
    assert _download_name(header) == 'résumé "final".pdf'
