"""The small closed vocabulary of the demo's stories: names, verbs, topics and story facts.

Every topic owns a lexicon (place, objects, spots, activities) whose content words no other topic uses,
so a story's ending that repeats words from its first sentences is on topic and the ending of a story
about another topic shares none of them (the topic StoryCloze signal). Facts come in opposite pairs
(sun / rain, happy / sad, ...) whose words are topic-neutral; an ending states the story's fact again,
and the ending of the opposite fact contradicts it (the StoryCloze signal). The fact sentence (fourth)
ends with the place ("... at the beach.") and the ending starts with it again ("At the beach, Tom ..."):
the topic's words recur right at the prompt / ending boundary, a repetition at a fixed short distance
that a tiny model learns with far less data than copying words from anywhere in its context (with a
4-layer, d=128 character-level model: topic cloze 0.79-0.90 after 0.8-1.2M characters, against chance
without it).

Template syntax (rendered by ``textgen``): ``[verb]`` is conjugated for the story's subject (``[be]``
-> is / are), ``{S}`` the subject, ``{P}`` its pronoun, ``{p}`` its possessive, ``{place}`` the topic's
place, ``{at}`` being there ("in the kitchen"), ``{obj}`` the object the story is about, with the
number it had when first mentioned.
"""

from __future__ import annotations

from dataclasses import dataclass

BOYS = ("Tom", "Sam", "Ben", "Max", "Leo", "Jack", "Noah", "Luke", "Paul", "Dan")
GIRLS = ("Mia", "Lily", "Emma", "Anna", "Lucy", "Sara", "Kate", "Zoe", "Ruth", "Nora")
COMPANIONS = ("dog", "cat", "sister", "brother", "mom", "dad", "friend", "grandma")
ADJECTIVES = ("big", "small", "little", "red", "blue", "green", "yellow", "pretty", "funny", "new")
SINGULAR_DETERMINERS = ("a",)
PLURAL_DETERMINERS = ("two", "three", "some", "many")

IRREGULAR_THIRD = {"have": "has", "be": "is", "do": "does", "go": "goes"}


def third_person(base: str) -> str:
    """Third person singular present of a verb (``"watch"`` -> ``"watches"``, ``"be"`` -> ``"is"``)."""
    if base in IRREGULAR_THIRD:
        return IRREGULAR_THIRD[base]
    if base.endswith(("s", "sh", "ch", "x", "z", "o")):
        return base + "es"
    if base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ies"
    return base + "s"


def conjugate(base: str, plural: bool) -> str:
    """Present tense for a third person subject: singular ``third_person``, plural the base (are)."""
    if base == "be":
        return "are" if plural else "is"
    return base if plural else third_person(base)


@dataclass(frozen=True)
class Noun:
    """A countable noun with its plural."""

    sg: str
    pl: str

    def form(self, plural: bool) -> str:
        return self.pl if plural else self.sg


def _nouns(*pairs: str) -> tuple[Noun, ...]:
    """``"shell/shells"`` strings -> nouns."""
    return tuple(Noun(*p.split("/")) for p in pairs)


@dataclass(frozen=True)
class Topic:
    """A story topic: the place, the objects found there, where, and what one does there.

    activities are (verb base, rest of the verb phrase), e.g. ("build", "a castle in the sand").
    """

    name: str
    place: str
    at: str
    objects: tuple[Noun, ...]
    spots: tuple[str, ...]
    activities: tuple[tuple[str, str], ...]

    def words(self) -> frozenset[str]:
        """The topic's own content words (no other topic and no shared template uses them)."""
        texts = [self.place, self.at, *self.spots, *(rest for _, rest in self.activities)]
        texts += [n.sg for n in self.objects] + [n.pl for n in self.objects]
        return frozenset(w for t in texts for w in t.split()) - FUNCTION_WORDS


FUNCTION_WORDS = frozenset(
    "a an the in on at by of to for from with into over under near through down up about around "
    "and some two three many his her their".split()
)

TOPICS: tuple[Topic, ...] = (
    Topic("beach", "beach", "at the beach",
          _nouns("shell/shells", "crab/crabs", "bucket/buckets", "boat/boats", "seagull/seagulls"),
          ("in the sand", "by the sea", "near the waves"),
          (("build", "a castle in the sand"), ("swim", "in the salty sea"), ("dig", "a deep hole in the sand"),
           ("jump", "over the waves"))),
    Topic("farm", "farm", "on the farm",
          _nouns("cow/cows", "pig/pigs", "horse/horses", "goat/goats", "chicken/chickens"),
          ("in the barn", "by the fence", "in the field"),
          (("feed", "hay to the cows"), ("ride", "a pony around the barn"), ("milk", "a brown cow"),
           ("collect", "eggs from the hens"))),
    Topic("kitchen", "kitchen", "in the kitchen",
          _nouns("cake/cakes", "cookie/cookies", "spoon/spoons", "bowl/bowls", "pot/pots"),
          ("on the table", "near the oven", "by the sink"),
          (("bake", "a pie with flour"), ("mix", "sugar and butter"), ("wash", "the dishes in the sink"),
           ("cook", "soup on the stove"))),
    Topic("school", "school", "at the school",
          _nouns("pencil/pencils", "crayon/crayons", "desk/desks", "ruler/rulers",
                                     "backpack/backpacks"),
          ("in the classroom", "near the blackboard", "by the teacher"),
          (("write", "letters on the blackboard"), ("sing", "a song with the class"),
           ("paint", "a picture for the teacher"), ("count", "to ten with the class"))),
    Topic("garden", "garden", "in the garden",
          _nouns("flower/flowers", "bee/bees", "butterfly/butterflies", "tomato/tomatoes",
                                     "worm/worms"),
          ("in the soil", "by the roses", "near the hedge"),
          (("plant", "seeds in the soil"), ("smell", "the sweet roses"), ("pull", "weeds from the ground"),
           ("pick", "ripe strawberries"))),
    Topic("forest", "forest", "in the forest",
          _nouns("squirrel/squirrels", "mushroom/mushrooms", "fox/foxes", "stick/sticks",
                                     "pinecone/pinecones"),
          ("under the tall trees", "near the path", "by a mossy log"),
          (("climb", "a tall pine tree"), ("follow", "a path through the woods"),
           ("listen", "to the birds in the trees"), ("hike", "up a steep trail"))),
    Topic("snow", "hill", "on the hill",
          _nouns("sled/sleds", "snowman/snowmen", "mitten/mittens", "scarf/scarves",
                                 "snowball/snowballs"),
          ("in the snow", "on the ice", "near the frozen lake"),
          (("ride", "a sled down the slope"), ("build", "a snowman in the snow"),
           ("skate", "on the frozen lake"), ("make", "angels in the snow"))),
    Topic("market", "market", "at the market",
          _nouns("basket/baskets", "banana/bananas", "melon/melons", "coin/coins",
                                     "pear/pears"),
          ("at the fruit stall", "near the baker", "by the cheese shop"),
          (("buy", "fresh bread from the baker"), ("pay", "with a shiny coin"),
           ("carry", "a heavy basket of fruit"), ("sell", "lemons to the shoppers"))),
    Topic("library", "library", "in the library",
          _nouns("book/books", "map/maps", "magazine/magazines", "poster/posters",
                                       "bookmark/bookmarks"),
          ("on the shelf", "in the reading corner", "by the librarian"),
          (("read", "a book about dragons"), ("borrow", "books about space"),
           ("whisper", "to the librarian"), ("search", "for a book about kings"))),
    Topic("river", "river", "by the river",
          _nouns("frog/frogs", "duck/ducks", "rock/rocks", "turtle/turtles", "net/nets"),
          ("on the river bank", "under the bridge", "in the shallow stream"),
          (("throw", "stones into the water"), ("fish", "with a long rod"),
           ("paddle", "a canoe down the stream"), ("watch", "the ducks float by"))),
)

TOPIC_BY_NAME = {t.name: t for t in TOPICS}

INTROS = (
    "{S} [go] to the {place}.",
    "One day, {S} [walk] to the {place}.",
    "{S} [love] to play {at}.",
    "Today {S} [visit] the {place}.",
)
INTRO_WITH_COMPANION = "{S} [go] to the {place} with {p} {companion}."
ACTIVITY = "{P} [{verb}] {rest}."
OBJECT_SENTENCES = (
    "Then {P} [find] {np} {spot}.",
    "Then {P} [see] {np} {spot}.",
    "After that, {P} [pick] up {np} {spot}.",
    "Soon {P} [look] at {np} {spot}.",
)
OBJECT_VERBS = ("find", "see", "pick", "look")


@dataclass(frozen=True)
class FactValue:
    """One side of a fact: sentences stating it and endings that state it again (index-aligned with the
    endings of the opposite value, so a contradicting ending differs only where the fact does)."""

    name: str
    statements: tuple[str, ...]
    endings: tuple[str, ...]


FACTS: dict[str, tuple[FactValue, FactValue]] = {
    "weather": (
        FactValue("sun", ("The sun is warm and bright {at}.", "It is a warm and sunny day {at}."),
                  ("{at}, {S} [stay] with {p} {obj} in the warm sun.",
                   "{at}, {S} [sit] in the sun and [hold] {p} {obj}.")),
        FactValue("rain", ("Suddenly it starts to rain {at}.", "Then dark clouds bring cold rain {at}."),
                  ("{at}, {S} [run] home with {p} {obj} in the rain.",
                   "{at}, {S} [hide] from the rain and [hold] {p} {obj}.")),
    ),
    "mood": (
        FactValue("happy", ("{S} [be] very happy {at}.", "{P} [laugh] and [smile] a lot {at}."),
                  ("{at}, {S} [be] still happy and [hold] {p} {obj}.",
                   "{at}, {S} [smile] and [show] {p} {obj} to everyone.")),
        FactValue("sad", ("{S} [be] very sad {at}.", "{P} [start] to cry {at}."),
                  ("{at}, {S} [be] still sad and [hold] {p} {obj}.",
                   "{at}, {S} [cry] and [hide] {p} {obj} from everyone.")),
    ),
    "time": (
        FactValue("morning", ("It is early in the morning {at}.", "The morning is just starting {at}."),
                  ("{at}, {S} [have] the whole morning to play there with {p} {obj}.",
                   "{at}, {S} [stay] with {p} {obj} all morning.")),
        FactValue("night", ("It is late at night {at}.", "Now it is dark and the night is coming {at}."),
                  ("{at}, {S} [have] to go to bed with {p} {obj} at night.",
                   "{at}, {S} [sleep] with {p} {obj} all night.")),
    ),
    "company": (
        FactValue("alone", ("{S} [be] all alone {at}.", "Nobody else is {at}."),
                  ("{at}, {S} [play] all alone and [hold] {p} {obj}.",
                   "{at}, {S} [stay] alone and [look] at {p} {obj}.")),
        FactValue("friends", ("{S} [meet] some new friends {at}.", "Many friends are {at} too."),
                  ("{at}, {S} [play] with friends and [hold] {p} {obj}.",
                   "{at}, {S} [show] {p} {obj} to {p} new friends.")),
    ),
}
