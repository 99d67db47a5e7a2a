"""`LimitedSandbox`: Jinja's immutable sandbox with every door through which a template can make
text or values grow guarded against the render's budget (the size half of `limits.py`)."""

from __future__ import annotations

import copy
import functools
import json
import pprint
import re
from collections.abc import Iterable, Iterator, Mapping
from io import StringIO
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.filters import make_attrgetter, sync_do_join
from jinja2.runtime import Context
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
    _mutable_spec,
)
from jinja2.utils import (
    _PassArg,
    generate_lorem_ipsum,
    htmlsafe_json_dumps,
    pass_environment,
    pass_eval_context,
)
from markupsafe import Markup

from userreg.shared.templates.budget import (
    ACTIVE,
    Render,
    RenderLimits,
    TemplateLimitExceeded,
    check_time,
)

from userreg.shared.templates.measure import measure_text, number_of_digits, printf_specs


# The largest number (in bits) `*` and `**` may make: ~19,700 decimal digits, far beyond anything a
# template prints (Python refuses to print more than 4,300), and cheap to multiply.
MAX_NUMBER_BITS = 1 << 16
# Values with a length whose text the output limit bounds.
_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)
# The method names the immutable sandbox refuses on lists, dicts and sets: only for these is its
# check (a few abstract-class isinstance checks, per attribute access) needed.
_MUTATING_METHODS = frozenset().union(*(names for _, names in _mutable_spec))


class _LimitedCodeGenerator(CodeGenerator):
    """Jinja's code generator with nested buffers counted, `~` measured, and loops guarded."""

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.output_buffer()")

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.concat_operands({join}, (")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        guarded = copy.copy(node)
        guarded.iter = nodes.Call(nodes.EnvironmentAttribute("guard_loop"), [node.iter], [], None, None,
                                  lineno=node.lineno)
        super().visit_For(guarded, frame)


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with every way of growing text or time guarded (see the module's
    docstring). Templates compiled here render like in the plain sandbox until a limit is hit."""

    code_generator_class = _LimitedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, limits: RenderLimits, **options: Any) -> None:
        super().__init__(finalize=self._finalize, **options)
        self.limits = limits
        self.concat = self._concat  # nested buffers and `{{ self.block() }}` join through this
        # Filters that multiply text, checked before they run; filters Python runs in C, replaced.
        self._pre_checks = {
            "center": self._check_center, "indent": self._check_indent, "wordwrap": self._check_wordwrap,
            "format": self._check_format_filter, "replace": self._check_replace_filter,
            "batch": self._check_batch, "slice": self._check_slice, "urlize": self._check_urlize,
        }
        filters = {**self.filters, "join": self._join, "sum": self._sum, "pprint": self._pprint,
                   "tojson": self._tojson}
        self.filters = {name: self._limited_filter(name, function) for name, function in filters.items()}
        self.globals["lipsum"] = self._lipsum

    # -- measuring ------------------------------------------------------------------------------

    def text_size(self, value: Any, budget: int | None = None) -> int:
        """The length of `str(value)`, at most `budget` (the output limit), without building it."""
        if type(value) is str:
            size = len(value)
            if size > (self.limits.output_bytes if budget is None else budget):
                raise self.limits.too_big("the text of a value")
            return size
        return measure_text(value, self.limits.output_bytes if budget is None else budget, self.limits)[0]

    def _at_most(self, size: int) -> None:
        if size > self.limits.output_bytes:
            raise self.limits.too_big("a value")

    def _check_value(self, value: Any) -> Any:
        """A result: no longer than the output limit, and counted into what the render built."""
        if isinstance(value, _SIZED):
            size = len(value)
            self._at_most(size)
            render = ACTIVE.get()
            if render is not None:
                render.built(size)
        return value

    def _finalize(self, value: Any) -> Any:
        # `{{ value }}`: a value that is not text yet is measured before `str()` writes it out.
        if not isinstance(value, (str, int, float)):
            self.text_size(value)
        return value

    def _concat(self, parts: Iterable[str]) -> str:
        if type(parts) is _Buffer:  # counted while it was filled
            return "".join(parts)
        buffer = self.output_buffer()
        for part in parts:
            buffer.append(part)
        return "".join(buffer)

    def output_buffer(self) -> _Buffer:
        """A buffer of nested output (macro body, `{% set %}` block, filter block), counted like the
        output itself."""
        return _Buffer(self.limits, ACTIVE.get())

    def concat_operands(self, join: Any, operands: tuple[Any, ...]) -> str:
        """`a ~ b ~ c`: the operands' text is measured before it is built."""
        left = self.limits.output_bytes
        for operand in operands:
            left -= self.text_size(operand, left)
        return self._check_value(join(operands))

    def guard_loop(self, iterable: Any) -> Iterator[Any]:
        """Every `{% for %}` iterates through this: each iteration checks the deadline."""
        render = ACTIVE.get()
        if render is None:
            return iterable
        return _guarded(iterable, render)

    # -- the sandbox's hooks --------------------------------------------------------------------

    def getattr(self, obj: Any, attribute: str) -> Any:
        check_time()
        return super().getattr(obj, attribute)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr in _MUTATING_METHODS:
            return super().is_safe_attribute(obj, attr, value)
        return SandboxedEnvironment.is_safe_attribute(self, obj, attr, value)

    def getitem(self, obj: Any, argument: Any) -> Any:
        check_time()
        return super().getitem(obj, argument)

    def call_binop(self, context: Context | None, operator: str, left: Any, right: Any) -> Any:
        check_time()
        if operator == "*":
            self._check_repeat(left, right)
        elif operator == "**":
            self._check_power(left, right)
        elif operator == "+":
            if isinstance(left, _SIZED) and isinstance(right, _SIZED):
                self._at_most(len(left) + len(right))
        elif operator == "%" and isinstance(left, (str, bytes, bytearray)):
            self._check_printf(left, right)
        return self._check_value(self.binop_table[operator](left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        check_time()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, (str, bytes, bytearray)):
            method = getattr(__obj, "__name__", "")
            if method == "join" and len(args) == 1 and not kwargs:
                args = (__self._joinable(owner, args[0]),)
            else:
                __self._check_text_method(owner, method, args, kwargs)
        return __self._check_value(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Any:
        """`str.format` and `format_map` through a formatter that measures every field (Jinja's
        own wrapper with the counting formatters)."""
        if getattr(value, "__name__", None) not in ("format", "format_map"):
            return None
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        owner = value.__self__
        formatter: _LimitedFormatter
        if isinstance(owner, Markup):
            formatter = _LimitedEscapeFormatter(self, escape=owner.escape)
        else:
            formatter = _LimitedFormatter(self)
        is_format_map = value.__name__ == "format_map"

        @functools.wraps(value)
        def limited(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    return wrapped(*args, **kwargs)  # let Jinja's wrapper raise its TypeError
                kwargs, args = args[0], ()
            return type(owner)(formatter.vformat(owner, args, kwargs))

        return limited

    # -- operators and methods ------------------------------------------------------------------

    def _check_repeat(self, left: Any, right: Any) -> None:
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_NUMBER_BITS:
                raise self._number_too_big()
            return
        for sequence, times in ((left, right), (right, left)):
            if isinstance(sequence, _SIZED) and isinstance(times, int) and times > 0:
                if len(sequence) * times > self.limits.output_bytes:
                    raise self.limits.too_big("a value")

    def _check_power(self, left: Any, right: Any) -> None:
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            if left.bit_length() * right > MAX_NUMBER_BITS:
                raise self._number_too_big()

    def _number_too_big(self) -> TemplateLimitExceeded:
        return TemplateLimitExceeded(f"it computes a number larger than {MAX_NUMBER_BITS} bits")

    def _check_printf(self, fmt: str | bytes | bytearray, values: Any) -> None:
        """`fmt % values` (and the `format` filter): the result's size from the conversions' widths,
        precisions and values, before Python builds it."""
        text = fmt if isinstance(fmt, str) else bytes(fmt).decode("latin-1")
        limit = self.limits.output_bytes
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
                raise self.limits.too_big("a formatted value")
            if conversion == "%":
                size = 1
            else:
                if key is not None:
                    value = values.get(key) if isinstance(values, Mapping) else None
                else:
                    value = next(positional, None)
                if conversion in ("s", "b", "r", "a"):
                    size = self.text_size(value, limit - total) * (1 if conversion in ("s", "b") else 10) + 2
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
                raise self.limits.too_big("a formatted value")

    def _check_text_method(self, owner: str | bytes | bytearray, method: str, args: tuple[Any, ...],
                           kwargs: dict[str, Any]) -> None:
        if method in ("center", "ljust", "rjust", "zfill"):
            width = args[0] if args else None
            if isinstance(width, int):
                self._at_most(width)
        elif method == "expandtabs":
            size = args[0] if args else kwargs.get("tabsize", 8)
            if isinstance(size, int):
                tab = b"\t" if isinstance(owner, (bytes, bytearray)) else "\t"
                self._at_most(len(owner) + owner.count(tab) * size)
        elif method == "replace" and len(args) >= 2:
            count = args[2] if len(args) > 2 else kwargs.get("count", -1)
            self._check_replace(owner, args[0], args[1], count)
        elif method == "translate" and isinstance(owner, str) and args:
            # Each character may become the longest text of the table.
            table = args[0]
            if isinstance(table, Mapping):
                table = table.values()
            elif not isinstance(table, (list, tuple)):
                table = ()
            longest = max((len(value) for value in table if isinstance(value, str)), default=1)
            self._at_most(len(owner) * max(longest, 1))

    def _check_replace(self, text: Any, old: Any, new: Any, count: Any) -> None:
        if not (isinstance(old, (str, bytes)) and isinstance(new, (str, bytes))):
            return
        try:
            found = len(text) + 1 if not old else text.count(old)
        except TypeError:
            return  # str and bytes mixed: Python refuses
        if isinstance(count, int) and count >= 0:
            found = min(found, count)
        self._at_most(len(text) + found * max(len(new) - len(old), 0))

    def _joinable(self, separator: str | bytes | bytearray, items: Any) -> list[Any]:
        """The items of `separator.join(items)`, once the result's size is known to fit."""
        items = list(items)
        left = self.limits.output_bytes - len(separator) * max(len(items) - 1, 0)
        if left < 0:
            raise self.limits.too_big("a joined value")
        for item in items:
            left -= self.text_size(item, left)
        return items

    # -- filters --------------------------------------------------------------------------------

    def _limited_filter(self, name: str, function: Any) -> Any:
        """The filter with the deadline checked, its arguments checked where it multiplies text,
        its value measured where it turns it into text, and its result measured."""
        # Filters marked pass_context/pass_eval_context/pass_environment get that first.
        skip = 0 if _PassArg.from_obj(function) is None else 1
        measures_value = name in _TEXT_FILTERS
        pre_check = self._pre_checks.get(name)

        @functools.wraps(function)
        def limited(*args: Any, **kwargs: Any) -> Any:
            check_time()
            if len(args) > skip:
                if measures_value:
                    self.text_size(args[skip])
                if pre_check is not None:
                    pre_check(*args[skip:], **kwargs)
            return self._check_value(function(*args, **kwargs))

        return limited

    def _check_center(self, value: Any, width: Any = 80) -> None:
        if isinstance(width, int):
            self._at_most(width)

    def _check_indent(self, value: Any, width: Any = 4, first: bool = False, blank: bool = False) -> None:
        indent = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        text = str(value)
        self._at_most(len(text) + (text.count("\n") + 1) * max(indent, 0))

    def _check_wordwrap(self, value: Any, width: Any = 79, break_long_words: bool = True,
                        wrapstring: Any = None, break_on_hyphens: bool = True) -> None:
        if wrapstring is None:
            wrapstring = self.newline_sequence
        if isinstance(wrapstring, str) and len(wrapstring) > 1:
            text = str(value)  # at most one break per character
            self._at_most(len(text) + (len(text) + 1) * len(wrapstring))

    def _check_format_filter(self, value: Any, *args: Any, **kwargs: Any) -> None:
        self._check_printf(str(value), kwargs or args)

    def _check_replace_filter(self, value: Any, old: Any, new: Any, count: Any = None) -> None:
        self._check_replace(str(value), str(old), str(new), count)

    def _check_batch(self, value: Any, linecount: Any, fill_with: Any = None) -> None:
        if fill_with is not None and isinstance(linecount, int):
            self._at_most(linecount)

    def _check_slice(self, value: Any, slices: Any, fill_with: Any = None) -> None:
        if isinstance(slices, int):
            self._at_most(slices)

    def _check_urlize(self, value: Any, trim_url_limit: Any = None, nofollow: bool = False,
                      target: Any = None, rel: Any = None, extra_schemes: Any = None) -> None:
        # Every word may become a link carrying the target and rel attributes.
        extra = sum(len(str(option)) for option in (target, rel) if option is not None)
        self._at_most(len(str(value).split()) * extra)

    @pass_eval_context
    def _join(self, eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> str:
        if attribute is not None:
            value = map(make_attrgetter(eval_ctx.environment, attribute), value)
        return sync_do_join(eval_ctx, self._joinable(str(d), value), d)

    @pass_environment
    def _sum(self, environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        # Python's sum() adds lists or strings in C, in quadratic time, where no deadline can stop it.
        if isinstance(start, (str, bytes, bytearray)):
            raise TypeError("sum() can't sum strings")  # as Python's
        if attribute is not None:
            iterable = map(make_attrgetter(environment, attribute), iterable)
        total = start
        for item in iterable:
            total = self.call_binop(None, "+", total, item)
        return total

    def _pprint(self, value: Any) -> str:
        self.text_size(value)
        stream = _CountingStream(self.limits)
        pprint.PrettyPrinter(stream=stream).pprint(value)
        return stream.getvalue()[:-1]  # pformat's text: pprint() adds a line end

    @pass_eval_context
    def _tojson(self, eval_ctx: Any, value: Any, indent: Any = None) -> Markup:
        _, depth = measure_text(value, self.limits.output_bytes, self.limits)
        kwargs = dict(self.policies["json.dumps_kwargs"])
        if indent is not None:
            width = len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 0
            self._at_most(max(width, 0) * (depth + 1))
            kwargs["indent"] = indent
        return htmlsafe_json_dumps(value, dumps=self._dumps, **kwargs)

    def _dumps(self, value: Any, **kwargs: Any) -> str:
        buffer = self.output_buffer()
        for chunk in json.JSONEncoder(**kwargs).iterencode(value):
            buffer.append(chunk)
        return "".join(buffer)

    def _lipsum(self, n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
        if isinstance(n, int) and isinstance(max, int):
            self._at_most(n * max * 12)  # words of up to 12 characters
        return generate_lorem_ipsum(n, html, min, max)


# Filters that turn their value into text (`str()` of it), which is measured first.
_TEXT_FILTERS = frozenset({
    "capitalize", "center", "e", "escape", "forceescape", "format", "indent", "lower", "replace", "safe",
    "string", "striptags", "title", "trim", "truncate", "upper", "urlencode", "urlize", "wordcount",
    "wordwrap", "xmlattr",
})


def _guarded(iterable: Any, render: Render) -> Iterator[Any]:
    for item in iterable:
        render.check_time()
        yield item


class _Buffer(list):  # type: ignore[type-arg]
    """Nested output, counted as it is appended (each buffer may hold up to the output limit, and
    counts into what the render built). Empty chunks are dropped: they would only cost memory."""

    __slots__ = ("_limits", "_render", "_left")

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


class _CountingStream(StringIO):
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


class _LimitedFormatter(SandboxedFormatter):
    """`str.format` fields measured before they are formatted, and their total counted."""

    def __init__(self, env: LimitedSandbox, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._limited = env
        self._left = env.limits.output_bytes

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._left = self._limited.limits.output_bytes
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        self._limited.text_size(value)  # before `!r` builds its repr
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        check_time()
        for number in re.findall(r"\d+", format_spec):  # width and precision
            if len(number) > 9 or int(number) > self._limited.limits.output_bytes:
                raise self._limited.limits.too_big("a formatted value")
        self._limited.text_size(value)
        text = super().format_field(value, format_spec)
        self._left -= len(text)
        if self._left < 0:
            raise self._limited.limits.too_big("a formatted value")
        return text


class _LimitedEscapeFormatter(_LimitedFormatter, SandboxedEscapeFormatter):
    pass
