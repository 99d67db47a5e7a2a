"""The `userreg` admin command: migrate, apps, schema, templates, users, dead letters and the local
runner (`userreg run`). Entry point: `userreg.admin.cli:main`."""
