"""``kgp extract --round sessions``: session intent inference and localisation (LLM4SBR, Qiao et al., stage 1),
written to the graph as ``(:Session|:User)-[:INFERRED {view, prefixEnd, ...}]->(:Item)``.

**Prefixes.** A prefix is the part of a user's sequence before a target position ``prefixEnd`` (the prefix is
``seq[:prefixEnd]``, the target ``seq[prefixEnd]``). Inferring every training position with a CPU LLM is out of
reach, so per user only: the validation prefix (``prefixEnd`` = training length), the test prefix (``n - 1``) and
the last ``train_prefixes`` training prefixes (targets that are training interactions, positions >= 1); the
others have no inference and a model uses a learned fallback vector there. :func:`prefix_views` builds every
prompt from ``seq[:prefixEnd]`` only, so a prefix never shows its target or anything after it.

**Views** (:mod:`kgplatform.agent.sessions`): ``long`` = the user's history before the target, hung off the
``User``; ``short`` = the target's session before the target, hung off that ``Session`` (the user when the data
has no sessions).

**Localisation.** The answer is embedded with the encoder the item vectors were made with and the ``top_r``
nearest items of the dataset come from the item vector index (``item_text_embedding``, cosine), leaving out the
items of the prefix (the user has them already; full-ranking evaluation masks them too). An answer that names a catalogue title exactly (case,
outer punctuation, a year in parentheses and a trailing ", The" ignored) puts that item first with similarity 1.
Weights are the similarities normalised to sum to 1 (negative ones count 0). An answer whose best localised
item is below ``floor`` counts as *hallucinated* (reported with examples; its items are still stored, with their
low similarities, so a model can weigh them). Because the prefix's items are left out, an answer that repeats a
watched title (small models often do) can count as hallucinated although it names a real item; the
*grounding* of an answer (1 for any catalogue title, else its nearest item's cosine, the prefix's items included)
is stored too, and ``ungrounded`` counts answers whose grounding is below ``floor``: answers that name nothing
in the catalogue.

Resumable like the other rounds: a (user, view, prefixEnd) already stored with the same key (model | prompt
version | input hash) is skipped; each guess is written in one transaction as soon as it is localised; answers
are cached; ``shard=(i, n)`` splits the users between processes. A guess that fails validation is not stored
(the next run asks again).
"""
from __future__ import annotations

import math
import time
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .agent.cache import ResultCache
from .agent.extract import default_cache_path
from .agent.runlog import recorded_run
from .agent.llm import LLMBackend, load_backend
from .agent.schemas import title_variants
from .agent.sessions import LONG_ITEMS, SHORT_ITEMS, VIEWS, Guess, PrefixView, guess_intents, input_hash, session_prompt
from .config import Settings
from .data import leave_one_out
from .data.recdata import RecData
from .data.split import Split
from .embed import load_encoder, recorded_encoder
from .errors import ConfigError
from .graph.export import export_recdata, item_titles

if TYPE_CHECKING:  # pragma: no cover
    from .db.graph import Graph

#: how much wider than strictly needed the vector index is asked (it is approximate and shared by datasets)
_K_SLACK = 2.0
_MIN_K = 100
N_EXAMPLES = 5


# ---------------------------------------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------------------------------------
def parse_views(views: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"long,short"`` → ``("long", "short")``; a :class:`ConfigError` for anything else."""
    if views is None:
        return VIEWS
    parts = [v.strip() for v in (views.split(",") if isinstance(views, str) else views)]
    if not parts or any(v not in VIEWS for v in parts) or len(set(parts)) != len(parts):
        raise ConfigError(f"views must be a comma-separated subset of {','.join(VIEWS)}, got {views!r}")
    return tuple(v for v in VIEWS if v in parts)


def check_options(*, train_prefixes: int, top_r: int, floor: float, limit: int | None,
                  shard: tuple[int, int] | None) -> None:
    if isinstance(train_prefixes, bool) or not isinstance(train_prefixes, int) or train_prefixes < 0:
        raise ConfigError(f"train prefixes must be an integer >= 0, got {train_prefixes!r}")
    if isinstance(top_r, bool) or not isinstance(top_r, int) or not 1 <= top_r <= 100:
        raise ConfigError(f"top-r must be an integer from 1 to 100, got {top_r!r}")
    if not isinstance(floor, (int, float)) or math.isnan(floor) or not -1.0 <= floor <= 1.0:
        raise ConfigError(f"floor must be a cosine similarity from -1 to 1, got {floor!r}")
    if limit is not None and limit < 0:
        raise ConfigError("limit must be >= 0")
    if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise ConfigError(f"shard must be I/N with 0 <= I < N, got {shard[0]}/{shard[1]}")


# ---------------------------------------------------------------------------------------------------------
# prefixes
# ---------------------------------------------------------------------------------------------------------
def prefix_ends(n: int, train_len: int, train_prefixes: int) -> list[tuple[int, str]]:
    """``(prefixEnd, phase)`` of the prefixes inferred for a sequence of ``n`` items with ``train_len`` training
    ones: the last ``train_prefixes`` training targets (positions >= 1), the validation and the test target."""
    out = [(e, "train") for e in range(max(1, train_len - train_prefixes), train_len)]
    if n >= 3:
        out.append((train_len, "valid"))
    if n >= 2:
        out.append((n - 1, "test"))
    return out


def training_prefix_count(data: RecData, split: Split) -> int:
    """Training prefixes of a dataset (training targets with at least one item before them)."""
    return int((split.train_len - 1).clamp(min=0).sum())


def prefix_views(data: RecData, split: Split, titles: dict[str, str], *, views: tuple[str, ...] = VIEWS,
                 train_prefixes: int = 3, users: list[int] | None = None) -> list[list[PrefixView]]:
    """Per user (index order, or ``users``), the prompts of their inferred prefixes, each built from the items
    before its ``prefixEnd`` only (see the module docstring)."""
    out = []
    sess = data.seq_session
    for u in (range(data.num_users) if users is None else users):
        lo, hi = int(data.seq_indptr[u]), int(data.seq_indptr[u + 1])
        seq = data.seq_items[lo:hi].tolist()
        ords = sess[lo:hi].tolist() if sess is not None else None
        uid = data.user_ids[u]
        mine = []
        for end, phase in prefix_ends(len(seq), int(split.train_len[u]), train_prefixes):
            before = seq[:end]  # the prefix: nothing at or after the target
            seen = frozenset(data.item_ids[i] for i in before)
            for view in views:
                if view == "long":
                    shown, anchor = before[-LONG_ITEMS:], uid
                else:
                    start = end
                    if ords is not None:
                        while start > 0 and ords[start - 1] == ords[end]:
                            start -= 1
                    shown = before[start:][-SHORT_ITEMS:] or before[-SHORT_ITEMS:]
                    anchor = f"{uid}#{ords[end]}" if ords is not None else uid
                ids = tuple(data.item_ids[i] for i in shown)
                mine.append(PrefixView(uid, end, view, tuple(titles.get(i) or i.split(":", 1)[-1] for i in ids),
                                       ids, anchor, phase, seen))
        out.append(mine)
    return out


# ---------------------------------------------------------------------------------------------------------
# localisation
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Localized:
    item: str
    score: float
    rank: int
    weight: float


class Localizer:
    """Answer text → the ``top_r`` nearest items of a dataset (see the module docstring)."""

    def __init__(self, graph: Graph, settings: Settings, dataset: str, titles: dict[str, str], top_r: int = 5,
                 encoder=None) -> None:
        self.graph, self.dataset, self.top_r = graph, dataset, top_r
        rec = recorded_encoder(graph)
        share = graph.read_one("sessions/index_share", dataset=dataset) or {"total": 0, "mine": 0}
        self.total, self.mine = int(share["total"]), int(share["mine"])
        if rec is None or self.mine == 0:
            raise ConfigError(f"the items of {dataset!r} have no text vectors to localise answers with",
                              hint=f"run: kgp embed -d {dataset}")
        self.encoder = encoder or load_encoder(settings, rec["name"])
        self.by_title: dict[str, list[str]] = {}
        for iid, t in titles.items():
            for key in title_variants(t) if t else ():
                self.by_title.setdefault(key, []).append(iid)

    def exact(self, text: str) -> list[str]:
        """Items whose title the answer names exactly (sorted ids)."""
        found: set[str] = set()
        for key in title_variants(text):
            found.update(self.by_title.get(key, ()))
        return sorted(found)

    def vectors(self, texts: list[str]):
        return self.encoder.encode(texts)

    def nearest(self, vector, exclude: set[str], r: int) -> list[tuple[str, float]]:
        need = r + len(exclude)
        k = min(self.total, max(_MIN_K, math.ceil(need * _K_SLACK * self.total / self.mine)) + 10)
        while True:
            rows = self.graph.read("sessions/localize_items", vector=[float(x) for x in vector], k=k,
                                   dataset=self.dataset, exclude=sorted(exclude), r=r)
            if len(rows) >= r or k >= self.total:
                return [(row["id"], float(row["score"])) for row in rows]
            k = min(self.total, 4 * k)

    def grounding(self, text: str, vector=None) -> float:
        """How close the answer is to *any* item of the dataset (the prefix's own items included): 1 for a
        catalogue title, else the cosine of its nearest item."""
        if self.exact(text):
            return 1.0
        vector = self.vectors([text])[0] if vector is None else vector
        near = self.nearest(vector, set(), 1)
        return near[0][1] if near else -1.0

    def localize(self, text: str, exclude: set[str] | tuple[str, ...] = (), vector=None) -> list[Localized]:
        exclude = set(exclude)
        vector = self.vectors([text])[0] if vector is None else vector
        first = [(i, 1.0) for i in self.exact(text) if i not in exclude][: self.top_r]
        taken = {i for i, _ in first}
        near = [(i, s) for i, s in self.nearest(vector, exclude | taken, self.top_r)]
        picked = (first + near)[: self.top_r]
        total = sum(max(s, 0.0) for _, s in picked)
        return [Localized(i, round(s, 6), k + 1, round(max(s, 0.0) / total, 6) if total > 0 else 1.0 / len(picked))
                for k, (i, s) in enumerate(picked)]


# ---------------------------------------------------------------------------------------------------------
# the round
# ---------------------------------------------------------------------------------------------------------
@dataclass
class SessionIntentSummary:
    model: str
    prompt_versions: dict[str, str]
    run_id: str
    dataset: str
    views: list[str]
    train_prefixes: int
    top_r: int
    floor: float
    users: int = 0
    considered: int = 0  # prefix views
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    cached: int = 0
    llm_calls: int = 0
    echo: int = 0  # answers that name a title the prompt showed
    exact_title: int = 0  # answers that name a catalogue title exactly
    hallucinated: int = 0  # answers whose best localised item is below the floor
    ungrounded: int = 0  # answers near no catalogue item at all (prefix items included)
    target_in_top_r: int = 0  # validation/test guesses whose localised items hold the target
    heldout_guesses: int = 0
    llm_seconds: float = 0.0
    seconds: float = 0.0
    train_prefixes_total: int = 0  # training prefixes of the users considered
    train_prefixes_inferred: int = 0
    dataset_train_prefixes: int = 0  # training prefixes of the whole dataset
    best_scores: list[float] = field(default_factory=list, repr=False)
    examples_good: list[dict[str, Any]] = field(default_factory=list)
    examples_bad: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def hallucination_rate(self) -> float | None:
        return self.hallucinated / self.ok if self.ok else None

    @property
    def ungrounded_rate(self) -> float | None:
        return self.ungrounded / self.ok if self.ok else None

    @property
    def calls_per_s(self) -> float:
        return self.llm_calls / self.llm_seconds if self.llm_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        scores = sorted(d.pop("best_scores"))
        d["best_score_quantiles"] = ({q: round(scores[min(len(scores) - 1, int(q * len(scores)))], 4)
                                      for q in (0.1, 0.25, 0.5, 0.75, 0.9)} if scores else {})
        d["hallucination_rate"] = None if self.hallucination_rate is None else round(self.hallucination_rate, 4)
        d["ungrounded_rate"] = None if self.ungrounded_rate is None else round(self.ungrounded_rate, 4)
        d["echo_rate"] = round(self.echo / self.ok, 4) if self.ok else None
        d["target_in_top_r_rate"] = (round(self.target_in_top_r / self.heldout_guesses, 4)
                                     if self.heldout_guesses else None)
        d["calls_per_s"] = round(self.calls_per_s, 4)
        d["train_prefix_fraction_users"] = (round(self.train_prefixes_inferred / self.train_prefixes_total, 4)
                                            if self.train_prefixes_total else None)
        d["train_prefix_fraction_dataset"] = (round(self.train_prefixes_inferred / self.dataset_train_prefixes, 4)
                                              if self.dataset_train_prefixes else None)
        return d

    def lines(self) -> list[str]:
        d = self.to_dict()
        rate = "-" if d["hallucination_rate"] is None else f"{100 * d['hallucination_rate']:.1f}%"
        return [f"session intents ({self.model}, views {','.join(self.views)}, run {self.run_id})",
                f"  {self.users} users, {self.considered} prefix views: ok {self.ok}, failed {self.failed},"
                f" skipped {self.skipped}; {self.llm_calls} LLM calls ({self.calls_per_s:.2f}/s), {self.cached} cached",
                f"  hallucinated (best item < {self.floor}) {rate}; ungrounded {self.ungrounded};"
                f" echoes a shown title {self.echo};"
                f" names a catalogue title {self.exact_title}; target in top-{self.top_r}"
                f" {self.target_in_top_r}/{self.heldout_guesses}",
                f"  training prefixes inferred {self.train_prefixes_inferred}/{self.train_prefixes_total}"
                f" (of the dataset's {self.dataset_train_prefixes}); {self.seconds:.1f}s"]


def _shard_of(uid: str, n: int) -> int:
    return zlib.crc32(uid.encode("utf-8")) % n


def _example(g: Guess, loc: list[Localized], titles: dict[str, str], target: str | None) -> dict[str, Any]:
    p = g.prefix
    return {"user": p.user, "prefixEnd": p.prefix_end, "phase": p.phase, "view": p.view,
            "shown": list(p.titles[-5:]), "answer": g.text, "echo": g.echo,
            "localized": [{"title": titles.get(x.item, x.item), "score": round(x.score, 3)} for x in loc],
            "target": titles.get(target, target) if target else None}


def extract_session_intents(graph: Graph, settings: Settings, dataset: str, *, views=None,
                            train_prefixes: int | None = None, top_r: int | None = None,
                            floor: float | None = None, limit: int | None = None,
                            shard: tuple[int, int] | None = None, model: str | None = None,
                            endpoint: str | None = None, backend: LLMBackend | None = None, redo: bool = False,
                            use_cache: bool = True, ids: list[str] | None = None, log=None
                            ) -> SessionIntentSummary:
    """Infer, localise and store session intents for a dataset's users (see the module docstring).

    Args:
        views: ``long``, ``short`` or both (a list or ``"long,short"``).
        train_prefixes: training prefixes inferred per user (the last ones; default
            ``Settings.session_train_prefixes``), besides the validation and test prefix.
        top_r: items an answer is localised to (``Settings.session_top_r``).
        floor: similarity under which an answer counts as hallucinated (``Settings.session_floor``).
        limit: only the first ``limit`` users by id with a prefix (two interactions or more; stable across re-runs);
            ``shard=(i, n)``: only users whose
            id hashes (CRC-32) to ``i`` modulo ``n`` (after ``limit``); ``ids``: only these users.
        redo: ask again for prefixes already stored with the same model, prompt and input.
    """
    views = parse_views(views)
    train_prefixes = settings.session_train_prefixes if train_prefixes is None else train_prefixes
    top_r = settings.session_top_r if top_r is None else top_r
    floor = settings.session_floor if floor is None else floor
    check_options(train_prefixes=train_prefixes, top_r=top_r, floor=floor, limit=limit, shard=shard)
    started = time.perf_counter()
    data, _ = export_recdata(graph, dataset, kg=False, intents=False, text=False, progress=False)
    if data.num_users == 0:
        raise ConfigError(f"dataset {dataset!r} has no users", hint="kgp ingest it first (kgp db status lists datasets)")
    split = leave_one_out(data)
    titles = item_titles(graph, dataset)
    lengths = data.seq_lengths.tolist()
    order = sorted((u for u in range(data.num_users) if lengths[u] >= 2), key=lambda u: data.user_ids[u])
    if ids is not None:
        wanted = set(ids)
        order = [u for u in order if data.user_ids[u] in wanted]
    if limit is not None:
        order = order[:limit]
    if shard is not None:
        order = [u for u in order if _shard_of(data.user_ids[u], shard[1]) == shard[0]]
    localizer = Localizer(graph, settings, dataset, titles, top_r)

    be = backend or load_backend(settings, model, endpoint)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    versions = {v: session_prompt(v)[1] for v in views}
    s = SessionIntentSummary(be.model_id, versions, f"sessions-{stamp}-{uuid.uuid4().hex[:6]}", dataset,
                             list(views), train_prefixes, top_r, float(floor), users=len(order),
                             dataset_train_prefixes=training_prefix_count(data, split))
    for u in order:
        tl = int(split.train_len[u])
        s.train_prefixes_total += max(tl - 1, 0)
        s.train_prefixes_inferred += len(range(max(1, tl - train_prefixes), tl))
    per_user = prefix_views(data, split, titles, views=views, train_prefixes=train_prefixes, users=order)
    existing = {(r["user"], r["view"], int(r["prefixEnd"])): r["key"]
                for r in graph.read("sessions/existing", dataset=dataset)}
    todo: list[PrefixView] = []
    for prefixes in per_user:
        for p in prefixes:
            s.considered += 1
            key = f"{be.model_id}|{versions[p.view]}|{input_hash(p)}"
            if not redo and existing.get((p.user, p.view, p.prefix_end)) == key:
                s.skipped += 1
                continue
            todo.append(p)
    index_of = {uid: u for u, uid in enumerate(data.user_ids)}

    def target_of(p: PrefixView) -> str:
        u = index_of[p.user]
        return data.item_ids[int(data.seq_items[int(data.seq_indptr[u]) + p.prefix_end])]

    cache = ResultCache(default_cache_path(settings) if use_cache else None)
    clock = [time.perf_counter()]

    def write(g: Guess) -> None:
        s.llm_seconds += time.perf_counter() - clock[0]
        s.llm_calls += g.attempts
        p = g.prefix
        if not g.ok:
            s.failed += 1
            if len(s.failures) < 50:
                s.failures.append({"user": p.user, "view": p.view, "prefixEnd": str(p.prefix_end),
                                   "reason": g.error or ""})
        else:
            vector = localizer.vectors([g.text])[0]
            loc = localizer.localize(g.text, p.seen, vector)
            # the index is approximate: a narrower query can miss what the localisation found
            grounding = max(localizer.grounding(g.text, vector), loc[0].score if loc else -1.0)
            s.ok += 1
            s.ungrounded += grounding < floor
            s.echo += g.echo
            s.exact_title += bool(localizer.exact(g.text))
            best = loc[0].score if loc else -1.0
            s.best_scores.append(best)
            target = target_of(p)
            if p.phase != "train":
                s.heldout_guesses += 1
                s.target_in_top_r += any(x.item == target for x in loc)
            bad = best < floor
            s.hallucinated += bad
            pool = s.examples_bad if bad else s.examples_good
            if len(pool) < N_EXAMPLES:
                pool.append({**_example(g, loc, titles, target), "grounding": round(grounding, 3)})
            graph.write("sessions/write_inferred", run=s.run_id, row={
                "user": p.user, "anchor": p.anchor, "view": p.view, "prefixEnd": p.prefix_end, "phase": p.phase,
                "key": f"{g.model}|{g.prompt_version}|{g.input_hash}", "text": g.text, "model": g.model,
                "grounding": round(float(grounding), 6),
                "promptVersion": g.prompt_version,
                "items": [{"id": x.item, "score": x.score, "rank": x.rank, "weight": x.weight} for x in loc]})
        if log:
            log(f"[sessions] {p.user} {p.view}@{p.prefix_end}: {g.text if g.ok else 'failed'}"
                f" ({s.ok + s.failed}/{len(todo)})")
        clock[0] = time.perf_counter()

    def run_props() -> dict[str, Any]:
        return {"round": "sessions", "model": s.model, "promptVersion": ",".join(versions.values()),
                "dataset": dataset, "ok": s.ok, "failed": s.failed, "skipped": s.skipped,
                "seconds": round(s.seconds, 3), "llmCalls": s.llm_calls, "hallucinated": s.hallucinated,
                "ungrounded": s.ungrounded, "floor": float(floor), "topR": top_r, "trainPrefixes": train_prefixes}

    with recorded_run(graph, s, run_props, cache=cache, started=started):
        guess_intents(be, todo, cache=cache, retries=settings.llm_retries, on_result=write)
    return s


def session_intents_report(graph: Graph, dataset: str, *, floor: float = 0.7, run: str | None = None,
                           examples: int = N_EXAMPLES) -> dict[str, Any]:
    """What the graph holds: guesses per view, the hallucination rate (best localised item below ``floor``),
    the ungrounded rate (answer near no catalogue item) and examples of each kind, spread over the users.

    Kinds: ``new_title`` (names a catalogue title the user has not had: it is localised first, similarity 1),
    ``seen_title`` (names a title of the prefix), ``near`` (no exact title, grounding >= floor), ``ungrounded``
    (grounding < floor)."""
    check_options(train_prefixes=0, top_r=1, floor=floor, limit=None, shard=None)
    rows = graph.read("sessions/read_inferred", dataset=dataset, run=run)
    guesses: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        guesses.setdefault((r["user"], r["view"], int(r["prefixEnd"])), []).append(r)
    per_view: dict[str, int] = {}
    kinds: dict[str, list[dict[str, Any]]] = {"new_title": [], "seen_title": [], "near": [], "ungrounded": []}
    hallucinated = 0
    for (user, view, end), items in sorted(guesses.items()):
        per_view[view] = per_view.get(view, 0) + 1
        items.sort(key=lambda r: r["rank"])
        best = float(items[0]["score"])
        grounding = max(float(items[0]["grounding"] if items[0]["grounding"] is not None else best), best)
        hallucinated += best < floor
        kind = ("new_title" if best >= 1.0 else "seen_title" if grounding >= 1.0 else
                "near" if grounding >= floor else "ungrounded")
        kinds[kind].append({"user": user, "view": view, "prefixEnd": end, "phase": items[0]["phase"],
                            "answer": items[0]["text"], "grounding": round(grounding, 3),
                            "localized": [{"title": r["title"], "score": round(float(r["score"]), 3)}
                                          for r in items]})
    n = len(guesses)

    def spread(xs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        step = max(1, len(xs) // max(examples, 1))
        return xs[::step][:examples]

    return {"dataset": dataset, "run": run, "floor": floor, "guesses": n, "users": len({k[0] for k in guesses}),
            "per_view": per_view, "hallucinated": hallucinated,
            "hallucination_rate": round(hallucinated / n, 4) if n else None,
            "ungrounded": len(kinds["ungrounded"]),
            "ungrounded_rate": round(len(kinds["ungrounded"]) / n, 4) if n else None,
            "kinds": {k: len(v) for k, v in kinds.items()},
            "runs": sorted({r["run"] for r in rows}), "models": sorted({r["model"] for r in rows}),
            "examples": {k: spread(v) for k, v in kinds.items()}}


__all__ = ["Localized", "Localizer", "SessionIntentSummary", "extract_session_intents", "parse_views",
           "prefix_ends", "prefix_views", "session_intents_report"]
