"""outbox: the NOTIFY after an insert names the inserting session's application_name, so that each
service's outbox relay wakes for the events its own service wrote (and registration's for the rest)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 20:45:00.000000
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE OR REPLACE FUNCTION userreg_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('userreg_outbox', coalesce(current_setting('application_name', true), ''));
            RETURN NULL;
        END $$
    """)


def downgrade() -> None:
    op.execute("""
        CREATE OR REPLACE FUNCTION userreg_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('userreg_outbox', ''); RETURN NULL; END $$
    """)
