"""Which relay an outbox insert wakes: the notification carries the inserting session's
application_name."""

from userreg.shared.outbox import CONFIRMATION_WEB_PRODUCER, REGISTRATION_PRODUCER, wakes_for


def test_each_relaying_service_wakes_for_its_own_inserts():
    assert wakes_for(REGISTRATION_PRODUCER, REGISTRATION_PRODUCER, unowned_too=True)
    assert wakes_for(CONFIRMATION_WEB_PRODUCER, CONFIRMATION_WEB_PRODUCER, unowned_too=False)


def test_confirmation_web_sleeps_through_signups_and_registration_through_confirmations():
    assert not wakes_for(REGISTRATION_PRODUCER, CONFIRMATION_WEB_PRODUCER, unowned_too=False)
    assert not wakes_for(CONFIRMATION_WEB_PRODUCER, REGISTRATION_PRODUCER, unowned_too=True)


def test_what_no_relaying_service_wrote_wakes_the_relay_that_takes_the_unowned():
    for payload in ("userreg-console", "userreg-admin", "userreg", "", "psql"):
        assert wakes_for(payload, REGISTRATION_PRODUCER, unowned_too=True)
        assert not wakes_for(payload, CONFIRMATION_WEB_PRODUCER, unowned_too=False)


def test_a_relay_of_no_producer_wakes_for_everything():
    for payload in (REGISTRATION_PRODUCER, CONFIRMATION_WEB_PRODUCER, "", "userreg-console"):
        assert wakes_for(payload, None, unowned_too=False)
