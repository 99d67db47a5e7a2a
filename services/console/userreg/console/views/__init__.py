"""The console's HTTP edges, one module per page area. Each area module has `add_routes(router)`
and may have `build(app)`, which makes its services from what the app holds (called once at
start-up, after the engine, hashing, registrar and template store exist). `app.create_app` adds
the routes of every module listed in `AREAS`."""

from userreg.console.views import (
    apps,
    audit,
    deliveries,
    ops,
    schema,
    sign_in,
    system,
    templates,
    user_registration,
    users,
)

AREAS = (
    ops,
    sign_in,
    apps,
    user_registration,
    system,
    audit,
    users,
    schema,
    templates,
    deliveries,
)
