"""Page arithmetic and the pagination object's two sets of keys."""

from __future__ import annotations

import pytest

from agent_core.models import Pagination
from agent_core.paging import PageRequest


@pytest.mark.parametrize(
    ("page", "size", "start", "end"),
    [(1, 10, 0, 10), (2, 10, 10, 20), (3, 7, 14, 21), (1, 1, 0, 1), (5, 100, 400, 500)],
)
def test_page_request_slices_from_start_to_end(page: int, size: int, start: int, end: int) -> None:
    request = PageRequest(page=page, size=size)
    assert (request.start, request.end) == (start, end)
    assert request.end - request.start == size


@pytest.mark.parametrize(
    ("total", "size", "pages"), [(0, 10, 0), (1, 10, 1), (10, 10, 1), (11, 10, 2), (25, 10, 3), (100, 1, 100)]
)
def test_pagination_of_rounds_pages_up(total: int, size: int, pages: int) -> None:
    assert Pagination.of(page=1, size=size, total=total).pages == pages


def test_pagination_of_mirrors_the_spec_keys_in_the_agent_protocol_keys() -> None:
    pagination = Pagination.of(page=3, size=10, total=25)
    assert pagination.model_dump() == {
        "page": 3,
        "size": 10,
        "total": 25,
        "pages": 3,
        "current_page": 3,
        "page_size": 10,
        "total_items": 25,
        "total_pages": 3,
    }


def test_pagination_of_a_page_past_the_end_keeps_the_asked_page() -> None:
    pagination = Pagination.of(page=9, size=10, total=25)
    assert (pagination.page, pagination.pages, pagination.total) == (9, 3, 25)


def test_pagination_of_size_zero_has_no_pages() -> None:
    assert Pagination.of(page=1, size=0, total=5).pages == 0
