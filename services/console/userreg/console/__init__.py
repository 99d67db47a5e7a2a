"""userreg console: the operators' web console (services/console/README.md). Server-rendered pages (aiohttp + Jinja2)
over the same operations as the `userreg` command: apps and their settings, users, schema, email
templates and pages, deliveries, the system's health and the audit log."""
