"""The inbox's web side: a page listing the messages and showing each (the HTML part only inside a
sandboxed iframe), and the JSON API tests use."""

from __future__ import annotations

from aiohttp import web
from jinja2 import DictLoader, Environment

from userreg.inbox.store import MessageStore, ReceivedMessage
from userreg.shared.runtime.access import access_log

STORE = web.AppKey("store", MessageStore)
SMTP_ADDRESS = web.AppKey("smtp_address", str)  # shown in the page's header


def web_app(store: MessageStore, smtp_address: str) -> web.Application:
    app = web.Application(middlewares=[access_log])
    app[STORE] = store
    app[SMTP_ADDRESS] = smtp_address
    app.router.add_get("/", page_index)
    app.router.add_get("/messages/{id}", page_message)
    app.router.add_get("/messages/{id}/raw", page_raw)
    app.router.add_post("/clear", page_clear)
    app.router.add_get("/health", health)
    app.router.add_get("/api/messages", api_list)
    app.router.add_get("/api/messages/{id}", api_message)
    app.router.add_delete("/api/messages", api_clear)
    return app


def _find(request: web.Request) -> ReceivedMessage:
    try:
        wanted = int(request.match_info["id"])
    except ValueError:
        raise _not_found() from None
    message = request.app[STORE].find(wanted)
    if message is None:
        raise _not_found()
    return message


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def api_list(request: web.Request) -> web.Response:
    store = request.app[STORE]
    address = request.query.get("to")
    messages = store.to(address) if address else store.messages
    return web.json_response([message.summary() for message in messages])


async def api_message(request: web.Request) -> web.Response:
    return web.json_response(_find(request).as_json())


async def api_clear(request: web.Request) -> web.Response:
    request.app[STORE].clear()
    return web.Response(status=204)


async def page_index(request: web.Request) -> web.Response:
    return _html(
        _PAGES.get_template("index").render(
            messages=list(reversed(request.app[STORE].messages)), smtp=request.app[SMTP_ADDRESS]
        )
    )


async def page_message(request: web.Request) -> web.Response:
    return _html(_PAGES.get_template("message").render(message=_find(request), smtp=request.app[SMTP_ADDRESS]))


async def page_raw(request: web.Request) -> web.Response:
    return web.Response(body=_find(request).data, content_type="text/plain", charset="utf-8")


async def page_clear(request: web.Request) -> web.Response:
    request.app[STORE].clear()
    raise web.HTTPSeeOther("/")


def _not_found() -> web.HTTPNotFound:
    return web.HTTPNotFound(text='{"error": "no such message"}', content_type="application/json")


def _html(body: str) -> web.Response:
    return web.Response(text=body, content_type="text/html", charset="utf-8")


_LAYOUT = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{% block title %}{% endblock %} · userreg inbox</title>
<style>
 body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; margin: 0;
        color: #1f2937; background: #f3f4f6; }
 header { background: #111827; color: #fff; padding: 12px 24px; display: flex;
          justify-content: space-between; align-items: center; }
 header a { color: #fff; text-decoration: none; font-weight: bold; }
 main { max-width: 1100px; margin: 24px auto; padding: 0 16px; }
 table { width: 100%; border-collapse: collapse; background: #fff; }
 th, td { text-align: left; padding: 8px 12px; border-bottom: 1px solid #e5e7eb; vertical-align: top;
          font-size: 14px; }
 th { background: #f9fafb; }
 pre { background: #fff; border: 1px solid #e5e7eb; padding: 12px; white-space: pre-wrap;
       word-break: break-word; }
 iframe { width: 100%; height: 600px; border: 1px solid #e5e7eb; background: #fff; }
 .muted { color: #6b7280; }
 button { cursor: pointer; }
</style></head>
<body><header><a href="/">userreg inbox</a><span class="muted">SMTP {{ smtp }}</span></header>
<main>{% block main %}{% endblock %}</main></body></html>"""

_INDEX = """{% extends "layout" %}{% block title %}Messages{% endblock %}{% block main %}
<form method="post" action="/clear" style="margin-bottom:12px"><button type="submit">Delete all</button>
 <span class="muted">{{ messages|length }} message(s); newest first</span></form>
<table><tr><th>#</th><th>Received</th><th>To</th><th>Subject</th></tr>
{% for m in messages %}<tr><td>{{ m.id }}</td><td>{{ m.received_at.strftime("%Y-%m-%d %H:%M:%S") }}</td>
<td>{{ m.recipients|join(", ") }}</td>
<td><a href="/messages/{{ m.id }}">{{ m.subject or "(no subject)" }}</a></td></tr>
{% else %}<tr><td colspan="4" class="muted">Nothing received yet.</td></tr>{% endfor %}
</table>{% endblock %}"""

_MESSAGE = """{% extends "layout" %}{% block title %}{{ message.subject }}{% endblock %}{% block main %}
<p><a href="/">← all messages</a> · <a href="/messages/{{ message.id }}/raw">raw source</a></p>
<table>{% for name, value in message.headers %}<tr><th>{{ name }}</th><td>{{ value }}</td></tr>{% endfor %}
<tr><th>Envelope</th><td>from {{ message.mail_from }} to {{ message.recipients|join(", ") }}</td></tr></table>
{% if message.html is not none %}<h3>HTML part</h3>
<iframe sandbox="" referrerpolicy="no-referrer" srcdoc="{{ message.html }}"></iframe>{% endif %}
{% if message.text is not none %}<h3>Text part</h3><pre>{{ message.text }}</pre>{% endif %}
{% endblock %}"""

# The inbox shows whatever it was sent: autoescaped everywhere, and the HTML part only inside a
# sandboxed iframe (no scripts, no same-origin access).
_PAGES = Environment(autoescape=True, loader=DictLoader({"layout": _LAYOUT, "index": _INDEX, "message": _MESSAGE}))
