"""Small BERT checkpoints made here, for tests and benchmarks (no model hub needed).

:func:`build_tokenizer` makes a real WordPiece tokenizer (BERT normaliser and
pre-tokeniser, ``[CLS] ... [SEP]``) from a finance vocabulary; :func:`build_checkpoint`
saves a randomly initialised ``BertForSequenceClassification`` with FinBERT's labels
beside it, in the layout ``transformers`` loads with ``from_pretrained``. Needs the
``export`` extra.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from gnosis.models.sentiment.lexicon import load_lexicon
from gnosis.models.sentiment.synthetic import vocabulary

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
FINBERT_LABELS = {0: "positive", 1: "negative", 2: "neutral"}
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 128}
"""Dimensions of the shipped tiny model."""
BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072, "max_position_embeddings": 512}
"""Dimensions of bert-base (and so FinBERT): 110M parameters with a 30k vocabulary."""


def finance_words() -> list[str]:
    """The lexicon's single words plus every word of the synthetic headlines."""
    words = {w for entry in load_lexicon() for w in entry.replace("-", " ").split()}
    return sorted(words | set(vocabulary()))


def build_tokenizer(words: Iterable[str], vocab_size: int | None = None) -> Tokenizer:
    """A lower-casing WordPiece tokenizer over ``words`` (plus characters for the rest).

    With ``vocab_size`` the vocabulary is padded with filler pieces up to that size, so an
    embedding matrix of bert-base's shape has a token for every row.
    """
    pieces = list(SPECIAL)
    chars = string.ascii_lowercase + string.digits
    pieces += [*chars, *string.punctuation, *(f"##{c}" for c in chars)]
    pieces += sorted(set(words) - set(pieces))
    if vocab_size is not None:
        pieces += [f"[unused{i}]" for i in range(vocab_size - len(pieces))]
    vocab = {piece: i for i, piece in enumerate(pieces)}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def build_checkpoint(out_dir: str | Path, dims: dict[str, int] | None = None, *,
                     vocab_size: int | None = None, seed: int = 0) -> Path:
    """Save a random ``BertForSequenceClassification`` and its fast tokenizer to ``out_dir``.

    ``dims`` defaults to :data:`TINY`; the vocabulary is :func:`finance_words`, padded to
    ``vocab_size`` when given. Returns ``out_dir``.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(finance_words(), vocab_size)
    fast = BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                             cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=tokenizer.get_vocab_size(), **(dims or TINY),
                        num_labels=3, id2label=FINBERT_LABELS,
                        label2id={v: k for k, v in FINBERT_LABELS.items()})
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(out_dir)
    fast.save_pretrained(out_dir)
    return out_dir
