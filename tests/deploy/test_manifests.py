"""deploy/kubernetes: valid against the Kubernetes schemas, and consistent with itself
and with the library (probe paths, env names, the config file it reads)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate.utils import resources_from_file

import cbcontrol
from cbcontrol.config import BUILTIN_PRESETS
from cbcontrol.integrations.asgi import ProbesMiddleware

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").rglob("*.yaml"))
KUBERNETES_VERSION = "1.30.0"  # the oldest minor release still supported upstream

Resource = dict[str, Any]


def resources() -> dict[tuple[str, str], Resource]:
    """Every resource of deploy/kubernetes, by (kind, name)."""
    found: dict[tuple[str, str], Resource] = {}
    for path in MANIFESTS:
        for resource in resources_from_file(str(path)):
            key = (resource["kind"], resource["metadata"]["name"])
            assert key not in found, f"{key} is defined twice"
            found[key] = resource
    return found


def container(workload: Resource) -> Resource:
    """The one container of a workload's pods."""
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def container_port(workload: Resource, port: str | int) -> int:
    """The number of a container port given by name or number; fails if absent."""
    ports = {p["name"]: p["containerPort"] for p in container(workload)["ports"]}
    number = ports.get(port, port) if isinstance(port, str) else port
    assert number in ports.values(), f"{port!r} is not a port of {ports}"
    return int(number)


def library_defaults() -> dict[str, Any]:
    """The probe middleware's default paths: what the library serves."""
    parameters = inspect.signature(ProbesMiddleware).parameters
    return {name: p.default for name, p in parameters.items() if name.endswith("_path")}


def env_names_read_by_the_library() -> set[str]:
    """Every ``CBCONTROL_*`` variable name spelled in the library's source."""
    package = Path(cbcontrol.__file__).parent
    return {
        name
        for path in package.rglob("*.py")
        for name in re.findall(r"\b(CBCONTROL_[A-Z0-9_]+)\b", path.read_text())
    }


def env_of(workload: Resource) -> dict[str, str]:
    """The literal env of a workload's container."""
    return {e["name"]: e["value"] for e in container(workload)["env"] if "value" in e}


@pytest.mark.parametrize(
    "path", MANIFESTS, ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_manifest_is_valid(path: Path) -> None:
    """Each resource validates against the strict schemas of Kubernetes, offline."""
    found = resources_from_file(str(path))

    for resource in found:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    assert found


def test_the_deployment_and_etcd_are_all_there() -> None:
    """The app (ConfigMap, Deployment, Service) and etcd (3 resources + PDB)."""
    assert {
        ("ConfigMap", "checkout-cbcontrol"),
        ("Deployment", "checkout"),
        ("Service", "checkout"),
        ("StatefulSet", "etcd"),
        ("Service", "etcd"),
        ("Service", "etcd-client"),
        ("PodDisruptionBudget", "etcd"),
    } == set(resources())


def test_services_and_budgets_select_pods_and_ports() -> None:
    """Every Service selects some workload's pods and targets ports they have."""
    found = resources()
    workloads = [
        r for r in found.values() if r["kind"] in ("Deployment", "StatefulSet")
    ]
    selectors = [
        (r, r["spec"]["selector"]) for r in found.values() if r["kind"] == "Service"
    ] + [
        (r, r["spec"]["selector"]["matchLabels"])
        for r in found.values()
        if r["kind"] == "PodDisruptionBudget"
    ]

    for resource, selector in selectors:
        selected = [
            w
            for w in workloads
            if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, resource["metadata"]["name"]
        for port in resource["spec"].get("ports", []):
            container_port(selected[0], port["targetPort"])
    for workload in workloads:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_probes_and_scrape_use_the_librarys_paths() -> None:
    """Liveness, readiness and the scrape annotations use the paths cbcontrol serves."""
    deployment = resources()["Deployment", "checkout"]
    app = container(deployment)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    defaults = library_defaults()

    assert defaults["health_path"] == app["livenessProbe"]["httpGet"]["path"]
    assert defaults["ready_path"] == app["readinessProbe"]["httpGet"]["path"]
    assert defaults["metrics_path"] == annotations["prometheus.io/path"]
    assert "true" == annotations["prometheus.io/scrape"]
    probe_ports = {
        container_port(deployment, app[probe]["httpGet"]["port"])
        for probe in ("livenessProbe", "readinessProbe")
    }
    assert {int(annotations["prometheus.io/port"])} == probe_ports


def test_env_names_are_ones_the_library_reads() -> None:
    """CBCONTROL_* names are the library's, and each *_CB_* one sets a field."""
    deployment = resources()["Deployment", "checkout"]
    configmap = resources()["ConfigMap", "checkout-cbcontrol"]
    env = env_of(deployment)
    breaker_env = {k: v for k, v in env.items() if not k.startswith("CBCONTROL_")}
    document = yaml_load(configmap["data"]["cbcontrol.yaml"])
    names = {*document["breakers"], *BUILTIN_PRESETS}

    with cbcontrol.connect("memory://", app="checkout", environ=breaker_env) as plane:
        sources = {
            source
            for name in sorted(names)
            for _, source in plane.breaker(name).explain().values()
        }
        errors = plane.errors()

    assert {} == errors
    assert {k for k in env if k.startswith("CBCONTROL_")} <= (
        env_names_read_by_the_library()
    )
    assert {f"env:{name}" for name in breaker_env} <= sources


def yaml_load(text: str) -> Any:
    """Parse YAML (the library's own YAML extra)."""
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(text)


def test_the_store_is_the_mounted_configmap(tmp_path: Path) -> None:
    """CBCONTROL_STORE names a file of the ConfigMap, mounted whole, and it is valid."""
    deployment = resources()["Deployment", "checkout"]
    configmap = resources()["ConfigMap", "checkout-cbcontrol"]
    store = Path(env_of(deployment)["CBCONTROL_STORE"].removeprefix("file://"))
    (mount,) = (
        m
        for m in container(deployment)["volumeMounts"]
        if Path(m["mountPath"]) == store.parent
    )
    (volume,) = (
        v
        for v in deployment["spec"]["template"]["spec"]["volumes"]
        if v["name"] == mount["name"]
    )
    copy = tmp_path / store.name
    copy.write_text(configmap["data"][store.name])

    env = _expanded_env(deployment, _downward(deployment))
    del env["CBCONTROL_STORE"]
    with cbcontrol.connect(f"file://{copy}", app="checkout", environ=env) as plane:
        payment = plane.breaker("payment")
        profile = plane.breaker("user-profile")
        errors = plane.errors()

    assert "subPath" not in mount  # a subPath mount never sees ConfigMap updates
    assert configmap["metadata"]["name"] == volume["configMap"]["name"]
    assert {} == errors
    assert (5.0, f"file:{copy}#breakers.payment.request_timeout") == (
        payment.explain()["request_timeout"]
    )
    assert 2 == profile.config.max_failures  # the file's own preset


@pytest.mark.parametrize("variable", ["CBCONTROL_CACHE_DIR", "CBCONTROL_STATUS_DIR"])
def test_the_library_writes_to_a_writable_volume(variable: str) -> None:
    """The fail-static cache and the status go to a mounted emptyDir: the root
    filesystem and the ConfigMap are read-only."""
    deployment = resources()["Deployment", "checkout"]
    where = Path(env_of(deployment)[variable])
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}

    mounts = [
        m
        for m in container(deployment)["volumeMounts"]
        if where.is_relative_to(m["mountPath"])
    ]

    assert container(deployment)["securityContext"]["readOnlyRootFilesystem"]
    assert 1 == len(mounts), mounts
    assert not mounts[0].get("readOnly", False)
    assert "emptyDir" in volumes[mounts[0]["name"]]


def test_the_etcd_cluster_agrees_with_its_services() -> None:
    """Members, peer URLs, ports, compaction and the disruption budget fit together."""
    found = resources()
    etcd = found["StatefulSet", "etcd"]
    headless = found["Service", etcd["spec"]["serviceName"]]
    budget = found["PodDisruptionBudget", "etcd"]
    flags = dict(
        arg.removeprefix("--").split("=", 1) for arg in container(etcd)["command"][1:]
    )
    replicas = etcd["spec"]["replicas"]
    name, service = etcd["metadata"]["name"], headless["metadata"]["name"]
    peer = container_port(etcd, "peer")
    client = container_port(etcd, "client")

    assert "None" == headless["spec"]["clusterIP"]
    assert headless["spec"]["publishNotReadyAddresses"]
    assert (
        ",".join(
            f"{name}-{i}=http://{name}-{i}.{service}.$(POD_NAMESPACE).svc:{peer}"
            for i in range(replicas)
        )
        == flags["initial-cluster"]
    )
    assert flags["initial-advertise-peer-urls"].endswith(f".svc:{peer}")
    assert flags["advertise-client-urls"].endswith(f".svc:{client}")
    assert flags["listen-client-urls"].endswith(f":{client}")
    assert {"periodic", "revision"} >= {flags["auto-compaction-mode"]}
    assert flags["auto-compaction-retention"]
    assert 3 == replicas
    assert replicas // 2 + 1 == budget["spec"]["minAvailable"]


def _downward(workload: Resource) -> dict[str, str]:
    """What the downward API gives a pod of ``workload``, on a typical node."""
    labels = workload["spec"]["template"]["metadata"]["labels"]
    found = {f"metadata.labels['{k}']": v for k, v in labels.items()}
    return {**found, "spec.nodeName": "ip-10-0-3-17.eu-west-1.compute.internal"}


def _expanded_env(workload: Resource, downward: dict[str, str]) -> dict[str, str]:
    """The container's env as the kubelet makes it: downward API, then ``$(VAR)``."""
    env: dict[str, str] = {}
    for entry in container(workload)["env"]:
        if "value" not in entry:
            env[entry["name"]] = downward[entry["valueFrom"]["fieldRef"]["fieldPath"]]
            continue
        # Kubernetes expands $(NAME) only for names defined earlier in the list.
        used = re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", entry["value"])
        assert set(used) <= set(env), f"{entry['name']} uses a later variable"
        value = entry["value"]
        for name in used:
            value = value.replace(f"$({name})", env[name])
        env[entry["name"]] = value
    return env


def test_pod_labels_reach_the_instance_for_selectors() -> None:
    """CBCONTROL_LABELS, built from the pod's labels, gives the instance its labels."""
    deployment = resources()["Deployment", "checkout"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    downward = _downward(deployment)
    env = _expanded_env(deployment, downward)

    with cbcontrol.connect("memory://", app="checkout", environ=env) as plane:
        labels = plane.labels
        errors = plane.errors()

    assert {} == errors
    assert labels["track"] == pod_labels["track"] == "stable"
    assert labels["node"] == downward["spec.nodeName"]
