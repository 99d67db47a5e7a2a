"""The local runner behind `userreg run`: what runs (`services.SERVICES`), with which settings
(`environment`), how (`supervisor`), the console's first operator (`first_operator`) and what it
prints (`banner`)."""
