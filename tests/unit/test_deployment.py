"""The production shape: docker-compose.yml parses, every emostream service runs a real CLI command, and the
monitoring it ships (deploy/: Prometheus, Grafana) scrapes the real ports and queries only exported metrics."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import click
import yaml
from prometheus_client.parser import text_string_to_metric_families

from emostream.cli import cli
from emostream.settings import Settings
from stream.agents import WorkerStats
from stream.metrics import WorkerCollector, exposition
from stream.trainer_metrics import TrainerCollector, TrainerStats

REPO = Path(__file__).resolve().parents[2]


def compose():
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


def cli_commands(args: list[str]) -> list[str]:
    """Resolve args against the click tree; return the command path, failing on an unknown command."""
    group: click.Command = cli
    path = []
    for arg in args:
        if not isinstance(group, click.Group) or arg.startswith("-"):
            break
        command = group.get_command(click.Context(group), arg)
        assert command is not None, f"`emostream {' '.join([*path, arg])}` is not a command"
        path.append(arg)
        group = command
    assert path, f"no emostream command in {args}"
    return path


def emostream_invocations(service: dict) -> list[list[str]]:
    entrypoint = service.get("entrypoint")
    if entrypoint is None:  # the image's ENTRYPOINT is `emostream`
        return [service["command"]]
    script = entrypoint[-1] if entrypoint[0] == "sh" else shlex.join(entrypoint)
    calls = []
    for part in script.replace("||", "&&").split("&&"):
        words = shlex.split(part)
        assert words[0] == "emostream", f"unexpected program in {script!r}"
        calls.append(words[1:])
    return calls


def test_every_service_built_from_this_project_runs_a_real_command():
    services = compose()["services"]
    ours = {name: s for name, s in services.items() if s.get("image") == "emostream:latest"}
    assert {"model-init", "worker", "worker-gpu", "trainer"} <= set(ours)
    for service in ours.values():
        for args in emostream_invocations(service):
            cli_commands(args)


def test_kafka_runs_in_kraft_mode_with_a_healthcheck():
    kafka = compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "healthcheck" in kafka


def test_gpu_worker_reserves_a_gpu_and_workers_share_the_registry():
    services = compose()["services"]
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    for name in ("worker", "worker-gpu", "model-init"):
        assert "registry:/registry" in services[name]["volumes"]
    assert services["worker"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_dockerfile_installs_the_project_and_runs_the_cli():
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["emostream"]' in dockerfile and "pip install ." in dockerfile


def dashboard() -> dict:
    return json.loads((REPO / "deploy" / "grafana" / "dashboards" / "emostream.json").read_text(encoding="utf-8"))


def dashboard_queries() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])]


def exported_sample_names() -> set[str]:
    """Every sample name the worker's and the trainer's ``/metrics`` carry once each counter has moved."""
    stats = WorkerStats(events_in=1)
    stats.dead_letters_by_reason["invalid_json"] = 1
    stats.emotions["joy"] = 1
    server = SimpleNamespace(is_loaded=True, loaded=SimpleNamespace(version="v0001"), swap_outcomes={"swapped": 1})
    worker = WorkerCollector(stats, server, lambda: {("emotion.texts", 0): 0})
    trainer_stats = TrainerStats(current_version="v0001")
    trainer_stats.count_skip("not_due")
    trainer_stats.count_cycle(promoted=True, seconds=1.0)
    text = exposition(worker) + exposition(TrainerCollector(trainer_stats))
    return {sample.name for family in text_string_to_metric_families(text.decode()) for sample in family.samples}


def test_the_dashboard_prometheus_and_grafana_run_beside_the_service_on_loopback_ports():
    services = compose()["services"]
    assert services["dashboard"]["command"] == ["dashboard"]
    assert services["dashboard"]["ports"] == [f"127.0.0.1:{Settings().dashboard_port}:{Settings().dashboard_port}"]
    for name in ("dashboard", "prometheus", "grafana"):
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"])
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            assert not source.startswith("./") or (REPO / source).exists(), f"{name} mounts missing {source}"
    assert f":{Settings().trainer_port}/health" in services["trainer"]["healthcheck"]["test"][-1]


def test_prometheus_scrapes_the_worker_and_trainer_ports_of_existing_services():
    services = compose()["services"]
    config = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    worker_sd = jobs["emostream-worker"]["dns_sd_configs"][0]
    assert set(worker_sd["names"]) <= set(services) and worker_sd["port"] == Settings().web_port
    [trainer_target] = jobs["emostream-trainer"]["static_configs"][0]["targets"]
    assert trainer_target == f"trainer:{Settings().trainer_port}"


def test_the_dashboard_queries_only_metrics_the_code_exports():
    exported = exported_sample_names()
    queried = {name for expr in dashboard_queries() for name in re.findall(r"\bemostream_[a-z0-9_]+", expr)}
    assert queried - exported == set(), "the dashboard queries metrics nobody exports"
    jobs = {job for expr in dashboard_queries() for job in re.findall(r'job="([^"]+)"', expr)}
    config = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text(encoding="utf-8"))
    assert jobs <= {job["job_name"] for job in config["scrape_configs"]}
    # What an operator must see: throughput, lag, latency, dead letters, emotion mix, model version, gate decisions.
    assert {
        "emostream_events_total",
        "emostream_consumer_lag",
        "emostream_end_to_end_seconds_bucket",
        "emostream_dead_letters_total",
        "emostream_emotions_total",
        "emostream_model_info",
        "emostream_trainer_gate_decisions_total",
    } <= queried


def test_the_dashboard_uses_the_provisioned_data_source_and_has_unique_panel_ids():
    provisioned = yaml.safe_load(
        (REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )
    [source] = provisioned["datasources"]
    panels = dashboard()["panels"]
    queried = [panel for panel in panels if panel["type"] != "row"]
    assert all(panel["datasource"]["uid"] == source["uid"] for panel in queried)
    assert all(target["datasource"]["uid"] == source["uid"] for panel in queried for target in panel["targets"])
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    folder = yaml.safe_load(
        (REPO / "deploy" / "grafana" / "provisioning" / "dashboards" / "emostream.yml").read_text(encoding="utf-8")
    )["providers"][0]["options"]["path"]
    grafana_volumes = compose()["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{folder}:ro" in grafana_volumes
