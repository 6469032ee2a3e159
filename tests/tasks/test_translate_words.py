"""Translation that knows its words: the two baselines, the word-first curriculum, and what it never trains on.

Every corpus here is written by hand, so each expected retrieval, translation and word pair is known.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from glassformer.data.corpora import ParallelCorpus
from glassformer.tasks import translate as T

from .test_translate import LEXICON, _toy_pairs

TRAIN = [
    ("Der Hund schläft.", "The dog sleeps."),
    ("Die Katze schläft.", "The cat sleeps."),
    ("Der Hund bellt laut.", "The dog barks loudly."),
    ("Der Vogel singt.", "The bird sings."),
    ("Hallo, Hund!", "Hello, dog!"),
    ("Hallo, Katze!", "Hello, cat!"),
]
VALIDATION = [("Der Vogel fliegt.", "The bird flies."), ("Hallo", "Hello")]
TEST = [("Die Maus schläft.", "The mouse sleeps.; The mouse is asleep."), ("Der Vogel bellt.", "The bird barks.")]
EXTRA = [
    ("Hund", "dog; hound"), ("Katze", "cat"), ("Vogel", "bird"), ("schlafen", "to sleep"), ("der", "the"),
    ("die", "the"), ("singen", "to sing"), ("Maus; Mäuse", "mouse; mice"),
    # Pairs that share a side with a validation or test pair, or an alternative with one:
    ("Die Maus schläft.", "mouse asleep"), ("Mausschlaf", "The mouse is asleep."),
    ("Vogelflug", "The bird flies."), ("Der Vogel fliegt.", "bird flight"), ("Hallo; Servus", "hello; hi"),
]
LEAKY = EXTRA[-5:]
# Every side of the validation and test pairs and each alternative of one, written out by hand.
HELD_OUT = {"Der Vogel fliegt.", "The bird flies.", "Hallo", "Hello", "Die Maus schläft.",
            "The mouse sleeps.; The mouse is asleep.", "The mouse sleeps.", "The mouse is asleep.",
            "Der Vogel bellt.", "The bird barks."}


def _corpus(extra: list[tuple[str, str]] = EXTRA) -> ParallelCorpus:
    return ParallelCorpus(list(TRAIN), list(VALIDATION), list(TEST), list(extra), {"source": "hand-made"})


pytestmark = pytest.mark.usefixtures("one_thread")


# --- nothing held out is trained on ----------------------------------------------------------------

def test_held_out_sides_are_every_validation_and_test_side_and_alternative() -> None:
    assert T.held_out_sides(_corpus()) == HELD_OUT


def test_dictionary_pairs_never_share_a_side_with_validation_or_test() -> None:
    corpus = _corpus()
    assert T.training_dictionary(corpus) == EXTRA[:-5]
    assert sorted(T._phrase_pairs(corpus, 100, seed=0)) == sorted(EXTRA[:-5])
    words = T.dictionary_pairs(corpus, 100)
    # Word counts in the training sources: der 3, hund 3, hallo 2, katze 2, schläft 2, then one each
    # (alphabetical); hallo, schläft, bellt, laut and singt have no entry.
    assert words == [("der", "the"), ("Hund", "dog"), ("Katze", "cat"), ("die", "the"), ("Vogel", "bird")]
    assert T.dictionary_pairs(corpus, 2) == words[:2]
    # Even from a lexicon of every pair, leaky ones included, no word pair with a held-out side comes out:
    # ("Hallo", "hello") would, as "hallo" is the third most frequent word.
    from glassformer.data.dictionary import Lexicon

    everything = T.dictionary_pairs(corpus, 100, Lexicon(EXTRA))
    assert everything == words
    assert not {side for pair in everything for side in pair} & HELD_OUT


def test_the_mixer_yields_no_held_out_side_in_either_phase() -> None:
    """Decode every pair the curriculum hands the trainer, word phase and sentence phase, and look for held-out text."""
    corpus = _corpus()
    tokenizer = T.train_tokenizer(TRAIN + EXTRA, 300)
    recipe = T.get_preset("quick", max_length=32, max_tokens=120, dictionary_words=100, dictionary_steps=5,
                          dictionary_share=0.3)
    sentences = T.encode_pairs(tokenizer, T.training_pairs(corpus.train), 32)
    words = T.encode_pairs(tokenizer, T.dictionary_pairs(corpus, 100), 32)
    data = T.curriculum_data(sentences, words, recipe, seed=0)
    assert isinstance(data, T.CurriculumBatches)
    step = 0
    data.follow(lambda: step)
    seen = set()
    for step in range(12):
        for index in range(len(data)):
            for src, tgt in data[index]:
                seen |= {tokenizer.decode(src[:-1]), tokenizer.decode(tgt[:-1])}
    assert not seen & HELD_OUT
    assert {"Hund", "dog", "Der Hund schläft.", "The dog sleeps."} <= seen  # words and sentences both came


# --- the curriculum's schedule -----------------------------------------------------------------------

def _fake(n: int, tag: int) -> list[T.Example]:
    return [([tag, i, 2], [tag, i, 2]) for i in range(n)]


def test_curriculum_gives_word_batches_first_then_sentences_with_their_share() -> None:
    sentence_batches = [_fake(6, 100 + b) for b in range(4)]  # 4 batches of 6 sentences
    words = _fake(40, 7)
    data = T.CurriculumBatches(sentence_batches, words, word_steps=10, share=0.25, max_tokens=60, seed=3)
    with pytest.raises(RuntimeError, match="follow"):
        data[0]
    step = 0
    data.follow(lambda: step)
    assert len(data) == 4
    word_batches = T.token_batches(words, 60, 3)  # 60 tokens of 6-token pairs: 10 pairs a batch
    assert len(word_batches) == 4
    served = []
    for step in range(10):
        batch = data[step % 4]
        assert all(src[0] == 7 for src, _ in batch)  # only word pairs, whatever the index
        served.append(batch)
    # Each pass over the word batches serves every one of them once, in a new order.
    assert sorted(map(str, served[:4])) == sorted(map(str, word_batches))
    assert served[:4] != served[4:8]
    for step in (10, 11, 50):
        for index in range(4):
            batch = data[index]
            assert batch[:6] == sentence_batches[index]
            extra = batch[6:]
            assert len(extra) == 2 and all(src[0] == 7 for src, _ in extra)  # 2 / (6 + 2) = 0.25
            assert data[index] == batch  # the same (step, index) gives the same batch: a resumed run replays it


def test_each_process_takes_its_own_word_batch_under_ddp() -> None:
    words = _fake(40, 7)
    ranks = [T.CurriculumBatches([_fake(6, 100)], words, word_steps=10, share=0.0, max_tokens=60, seed=0,
                                 world_size=2, rank=r) for r in range(2)]
    single = T.CurriculumBatches([_fake(6, 100)], words, word_steps=10, share=0.0, max_tokens=60, seed=0)
    clock = {"ranks": 0, "single": 0}
    for data in ranks:
        data.follow(lambda: clock["ranks"])
    single.follow(lambda: clock["single"])
    for step in range(3):  # the two processes together read what one process reads in twice the steps
        clock["ranks"] = step
        together = [ranks[0][0], ranks[1][0]]
        alone = []
        for slot in (2 * step, 2 * step + 1):
            clock["single"] = slot
            alone.append(single[0])
        assert together == alone and together[0] != together[1]


def test_no_words_or_no_schedule_gives_the_plain_batches() -> None:
    sentences = _fake(30, 100)
    recipe = T.get_preset("quick", max_length=8, max_tokens=60)
    assert T.curriculum_data(sentences, [], recipe, seed=0) == T.token_batches(sentences, 60, 0)
    off = T.get_preset("quick", max_length=8, max_tokens=60, dictionary_steps=0, dictionary_share=0.0)
    assert T.curriculum_data(sentences, _fake(5, 7), off, seed=0) == T.token_batches(sentences, 60, 0)


def test_preset_fields_validate_and_the_curriculum_is_off_by_default() -> None:
    # Measured worse on the quick preset (benchmarks/RESULTS.md, 6 December): off until a recipe beats it.
    for name in ("quick", "full"):
        preset = T.get_preset(name)
        assert (preset.dictionary_words, preset.dictionary_steps, preset.dictionary_share) == (0, 0, 0.0)
    with pytest.raises(ValueError, match=r"dictionary_share must be in \[0, 1\)"):
        T.get_preset("quick", dictionary_share=1.0)
    with pytest.raises(ValueError, match="dictionary_words and dictionary_steps must be >= 0"):
        T.get_preset("quick", dictionary_steps=-1)


# --- the baselines -------------------------------------------------------------------------------------

def test_retrieval_returns_the_pair_sharing_the_rarest_words() -> None:
    retrieval = T.RetrievalBaseline(TRAIN)
    n = len(TRAIN)
    # df: der 3, hund 3, schläft 2, katze 2, die 1, bellt 1, laut 1, vogel 1, singt 1, hallo 2.
    assert retrieval.idf["der"] == pytest.approx(math.log(n / 3)) and retrieval.idf["bellt"] == pytest.approx(
        math.log(n))
    # "Der Vogel bellt.": pair 2 shares der + bellt = log 2 + log 6, pair 3 der + vogel = the same: a tie that
    # the shorter English side breaks ("The bird sings." has 3 words, "The dog barks loudly." 4).
    assert retrieval.nearest("Der Vogel bellt.") == 3
    assert retrieval.nearest("Der Hund bellt.") == 2  # all three words: 2 log 2 + log 6
    assert retrieval.nearest("die Maus") == 1  # "die" occurs only in pair 1
    # Nothing shared: the shortest English side ("Hello, dog!" and "Hello, cat!" have 2 words), the first of them.
    assert retrieval.nearest("Keine Ahnung.") == 4
    # "die" (log 6) outweighs "der" + "hund" (2 log 2).
    assert retrieval.translate(["Die Maus schläft.", "Hallo Katze", "Der Hund und die Maus."]) == [
        "The cat sleeps.", "Hello, cat!", "The cat sleeps."]


def test_retrieval_ties_go_to_the_shorter_english_then_the_first() -> None:
    pairs = [("Ein Haus.", "A house it is."), ("Ein Haus.", "A house."), ("Ein Haus!", "A home."),
             ("Das Haus.", "The house.")]
    # "ein" is in three pairs (log 4/3), "haus" in all four (weight 0): pairs 0-2 tie, 1 and 2 are shortest.
    assert T.RetrievalBaseline(pairs).nearest("ein Haus") == 1


def test_word_by_word_uses_the_training_dictionary_only() -> None:
    baselines = T.Baselines(_corpus())
    assert baselines.word_by_word(["Die Maus schläft.", "Der Vogel bellt."]) == ["The mouse schläft.",
                                                                                "The bird bellt."]
    # The leaky pair ("Mausschlaf", "The mouse is asleep.") is not in the lexicon.
    assert "mausschlaf" not in baselines.lexicon


def test_baseline_scores_are_sacrebleus_on_the_known_outputs() -> None:
    import sacrebleu

    scores = T.Baselines(_corpus()).scores(TEST)
    refs = [["The mouse sleeps.", "The bird barks."], ["The mouse is asleep.", None]]
    retrieval = ["The cat sleeps.", "The bird sings."]
    words = ["The mouse schläft.", "The bird bellt."]
    assert scores["retrieval_bleu"] == pytest.approx(sacrebleu.corpus_bleu(retrieval, refs).score)
    assert scores["retrieval_chrf"] == pytest.approx(sacrebleu.corpus_chrf(retrieval, refs).score)
    assert scores["dictionary_bleu"] == pytest.approx(sacrebleu.corpus_bleu(words, refs).score)
    assert scores["dictionary_chrf"] == pytest.approx(sacrebleu.corpus_chrf(words, refs).score)


def test_lookup_shows_the_retrieved_pair_and_each_words_translations() -> None:
    found = T.Baselines(_corpus()).lookup("Der Hund und die Maus schlafen, der Hund!")
    assert (found.retrieved_source, found.retrieved) == ("Die Katze schläft.", "The cat sleeps.")  # "die": rarest
    assert found.word_by_word == "The dog und the mouse sleep, the dog!"
    assert found.words == [("Der", ["the"]), ("Hund", ["dog", "hound"]), ("und", []), ("die", ["the"]),
                           ("Maus", ["mouse", "mice"]), ("schlafen", ["sleep"]), ("der", ["the"])]


def test_report_says_when_the_model_loses_to_retrieval(monkeypatch: pytest.MonkeyPatch) -> None:
    figures = {"retrieval_bleu": 3.34, "retrieval_chrf": 20.4, "dictionary_bleu": 2.6, "dictionary_chrf": 26.7}
    assert "LOSES to the retrieval baseline" in T.baseline_line(1.8, figures)
    assert "beats the retrieval baseline" in T.baseline_line(4.0, figures)
    assert "retrieval BLEU 3.34, chrF 20.40; word by word BLEU 2.60, chrF 26.70" in T.baseline_line(4.0, figures)
    assert "none" in T.baseline_line(4.0, {})
    monkeypatch.setitem(T.MEASURED, "full", None)
    assert "no measured figures yet" in T.expected_line(T.get_preset("full"))
    monkeypatch.setitem(T.MEASURED, "quick", T.Measured(4.1, 22.5, 3.4, 290, "2 idle cores, bf16"))
    assert T.expected_line(T.get_preset("quick", alpha=2.0)) == (
        "expected from the 'quick' preset: test BLEU 4.10, chrF 22.5 (retrieval baseline 3.40) in 4:50 on "
        "2 idle cores, bf16")
    assert T.expected_line(T.get_preset("quick", max_steps=10)).endswith("your settings differ from it")


def test_a_run_of_the_preset_is_not_told_its_settings_differ_after_tuning(monkeypatch: pytest.MonkeyPatch) -> None:
    # `train` picks the length penalty and the dictionary weight on validation after training; the run's saved
    # preset carries the picks, but it was trained as the preset, and the report compares what it trained with.
    monkeypatch.setitem(T.MEASURED, "full", T.Measured(6.0, 27.0, 3.5, 1600, "2 idle cores, fp32"))
    full = T.get_preset("full")
    tuned = replace(full, alpha=2.0, dictionary_bias=full.dictionary_bias + 1.0)
    figures = dict(out_dir=Path("m"), validation_loss=2.8, bleu=6.0, chrf=27.0, bleu_greedy=5.0, chrf_greedy=26.0,
                   n_test=1015, beam_size=4, steps=5000, train_seconds=1500.0, total_seconds=1600.0)
    assert T.expected_line(tuned).endswith("your settings differ from it")  # the tuned weight alone looks changed
    report = T.TranslateRun(preset=tuned, trained=full, **figures).report()
    assert "expected from the 'full' preset: test BLEU 6.00" in report and "differ" not in report
    assert "length-penalty alpha 2.0" in report  # the picks are still what the report shows for the search
    changed = T.TranslateRun(preset=tuned, trained=replace(full, dropout=0.2), **figures).report()
    assert "your settings differ from it" in changed


# --- a tiny run with the curriculum, end to end --------------------------------------------------------

@pytest.mark.slow  # a ~15 s training run
def test_tiny_run_with_the_curriculum_trains_scores_and_reports_the_baselines(tmp_path, monkeypatch) -> None:
    corpus = ParallelCorpus(_toy_pairs(400, 0), _toy_pairs(30, 1), _toy_pairs(30, 2), list(LEXICON.items()),
                            {"source": "toy", "seed": 7})
    run = T.train("quick", tmp_path / "model", corpus=corpus, progress=False, vocab_size=300, d_model=64,
                  n_heads=4, n_encoder_layers=2, n_decoder_layers=2, d_ff=128, dropout=0.0, max_length=32,
                  max_tokens=1000, max_steps=80, warmup_steps=10, eval_every=80, lr=3e-3, precision="fp32",
                  beam_size=2, tune_alpha=False, dictionary_words=12, dictionary_steps=30, dictionary_share=0.2,
                  word_dropout=0.0)
    extra = json.loads((tmp_path / "model" / "config.json").read_text())["extra"]
    assert (extra["seed"], extra["train_seed"]) == (7, 0)  # the split's seed, which `evaluate` splits again with
    saved = extra["metrics"]
    assert saved["dictionary_pairs"] == 12 and saved["steps"] == 80
    expected = T.Baselines(corpus).scores(corpus.test)
    assert {key: run.json()[key] for key in expected} == pytest.approx(expected)
    assert "baselines on the same split: retrieval BLEU" in run.report()
    assert T.MEASURED["quick"].line() in run.report() and "your settings differ from it" in run.report()
    translator = T.Translator.load(tmp_path / "model")
    lone = translator.translate(list(LEXICON), beam_size=1)
    assert sum(english.rstrip(".") == LEXICON[german] for german, english in zip(LEXICON, lone)) >= 10

    # `eval` prints the baselines of the model's training data beside the model's own figures.
    data = tmp_path / "pairs.tsv"
    data.write_text("".join(f"{s}\t{t}\n" for s, t in corpus.test), encoding="utf-8")
    assert "retrieval_bleu" not in T.evaluate(tmp_path / "model", data=str(data), beam_size=1)  # toy data: none
    monkeypatch.setattr(T, "baselines_for", lambda translator: T.Baselines(corpus))
    result = T.evaluate(tmp_path / "model", data=str(data), beam_size=1)
    assert {key: result[key] for key in expected} == pytest.approx(expected)
    assert result["beats_retrieval"] == (result["bleu"] >= expected["retrieval_bleu"])


def test_a_budgeted_curriculum_times_the_sentence_batches(tmp_path, monkeypatch) -> None:
    # The word-first steps train on short word pairs; a time budget must time (and plan from) the sentence batches
    # after them, and so never plans again from the word steps at the warm-up's end.
    seen: dict[str, object] = {}

    class Planned(Exception):
        pass

    def trainer(model, config, *args, **kwargs):
        seen["config"] = config
        raise Planned

    monkeypatch.setattr(T, "Trainer", trainer)
    corpus = ParallelCorpus(_toy_pairs(200, 0), _toy_pairs(20, 1), _toy_pairs(20, 2), list(LEXICON.items()),
                            {"source": "toy", "seed": 7})
    settings = dict(corpus=corpus, progress=False, vocab_size=300, d_model=32, n_heads=2, n_encoder_layers=1,
                    n_decoder_layers=1, d_ff=64, max_length=32, max_tokens=1000)  # the preset's 4.3-minute budget
    with pytest.raises(Planned):
        T.train("quick", tmp_path / "words", dictionary_words=12, dictionary_steps=30, **settings)
    assert seen["config"].timing_step == 30 and seen["config"].max_minutes is not None
    with pytest.raises(Planned):
        T.train("quick", tmp_path / "plain", **settings)
    assert seen["config"].timing_step == 0


def test_word_dropout_hides_real_tokens_at_its_rate_and_only_in_training() -> None:
    import torch

    torch.manual_seed(0)
    mask = torch.ones(400, 50, dtype=torch.long)
    mask[:, 40:] = 0  # padding stays padding
    dropped = T.drop_words(mask, 0.25)
    assert (dropped[:, 0] == 1).all() and (dropped[:, 40:] == 0).all()
    rate = 1 - dropped[:, 1:40].float().mean().item()
    assert abs(rate - 0.25) < 0.01  # 15,600 draws: the standard error is 0.0035

    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, src_ids, tgt_ids, src_mask, tgt_mask):
            seen.append((src_mask.clone(), tgt_mask.clone()))
            return type("Out", (), {"logits": torch.zeros(*tgt_ids.shape, 5, requires_grad=True)})()

    batch = {"src_ids": torch.ones(8, 30, dtype=torch.long), "tgt_ids": torch.ones(8, 30, dtype=torch.long),
             "src_attention_mask": torch.ones(8, 30, dtype=torch.long),
             "tgt_attention_mask": torch.ones(8, 30, dtype=torch.long), "labels": torch.ones(8, 30, dtype=torch.long)}
    loss_fn, model = T.smoothed_loss(0.1, word_dropout=0.5), Recorder()
    loss_fn(model.train(), batch)
    assert all(0 < int((m == 0).sum()) < m.numel() for m in seen[-1])  # both sides lose words in training
    loss_fn(model.eval(), batch)
    assert all((m == 1).all() for m in seen[-1])  # scoring sees every word
    assert (batch["src_attention_mask"] == 1).all()  # the batch itself is not changed
    with pytest.raises(ValueError, match="word_dropout"):
        T.get_preset("quick", word_dropout=1.0)
