"""Alternatives inside Ding entries, multi-reference items, split training pairs, the word lexicon and the hint
retriever (hand-written entries)."""

from __future__ import annotations

import pytest

from glassformer.data.dictionary import (
    HintRetriever,
    Lexicon,
    headword_tokens,
    reference_items,
    reference_streams,
    split_alternatives,
    training_pairs,
    word_tokens,
)


@pytest.mark.parametrize("text, expected", [
    ("The teams are tied on points.; The teams are even on points.",
     ["The teams are tied on points.", "The teams are even on points."]),
    ("to repaint sth.; to recoat st.", ["to repaint sth.", "to recoat st."]),  # ".;" before a lower-case word
    ("Take it easy!; Easy does it!; Easy now!", ["Take it easy!", "Easy does it!", "Easy now!"]),
    ("Es regnete jeden Tag; Es regnete tagein, tagaus.", ["Es regnete jeden Tag", "Es regnete tagein, tagaus."]),
    ("gegen 11 Uhr vormittags; gegen 11 Uhr Vormittag", ["gegen 11 Uhr vormittags", "gegen 11 Uhr Vormittag"]),
    ("(at) around 11 in the morning; (at) around 11 a.m.", ["(at) around 11 in the morning", "(at) around 11 a.m."]),
    # One sentence with a semicolon inside is not two alternatives.
    ("You’ll have to knock; our doorbell doesn’t work.", ["You’ll have to knock; our doorbell doesn’t work."]),
    ("He works from Monday to Friday.", ["He works from Monday to Friday."]),
])
def test_split_alternatives(text: str, expected: list[str]) -> None:
    assert split_alternatives(text) == expected


def test_reference_items_split_aligned_sources_only() -> None:
    pairs = [("Das Problem sind die Nachbarn.; Die Nachbarn sind das Problem.",
              "The problem is the neighbours.; The neighbours are the problem."),
             ("Das mag schon sein.; Das kann schon stimmen.", "That may be so."),
             ("Er arbeitet.", "He works.; He is working.")]
    items = reference_items(pairs)
    assert [(i.source, i.references, i.pair_index) for i in items] == [
        ("Das Problem sind die Nachbarn.", ("The problem is the neighbours.", "The neighbours are the problem."), 0),
        ("Die Nachbarn sind das Problem.", ("The neighbours are the problem.", "The problem is the neighbours."), 0),
        ("Das mag schon sein.; Das kann schon stimmen.", ("That may be so.",), 1),  # 2 sources, 1 reference: kept whole
        ("Er arbeitet.", ("He works.", "He is working."), 2),
    ]
    assert reference_streams([i.references for i in items[2:]]) == [["That may be so.", "He works."],
                                                                    [None, "He is working."]]


def test_multi_reference_scores_equal_sacrebleu_called_directly() -> None:
    import sacrebleu

    from glassformer.tasks.translate import corpus_scores

    hyps = ["the neighbours are the problem .", "he is at work .", "it rained every day ."]
    refs = [["The problem is the neighbours.", "The neighbours are the problem."], ["He works."],
            ["It rained every day.", "It rained day in, day out.", "It poured."]]
    ours = corpus_scores(hyps, refs)
    streams = [[r[0] for r in refs], [r[1] if len(r) > 1 else None for r in refs],
               [r[2] if len(r) > 2 else None for r in refs]]
    expected = sacrebleu.corpus_bleu(hyps, streams)
    assert ours["bleu"] == pytest.approx(expected.score)
    assert ours["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, streams).score)
    assert "nrefs:var" in ours["bleu_signature"]
    # One reference per segment as plain strings is the old scoring.
    single = corpus_scores(hyps, [r[0] for r in refs])
    assert single["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [[r[0] for r in refs]]).score)
    assert ours["bleu"] > single["bleu"]


ENTRIES = [
    ("jdn. anrufen", "to call sb."), ("Anrufe", "telephone calls"), ("sich beeilen", "to hurry"),
    ("beeilen", "to expedite"), ("Katze", "cat"), ("Katze", "moggy"), ("sich herausreden", "to make excuses"),
    ("morgen", "tomorrow"), ("versuchen", "to try"), ("Hund; Köter", "dog; cur"),
]
TRAIN_GERMAN = ["Ich rufe morgen an.", "Die Katze schläft.", "Die Katze frisst.", "Ich versuche es morgen."]
TRAIN_ENGLISH = ["The cat sleeps.", "The cat eats.", "I will call tomorrow.", "I am in a hurry."]


@pytest.fixture(scope="module")
def retriever() -> HintRetriever:
    return HintRetriever(ENTRIES, TRAIN_GERMAN, TRAIN_ENGLISH)


def test_separable_verb_particle_is_glued_back(retriever: HintRetriever) -> None:
    assert ("rufe", "anrufen") in retriever.candidates("Ich rufe dich morgen an.")
    assert retriever.hints("Ich rufe dich morgen an.", k=1, max_count=None) == ["jdn. anrufen = to call sb."]
    # "an" in the middle of a clause is a preposition, not a particle of "rufe".
    assert ("rufe", "anrufen") not in retriever.candidates("Ich rufe an der Tür, dann gehe ich.")


def test_zu_infinitive_loses_its_zu(retriever: HintRetriever) -> None:
    assert ("anzurufen", "anrufen") in retriever.candidates("Er versuchte, mich anzurufen.")


def test_reflexive_pronoun_selects_the_sich_entry(retriever: HintRetriever) -> None:
    assert ("beeile", "sich beeilen") in retriever.candidates("Ich beeile mich.")
    assert ("herauszureden", "sich herausreden") in retriever.candidates("Er versuchte, sich herauszureden.")
    # "dich" after "er" is an object, so the plain entry is the one that fits.
    assert ("beeilt", "beeilen") in retriever.candidates("Er beeilt dich nicht.")


def test_hints_rarest_word_first_plainest_sense_and_entry_alternatives(retriever: HintRetriever) -> None:
    # "Katze" is in two training sentences, "morgen" in two, "Hund" in none: the unseen word comes first.
    hints = retriever.hints("Die Katze und der Hund schlafen morgen.", k=3, max_count=None)
    assert hints[0] == "Hund = dog"
    assert "Katze = cat" in hints  # "cat" is in the English training text, "moggy" is not
    assert retriever.hints("Die Katze schläft.", k=3, max_count=1) == []  # too common to need a hint
    assert retriever.annotate("Der Köter bellt.", k=2, max_count=None) == "Der Köter bellt. || Köter = dog"
    assert retriever.annotate("Nichts hier.") == "Nichts hier."


def test_training_pairs_give_one_pair_per_target_alternative() -> None:
    pairs = [("Wie spät ist es?", "What time is it?; What's the time?"),
             ("Das Problem sind die Nachbarn.; Die Nachbarn sind das Problem.",
              "The problem is the neighbours.; The neighbours are the problem."),
             ("Das mag schon sein.; Das kann schon stimmen.", "That may be so."),
             ("Du musst klopfen, die Klingel geht nicht.", "You’ll have to knock; our doorbell doesn’t work."),
             ("Er arbeitet.", "He works.")]
    assert training_pairs(pairs) == [
        ("Wie spät ist es?", "What time is it?"), ("Wie spät ist es?", "What's the time?"),
        # Aligned alternatives: each source alternative with its own target alternative only.
        ("Das Problem sind die Nachbarn.", "The problem is the neighbours."),
        ("Die Nachbarn sind das Problem.", "The neighbours are the problem."),
        ("Das mag schon sein.; Das kann schon stimmen.", "That may be so."),  # 2 sources, 1 target: kept whole
        # "; " before a lower-case word inside one sentence is no separator.
        ("Du musst klopfen, die Klingel geht nicht.", "You’ll have to knock; our doorbell doesn’t work."),
        ("Er arbeitet.", "He works.")]


def test_word_tokens_and_headword_tokens() -> None:
    assert word_tokens("Die E-Mail kam um 10 Uhr.") == ["die", "e", "mail", "kam", "um", "10", "uhr"]
    assert headword_tokens("Die E-Mail kam um 10 Uhr.") == ["Die", "E-Mail", "kam", "um", "Uhr"]


LEXICON_PAIRS = [
    ("Hund", "mine car; mine truck"), ("Hund", "dog; hound"), ("Hund", "mine car"),
    ("schlafen; pennen", "to sleep; to kip"), ("Tisch", "table (furniture)"), ("der (des; dem; den)", "the"),
    ("jdn. anrufen", "to call sb."), ("Haus", "house /hse./"), ("Katze", "cat"), ("Katze", "moggy"),
    ("Fehlerschranke", "error bound"), ("es regnet", "it is raining"),
]


def test_lexicon_ranks_translations_by_english_usage_then_entry_count_then_order() -> None:
    lexicon = Lexicon(LEXICON_PAIRS, ["The dog sleeps.", "A dog and a cat.", "The table."])
    # "dog" occurs twice in the English text; "mine car" is given by two entries but "mine" never occurs.
    assert lexicon.translations("Hund") == ["dog", "mine car", "mine truck", "hound"]
    assert lexicon.translations("hund") == lexicon.translations("HUND")  # looked up lower-cased
    assert lexicon.translations("pennen") == ["sleep", "kip"]  # the infinitive's "to" goes, both alternatives count
    assert lexicon.translations("der") == ["the"]  # "(des; dem; den)" is a note, not three alternatives
    assert lexicon.translations("Tisch") == ["table"] and lexicon.translations("Haus") == ["house"]
    assert lexicon.translations("Katze") == ["cat", "moggy"]
    assert lexicon.word_translation("Fehlerschranke") is None and lexicon.translations("Fehlerschranke") == [
        "error bound"]
    assert "anrufen" not in lexicon and "es regnet" not in lexicon  # more than one German word: no headword
    assert lexicon.written["der"] == "der" and lexicon.written["hund"] == "Hund"
    # Without English text: the translation more entries give comes first, then the dictionary's order.
    plain = Lexicon(LEXICON_PAIRS)
    assert plain.translations("Hund") == ["mine car", "mine truck", "dog", "hound"]
    assert plain.translations("Katze") == ["cat", "moggy"]


def test_word_by_word_replaces_known_words_and_copies_the_rest() -> None:
    lexicon = Lexicon(LEXICON_PAIRS, ["The dog sleeps.", "A dog and a cat.", "The table."])
    assert lexicon.word_by_word("der Hund pennt unter dem Tisch.") == "The dog pennt unter dem table."
    assert lexicon.word_by_word("Fehlerschranke, 3 Katze!") == "Fehlerschranke, 3 cat!"
