"""What an operator or a text method would make, sized before Python makes it: `'a' * 10**10`,
`10 ** (10**10)`, `'%099999999d' % 1` or `'x'.center(10**9)` raise `TemplateLimitExceeded` instead
of allocating (the operator and call half of `LimitedSandbox`'s size guards)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from userreg.shared.templates.budget import RenderLimits, TemplateLimitExceeded
from userreg.shared.templates.measure import SIZED, number_of_digits, printf_specs, text_size

# The largest number (in bits) `*` and `**` may make: ~19,700 decimal digits, far beyond anything a
# template prints (Python refuses to print more than 4,300), and cheap to multiply.
MAX_NUMBER_BITS = 1 << 16


def check_repeat(limits: RenderLimits, left: Any, right: Any) -> None:
    """`left * right`: a number of at most `MAX_NUMBER_BITS`, or a repeated value within the limit."""
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_NUMBER_BITS:
            raise _number_too_big()
        return
    for sequence, times in ((left, right), (right, left)):
        if (
            isinstance(sequence, SIZED)
            and isinstance(times, int)
            and times > 0
            and len(sequence) * times > limits.output_bytes
        ):
            raise limits.too_big("a value")


def check_power(left: Any, right: Any) -> None:
    """`left ** right`: a number of at most `MAX_NUMBER_BITS`."""
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and right > 0
        and abs(left) > 1
        and left.bit_length() * right > MAX_NUMBER_BITS
    ):
        raise _number_too_big()


def _number_too_big() -> TemplateLimitExceeded:
    return TemplateLimitExceeded(f"it computes a number larger than {MAX_NUMBER_BITS} bits")


def check_printf(limits: RenderLimits, fmt: str | bytes | bytearray, values: Any) -> None:
    """`fmt % values` (and the `format` filter): the result's size from the conversions' widths,
    precisions and values, before Python builds it."""
    text = fmt if isinstance(fmt, str) else bytes(fmt).decode("latin-1")
    limit = limits.output_bytes
    positional = iter(values if isinstance(values, tuple) else (values,))
    total = len(text)

    def number(field: str | None) -> int:
        if field is None or field == "":
            return 0
        if field == "*":
            value = next(positional, 0)
            return abs(value) if isinstance(value, int) else 0
        return limit + 1 if len(field) > 9 else int(field)

    for key, width_field, precision_field, conversion in printf_specs(text):
        width, precision = number(width_field), number(precision_field)
        if width > limit or precision > limit:
            raise limits.too_big("a formatted value")
        if conversion == "%":
            size = 1
        else:
            if key is not None:
                value = values.get(key) if isinstance(values, Mapping) else None
            else:
                value = next(positional, None)
            if conversion in ("s", "b", "r", "a"):
                size = text_size(value, limits, limit - total) * (1 if conversion in ("s", "b") else 10) + 2
                if precision_field is not None:
                    size = min(size, precision)
            elif conversion in ("d", "i", "o", "u", "x", "X", "c"):
                size = max(precision, number_of_digits(value)) + 1
            elif conversion in ("e", "E", "f", "F", "g", "G"):
                size = number_of_digits(value) + (6 if precision_field is None else precision) + 8
            else:
                size = 0  # Python refuses the conversion
        total += max(width, size)
        if total > limit:
            raise limits.too_big("a formatted value")


def check_text_method(
    limits: RenderLimits, owner: str | bytes | bytearray, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """`owner.method(*args, **kwargs)` for the methods of text that multiply it."""
    if method in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else None
        if isinstance(width, int):
            limits.check_size(width)
    elif method == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            tabs = owner.count(b"\t") if isinstance(owner, (bytes, bytearray)) else owner.count("\t")
            limits.check_size(len(owner) + tabs * size)
    elif method == "replace" and len(args) >= 2:
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        check_replace(limits, owner, args[0], args[1], count)
    elif method == "translate" and isinstance(owner, str) and args:
        # Each character may become the longest text of the table.
        table = args[0]
        if isinstance(table, Mapping):
            table = table.values()
        elif not isinstance(table, (list, tuple)):
            table = ()
        longest = max((len(value) for value in table if isinstance(value, str)), default=1)
        limits.check_size(len(owner) * max(longest, 1))


def check_replace(limits: RenderLimits, text: Any, old: Any, new: Any, count: Any) -> None:
    """`text.replace(old, new, count)` (the method and the filter)."""
    if not (isinstance(old, (str, bytes)) and isinstance(new, (str, bytes))):
        return
    try:
        found = len(text) + 1 if not old else text.count(old)
    except TypeError:
        return  # str and bytes mixed: Python refuses
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    limits.check_size(len(text) + found * max(len(new) - len(old), 0))


def joinable(limits: RenderLimits, separator: str | bytes | bytearray, items: Any) -> list[Any]:
    """The items of `separator.join(items)`, once the result's size is known to fit."""
    items = list(items)
    left = limits.output_bytes - len(separator) * max(len(items) - 1, 0)
    if left < 0:
        raise limits.too_big("a joined value")
    for item in items:
        left -= text_size(item, limits, left)
    return items
