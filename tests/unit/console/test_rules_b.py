"""The pure rules of the console's Users, Schema, Email templates and Deliveries pages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from userreg.console.rules import deliveries, schema, templates, users
from userreg.shared.db.models import ColumnType, SchemaColumn
from userreg.shared.schema_changes import ColumnRefused
from userreg.shared.templates import TemplateSource

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def column(name: str, column_type: ColumnType, *, identity: bool = False, required: bool = False) -> SchemaColumn:
    return SchemaColumn(name=name, name_key=name.lower(), type=column_type, is_identity=identity, required=required)


def test_paging_and_search():
    assert [users.page_number(raw) for raw in (None, "", "x", "0", "-3", "7", "10000000")] == [
        1,
        1,
        1,
        1,
        1,
        7,
        100_000,
    ]
    assert [users.page_count(total) for total in (0, 1, 25, 26, 51)] == [1, 1, 1, 2, 3]
    assert users.like_prefix("a_b%c\\") == "a\\_b\\%c\\\\%"
    assert users.search_text("  ann  ") == "ann" and len(users.search_text("x" * 1000)) == users.MAX_QUERY


def test_the_create_form_types_values_by_their_column():
    columns = [
        column("email", ColumnType.STRING, identity=True),
        column("age", ColumnType.INT),
        column("born", ColumnType.DATETIME),
        column("member", ColumnType.BOOLEAN),
        column("password", ColumnType.STRING),
        column("note", ColumnType.TEXT, required=True),
    ]
    assert [c.name for c in users.form_columns(columns)] == ["email", "note", "age", "born", "member"]
    properties, errors = users.typed_properties(
        {
            "p.email": "a@b.c",
            "p.age": "42",
            "p.born": "2030-01-31T12:00",
            "p.member": "true",
            "p.note": " ",
            "p.password": "ignored",
            "password": "secret",
        },
        columns,
    )
    assert properties == {"email": "a@b.c", "age": 42, "born": 1896091200000, "member": True}
    assert errors == {}
    _, errors = users.typed_properties({"p.age": "old", "p.member": "perhaps"}, columns)
    assert set(errors) == {"age", "member"} and "age must be a whole number" in errors["age"]


def test_properties_are_shown_as_text_without_the_password():
    assert users.shown_properties({"b": 1, "A": "x", "password": "p", "c": [1, "é"], "d": None}) == [
        ("A", "x"),
        ("b", "1"),
        ("c", '[1, "é"]'),
        ("d", "null"),
    ]


def test_the_schema_form():
    assert schema.parse_column_type(" text ") is ColumnType.TEXT
    with pytest.raises(ColumnRefused) as refused:
        schema.parse_column_type("LIST")
    assert refused.value.field == "type"
    assert schema.parse_max_length("") is None and schema.parse_max_length(" 40 ") == 40
    with pytest.raises(ColumnRefused, match="Max length must be a whole number"):
        schema.parse_max_length("4.5")
    assert schema.is_checked("on") and not schema.is_checked("")


def test_only_the_parts_that_differ_from_the_default_are_stored():
    default = TemplateSource(subject="Hello", text="Body\n", html="<p>x</p>")
    posted = templates.posted_source(" Hello ", "Body\r\n", "<p>y</p>\r\n", is_email=True)
    assert posted == TemplateSource(subject=" Hello ", text="Body\n", html="<p>y</p>\n")
    assert templates.changed_parts(posted, default) == TemplateSource(subject=None, text=None, html="<p>y</p>\n")
    assert templates.posted_source("s", "t", "  ", is_email=False) == TemplateSource(None, None, None)
    assert templates.filled(TemplateSource(None, "T", None), default) == TemplateSource("Hello", "T", "<p>x</p>")


def test_a_page_preview_gets_confirmation_webs_base_and_the_csp_allows_it():
    url = "https://confirm.example.com/base/path"
    assert (
        templates.page_preview("<HTML><Head lang=x><title>t</title>", url)
        == '<HTML><Head lang=x><base href="https://confirm.example.com/"><title>t</title>'
    )
    assert templates.page_preview("<p>no head</p>", url).startswith('<base href="https://confirm.example.com/">')
    csp = templates.preview_csp(url)
    assert csp["base-uri"] == "https://confirm.example.com" and "script-src" not in csp


def row(
    state: str, *, last_error: str | None = None, dead_letter_reason: str | None = "550 gone"
) -> deliveries.DeliveryRow:
    return deliveries.DeliveryRow(
        event_id="e",
        app_id="A",
        template="confirmation",
        state=state,
        attempts=1,
        last_error=last_error,
        dead_letter_reason=dead_letter_reason,
        at=NOW,
        event_type="user.registered",
        recipient="someone@example.com",
    )


def test_the_reason_shown_for_an_email():
    assert deliveries.reason_of(row("sent", last_error="421 once")) is None
    assert deliveries.reason_of(row("sending")) is None
    assert deliveries.reason_of(row("dead-lettered", last_error="421 once")) == "550 gone"
    assert deliveries.reason_of(row("retrying", last_error="421 later")) == "421 later"
    assert deliveries.reason_of(row("retrying")) == "replayed after: 550 gone"
    assert deliveries.reason_of(row("retrying", dead_letter_reason=None)) is None
    shown = deliveries.delivery_of(row("dead-lettered"))
    assert (shown.state, shown.reason, shown.recipient, shown.app_id) == (
        "dead-lettered",
        "550 gone",
        "someone@example.com",
        "A",
    )


def test_the_deliveries_query_and_its_pages():
    query = deliveries.delivery_query({"app": " APP-1 ", "state": "retrying", "page": "3"})
    assert query == deliveries.DeliveryQuery("APP-1", "retrying", 3) and query.offset == 2 * deliveries.PAGE_SIZE
    assert deliveries.delivery_query({"state": "lost", "page": "-1"}) == deliveries.DeliveryQuery(None, None, 1)
    assert deliveries.delivery_query({"page": "9" * 40}).page == 1
    assert deliveries.delivery_query({"page": "999999"}).page == deliveries.MAX_PAGE
    assert deliveries.delivery_query({"app": "x" * 100}).app_id == "x" * deliveries.MAX_APP_ID
    own = deliveries.delivery_query({"app": "OTHER", "state": "sent"}, app_id="MINE")
    assert own.app_id == "MINE"
    assert (
        deliveries.listing_url("/deliveries", query, 4, app_in_query=True)
        == "/deliveries?app=APP-1&state=retrying&page=4"
    )
    assert (
        deliveries.listing_url("/apps/MINE/deliveries", own, 1, app_in_query=False)
        == "/apps/MINE/deliveries?state=sent"
    )
    assert (
        deliveries.listing_url("/deliveries", deliveries.DeliveryQuery("a&b", None, 1), 1, app_in_query=True)
        == "/deliveries?app=a%26b"
    )
