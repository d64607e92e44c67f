"""The score store: each headline scored once per model, kept on disk, reused everywhere.

Scores live under ``<store_dir>/<digest>/``, one folder per scorer identity (``digest``:
the hash of an ONNX model's manifest and truncation, or of the lexicon), so a new or
re-quantised model never reuses another's scores. A folder holds ``model.json`` (model id
and digest) and Parquet parts with columns ``key`` (the normalised headline, as
:class:`~gnosis.models.sentiment.cache.ScoreCache` keys it), ``positive``, ``negative``,
``neutral`` and ``score``; each part's metadata names the model id and the execution
provider that computed it.

Writers never touch a finished part: a part is written to a hidden temporary file,
fsynced and renamed into place, so a killed writer (``kill -9``) loses at most the part
it was writing and leaves no half-written part, and any number of processes can fill the
same folder at once. A key stored twice (two writers racing) is read from the oldest part.

``gnosis news score`` fills a store; replays read it (``sentiment.store_dir``) and score
only what it lacks; :func:`warm_cache` fills a live worker's cache from it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from gnosis.models.sentiment.score import MAX_CHARS, SentimentScore, normalise_key

if TYPE_CHECKING:
    from gnosis.models.sentiment.cache import ScoreCache
    from gnosis.models.sentiment.score import SentimentScorer

VALUES = ("positive", "negative", "neutral", "score")
"""The stored columns besides ``key``, in this order in every values matrix."""
MODEL_FILE = "model.json"
_STALE_TEMP_SECONDS = 3600.0
_SCORE_CHUNK = 256


def normalise_keys(texts: Sequence[object] | pd.Series | pa.Array | pa.ChunkedArray
                   ) -> pa.Array:
    """:func:`~gnosis.models.sentiment.score.normalise_key` of many texts, vectorised.

    Printable ASCII (nearly every headline) is normalised with Arrow kernels; any other
    text goes through ``normalise_key`` itself, so the keys are identical.
    """
    texts = _strings(texts)
    plain = pc.and_(pc.string_is_ascii(texts), pc.ascii_is_printable(texts))
    plain = pc.fill_null(plain, False)
    cut = texts
    if len(texts) and (pc.max(pc.binary_length(texts)).as_py() or 0) > MAX_CHARS:
        cut = pc.utf8_slice_codeunits(texts, 0, MAX_CHARS)  # ASCII: characters are bytes
    fast = pc.ascii_lower(pc.utf8_trim(pc.replace_substring_regex(cut, " {2,}", " "), " "))
    other = np.flatnonzero(~plain.to_numpy(zero_copy_only=False))
    if not len(other):
        return fast
    keys = fast.to_numpy(zero_copy_only=False).astype(object)
    for i, text in zip(other.tolist(), texts.take(pa.array(other)).to_pylist(), strict=True):
        keys[i] = normalise_key(text)
    return pa.array(keys, pa.string())


def _strings(texts: Sequence[object] | pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    """``texts`` as one Arrow string array (anything not a string becomes null)."""
    if isinstance(texts, pd.Series) and texts.dtype != object:
        texts = pa.array(texts, pa.string())  # Arrow-backed strings: no Python objects
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if not isinstance(texts, pa.Array):
        texts = pa.array([t if isinstance(t, str) else None for t in texts], pa.string())
    if pa.types.is_large_string(texts.type):
        texts = texts.cast(pa.string())
    return texts


@dataclass(frozen=True)
class StoreInfo:
    """What a store folder holds, for ``gnosis news info`` and ``/health``-style reports."""

    path: str
    model_id: str
    digest: str
    rows: int
    parts: int
    providers: tuple[str, ...]


class ScoreStore:
    """The stored scores of one scorer identity, under ``root/<digest>/``.

    Look-ups load every part once (Arrow, multi-threaded) and match keys with a hash
    join; appends write a new part and extend what is loaded.
    """

    def __init__(self, root: str | Path, digest: str, model_id: str,
                 provider: str = "") -> None:
        self.root = Path(root)
        self.digest = digest
        self.model_id = model_id
        self.provider = provider
        self.path = self.root / digest
        self._keys: pa.Array | None = None
        self._values = np.empty((0, len(VALUES)))

    @classmethod
    def for_scorer(cls, root: str | Path, scorer: SentimentScorer | ScoreCache) -> ScoreStore:
        """The store of ``scorer``'s scores (by its ``digest``, else its model id)."""
        return cls(root, getattr(scorer, "digest", scorer.model_id), scorer.model_id,
                   getattr(scorer, "provider", ""))

    def parts(self) -> list[Path]:
        """Finished parts, oldest first (names start with the write time)."""
        return sorted(self.path.glob("part-*.parquet"))

    def load(self) -> tuple[pa.Array, np.ndarray]:
        """Every stored key and its values (rows of :data:`VALUES`), oldest part first;
        read once, then kept."""
        if self._keys is None:
            parts = self.parts()
            if parts:
                table = ds.dataset([str(p) for p in parts], format="parquet").to_table(
                    columns=["key", *VALUES])
                self._keys = table["key"].combine_chunks()
                self._values = np.column_stack(
                    [table[c].to_numpy() for c in VALUES]).astype(np.float64)
            else:
                self._keys = pa.array([], pa.string())
        return self._keys, self._values

    def lookup(self, keys: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(values with NaN rows for keys not stored, mask of the keys found)."""
        values, rows = self.find(keys)
        return values, rows >= 0

    def find(self, keys: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(values with NaN rows for keys not stored, stored row of each key or -1)."""
        stored, values = self.load()
        out = np.full((len(keys), len(VALUES)), np.nan)
        if not len(stored):
            return out, np.full(len(keys), -1, dtype=np.int64)
        index = pc.index_in(keys, value_set=stored)
        rows = index.fill_null(-1).to_numpy().astype(np.int64, copy=False)
        found = rows >= 0
        out[found] = values[rows[found]]
        return out, rows

    def append(self, keys: Sequence[str] | pa.Array, values: np.ndarray) -> Path | None:
        """Write one part atomically (temporary file, fsync, rename); returns its path."""
        if not len(keys):
            return None
        self.path.mkdir(parents=True, exist_ok=True)
        self._write_model_file()
        keys = keys if isinstance(keys, pa.Array) else pa.array(list(keys), pa.string())
        values = np.asarray(values, dtype=np.float64)
        table = pa.table({"key": keys, **{c: values[:, i] for i, c in enumerate(VALUES)}})
        table = table.replace_schema_metadata({
            "gnosis.model_id": self.model_id, "gnosis.digest": self.digest,
            "gnosis.provider": self.provider})
        name = f"part-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
        temporary = self.path / f".tmp-{name}"
        pq.write_table(table, temporary)
        _fsync(temporary)
        os.replace(temporary, self.path / name)
        _fsync(self.path)
        if self._keys is not None:
            self._keys = pa.concat_arrays([self._keys, keys])
            self._values = np.concatenate([self._values, values])
        return self.path / name

    def newest(self, limit: int) -> tuple[list[str], np.ndarray]:
        """Up to ``limit`` stored keys and values, from the newest parts (oldest first)."""
        keys: list[str] = []
        blocks: list[np.ndarray] = []
        for part in reversed(self.parts()):
            if len(keys) >= limit:
                break
            table = pq.read_table(part, columns=["key", *VALUES])
            take = min(limit - len(keys), table.num_rows)
            table = table.slice(table.num_rows - take)
            keys = table["key"].to_pylist() + keys
            blocks.insert(0, np.column_stack([table[c].to_numpy() for c in VALUES]))
        values = np.concatenate(blocks) if blocks else np.empty((0, len(VALUES)))
        return keys, values

    def info(self) -> StoreInfo:
        """Rows, parts and the providers that computed them."""
        parts = self.parts()
        providers: set[str] = set()
        rows = 0
        for part in parts:
            meta = pq.read_metadata(part)
            rows += meta.num_rows
            provider = (meta.schema.to_arrow_schema().metadata or {}).get(b"gnosis.provider")
            if provider:
                providers.add(provider.decode())
        return StoreInfo(str(self.path), self.model_id, self.digest, rows, len(parts),
                         tuple(sorted(providers)))

    def remove_stale_temporaries(self, older_than: float = _STALE_TEMP_SECONDS) -> int:
        """Delete temporary files a killed writer left (older than ``older_than`` s)."""
        removed = 0
        now = time.time()
        for temporary in self.path.glob(".tmp-part-*"):
            try:
                if now - temporary.stat().st_mtime > older_than:
                    temporary.unlink()
                    removed += 1
            except FileNotFoundError:  # another process cleaned it first
                continue
        return removed

    def _write_model_file(self) -> None:
        path = self.path / MODEL_FILE
        if path.exists():
            return
        temporary = self.path / f".tmp-{uuid.uuid4().hex}-{MODEL_FILE}"
        temporary.write_text(json.dumps({"model_id": self.model_id, "digest": self.digest},
                                        indent=2) + "\n", "utf-8")
        os.replace(temporary, path)  # concurrent writers write the same content


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ScoringReport:
    """How a column of headlines was scored: from the store, or by the model."""

    headlines: int
    distinct: int
    stored: int
    """Distinct headlines found in the store."""
    scored: int
    """Distinct headlines the model scored (and the store then kept)."""
    model_id: str
    provider: str

    def __str__(self) -> str:
        where = f" on {self.provider}" if self.provider else ""
        return (f"{self.headlines:,} headlines ({self.distinct:,} distinct): "
                f"{self.stored:,} from the score store, {self.scored:,} scored by "
                f"{self.model_id}{where}")


def score_column(headlines: Sequence[object] | pd.Series | pa.Array | pa.ChunkedArray,
                 scorer: SentimentScorer | ScoreCache,
                 store_dir: str | Path) -> tuple[np.ndarray, ScoringReport]:
    """Scores in [-1, 1] for many headlines: from the store in ``store_dir`` where it has
    them, else from ``scorer`` (each distinct headline once, sent as its normalised key)
    and then written to the store."""
    # Archives repeat headlines: normalise and look up each distinct text once.
    encoded = pc.dictionary_encode(_strings(headlines))
    positions = encoded.indices.to_numpy(zero_copy_only=False)
    keys = normalise_keys(encoded.dictionary)  # texts that differ may share a key
    store = ScoreStore.for_scorer(store_dir, scorer)
    values, rows = store.find(keys)
    missing = np.flatnonzero(rows < 0)
    scored = 0
    if len(missing):
        wanted = pc.dictionary_encode(keys.take(pa.array(missing)))
        texts = wanted.dictionary.to_pylist()
        new = score_texts(scorer, texts)
        values[missing] = new[wanted.indices.to_numpy(zero_copy_only=False)]
        store.append(texts, new)
        scored = len(texts)
    scores = values[positions, VALUES.index("score")]
    stored = int(np.count_nonzero(np.bincount(rows[rows >= 0])))  # distinct keys found
    report = ScoringReport(len(positions), stored + scored, stored, scored,
                           scorer.model_id, getattr(scorer, "provider", ""))
    return scores, report


def score_texts(scorer: SentimentScorer | ScoreCache, texts: Sequence[str]) -> np.ndarray:
    """Rows of :data:`VALUES` for ``texts``, scored in chunks the scorer can batch."""
    out = np.empty((len(texts), len(VALUES)))
    for start in range(0, len(texts), _SCORE_CHUNK):
        chunk = list(texts[start:start + _SCORE_CHUNK])
        out[start:start + len(chunk)] = [(s.positive, s.negative, s.neutral, s.score)
                                         for s in scorer.score_batch(chunk)]
    return out


def warm_cache(cache: ScoreCache, store_dir: str | Path) -> int:
    """Fill a live worker's :class:`ScoreCache` from the score store at start-up.

    Loads up to ``cache.max_size`` of the newest scores stored for the cache's scorer
    (matched by its digest, so another model's scores are never used); a store folder
    that does not exist yet loads nothing. Returns the number of scores loaded.
    """
    store = ScoreStore.for_scorer(store_dir, cache)
    keys, values = store.newest(cache.max_size)
    model_id = cache.model_id
    cache.preload((key, SentimentScore(*map(float, row), model_id))
                  for key, row in zip(keys, values.tolist(), strict=True))
    return len(keys)


def iter_stores(store_dir: str | Path) -> Iterable[StoreInfo]:
    """What every model's folder in ``store_dir`` holds."""
    for model_file in sorted(Path(store_dir).glob(f"*/{MODEL_FILE}")):
        meta = json.loads(model_file.read_text("utf-8"))
        yield ScoreStore(store_dir, meta["digest"], meta["model_id"]).info()
