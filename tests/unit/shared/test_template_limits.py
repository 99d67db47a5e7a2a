"""Templates render under a time and an output-size budget (the README's Security section): bombs are stopped with
`TemplateLimitExceeded`, normal templates render exactly as in Jinja's sandbox, and nothing of the
time limit outlives a render."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from userreg.shared.locales import SUPPORTED_LOCALES
from userreg.shared.settings import Settings
from userreg.shared.templates import (
    DEFAULTS,
    DefaultsLoader,
    Email,
    Page,
    TemplateLimitExceeded,
    TemplateSource,
    TemplateStore,
    in_language,
)
from userreg.shared.templates.i18n import I18N_EXTENSION

OUTPUT_BYTES = 64 * 1024
SECONDS = 0.5


@pytest.fixture
def store() -> TemplateStore:
    return TemplateStore(render_seconds=SECONDS, output_bytes=OUTPUT_BYTES)


def reference_sandbox(*, autoescape: bool) -> ImmutableSandboxedEnvironment:
    """Jinja's own sandbox with the shipped files and `{% trans %}` as the store sets it up; a render
    in it gets the same context (`in_language`)."""
    environment = ImmutableSandboxedEnvironment(
        loader=DefaultsLoader(DEFAULTS), autoescape=autoescape, extensions=[I18N_EXTENSION]
    )
    environment.newstyle_gettext = True
    environment.policies["ext.i18n.trimmed"] = True
    return environment


def page(html: str) -> TemplateSource:
    return TemplateSource(subject=None, text=None, html=html)


def timed(call) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        call()
    except Exception as error:
        return time.monotonic() - started, error
    return time.monotonic() - started, None


SIZE_BOMBS = [
    "{{ 'a' * 10**10 }}",
    "{{ 'a' * 10**6 * 10**6 }}",
    "{{ [0] * 10**9 }}",
    "{{ 10 ** (10 ** 10) }}",
    "{{ 7 ** (10 ** 6) }}",
    "{{ range(100000)|join(',') }}",
    "{{ ','.join(range(20000)|map('string')) }}",
    "{{ [1, 2]|map('string')|join('-' * 100000) }}",
    "{{ (range(100000)|list) * 5 }}",
    "{% for i in range(100000) %}{{ 'xxxxxxxxxx' }}{% endfor %}",
    "{% for i in range(100000) %}<p>{{ i }}</p>{% endfor %}",
    "{{ 'a'|center(10**9) }}",
    "{{ 'a'.ljust(10**9) }}",
    "{{ 'a'.zfill(10**9) }}",
    "{{ ('a\n' * 1000)|indent(10**6) }}",
    "{{ ('a ' * 20000)|wordwrap(1, wrapstring='<br>') }}",
    "{{ '%099999999d'|format(1) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%*d' % (10**9, 1) }}",
    "{{ ('%s' * 10000) % (('x' * 10000,) * 10000) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ ('{0}' * 10000).format('x' * 10000) }}",
    "{{ ('x' * 60000).replace('', 'yy') }}",
    "{{ ('x' * 60000)|replace('x', 'yy') }}",
    "{{ ('\t' * 1000).expandtabs(10**6) }}",
    "{{ 'abc'.translate({97: 'x' * 100000}) }}",
    "{{ dict.fromkeys(range(10000), 'x' * 10000)|xmlattr }}",
    "{{ ('a ' * 1000)|urlize(target='x' * 10000) }}",
    "{{ lipsum(10**6) }}",
    "{{ [1]|batch(10**9, 0)|list }}",
    "{{ [1, 2]|slice(10**9)|list }}",
    "{{ [[[1]]]|tojson(indent=10**6) }}",
    "{{ (range(20000)|list)|pprint }}",
    # A value holding one big value many times: measured before str() would write it out.
    "{% set a = range(10000)|list %}{{ [a] * 1000 }}",
    "{% set a = range(10000)|list %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}{{ [b, b, b, b, b, b] }}",
    "{% set a = range(10000)|list %}{{ [a, a, a, a, a, a, a, a, a, a, a, a]|join }}",
    # Doubling with `~`, macros, `{% set %}` blocks and `{{ self.block() }}`.
    "{% set ns = namespace(s='a' * 10000) %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% macro m(s) %}{{ s }}{{ s }}{% endmacro %}{{ m(m(m(m(m(m(m('x' * 2000))))))) }}",
    "{% set ns = namespace(s='x' * 1000) %}{% for i in range(40) %}"
    "{% set s %}{{ ns.s }}{{ ns.s }}{% endset %}{% set ns.s = s %}{% endfor %}",
    "{% block b %}{% for i in range(3) %}{{ 'x' * 30000 }}{% endfor %}{% endblock %}{{ self.b() }}",
    # Quadratic sum of lists in C; many big values kept alive at once.
    "{{ ([[0]] * 50000)|sum(start=[]) }}",
    "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + ['x' * 60000] %}{% endfor %}",
    "{% macro f(n, s) %}{% if n %}{{ f(n - 1, s ~ 'x') }}{% endif %}{% endmacro %}{{ f(150, 'y' * 60000) }}",
    # The gettext callables format through the same guarded `%`, in any language.
    "{{ _('%(x)0999999999d', x=1) }}",
    "{{ gettext('%(x)s' * 10000, x='x' * 10000) }}",
    "{{ ngettext('%(num)s', '%(num)0999999999d', 2) }}",
    "{{ pgettext('c', '%(x).999999999f', x=1) }}",
    "{% trans x='x' * 10000 %}{{ x }}{{ x }}{{ x }}{{ x }}{{ x }}{{ x }}{{ x }}{{ x }}{% endtrans %}",
]


@pytest.mark.parametrize("html", SIZE_BOMBS)
def test_a_size_bomb_is_stopped_before_it_is_built(html):
    # Time enough for a loaded machine: it is the size that stops these, in milliseconds.
    roomy = TemplateStore(render_seconds=30, output_bytes=OUTPUT_BYTES)
    elapsed, error = timed(lambda: roomy.render_page(page(html), {}))
    assert isinstance(error, TemplateLimitExceeded), error
    reason = str(error)
    assert "TEMPLATE_OUTPUT_BYTES" in reason or "bits" in reason, reason
    assert elapsed < 5


def test_jinjas_power_is_left_associative_so_10_to_10_to_10_is_only_a_googol(store):
    assert store.render_page(page("{{ 10**10**10 }}"), {}) == str(10**100)


def test_output_is_counted_in_utf8_bytes(store):
    fits = "é" * (OUTPUT_BYTES // 2)
    assert store.render_page(page("{{ text }}"), {"text": fits}) == fits
    with pytest.raises(TemplateLimitExceeded, match="TEMPLATE_OUTPUT_BYTES"):
        store.render_page(page("{{ text }}é"), {"text": fits})


def test_an_emails_three_parts_share_one_budget(store):
    third = "x" * (OUTPUT_BYTES // 3 + 10)
    email = TemplateSource(subject="Hi", text=third, html=third)
    store.render_email(TemplateSource(subject="Hi", text=third, html="<p>short</p>"), {})
    with pytest.raises(TemplateLimitExceeded, match="its output would exceed TEMPLATE_OUTPUT_BYTES"):
        store.render_email(TemplateSource(subject=third, text=third, html=third), {})
    assert store.render_email(email, {}).text == third


TIME_BOMBS = [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% set s = 'x' * 50000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "{% set x %}{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}{% endset %}",
    "{% for i in range(100000) %}{{ range(10000)|sum }}{% endfor %}",
]


@pytest.mark.parametrize("html", TIME_BOMBS)
def test_a_time_bomb_is_stopped_after_about_the_budget(store, html):
    elapsed, error = timed(lambda: store.render_page(page(html), {}))
    assert isinstance(error, TemplateLimitExceeded), error
    assert str(error) == f"it takes longer than TEMPLATE_RENDER_SECONDS ({SECONDS:g} s)"
    assert SECONDS * 0.9 <= elapsed < SECONDS + 0.5


@pytest.mark.parametrize("html", TIME_BOMBS[:3])
def test_a_time_bomb_off_the_main_thread_is_stopped_too(store, html):
    outcome: list[tuple[float, BaseException | None]] = []
    thread = threading.Thread(target=lambda: outcome.append(timed(lambda: store.render_page(page(html), {}))))
    thread.start()
    thread.join(timeout=SECONDS + 5)
    assert not thread.is_alive()
    [(elapsed, error)] = outcome
    assert isinstance(error, TemplateLimitExceeded) and "TEMPLATE_RENDER_SECONDS" in str(error)
    assert elapsed < SECONDS + 0.5


def test_the_alarm_never_interrupts_code_that_is_not_the_templates(store):
    # Like a library's finalizer the garbage collector runs in the middle of a render: it finishes.
    finished = []

    def busy() -> str:
        until = time.monotonic() + SECONDS * 2
        while time.monotonic() < until:
            pass
        finished.append(True)
        return "done"

    elapsed, error = timed(lambda: store.render_page(page("{{ busy() }}" + TIME_BOMBS[0]), {"busy": busy}))
    assert isinstance(error, TemplateLimitExceeded) and "TEMPLATE_RENDER_SECONDS" in str(error)
    assert finished == [True]
    assert SECONDS * 2 <= elapsed < SECONDS * 2 + 0.5


def test_nothing_fires_after_a_render_returned():
    quick = TemplateStore(render_seconds=0.03, output_bytes=OUTPUT_BYTES)
    handler_before = signal.getsignal(signal.SIGALRM)
    timer_before, _ = signal.getitimer(signal.ITIMER_REAL)  # pytest-timeout's, when it runs one
    source = page("{% for i in range(20) %}{{ i }}{% endfor %}")
    started = time.monotonic()
    renders = late = 0
    while time.monotonic() - started < 1.0:  # thirty budgets' worth of renders, back to back
        try:
            assert quick.render_page(source, {}).endswith("19")
        except TemplateLimitExceeded:  # a render the machine stalled for longer than its budget
            late += 1
        renders += 1
    assert late <= renders // 20
    # One that runs out of time in between: its alarm fires, and it is the last one.
    with pytest.raises(TemplateLimitExceeded):
        quick.render_page(page(TIME_BOMBS[0]), {})
    for _ in range(200):
        quick.render_page(source, {})
    spin_until = time.monotonic() + 0.2  # ten budgets of plain Python: an alarm would interrupt it
    while time.monotonic() < spin_until:
        pass
    time.sleep(0.1)
    assert renders > 100
    assert signal.getsignal(signal.SIGALRM) is handler_before
    timer_after, _ = signal.getitimer(signal.ITIMER_REAL)
    if timer_before:
        assert 0 < timer_after <= timer_before, "someone else's timer is given back, running on"
    else:
        assert timer_after == 0


def test_a_template_that_breaks_no_limit_renders_exactly_as_in_the_sandbox(store):
    reference = reference_sandbox(autoescape=True)
    html = """{% extends "en/pages/base.html" %}
{% macro item(x) %}<li>{{ x }}{{ caller() if caller }}</li>{% endmacro %}
{% block headline %}Hello {{ user.name|title }}{% endblock %}
{% block content %}{% set greeting %}{{ app_name ~ '!' }} {{ '%s-%03d' % ('n', 7) }}{% endset %}
<ul>{% for x in items if x %}{{ item(x) }}{{ loop.index }}/{{ loop.length }}{{ ',' if not loop.last }}
{% endfor %}</ul>
{% call item('called') %}!{% endcall %}{{ greeting }} {{ '{}:{:>5}'.format('a', 'b') }}
{{ items|join(', ') }} {{ numbers|sum }} {{ numbers|tojson }} {{ {'k': [1, 2]}|pprint }} {{ 'ab'|center(6) }}
{{ 'x' * 3 }} {{ 2 ** 10 }} {{ [1] + [2] }} {{ 'a\nb'|indent(2, true) }} {{ 'one two'|wordwrap(3) }}
{% for row in numbers|batch(2, 0) %}{{ row }}{% endfor %} {{ numbers|slice(2)|list }} {{ self.headline() }}
{% filter upper %}shout{% endfilter %} {{ 'a-b'.replace('-', '+') }} {{ ', '.join(items) }}{% endblock %}"""
    context = {
        "user": {"name": "ann <lee>"},
        "app_name": "App & Co",
        "items": ["a", "", "<b>"],
        "numbers": [3, 4, 5],
        "locale": "en",
        "page": "p",
        "static_url": "/s",
        "csp_nonce": "n",
    }
    expected = reference.from_string(html).render(in_language(context))
    assert store.render_page(page(html), context) == expected


def test_the_shipped_templates_render_as_in_the_sandbox(store):
    reference_html, reference_text = reference_sandbox(autoescape=True), reference_sandbox(autoescape=False)
    shared = {
        "app_name": "App",
        "identity_name": "email",
        "identity_value": "ann@example.com",
        "confirmation_url": "http://confirm.test/x",
        "expires_at": "2030-01-01 00:00 UTC",
        "user": {"name": "Ann"},
        "page": "confirmation-pending",
        "locale": "en",
        "static_url": "/s",
        "csp_nonce": "n",
        "token": "t",
        "can_resend": True,
        "confirm_url": "/c",
        "resend_url": "/r",
    }
    for locale in SUPPORTED_LOCALES:
        context = {**shared, "locale": locale}
        for email in Email:
            source = store.default_source(email)
            rendered = store.render_email(source, context)
            assert rendered.text == reference_text.from_string(source.text).render(in_language(context))
            assert rendered.html == reference_html.from_string(source.html).render(in_language(context))
        for page in Page:
            source = store.default_source(page)
            page_context = {**context, "page": page.value}
            assert store.render_page(source, page_context) == reference_html.from_string(source.html).render(
                in_language(page_context)
            )


def test_the_limits_cost_a_shipped_page_little(store):
    source = store.default_source(Page.PENDING)
    context = {
        "page": "confirmation-pending",
        "app_name": "App",
        "locale": "en",
        "static_url": "/s",
        "csp_nonce": "n",
        "token": "t",
        "can_resend": True,
        "confirm_url": "/c",
        "resend_url": "/r",
    }
    store.render_page(source, context)
    started = time.perf_counter()
    for _ in range(200):
        store.render_page(source, context)
    assert (time.perf_counter() - started) / 200 < 0.005  # well under a millisecond on a quiet machine


def test_the_settings_carry_the_limits():
    settings = Settings(template_render_seconds=2.5, template_output_bytes=100_000)
    assert TemplateStore.from_settings(settings).limits.seconds == 2.5
    assert TemplateStore.from_settings(settings).limits.output_bytes == 100_000
    defaults = Settings()
    assert (defaults.template_render_seconds, defaults.template_output_bytes) == (1.0, 512 * 1024)


def test_compiling_counts_against_the_time_limit():
    # A source that takes Jinja far longer than 10 ms to compile; it is not kept when it runs out.
    html = "".join(f"<p>{{% if x %}}{{{{ user.name }}}} {n}{{% endif %}}</p>\n" for n in range(300))
    hurried = TemplateStore(render_seconds=0.01, output_bytes=OUTPUT_BYTES)
    for _ in range(2):
        with pytest.raises(TemplateLimitExceeded, match="TEMPLATE_RENDER_SECONDS"):
            hurried.render_page(page(html), {"x": True, "user": {"name": "Ann"}})
    assert "Ann 299" in TemplateStore(render_seconds=30, output_bytes=OUTPUT_BYTES).render_page(
        page(html), {"x": True, "user": {"name": "Ann"}}
    )
