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
