"""The Users schema in the console (services/console/README.md): the columns of an app, a new column, a column's
"required" and max length, the identity column. Every change goes through `shared.schema_changes`
(as `userreg schema` does, with the registration's `PROPERTY_RULES`) with the app's row locked, and
records its audit entry in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from userreg.console.repository.apps import app_for_update
from userreg.console.rules.schema import MAX_LENGTH_LABEL
from userreg.shared import audit, schema_changes
from userreg.shared.apps import AppNotFound, get_app, schema_of
from userreg.shared.db.models import App, ColumnType, SchemaColumn
from userreg.shared.schema_changes import PropertyRules


@dataclass(frozen=True)
class SchemaPage:
    app: App
    columns: list[SchemaColumn]


def column_details(column: SchemaColumn) -> dict[str, object]:
    """A column as the audit log records it."""
    return {
        "name": column.name,
        "type": column.type.value,
        "required": column.required,
        "maxLength": column.max_length,
        "identity": column.is_identity,
    }


class Schema:
    def __init__(self, sessions: async_sessionmaker, rules: PropertyRules) -> None:
        self._sessions = sessions
        self._rules = rules

    async def page(self, app_id: str) -> SchemaPage:
        """The app and its columns, built-in ones first (`AppNotFound`)."""
        async with self._sessions() as session:
            app = await get_app(session, app_id)
            columns = schema_changes.ordered((await schema_of(session, app.app_id)).values())
        return SchemaPage(app, columns)

    async def column(self, app_id: str, name: str) -> tuple[App, SchemaColumn]:
        """The app and its column of this name (`AppNotFound`, `SchemaConflict`)."""
        async with self._sessions() as session:
            app = await get_app(session, app_id)
            return app, await schema_changes.column_of(session, app, name)

    async def add(
        self, actor: str, app_id: str, name: str, column_type: ColumnType, *, required: bool, max_length: int | None
    ) -> SchemaColumn:
        """A new column (`ColumnRefused`, `SchemaConflict`)."""
        max_length = schema_changes.check_new_column(
            name, column_type, max_length, self._rules, max_length_label=MAX_LENGTH_LABEL
        )
        async with self._sessions.begin() as session:
            app = await self._locked(session, app_id)
            column = await schema_changes.add_column(
                session, app, name, column_type, required=required, max_length=max_length
            )
            audit.record(session, actor, "schema.add", app.app_id, column=column_details(column))
        return column

    async def change(
        self, actor: str, app_id: str, name: str, *, required: bool, max_length: int | None
    ) -> SchemaColumn:
        """Whether the column is required and its max length (`ColumnRefused`, `SchemaConflict`)."""
        async with self._sessions.begin() as session:
            app = await self._locked(session, app_id)
            before = column_details(await schema_changes.column_of(session, app, name))
            column = await schema_changes.change_column(
                session, app, name, required=required, max_length=max_length, max_length_label=MAX_LENGTH_LABEL
            )
            audit.record(
                session,
                actor,
                "schema.change",
                app.app_id,
                column=column.name,
                before=before,
                after=column_details(column),
            )
        return column

    async def make_identity(self, actor: str, app_id: str, name: str) -> SchemaColumn:
        """Make the column the identity, re-keying the users (`SchemaConflict`)."""
        async with self._sessions.begin() as session:
            app = await self._locked(session, app_id)
            column = await schema_changes.make_identity(session, app, name, self._rules)
            audit.record(session, actor, "schema.set-identity", app.app_id, column=column.name)
        return column

    @staticmethod
    async def _locked(session: AsyncSession, app_id: str) -> App:
        app = await app_for_update(session, app_id)
        if app is None:
            raise AppNotFound(app_id)
        return app
