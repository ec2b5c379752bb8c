import itertools
import re
from collections import Counter

import pytest

from hf_slm.tts import lexicon as lx
from hf_slm.tts import textgen

ALL_TOPIC_WORDS = frozenset().union(*(t.words() for t in lx.TOPICS))
NOUN_FORMS = {form: noun for t in lx.TOPICS for noun in t.objects for form in (noun.sg, noun.pl)}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def topic_words(text: str) -> set[str]:
    return set(words(text)) & ALL_TOPIC_WORDS


def differing_positions(a: str, b: str) -> list[int]:
    return [i for i, (x, y) in enumerate(zip(a.split(), b.split(), strict=True)) if x != y]


# -- lexicon ---------------------------------------------------------------------------------------------------
def test_topic_lexicons_are_disjoint_and_generic_words_are_topic_neutral():
    assert 8 <= len(lx.TOPICS) <= 12
    for a, b in itertools.combinations(lx.TOPICS, 2):
        assert not a.words() & b.words(), (a.name, b.name)
    generic = [*lx.INTROS, lx.INTRO_WITH_COMPANION, *lx.OBJECT_SENTENCES, *lx.BOYS, *lx.GIRLS, *lx.COMPANIONS,
               *lx.ADJECTIVES, *lx.PLURAL_DETERMINERS, *(verb for t in lx.TOPICS for verb, _ in t.activities)]
    generic += [s for pair in lx.FACTS.values() for v in pair for s in (*v.statements, *v.endings)]
    assert not set(words(" ".join(generic))) & ALL_TOPIC_WORDS


def test_conjugation():
    assert [lx.conjugate(v, False) for v in ("be", "have", "go", "watch", "carry", "play", "fish")] == [
        "is", "has", "goes", "watches", "carries", "plays", "fishes"]
    assert lx.conjugate("be", True) == "are" and lx.conjugate("pick", True) == "pick"


# -- stories ---------------------------------------------------------------------------------------------------
def test_stories_are_deterministic_per_seed():
    assert textgen.make_stories(30, seed=1) == textgen.make_stories(30, seed=1)
    a, b = textgen.make_stories(30, seed=1), textgen.make_stories(30, seed=2)
    assert {s.text for s in a} != {s.text for s in b}


def test_stories_are_five_spoken_sentences_on_one_topic():
    stories = textgen.make_stories(400, seed=0)
    assert len({s.text for s in stories}) == len(stories) == len({s.id for s in stories})
    vocabulary = set()
    for story in stories:
        assert len(story.sentences) == 5
        assert re.fullmatch(r"[A-Za-z ,.]+", story.text), story.text
        assert topic_words(story.text) <= lx.TOPIC_BY_NAME[story.topic].words()
        # the ending repeats topic words of the prompt (place and object)
        assert len(topic_words(story.ending) & topic_words(story.prompt)) >= 2, story.text
        vocabulary |= set(words(story.text))
    assert len(vocabulary) < 500
    assert set(Counter(s.topic for s in stories)) == {t.name for t in lx.TOPICS}


def test_benchmark_prompts_never_appear_in_training_stories():
    train = {s.prompt for seed in (0, 1) for s in textgen.make_stories(500, seed=seed)}
    bench = {c.prompt for c in textgen.make_story_cloze(100, seed=0) + textgen.make_topic_cloze(100, seed=0)}
    assert not train & bench


# -- minimal pairs ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pairs():
    return textgen.make_minimal_pairs(300, seed=0)


def test_minimal_pairs_are_deterministic_and_balanced(pairs):
    assert pairs == textgen.make_minimal_pairs(300, seed=0)
    assert {p.positive for p in pairs} != {p.positive for p in textgen.make_minimal_pairs(300, seed=1)}
    assert Counter(p.paradigm for p in pairs) == dict.fromkeys(textgen.PARADIGMS, 100)
    assert len({p.id for p in pairs}) == len(pairs)
    assert all(re.fullmatch(r"[A-Za-z ,.]+", p.positive + p.negative) for p in pairs)
    with pytest.raises(ValueError, match="unknown paradigms"):
        textgen.make_minimal_pairs(3, paradigms=("island_effects",))


def test_agreement_pairs_flip_one_verb_against_its_subject(pairs):
    for p in (p for p in pairs if p.paradigm == "subject_verb_agreement"):
        (i,) = differing_positions(p.positive, p.negative)
        good, bad = p.positive.split()[i], p.negative.split()[i]
        plural = "and" in p.positive.split()[:i]
        base = "be" if {good, bad} == {"is", "are"} else min(good, bad, key=len)
        assert good == lx.conjugate(base, plural) and bad == lx.conjugate(base, not plural), p


def test_determiner_pairs_flip_the_noun_number_against_its_determiner(pairs):
    for p in (p for p in pairs if p.paradigm == "determiner_noun_agreement"):
        (i,) = differing_positions(p.positive, p.negative)
        good, bad = p.positive.split()[i], p.negative.split()[i]
        noun = NOUN_FORMS[good]
        assert {good, bad} == {noun.sg, noun.pl}
        before = p.positive.split()[:i]
        determiner = before[-1] if before[-1] not in lx.ADJECTIVES else before[-2]
        assert (good == noun.pl) == (determiner in lx.PLURAL_DETERMINERS), p


def noun_followed_by(ws: list[str], followers: set[str]) -> bool:
    return any(a in NOUN_FORMS and b in followers for a, b in zip(ws, ws[1:], strict=False))


def test_word_order_pairs_permute_the_same_words(pairs):
    verbs = {lx.conjugate(v, plural) for v in lx.OBJECT_VERBS for plural in (False, True)}
    adjectives = set(lx.ADJECTIVES)
    for p in (p for p in pairs if p.paradigm == "word_order"):
        good, bad = words(p.positive), words(p.negative)
        assert good != bad and sorted(good) == sorted(bad)
        assert noun_followed_by(bad, adjectives) or noun_followed_by(bad, verbs), p
        assert not noun_followed_by(good, adjectives | verbs), p


# -- cloze -----------------------------------------------------------------------------------------------------
def test_story_cloze_negative_contradicts_with_the_same_topic_words():
    items = textgen.make_story_cloze(160, seed=0)
    assert items == textgen.make_story_cloze(160, seed=0)
    assert {c.prompt for c in items} != {c.prompt for c in textgen.make_story_cloze(160, seed=1)}
    fact_words = {"sun", "rain", "happy", "sad", "smile", "smiles", "cry", "cries", "morning", "night",
                  "alone", "friends"}
    for c in items:
        assert c.kind == "story_cloze" and c.negative != c.positive and c.topic == c.negative_topic
        assert topic_words(c.positive) == topic_words(c.negative)
        assert len(c.positive.split()) == len(c.negative.split())
        changed = set(words(c.negative)) ^ set(words(c.positive))
        assert changed & fact_words, c
        assert c.positive_text.startswith(c.prompt) and c.negative_text.endswith(c.negative)
    assert len({c.id for c in items}) == len(items)


def test_story_cloze_positives_are_balanced_over_fact_values():
    items = textgen.make_story_cloze(160, seed=0)
    rain = sum("rain" in words(c.positive) for c in items)
    sun = sum("sun" in words(c.positive) for c in items)
    assert rain == sun == 20


def test_topic_cloze_negative_is_off_topic():
    items = textgen.make_topic_cloze(200, seed=0)
    assert items == textgen.make_topic_cloze(200, seed=0)
    assert Counter(c.topic for c in items) == dict.fromkeys((t.name for t in lx.TOPICS), 20)
    for c in items:
        assert c.kind == "topic_cloze" and c.negative_topic != c.topic
        assert not topic_words(c.negative) & topic_words(c.prompt), c
        # same template: only the topic's words (and "at the" / "in the") differ
        changed = set(words(c.negative)) ^ set(words(c.positive))
        assert changed - ALL_TOPIC_WORDS <= {"at", "in", "on", "by", "the"}, c
        assert abs(len(c.negative.split()) - len(c.positive.split())) <= 1
        assert topic_words(c.negative) <= lx.TOPIC_BY_NAME[c.negative_topic].words()
        assert len(topic_words(c.positive) & topic_words(c.prompt)) >= 2
