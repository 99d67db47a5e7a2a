"""A bad setting stops every process at once with one readable line per problem: the environment
variable's name and what is wrong, never its value (a URL's password stays out of the output), and
exit status 2 (as for bad arguments), before anything connects anywhere."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import SecretStr, ValidationError

from userreg.shared.settings import Settings, mask_url
from userreg.shared.settings_loader import environment_variable, settings_problems

PASSWORD = "Sup3rS3cretPassw0rd"
# Every process entry point reads its settings through `load_settings`.
ENTRY_POINTS = {
    "registration": ["-m", "userreg.registration"],
    "mailer": ["-m", "userreg.mailer"],
    "confirmation-web": ["-m", "userreg.confirmation_web"],
    "admin": ["-m", "userreg.admin", "app", "list"],
}
NOT_A_NUMBER = ("ARGON2_TIME_COST", "two")
OTHER_DATABASE = ("DATABASE_URL", f"mysql://admin:{PASSWORD}@db:3306/userreg")
BAD_PORT = ("DATABASE_URL", f"postgresql+asyncpg://admin:{PASSWORD}@db:port/userreg")
NOT_AMQP = ("AMQP_URL", f"http://guest:{PASSWORD}@rabbitmq:5672/")
# Every entry point with a number that is none and a URL with a password; the other bad URLs once.
CASES = [
    *(pytest.param(name, NOT_A_NUMBER, id=f"{name}-not-a-number") for name in ENTRY_POINTS),
    *(pytest.param(name, OTHER_DATABASE, id=f"{name}-other-database") for name in ENTRY_POINTS),
    pytest.param("registration", BAD_PORT, id="registration-database-port"),
    pytest.param("registration", NOT_AMQP, id="registration-not-amqp"),
]


@pytest.mark.parametrize("entry_point, setting", CASES)
def test_a_bad_setting_stops_the_process_with_a_line_naming_it(entry_point, setting):
    variable, value = setting
    environment = {**os.environ, variable: value}
    outcome = subprocess.run(
        [sys.executable, *ENTRY_POINTS[entry_point]], env=environment, capture_output=True, text=True, timeout=60
    )
    assert outcome.returncode == 2, outcome.stderr
    [line] = outcome.stderr.splitlines()
    assert f"invalid setting {variable}: " in line
    assert PASSWORD not in outcome.stderr and value not in outcome.stderr
    assert "Traceback" not in outcome.stderr and outcome.stdout == ""


def test_each_problem_is_a_line_with_the_variable_and_what_is_wrong():
    with pytest.raises(ValidationError) as raised:
        Settings(
            database_url=SecretStr(f"postgresql://admin:{PASSWORD}@db/userreg"),
            argon2_time_cost="two",
            database_pool_size=0,
        )
    assert settings_problems(raised.value) == [
        "invalid setting DATABASE_URL: must be a PostgreSQL URL for the asyncpg driver, "
        "e.g. postgresql+asyncpg://user@host:5432/userreg",
        "invalid setting DATABASE_POOL_SIZE: Input should be greater than or equal to 1",
        "invalid setting ARGON2_TIME_COST: Input should be a valid integer, unable to parse string as an integer",
    ]


def test_a_check_of_several_settings_is_reported_in_its_own_words():
    with pytest.raises(ValidationError) as raised:
        Settings(database_command_timeout=10, database_statement_timeout=30)
    assert settings_problems(raised.value) == [
        "invalid settings: DATABASE_COMMAND_TIMEOUT must be longer than DATABASE_STATEMENT_TIMEOUT "
        "(and 0 when that is 0)",
    ]


def test_no_message_shows_a_value_not_even_one_that_quotes_a_url():
    # pydantic's own messages leave the input out; a check's message that quotes a URL is masked.
    error = ValidationError.from_exception_data(
        "Settings",
        [
            {"type": "int_parsing", "loc": ("mailer_port",), "input": PASSWORD},
            {
                "type": "value_error",
                "loc": ("amqp_url",),
                "input": f"amqp://guest:{PASSWORD}@rabbitmq/",
                "ctx": {"error": ValueError(f"cannot use amqp://guest:{PASSWORD}@rabbitmq/")},
            },
        ],
    )
    assert settings_problems(error) == [
        "invalid setting MAILER_PORT: Input should be a valid integer, unable to parse string as an integer",
        "invalid setting AMQP_URL: cannot use amqp://guest:***@rabbitmq/",
    ]


def test_the_variable_is_the_upper_case_field_name():
    assert environment_variable("database_url") == "DATABASE_URL"
    assert environment_variable("template_output_bytes") == "TEMPLATE_OUTPUT_BYTES"


@pytest.mark.parametrize(
    "text, masked",
    [
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
        ("postgresql+asyncpg://postgres@db:5432/userreg", "postgresql+asyncpg://postgres@db:5432/userreg"),
        ("postgresql+asyncpg://db:5432/userreg", "postgresql+asyncpg://db:5432/userreg"),
        ("postgresql+asyncpg://admin:p@ss:w#rd@[::1]:5432/db", "postgresql+asyncpg://admin:***@[::1]:5432/db"),
        ("from a://u:one@h to b://v:two@k.", "from a://u:***@h to b://v:***@k."),
    ],
)
def test_mask_url_hides_every_password(text, masked):
    assert mask_url(text) == masked
