"""Intent quality, not only counts (``kgp intents --quality``).

Counts (Table 1) say how many intents there are; these measures say whether they are worth having. Each is
computed over the exact (round 1) intents of a dataset's items:

* ``echo_share``: share of item–intent edges whose intent merely echoes the item's own title (every content
  word of the intent is a word of the title: "B&C Eagle" for "B&C Eagle 9018 Hammer", "toy story" for
  "Toy Story (1995)").
* ``code_share``: share of edges whose intent holds a model/part number ("9018", "xj-900"; decades such as
  "1950s", ordinals and "3d"/"4k" are words, not codes).
* ``shared_intent_share``: share of the dataset's distinct intents satisfied by at least two of its items: an
  intent held by one item links it to nothing.
* ``agreement_share``: a precision proxy from data the graph already has: share of items (with intents and
  with reference labels) for which at least one intent shares a content word with the item's genres or
  DBpedia categories (``subject`` facts; any ``category`` fact). ``agreement_chance`` is the same measure with
  the intents of other items (five fixed random permutations), so the gap above chance is what the intents
  know; ``None`` where the dataset has no reference labels (most product catalogues).
* ``sample``: a seeded random sample of items with their intents, for a person to read.

:func:`knowledge_quality` does the same for fused user knowledge (``kgp extract --round knowledge --report``): its
likes against each user's top training genres, against chance, and title echoes.
"""
from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..errors import NotFound

if TYPE_CHECKING:  # pragma: no cover
    from ..db.graph import Graph

_TOKEN = re.compile(r"[a-z0-9][a-z0-9&'+-]*")
#: words that carry no topic (and words every category label holds: "American films", "English-language …")
STOPWORDS = frozenset("""
a an and the of for to in on at by with from as or is it its into about over under this that these those
film films movie movies american british english language based set series works work products product
item items new one two all best top
""".split())
#: a token with a digit that is a word, not a code: decades, ordinals, 3d / 4k
_NOT_CODE = re.compile(r"^(\d{2,4}s|\d+(st|nd|rd|th)|\d[dk])$")
_HAS_DIGIT = re.compile(r"\d")


def stem(word: str) -> str:
    """A light plural/verb stem, enough to match "thrillers" with "thriller" and "comedies" with "comedy"."""
    for suffix, repl in (("ies", "y"), ("ses", "s"), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: len(word) - len(suffix)] + repl
    return word


def content_words(text: str) -> set[str]:
    """Lower-case stemmed words of ``text`` without stopwords (years and codes kept: they matter to echoes)."""
    return {stem(t.strip("'-+")) for t in _TOKEN.findall(text.lower()) if t.strip("'-+") not in STOPWORDS}


def is_echo(intent: str, title: str | None) -> bool:
    """Every content word of the intent is a word of the title (an intent of stopwords only is no echo)."""
    if not title:
        return False
    words = content_words(intent)
    return bool(words) and words <= content_words(title)


def has_code(intent: str) -> bool:
    """The intent holds a model/part number: a token with a digit that is not a decade, ordinal, 3d or 4k."""
    return any(_HAS_DIGIT.search(t) and not _NOT_CODE.match(t) for t in _TOKEN.findall(intent.lower()))


@dataclass
class ItemIntents:
    """One item as the quality measures see it."""

    id: str
    title: str | None
    intents: list[str]
    reference: list[str]  # genre / category labels ([] where the dataset has none)
    genres: list[str] = field(default_factory=list)  # the genre labels alone


def _agrees(intents: Iterable[str], reference_words: set[str]) -> bool:
    return any(content_words(i) & reference_words for i in intents)


def _agreement(pairs: Sequence[tuple[Sequence[str], set[str]]], seed: int) -> tuple[float | None, float | None]:
    """``(share, chance)`` over ``(phrases, reference words)`` pairs: the share of pairs whose phrases share a word
    with their reference, and the same with the phrases shuffled over the pairs (five fixed permutations)."""
    if not pairs:
        return None, None
    share = sum(_agrees(ph, words) for ph, words in pairs) / len(pairs)
    rng = random.Random(seed)
    trials = []
    for _ in range(5):
        others = [ph for ph, _ in pairs]
        rng.shuffle(others)
        trials.append(sum(_agrees(o, words) for o, (_, words) in zip(others, pairs)) / len(pairs))
    return share, sum(trials) / len(trials)


def quality(items: Sequence[ItemIntents], *, intent_items: dict[str, int] | None = None, sample: int = 10,
            seed: int = 0) -> dict[str, Any]:
    """The measures of the module docstring over ``items`` (those without intents count only in ``items``).

    ``intent_items``: intent name → number of the dataset's items satisfying it (default: counted in ``items``).
    """
    with_int = [it for it in items if it.intents]
    edges = [(it, name) for it in with_int for name in it.intents]
    counts = intent_items if intent_items is not None else Counter(n for it in with_int for n in set(it.intents))
    ref = [(it, set().union(*(content_words(r) for r in it.reference))) for it in with_int if it.reference]
    ref = [(it, words) for it, words in ref if words]
    agreement, chance = _agreement([(it.intents, words) for it, words in ref], seed)
    picked = random.Random(seed).sample(with_int, min(sample, len(with_int)))
    r4 = (lambda x: None if x is None else round(x, 4))
    return {
        "items": len(items),
        "items_with_intents": len(with_int),
        "edges": len(edges),
        "intents": len(counts),
        "intents_per_item": r4(len(edges) / len(with_int)) if with_int else 0.0,
        "echo_share": r4(sum(is_echo(n, it.title) for it, n in edges) / len(edges)) if edges else None,
        "code_share": r4(sum(has_code(n) for _, n in edges) / len(edges)) if edges else None,
        "shared_intent_share": r4(sum(c >= 2 for c in counts.values()) / len(counts)) if counts else None,
        "items_with_reference": len(ref),
        "agreement_share": r4(agreement),
        "agreement_chance": r4(chance),
        "sample": [{"item": it.id, "title": it.title, "intents": it.intents} for it in picked],
    }


@dataclass
class UserKnowledge:
    """One user's fused knowledge as the knowledge measures see it."""

    id: str
    likes: list[str]
    dislikes: list[str]
    reference: list[str]  # the user's top reference words (genres / categories of the training items)
    titles: list[str]  # titles of the user's training items


def top_reference_words(labels_per_item: Iterable[Iterable[str]], top: int = 3) -> list[str]:
    """The ``top`` content words most frequent over a user's items (each item counts a word once; ties by
    word), e.g. the user's main genres."""
    counts: Counter[str] = Counter()
    for labels in labels_per_item:
        counts.update(set().union(*(content_words(x) for x in labels)) if labels else set())
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]


def knowledge_quality(users: Sequence[UserKnowledge], *, sample: int = 10, seed: int = 0) -> dict[str, Any]:
    """Fused-knowledge measures over ``users`` (those with at least one like):

    * ``like_agreement_share``: share of users (with reference words) for whom a like phrase shares a content
      word with their top reference words (their main genres / categories in training); ``like_agreement_chance``:
      the same with other users' likes (five fixed random permutations): the gap is what the profiles know.
    * ``like_echo_share``: share of like phrases that merely echo a title the user took.
    * ``likes_per_user`` / ``dislikes_per_user``: mean phrases per user; ``users_with_dislikes``.
    """
    ok = [u for u in users if u.likes]
    ref = [(u, set(u.reference)) for u in ok if u.reference]
    agreement, chance = _agreement([(u.likes, words) for u, words in ref], seed)
    likes = [(u, x) for u in ok for x in u.likes]
    picked = random.Random(seed).sample(ok, min(sample, len(ok)))
    r4 = (lambda x: None if x is None else round(x, 4))
    return {
        "users": len(users),
        "users_with_likes": len(ok),
        "likes_per_user": r4(len(likes) / len(ok)) if ok else None,
        "dislikes_per_user": r4(sum(len(u.dislikes) for u in ok) / len(ok)) if ok else None,
        "users_with_dislikes": sum(bool(u.dislikes) for u in ok),
        "like_echo_share": r4(sum(any(is_echo(x, t) for t in u.titles) for u, x in likes) / len(likes))
        if likes else None,
        "users_with_reference": len(ref),
        "like_agreement_share": r4(agreement),
        "like_agreement_chance": r4(chance),
        "sample": [{"user": u.id, "likes": u.likes, "dislikes": u.dislikes, "top_reference": u.reference}
                   for u in picked],
    }


def item_rows(graph: Graph, dataset: str, *, page: int = 2000) -> list[ItemIntents]:
    """Every item of ``dataset`` with its title, exact intents and reference labels (genres / categories)."""
    rows: list[ItemIntents] = []
    after = ""
    while True:
        batch = graph.read("agent/quality_items_page", dataset=dataset, after=after, page=page)
        if not batch:
            break
        after = batch[-1]["id"]
        rows += [ItemIntents(r["id"], r["title"], list(r["intents"]), [x for x in r["reference"] if x],
                             [x for x in r["genres"] if x]) for r in batch]
    if not rows:
        raise NotFound(f"dataset {dataset!r} has no items in the graph", hint="kgp stats lists the datasets")
    return rows


def intent_quality(graph: Graph, dataset: str, *, items: Sequence[str] | None = None, sample: int = 10,
                   seed: int = 0, page: int = 2000) -> dict[str, Any]:
    """:func:`quality` of a dataset's exact intents read from the graph (``items``: only these item ids; the
    shared-intent count still looks at every item of the dataset)."""
    wanted = set(items) if items is not None else None
    rows = [r for r in item_rows(graph, dataset, page=page) if wanted is None or r.id in wanted]
    counts = {r["name"]: int(r["items"]) for r in graph.read("agent/intent_item_counts", dataset=dataset)}
    names = {n for it in rows for n in it.intents}
    out = quality(rows, intent_items={n: c for n, c in counts.items() if n in names}, sample=sample, seed=seed)
    return {"dataset": dataset, **out}
