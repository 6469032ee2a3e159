"""Hypothesis strategies for awkward Unicode text: emoji, combining marks, CJK, control characters, whitespace runs."""

from __future__ import annotations

from hypothesis import strategies as st

AWKWARD = ["🎉", "👩‍👩‍👧", "🇫🇷", "e\u0301", "\u0301\u0302", "你好世界", "東京", "ｶﾀｶﾅ", "\t", "\n\n\n", "   ",
           "\x00", "\x1b[0m", "\x7f", "\u200b", "\u200d", "\r\n", "  \n ", "don't", "'s", "'LL", "123456",
           "İstanbul", "ΟΔΟΣ", "ﬁ", "\ufeff", "\u2028", "Ǆ", "a" * 120, "\ufffd"]
WHITESPACE = " \t\n\r\x0b\x0c\xa0\u3000\u2009\x85"


def pieces(characters: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(characters, max_size=12),
        st.sampled_from(AWKWARD),
        st.text(st.sampled_from(WHITESPACE), min_size=1, max_size=25),
    )


# Any code point hypothesis draws (no lone surrogates, which have no UTF-8 form).
any_text = st.lists(pieces(st.characters(exclude_categories=["Cs"])), max_size=8).map("".join)

# The code points c whose "a{c}b" WordPiece ids differ from Hugging Face's BertTokenizerFast under Python 3.11's
# Unicode 14: its Rust normaliser classifies them with older tables (the 503 the wordpiece module documents;
# tests/tokenizers/test_unicode_fuzz.py recomputes this set). Ranges, both ends included.
_BERT_TABLE_RANGES = [
    (0x61D, 0x61D), (0x7FD, 0x7FD), (0x890, 0x891), (0x898, 0x89F), (0x8CA, 0x8E2), (0x9FD, 0x9FE), (0xA76, 0xA76),
    (0xAFA, 0xAFF), (0xB55, 0xB55), (0xC04, 0xC04), (0xC3C, 0xC3C), (0xC77, 0xC77), (0xC84, 0xC84), (0xD00, 0xD00),
    (0xD3B, 0xD3C), (0xD81, 0xD81), (0xEBA, 0xEBA), (0x166D, 0x166D), (0x1734, 0x1734), (0x180F, 0x180F),
    (0x1885, 0x1886), (0x1ABF, 0x1ACE), (0x1B7D, 0x1B7E), (0x1DF6, 0x1DFB), (0x2E43, 0x2E4F), (0x2E52, 0x2E5D),
    (0xA82C, 0xA82C), (0xA8C5, 0xA8C5), (0xA8FF, 0xA8FF), (0xA9BD, 0xA9BD), (0x10D24, 0x10D27), (0x10EAB, 0x10EAD),
    (0x10F46, 0x10F50), (0x10F55, 0x10F59), (0x10F82, 0x10F89), (0x11070, 0x11070), (0x11073, 0x11074),
    (0x110C2, 0x110C2), (0x110CD, 0x110CD), (0x111C9, 0x111C9), (0x111CF, 0x111CF), (0x1123E, 0x1123E),
    (0x1133B, 0x1133B), (0x11438, 0x1143F), (0x11442, 0x11444), (0x11446, 0x11446), (0x1144B, 0x1144F),
    (0x1145A, 0x1145B), (0x1145D, 0x1145E), (0x11660, 0x1166C), (0x116B9, 0x116B9), (0x1182F, 0x11837),
    (0x11839, 0x1183B), (0x1193B, 0x1193C), (0x1193E, 0x1193E), (0x11943, 0x11946), (0x119D4, 0x119D7),
    (0x119DA, 0x119DB), (0x119E0, 0x119E0), (0x119E2, 0x119E2), (0x11A01, 0x11A0A), (0x11A33, 0x11A38),
    (0x11A3B, 0x11A47), (0x11A51, 0x11A56), (0x11A59, 0x11A5B), (0x11A8A, 0x11A96), (0x11A98, 0x11A9C),
    (0x11A9E, 0x11AA2), (0x11C30, 0x11C36), (0x11C38, 0x11C3D), (0x11C3F, 0x11C3F), (0x11C41, 0x11C45),
    (0x11C70, 0x11C71), (0x11C92, 0x11CA7), (0x11CAA, 0x11CB0), (0x11CB2, 0x11CB3), (0x11CB5, 0x11CB6),
    (0x11D31, 0x11D36), (0x11D3A, 0x11D3A), (0x11D3C, 0x11D3D), (0x11D3F, 0x11D45), (0x11D47, 0x11D47),
    (0x11D90, 0x11D91), (0x11D95, 0x11D95), (0x11D97, 0x11D97), (0x11EF3, 0x11EF4), (0x11EF7, 0x11EF8),
    (0x11FFF, 0x11FFF), (0x12FF1, 0x12FF2), (0x13430, 0x13438), (0x16E97, 0x16E9A), (0x16F4F, 0x16F4F),
    (0x16FE2, 0x16FE2), (0x16FE4, 0x16FE4), (0x1CF00, 0x1CF2D), (0x1CF30, 0x1CF46), (0x1E000, 0x1E006),
    (0x1E008, 0x1E018), (0x1E01B, 0x1E021), (0x1E023, 0x1E024), (0x1E026, 0x1E02A), (0x1E130, 0x1E136),
    (0x1E2AE, 0x1E2AE), (0x1E2EC, 0x1E2EF), (0x1E944, 0x1E94A), (0x1E95E, 0x1E95F),
]
BERT_TABLE_DIFFERENCES = frozenset(c for first, last in _BERT_TABLE_RANGES for c in range(first, last + 1))
# Any code point both tables classify alike: the fuzz then tests our code, not the Unicode versions.
bert_agreed_text = st.lists(pieces(st.characters(exclude_categories=["Cs"]).filter(
    lambda ch: ord(ch) not in BERT_TABLE_DIFFERENCES)), max_size=8).map("".join)

# Code points assigned by Unicode 6 (BMP letters, marks, punctuation, symbols of the major scripts, CJK,
# emoji). Hugging Face's BERT normaliser classifies characters with older Unicode tables than Python's
# unicodedata, so characters assigned since then are "unassigned" (and dropped) on one side only.
_OLD_RANGES = st.one_of(
    st.characters(min_codepoint=0x0000, max_codepoint=0x052F),
    st.characters(min_codepoint=0x2000, max_codepoint=0x206F),
    st.characters(min_codepoint=0x3000, max_codepoint=0x30FF),
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FCC),
    st.characters(min_codepoint=0x1F600, max_codepoint=0x1F64F),
).filter(lambda ch: not 0xD800 <= ord(ch) <= 0xDFFF)
old_unicode_text = st.lists(pieces(_OLD_RANGES), max_size=8).map("".join)
