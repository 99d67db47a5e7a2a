"""The `userreg` admin command: migrate, apps, schema, templates, users, dead letters, console
operators, the audit log and the local runner (`userreg run`). Entry point: `userreg.admin.cli:main`."""
