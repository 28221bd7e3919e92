"""A worker (``python -m emostream worker``) or a dashboard (``python -m emostream dashboard``) as a child process:
start, wait until its web server answers, query, stop.

Used by ``emostream demo``, the benchmarks and the integration tests, which all run real processes.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson


@dataclass
class WorkerProcess:
    """A running worker, its web port and its log file."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @classmethod
    def start(
        cls, env: dict[str, str], log_path: Path, *, loglevel: str = "info", timeout: float = 240
    ) -> WorkerProcess:
        """Start a worker with ``env`` (which must set ``EMOSTREAM_WEB_PORT``) and wait until it answers."""
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "emostream", "worker", "-l", loglevel],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        worker = cls(process, int(env["EMOSTREAM_WEB_PORT"]), log_path)
        worker.wait_ready(timeout)
        return worker

    def get(self, path: str) -> Any:
        """GET a web view (``/stats``, ``/aggregates``) and decode its JSON."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as response:
            return orjson.loads(response.read())

    def wait_ready(self, timeout: float = 240) -> None:
        """Wait until the web view answers; raise with the log's tail if the process dies or takes too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited with status {self.process.returncode}:\n{self.log()}")
            try:
                self.get("/stats")
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"the worker did not answer within {timeout:.0f} s:\n{self.log()}")

    def wait_assigned(self, topic: str, timeout: float = 180) -> list[str]:
        """Wait until the worker holds at least one partition of ``topic``; return those it holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = [tp for tp in self.get("/stats")["assigned"] if tp.startswith(f"{topic}:")]
            if held:
                return held
            time.sleep(0.5)
        raise RuntimeError(f"the worker got no partition of {topic} within {timeout:.0f} s:\n{self.log()}")

    def wait_model_loaded(self, timeout: float = 900) -> None:
        """Wait until the worker's ``/ready`` no longer says its model is not loaded (how long the inference processes
        take to start depends on the machine and its load, not on the worker)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited with status {self.process.returncode}:\n{self.log()}")
            try:
                problems = self.get("/ready")["problems"]
            except urllib.error.HTTPError as error:  # 503 while not ready, with the same body
                problems = orjson.loads(error.read())["problems"]
            if "model not loaded" not in problems:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the worker did not load its model within {timeout:.0f} s:\n{self.log()}")

    def log(self, chars: int = 4000) -> str:
        """The end of the worker's log."""
        return self.log_path.read_text(errors="replace")[-chars:]

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final commit (what a crash looks like)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM and wait for a clean shutdown (SIGKILL after ``timeout``)."""
        stop_process(self.process, timeout)


@dataclass
class DashboardProcess:
    """A running ``emostream dashboard``, its address and its log file."""

    process: subprocess.Popen
    url: str
    log_path: Path

    @classmethod
    def start(cls, env: dict[str, str], port: int, log_path: Path, *, timeout: float = 120) -> DashboardProcess:
        """Start a dashboard on ``127.0.0.1:port`` with ``env`` and wait until its page answers."""
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "emostream", "dashboard", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        dashboard = cls(process, f"http://127.0.0.1:{port}/", log_path)
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the dashboard exited with status {process.returncode}:\n{dashboard.log()}")
            try:
                urllib.request.urlopen(dashboard.url, timeout=5).close()
                return dashboard
            except OSError:
                if time.monotonic() > deadline:
                    dashboard.stop()
                    raise RuntimeError(
                        f"the dashboard did not answer within {timeout:.0f} s:\n{dashboard.log()}"
                    ) from None
                time.sleep(0.3)

    def log(self, chars: int = 4000) -> str:
        """The end of the dashboard's log."""
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM and wait (SIGKILL after ``timeout``)."""
        stop_process(self.process, timeout)


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM ``process`` and wait for it; SIGKILL it if it is still there after ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
