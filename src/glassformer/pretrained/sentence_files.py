"""The sentence-transformers modules of an encoder directory: how ``SentenceTransformer(dir)`` makes one vector.

``modules.json`` lists the modules in order: the transformer (the directory itself), ``Pooling`` (its
mode in ``1_Pooling/config.json``) and, when the vectors are unit length, ``Normalize``;
``sentence_bert_config.json`` holds ``max_seq_length``, where the tokenizer truncates. Without these
files sentence-transformers falls back to mean pooling without normalisation, and the vectors change.
glassformer writes the layout that every sentence-transformers version reads (2.x to 6.x);
:class:`~glassformer.pretrained.sentence.SentenceConfig` reads it back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from glassformer._files import atomic_write
from glassformer.pretrained.sentence import SentenceConfig

_POOLING_KEYS = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens", "max": "pooling_mode_max_tokens"}


def _write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")


def write_sentence_modules(directory: Path, sentence: SentenceConfig, dim: int) -> None:
    """``modules.json``, ``1_Pooling/config.json``, ``sentence_bert_config.json`` (and ``2_Normalize/``) for `sentence`."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if sentence.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
        (directory / "2_Normalize").mkdir()  # Normalize has no settings; sentence-transformers expects the folder
    _write_json(directory / "modules.json", modules)
    pooling = {"word_embedding_dimension": dim, **{key: mode == sentence.pooling for mode, key in _POOLING_KEYS.items()},
               "pooling_mode_mean_sqrt_len_tokens": False}
    _write_json(directory / "1_Pooling" / "config.json", pooling)
    _write_json(directory / "sentence_bert_config.json", {"max_seq_length": sentence.max_seq_length,
                                                          "do_lower_case": False})
