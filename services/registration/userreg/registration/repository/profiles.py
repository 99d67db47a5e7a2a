"""Every SQL statement of a signed-in user's update (`profiles.Profiles` runs them in the transaction
`Repository.session` opens; the user's row is locked first with `Repository.lock_user_by_id`)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from userreg.registration import errors
from userreg.registration.repository import violated_constraint
from userreg.registration.repository.statements import IDENTITY_INDEX
from userreg.shared.db.models import User


async def save_profile(connection: AsyncConnection, user: User) -> None:
    """Write the user's properties, identity key and update time; 3033 when another user of the
    app has the identity (the unique index settles a race: one of two takes it)."""
    try:
        await connection.execute(
            update(User)
            .where(User.object_id == user.object_id)
            .values(properties=user.properties, identity_key=user.identity_key, updated_at=user.updated_at)
        )
    except IntegrityError as error:
        if violated_constraint(error) == IDENTITY_INDEX:
            raise errors.IdentityTaken() from None
        raise
