"""The official Backendless JavaScript SDK (npm `backendless` 8.0.0, tests/sdk/) in Node, unmodified,
against the running system: `Backendless.serverURL` = the registration service, `initApp(appId,
restApiKey)`, then every Users call a client app makes (tests/sdk/user_flow.js, run by node_flow.js)."""

from __future__ import annotations

import pytest

from tests.e2e.sdk import (
    APP_INFO_COMPLAINT,
    check_app_info,
    check_flow_emails,
    differences,
    expected_outcomes,
    prepare_user_flow,
    run_in_node,
)

pytestmark = pytest.mark.xdist_group("e2e")


async def test_the_node_sdk_loads_the_app_info_at_init_without_complaint(system, api, make_app, age_links):
    flow = await prepare_user_flow(system, api, make_app, age_links, "Node Info")

    run = await run_in_node(flow.input(system.registration_url))

    check_app_info(run.results, flow.open)
    assert APP_INFO_COMPLAINT not in run.stderr, run.stderr


async def test_the_node_sdk_registers_logs_in_and_out_restores_and_resends_with_backendless_codes(
    system, api, make_app, age_links
):
    """The client calls with the REST key, then a server's own calls with the server key (status
    changes, a confirmation link returned instead of emailed)."""
    flow = await prepare_user_flow(system, api, make_app, age_links, "Node")

    run = await run_in_node(flow.input(system.registration_url, with_server_key=True))

    wrong = differences(run.results, expected_outcomes(flow.addresses, with_server_key=True))
    assert not wrong, "\n".join(wrong)
    await check_flow_emails(system, flow)
