"""The budget of one render: its limits, its deadline, what it may still produce and build, and
the render in progress on this context (`limits.py` says how the budget is enforced)."""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass

# Everything one render builds (results of operators, calls and filters, nested output) may add up
# to this many times the output limit: room for templates that build and discard, not for a
# render that holds gigabytes by keeping many values each under the limit.
BUILD_FACTOR = 8


class TemplateLimitExceeded(Exception):
    """A template broke a render limit. `reason` names the limit; it never holds user data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RenderLimits:
    """The budget of one render: an email's three parts together, or one page."""

    seconds: float
    output_bytes: int

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.output_bytes < 1:
            raise ValueError("render limits must be positive")

    def too_long(self) -> TemplateLimitExceeded:
        return TemplateLimitExceeded(f"it takes longer than TEMPLATE_RENDER_SECONDS ({self.seconds:g} s)")

    def too_big(self, what: str = "its output") -> TemplateLimitExceeded:
        return TemplateLimitExceeded(f"{what} would exceed TEMPLATE_OUTPUT_BYTES ({self.output_bytes} bytes)")

    def check_size(self, size: int, what: str = "a value") -> None:
        """`TemplateLimitExceeded` when a value of `size` characters would pass the output limit."""
        if size > self.output_bytes:
            raise self.too_big(what)


class Render:
    """The state of the render in progress: its deadline and what it may still produce."""

    __slots__ = ("build_left", "deadline", "finished", "limits", "output_left", "running")

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.output_left = limits.output_bytes
        self.build_left = limits.output_bytes * BUILD_FACTOR
        # True while a template is compiled or run (`render_limited`): only then may the alarm raise,
        # never in the bookkeeping around it.
        self.running = False
        self.finished = False

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise self.limits.too_long()

    def built(self, size: int) -> None:
        self.build_left -= size
        if self.build_left < 0:
            raise TemplateLimitExceeded(
                f"it builds more than {BUILD_FACTOR} times TEMPLATE_OUTPUT_BYTES "
                f"({self.limits.output_bytes * BUILD_FACTOR} characters) of values"
            )


# The render in progress on this context, if any: what the sandbox's checks charge.
ACTIVE: contextvars.ContextVar[Render | None] = contextvars.ContextVar("userreg_template_render", default=None)


def check_time() -> None:
    """`TemplateLimitExceeded` when the render in progress is past its deadline."""
    render = ACTIVE.get()
    if render is not None:
        render.check_time()
