"""confirmation-web: the pages a confirmation link opens (docs/api.md, Confirmation pages), and those of a
password-reset link (docs/api.md, Sessions and password recovery).

* `__main__` — the process: settings, logging, `web.run_app(create_app(settings))`;
* `app` — the composition root: `create_app(settings, …)` builds engine, read pool, repository,
  password-hashing workers, services, page renderer and outbox relay in `cleanup_ctx`, and adds
  the routes;
* `keys` — the typed `AppKey`s the application holds;
* `middleware` — error pages (never a traceback) and the headers every response carries;
* `views` — the HTTP edge: decode the request, call one service action, render its outcome;
* `service` — the actions on a confirmation link (open, confirm, resend), each returning an `Outcome`;
* `password_resets` — the actions on a reset link (open, set the password, resend), the same way;
* `repository` — all the SQL: the link lookups on the read pool, the writes in one transaction;
* `model` — the values: `Link`, `Outcome`, `Failure`, `Resend`, `PasswordProblem`;
* `rules/` — the decisions as pure functions (`links`, `outcomes`, `passwords`, `origin`, `dates`);
* `pages` — the renderer: an `Outcome` into an HTML response (override or shipped template);
* `page_context` — what a page template may use; `samples` — sample contexts for previews;
* `operations` — what the admin command may use (`sample_contexts`).

Its access log is every service's (`userreg.shared.runtime.access`): a link's token is never written.
"""
