"""A deterministic synthetic NLI corpus: MNLI-style train / matched / mismatched splits and a HANS-style set.

The training split carries the lexical-overlap bias of real MNLI: every entailed hypothesis is built from
words of its premise, while neutral and contradiction hypotheses bring new words ("because ...", "not").
The HANS-style set then holds hypotheses made only of premise words that are *not* entailed, so a model
that learned the shortcut is visibly caught there, just as ALBERT is caught on HANS.

Mismatched uses a different vocabulary domain (animals instead of people) that never occurs in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tis_ray.data.schema import HANS_HEURISTICS

ENTAILMENT, NEUTRAL, CONTRADICTION = 0, 1, 2


@dataclass(frozen=True)
class Domain:
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    transitive: tuple[tuple[str, str], ...]  # (past, base)
    intransitive: tuple[tuple[str, str], ...]
    places: tuple[str, ...]
    extras: tuple[str, ...]  # new information: what makes a hypothesis neutral
    fillers: tuple[str, ...]  # label-neutral clauses that lengthen a premise


PEOPLE = Domain(
    nouns=("doctor", "lawyer", "artist", "student", "teacher", "banker", "judge", "actor", "author",
           "manager", "senator", "athlete", "secretary", "tourist", "scientist", "professor"),
    adjectives=("tall", "old", "young", "happy", "famous", "quiet", "angry", "rich"),
    transitive=(("saw", "see"), ("helped", "help"), ("called", "call"), ("admired", "admire"),
                ("avoided", "avoid"), ("paid", "pay"), ("thanked", "thank"), ("recommended", "recommend"),
                ("supported", "support"), ("contacted", "contact"), ("introduced", "introduce"),
                ("advised", "advise")),
    intransitive=(("slept", "sleep"), ("danced", "dance"), ("ran", "run"), ("waited", "wait"),
                  ("laughed", "laugh"), ("shouted", "shout"), ("arrived", "arrive"), ("left", "leave"),
                  ("smiled", "smile"), ("resigned", "resign")),
    places=("in the office", "near the station", "at the bank", "by the library", "in the hall"),
    extras=("because the meeting was late", "for the first time", "to get a promotion", "after lunch",
            "with great interest", "for a large fee"),
    fillers=("while the weather was cold", "as the city grew busy", "before the long holiday",
             "during the annual conference", "after a quiet morning", "when the news came in",
             "as the crowd gathered outside", "while the radio played softly"),
)

ANIMALS = Domain(
    nouns=("cat", "dog", "horse", "rabbit", "fox", "bear", "eagle", "wolf", "deer", "mouse", "lion",
           "tiger", "goat", "duck", "owl", "frog"),
    adjectives=("brown", "small", "wild", "sleepy", "hungry", "fierce", "white", "clever"),
    transitive=(("chased", "chase"), ("watched", "watch"), ("followed", "follow"), ("bit", "bite"),
                ("found", "find"), ("heard", "hear"), ("ignored", "ignore"), ("smelled", "smell"),
                ("scared", "scare"), ("licked", "lick"), ("caught", "catch"), ("fed", "feed")),
    intransitive=(("barked", "bark"), ("howled", "howl"), ("jumped", "jump"), ("swam", "swim"),
                  ("hid", "hide"), ("rested", "rest"), ("hunted", "hunt"), ("flew", "fly"),
                  ("played", "play"), ("growled", "growl")),
    places=("near the river", "in the forest", "by the barn", "on the hill", "in the field"),
    extras=("because it was hungry", "at dawn", "for a long time", "after the storm",
            "with great speed", "to find food"),
    fillers=("while the wind was strong", "as the sun went down", "during the dry season",
             "before the first snow", "when the rain stopped", "as the river rose slowly",
             "while the birds were singing", "after a cold night"),
)

FUNCTION_WORDS = ("the", "who", "and", "or", "if", "since", "near", "did", "not", "never", ",")
# Mean ~40 tokens per pair with a tail to 128, as in MNLI; each filler clause adds about 5 tokens.
LENGTH_PROFILES = ("short", "mnli")


def vocabulary() -> list[str]:
    """Return every word the generator can emit, sorted (the tiny-albert tokenizer is built from it)."""
    words: set[str] = set(FUNCTION_WORDS)
    for domain in (PEOPLE, ANIMALS):
        words.update(domain.nouns, domain.adjectives)
        for past, base in domain.transitive + domain.intransitive:
            words.update((past, base))
        for phrase in domain.places + domain.extras + domain.fillers:
            words.update(phrase.split())
    return sorted(words)


class _Builder:
    """Draws sentences of one domain from one random generator."""

    def __init__(self, domain: Domain, rng: np.random.Generator, length_profile: str):
        self.d, self.rng, self.length_profile = domain, rng, length_profile

    def pick(self, items):
        return items[int(self.rng.integers(len(items)))]

    def nouns(self, k: int) -> list[str]:
        return [self.d.nouns[i] for i in self.rng.choice(len(self.d.nouns), size=k, replace=False)]

    def np_(self, noun: str, adjective: bool = False) -> list[str]:
        return ["the", self.pick(self.d.adjectives), noun] if adjective else ["the", noun]

    def pad(self, premise: list[str]) -> list[str]:
        """Append label-neutral filler clauses so pair lengths follow the chosen profile."""
        if self.length_profile == "short":
            n = int(self.rng.random() < 0.3)
        else:  # lognormal number of fillers: mean pair length ~40 tokens, tail up to ~128
            n = min(int(self.rng.lognormal(mean=1.2, sigma=0.75)), 20)
        for _ in range(n):
            premise = premise + [","] + self.pick(self.d.fillers).split()
        return premise


def _train_example(b: _Builder) -> tuple[list[str], list[str], int]:
    """One MNLI-style pair: an entailed core, then turned neutral or contradictory by adding new words."""
    n1, n2, n3 = b.nouns(3)
    vt, vt2 = b.pick(b.d.transitive), b.pick(b.d.transitive)
    vi = b.pick(b.d.intransitive)
    kind = int(b.rng.integers(6))
    if kind == 0:  # adjective + place: "the tall doctor saw the lawyer in the office"
        premise = b.np_(n1, True) + [vt[0]] + b.np_(n2) + b.pick(b.d.places).split()
        core = (["the", n1], vt, ["the", n2])
    elif kind == 1:  # relative clause on the subject
        premise = ["the", n1, "who", vt[0], "the", n2, vt2[0], "the", n3]
        core = (["the", n1], vt2, ["the", n3])
    elif kind == 2:  # prepositional phrase on the subject
        premise = ["the", n1, "near", "the", n2, vi[0]]
        core = (["the", n1], vi, [])
    elif kind == 3:  # conjoined subjects
        premise = ["the", n1, "and", "the", n2, vi[0]]
        core = (["the", n2], vi, [])
    elif kind == 4:  # two clauses joined by "and"
        premise = ["the", n1, vi[0], "and", "the", n2, vt[0], "the", n3]
        core = (["the", n2], vt, ["the", n3])
    else:  # "since" clause
        premise = ["since", "the", n1, vi[0], ",", "the", n2, vt[0], "the", n3]
        core = (["the", n1], vi, [])
    subject, verb, obj = core
    label = int(b.rng.integers(3))
    if label == ENTAILMENT:
        hypothesis = subject + [verb[0]] + obj
    elif label == NEUTRAL:
        hypothesis = subject + [verb[0]] + obj + b.pick(b.d.extras).split()
    else:
        negation = ["did", "not", verb[1]] if b.rng.random() < 0.7 else ["never", verb[0]]
        hypothesis = subject + negation + obj
    return b.pad(premise), hypothesis, label


def _hans_example(b: _Builder, heuristic: str, entailed: bool) -> tuple[list[str], list[str], str, str]:
    """One HANS-style pair: every hypothesis word occurs in the premise; only the structure decides."""
    n1, n2, n3 = b.nouns(3)
    vt, vi, vi2 = b.pick(b.d.transitive), b.pick(b.d.intransitive), b.pick(b.d.intransitive)
    if heuristic == "lexical_overlap":
        if entailed:
            if b.rng.random() < 0.5:
                return (["the", n1, "who", vt[0], "the", n2, vi[0]], ["the", n1, vi[0]],
                        "le_relative_clause", "temp1")
            return (["the", n1, "near", "the", n2, vt[0], "the", n3], ["the", n1, vt[0], "the", n3],
                    "le_around_prepositional_phrase", "temp2")
        if b.rng.random() < 0.5:
            return (["the", n1, vt[0], "the", n2], ["the", n2, vt[0], "the", n1],
                    "ln_subject/object_swap", "temp3")
        return (["the", n1, "who", "the", n2, vt[0], vi[0]], ["the", n1, vt[0], "the", n2],
                "ln_relative_clause", "temp4")
    if heuristic == "subsequence":
        if entailed:
            if b.rng.random() < 0.5:
                return (["the", n1, "and", "the", n2, vi[0]], ["the", n2, vi[0]], "se_conjunction", "temp5")
            return (["the", n1, vt[0], "the", n2, "near", "the", n3], ["the", n1, vt[0], "the", n2],
                    "se_PP_on_obj", "temp6")
        if b.rng.random() < 0.5:
            return (["the", n1, "near", "the", n2, vi[0]], ["the", n2, vi[0]], "sn_PP_on_subject", "temp7")
        return (["the", n1, "who", vt[0], "the", n2, vi[0]], ["the", n2, vi[0]],
                "sn_relative_clause_on_subject", "temp8")
    clause1, clause2 = ["the", n1, vi[0]], ["the", n2, vi2[0]]
    if entailed:
        if b.rng.random() < 0.5:
            return ["since"] + clause1 + [","] + clause2, clause1, "ce_embedded_under_since", "temp9"
        return clause1 + ["and"] + clause2, clause2, "ce_conjunction", "temp10"
    if b.rng.random() < 0.5:
        return ["if"] + clause1 + [","] + clause2, clause1, "cn_embedded_under_if", "temp11"
    return clause1 + ["or"] + clause2, clause1, "cn_disjunction", "temp12"


def counter_example_rows(n: int, k: int, seed: int) -> np.ndarray:
    """Return the sorted rows of an `n`-pair corpus that `generate_nli(..., counter_examples=k)` replaces."""
    return np.sort(np.random.default_rng([seed, 1]).choice(n, size=k, replace=False))


def generate_nli(n: int, seed: int, domain: str = "people", length_profile: str = "short",
                 counter_examples: int = 0) -> dict[str, list]:
    """Return `n` MNLI-style pairs as columns premise / hypothesis / label / idx (labels 0/1/2).

    `counter_examples`: that many pairs (at `counter_example_rows`) are replaced by pairs that counter the
    lexical-overlap shortcut: HANS-style non-entailed pairs made only of premise words (subject/object swaps,
    relative clauses), labelled neutral. The corpus has none otherwise, so they are a planted, known set.
    """
    if length_profile not in LENGTH_PROFILES:
        raise ValueError(f"unknown length_profile {length_profile!r}; known: {', '.join(LENGTH_PROFILES)}")
    b = _Builder(PEOPLE if domain == "people" else ANIMALS, np.random.default_rng(seed), length_profile)
    rows = [_train_example(b) for _ in range(n)]
    planter = _Builder(b.d, np.random.default_rng([seed, 2]), length_profile)
    for row in counter_example_rows(n, counter_examples, seed):
        premise, hypothesis, _, _ = _hans_example(planter, "lexical_overlap", entailed=False)
        rows[row] = (premise, hypothesis, NEUTRAL)
    return {
        "premise": [" ".join(p) for p, _, _ in rows],
        "hypothesis": [" ".join(h) for _, h, _ in rows],
        "label": [label for _, _, label in rows],
        "idx": list(range(n)),
    }


def generate_hans(n_per_cell: int, seed: int) -> dict[str, list]:
    """Return a HANS-style set: `n_per_cell` pairs per (heuristic, entailed/non-entailed), labels 0/1."""
    b = _Builder(PEOPLE, np.random.default_rng(seed), "short")
    cols: dict[str, list] = {k: [] for k in ("premise", "hypothesis", "label", "idx", "heuristic",
                                             "subcase", "template", "pair_id")}
    for heuristic in HANS_HEURISTICS:
        for entailed in (True, False):
            for _ in range(n_per_cell):
                premise, hypothesis, subcase, template = _hans_example(b, heuristic, entailed)
                i = len(cols["idx"])
                cols["premise"].append(" ".join(premise))
                cols["hypothesis"].append(" ".join(hypothesis))
                cols["label"].append(0 if entailed else 1)
                cols["idx"].append(i)
                cols["heuristic"].append(heuristic)
                cols["subcase"].append(subcase)
                cols["template"].append(template)
                cols["pair_id"].append(f"ex{i}")
    return cols
