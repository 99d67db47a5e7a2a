"""The local runner behind `userreg run`: what runs (`services.SERVICES`) and how (`supervisor`)."""
