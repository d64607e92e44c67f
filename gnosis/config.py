"""Configuration: one TOML file plus ``GNOSIS_*`` environment variables.

Precedence, lowest first: the defaults below (also shipped, commented, as
``gnosis/config/defaults.toml``), the TOML file named by ``--config`` or
``GNOSIS_CONFIG``, an optional separate features file (``features_config_path``), then
environment variables named ``GNOSIS_<SECTION>__<KEY>`` (e.g.
``GNOSIS_KAFKA__BOOTSTRAP_SERVERS``). The README's configuration table lists every key.

Every value is checked when the configuration is read, against the type its field is
annotated with: a setting that is a choice is a ``Literal`` of the allowed values, and a
duration is a :data:`Duration` (``0``, or a whole number with ``s``, ``m``, ``h`` or
``d``). A bad value raises :class:`ConfigError` in one line naming where it was set,
the setting, the value and what is allowed; sections built in code are checked too.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, NewType, Self, get_args, get_origin, get_type_hints

log = logging.getLogger(__name__)

Duration = NewType("Duration", str)
"""A span of time written ``0`` or ``<whole number><s|m|h|d>``, e.g. ``30s``, ``5m``, ``1d``."""

_DURATION_RE = re.compile(r"^([0-9]{1,9})(s|m|h|d)$")
_UNIT_NS = {"s": 10**9, "m": 60 * 10**9, "h": 3_600 * 10**9, "d": 86_400 * 10**9}


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names file and key."""


def duration_ns(text: str) -> int:
    """Nanoseconds in a :data:`Duration` such as ``0``, ``30s``, ``5m`` or ``1h``.

    Raises ``ValueError`` for anything else.
    """
    text = text.strip()
    if text == "0":
        return 0
    m = _DURATION_RE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration like 0, 30s, 5m, 1h or 1d")
    return int(m.group(1)) * _UNIT_NS[m.group(2)]


class _Section:
    """Base of the configuration sections: checks choices and durations on construction."""

    _name = ""

    def __post_init__(self) -> None:
        for key, kind in _field_types(type(self)).items():
            problem = _problem(getattr(self, key), kind)
            if problem:
                raise ConfigError(f"{self._name}.{key} = {getattr(self, key)!r}: {problem}")


@dataclass(frozen=True)
class FeatureConfig(_Section):
    """Windows and thresholds of the technical features (all counted in bars)."""

    _name = "features"

    window: int = 512
    """Rolling window for Hurst, Hawkes and volatility clustering."""
    vsa_window: int = 20
    """Rolling window for the mean volume and spread that VSA compares a bar against."""
    hurst_stride: int = 8
    """Recompute the Hurst exponent every this many bars (held in between; each ticker on
    bars of its own, so that tickers closing together do not all recompute on the same
    bar)."""
    hawkes_window: int = 2048
    """Bars of volume events the Hawkes branching ratio is estimated from (at least
    ``window``; all bars so far until that many are seen): its error is about 0.1 at
    2048 bars and 0.1 events per bar."""
    hawkes_stride: int = 64
    """Re-estimate the Hawkes branching ratio every this many bars (held in between; each
    ticker on bars of its own, as for hurst_stride)."""
    event_threshold: float = 1.5
    """A bar is a Hawkes 'event' when its volume exceeds this multiple of the mean volume."""
    vol_short: int = 16
    """Short realised-volatility window for volatility clustering."""
    vol_long: int = 128
    """Long realised-volatility window for volatility clustering and realised volatility."""
    trend_lookback: int = 20
    """Bars over which the trend (a log return) is measured."""


@dataclass(frozen=True)
class RuleConfig(_Section):
    """Thresholds of the signal rules (see ``gnosis.models.rules``)."""

    _name = "rules"
    sentiment_window: Duration = Duration("1h")
    """As-of sentiment window (a duration: 0, 30s, 5m, 1h, 1d): news stamped in
    (t - window, t] counts for the bar at t."""
    positive_sentiment: float = 0.1
    """Sentiment mean at or above which sentiment is positive."""
    negative_sentiment: float = -0.1
    """Sentiment mean at or below which sentiment is negative."""
    trending_hurst: float = 0.55
    """Hurst exponent at or above which the series is trending."""
    mean_reverting_hurst: float = 0.45
    """Hurst exponent at or below which the series is mean reverting."""
    hurst_significance: float = 2.0
    """k: trending / mean reverting also need H to differ from 0.5 by more than k of its
    standard errors (about 0.03 at window 512; k = 2 leaves about 5 % of a random walk's
    bars in a regime); 0 switches the test off."""
    low_clustering: float = 1.0
    """Volatility-clustering ratio at or below which volatility is calm."""
    high_clustering: float = 1.25
    """Volatility-clustering ratio at or above which volatility is clustering."""
    no_supply_vsa: float = 0.3
    """VSA score at or above which the tape shows no supply."""
    contrarian_sentiment: float = 0.3
    """|sentiment mean| needed, against the price trend, for a contrarian market."""
    high_risk_hawkes: float = 0.7
    """Hawkes branching ratio (an estimate of the true ratio, error about 0.08) at or above
    which risk is HIGH; risk can be LOW only below half of it."""
    min_confidence: float = 0.0
    """BUY/SELL below this confidence are downgraded to HOLD."""
    target_volatility: float = 0.002
    """Per-bar volatility a full position is sized to."""
    max_position_size: float = 0.25
    """Cap on the suggested position size, as a fraction of capital."""


@dataclass(frozen=True)
class SentimentConfig(_Section):
    """Headline scoring: an ONNX model when ``model_dir`` is set, else the lexicon."""

    _name = "sentiment"

    model_dir: str = ""
    """Directory written by ``gnosis model export`` (manifest.json, model, tokenizer.json);
    empty for the lexicon scorer."""
    batch_size: int = 16
    """Most headlines per model call (a worker's news batch and the ONNX chunk)."""
    max_wait_ms: float = 10.0
    """Longest a headline waits for others to fill its batch."""
    max_length: int = 64
    """Tokens per headline after truncation (headlines are far shorter)."""
    intra_op_threads: int = 1
    """ONNX Runtime threads within one operator."""
    inter_op_threads: int = 1
    """ONNX Runtime threads across operators (the graph runs sequentially)."""
    cache_size: int = 10_000
    """Recent headline scores kept, keyed by the normalised headline."""
    providers: str = "cpu"
    """ONNX Runtime execution providers, comma-separated, in order of preference: cpu, cuda,
    tensorrt, openvino, coreml, directml (or ONNX Runtime's names, e.g.
    CUDAExecutionProvider). One the installed onnxruntime lacks is an error, never a silent
    fallback to the CPU."""
    store_dir: str = ""
    """Score store folder (filled by ``gnosis news score``): replays read scores from it and
    score only the headlines it lacks; empty for no store."""
    bulk_processes: int = 0
    """Processes that ``gnosis news score`` scores in; 0 for as many as the cores allow at
    ``bulk_threads`` threads each (one on an accelerator)."""
    bulk_threads: int = 0
    """ONNX Runtime threads within one operator in each bulk-scoring process; 0 for one per
    core, hence one process using every core (measured fastest on an idle 2-core CPU, 1.21×
    the live scorer against 0.65× for one single-thread process per core: BENCHMARKS.md)."""
    bulk_batch_size: int = 32
    """Headlines per model call in bulk scoring (texts of similar length are batched)."""


@dataclass(frozen=True)
class KafkaConfig(_Section):
    """Broker connection and topic layout."""

    _name = "kafka"

    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated host:port list of brokers."""
    bars_topic: str = "bars"
    """OHLCV bars in, key = ticker (Java murmur2 partitioner, as aiokafka and Java use)."""
    news_topic: str = "news"
    """Headlines in; any key (the worker re-keys them per ticker)."""
    signals_topic: str = "signals"
    """TradingSignal JSON out, key = ticker."""
    deadletter_topic: str = "deadletter"
    """Invalid input with its reason, field and source position."""
    partitions: int = 4
    """Partitions of bars, news, the repartition topic and the changelogs (must match)."""
    replication_factor: int = 1
    """Replication factor of the topics ``gnosis kafka topics`` creates."""
    retention_days: int = 7
    """Retention of the event topics (changelogs are compacted instead)."""
    deadletter_partitions: int = 1
    """Partitions of the deadletter topic."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."""
    sasl_mechanism: Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = ""
    """PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 when SASL is used; empty otherwise."""
    sasl_username: str = ""
    """SASL user name."""
    sasl_password: str = field(default="", repr=False)
    """SASL password; shown masked by ``gnosis config``. Prefer ``sasl_password_file``."""
    sasl_password_file: str = ""
    """File holding the SASL password (a Kubernetes or Docker secret); read at connect
    time, surrounding whitespace stripped; wins over ``sasl_password``."""
    ssl_cafile: str = ""
    """CA bundle (PEM) that signed the brokers' certificates; empty uses the system store
    (right for managed services with public certificates)."""


@dataclass(frozen=True)
class WorkerConfig(_Section):
    """The live worker (``gnosis worker``)."""

    _name = "worker"

    app_id: str = "gnosis"
    """Consumer group, transactional-id prefix and internal topic prefix."""
    web_port: int = 6066
    """Port of /health and /metrics."""
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    """"at_least_once" (lowest latency; a crash may repeat signals) or "exactly_once"
    (Kafka transactions; signals become visible to read_committed consumers on commit)."""
    commit_interval: float = 0.2
    """Seconds between offset commits (in exactly_once: between transaction commits)."""
    max_future: Duration = Duration("1d")
    """Bars and news stamped more than this (a duration) ahead of the wall clock are
    refused as ``bad_timestamp``, live and in replay."""
    log_level: Literal["debug", "info", "warning", "warn", "error", "critical"] = "info"
    """Log level of the worker."""
    snapshot_every: int = 256
    """Journal entries between two snapshots of a ticker's engine state (each ticker at
    positions of its own, so that tickers closing together do not all snapshot on one
    bar)."""
    max_news_wait: float = 0.0
    """Seconds after which a bar still waiting for news is processed anyway: a stall guard
    that trades exactness for liveness; 0 (the default) waits as long as it takes."""
    broker_clock_skew: float = 0.05
    """Seconds a record may take from its append time to being readable, plus how far the
    brokers' clocks may differ from this worker's. A bar is known at its record's
    timestamp; where a news partition holds no headline known after the bar yet, its end
    offset becomes the bar's barrier only once this worker's clock is this far past the
    bar, so that every headline appended later is known later (measure it with
    bench/bench_visibility.py; a live bar waits about this long plus one offsets lookup)."""
    session_timeout: float = 10.0
    """Consumer-group session timeout: how soon a crashed worker's partitions move on."""
    rebalance_timeout: float = 60.0
    """Seconds the group waits for every worker to rejoin a rebalance (commit what it
    processed, restore what it gains). A worker slower than this misses a generation and
    then restores all its tasks from their changelogs."""
    retry_backoff_max: float = 30.0
    """Longest wait in seconds between two attempts to start while Kafka refuses the worker
    (or it failed): the wait starts at 1 s (or this, if smaller) and doubles."""
    failing_after: int = 3
    """Worker failures in a row, with no offset committed in between, after which
    ``/health`` answers 503 ("failing", with the cause and the restart count) and
    ``gnosis_worker_failing`` is 1; a worker that commits progress clears it."""


@dataclass(frozen=True)
class ReplayConfig(_Section):
    """Point-in-time replay of files (``gnosis replay``, ``sweep``, ``walkforward``)."""

    _name = "replay"

    news_latency: Duration = Duration("1m")
    """When a headline without a ``received_at`` column is taken to have been known: this
    long after its stamp (a bar without one is known at its close). One minute puts a
    headline after the one-minute bar it was stamped in, as most vendors' delays (seconds
    to a minute) would; 0 assumes news arrives the instant it is stamped, which no feed
    does and which makes a backtest optimistic."""


@dataclass(frozen=True)
class BacktestConfig(_Section):
    """Backtest execution and statistics (see ``gnosis.backtest``)."""

    _name = "backtest"

    initial_capital: float = 100_000.0
    transaction_cost: float = 0.001
    """Fee as a fraction of traded notional, paid on every fill (entry and exit)."""
    slippage: float = 0.0005
    """Adverse price move on every fill, as a fraction of the open it fills at."""
    permutations: int = 1_000
    """Monte Carlo permutations behind the p-value; 0 skips the test."""
    seed: int = 7
    """Seed of the permutation test: the same seed gives the same p-value."""
    risk_free_rate: float = 0.0
    """Annual risk-free rate subtracted in the Sharpe and Sortino ratios."""
    significance: float = 0.05
    """A strategy is significant when its permutation p-value is below this."""
    periods_per_year: float = 0.0
    """Bars per year for annualisation; 0 infers it from the bar spacing (daily: 252)."""
    hold: Literal["keep", "flat"] = "keep"
    """What a HOLD signal means: "keep" the current position, or go "flat"."""


@dataclass(frozen=True)
class Settings:
    """All configuration sections."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    rules: RuleConfig = field(default_factory=RuleConfig)
    sentiment: SentimentConfig = field(default_factory=SentimentConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        features_config_path: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> Self:
        """Load defaults, then the TOML file(s), then ``GNOSIS_*`` environment variables."""
        env = dict(os.environ if env is None else env)
        settings = cls()
        path = path or env.get("GNOSIS_CONFIG")
        if path:
            settings = settings._merge_file(Path(path))
        if features_config_path:
            data = _read_toml(Path(features_config_path))
            section = data.get("features", data)
            settings = settings._merge({"features": section}, str(features_config_path))
        return settings._merge_env(env)

    def merged(self, data: dict[str, Any], origin: str = "overrides") -> Self:
        """These settings with ``{section: {key: value}}`` applied, checked and coerced
        as a configuration file's are (errors name ``origin``, section and key)."""
        return self._merge(data, origin)

    def _merge_file(self, path: Path) -> Self:
        return self._merge(_read_toml(path), str(path))

    def _merge(self, data: dict[str, Any], origin: str) -> Self:
        updates: dict[str, Any] = {}
        known = {f.name for f in fields(self)}
        for section, values in data.items():
            if section not in known:
                raise ConfigError(f"{origin}: unknown section [{section}]")
            if not isinstance(values, dict):
                raise ConfigError(f"{origin}: [{section}] must be a table")
            current = getattr(self, section)
            updates[section] = _apply(current, values, origin)
        return replace(self, **updates)

    def _merge_env(self, env: dict[str, str]) -> Self:
        data: dict[str, dict[str, Any]] = {}
        for name, raw in env.items():
            if not name.startswith("GNOSIS_") or "__" not in name:
                continue
            section, _, key = name[len("GNOSIS_"):].lower().partition("__")
            data.setdefault(section, {})[key] = raw
        return self._merge(data, "environment") if data else self

    def as_rows(self) -> list[tuple[str, str, Any]]:
        """(section, key, value) for every setting, for display and documentation."""
        rows = []
        for section in fields(self):
            for item in fields(getattr(self, section.name)):
                rows.append((section.name, item.name, getattr(getattr(self, section.name),
                                                              item.name)))
        return rows


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """Field name -> annotated type (a Literal, Duration or a plain type) of a section."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _problem(value: Any, kind: Any) -> str | None:
    """What is wrong with a value of a choice or duration setting, or ``None``."""
    if get_origin(kind) is Literal:
        allowed = get_args(kind)
        if value not in allowed:
            return "allowed: " + ", ".join(repr(a) for a in allowed)
    elif kind is Duration:
        try:
            duration_ns(value)
        except (ValueError, AttributeError):
            return "allowed: a duration like 0, 30s, 5m, 1h or 1d"
    return None


RETIRED: dict[tuple[str, str], str] = {
    ("worker", "allowed_lateness"): "a headline is no longer dropped for lateness: it counts "
    "for every bar known after it whose sentiment window covers its stamp",
}
"""Settings an earlier version had, with why they went: read, warned about and ignored."""


def _apply(section: Any, values: dict[str, Any], origin: str) -> Any:
    types = _field_types(type(section))
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if (section._name, key) in RETIRED:
            log.warning("%s: %s.%s is retired and ignored: %s", origin, section._name, key,
                        RETIRED[(section._name, key)])
            continue
        if key not in types:
            raise ConfigError(f"{origin}: [{section._name}]: unknown key {key!r}")
        kind = types[key]
        where = f"{origin}: [{section._name}] {key}"
        if origin == "environment":
            where = (f"environment GNOSIS_{section._name.upper()}__{key.upper()}: "
                     f"{section._name}.{key}")
        plain = str if get_origin(kind) is Literal or kind is Duration else kind
        clean[key] = _coerce(value, plain, where)
        problem = _problem(clean[key], kind)
        if problem:
            raise ConfigError(f"{where} = {value!r}: {problem}")
    return replace(section, **clean)


def _coerce(value: Any, kind: type, where: str) -> Any:
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if kind is bool:
                if text.lower() in {"1", "true", "yes", "on"}:
                    return True
                if text.lower() in {"0", "false", "no", "off"}:
                    return False
                raise ValueError(text)
            return kind(text)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not a {kind.__name__}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise ConfigError(f"{where}: {value!r} is not a {kind.__name__}")
