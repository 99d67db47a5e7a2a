"""`LimitedSandbox`: Jinja's immutable sandbox with every door through which a template can make
text or values grow guarded against the render's budget (the size half of `limits.py`).

The guards live by job: `operators.py` sizes what operators and text methods would make,
`filters.py` wraps the filters, `formatter.py` bounds `str.format`, `buffers.py` counts nested
output, `measure.py` sizes a value's text without building it. This module wires them into the
environment: the compiled code's hooks, the output's finalisation and concatenation, and loops;
`i18n.py` gives it `{% trans %}`, whose callables format through the same guarded `%`."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment, _mutable_spec
from jinja2.utils import generate_lorem_ipsum
from markupsafe import Markup

from userreg.shared.locales import DEFAULT_LOCALE
from userreg.shared.templates.budget import ACTIVE, Render, RenderLimits, check_time
from userreg.shared.templates.buffers import CountedBuffer
from userreg.shared.templates.filters import limited_filters
from userreg.shared.templates.formatter import LimitedEscapeFormatter, LimitedFormatter
from userreg.shared.templates.i18n import I18N_EXTENSION, gettext_callables
from userreg.shared.templates.measure import SIZED, text_size
from userreg.shared.templates.operators import (
    check_power,
    check_printf,
    check_repeat,
    check_text_method,
    joinable,
)

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
        guarded.iter = nodes.Call(
            nodes.EnvironmentAttribute("guard_loop"), [node.iter], [], None, None, lineno=node.lineno
        )
        super().visit_For(guarded, frame)


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with every way of growing text or time guarded (see the module's
    docstring). Templates compiled here render like in the plain sandbox until a limit is hit."""

    code_generator_class = _LimitedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, limits: RenderLimits, **options: Any) -> None:
        super().__init__(finalize=self._finalize, extensions=[I18N_EXTENSION], **options)
        self.limits = limits
        # `{% trans %}`: newstyle gettext (the callables format and escape), whitespace trimmed as
        # `pybabel extract` trims it; English unless a render's context brings its language's callables.
        self.newstyle_gettext = True
        self.policies["ext.i18n.trimmed"] = True
        self.globals.update(gettext_callables(DEFAULT_LOCALE))
        self.filters = limited_filters(self)
        self.globals["lipsum"] = self._lipsum

    # -- measuring ------------------------------------------------------------------------------

    def check_result(self, value: Any) -> Any:
        """A result: no longer than the output limit, and counted into what the render built."""
        if isinstance(value, SIZED):
            size = len(value)
            self.limits.check_size(size)
            render = ACTIVE.get()
            if render is not None:
                render.built(size)
        return value

    def _finalize(self, value: Any) -> Any:
        # `{{ value }}`: a value that is not text yet is measured before `str()` writes it out.
        if not isinstance(value, (str, int, float)):
            text_size(value, self.limits)
        return value

    def concat(self, parts: Iterable[str]) -> str:
        """How Jinja joins nested buffers and `{{ self.block() }}`: counted as the output is."""
        if type(parts) is CountedBuffer:  # counted while it was filled
            return "".join(parts)
        buffer = self.output_buffer()
        for part in parts:
            buffer.append(part)
        return "".join(buffer)

    def output_buffer(self) -> CountedBuffer:
        """A buffer of nested output (macro body, `{% set %}` block, filter block), counted like the
        output itself."""
        return CountedBuffer(self.limits, ACTIVE.get())

    def concat_operands(self, join: Any, operands: tuple[Any, ...]) -> str:
        """`a ~ b ~ c`: the operands' text is measured before it is built."""
        left = self.limits.output_bytes
        for operand in operands:
            left -= text_size(operand, self.limits, left)
        return self.check_result(join(operands))

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
            check_repeat(self.limits, left, right)
        elif operator == "**":
            check_power(left, right)
        elif operator == "+":
            if isinstance(left, SIZED) and isinstance(right, SIZED):
                self.limits.check_size(len(left) + len(right))
        elif operator == "%" and isinstance(left, (str, bytes, bytearray)):
            check_printf(self.limits, left, right)
        return self.check_result(self.binop_table[operator](left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_time()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, (str, bytes, bytearray)):
            method = getattr(__obj, "__name__", "")
            if method == "join" and len(args) == 1 and not kwargs:
                args = (joinable(__self.limits, owner, args[0]),)
            else:
                check_text_method(__self.limits, owner, method, args, kwargs)
        return __self.check_result(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Any:
        """`str.format` and `format_map` through a formatter that measures every field (Jinja's
        own wrapper with the counting formatters)."""
        if getattr(value, "__name__", None) not in ("format", "format_map"):
            return None
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        owner = value.__self__
        formatter: LimitedFormatter
        if isinstance(owner, Markup):
            formatter = LimitedEscapeFormatter(self, self.limits, escape=owner.escape)
        else:
            formatter = LimitedFormatter(self, self.limits)
        is_format_map = value.__name__ == "format_map"

        @functools.wraps(value)
        def limited(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    return wrapped(*args, **kwargs)  # let Jinja's wrapper raise its TypeError
                kwargs, args = args[0], ()
            return type(owner)(formatter.vformat(owner, args, kwargs))

        return limited

    # -- globals --------------------------------------------------------------------------------

    def _lipsum(self, n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        if isinstance(n, int) and isinstance(max, int):
            self.limits.check_size(n * max * 12)  # words of up to 12 characters
        return generate_lorem_ipsum(n, html, min, max)


def _guarded(iterable: Any, render: Render) -> Iterator[Any]:
    for item in iterable:
        render.check_time()
        yield item
