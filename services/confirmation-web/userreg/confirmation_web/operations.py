"""What confirmation-web offers other packages (the admin command, and the console to come): the
contexts its pages are rendered with, as sample data for checks and previews. Nothing else of the
service is imported from outside it (tests/system/test_imports.py)."""

from __future__ import annotations

from userreg.confirmation_web.samples import sample_contexts

__all__ = ["sample_contexts"]
