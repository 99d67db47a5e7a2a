"""Which emails an event causes (docs/api.md, Emails). No I/O."""

from __future__ import annotations

from userreg.mailer.rules.policy import PermanentFailure
from userreg.shared.events import (
    USER_CONFIRMATION_REQUESTED,
    USER_EMAIL_CHANGE_REQUESTED,
    USER_PASSWORD_CHANGED,
    USER_PASSWORD_RESET_REQUESTED,
    USER_REGISTERED,
    Event,
)
from userreg.shared.templates import Email


def emails_for(event: Event, *, welcome_email_enabled: bool) -> tuple[str, ...]:
    """The template names of the emails an event causes, in the order they are sent:

    * `user.registered` with a link → the confirmation email, and the welcome (registration) email
      when the app has it enabled (both can apply);
    * `user.confirmation_requested` → the confirmation email;
    * `user.password_reset_requested` → the password-reset email (its link);
    * `user.password_changed` → the "your password was changed" notice;
    * `user.email_change_requested` → the email-change email (its link), to the new address;
    * `user.confirmed` → none.

    A resend without a confirmation link, or a reset request without its reset link, is a
    `PermanentFailure`: sending it again would fail the same way, and an email without its link is
    of no use to anyone.

    Plain names (the enum's values): Python 3.11 formats a str enum member as "Email.CONFIRMATION",
    and the names go into Message-IDs, metric labels and SQL."""
    if event.type == USER_REGISTERED:
        names = []
        if event.confirmation is not None:
            names.append(Email.CONFIRMATION.value)
        if welcome_email_enabled:
            names.append(Email.REGISTRATION.value)
        return tuple(names)
    if event.type == USER_CONFIRMATION_REQUESTED:
        if event.confirmation is None:
            raise PermanentFailure("malformed", "user.confirmation_requested without a confirmation link")
        return (Email.CONFIRMATION.value,)
    if event.type == USER_PASSWORD_RESET_REQUESTED:
        if event.password_reset is None:
            raise PermanentFailure("malformed", "user.password_reset_requested without a passwordReset link")
        return (Email.PASSWORD_RESET.value,)
    if event.type == USER_PASSWORD_CHANGED:
        return (Email.PASSWORD_CHANGED.value,)
    if event.type == USER_EMAIL_CHANGE_REQUESTED:
        if event.confirmation is None or not event.new_email:
            raise PermanentFailure("malformed", "user.email_change_requested without its link or newEmail")
        return (Email.EMAIL_CHANGE.value,)
    return ()
