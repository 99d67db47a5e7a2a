"""How often a message was handed out before, as each RabbitMQ version says it: 3.x and 4.0–4.2 count
every unsettled hand-out in x-delivery-count; 4.3 and later count only failed ones there and all of
them in x-acquired-count."""

from __future__ import annotations

import aio_pika
import pytest

from userreg.mailer import envelope


def _message(**headers: object) -> aio_pika.Message:
    return aio_pika.Message(b"{}", headers=headers)


@pytest.mark.parametrize(
    ("headers", "count"),
    [
        ({}, 0),  # a first delivery: RabbitMQ 4 sets no header at all
        ({"x-delivery-count": 3}, 3),  # RabbitMQ 3, 4.0–4.2
        ({"x-acquired-count": 4, "x-delivery-count": 1}, 4),  # 4.3: three of the returns were no failures
        ({"x-acquired-count": 2}, 2),  # 4.3: no failed delivery yet
        ({"x-delivery-count": "many"}, 0),
        ({"x-delivery-count": -5}, 0),
    ],
)
def test_redeliveries_count_every_unsettled_hand_out(headers, count):
    assert envelope.redeliveries(_message(**headers)) == count
