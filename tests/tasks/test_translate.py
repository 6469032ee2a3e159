"""Translation task: batching, teacher forcing, a tiny end-to-end run, save/reload, sacrebleu scores and the CLI."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from glassformer.cli import main
from glassformer.data.corpora import ParallelCorpus
from glassformer.inference.generate import greedy_search
from glassformer.tasks import translate as T
from tests.conftest import torch_threads

# A toy language pair: each "German" word has one English word, in the same order.
LEXICON = {"der": "the", "hund": "dog", "katze": "cat", "sieht": "sees", "frisst": "eats", "rote": "red",
           "kleine": "small", "maus": "mouse", "ball": "ball", "heute": "today", "nicht": "not", "gern": "gladly"}


pytestmark = pytest.mark.usefixtures("one_thread")


def _toy_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    words = list(LEXICON)
    pairs = []
    for _ in range(n):
        chosen = [rng.choice(words) for _ in range(rng.randint(3, 6))]
        pairs.append((" ".join(chosen) + ".", " ".join(LEXICON[w] for w in chosen) + "."))
    return pairs


def _toy_corpus() -> ParallelCorpus:
    return ParallelCorpus(_toy_pairs(600, 0), _toy_pairs(40, 1), _toy_pairs(40, 2), [], {"source": "toy"})


TINY = dict(vocab_size=300, d_model=64, n_heads=4, n_encoder_layers=2, n_decoder_layers=2, d_ff=128, dropout=0.0,
            max_length=32, max_tokens=1500, max_steps=150, warmup_steps=15, eval_every=75, lr=3e-3, precision="fp32",
            beam_size=3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("translate") / "model"
    with torch_threads(1):  # given back after: a module fixture must not leave the session on one thread
        return T.train("quick", out, corpus=_toy_corpus(), progress=False, **TINY)


def test_token_batches_fit_the_budget_and_cover_every_pair_once() -> None:
    rng = random.Random(0)
    examples = [([1] * rng.randint(1, 30), [2] * rng.randint(1, 30)) for _ in range(500)]
    batches = T.token_batches(examples, max_tokens=200, seed=0)
    assert sorted(id(p) for b in batches for p in b) == sorted(id(p) for p in examples)
    for batch in batches:
        padded = len(batch) * (max(len(s) for s, _ in batch) + max(len(t) for _, t in batch))
        assert padded <= 200 or len(batch) == 1


def test_collator_builds_teacher_forcing_inputs_and_both_masks() -> None:
    collate = T.Seq2SeqCollator(pad_id=0, bos_id=1)
    batch = collate([[([5, 6, 2], [7, 8, 9, 2]), ([5, 2], [7, 2])]])
    assert batch["src_ids"].tolist() == [[5, 6, 2], [5, 2, 0]]
    assert batch["src_attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[7, 8, 9, 2], [7, 2, -100, -100]]
    # The decoder reads <s> y_1 .. y_{T-1}; positions past a short target's end are masked and unscored.
    assert batch["tgt_ids"][:, :2].tolist() == [[1, 7], [1, 7]] and batch["tgt_ids"][0].tolist() == [1, 7, 8, 9]
    assert batch["tgt_attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]


def test_phrase_pairs_are_tagged_and_sentences_are_not() -> None:
    sentences = _toy_pairs(50, 0)
    phrases = [(german, english) for german, english in LEXICON.items()]
    tok = T.train_tokenizer(sentences + phrases, 300, [T.PHRASE])
    special = tok.special_tokens
    assert list(special) == [T.PAD, T.BOS, T.EOS, T.PHRASE]
    examples = T.training_examples(tok, sentences, phrases, max_length=32)
    assert len(examples) == len(sentences) + len(phrases)
    tag, eos = special[T.PHRASE], special[T.EOS]
    for (src, tgt), (german, english) in zip(examples, sentences + phrases):
        is_phrase = (german, english) in phrases
        assert (src[0] == tag) is is_phrase and tag not in src[1:] and tag not in tgt
        body = src[1:-1] if is_phrase else src[:-1]
        assert src[-1] == eos and tok.decode(body) == german and tok.decode(tgt[:-1]) == english
    # Without the token (the default vocabulary) nothing is prepended.
    plain = T.train_tokenizer(sentences + phrases, 300)
    assert T.PHRASE not in plain.special_tokens
    assert all(src == plain.encode_ordinary(de) + [plain.special_tokens[T.EOS]]
               for (src, _), (de, _) in zip(T.training_examples(plain, sentences, phrases, 32), sentences + phrases))


def test_smoothed_loss_is_torch_label_smoothing_formula() -> None:
    """(1 − ε)·NLL + ε·mean over classes of −log p, averaged over non-ignored tokens (Szegedy et al. 2016)."""
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 7)
    labels = torch.tensor([[1, 2, -100], [3, -100, -100]])

    class Fixed(torch.nn.Module):
        def forward(self, *args):
            return type("Out", (), {"logits": logits})()

    batch = {"src_ids": torch.zeros(2, 1, dtype=torch.long), "tgt_ids": None, "src_attention_mask": None,
             "tgt_attention_mask": None, "labels": labels}
    loss = T.smoothed_loss(0.1)(Fixed(), batch)
    logp = logits.log_softmax(-1)[labels != -100]
    target = labels[labels != -100]
    expected = (0.9 * -logp.gather(1, target[:, None])[:, 0] + 0.1 * -logp.mean(-1)).mean()
    torch.testing.assert_close(loss, expected)


def test_sacrebleu_scores_known_values() -> None:
    assert T.corpus_scores(["the cat sat on the mat ."], ["the cat sat on the mat ."])["bleu"] == pytest.approx(100)
    # By hand: precisions 5/6, 3/5, 1/4 and 0/3 → 1/(2·3) (sacrebleu's "exp" smoothing), brevity penalty 1.
    scores = T.corpus_scores(["the cat sat on the mat"], ["the cat is on the mat"])
    assert scores["bleu"] == pytest.approx(100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25, abs=1e-3)
    assert scores["n"] == 1 and 0 < scores["chrf"] < 100
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        T.corpus_scores(["a", "b"], ["a"])


@pytest.mark.slow  # shares the ~20 s tiny training run
def test_tiny_run_learns_far_below_the_uniform_baseline(trained: T.TranslateRun) -> None:
    uniform = math.log(TINY["vocab_size"])
    assert trained.validation_loss < 0.15 * uniform  # nats per target token
    assert trained.bleu > 50 and trained.n_test == 40
    assert (trained.out_dir / "config.json").is_file() and (trained.out_dir / "tokenizer").is_dir()


@pytest.mark.slow  # shares the ~20 s tiny training run
def test_save_reload_gives_identical_outputs(trained: T.TranslateRun) -> None:
    reloaded = T.Translator.load(trained.out_dir)
    texts = [source for source, _ in _toy_pairs(8, 5)]
    first = reloaded.translate(texts, beam_size=1)
    again = T.Translator.load(trained.out_dir)
    assert again.translate(texts, beam_size=1) == first
    assert again.translate(texts, beam_size=3) == reloaded.translate(texts, beam_size=3)
    # The reloaded weights are the trained ones: same logits as a fresh model loaded by hand.
    tok = reloaded.tokenizer
    src = torch.tensor([tok.encode_ordinary(texts[0]) + [tok.special_tokens[T.EOS]]])
    a = greedy_search(reloaded.model, src, max_len=20)[0]
    b = greedy_search(again.model, src, max_len=20)[0]
    assert a.tokens == b.tokens and a.log_prob == b.log_prob
    assert "dog" in T.Translator.load(trained.out_dir).translate(["der hund."], beam_size=1)[0]


@pytest.mark.slow  # shares the ~20 s tiny training run
def test_beam_is_not_worse_than_greedy_on_the_toy_test_split(trained: T.TranslateRun) -> None:
    translator = T.Translator.load(trained.out_dir)
    pairs = _toy_corpus().test
    greedy = T.score(translator, pairs, beam_size=1)
    beam = T.score(translator, pairs, beam_size=3)
    assert beam["bleu"] >= greedy["bleu"] - 1.0


@pytest.mark.slow  # shares the ~20 s tiny training run
def test_alpha_is_the_grid_value_with_the_best_validation_bleu(trained: T.TranslateRun) -> None:
    """The saved exponent wins sacrebleu's BLEU on the validation split among ALPHA_GRID (ties: the earlier)."""
    import sacrebleu

    translator = T.Translator.load(trained.out_dir)
    assert translator.alpha == trained.preset.alpha and translator.alpha in T.ALPHA_GRID
    pairs = _toy_corpus().validation
    bleu = [sacrebleu.corpus_bleu(translator.translate([s for s, _ in pairs], beam_size=3, alpha=alpha),
                                  [[r for _, r in pairs]]).score for alpha in T.ALPHA_GRID]
    assert T.ALPHA_GRID[bleu.index(max(bleu))] == trained.preset.alpha
    metrics = json.loads((trained.out_dir / "config.json").read_text())["extra"]["metrics"]
    assert metrics["alpha"] == trained.preset.alpha
    assert [metrics["validation_bleu_by_alpha"][str(a)] for a in T.ALPHA_GRID] == pytest.approx(bleu, abs=1e-3)
    # The run reports greedy next to beam on the test split; both are sacrebleu's scores of that search.
    greedy = T.score(translator, _toy_corpus().test, beam_size=1)
    assert trained.bleu_greedy == pytest.approx(greedy["bleu"]) and trained.chrf_greedy == pytest.approx(greedy["chrf"])


@pytest.mark.slow  # shares the ~20 s tiny training run
def test_cli_translate_and_eval_json(trained: T.TranslateRun, tmp_path, capsys: pytest.CaptureFixture) -> None:
    assert main(["translate", str(trained.out_dir), "--json", "--beam", "2", "der hund.", "die katze sieht."]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [set(row) for row in out] == [{"source", "translation"}] * 2
    assert out[0]["source"] == "der hund."

    data = tmp_path / "pairs.tsv"
    data.write_text("".join(f"{s}\t{t}\n" for s, t in _toy_corpus().test), encoding="utf-8")
    assert main(["eval", str(trained.out_dir), "--json", "--data", str(data), "--beam", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"bleu", "chrf", "n"} <= set(result) and result["n"] == 40 and result["beam_size"] == 1
    assert result["bleu"] > 50


@pytest.mark.slow  # shares the ~20 s tiny training run
def test_errors_say_what_was_expected(trained: T.TranslateRun, tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown translate preset 'huge'"):
        T.get_preset("huge")
    with pytest.raises(ValueError, match="text 1 is empty"):
        T.Translator.load(trained.out_dir).translate(["der hund.", "  "])
    bad = tmp_path / "bad.tsv"
    bad.write_text("only one column\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.tsv:1: 1 field"):
        T.evaluate(trained.out_dir, data=str(bad))


@pytest.mark.slow  # shares the ~20 s tiny training run
def test_dictionary_hints_are_appended_in_training_and_at_test_time_alike(trained: T.TranslateRun) -> None:
    corpus = ParallelCorpus(_toy_corpus().train, [], [], [("Hund", "dog"), ("Katze", "cat")], {"source": "toy"})
    hints = T.SourceHints(corpus, k=1, max_count=10**9)
    assert hints("Der Hund.") == "Der Hund. || Hund = dog"
    base = T.Translator.load(trained.out_dir)
    hinted = T.Translator(base.model, base.tokenizer, base.max_length, hints=hints)
    eos = base.tokenizer.special_tokens[T.EOS]
    assert hinted._source_ids(["Der Hund."]) == [base.tokenizer.encode_ordinary("Der Hund. || Hund = dog") + [eos]]
    assert T._hinted([("Der Hund.", "The dog.")], hints, base.tokenizer, 64) == [("Der Hund. || Hund = dog",
                                                                                    "The dog.")]
    # A hint that would push the source past max_length is left off, in training as at test time.
    assert T._hinted([("Der Hund.", "The dog.")], hints, base.tokenizer, 3) == [("Der Hund.", "The dog.")]
    assert T.get_preset("quick").hints == 0 and T.get_preset("full").hints == 0


def test_fuzzy_matches_append_the_nearest_other_training_pair() -> None:
    # Word weights log(N/df) over the 4 sources: der, hund, schläft 0.29 each; die, katze, bellt, laut 1.39 each.
    pairs = [("Der Hund schläft.", "The dog sleeps."), ("Der Hund schläft.", "The dog is asleep."),
             ("Die Katze schläft.", "The cat sleeps."), ("Der Hund bellt laut.", "The dog barks loudly.")]
    fuzzy = T.FuzzyMatches(pairs)
    # A training source never meets its own pairs (both alternatives): "der hund" (0.58) beats "schläft" (0.29).
    assert fuzzy("Der Hund schläft.") == "Der Hund schläft. || The dog barks loudly."
    # A new source gets what the retrieval baseline answers: "die katze" (2.77) beats "bellt" (1.39).
    assert fuzzy("Die Katze bellt.") == "Die Katze bellt. || The cat sleeps."
    assert fuzzy.match("Die Katze bellt.") == pairs[2]
    with pytest.raises(ValueError, match="choose one"):
        T.get_preset("quick", hints=2, fuzzy=True)


def test_a_fuzzy_model_reads_its_matches_again_when_reloaded(trained: T.TranslateRun, monkeypatch, tmp_path) -> None:
    # Reloading rebuilds the matches from the de-en training pairs of the recorded split (here the toy corpus).
    import shutil

    directory = tmp_path / "fuzzy"
    shutil.copytree(trained.out_dir, directory)
    path = directory / "config.json"
    config = json.loads(path.read_text())
    extra = config["extra"]
    config["extra"] = {**extra, "data": "de-en", "preset": {**extra["preset"], "fuzzy": True}}
    path.write_text(json.dumps(config))
    seeds = []
    monkeypatch.setattr(T, "load_de_en", lambda seed, quiet: seeds.append(seed) or _toy_corpus())
    translator = T.Translator.load(directory, verify=False)
    assert isinstance(translator.hints, T.FuzzyMatches) and seeds == [int(extra["seed"])]
    source = "die rote katze."  # "die" is no toy word, so no training source is this one
    eos = translator.tokenizer.special_tokens[T.EOS]
    expected = translator.tokenizer.encode_ordinary(
        source + " || " + T.RetrievalBaseline(_toy_corpus().train).translate([source])[0])
    assert len(expected) < translator.max_length  # it fits, so the model reads it
    assert translator._source_ids([source]) == [expected + [eos]]


def test_dictionary_bias_favours_the_translations_of_the_less_common_source_words() -> None:
    from glassformer.data.dictionary import Lexicon

    lexicon = Lexicon([("Hund", "dog"), ("Tisch", "table; desk"), ("unter", "under"), ("schlafen", "to sleep")],
                      ["the dog is under the table", "a desk"])
    tokenizer = T.train_tokenizer(_toy_pairs(200, 3), 300)
    # "Hund" is seen three times in training: more than max_count=2, so the model is left to it.
    dictionary = T.DictionaryBias(lexicon, ["Der Hund bellt.", "Ein Hund.", "Hund!", "unter"], tokenizer, max_count=2)
    pieces = dictionary.words("Der Hund schläft unter den Tischen.")  # "Tischen" → "Tisch" without its ending
    assert pieces == [tuple(tokenizer.encode_ordinary(" under")), tuple(tokenizer.encode_ordinary(" table"))]
    assert dictionary.translation("Tischen") == "table" and dictionary.translation("Hunde") == "dog"
    assert dictionary.translation("schläft") is None  # no headword, no ending that makes one
    with pytest.raises(ValueError, match="dictionary_bias must be >= 0"):
        T.get_preset("quick", dictionary_bias=-1.0)


def test_dictionary_training_scores_each_reference_as_the_biased_search_would() -> None:
    """The training loss with the lexicon bias equals the negative log-probability of each reference token under
    WordBias.apply, the distribution the search ranks by, fed the reference prefix (the independent reference)."""
    from glassformer.data.dictionary import Lexicon
    from glassformer.inference.generate import WordBias
    from glassformer.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer

    lexicon = Lexicon([("Hund", "dog"), ("Tisch", "table"), ("Vogel", "bird")], ["the dog", "a table"])
    tokenizer = T.train_tokenizer(_toy_pairs(200, 3), 300)
    dictionary = T.DictionaryBias(lexicon, [], tokenizer)
    pairs = [("Der Hund schläft unter dem Tisch.", "The dog sleeps under the table."),
             ("Der Vogel singt.", "A bird is singing, not a dog."), ("Hallo.", "Hello.")]
    examples = T.encode_pairs(tokenizer, pairs, 64)
    bias = T.TrainingBias(dictionary, 2.5)
    bias.add([source for source, _ in pairs], examples)
    special = tokenizer.special_tokens
    batch = T.Seq2SeqCollator(special[T.PAD], special[T.BOS], bias)([examples])
    assert batch["bias_index"].shape[1] == 3 and len(batch["bias_index"]) == len(batch["bias_value"]) > 0
    torch.manual_seed(0)
    model = Seq2SeqTransformer(Seq2SeqConfig(vocab_size=tokenizer.vocab_size, d_model=32, n_heads=2,
                                             n_encoder_layers=1, n_decoder_layers=1, d_ff=64, dropout=0.0,
                                             pad_token_id=special[T.PAD], bos_token_id=special[T.BOS],
                                             eos_token_id=special[T.EOS])).eval()
    with torch.no_grad():
        ours = T.token_nll(model, [batch])
        plain = T.token_nll(model, [{k: v for k, v in batch.items() if not k.startswith("bias_")}])
        logits = model(batch["src_ids"], batch["tgt_ids"], batch["src_attention_mask"],
                       batch["tgt_attention_mask"]).logits.float()
    total = 0.0
    for row, ((source, _), (_, tgt)) in enumerate(zip(pairs, examples)):
        search = WordBias([dictionary.words(source)], 2.5)
        for t, label in enumerate(tgt):
            logp = search.apply(logits[row, t].log_softmax(-1)[None], [0], [tgt[:t]])[0]
            total -= float(logp[label])
    assert ours["n_tokens"] == sum(len(tgt) for _, tgt in examples)
    assert ours["loss"] == pytest.approx(total / ours["n_tokens"], rel=1e-5)
    assert abs(ours["loss"] - plain["loss"]) > 1e-3  # the favoured words moved the loss
    with pytest.raises(ValueError, match="set dictionary_bias > 0"):
        T.get_preset("quick", dictionary_bias=0.0, dictionary_training=True)


def test_dictionary_training_finds_the_words_in_the_sentence_and_keys_them_by_the_hinted_ids() -> None:
    """With hints, training reads `sentence || hints`: the favoured pieces belong to that encoding, and the words
    come from the sentence alone (the hint's "Tisch" is not favoured); a pair too long for training is skipped."""
    from glassformer.data.dictionary import HINT_SEPARATOR, Lexicon

    lexicon = Lexicon([("Vogel", "bird"), ("Tisch", "table")], ["the bird", "a table"])
    tokenizer = T.train_tokenizer(_toy_pairs(200, 3), 300)
    bias = T.TrainingBias(T.DictionaryBias(lexicon, [], tokenizer), 2.0)
    pairs = [("Der Vogel singt.", "The bird sings."), ("Vogel " * 40, "bird " * 40)]

    def hints(source: str) -> str:
        return source + HINT_SEPARATOR + "Tisch = table"

    T._add_bias(bias, pairs, T._hinted(pairs, hints, tokenizer, 32), tokenizer, max_length=32)
    hinted = T.encode_pairs(tokenizer, [(hints(pairs[0][0]), pairs[0][1])], 32)
    plain = T.encode_pairs(tokenizer, [pairs[0]], 32)
    bird = tokenizer.encode_ordinary(" bird")
    index = T.Seq2SeqCollator(0, 1, bias)([hinted])["bias_index"]
    assert {tuple(map(int, row[2:])) for row in index} <= {(token,) for token in bird}  # never " table"
    assert int(index[0, 1]) == 0 and int(index[0, 2]) == bird[0]  # favoured from the first position
    assert len(T.Seq2SeqCollator(0, 1, bias)([plain])["bias_index"]) == 0  # keyed by the ids training reads
    assert len(bias._positions) == 1  # the 40-word pair is longer than max_length: training leaves it out


def test_a_model_trained_with_the_favouring_is_searched_with_it(tmp_path) -> None:
    """dictionary_training end to end on a toy corpus with one rare word: the run finishes, and the weight it keeps
    comes from the grid without 0 (its logits assume the favouring; a weight of 0 once crashed the recording)."""
    corpus = _toy_corpus()
    corpus = ParallelCorpus(corpus.train + [("der vogel sieht die maus.", "the bird sees the mouse.")],
                            corpus.validation, corpus.test, [("Vogel", "bird")], corpus.info)
    with torch_threads(1):
        run = T.train("quick", tmp_path / "model", corpus=corpus, progress=False,
                      **{**TINY, "max_steps": 20, "eval_every": 10, "dictionary_training": True})
    extra = json.loads((run.out_dir / "config.json").read_text())["extra"]
    by_weight = extra["metrics"]["validation_bleu_by_dictionary_bias"]
    assert [float(w) for w in by_weight] == [w for w in T.DICTIONARY_BIAS_GRID if w]
    assert run.preset.dictionary_training and run.preset.dictionary_bias in T.DICTIONARY_BIAS_GRID[1:]
    assert extra["preset"]["dictionary_training"] is True


def test_the_dictionary_weight_is_the_grid_value_with_the_best_validation_bleu(monkeypatch, tmp_path) -> None:
    """A toy corpus whose dictionary knows a word the training pairs never show: validation decides the weight, the
    saved model records it with every weight's BLEU, and reloading rebuilds the dictionary from the recorded split."""
    corpus = _toy_corpus()
    corpus = ParallelCorpus(corpus.train, corpus.validation, corpus.test, [("Vogel", "bird"), ("Maus", "mouse")],
                            corpus.info)
    with torch_threads(1):
        run = T.train("quick", tmp_path / "model", corpus=corpus, progress=False, **{**TINY, "max_steps": 40})
    extra = json.loads((run.out_dir / "config.json").read_text())["extra"]
    by_weight = extra["metrics"]["validation_bleu_by_dictionary_bias"]
    assert [float(w) for w in by_weight] == list(T.DICTIONARY_BIAS_GRID)
    best = max(T.DICTIONARY_BIAS_GRID, key=lambda w: (by_weight[str(w)], -T.DICTIONARY_BIAS_GRID.index(w)))
    assert run.preset.dictionary_bias == extra["metrics"]["dictionary_bias"] == best
    # Reloading rebuilds the dictionary when a weight was chosen (the toy corpus stands for de-en here).
    path = run.out_dir / "config.json"
    config = json.loads(path.read_text())
    config["extra"] = {**extra, "data": "de-en", "preset": {**extra["preset"], "dictionary_bias": 2.0}}
    path.write_text(json.dumps(config))
    monkeypatch.setattr(T, "load_de_en", lambda seed, quiet: corpus)
    monkeypatch.setattr(T, "de_en_baselines", lambda seed: T.Baselines(corpus))
    translator = T.Translator.load(run.out_dir, verify=False)
    assert translator.dictionary_weight == 2.0
    # "maus" is in the toy training sources far more than 100 times: the model is left to translate it.
    assert translator.dictionary.words("der vogel sieht die maus.") == [
        tuple(translator.tokenizer.encode_ordinary(" bird"))]
    # "vogel" never occurs in training: only a strong bias makes the model write the dictionary's "bird".
    translator.dictionary_weight = 0.0
    assert "bird" not in translator.translate(["der vogel sieht die katze."])[0]
    translator.dictionary_weight = 50.0
    assert "bird" in translator.translate(["der vogel sieht die katze."])[0]
    assert "bird" in translator.translate(["der vogel sieht die katze."], beam_size=1)[0]
