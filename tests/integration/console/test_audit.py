"""The audit log page: newest first, filtered by app, a page at a time, values escaped."""

from __future__ import annotations

import re
import uuid

from userreg.console.rules.audit_view import PAGE_SIZE
from userreg.shared import audit


def actions_shown(text: str) -> list[str]:
    return re.findall(r"<td><code>([a-z.-]+)</code></td>", text)


async def test_entries_are_shown_newest_first_and_filtered_by_app(client, make_app, sessions, operator):
    first, second = await make_app(f"First {uuid.uuid4().hex[:6]}"), await make_app(f"Second {uuid.uuid4().hex[:6]}")
    async with sessions() as session, session.begin():
        audit.record(session, "cli:ops@host", "app.set", first.app_id, setting="dynamicSchema", old=True, new=False)
        audit.record(session, audit.operator_actor(operator.email), "app.rotate-keys", second.app_id)
        audit.record(session, "cli:ops@host", "template.set", first.app_id, template="confirmation")

    page = await client.get(f"/audit?app={first.app_id}")
    assert page.status == 200 and 'data-page="audit"' in page.text
    assert actions_shown(page.text) == ["template.set", "app.set"]
    assert "setting: dynamicSchema" in page.text and "old: true" in page.text and "new: false" in page.text
    assert f'<option value="{first.app_id}" selected>' in page.text

    everything = await client.get("/audit")
    shown = actions_shown(everything.text)
    assert shown.index("template.set") < shown.index("app.rotate-keys") < shown.index("app.set")
    assert f"operator:{operator.email}" in everything.text


async def test_the_log_pages_on_to_older_entries(client, make_app, sessions):
    app = await make_app("Busy")
    async with sessions() as session, session.begin():
        for number in range(PAGE_SIZE + 5):
            audit.record(session, "cli:ops@host", "app.set", app.app_id, setting="guestTtl", new=number)
    page = await client.get(f"/audit?app={app.app_id}")
    assert len(actions_shown(page.text)) == PAGE_SIZE
    assert f"new: {PAGE_SIZE + 4}" in page.text and "new: 4<" not in page.text
    older = re.search(r'<a href="(/audit\?app=[^"]+before=\d+)">Older entries</a>', page.text)
    assert older is not None
    rest = await client.get(older[1].replace("&amp;", "&"))
    assert len(actions_shown(rest.text)) == 5 and "new: 0" in rest.text
    assert "Older entries" not in rest.text and "Newest entries" in rest.text


async def test_values_in_entries_are_shown_escaped(client, make_app, sessions):
    app = await make_app("Escaping")
    async with sessions() as session, session.begin():
        audit.record(
            session, "cli:<b>ops</b>@host", "app.set", app.app_id, setting="name", new="<script>alert(1)</script>"
        )
    page = await client.get(f"/audit?app={app.app_id}")
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<b>ops</b>" not in page.text


async def test_entries_of_a_deleted_app_stay(client, make_app):
    app = await make_app(f"Short-lived {uuid.uuid4().hex[:6]}")
    await client.post(f"/apps/{app.app_id}/delete", {"confirm_name": app.name})
    page = await client.get(f"/audit?app={app.app_id}")
    assert actions_shown(page.text) == ["app.delete"]
    assert f"{app.app_id} (deleted)" in page.text
