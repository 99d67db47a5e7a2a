"""Rendering operator templates under a time budget and an output-size budget (the README's Security section).

An operator's template is data, not code: whatever it does, a render ends within
`TEMPLATE_RENDER_SECONDS` and never builds more text than `TEMPLATE_OUTPUT_BYTES` allows, or it
raises `TemplateLimitExceeded` and the service goes on. Two mechanisms make that hold:

Size. A template can only make text or collections grow through a few doors, and each of them is
guarded in `LimitedSandbox`:
  * operators: `*`, `**`, `+` and `%` are intercepted and their result's size (or a number's bits)
    is worked out from the operands *before* Python computes it (`'a' * 10**10`, `10 ** (10**10)`
    and `'%099999999d' % 1` never allocate);
  * calls: methods that multiply text (`center`, `ljust`, `rjust`, `zfill`, `expandtabs`, `replace`,
    `join`, `translate`, `format`) are checked beforehand the same way;
  * filters: every filter is wrapped, the multiplying ones (`center`, `indent`, `wordwrap`,
    `format`, `join`, `replace`, `sum`, `batch`, `slice`, `urlize`, `pprint`, `tojson`) are checked
    beforehand, and a filter that turns its value into text measures the value first;
  * text made of other values (`{{ x }}`, `a ~ b`, str.format fields) measures each value's text
    without building it (`measure_text`), so a list holding one big list many times cannot print;
  * output: the top-level output is consumed chunk by chunk and counted in bytes; nested output
    (macro bodies, `{% set %}` blocks, `{{ self.block() }}`) goes into counted buffers.
Every result is measured after the fact too: no single value may be longer than the output limit,
and everything a render builds together may not exceed `BUILD_FACTOR` times it, which bounds the
memory a render can hold at once (values kept in a namespace, a deep recursion of macros) as well.
What is left is constant-factor growth of values that are already bounded (escaping, upper-casing,
`strftime`), caught right after the operation.

Time. A render gets a wall-clock deadline, which compiling the template (once per process and
source) counts against too. On the main thread (where the services render, in their event loop) a
`SIGALRM` timer interrupts the template wherever it is in Python code (and rings again every
`_ALARM_REPEAT_SECONDS` until the render is over, should the exception be swallowed on its way);
on every thread, every loop iteration, call, attribute or item access, operator and filter checks
the deadline too, which is how a render off the main thread is stopped. Long single operations in
C (huge allocations, big-number arithmetic, quadratic `sum` of lists) are exactly what the size
checks keep from happening, so the checks between them come often enough.

Nothing fires after a render: the alarm raises only while a template is compiled or run, never in
the bookkeeping around it; the timer is cancelled and the previous `SIGALRM` handler and timer are
restored before the render returns, and a signal already on its way then finds the render finished
and does nothing.
"""

from __future__ import annotations

import contextlib
import functools
import json
import pprint
import signal
import string
import textwrap
import threading
import time

# `signal.signal` without its wrapper, which turns the handler it returns into an enum member by
# trying and failing: that costs more than rendering a small template, twice per render.
from _signal import signal as _set_handler  # type: ignore[import-not-found]  # CPython's C module: typeshed has no stub
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import jinja2
import markupsafe
from jinja2 import Template

from userreg.shared.templates.budget import ACTIVE, Render, RenderLimits, TemplateLimitExceeded
from userreg.shared.templates.sandbox import LimitedSandbox

__all__ = ["LimitedSandbox", "RenderLimits", "TemplateLimitExceeded", "limited_render", "render_limited"]


# After the alarm, it rings again this often until the render is over: it may have found the
# render where it must not raise, or its exception may be swallowed on its way (Jinja's optimizer
# tries constant expressions under `except Exception`).
_ALARM_REPEAT_SECONDS = 0.05
# Code the alarm may interrupt: besides the templates' own, what they run (Jinja, MarkupSafe, this
# module, the pure-Python modules behind filters), none of which keeps state an exception could
# leave broken (Jinja's template caches at worst miss an entry). Not anything else that may run on
# the thread meanwhile: a library's weak-reference callback or `__del__`, run by the garbage
# collector in the middle of a render, or the context's own objects.
_INTERRUPTIBLE_FILES = tuple(
    str(path)
    for path in (
        Path(jinja2.__file__).parent,
        Path(markupsafe.__file__).parent,
        *(
            Path(__file__).with_name(f"{name}.py")
            for name in ("limits", "budget", "measure", "sandbox", "operators", "filters", "formatter", "buffers")
        ),
        Path(json.__file__).parent,
        Path(pprint.__file__),
        Path(string.__file__),
        Path(textwrap.__file__),
    )
)


def _interruptible(frame: FrameType | None) -> bool:
    return frame is not None and (
        isinstance(frame.f_globals.get("environment"), LimitedSandbox)
        or frame.f_code.co_filename.startswith(_INTERRUPTIBLE_FILES)
    )


def _on_alarm(render: Render, signum: int, frame: FrameType | None) -> None:
    # A render that returned in the instant the timer fired: nothing to do, nothing to repeat.
    if render.finished:
        return
    signal.setitimer(signal.ITIMER_REAL, _ALARM_REPEAT_SECONDS)
    if render.running and _interruptible(frame):
        raise render.limits.too_long()


def _may_use_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def limited_render(limits: RenderLimits) -> Iterator[None]:
    """Everything rendered inside (with `render_limited`) shares one deadline and one output budget.
    Raises `TemplateLimitExceeded` when one runs out; nothing of it outlives the block."""
    if ACTIVE.get() is not None:  # already inside one: that budget holds
        yield
        return
    render = Render(limits)
    token = ACTIVE.set(render)
    alarm = _may_use_alarm()
    previous_handler: Any = None
    previous_timer = (0.0, 0.0)
    started = time.monotonic()
    if alarm:
        try:
            previous_handler = _set_handler(signal.SIGALRM, functools.partial(_on_alarm, render))
        except ValueError:  # not the main interpreter: the deadline checks alone stop the render
            alarm = False
    try:
        if alarm:
            previous_timer = signal.setitimer(signal.ITIMER_REAL, limits.seconds)
        yield
    finally:
        # First, and without a call in between: from here on an alarm arriving late does nothing.
        render.finished = True
        render.running = False
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            _set_handler(signal.SIGALRM, signal.SIG_DFL if previous_handler is None else previous_handler)
            if previous_timer[0] > 0:  # someone else's timer (a test runner's timeout): give it back
                left = previous_timer[0] - (time.monotonic() - started)
                signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), previous_timer[1])
        ACTIVE.reset(token)


def render_limited(compile_template: Callable[[], Template], context: dict[str, Any]) -> str:
    """The template (compiled by `compile_template`, which counts against the time limit too)
    rendered inside `limited_render`, its output counted in UTF-8 bytes as it is produced: a render
    stops as soon as it passes the budget, it never holds more."""
    render = ACTIVE.get()
    if render is None:
        raise RuntimeError("render_limited() outside limited_render()")
    chunks: list[str] = []
    append = chunks.append
    left = render.output_left
    template = None
    render.running = True
    try:
        template = compile_template()
        render.check_time()
        # What `Template.render` does, with the output taken one chunk at a time. Characters are
        # counted as they come (a character is at least a byte), the bytes once at the end.
        for chunk in template.root_render_func(template.new_context(context)):
            if chunk:
                left -= len(chunk)
                if left < 0:
                    raise render.limits.too_big()
                append(chunk)
    except Exception:
        if template is None:
            raise
        template.environment.handle_exception()  # raises it again, with the template's lines in the traceback
    finally:
        render.running = False
    text = "".join(chunks)
    if not text.isascii():
        left -= len(text.encode("utf-8", "surrogatepass")) - len(text)
        if left < 0:
            raise render.limits.too_big()
    render.output_left = left
    return text
