"""What the mailer offers other packages (the admin command and the console): the dead letters to
list and replay, the variables its templates see (for previews and checks), and a test email of a
template sent the way the mailer sends every email (`DeliveryFailure` says why one was not).
Nothing else of the mailer is imported from outside it (tests/system/test_imports.py)."""

from __future__ import annotations

from userreg.mailer.dead_letters import list_dead_letters, replay
from userreg.mailer.rules.policy import DeliveryFailure
from userreg.mailer.trial_email import send_test_email
from userreg.mailer.variables import template_context

__all__ = ["DeliveryFailure", "list_dead_letters", "replay", "send_test_email", "template_context"]
