"""The Faust app factory. ``faust -A stream.app worker -l info`` and ``emostream worker`` both run ``app`` from here.

Everything comes from :class:`emostream.settings.Settings` (``EMOSTREAM_*``): broker, topics, partitions, batching,
windows, model. Creating the app connects to nothing; the worker does when it starts.
"""

from __future__ import annotations

from typing import Any, NoReturn

import faust
from faust.exceptions import ConsumerNotStarted
from mode.utils.loops import get_event_loop

from emostream.logs import configure_logging
from emostream.settings import Settings
from stream import announcements
from stream.agents import Predictor, WorkerParts, WorkerStats, register_agents
from stream.aggregation import WindowAggregator, WindowSpec
from stream.delivery import Sender
from stream.drift import DriftDetector
from stream.kafka.changelog import TableWriter
from stream.kafka.connection import KafkaConnection
from stream.kafka.producer import BatchSender, faust_producer
from stream.kafka.stall_guard import StallGuard, watch_input
from stream.kafka.worker import Worker, WorkerApp
from stream.key_states import KeyStates
from stream.metrics import WorkerCollector
from stream.review_boost import ReviewBoosts, follow_drift
from stream.serving import ModelServer
from stream.ticks import send_ticks
from stream.topics import Topics
from stream.topology import TopicSpec, ensure_topics, watch_topics
from stream.views import register_views


def create_app(settings: Settings) -> faust.App:
    """Build the worker app: topics, the aggregation state table, agents and web views."""
    configure_logging(settings.log_level, settings.log_format)
    connection = KafkaConnection.of(settings)
    app = WorkerApp(
        settings.app_id,
        fetch_max_wait=settings.fetch_wait,
        broker=settings.broker_url,
        broker_credentials=connection.faust_credentials(),
        store=settings.store,
        datadir=str(settings.state_dir / settings.app_id),
        topic_partitions=settings.partitions,
        autodiscover=False,
        # Faust binds web_bind (default 0.0.0.0, every interface); web_host is only the name it advertises.
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        # Only our views (and Faust's `/` status page): not Faust's /table pages (every key of our state), /router,
        # /graph or the sensor statistics.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(settings.session_timeout / 10, 0.5),
        # State is rebuilt from the changelog when a partition moves; no standby copies, so the web view shows only
        # the partitions this worker owns.
        table_standby_replicas=0,
        producer_acks=-1,
        # The classify path hands the producer whole partition batches (stream.kafka.producer): room for a
        # micro-batch's labelled records of one partition in one batch, well under Kafka's 1 MiB record batch limit.
        producer_max_batch_size=512 * 1024,
        Worker=Worker,
    )
    topics = Topics.declare(app, settings)
    server = ModelServer(settings)

    @app.on_before_shutdown.connect
    async def stop_inference_processes(sender: faust.App, **kwargs: Any) -> None:
        server.close()

    parts = worker_parts(app, settings, topics, server, BatchSender(faust_producer(app)))
    # Per input partition, records fetched ahead of the actors: enough for every actor's next micro-batch.
    inputs = app.take_in_batches(topics.texts, max_queued=settings.batch_max * settings.batches_in_flight)
    register_agents(app, parts, inputs)
    if settings.window_tick > 0:
        send_ticks(app, topics.aggregation_input, settings.window_tick)
    watch_input(app, parts.guard, {topics.texts.get_topic_name(), topics.aggregation_input.get_topic_name()})
    register_views(app, parts)

    needed = [
        TopicSpec(topic.get_topic_name(), settings.partitions)
        for topic in (
            topics.texts,
            topics.labelled,
            topics.aggregates,
            topics.dlq,
            topics.late,
            topics.drift,
            topics.review,
            topics.aggregation_input,
        )
    ]
    needed += [
        TopicSpec(parts.state.changelog_topic.get_topic_name(), settings.partitions, compacted=True),
        TopicSpec(settings.topic_models, 1),
    ]

    async def create_missing_topics() -> None:
        await ensure_topics(connection, needed)

    app.before_start.append(create_missing_topics)

    @app.task
    async def watch_for_lost_topics() -> None:
        await watch_topics(connection, needed)

    @app.task
    async def follow_model_announcements() -> None:
        await server.ensure_loaded()
        await announcements.follow(connection, settings.topic_models, server.on_announcement, on_ready=server.catch_up)

    if parts.boosts is not None:

        @app.task
        async def follow_drift_reports() -> None:
            await follow_drift(connection, topics.drift.get_topic_name(), parts.boosts)

    return app


def worker_parts(app: faust.App, settings: Settings, topics: Topics, server: Predictor, sender: Sender) -> WorkerParts:
    """What the agents work with: the aggregation state table and window logic, counters and the stall guard."""
    tumbling_ms, grace_ms = int(settings.tumbling_window * 1000), int(settings.window_grace * 1000)
    aggregator = WindowAggregator(
        [
            WindowSpec("tumbling", tumbling_ms, tumbling_ms),
            WindowSpec("hopping", int(settings.hopping_window * 1000), int(settings.hopping_step * 1000)),
        ],
        grace_ms=grace_ms,
        lateness_ms=int(settings.allowed_lateness * 1000),
        # Without ticks nothing would apply the idle rule: windows then close by event time only.
        idle_ms=int(settings.idle_seconds * 1000) if settings.window_tick > 0 else None,
        emit_every_ms=int(settings.window_emit_every * 1000) if settings.window_tick > 0 else 0,
    )
    drift = DriftDetector(settings.drift_baseline, settings.drift_threshold, settings.drift_min_events)
    boosts = None
    if settings.drift_review_rate > 0:
        boosts = ReviewBoosts(settings.drift_review_rate, int(settings.drift_review_windows * tumbling_ms))
    # One KeyState per aggregation key, kept as JSON (the app's default serializer).
    state = app.Table("aggregation-state", default=None, partitions=settings.partitions)
    guard = StallGuard(settings.stall_timeout)
    stats = WorkerStats()
    inputs = {topics.texts.get_topic_name(), topics.aggregation_input.get_topic_name()}
    metrics = WorkerCollector(stats, server, lambda: consumer_lag(app, inputs))
    writes = TableWriter(state)
    return WorkerParts(
        settings,
        topics,
        server,
        sender,
        state,
        writes,
        KeyStates(state, writes),
        aggregator,
        drift,
        boosts,
        metrics,
        stats,
        guard,
    )


def consumer_lag(app: faust.App, topics: set[str]) -> dict[tuple[str, int], int]:
    """Per input partition this worker holds: records after its last commit, as far as its fetches have seen (the
    partition's high watermark from fetch responses)."""
    try:
        held = [tp for tp in app.consumer.assignment() if tp.topic in topics]
    except ConsumerNotStarted:
        return {}
    committed = app.consumer.committed_offsets(held)
    lag = {}
    for tp in held:
        try:
            end = app.consumer.highwater(tp)
        except Exception:  # not fetched yet
            continue
        if end is not None:
            lag[(tp.topic, tp.partition)] = max(end - (committed.get(tp) or 0), 0)
    return lag


def run_worker(app: faust.App, loglevel: str) -> NoReturn:
    """Run ``app`` in its Faust worker until the worker is stopped (Ctrl-C, SIGTERM), as
    ``faust -A stream.app worker -l LOGLEVEL`` does, without going through Faust's command line."""
    level = {"warning": "warn", "critical": "crit"}.get(loglevel.lower(), loglevel.lower())  # Faust's names
    # Faust's own worker command leaves stdout alone (mode's default redirects it into logging).
    worker = app.Worker(loglevel=level, loop=get_event_loop(), redirect_stdouts=False)
    raise worker.execute_from_commandline()


app = create_app(Settings.from_env())
