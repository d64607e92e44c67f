"""Configuration: one TOML file plus ``GNOSIS_*`` environment variables.

Precedence, lowest first: the defaults below (also shipped, commented, as
``gnosis/config/defaults.toml``), the TOML file named by ``--config`` or
``GNOSIS_CONFIG``, an optional separate features file (``features_config_path``), then
environment variables named ``GNOSIS_<SECTION>__<KEY>`` (e.g.
``GNOSIS_KAFKA__BOOTSTRAP_SERVERS``). The README's configuration table lists every key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Self


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names file and key."""


@dataclass(frozen=True)
class FeatureConfig:
    """Windows and thresholds of the technical features (all counted in bars)."""

    window: int = 512
    """Rolling window for Hurst, Hawkes and volatility clustering."""
    vsa_window: int = 20
    """Rolling window for the mean volume and spread that VSA compares a bar against."""
    hurst_stride: int = 8
    """Recompute the Hurst exponent every this many bars (held in between)."""
    hawkes_bin: int = 8
    """Bars per counting bin of the Hawkes branching-ratio estimator."""
    event_threshold: float = 1.5
    """A bar is a Hawkes 'event' when its volume exceeds this multiple of the mean volume."""
    vol_short: int = 16
    """Short realised-volatility window for volatility clustering."""
    vol_long: int = 128
    """Long realised-volatility window for volatility clustering and realised volatility."""
    trend_lookback: int = 20
    """Bars over which the trend (a log return) is measured."""


@dataclass(frozen=True)
class RuleConfig:
    """Thresholds of the signal rules (see ``gnosis.models.rules``)."""

    sentiment_window: str = "1h"
    """As-of sentiment window: news stamped in (t - window, t] counts for the bar at t."""
    positive_sentiment: float = 0.1
    """Sentiment mean at or above which sentiment is positive."""
    negative_sentiment: float = -0.1
    """Sentiment mean at or below which sentiment is negative."""
    trending_hurst: float = 0.55
    """Hurst exponent at or above which the series is trending."""
    mean_reverting_hurst: float = 0.45
    """Hurst exponent at or below which the series is mean reverting."""
    low_clustering: float = 1.0
    """Volatility-clustering ratio at or below which volatility is calm."""
    high_clustering: float = 1.25
    """Volatility-clustering ratio at or above which volatility is clustering."""
    no_supply_vsa: float = 0.3
    """VSA score at or above which the tape shows no supply."""
    contrarian_sentiment: float = 0.3
    """|sentiment mean| needed, against the price trend, for a contrarian market."""
    high_risk_hawkes: float = 0.7
    """Hawkes branching ratio at or above which risk is HIGH."""
    min_confidence: float = 0.0
    """BUY/SELL below this confidence are downgraded to HOLD."""
    target_volatility: float = 0.002
    """Per-bar volatility a full position is sized to."""
    max_position_size: float = 0.25
    """Cap on the suggested position size, as a fraction of capital."""


@dataclass(frozen=True)
class SentimentConfig:
    """Headline scoring: an ONNX model when ``model_dir`` is set, else the lexicon."""

    model_dir: str = ""
    """Directory written by ``gnosis model export`` (manifest.json, model, tokenizer.json);
    empty for the lexicon scorer."""
    batch_size: int = 16
    """Most headlines per model call (the micro-batcher's batch and the ONNX chunk)."""
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
    """Processes that ``gnosis news score`` scores in; 0 for one per core on the CPU (one
    on an accelerator)."""
    bulk_threads: int = 1
    """ONNX Runtime threads within one operator in each bulk-scoring process (1 thread in
    each of one process per core measured fastest on CPUs: BENCHMARKS.md)."""
    bulk_batch_size: int = 32
    """Headlines per model call in bulk scoring (texts of similar length are batched)."""


@dataclass(frozen=True)
class KafkaConfig:
    """Broker connection and topic layout."""

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
    security_protocol: str = "PLAINTEXT"
    """PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."""
    sasl_mechanism: str = ""
    """PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 when SASL is used."""
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_cafile: str = ""
    """CA bundle for SSL; empty uses the system store."""


@dataclass(frozen=True)
class WorkerConfig:
    """The live worker (Faust app)."""

    app_id: str = "gnosis"
    """Faust app id: consumer group, transactional-id prefix and internal topic prefix."""
    web_port: int = 6066
    """Port of /health and /metrics."""
    processing_guarantee: str = "at_least_once"
    """"at_least_once" (lowest latency; a crash may repeat signals) or "exactly_once"
    (Kafka transactions; signals become visible to read_committed consumers on commit)."""
    commit_interval: float = 0.2
    """Seconds between offset commits (in exactly_once: between transaction commits)."""
    allowed_lateness: str = "0s"
    """News stamped earlier than the last bar's close minus this is counted and ignored."""
    data_dir: str = ".cache/worker"
    """Faust's local data folder."""
    log_level: str = "info"
    snapshot_every: int = 256
    """Journal entries between two snapshots of a ticker's engine state."""
    max_news_wait: float = 5.0
    """Seconds a bar may wait for the news pipeline to catch up before it is processed
    anyway (a stall guard; normally bars wait a few milliseconds)."""
    session_timeout: float = 10.0
    """Consumer-group session timeout: how soon a crashed worker's partitions move on."""


@dataclass(frozen=True)
class BacktestConfig:
    """Backtest execution and statistics (see ``gnosis.backtest``)."""

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
    hold: str = "keep"
    """What a HOLD signal means: "keep" the current position, or go "flat"."""


@dataclass(frozen=True)
class Settings:
    """All configuration sections."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    rules: RuleConfig = field(default_factory=RuleConfig)
    sentiment: SentimentConfig = field(default_factory=SentimentConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
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
            updates[section] = _apply(current, values, f"{origin}: [{section}]")
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


def _apply(section: Any, values: dict[str, Any], origin: str) -> Any:
    types = {f.name: type(f.default) for f in dataclasses.fields(section)}
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key not in types:
            raise ConfigError(f"{origin}: unknown key {key!r}")
        clean[key] = _coerce(value, types[key], f"{origin} {key}")
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
