"""Jinja's filters inside `LimitedSandbox`: each checks the deadline and has its result measured;
those that multiply text have their arguments checked before they run, those that turn their
value into text measure it first, and those Python runs in C (`join`, `sum`, `pprint`, `tojson`)
are replaced by ones that count as they go."""

from __future__ import annotations

import functools
import json
import pprint
from typing import Any, Protocol

from jinja2.filters import make_attrgetter, sync_do_join
from jinja2.utils import _PassArg, htmlsafe_json_dumps, pass_environment, pass_eval_context
from markupsafe import Markup

from userreg.shared.templates.budget import RenderLimits, check_time
from userreg.shared.templates.buffers import CountedBuffer, CountingStream
from userreg.shared.templates.measure import measure_text, text_size
from userreg.shared.templates.operators import check_printf, check_replace, joinable


class FilterEnvironment(Protocol):
    """What the limited filters use of the environment they are installed in (`LimitedSandbox`)."""

    limits: RenderLimits
    filters: dict[str, Any]
    policies: dict[str, Any]

    @property
    def newline_sequence(self) -> str: ...

    def check_result(self, value: Any) -> Any: ...

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any: ...

    def output_buffer(self) -> CountedBuffer: ...


# Filters that turn their value into text (`str()` of it), which is measured first.
TEXT_FILTERS = frozenset(
    {
        "capitalize",
        "center",
        "e",
        "escape",
        "forceescape",
        "format",
        "indent",
        "lower",
        "replace",
        "safe",
        "string",
        "striptags",
        "title",
        "trim",
        "truncate",
        "upper",
        "urlencode",
        "urlize",
        "wordcount",
        "wordwrap",
        "xmlattr",
    }
)


def limited_filters(environment: FilterEnvironment) -> dict[str, Any]:
    """The environment's filters, each wrapped by `_limited`, with the counting replacements."""
    pre_checks = {
        "center": _check_center,
        "indent": _check_indent,
        "wordwrap": _check_wordwrap,
        "format": _check_format,
        "replace": _check_replace,
        "batch": _check_batch,
        "slice": _check_slice,
        "urlize": _check_urlize,
    }
    filters = {**environment.filters, "join": _join, "sum": _sum, "pprint": _pprint, "tojson": _tojson}
    return {name: _limited(environment, name, function, pre_checks.get(name)) for name, function in filters.items()}


def _limited(environment: FilterEnvironment, name: str, function: Any, pre_check: Any) -> Any:
    """The filter with the deadline checked, its arguments checked where it multiplies text,
    its value measured where it turns it into text, and its result measured."""
    # Filters marked pass_context/pass_eval_context/pass_environment get that first.
    skip = 0 if _PassArg.from_obj(function) is None else 1
    measures_value = name in TEXT_FILTERS
    limits = environment.limits
    check_result = environment.check_result

    @functools.wraps(function)
    def limited(*args: Any, **kwargs: Any) -> Any:
        check_time()
        if len(args) > skip:
            if measures_value:
                text_size(args[skip], limits)
            if pre_check is not None:
                pre_check(environment, *args[skip:], **kwargs)
        return check_result(function(*args, **kwargs))

    return limited


# -- checks before the filters that multiply text (each gets the environment, then the filter's arguments)


def _check_center(environment: FilterEnvironment, value: Any, width: Any = 80) -> None:
    if isinstance(width, int):
        environment.limits.check_size(width)


def _check_indent(
    environment: FilterEnvironment, value: Any, width: Any = 4, first: bool = False, blank: bool = False
) -> None:
    indent = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    text = str(value)
    environment.limits.check_size(len(text) + (text.count("\n") + 1) * max(indent, 0))


def _check_wordwrap(
    environment: FilterEnvironment,
    value: Any,
    width: Any = 79,
    break_long_words: bool = True,
    wrapstring: Any = None,
    break_on_hyphens: bool = True,
) -> None:
    if wrapstring is None:
        wrapstring = environment.newline_sequence
    if isinstance(wrapstring, str) and len(wrapstring) > 1:
        text = str(value)  # at most one break per character
        environment.limits.check_size(len(text) + (len(text) + 1) * len(wrapstring))


def _check_format(environment: FilterEnvironment, value: Any, *args: Any, **kwargs: Any) -> None:
    check_printf(environment.limits, str(value), kwargs or args)


def _check_replace(environment: FilterEnvironment, value: Any, old: Any, new: Any, count: Any = None) -> None:
    check_replace(environment.limits, str(value), str(old), str(new), count)


def _check_batch(environment: FilterEnvironment, value: Any, linecount: Any, fill_with: Any = None) -> None:
    if fill_with is not None and isinstance(linecount, int):
        environment.limits.check_size(linecount)


def _check_slice(environment: FilterEnvironment, value: Any, slices: Any, fill_with: Any = None) -> None:
    if isinstance(slices, int):
        environment.limits.check_size(slices)


def _check_urlize(
    environment: FilterEnvironment,
    value: Any,
    trim_url_limit: Any = None,
    nofollow: bool = False,
    target: Any = None,
    rel: Any = None,
    extra_schemes: Any = None,
) -> None:
    # Every word may become a link carrying the target and rel attributes.
    extra = sum(len(str(option)) for option in (target, rel) if option is not None)
    environment.limits.check_size(len(str(value).split()) * extra)


# -- replacements for the filters Python runs in C, where no deadline can stop them -----------------


@pass_eval_context
def _join(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> str:
    environment = eval_ctx.environment
    if attribute is not None:
        value = map(make_attrgetter(environment, attribute), value)
    return sync_do_join(eval_ctx, joinable(environment.limits, str(d), value), d)


@pass_environment
def _sum(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    # Python's sum() adds lists or strings in C, in quadratic time, where no deadline can stop it.
    if isinstance(start, (str, bytes, bytearray)):
        raise TypeError("sum() can't sum strings")  # as Python's
    if attribute is not None:
        iterable = map(make_attrgetter(environment, attribute), iterable)
    total = start
    for item in iterable:
        total = environment.call_binop(None, "+", total, item)
    return total


@pass_environment
def _pprint(environment: Any, value: Any) -> str:
    text_size(value, environment.limits)
    stream = CountingStream(environment.limits)
    pprint.PrettyPrinter(stream=stream).pprint(value)
    return stream.getvalue()[:-1]  # pformat's text: pprint() adds a line end


@pass_eval_context
def _tojson(eval_ctx: Any, value: Any, indent: Any = None) -> Markup:
    environment = eval_ctx.environment
    _, depth = measure_text(value, environment.limits.output_bytes, environment.limits)
    kwargs = dict(environment.policies["json.dumps_kwargs"])
    if indent is not None:
        width = len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 0
        environment.limits.check_size(max(width, 0) * (depth + 1))
        kwargs["indent"] = indent

    def dumps(value: Any, **kwargs: Any) -> str:
        buffer = environment.output_buffer()
        for chunk in json.JSONEncoder(**kwargs).iterencode(value):
            buffer.append(chunk)
        return "".join(buffer)

    return htmlsafe_json_dumps(value, dumps=dumps, **kwargs)
