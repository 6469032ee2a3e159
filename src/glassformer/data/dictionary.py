"""Using the Ding dictionary beyond its sentence pairs: alternatives inside an entry, and look-ups by word.

1. **Alternatives.** One side of a Ding entry may list synonymous translations joined by ``"; "``
   ("The teams are tied on points.; The teams are even on points."). :func:`split_alternatives`
   separates them, and :func:`reference_items` turns (source, reference) pairs into test items
   with every alternative as a reference (sacrebleu's multiple references), so a system that
   gives one of them is not scored against all of them joined into one long sentence.
2. **Hints.** :class:`HintRetriever` finds, for a German sentence, dictionary phrase pairs whose
   German headword occurs in it ("Ich rufe dich morgen an." → ``anrufen = to call``), rarest word
   first (Zhong & Chiang 2020, "Look It Up"). German splits and glues its verbs, so a sentence's
   words are turned into the headwords they can come from: a separable verb's particle at the end
   of a clause is glued back ("rufe … an" → "anrufen"), a "zu" infinitive loses its "zu"
   ("anzurufen" → "anrufen"), and a reflexive pronoun selects the "sich" entry ("Ich beeile mich"
   → "sich beeilen"). Only the words of the sentence are used, never which dictionary line it came from.
3. **Words.** :class:`Lexicon` gathers, for each one-word German headword, the English
   translations its entries give, most frequent first ("Hund" → "dog", "canine", …): the
   word-by-word baseline, the word-first training curriculum and the studio's look-up table
   all read it. :func:`training_pairs` splits a training target's joined alternatives into
   pairs of their own, so a model learns to give one translation, not two glued by "; ".
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

# "; " separates alternatives when what precedes it ends a sentence ("…neighbours.; The…"), when
# what follows starts like a new sentence or phrase (not a lower-case word: "knock; our doorbell"
# is one sentence), or when both sides start with the same word ("gegen 11 Uhr…; gegen 11 Uhr…").
_SEPARATOR = "; "
_SENTENCE_END = (".", "!", "?", "…", ")", '"', "”", "’")


def split_alternatives(text: str) -> list[str]:
    """The alternatives that one side of a Ding entry joins with ``"; "`` (a list of one when there are none)."""
    pieces = text.split(_SEPARATOR)
    out = [pieces[0]]
    for piece in pieces[1:]:
        previous = out[-1]
        first_word = piece.split()[0] if piece.split() else ""
        starts_same = bool(first_word) and first_word == (previous.split() or [""])[0]
        if previous.rstrip().endswith(_SENTENCE_END) or not piece[:1].islower() or starts_same:
            out.append(piece)
        else:
            out[-1] = previous + _SEPARATOR + piece
    alternatives = [piece.strip() for piece in out if piece.strip()]
    return alternatives or [text.strip()]


@dataclass(frozen=True)
class ReferenceItem:
    """One test item: the source to translate, its acceptable translations, and the pair it came from."""

    source: str
    references: tuple[str, ...]
    pair_index: int  # index of the (source, reference) pair in the list given to reference_items


def reference_items(pairs: Sequence[tuple[str, str]]) -> list[ReferenceItem]:
    """Test items with every alternative of each reference as a reference of its own.

    A source whose alternatives correspond one to one with its reference's (as many on both sides)
    gives one item per source alternative, the matching alternative first among its references
    (the others are synonyms and stay acceptable); any other source stays one item.
    """
    items = []
    for index, (source, reference) in enumerate(pairs):
        references = split_alternatives(reference)
        sources = split_alternatives(source)
        if len(sources) > 1 and len(sources) == len(references):
            for k, alternative in enumerate(sources):
                ordered = (references[k], *references[:k], *references[k + 1:])
                items.append(ReferenceItem(alternative, ordered, index))
        else:
            items.append(ReferenceItem(source, tuple(references), index))
    return items


def reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Per-segment reference lists as sacrebleu's streams: stream k holds each segment's k-th reference or None.

    sacrebleu drops the None entries, so segments may have different numbers of references.
    """
    if not references or any(not refs for refs in references):
        raise ValueError("every segment needs at least one reference")
    width = max(len(refs) for refs in references)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]


def training_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Training pairs with the alternatives inside each target split: one pair per alternative.

    ("Wie spät ist es?", "What time is it?; What's the time?") gives two pairs with the same
    source; a source whose alternatives match its target's one to one is split alongside
    (:func:`reference_items`); any other source is kept whole.
    """
    out = []
    for item in reference_items(pairs):
        aligned = item.source != pairs[item.pair_index][0]
        targets = item.references[:1] if aligned else item.references
        out.extend((item.source, target) for target in targets)
    return out


# --- words: one-word headwords and their translations ---------------------------------------------

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
# A word as a headword is written: letters, joined by inner hyphens or apostrophes ("E-Mail", "o'clock").
_ONE_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*", re.UNICODE)
_SLASHED = re.compile(r"/[^/]*/")  # Ding's "/…/" notes: abbreviations and regional forms
_ENGLISH_PLACEHOLDERS = {"sb", "sth", "sb's", "one's", "oneself"}


def entry_alternatives(side: str) -> list[str]:
    """The alternatives of one side of a phrase pair: in a dictionary entry (not a sentence) every "; " separates two."""
    return [piece.strip() for piece in side.split(_SEPARATOR) if piece.strip()]


def word_tokens(text: str) -> list[str]:
    """The lower-cased words of `text`: runs of letters and digits ("E-Mail, 10 Uhr" → e, mail, 10, uhr)."""
    return _TOKEN.findall(text.lower())


def headword_tokens(text: str) -> list[str]:
    """The words of `text` as written, in the form a :class:`Lexicon` looks up ("E-Mail" stays one word; no digits)."""
    return _ONE_WORD.findall(text)


def _plain(side: str) -> str:
    """One alternative of a phrase pair without its parenthesised and slashed notes, spaces collapsed."""
    return " ".join(_SLASHED.sub(" ", re.sub(r"\([^()]*\)", " ", side)).split())


class Lexicon:
    """One-word German headwords and their English translations, the most frequent in English first.

    Built from (German, English) phrase pairs (for ``de-en``: the training-eligible
    ``ParallelCorpus.extra``). A German alternative that is one word after its notes are removed
    ("Hund", "der (des; dem; den)" → "der") is a headword, looked up lower-cased; each English
    alternative of the same pair, without notes, placeholders (sb., sth.) or an infinitive's "to",
    and of at most `max_english_words` words, is one of its translations. Translations rank by how
    often their rarest word occurs in `english_corpus` (for ``de-en``: the training targets), so
    "Hund" gives "dog" before the miners' "tub" and "der" gives "the" before "who"; then by how
    many entries give them; then by which the dictionary lists first.
    """

    def __init__(self, phrase_pairs: Iterable[tuple[str, str]], english_corpus: Iterable[str] = (),
                 max_english_words: int = 4) -> None:
        english_counts = Counter(w for text in english_corpus for w in word_tokens(text))
        counts: dict[str, Counter] = {}
        first_seen: dict[str, dict[str, int]] = {}
        self.written: dict[str, str] = {}  # lower-cased headword → as the dictionary first writes it
        for german, english in phrase_pairs:
            # Notes go first: "der (des; dem; den)" is one alternative, not three.
            heads = [h for h in entry_alternatives(_plain(german)) if _ONE_WORD.fullmatch(h)]
            if not heads:
                continue
            senses = [s for s in (self._english(a) for a in entry_alternatives(_plain(english)))
                      if s and len(s.split()) <= max_english_words]
            for head in heads:
                key = head.lower()
                self.written.setdefault(key, head)
                order = first_seen.setdefault(key, {})
                for sense in senses:
                    counts.setdefault(key, Counter())[sense] += 1
                    order.setdefault(sense, len(order))
        usage = {sense: min((english_counts[w] for w in word_tokens(sense)), default=0)
                 for counter in counts.values() for sense in counter}
        self.entries: dict[str, list[str]] = {
            key: sorted(counter, key=lambda sense, c=counter, o=first_seen[key]: (-usage[sense], -c[sense], o[sense]))
            for key, counter in counts.items()}

    @staticmethod
    def _english(alternative: str) -> str:
        words = [w for w in alternative.split() if w.lower().rstrip(".") not in _ENGLISH_PLACEHOLDERS]
        if len(words) > 1 and words[0] == "to":  # the infinitive's "to": "to sleep" → "sleep"
            words = words[1:]
        return " ".join(words)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, word: str) -> bool:
        return word.lower() in self.entries

    def translations(self, word: str) -> list[str]:
        """Every translation of `word` (any case), the most frequent first; [] when it is no headword."""
        return list(self.entries.get(word.lower(), []))

    def word_translation(self, word: str) -> str | None:
        """The highest-ranked one-word translation of `word`, or None."""
        return next((s for s in self.entries.get(word.lower(), []) if " " not in s), None)

    def word_by_word(self, sentence: str) -> str:
        """`sentence` with each word replaced by its one-word translation (unknown words kept), first letter upper-case."""
        out = _ONE_WORD.sub(lambda m: self.word_translation(m.group()) or m.group(), sentence)
        return out[:1].upper() + out[1:]


# --- hints: phrase pairs looked up by the words of a sentence ------------------------------------

# Placeholders and pronouns that dictionary headwords carry around the word itself.
_PLACEHOLDERS = {"etw.", "jdn.", "jdm.", "jds.", "jd.", "sich", "sb.", "sth.", "etw", "jdn", "jdm", "jds"}
REFLEXIVE_PRONOUNS = {"sich", "mich", "dich", "uns", "euch", "mir", "dir"}
# "mich" is reflexive beside "ich" ("Ich beeile mich"), an object elsewhere ("Er ruft mich an").
_REFLEXIVE_WITH = {"mich": "ich", "mir": "ich", "dich": "du", "dir": "du", "uns": "wir", "euch": "ihr"}
# Separable-verb particles, longest first so that "heraus" is tried before "her".
SEPARABLE_PARTICLES = tuple(sorted(
    {"ab", "an", "auf", "aus", "bei", "dar", "durch", "ein", "fern", "fest", "fort", "her", "heran", "herauf",
     "heraus", "herbei", "herein", "herüber", "herum", "herunter", "hervor", "hin", "hinauf", "hinaus", "hinein",
     "hinüber", "hinunter", "hoch", "los", "mit", "nach", "nieder", "statt", "teil", "um", "vor", "voran",
     "voraus", "vorbei", "vorüber", "weg", "weiter", "wieder", "zu", "zurecht", "zurück", "zusammen"},
    key=len, reverse=True))
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*", re.UNICODE)
_CLAUSE_END = re.compile(r"[,.;:!?…]")
# Inflection endings tried when a word is not a headword itself: "rufe" → "rufen", "Katzen" → "Katze".
_VERB_ENDINGS = ("test", "tet", "ten", "te", "est", "et", "st", "t", "e", "en", "n")
_NOUN_ENDINGS = ("en", "n", "e", "s", "es", "er", "nen")


def _headword(german: str) -> str | None:
    """The looked-up form of a phrase pair's German side: its words without placeholders, lower-cased.

    Reflexive entries keep "sich " in front ("sich beeilen"); entries of more than three words
    are idioms rather than headwords and give None.
    """
    german = re.sub(r"\([^()]*\)", " ", german)  # optional parts: "(an)streichen"
    words = german.split()
    reflexive = "sich" in words
    core = [w for w in words if w not in _PLACEHOLDERS and w.lower() not in _PLACEHOLDERS]
    if not core or len(core) > 3 or not all(_WORD.fullmatch(w) for w in core):
        return None
    key = " ".join(w.lower() for w in core)
    return f"sich {key}" if reflexive else key




HINT_SEPARATOR = " || "  # between a sentence and each hint (and a fuzzy match) appended to it


class HintRetriever:
    """Dictionary phrase pairs for a German sentence, found by its words, rarest word first.

    `phrase_pairs` are (German, English) dictionary entries (for the ``de-en`` task: the
    training-eligible ``ParallelCorpus.extra``); `corpus` is German text whose word counts say
    which words are rare (the training sources) and `english_corpus` English text whose word counts
    pick the plainest sense of a headword (the training targets). Each hint is ``"German = English"``
    with the entry's first English alternative.
    """

    def __init__(self, phrase_pairs: Iterable[tuple[str, str]], corpus: Iterable[str] = (),
                 english_corpus: Iterable[str] = (), max_english_words: int = 6) -> None:
        english_counts = Counter(w.lower() for text in english_corpus for w in _WORD.findall(text))
        best: dict[str, tuple[tuple[float, int], str, str]] = {}
        for german, english in phrase_pairs:
            english = (entry_alternatives(english) or [""])[0]
            words = [w.lower() for w in _WORD.findall(re.sub(r"\([^()]*\)", " ", english))]
            words = [w for w in words if w not in _ENGLISH_PLACEHOLDERS]
            if not words or len(english.split()) > max_english_words:
                continue
            # Among the senses of a headword, the one whose rarest English word is the most common in the
            # training text is the plainest ("Katze = cat", not "Katze = moggy"); then the shortest.
            plainness = (min(english_counts[w] for w in words), -len(english))
            for alternative in entry_alternatives(german):
                key = _headword(alternative)
                if key is not None and (key not in best or plainness > best[key][0]):
                    best[key] = (plainness, alternative, english)
        self.entries: dict[str, tuple[str, str]] = {key: (german, english) for key, (_, german, english) in best.items()}
        self.counts = Counter(w.lower() for text in corpus for w in _WORD.findall(text))

    def __len__(self) -> int:
        return len(self.entries)

    def _forms(self, word: str, noun: bool = False) -> list[str]:
        """Headwords a (lower-cased) word of a sentence may be an inflection of, most literal first.

        A `noun` (capitalised inside a sentence) only loses plural and case endings ("Katzen" →
        "Katze"); other words are also tried as verb forms ("rufe" → "rufen", "anzurufen" → "anrufen").
        """
        forms = [word]
        for ending in _NOUN_ENDINGS:
            if word.endswith(ending) and len(word) - len(ending) >= 3:
                forms.append(word[: -len(ending)])
        if noun:
            return list(dict.fromkeys(forms))
        for ending in _VERB_ENDINGS:
            if word.endswith(ending) and len(word) - len(ending) >= 3:
                stem = word[: -len(ending)]
                forms += [stem + "en", stem + "n"]
        forms += [word + "n", word + "en"]
        for particle in SEPARABLE_PARTICLES:  # zu-infinitive: "anzurufen" → "anrufen"
            if word.startswith(particle + "zu") and len(word) > len(particle) + 4:
                forms.append(particle + word[len(particle) + 2:])
        return list(dict.fromkeys(forms))

    def _lookup(self, word: str, reflexive: bool, noun: bool = False, verb: bool = False) -> str | None:
        forms = self._forms(word, noun)
        if verb:  # a particle glued back makes an infinitive: "anrufe" is "anrufen" here, not "Anrufe"
            forms = [f for f in forms if f.endswith("n")] + [f for f in forms if not f.endswith("n")]
        for form in forms:
            if reflexive and f"sich {form}" in self.entries:
                return f"sich {form}"
            if form in self.entries:
                return form
        return None

    def candidates(self, sentence: str) -> list[tuple[str, str]]:
        """(word as written, headword found) for each word with an entry, in sentence order."""
        words = [(m.group(), m.end()) for m in _WORD.finditer(sentence)]
        lowered = [w.lower() for w, _ in words]
        present = set(lowered)
        reflexive = "sich" in present or any(subject in present for pronoun, subject in _REFLEXIVE_WITH.items()
                                             if pronoun in present)
        # A particle that closes a clause ("Ich rufe dich morgen an.") belongs to a verb earlier in it.
        closing = [i for i, (_, end) in enumerate(words)
                   if lowered[i] in SEPARABLE_PARTICLES
                   and (i + 1 == len(words) or _CLAUSE_END.search(sentence[end:words[i + 1][1]]))]
        found: list[tuple[str, str]] = []
        for i, (written, _) in enumerate(words):
            word = lowered[i]
            if (reflexive and word in REFLEXIVE_PRONOUNS) or i in closing:
                continue
            key = None
            for j in closing:
                if j > i:
                    key = self._lookup(lowered[j] + word, reflexive, verb=True)
                    if key is not None:
                        break
            noun = i > 0 and written[:1].isupper()
            key = key or self._lookup(word, reflexive, noun)
            if key is not None:
                found.append((written, key))
        return found

    def hints(self, sentence: str, k: int = 3, max_count: int | None = 100) -> list[str]:
        """Up to `k` hints ``"German = English"`` for the rarest words of `sentence` that have an entry.

        Words seen more than `max_count` times in the corpus are too common to need a hint (None: any).
        """
        seen: set[str] = set()
        ranked = []
        for position, (written, key) in enumerate(self.candidates(sentence)):
            count = self.counts.get(written.lower(), 0)
            if key in seen or (max_count is not None and count > max_count):
                continue
            seen.add(key)
            ranked.append((count, position, key))
        ranked.sort()
        return [" = ".join(self.entries[key]) for _, _, key in ranked[:k]]

    def annotate(self, sentence: str, k: int = 3, max_count: int | None = 100,
                 separator: str = HINT_SEPARATOR) -> str:
        """`sentence` followed by its hints, each after `separator` (the sentence alone when there are none)."""
        return "".join([sentence, *(separator + hint for hint in self.hints(sentence, k, max_count))])
