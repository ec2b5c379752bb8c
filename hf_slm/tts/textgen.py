"""Seeded generators of the demo's text: short stories, sBLIMP-like minimal pairs, StoryCloze items.

Everything comes from the closed grammar of ``lexicon`` (a few hundred words, all spelled out, so a TTS
reads them as written) and from ``random.Random`` instances seeded here: the same call gives the same
items on every machine, and no module-level state is touched.

Stories are told in the present tense so subject-verb agreement is heard in every sentence. A story is
five sentences with a causal thread::

    Tom goes to the beach. He builds a castle in the sand. Then he finds a big shell near the waves.
    Suddenly it starts to rain at the beach. At the beach, Tom runs home with his shell in the rain.

Benchmark prompts and training prompts are disjoint by construction: a prompt (first four sentences)
belongs to the benchmark side when its CRC-32 falls in one tenth of the range; ``make_stories`` only
keeps the other side and the cloze generators only that one, whatever the seeds.
"""

from __future__ import annotations

import dataclasses
import random
import re
import zlib
from dataclasses import dataclass

from hf_slm.tts import lexicon as lx

PARADIGMS = ("subject_verb_agreement", "determiner_noun_agreement", "word_order")
_VERB = re.compile(r"\[([a-z]+)\]")
_HELDOUT_MODULUS = 10


@dataclass(frozen=True)
class Story:
    """A five-sentence story about one topic; ``fact`` is ``"type:value"`` (e.g. ``"weather:rain"``)."""

    id: str
    topic: str
    fact: str
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @property
    def prompt(self) -> str:
        """The first four sentences."""
        return " ".join(self.sentences[:-1])

    @property
    def ending(self) -> str:
        return self.sentences[-1]


@dataclass(frozen=True)
class MinimalPair:
    """A grammatical sentence and an ungrammatical one differing only in the paradigm's feature."""

    id: str
    paradigm: str
    positive: str
    negative: str


@dataclass(frozen=True)
class ClozeItem:
    """A story prompt with its true ending and a negative one.

    kind ``"story_cloze"``: the negative contradicts a fact the prompt states (same topic words);
    kind ``"topic_cloze"``: the negative is the ending of another story, about ``negative_topic``.
    """

    id: str
    kind: str
    prompt: str
    positive: str
    negative: str
    topic: str
    negative_topic: str

    @property
    def positive_text(self) -> str:
        return f"{self.prompt} {self.positive}"

    @property
    def negative_text(self) -> str:
        return f"{self.prompt} {self.negative}"


@dataclass(frozen=True)
class _Subject:
    text: str
    pronoun: str
    possessive: str
    plural: bool


@dataclass(frozen=True)
class _NounPhrase:
    determiner: str
    adjective: str | None
    noun: lx.Noun
    plural: bool

    def text(self, flip_number: bool = False, swap_adjective: bool = False) -> str:
        noun = self.noun.form(self.plural != flip_number)
        middle = [noun, self.adjective] if swap_adjective else [self.adjective, noun]
        return " ".join(w for w in [self.determiner, *middle] if w)


@dataclass(frozen=True)
class _Plan:
    """Every choice behind one story, so its ending can be re-rendered with the opposite fact."""

    topic: lx.Topic
    subject: _Subject
    intro: str
    companion: str | None
    activity: tuple[str, str]
    object_sentence: str
    np: _NounPhrase
    spot: str
    activity_first: bool
    fact_type: str
    fact_value: int
    statement: int
    ending_index: int

    def slots(self) -> dict[str, str]:
        return {"place": self.topic.place, "at": self.topic.at, "obj": self.np.noun.form(self.np.plural)}


def _render(template: str, subject: _Subject, flip_verb: bool = False, **slots: str) -> str:
    """Fill a lexicon template; ``flip_verb`` gives the first verb the wrong number."""
    text = template.format(S=subject.text, P=subject.pronoun, p=subject.possessive, **slots)
    count = 0

    def verb(match: re.Match) -> str:
        nonlocal count
        count += 1
        return lx.conjugate(match.group(1), subject.plural != (flip_verb and count == 1))

    text = _VERB.sub(verb, text)
    return text[0].upper() + text[1:]


def _subject(rng: random.Random) -> _Subject:
    boy = rng.random() < 0.5
    name = rng.choice(lx.BOYS if boy else lx.GIRLS)
    possessive = "his" if boy else "her"
    if rng.random() < 0.6:
        return _Subject(name, "he" if boy else "she", possessive, False)
    if rng.random() < 0.5:
        other = rng.choice([n for n in lx.BOYS + lx.GIRLS if n != name])
        return _Subject(f"{name} and {other}", "they", "their", True)
    return _Subject(f"{name} and {possessive} {rng.choice(lx.COMPANIONS)}", "they", "their", True)


def _noun_phrase(rng: random.Random, topic: lx.Topic, adjective: bool | None = None) -> _NounPhrase:
    plural = rng.random() < 0.4
    determiner = rng.choice(lx.PLURAL_DETERMINERS if plural else lx.SINGULAR_DETERMINERS)
    use_adjective = rng.random() < 0.5 if adjective is None else adjective
    return _NounPhrase(determiner, rng.choice(lx.ADJECTIVES) if use_adjective else None,
                       rng.choice(topic.objects), plural)


def _plan(rng: random.Random, topic: lx.Topic | None = None, fact: tuple[str, int] | None = None) -> _Plan:
    topic = topic or rng.choice(lx.TOPICS)
    subject = _subject(rng)
    with_companion = not subject.plural and rng.random() < 0.25
    fact_type, fact_value = fact or (rng.choice(sorted(lx.FACTS)), rng.randrange(2))
    value = lx.FACTS[fact_type][fact_value]
    return _Plan(
        topic=topic, subject=subject,
        intro=lx.INTRO_WITH_COMPANION if with_companion else rng.choice(lx.INTROS),
        companion=rng.choice(lx.COMPANIONS) if with_companion else None,
        activity=rng.choice(topic.activities), object_sentence=rng.choice(lx.OBJECT_SENTENCES),
        np=_noun_phrase(rng, topic), spot=rng.choice(topic.spots), activity_first=rng.random() < 0.7,
        fact_type=fact_type, fact_value=fact_value, statement=rng.randrange(len(value.statements)),
        ending_index=rng.randrange(len(value.endings)),
    )


def _ending(plan: _Plan, fact_value: int) -> str:
    template = lx.FACTS[plan.fact_type][fact_value].endings[plan.ending_index]
    return _render(template, plan.subject, **plan.slots())


def _sentences(plan: _Plan) -> tuple[str, ...]:
    subject, slots = plan.subject, plan.slots()
    intro = _render(plan.intro, subject, companion=plan.companion or "", **slots)
    verb, rest = plan.activity
    activity = _render(lx.ACTIVITY, subject, verb=verb, rest=rest)
    found = _render(plan.object_sentence, subject, np=plan.np.text(), spot=plan.spot)
    middle = (activity, found) if plan.activity_first else (found, activity)
    value = lx.FACTS[plan.fact_type][plan.fact_value]
    statement = _render(value.statements[plan.statement], subject, **slots)
    return (intro, *middle, statement, _ending(plan, plan.fact_value))


def _is_benchmark_prompt(prompt: str) -> bool:
    return zlib.crc32(prompt.encode("utf-8")) % _HELDOUT_MODULUS == 0


def _story(plan: _Plan, story_id: str) -> Story:
    value = lx.FACTS[plan.fact_type][plan.fact_value].name
    return Story(story_id, plan.topic.name, f"{plan.fact_type}:{value}", _sentences(plan))


def _unique_plans(rng: random.Random, n: int, benchmark: bool, topics=None, facts=None) -> list[_Plan]:
    """n plans with distinct stories on the requested side of the benchmark split; ``topics`` / ``facts``
    (callables of the index) force a balanced design."""
    plans: list[_Plan] = []
    seen: set[str] = set()
    while len(plans) < n:
        i = len(plans)
        plan = _plan(rng, topics(i) if topics else None, facts(i) if facts else None)
        sentences = _sentences(plan)
        prompt, text = " ".join(sentences[:-1]), " ".join(sentences)
        if _is_benchmark_prompt(prompt) == benchmark and text not in seen:
            seen.add(text)
            plans.append(plan)
    return plans


def make_stories(n: int, seed: int = 0) -> list[Story]:
    """n distinct training stories (never a benchmark prompt), ids ``story-<seed>-<i>``."""
    rng = random.Random(f"stories:{seed}")
    return [_story(p, f"story-{seed}-{i:05d}") for i, p in enumerate(_unique_plans(rng, n, benchmark=False))]


def _balanced_topic(i: int) -> lx.Topic:
    return lx.TOPICS[i % len(lx.TOPICS)]


def _balanced_fact(i: int) -> tuple[str, int]:
    types = sorted(lx.FACTS)
    return types[(i // 2) % len(types)], i % 2


def make_story_cloze(n: int, seed: int = 0) -> list[ClozeItem]:
    """n StoryCloze items: the true ending restates a fact of the prompt, the negative (same template,
    same topic words) states the opposite fact. Positive fact values are balanced."""
    rng = random.Random(f"story_cloze:{seed}")
    plans = _unique_plans(rng, n, benchmark=True, topics=_balanced_topic, facts=_balanced_fact)
    items = []
    for i, plan in enumerate(plans):
        story = _story(plan, "")
        items.append(ClozeItem(f"sc-{seed}-{i:05d}", "story_cloze", story.prompt, story.ending,
                               _ending(plan, 1 - plan.fact_value), plan.topic.name, plan.topic.name))
    return items


def _retopic(plan: _Plan, rng: random.Random) -> _Plan:
    """The same story skeleton (subject, templates, fact, object number) about another topic."""
    topic = rng.choice([t for t in lx.TOPICS if t is not plan.topic])
    np = dataclasses.replace(plan.np, noun=rng.choice(topic.objects))
    return dataclasses.replace(plan, topic=topic, np=np, spot=rng.choice(topic.spots),
                               activity=rng.choice(topic.activities))


def make_topic_cloze(n: int, seed: int = 0) -> list[ClozeItem]:
    """n topic StoryCloze items: the negative is the ending of another story about another topic, told
    with the same subject and ending template, so it differs from the true ending only in the topic's
    words (place, object), none of which occurs in the prompt.

    The paper's tSC draws the negative at random from the whole set; matching the template removes the
    ending-length variance that swamps a tiny model's topic signal (a sum of log-probabilities over
    endings of 9..16 words), leaving exactly the "stays on topic" contrast. Topics are balanced."""
    rng = random.Random(f"topic_cloze:{seed}")
    items = []
    for i, plan in enumerate(_unique_plans(rng, n, benchmark=True, topics=_balanced_topic)):
        story, other = _story(plan, ""), _retopic(plan, rng)
        items.append(ClozeItem(f"tc-{seed}-{i:05d}", "topic_cloze", story.prompt, story.ending,
                               _ending(other, other.fact_value), story.topic, other.topic.name))
    return items


_SVA_FRAMES = (
    *(s.replace("Then {P}", "{S}").replace("After that, {P}", "{S}").replace("Soon {P}", "{S}")
      for s in lx.OBJECT_SENTENCES),
    "{S} [be] very happy.", "{S} [be] very sad.", "{S} [be] all alone.", "{S} [meet] some new friends.",
    *lx.INTROS,
)
_OBJECT_FRAME = "{S} [{verb}] {np} {spot}."
_OBJECT_FRAME_VERB_LAST = "{S} {np} [{verb}] {spot}."


def _object_frame_verb(rng: random.Random) -> tuple[str, str]:
    """(verb, rest-of-frame) from the story's object sentences, e.g. ("pick", "up {np} {spot}.")."""
    verb = rng.choice(lx.OBJECT_VERBS)
    particle = {"pick": " up", "look": " at"}.get(verb, "")
    return verb, particle


def _agreement_pair(rng: random.Random) -> tuple[str, str]:
    subject, topic = _subject(rng), rng.choice(lx.TOPICS)
    if rng.random() < 0.3:
        verb, rest = rng.choice(topic.activities)
        template = "{S} [" + verb + "] " + rest + "."
    else:
        template = rng.choice(_SVA_FRAMES)
    slots = {"place": topic.place, "at": topic.at, "np": _noun_phrase(rng, topic).text(), "spot": rng.choice(topic.spots)}
    return (_render(template, subject, **slots), _render(template, subject, flip_verb=True, **slots))


def _object_sentence(rng: random.Random, np: _NounPhrase, topic: lx.Topic, subject: _Subject,
                     verb_last: bool = False, **np_options: bool) -> str:
    verb, particle = _object_frame_verb(rng)
    template = (_OBJECT_FRAME_VERB_LAST if verb_last else _OBJECT_FRAME).replace("]", "]" + particle, 1)
    return _render(template, subject, verb=verb, np=np.text(**np_options), spot=rng.choice(topic.spots))


def _determiner_pair(rng: random.Random) -> tuple[str, str]:
    subject, topic = _subject(rng), rng.choice(lx.TOPICS)
    np = _noun_phrase(rng, topic)
    state = rng.getstate()
    positive = _object_sentence(rng, np, topic, subject)
    rng.setstate(state)
    return positive, _object_sentence(rng, np, topic, subject, flip_number=True)


def _word_order_pair(rng: random.Random) -> tuple[str, str]:
    subject, topic = _subject(rng), rng.choice(lx.TOPICS)
    swap_adjective = rng.random() < 0.5
    np = _noun_phrase(rng, topic, adjective=swap_adjective)
    state = rng.getstate()
    positive = _object_sentence(rng, np, topic, subject)
    rng.setstate(state)
    if swap_adjective:
        return positive, _object_sentence(rng, np, topic, subject, swap_adjective=True)
    return positive, _object_sentence(rng, np, topic, subject, verb_last=True)


_PAIR_MAKERS = {
    "subject_verb_agreement": _agreement_pair,
    "determiner_noun_agreement": _determiner_pair,
    "word_order": _word_order_pair,
}


def make_minimal_pairs(n: int, seed: int = 0, paradigms: tuple[str, ...] = PARADIGMS) -> list[MinimalPair]:
    """n distinct minimal pairs, cycling through ``paradigms``:

    - subject_verb_agreement: one verb takes the wrong number ("Tom find a shell", "Tom and Mia is sad");
    - determiner_noun_agreement: the noun takes the wrong number for its determiner ("a shells", "two
      shell");
    - word_order: an adjective after its noun ("a shell big") or the object before the verb ("Tom a
      shell finds"), same words in another order.
    """
    unknown = set(paradigms) - set(_PAIR_MAKERS)
    if unknown:
        raise ValueError(f"unknown paradigms {sorted(unknown)}; known: {', '.join(PARADIGMS)}")
    rng = random.Random(f"minimal_pairs:{seed}")
    pairs: list[MinimalPair] = []
    seen: set[str] = set()
    while len(pairs) < n:
        paradigm = paradigms[len(pairs) % len(paradigms)]
        positive, negative = _PAIR_MAKERS[paradigm](rng)
        if positive in seen:
            continue
        seen.add(positive)
        pairs.append(MinimalPair(f"blimp-{seed}-{len(pairs):05d}", paradigm, positive, negative))
    return pairs
