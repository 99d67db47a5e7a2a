"""The RabbitMQ topology's choices per broker version, without a broker: RabbitMQ 4 gives a quorum
queue a delivery limit of 20 unless told otherwise; RabbitMQ 3 has none unless given one."""

from __future__ import annotations

import json
import re
import shlex

import pytest
from pamqp import encode

from userreg.shared.messaging import (
    QUORUM,
    broker_major_version,
    dead_letter_queue_arguments,
    delivery_limit_policy_command,
)


@pytest.mark.parametrize(
    ("properties", "major"),
    [
        ({"product": "RabbitMQ", "version": "3.10.8"}, 3),
        ({"product": "RabbitMQ", "version": "3.13.7"}, 3),
        ({"product": "RabbitMQ", "version": "4.1.4"}, 4),
        ({"product": "RabbitMQ", "version": "4.0.0-rc.2"}, 4),
        ({"product": b"RabbitMQ", "version": b"4.3.0"}, 4),
        ({"product": "RabbitMQ", "version": "10.0.1"}, 10),
        ({"product": "LavinMQ", "version": "4.2.0"}, None),
        ({"product": "RabbitMQ", "version": "unknown"}, None),
        ({"product": "RabbitMQ", "version": 4}, None),
        ({"product": "RabbitMQ"}, None),
        ({}, None),
    ],
)
def test_the_major_version_is_read_from_what_the_broker_announces(properties, major):
    assert broker_major_version(properties) == major


def test_rabbitmq_3_gets_no_delivery_limit_on_the_dead_letter_queue():
    # None is no limit there, as the queues made before declared it (an argument would not match them).
    assert dead_letter_queue_arguments(3) == QUORUM


@pytest.mark.parametrize("major", [4, 5])
def test_rabbitmq_4_and_later_get_a_limit_nothing_reaches(major):
    assert dead_letter_queue_arguments(major) == {**QUORUM, "x-delivery-limit": 2_147_483_647}


@pytest.mark.parametrize("major", [3, 4])
def test_the_arguments_can_be_sent(major):
    # What aio-pika's encoder (pamqp) makes of them: a small negative number would fail here.
    assert encode.field_table(dead_letter_queue_arguments(major))


def test_a_broker_of_unknown_version_is_treated_as_rabbitmq_3():
    assert dead_letter_queue_arguments(None) == QUORUM


def test_the_arguments_are_a_copy_the_caller_may_keep():
    arguments = dead_letter_queue_arguments(3)
    arguments["x-max-length"] = 1
    assert dead_letter_queue_arguments(3) == QUORUM


def test_the_policy_command_raises_the_limit_of_exactly_that_queue():
    command = delivery_limit_policy_command("userreg.events.mailer.dead", "/")
    words = shlex.split(command)
    assert words[:4] == ["rabbitmqctl", "set_policy", "-p", "/"]
    name, pattern, definition = words[4:7]
    assert name == "userreg.events.mailer.dead"
    assert re.fullmatch(pattern, "userreg.events.mailer.dead")
    assert not re.fullmatch(pattern, "userreg-events-mailer-dead")
    assert not re.search(pattern, "userreg.events.mailer.dead.more")
    assert json.loads(definition) == {"delivery-limit": 2_147_483_647}
    assert words[7:] == ["--apply-to", "quorum_queues"]


def test_the_policy_command_quotes_whatever_the_names_hold():
    queue = "odd 'name'; rm -rf ~ $(x).mailer.dead"
    words = shlex.split(delivery_limit_policy_command(queue, "team a"))
    assert words[3] == "team a"
    assert words[4] == queue
    assert re.fullmatch(words[5], queue)
