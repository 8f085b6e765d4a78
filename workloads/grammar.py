"""A small probabilistic grammar of English-like sentences, and its translation into a
verb-final language: the corpus of the language-model and translation workloads.

The grammar has what makes language modelling more than counting bigrams: number agreement
between a subject and its verb across prepositional phrases and relative clauses, selectional
restrictions (some verbs take only animate objects), recursion, and a Zipfian lexicon. The
target language reorders (subject-object-verb, adjectives after the noun), marks the verb for
the subject's number *and* animacy, and the object with a case marker, so a translation model
must carry information across the sentence.

Generation uses ``random.Random(seed)``, which is the same on every platform and Python version.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ("<pad>", "<s>", "</s>")

DETERMINERS = {"sg": ("the", "a", "this", "every", "one"), "pl": ("the", "these", "some", "many", "two")}
ADJECTIVES = tuple(f"adj{i}" for i in range(12))
PREPOSITIONS = tuple(f"prep{i}" for i in range(5))
ANIMATE_NOUNS = tuple(f"anim{i}" for i in range(10))
THINGS = tuple(f"thing{i}" for i in range(14))
TRANSITIVE_ANIMATE = tuple(f"greets{i}" for i in range(6))  # objects must be animate
TRANSITIVE_ANY = tuple(f"sees{i}" for i in range(8))
INTRANSITIVE = tuple(f"sleeps{i}" for i in range(6))
MAX_DEPTH = 2


@dataclass(frozen=True)
class Noun:
    stem: str
    number: str  # "sg" or "pl"
    animate: bool


def _zipf(rng: random.Random, items: tuple[str, ...]) -> str:
    weights = [1.0 / (rank + 1) for rank in range(len(items))]
    return rng.choices(items, weights)[0]


class Sentence:
    """A sentence as a tree-ish record: enough to write it in both languages."""

    def __init__(self, rng: random.Random, depth: int = 0) -> None:
        self.subject = NounPhrase(rng, depth, animate=rng.random() < 0.7)
        roll = rng.random()
        if roll < 0.25:
            self.kind, self.verb, self.object = "intransitive", _zipf(rng, INTRANSITIVE), None
        elif roll < 0.55:
            self.kind, self.verb = "animate", _zipf(rng, TRANSITIVE_ANIMATE)
            self.object = NounPhrase(rng, depth, animate=True)
        else:
            self.kind, self.verb = "any", _zipf(rng, TRANSITIVE_ANY)
            self.object = NounPhrase(rng, depth, animate=rng.random() < 0.4)

    def english(self) -> list[str]:
        verb = self.verb + ("s" if self.subject.noun.number == "sg" else "")
        words = [*self.subject.english(), verb]
        if self.object is not None:
            words += self.object.english()
        return words

    def target(self) -> list[str]:
        """Verb-final order; the verb carries the subject's number and animacy."""
        n = self.subject.noun
        marker = f"v-{n.number}-{'an' if n.animate else 'in'}"
        words = [*self.subject.target(), "SUBJ"]
        if self.object is not None:
            words += [*self.object.target(), "OBJ"]
        return [*words, f"T{self.verb}", marker]


class NounPhrase:
    def __init__(self, rng: random.Random, depth: int, animate: bool) -> None:
        number = "sg" if rng.random() < 0.6 else "pl"
        self.noun = Noun(_zipf(rng, ANIMATE_NOUNS if animate else THINGS), number, animate)
        self.determiner = rng.choice(DETERMINERS[number])
        self.adjectives = [_zipf(rng, ADJECTIVES) for _ in range(rng.choice((0, 0, 1, 1, 2)))]
        self.pp: tuple[str, NounPhrase] | None = None
        self.relative: Sentence | None = None
        if depth < MAX_DEPTH:
            roll = rng.random()
            if roll < 0.2:
                self.pp = (rng.choice(PREPOSITIONS), NounPhrase(rng, depth + 1, animate=rng.random() < 0.5))
            elif roll < 0.3 and animate:
                self.relative = Sentence(rng, depth + 1)

    def english(self) -> list[str]:
        noun = self.noun.stem + ("s" if self.noun.number == "pl" else "")
        words = [self.determiner, *self.adjectives, noun]
        if self.pp is not None:
            words += [self.pp[0], *self.pp[1].english()]
        if self.relative is not None:
            words += ["that", *self.relative.english()]
        return words

    def target(self) -> list[str]:
        """Noun first, adjectives after it (in reverse), determiner last; PPs become postpositions."""
        adjectives = [f"T{a}" for a in reversed(self.adjectives)]
        words = [f"T{self.noun.stem}", *adjectives, f"T{self.determiner}-{self.noun.number}"]
        if self.pp is not None:
            words = [*self.pp[1].target(), f"T{self.pp[0]}", *words]
        if self.relative is not None:
            words = ["REL", *self.relative.target(), "END", *words]
        return words


def english_vocabulary() -> list[str]:
    words = set(ADJECTIVES) | set(PREPOSITIONS) | {"that", "."}
    words |= {d for ds in DETERMINERS.values() for d in ds}
    words |= {n + s for n in ANIMATE_NOUNS + THINGS for s in ("", "s")}
    words |= {v + s for v in TRANSITIVE_ANIMATE + TRANSITIVE_ANY + INTRANSITIVE for s in ("", "s")}
    return [*SPECIALS, *sorted(words)]


def target_vocabulary() -> list[str]:
    words = {"SUBJ", "OBJ", "REL", "END"} | {f"T{w}" for w in ADJECTIVES + PREPOSITIONS}
    words |= {f"T{d}-{n}" for n, ds in DETERMINERS.items() for d in ds}
    words |= {f"T{n}" for n in ANIMATE_NOUNS + THINGS}
    words |= {f"T{v}" for v in TRANSITIVE_ANIMATE + TRANSITIVE_ANY + INTRANSITIVE}
    words |= {f"v-{n}-{a}" for n in ("sg", "pl") for a in ("an", "in")}
    return [*SPECIALS, *sorted(words)]


def sentences(n: int, seed: int) -> list[Sentence]:
    rng = random.Random(seed)
    return [Sentence(rng) for _ in range(n)]
