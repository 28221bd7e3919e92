"""The production shape: docker-compose.yml parses, and every emostream service runs a real CLI command."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import yaml

from emostream.cli import cli

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
