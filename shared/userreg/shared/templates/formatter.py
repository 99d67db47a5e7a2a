"""`str.format` and `format_map` inside `LimitedSandbox`: every field measured before it is
formatted, and the text they make together counted against the output limit."""

from __future__ import annotations

import re
from typing import Any

from jinja2.sandbox import SandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter

from userreg.shared.templates.budget import RenderLimits, check_time
from userreg.shared.templates.measure import text_size


class LimitedFormatter(SandboxedFormatter):
    """`str.format` fields measured before they are formatted, and their total counted."""

    def __init__(self, env: SandboxedEnvironment, limits: RenderLimits, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._limits = limits
        self._left = limits.output_bytes

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._left = self._limits.output_bytes
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        text_size(value, self._limits)  # before `!r` builds its repr
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        check_time()
        for number in re.findall(r"\d+", format_spec):  # width and precision
            if len(number) > 9 or int(number) > self._limits.output_bytes:
                raise self._limits.too_big("a formatted value")
        text_size(value, self._limits)
        text = super().format_field(value, format_spec)
        self._left -= len(text)
        if self._left < 0:
            raise self._limits.too_big("a formatted value")
        return text


class LimitedEscapeFormatter(LimitedFormatter, SandboxedEscapeFormatter):
    pass
