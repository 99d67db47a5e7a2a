"""notify when an app or its Users schema changes, so services can cache them safely

Every insert, update or delete of an `apps` or `schema_columns` row sends the app's id on the
`userreg_apps` channel when it commits (the registration service drops its cached copy).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 20:45:00.000000
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("apps", "schema_columns")


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION userreg_app_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                PERFORM pg_notify('userreg_apps', OLD.app_id);
            ELSE
                PERFORM pg_notify('userreg_apps', NEW.app_id);
            END IF;
            RETURN NULL;
        END $$
    """)
    for table in TABLES:
        op.execute(f"""
            CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION userreg_app_changed()
        """)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_changed ON {table}")
    op.execute("DROP FUNCTION userreg_app_changed()")
