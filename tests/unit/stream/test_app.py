"""The worker app's Faust worker: at quiet log levels, debug logging stays off (Faust's spinner would turn it on)."""

from __future__ import annotations

import asyncio
import logging

from emostream.settings import Settings
from stream.app import create_app


async def test_a_worker_at_warn_level_does_not_turn_debug_logging_on(tmp_path):
    # The hook Faust's worker calls on the root logger once logging is set up, given a logger of our own so that the
    # test leaves the process's logging as it found it.
    probe = logging.Logger("probe", logging.WARNING)
    probe.addHandler(logging.NullHandler())

    app = create_app(Settings(broker_url="kafka://127.0.0.1:9", state_dir=tmp_path))
    worker = app.Worker(loglevel="warn", loop=asyncio.get_running_loop())
    worker.on_setup_root_logger(probe, logging.WARNING)
    assert not probe.isEnabledFor(logging.DEBUG)


def test_the_web_view_binds_where_the_setting_says_and_serves_only_our_pages(tmp_path):
    app = create_app(Settings(broker_url="kafka://127.0.0.1:9", state_dir=tmp_path, web_host="127.0.0.1"))
    assert app.conf.web_bind == "127.0.0.1"
    mounted = {prefix for prefix, _ in app.web.blueprints._enabled}
    assert mounted == {""}, mounted  # Faust's `/` status page only: no /table, /router, /graph or statistics


def test_the_worker_process_does_not_import_torch():
    # The model runs in the inference processes; the worker's own process only sends texts and reads predictions.
    import subprocess
    import sys

    code = "import sys, stream.app; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
