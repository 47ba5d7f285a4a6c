"""Benchmark of intent extraction and embedding on CPU.

Measures, on the first N items of the tiny MovieLens fixture (real titles, genres and DBpedia abstracts):

- embed rate: texts/s of the sentence-transformers encoder (items + users), and the whole ``embed_graph`` call;
- round 1 and round 2: items/s through the agent (LangChain chain → ChatLlamaCpp → structured output →
  validation → Neo4j write), with LLM calls, retries and rejects;
- the raw llama.cpp rate for the *same* rendered prompts and grammars (``Llama.create_chat_completion``
  directly), and the agent's overhead as the ratio of the two;
- a cached re-run: the graph rebuilt from scratch and round 1 replayed from the result cache, and a re-run on
  the unchanged graph (every node skipped);
- plain vs fast (issue 13), back to back in this process on the same items: round 1, and round 2 at
  ``--related-k`` (100, the paper's setting) over a pool of at least that many intents (round 1 is first run
  on ``--pool-items`` items to build it), through ``extract`` with the result cache off — the plain LangChain
  chain one node at a time (``parallel=0``) against the fast engine (``--parallel`` widths): items/s, the
  ratio, and whether the graph written is the same (exact and related edges of every measured item). Also
  the round-2 options' prompt tokens per option under three encodings. ``--speed-only`` runs just this.

It starts its own throwaway Neo4j (the local launcher in a temporary folder) unless ``--uri`` names one —
which it WIPES. Usage::

    python benchmarks/extract.py [--items 20] [--model smollm2] [--threads N] [--uri bolt://...] [--json]
        [--speed-only] [--parallel 1,4,8] [--pool-items 60] [--related-k 100] [--rounds 1,2]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kgplatform import schema  # noqa: E402
from kgplatform.agent import extract, intent_stats, load_backend, node_intents  # noqa: E402
from kgplatform.agent.glossary import load_glossary  # noqa: E402
from kgplatform.agent.prompts import describe, format_options, round1_prompts, round2_prompts  # noqa: E402
from kgplatform.agent.schemas import IntentList, related_schema  # noqa: E402
from kgplatform.config import Settings  # noqa: E402
from kgplatform.db.graph import ConnectionInfo, Graph  # noqa: E402
from kgplatform.db.migrations import migrate  # noqa: E402
from kgplatform.embed import embed_graph, item_text  # noqa: E402
from kgplatform.ingest import load_dataset, write_dataset  # noqa: E402
from kgplatform.stats import wipe  # noqa: E402

DATASET = "ml-bench"


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def role(t: str) -> str:
    return {"system": "system", "human": "user", "ai": "assistant"}[t]


def raw_rate(llama, jobs, max_tokens: int, repeat_penalty: float) -> dict:
    """Time ``create_chat_completion`` on pre-rendered (messages, grammar) pairs: no LangChain, no graph."""
    t0 = time.perf_counter()
    completion_tokens = prompt_tokens = 0
    for messages, grammar in jobs:
        r = llama.create_chat_completion(messages, max_tokens=max_tokens, temperature=0.0, top_k=1, top_p=1.0,
                                         repeat_penalty=repeat_penalty, grammar=grammar)
        completion_tokens += r["usage"]["completion_tokens"]
        prompt_tokens += r["usage"]["prompt_tokens"]
    dt = time.perf_counter() - t0
    return {"items": len(jobs), "seconds": round(dt, 2), "items_per_s": round(len(jobs) / dt, 3),
            "completion_tokens_per_s": round(completion_tokens / dt, 1),
            "avg_prompt_tokens": round(prompt_tokens / max(len(jobs), 1)),
            "avg_completion_tokens": round(completion_tokens / max(len(jobs), 1), 1)}


MOVIE_EXAMPLES = [
    ("Jurassic Park (1993)\nGenres: Action, Adventure, Sci-Fi.\nScientists clone dinosaurs for a theme park, and "
     "the animals escape.", ["dinosaur adventure", "theme park disaster", "family blockbuster"]),
    ("Sleepless in Seattle (1993)\nGenres: Comedy, Romance.\nA widower's son calls a radio show to find his "
     "father a new wife.", ["romantic comedy", "finding love", "date night"]),
]
MOVIE_EXAMPLE_PHRASES = [p for _, ans in MOVIE_EXAMPLES for p in ans]


def _movie_examples(messages: list[dict]) -> list[dict]:
    """The same prompt with the two item few-shot pairs replaced by movie examples."""
    out = [dict(m) for m in messages]
    pairs = [i for i, m in enumerate(out) if m["role"] == "user"][:-1]
    for i, (text, ans) in zip(pairs, MOVIE_EXAMPLES):
        ask = out[i]["content"].rsplit("\n", 1)[1]
        out[i]["content"] = f"### Item Description:\n{text}\n{ask}"
        out[i + 1]["content"] = json.dumps({"intents": ans})
    return out


def _shipped_example_phrases() -> set[str]:
    from kgplatform.agent.prompts import example_keys

    return set(example_keys())


def _copy_rate(llama, jobs, texts, phrases: set[str], max_tokens: int) -> dict:
    copied_answers = copied_phrases = total = 0
    for (messages, grammar), text in zip(jobs, texts):
        r = llama.create_chat_completion(messages, max_tokens=max_tokens, temperature=0.0, top_k=1, top_p=1.0,
                                         repeat_penalty=1.3, grammar=grammar)
        try:
            answer = json.loads(r["choices"][0]["message"]["content"])["intents"]
            got = [" ".join(str(p).lower().split()) for p in answer]
        except (ValueError, KeyError, TypeError):
            continue
        hits = [p for p in got if p in phrases and p not in text]
        total += len(got)
        copied_phrases += len(hits)
        copied_answers += bool(hits)
    return {"answers": len(jobs), "answers_with_copies": copied_answers, "copied_phrases": copied_phrases,
            "phrases": total}


def _answer_shape(llama, jobs, max_tokens: int, repeat_penalty: float) -> dict:
    """How answers look: tokens generated, how many ran into max_tokens, unparsable, with repeated phrases."""
    tokens = truncated = unparsable = repeats = 0
    for messages, grammar in jobs:
        r = llama.create_chat_completion(messages, max_tokens=max_tokens, temperature=0.0, top_k=1, top_p=1.0,
                                         repeat_penalty=repeat_penalty, grammar=grammar)
        tokens += r["usage"]["completion_tokens"]
        truncated += r["choices"][0]["finish_reason"] == "length"
        try:
            phrases = json.loads(r["choices"][0]["message"]["content"])["intents"]
            keys = [" ".join(str(p).lower().split()) for p in phrases]
            repeats += len(keys) != len(set(keys))
        except (ValueError, KeyError, TypeError):
            unparsable += 1
    n = max(len(jobs), 1)
    return {"answers": len(jobs), "avg_completion_tokens": round(tokens / n, 1), "hit_max_tokens": truncated,
            "unparsable": unparsable, "with_repeated_phrases": repeats}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--uri", default=None, help="a throwaway Neo4j to use (it is wiped); default: start one")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--speed-only", action="store_true", help="only the plain vs fast comparison")
    ap.add_argument("--parallel", default="4", help="fast-engine widths to measure, comma-separated")
    ap.add_argument("--pool-items", type=int, default=60, help="items round 1 runs on to build the pool")
    ap.add_argument("--related-k", type=int, default=100)
    ap.add_argument("--rounds", default="1,2", help="which rounds the comparison measures")
    args = ap.parse_args()
    widths = [int(x) for x in args.parallel.split(",") if x.strip()]
    rounds = [int(x) for x in args.rounds.split(",") if x.strip()]

    home = Path(tempfile.mkdtemp(prefix="kgp-bench-"))
    settings = Settings(home=home, llm_model=args.model, llm_threads=args.threads, glossary="movies",
                        connection="env")
    server = None
    if args.uri:
        info = ConnectionInfo(args.uri, None, None)
    else:
        from kgplatform.db.server import LocalServer

        say("starting a throwaway Neo4j …")
        server = LocalServer(home / "neo4j", bolt_port=0, http_port=0, auth=False, heap="1g", pagecache="256m")
        info = ConnectionInfo(server.start().uri, None, None)
    graph = Graph.open(info)
    out: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                             "load_avg_start": [round(x, 2) for x in os.getloadavg()]},
                 "items": args.items}
    try:
        wipe(graph)
        migrate(graph)
        parsed = load_dataset("movielens-100k", args.data / "movielens-100k-tiny", name=DATASET,
                              dbpedia_dir=args.data / "movielens-100k" / "dbpedia")
        nodes = dataclasses.replace(parsed, interactions=[], sessions=[], session_items=[], entities=[], facts=[])
        write_dataset(graph, nodes, progress=False)

        if args.speed_only:
            embed_graph(graph, settings, DATASET, progress=False, labels=[schema.ITEM])
            out["speed"] = speed_comparison(graph, settings, args.items, widths, args.pool_items, args.related_k,
                                            rounds)
            out["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
            out["llm"] = _llm_info(settings)
            return _emit(out, args.json, speed_only=True)

        # --- embeddings ------------------------------------------------------------------------------
        say("embedding items and users …")
        emb = embed_graph(graph, settings, DATASET, progress=False, labels=[schema.ITEM, schema.USER])
        out["embed"] = {"encoder": emb.encoder, "dimensions": emb.dimensions, "texts": emb.encoded,
                        "texts_per_s": round(emb.texts_per_s, 1), "call_seconds": round(emb.seconds, 2)}

        # --- round 1 through the agent ------------------------------------------------------------------
        be = load_backend(settings)
        llama = be.llama
        say(f"round 1 on {args.items} items …")
        r1 = extract(graph, settings, round=1, dataset=DATASET, limit=args.items, items_only=True, progress=False)
        out["round1"] = _summary(r1)

        # raw llama.cpp on the same prompts and grammar
        from langchain_core.utils.function_calling import convert_to_openai_tool
        from llama_cpp import LlamaGrammar

        gloss = load_glossary("movies")
        items = graph.read("agent/page_items", dataset=DATASET, after="", page=args.items)
        tpl1 = round1_prompts().templates[schema.ITEM]
        g1 = LlamaGrammar.from_json_schema(json.dumps(convert_to_openai_tool(IntentList)["function"]["parameters"]),
                                           verbose=False)
        jobs1 = []
        for row in items:
            text = item_text(row["props"])
            msgs = tpl1.format_messages(description=describe(schema.ITEM, text, gloss.context(text)))
            jobs1.append(([{"role": role(m.type), "content": m.content} for m in msgs], g1))
        say("raw llama.cpp, round-1 prompts …")
        from kgplatform.agent.llm import REPEAT_PENALTY

        out["raw_round1"] = raw_rate(llama, jobs1, settings.llm_max_tokens, REPEAT_PENALTY)
        agent_s = r1.seconds / max(r1.processed, 1)
        raw_s = out["raw_round1"]["seconds"] / max(len(jobs1), 1)
        out["round1"]["agent_overhead_ratio"] = round(agent_s / raw_s, 2)
        out["round1"]["llm_share_of_time"] = round(r1.llm_seconds / r1.seconds, 3) if r1.seconds else 0.0

        # --- what the countermeasures buy (small models ramble and repeat) --------------------------------
        n_abl = min(8, len(jobs1))
        say(f"ablations on {n_abl} items …")
        from llama_cpp.llama_grammar import JSON_GBNF

        unbounded = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
        free = [(m, unbounded) for m, _ in jobs1[:n_abl]]
        out["ablation"] = {
            "shipped: bounded schema, repeat penalty": _answer_shape(llama, jobs1[:n_abl], settings.llm_max_tokens,
                                                                     REPEAT_PENALTY),
            "bounded schema, no repeat penalty": _answer_shape(llama, jobs1[:n_abl], settings.llm_max_tokens, 1.0),
            "any JSON, repeat penalty": _answer_shape(llama, free, settings.llm_max_tokens, REPEAT_PENALTY),
            "any JSON, no repeat penalty": _answer_shape(llama, free, settings.llm_max_tokens, 1.0),
        }
        # few-shot examples from the same domain as the input (movies) instead of unlike ones: how often the
        # answer repeats an example phrase that the item's text does not contain
        like = [(_movie_examples(m), g) for m, g in jobs1[:n_abl]]
        texts = [item_text(row["props"]).lower() for row in items[:n_abl]]
        out["ablation"]["copied_example_phrases"] = {
            "unlike_examples (shipped)": _copy_rate(llama, jobs1[:n_abl], texts, _shipped_example_phrases(),
                                                    settings.llm_max_tokens),
            "movie_examples": _copy_rate(llama, like, texts, set(MOVIE_EXAMPLE_PHRASES), settings.llm_max_tokens),
        }

        # --- round 2 ------------------------------------------------------------------------------------
        say(f"round 2 on {args.items} items …")
        r2 = extract(graph, settings, round=2, dataset=DATASET, limit=args.items, items_only=True, progress=False)
        out["round2"] = _summary(r2)
        tpl2 = round2_prompts().templates[schema.ITEM]
        jobs2 = []
        for row in items:
            text = item_text(row["props"])
            opts = graph.read("agent/retrieve_item_options", id=row["id"], k=settings.related_k)
            if not opts:
                continue
            names = [o["name"] for o in opts]
            from kgplatform.agent.extract import _fit_options

            desc = describe(schema.ITEM, text, gloss.context(text))
            names = _fit_options(be, tpl2, desc, names)
            msgs = tpl2.format_messages(description=desc, options=format_options(names))
            g2 = LlamaGrammar.from_json_schema(
                json.dumps(convert_to_openai_tool(related_schema(names))["function"]["parameters"]), verbose=False)
            jobs2.append(([{"role": role(m.type), "content": m.content} for m in msgs], g2))
        say("raw llama.cpp, round-2 prompts …")
        out["raw_round2"] = raw_rate(llama, jobs2, settings.llm_max_tokens, REPEAT_PENALTY)
        if jobs2 and r2.processed:
            out["round2"]["agent_overhead_ratio"] = round(
                (r2.seconds / r2.processed) / (out["raw_round2"]["seconds"] / len(jobs2)), 2)
        out["round2"]["options_offered"] = settings.related_k

        stats = intent_stats(graph, DATASET)
        out["intent_stats"] = {k: stats[k] for k in ("intents", "int_edges", "exact_edges", "related_edges",
                                                     "avg_intent_degree")}
        out["samples"] = {}
        for row in items[:6]:
            ints = node_intents(graph, row["id"])
            out["samples"][row["props"]["title"]] = {
                "exact": [r["name"] for r in ints if r["kind"] == "exact"],
                "related": [r["name"] for r in ints if r["kind"] == "related"],
            }

        # --- re-runs ------------------------------------------------------------------------------------
        t0 = time.perf_counter()
        skip = extract(graph, settings, round=1, dataset=DATASET, limit=args.items, items_only=True,
                       progress=False)
        out["rerun_unchanged_graph"] = {"seconds": round(time.perf_counter() - t0, 2), "skipped": skip.skipped,
                                        "llm_calls": skip.llm_calls}
        wipe(graph)
        migrate(graph)
        write_dataset(graph, nodes, progress=False)
        t0 = time.perf_counter()
        cached = extract(graph, settings, round=1, dataset=DATASET, limit=args.items, items_only=True,
                         progress=False)
        dt = time.perf_counter() - t0
        out["rerun_from_cache"] = {"seconds": round(dt, 2), "cached": cached.cached, "llm_calls": cached.llm_calls,
                                   "items_per_s": round(cached.processed / dt, 1) if dt else 0.0,
                                   "speedup_vs_round1": round(r1.seconds / dt, 1) if dt else 0.0}
        # --- plain vs fast (issue 13) ------------------------------------------------------------------
        out["speed"] = speed_comparison(graph, settings, args.items, widths, args.pool_items, args.related_k,
                                        rounds)
        out["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        out["llm"] = _llm_info(settings)
    finally:
        graph.close()
        if server is not None:
            server.stop()
    return _emit(out, args.json)


def _llm_info(settings) -> dict:
    from kgplatform.agent.llm import resolve_model

    return {"model": resolve_model(settings.llm_model, settings.home).model_id,
            "threads": settings.llm_threads or max(1, (os.cpu_count() or 2) - 1),
            "n_ctx": settings.llm_ctx, "max_tokens": settings.llm_max_tokens}


def _emit(out: dict, as_json: bool, speed_only: bool = False) -> int:
    if as_json:
        print(json.dumps(out, indent=2))
    elif speed_only:
        m = out["machine"]
        print(f"machine: {m['cpus']} CPUs, load average {m['load_avg_start'][0]} → {m['load_avg_end'][0]}; "
              f"LLM {out['llm']['model']} ({out['llm']['threads']} threads)")
        _print_speed(out["speed"])
    else:
        _print(out)
    return 0


def _item_edges(graph, ids: list[str]) -> dict:
    """Every measured item's intent edges (kind, intent key, model, prompt version): what a run wrote."""
    return {i: sorted((r["kind"], r["key"], r.get("model"), r.get("promptVersion")) for r in node_intents(graph, i))
            for i in ids}


def _option_tokens(llama, names: list[str]) -> dict:
    """Prompt tokens per option of three encodings of the same options."""
    def count(text: str) -> int:
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    n = max(len(names), 1)
    return {"bare line (r2-v2, shipped)": round(count("\n".join(names)) / n, 2),
            "bullet '- ' (r2-v1)": round(count("\n".join(f"- {o}" for o in names)) / n, 2),
            "numbered 'N. '": round(count("\n".join(f"{k}. {o}" for k, o in enumerate(names, 1))) / n, 2)}


def speed_comparison(graph, settings, n_items: int, widths: list[int], pool_items: int, k: int,
                     rounds: list[int]) -> dict:
    """Plain chain vs fast engine, back to back on the same ``n_items`` items (result cache off)."""
    res: dict = {"items": n_items, "widths": widths, "related_k": k, "rounds": {}}
    ids = [r["id"] for r in graph.read("agent/page_items", dataset=DATASET, after="", page=n_items)]
    common = dict(dataset=DATASET, items_only=True, use_cache=False, progress=False)
    fast_w = widths[0]
    if 2 in rounds:
        # the pool round 2 chooses from: round 1 (fast) over more items than are measured
        say(f"building the intent pool: round 1 on {pool_items} items (fast, width {fast_w}) …")
        extract(graph, settings, round=1, limit=max(pool_items, n_items), parallel=fast_w, **common)
        embed_graph(graph, settings, DATASET, progress=False, labels=[schema.INTENT])
        pool = graph.read_one("agent/count_intents") or {}
        res["pool_intents"] = pool.get("intents", 0)
        offered = [len(graph.read("agent/retrieve_item_options", id=i, k=k)) for i in ids]
        res["avg_options_offered"] = round(sum(offered) / max(len(offered), 1), 1)
        be = load_backend(settings, parallel=0)
        names = [o["name"] for o in graph.read("agent/retrieve_item_options", id=ids[0], k=k)]
        res["round2_prompt_tokens_per_option"] = _option_tokens(be.llama, names)
    for rnd in rounds:
        say(f"round {rnd}, plain chain (parallel=0) on {n_items} items …")
        load0 = os.getloadavg()[0]
        plain = extract(graph, settings, round=rnd, limit=n_items, parallel=0, redo=True, **common)
        ref = _item_edges(graph, ids)
        row = {"plain": {**_summary(plain), "load_avg_1m": round(load0, 2)}, "fast": {}}
        for w in widths:
            say(f"round {rnd}, fast engine (parallel={w}) on {n_items} items …")
            load0 = os.getloadavg()[0]
            fast = extract(graph, settings, round=rnd, limit=n_items, parallel=w, redo=True, **common)
            now = _item_edges(graph, ids)
            same = now == ref
            row["fast"][w] = {**_summary(fast), "load_avg_1m": round(load0, 2), "same_graph_as_plain": same,
                              "differences": {i: {"plain": ref[i], "fast": now[i]} for i in ids if now[i] != ref[i]},
                              "speedup": round(fast.nodes_per_s / plain.nodes_per_s, 2) if plain.nodes_per_s else None}
            if rnd == 1 and 2 in rounds and not same:
                # round 2 must compare on the same round-1 intents: put the plain answers back
                extract(graph, settings, round=1, limit=n_items, parallel=0, redo=True, **common)
        res["rounds"][rnd] = row
    return res


def _print_speed(sp: dict) -> None:
    if "pool_intents" in sp:
        print(f"round-2 pool: {sp['pool_intents']} intents; {sp['avg_options_offered']} options offered per item "
              f"(K = {sp['related_k']}); prompt tokens per option: "
              + ", ".join(f"{k} {v}" for k, v in sp["round2_prompt_tokens_per_option"].items()))
    for rnd, row in sp["rounds"].items():
        p = row["plain"]
        print(f"round {rnd} plain chain (parallel=0): {p['items_per_s']} items/s ({p['processed']} items, "
              f"{p['seconds']} s, {p['llm_calls']} LLM calls, load {p['load_avg_1m']})")
        for w, f in row["fast"].items():
            print(f"round {rnd} fast engine (parallel={w}): {f['items_per_s']} items/s ({f['seconds']} s, "
                  f"{f['llm_calls']} LLM calls, load {f['load_avg_1m']}) — {f['speedup']}x the plain chain; "
                  f"same graph as plain: {'yes' if f['same_graph_as_plain'] else 'NO'}")


def _summary(s) -> dict:
    return {"processed": s.processed, "ok": s.ok, "failed": s.failed, "items_per_s": round(s.nodes_per_s, 3),
            "seconds": round(s.seconds, 2), "llm_seconds": round(s.llm_seconds, 2), "llm_calls": s.llm_calls,
            "retries": s.retries, "rejected_copies": s.rejected_copies, "dropped_phrases": s.dropped_phrases,
            "links": s.links}


def _print(o: dict) -> None:
    m = o["machine"]
    print(f"machine: {m['cpus']} CPUs, load average {m['load_avg_start'][0]} → {m.get('load_avg_end', ['?'])[0]}; "
          f"LLM {o['llm']['model']} ({o['llm']['threads']} threads)")
    e = o["embed"]
    print(f"embed:   {e['texts']} texts with {e['encoder']} ({e['dimensions']}-d): {e['texts_per_s']} texts/s "
          f"(whole call {e['call_seconds']} s)")
    for r in ("round1", "round2"):
        a, raw = o[r], o[f"raw_{r}"]
        print(f"{r}:  {a['items_per_s']} items/s through the agent ({a['processed']} items, {a['ok']} ok, "
              f"{a['failed']} failed, {a['llm_calls']} LLM calls, {a['retries']} retries, "
              f"{a['rejected_copies']} parroted answers rejected, {a['links']} links)")
        print(f"         raw llama.cpp on the same prompts: {raw['items_per_s']} items/s, "
              f"{raw['completion_tokens_per_s']} generated tok/s, ~{raw['avg_prompt_tokens']} prompt tokens; "
              f"agent/raw time ratio {a.get('agent_overhead_ratio', '?')}")
    ab = o["ablation"]
    for name, v in ab.items():
        if name == "copied_example_phrases":
            continue
        print(f"answers, {name}: {v['avg_completion_tokens']} tokens on average, "
              f"{v['hit_max_tokens']}/{v['answers']} ran into max_tokens, {v['unparsable']} unparsable, "
              f"{v['with_repeated_phrases']} with repeated phrases")
    for name, v in ab["copied_example_phrases"].items():
        print(f"few-shot copying, {name}: {v['answers_with_copies']}/{v['answers']} answers repeat an example "
              f"phrase absent from the item ({v['copied_phrases']} of {v['phrases']} phrases)")
    _print_speed(o["speed"])
    s = o["intent_stats"]
    print(f"intents: {s['intents']} intents, {s['int_edges']} edges ({s['exact_edges']} exact, "
          f"{s['related_edges']} related), avg intent degree {s['avg_intent_degree']}")
    c, u = o["rerun_from_cache"], o["rerun_unchanged_graph"]
    print(f"re-run:  unchanged graph {u['seconds']} s ({u['skipped']} skipped, {u['llm_calls']} LLM calls); "
          f"rebuilt graph from cache {c['seconds']} s ({c['cached']} cached, {c['llm_calls']} LLM calls, "
          f"{c['speedup_vs_round1']}x faster than round 1)")
    print("samples:")
    for title, v in o["samples"].items():
        print(f"  {title}: exact {v['exact']}; related {v['related']}")


if __name__ == "__main__":
    raise SystemExit(main())
