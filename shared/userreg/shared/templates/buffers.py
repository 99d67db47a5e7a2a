"""Text a render builds besides its top-level output, counted as it is written: nested output
(macro bodies, `{% set %}` blocks, `{{ self.block() }}`, JSON) and the `pprint` filter's stream."""

from __future__ import annotations

from collections.abc import Iterable
from io import StringIO

from userreg.shared.templates.budget import Render, RenderLimits, check_time


class CountedBuffer(list[str]):
    """Nested output, counted as it is appended (each buffer may hold up to the output limit, and
    counts into what the render built). Empty chunks are dropped: they would only cost memory."""

    __slots__ = ("_left", "_limits", "_render")

    def __init__(self, limits: RenderLimits, render: Render | None) -> None:
        super().__init__()
        self._limits = limits
        self._render = render
        self._left = limits.output_bytes

    def append(self, chunk: str) -> None:
        if chunk:
            self._left -= len(chunk)
            if self._left < 0:
                raise self._limits.too_big()
            if self._render is not None:
                self._render.built(len(chunk))
            list.append(self, chunk)

    def extend(self, chunks: Iterable[str]) -> None:
        for chunk in chunks:
            self.append(chunk)


class CountingStream(StringIO):
    """A text stream that holds at most the output limit, checking the deadline on each write."""

    def __init__(self, limits: RenderLimits) -> None:
        super().__init__()
        self._limits = limits
        self._left = limits.output_bytes

    def write(self, text: str) -> int:
        self._left -= len(text)
        if self._left < 0:
            raise self._limits.too_big()
        check_time()
        return super().write(text)
