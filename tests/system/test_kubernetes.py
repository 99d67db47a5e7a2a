"""deploy/kubernetes: the example overlay builds with kustomize (the one in kubectl), every resource
is valid for current Kubernetes versions, and the Deployments run the same commands, ports and
settings as the local runner and docker-compose (as tests/system/test_compose.py holds compose to
the runner)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.system.test_compose import COMPOSE, CONTAINERISED, DEFAULTS, SETTING_NAMES, dotenv
from userreg.admin.local.services import CONSOLE, REGISTRATION, Service

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAY = KUBERNETES / "overlays" / "example"
# The releases still supported upstream when this was written, oldest and newest.
VERSIONS = ("1.35.0", "1.37.0")
KUBECTL = Path(sys.executable).parent / "kubectl"
# The example overlay deploys the images of this version.
VERSION = (ROOT / "VERSION").read_text().strip()


@pytest.fixture(scope="module")
def resources(tmp_path_factory) -> list[dict]:
    """The example overlay as `kubectl apply -k` would send it, with its example secrets filled in."""
    copy = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    shutil.copy(copy / "overlays/example/secrets.env.example", copy / "overlays/example/secrets.env")
    built = subprocess.run(
        [str(KUBECTL), "kustomize", str(copy / "overlays/example")], capture_output=True, text=True, timeout=60
    )
    assert built.returncode == 0, built.stderr
    return [document for document in yaml.safe_load_all(built.stdout) if document]


def of_kind(resources: list[dict], kind: str) -> dict[str, dict]:
    return {resource["metadata"]["name"]: resource for resource in resources if resource["kind"] == kind}


def container(resources: list[dict], service: Service) -> dict:
    [main] = [
        entry
        for entry in of_kind(resources, "Deployment")[service.name]["spec"]["template"]["spec"]["containers"]
        if entry["name"] == service.name
    ]
    return main


@pytest.mark.parametrize("version", VERSIONS)
def test_every_resource_is_valid_kubernetes(resources, version):
    problems = []
    for resource in resources:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{resource['kind']}/{resource['metadata']['name']}: {error.message}")
    assert problems == []
    kinds = {resource["kind"] for resource in resources}
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ConfigMap",
        "Secret",
        "NetworkPolicy",
        "Ingress",
        "Namespace",
    } <= kinds
    assert all(
        resource["metadata"].get("namespace") == "userreg" for resource in resources if resource["kind"] != "Namespace"
    )


@pytest.mark.parametrize("service", CONTAINERISED, ids=lambda s: s.name)
def test_each_deployment_runs_the_runners_command_on_its_port_with_probes(resources, service):
    port = getattr(DEFAULTS, service.port_setting)
    deployment = of_kind(resources, "Deployment")[service.name]
    main = container(resources, service)
    compose = COMPOSE["services"][service.compose_service]
    assert main["command"] == compose["command"] == [service.command]
    assert main["image"].endswith(f"/{service.name}:{VERSION}")
    assert main["ports"] == [{"name": "http", "containerPort": port}]
    assert main["livenessProbe"]["httpGet"] == {"path": service.health_path, "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert set(main["resources"]["requests"]) == set(main["resources"]["limits"]) == {"cpu", "memory"}
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    # Kubernetes waits as long as compose for the service's own shutdown.
    assert f"{pod['terminationGracePeriodSeconds']}s" == compose["stop_grace_period"]
    [kube_service] = [
        entry
        for entry in of_kind(resources, "Service").values()
        if entry["spec"]["selector"] == {"app.kubernetes.io/name": service.name}
    ]
    assert kube_service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    assert kube_service["spec"].get("type", "ClusterIP") == "ClusterIP"
    [budget] = [
        entry
        for entry in of_kind(resources, "PodDisruptionBudget").values()
        if entry["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": service.name}
    ]
    assert budget


@pytest.mark.parametrize("service", CONTAINERISED, ids=lambda s: s.name)
def test_each_deployment_gets_the_settings_the_runner_gives_it(resources, service):
    [settings] = of_kind(resources, "ConfigMap").values()
    [secret] = of_kind(resources, "Secret").values()
    main = container(resources, service)
    sources = [source.get("configMapRef", source.get("secretRef"))["name"] for source in main["envFrom"]]
    assert sources == [settings["metadata"]["name"], secret["metadata"]["name"]]
    secret_names = set(dotenv(OVERLAY / "secrets.env.example"))
    given = set(settings["data"]) | secret_names | {entry["name"] for entry in main.get("env", [])}
    assert set(service.environment) <= given
    assert given <= SETTING_NAMES, "the manifests set an environment variable no setting reads"
    # The ports agree with compose's, and the values make valid settings.
    compose = COMPOSE["services"][service.compose_service]["environment"]
    assert settings["data"][service.port_setting.upper()] == compose[service.port_setting.upper()]
    # Passwords live in the Secret only.
    assert not any(re.search(r"PASSWORD|DATABASE_URL|AMQP_URL", name) for name in settings["data"])


def test_the_database_is_migrated_before_registration_serves(resources):
    pod = of_kind(resources, "Deployment")[REGISTRATION.name]["spec"]["template"]["spec"]
    [migrate] = pod["initContainers"]
    assert migrate["command"] == COMPOSE["services"]["migrate"]["command"] == ["userreg", "migrate"]
    assert migrate["image"] == container(resources, REGISTRATION)["image"]


def test_registration_scales_on_cpu_and_the_console_stays_inside(resources):
    [autoscaler] = of_kind(resources, "HorizontalPodAutoscaler").values()
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == REGISTRATION.name
    assert [metric["resource"]["name"] for metric in autoscaler["spec"]["metrics"]] == ["cpu"]
    [ingress] = of_kind(resources, "Ingress").values()
    published = {
        path["backend"]["service"]["name"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]
    }
    assert published == {"registration", "confirmation-web"}
    assert CONSOLE.name not in published


def test_network_policies_deny_by_default_and_admit_only_what_each_needs(resources):
    policies = of_kind(resources, "NetworkPolicy")
    deny = policies["userreg-default-deny"]
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert set(deny["spec"]["podSelector"]["matchExpressions"][0]["values"]) == {
        service.name for service in CONTAINERISED
    }
    assert "ingress" not in deny["spec"]

    def labels(service: Service) -> dict:
        return of_kind(resources, "Deployment")[service.name]["spec"]["template"]["metadata"]["labels"]

    def admitted_ports(service: Service) -> set[int]:
        ports = set()
        for policy in policies.values():
            selector = policy["spec"]["podSelector"]
            matches = selector.get("matchLabels", {}).items() <= labels(service).items() and all(
                labels(service).get(expression["key"]) in expression["values"]
                for expression in selector.get("matchExpressions", [])
            )
            if matches:
                for rule in policy["spec"].get("ingress", []):
                    if "from" not in rule:  # from anywhere
                        ports |= {port["port"] for port in rule["ports"]}
        return ports

    published = {"registration": {DEFAULTS.registration_port}, "confirmation-web": {DEFAULTS.confirmation_port}}
    for service in CONTAINERISED:
        assert admitted_ports(service) == published.get(service.name, set()), service.name
