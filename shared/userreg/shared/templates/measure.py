"""Sizes of text worked out without building it: a value's printed length, the digits of a number,
the conversions of a printf-style format."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any

from jinja2.runtime import Undefined
from jinja2.utils import Namespace

from userreg.shared.templates.budget import RenderLimits

# Values with a length whose text the output limit bounds.
SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)


def text_size(value: Any, limits: RenderLimits, budget: int | None = None) -> int:
    """The length of `str(value)`, at most `budget` (by default the output limit), without building
    it; `TemplateLimitExceeded` when it is longer."""
    if type(value) is str:
        size = len(value)
        if size > (limits.output_bytes if budget is None else budget):
            raise limits.too_big("the text of a value")
        return size
    return measure_text(value, limits.output_bytes if budget is None else budget, limits)[0]


def measure_text(value: Any, budget: int, limits: RenderLimits) -> tuple[int, int]:
    """(an upper bound of `len(str(value))`, the nesting depth of its containers), found by walking
    the value, never by building its text; `TemplateLimitExceeded` as soon as the size passes
    `budget`. A container holding the same big value many times is measured each time, as `str()`
    would print it; every element counts at least one character, so the walk is bounded too."""
    size = 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
        if isinstance(item, str):
            # Inside a container an item prints as its repr (quotes, escapes).
            size += len(item) if depth == 0 else len(repr(item))
        elif isinstance(item, (bytes, bytearray)):
            size += 4 * len(item) + 14
        elif isinstance(item, bool) or item is None:
            size += 5
        elif isinstance(item, int):
            size += item.bit_length() // 3 + 2
        elif isinstance(item, float):
            size += 24
        elif isinstance(item, Undefined):
            pass
        elif isinstance(item, (list, tuple, set, frozenset)):
            size += 11 + 2 * len(item)
            stack.extend((element, depth + 1) for element in item)
        elif isinstance(item, Mapping):
            size += 2 + 4 * len(item)
            for key, element in item.items():
                stack.append((key, depth + 1))
                stack.append((element, depth + 1))
        elif isinstance(item, (KeysView, ValuesView, ItemsView)):
            size += 16 + 2 * len(item)
            stack.extend((element, depth + 1) for element in item)
        elif isinstance(item, Namespace):
            stack.append((item._Namespace__attrs, depth))
            size += 13
        else:
            # Dates, loops, macros, cyclers, the context's own objects: their text is short.
            size += 80
        if size > budget:
            raise limits.too_big("the text of a value")
    return size, deepest


def number_of_digits(value: Any) -> int:
    if isinstance(value, int):
        return value.bit_length() // 3 + 3
    return 330  # a float written out in full: 1e308 has 309 digits


def printf_specs(fmt: str) -> Iterator[tuple[str | None, str, str | None, str]]:
    """(mapping key, width, precision, conversion) of each `%` conversion, parsed the way Python's
    own `%` operator does (nested parentheses in keys, `*` widths, length modifiers)."""
    position, end = 0, len(fmt)
    while (position := fmt.find("%", position)) != -1:
        position += 1
        key = None
        if position < end and fmt[position] == "(":
            depth, start = 1, position + 1
            position += 1
            while position < end and depth:
                depth += {"(": 1, ")": -1}.get(fmt[position], 0)
                position += 1
            key = fmt[start : position - 1]
        while position < end and fmt[position] in "-+ #0":
            position += 1
        start, position = position, _past_number(fmt, position)
        width = fmt[start:position]
        precision = None
        if position < end and fmt[position] == ".":
            start, position = position + 1, _past_number(fmt, position + 1)
            precision = fmt[start:position]
        while position < end and fmt[position] in "hlL":
            position += 1
        conversion = fmt[position] if position < end else ""
        position += 1
        yield key, width, precision, conversion


def _past_number(fmt: str, position: int) -> int:
    """The position after the width or precision starting at `position`: `*` or digits (or none)."""
    end = len(fmt)
    if position < end and fmt[position] == "*":
        return position + 1
    while position < end and fmt[position] in "0123456789":
        position += 1
    return position
