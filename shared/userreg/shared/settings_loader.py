"""Reading the settings at a process's start: `load_settings` for an entry point, and the problems
of a bad environment as lines that name their environment variables, never their values."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from userreg.shared.settings import Settings, mask_url


def load_settings(program: str) -> Settings:
    """The settings from the environment, for a process's entry point. When one is bad, the
    process cannot do anything useful: each problem goes to stderr as a line naming its environment
    variable (`settings_problems`) and the process exits with status 2."""
    try:
        return Settings()
    except ValidationError as error:
        for problem in settings_problems(error):
            print(f"{program}: {problem}", file=sys.stderr)
        raise SystemExit(2) from None


def settings_problems(error: ValidationError) -> list[str]:
    """One line per problem of `Settings()`: the environment variable and what is wrong with it.
    Never the value, which may be a secret: pydantic's messages leave the input out, ours never
    quote it, and any URL's password in a message is masked all the same."""
    problems = []
    for problem in error.errors(include_input=False, include_url=False):
        cause = problem.get("ctx", {}).get("error") if problem["type"] == "value_error" else None
        message = mask_url(str(cause) if cause is not None else problem["msg"])
        if problem["loc"]:
            problems.append(f"invalid setting {environment_variable(str(problem['loc'][0]))}: {message}")
        else:  # a check of several settings together: its message names them
            problems.append(f"invalid settings: {message}")
    return problems


def environment_variable(field: str) -> str:
    """The environment variable a setting is read from (pydantic-settings reads the field's name,
    after any prefix, in any case; the upper-case spelling is the documented one)."""
    return f"{Settings.model_config.get('env_prefix') or ''}{field}".upper()
