"""Accept-Language negotiation between the two languages the API speaks."""

from __future__ import annotations

import pytest

from agent_core.api import language


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("zh", "zh"),
        ("ZH", "zh"),
        ("zh-CN", "zh"),
        ("zh-Hant-TW", "zh"),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR", "en"),
        ("*", "en"),
    ],
)
def test_language_picks_by_tag(header: str | None, expected: str) -> None:
    assert language(header) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("en;q=0.5, zh;q=0.8", "zh"),
        ("zh;q=0.2, en;q=0.3", "en"),
        ("fr, de;q=0.9, zh;q=0.1", "zh"),
        ("*;q=0.5, zh;q=0.6", "zh"),
        ("zh;q=0.5, *;q=0.6", "en"),
        ("en;q=0.8, zh;q=0.8", "en"),
        ("zh;q=0.8, en;q=0.8", "zh"),
    ],
)
def test_language_follows_q_values(header: str, expected: str) -> None:
    assert language(header) == expected


@pytest.mark.parametrize("header", ["zh;q=0", "zh;q=0.0, fr", "zh;q=0, en;q=0"])
def test_language_q_zero_means_not_acceptable(header: str) -> None:
    assert language(header) == "en"


def test_language_reads_q_after_other_parameters() -> None:
    assert language("zh;level=1;q=0.1, en;q=0.5") == "en"


@pytest.mark.parametrize("header", ["zh;q=abc", "zh;q=", " , ;q=1, zh;q=x"])
def test_language_malformed_q_is_ignored(header: str) -> None:
    assert language(header) == "en"


def test_language_does_not_take_other_zh_prefixed_languages_for_chinese() -> None:
    assert language("zha") == "en"  # Zhuang
