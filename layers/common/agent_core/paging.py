"""Page arithmetic shared by every list endpoint."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageRequest:
    page: int
    size: int

    @property
    def start(self) -> int:
        return (self.page - 1) * self.size

    @property
    def end(self) -> int:
        return self.page * self.size
