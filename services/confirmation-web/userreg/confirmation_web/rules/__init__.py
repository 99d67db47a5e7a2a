"""The decisions of confirmation-web as pure functions (no server, database or broker needed to
test them), one module per concern:

* `links` — which page a confirmation link shows, and when merely opening it confirms;
* `outcomes` — the status each page is served with, which outcomes carry the token back, and
  when an expired page offers a new link;
* `passwords` — which page a password-reset link shows, and which new passwords its form accepts;
* `origin` — which POSTs come from our own page;
* `dates` — how a page writes a date for its reader.

The language a page speaks is `userreg.shared.locales` (the one negotiation of every service), the
page names are `userreg.shared.templates.Page`.
"""
