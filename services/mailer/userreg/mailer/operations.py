"""What the mailer offers other packages (the admin command, and the console to come): the dead
letters to list and replay, and the variables its templates see (for previews and checks).
Nothing else of the mailer is imported from outside it (tests/system/test_imports.py)."""

from __future__ import annotations

from userreg.mailer.dead_letters import list_dead_letters, replay
from userreg.mailer.variables import template_context

__all__ = ["list_dead_letters", "replay", "template_context"]
