"""Plain text for the language model: streamed reading, the held-out split, bounded samples, the token file.

The streamed token file is checked against the tokenizer encoding each whole text in one call.
"""

from __future__ import annotations

import numpy as np
import pytest

from glassformer.data import lmtext
from glassformer.tasks.lm import build_tokenizer
from glassformer.tokenizers.chars import END_OF_TEXT

# Blank lines, indentation, CRLF, runs of spaces, accents, CJK and emoji (multi-byte characters that a
# small block cuts through), and a line longer than a block.
TEXT = ("The king   sees the moon.\n\n  Indented line, then\r\nCRLF line — with a dash.\n"
        "Été, garçon, naïve; 日本語のテキスト 🙂🙂\n\n\n\tTabbed.\n" + "word " * 60 + "\nlast line without end")


def _write(path, text):
    path.write_text(text, encoding="utf-8", newline="")
    return path


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(lmtext, "BLOCK_BYTES", 16)


@pytest.mark.parametrize("kind", ["bpe", "char"])
def test_token_file_equals_encoding_each_whole_text(tmp_path, small_blocks, kind):
    texts = [TEXT * 3, "a second file\n\nwith its own lines\n" * 5]
    root = tmp_path / "folder"
    root.mkdir()
    for i, text in enumerate(texts):
        _write(root / f"f{i}.txt", text)
    tokenizer = build_tokenizer(kind, texts, bpe_vocab_size=300)
    parts = lmtext.eval_parts(str(root))
    start = tokenizer.special_tokens[END_OF_TEXT]
    count = lmtext.encode_to_file(parts, lambda: [start], tokenizer.encode_ordinary, tokenizer.vocab_size,
                                  tmp_path / "tokens.bin")
    expected = [i for text in texts for i in [start, *tokenizer.encode(text)]]
    assert count == len(expected)
    assert lmtext.open_tokens(tmp_path / "tokens.bin", tokenizer.vocab_size).tolist() == expected


def test_blocks_rebuild_the_file_and_end_at_safe_cuts(tmp_path, small_blocks):
    path = _write(tmp_path / "a.txt", TEXT * 4)
    blocks = list(lmtext.read_blocks(path))
    assert "".join(blocks) == TEXT * 4
    assert len(blocks) > 5
    assert all(b.endswith("\n") for b in blocks[:-1])


@pytest.mark.parametrize("tail", [False, True])
def test_bad_utf8_names_the_file_and_line(tmp_path, small_blocks, tail):
    lines = [f"line {i} of plain text" for i in range(1, 41)]
    bad = 40 if tail else 7  # the last line lies in the held-out last 5%
    data = "\n".join(lines).encode("utf-8").split(b"\n")
    data[bad - 1] = data[bad - 1][:5] + b"\xff\xfe" + data[bad - 1][5:]
    path = tmp_path / "bad.txt"
    path.write_bytes(b"\n".join(data) + b"\n")
    corpus = lmtext.load_corpus(str(path))
    part = corpus.validation if tail else corpus.train
    with pytest.raises(ValueError, match=rf"bad\.txt:{bad}: not valid UTF-8"):
        list(lmtext.documents(part).__next__())


def test_one_file_holds_out_its_last_five_percent_from_a_line_start(tmp_path):
    text = "".join(f"line number {i}\n" for i in range(200))
    path = _write(tmp_path / "one.txt", text)
    corpus = lmtext.load_corpus(str(path))
    (train,), (held,) = corpus.train, corpus.validation
    raw = text.encode()
    assert train.start == 0 and train.end == held.start and held.end == len(raw)
    assert raw[held.start - 1 : held.start] == b"\n"
    assert 0.04 < held.size / len(raw) < 0.06
    assert corpus.info["validation_tail"] == {"file": "one.txt", "from_byte": held.start}


def test_a_folder_holds_out_whole_files_chosen_by_the_seed(tmp_path):
    root = tmp_path / "texts"
    (root / "deeper").mkdir(parents=True)
    names = [f"f{i:02d}.txt" for i in range(30)] + ["deeper/g.txt"]
    for name in names:
        _write(root / name, f"text of {name}\n" * 20)
    _write(root / "notes.md", "not text for the model\n")
    first, again, other = (lmtext.load_corpus(str(root), seed=s) for s in (0, 0, 1))
    all_names = sorted(p.name for p in first.train + first.validation)
    assert all_names == sorted(names)  # recursive, .txt only, each file whole in one split
    held = first.info["validation_files"]
    assert held == again.info["validation_files"] and held != other.info["validation_files"]
    total = sum(p.size for p in first.train + first.validation)
    assert sum(p.size for p in first.validation) >= 0.05 * total
    assert all(p.start == 0 for p in first.validation)


def test_sample_is_bounded_and_spread(tmp_path, monkeypatch):
    monkeypatch.setattr(lmtext, "BLOCK_BYTES", 4096)
    path = _write(tmp_path / "big.txt", "".join(f"{i:07d} some words here\n" for i in range(10_000)))
    parts = lmtext.eval_parts(str(path))
    pieces = lmtext.sample(parts, 4 * lmtext.BLOCK_BYTES)
    raw = path.read_bytes()
    assert sum(p.size for p in pieces) <= 4 * lmtext.BLOCK_BYTES + len(pieces) * 64
    assert len(pieces) == 4 and pieces[-1].start > len(raw) // 2
    assert all(raw[p.start - 1 : p.start] == b"\n" for p in pieces if p.start)


def test_identity_changes_when_a_file_changes(tmp_path):
    path = _write(tmp_path / "one.txt", "a line\n" * 50)
    before = lmtext.load_corpus(str(path)).identity()
    assert lmtext.load_corpus(str(path)).identity() == before
    _write(path, "a line\n" * 51)
    assert lmtext.load_corpus(str(path)).identity() != before


def test_token_file_uses_the_smallest_id_type():
    assert lmtext.token_dtype(2048) == np.uint16
    assert lmtext.token_dtype(70_000) == np.uint32
