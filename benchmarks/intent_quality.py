"""Intent quality per local LLM: round-1 extraction of the same items by each model, then the quality measures
of ``kgp intents --quality`` over those items (echo, code and shared shares, agreement with genres/categories
against chance), items per second, and the ratio to the first model measured in the same run.

    python benchmarks/intent_quality.py --catalogue movielens --limit 60 \\
        --models smollm2,gemma3-270m,~/.kgplatform/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf \\
        --out results/movielens-100k/intent-quality.json

The items are a private copy of a small catalogue (``intent-bench-movielens``: the 300-item MovieLens subset
with DBpedia abstracts and categories; ``intent-bench-beauty``: the items of the first 150 Amazon Beauty users),
ingested on first use, so no real dataset's intents are touched. The same first ``--limit`` items (by id) go
to every model; each model's answers replace the previous model's on those items (the result cache keeps
every answer, so a rerun is fast; ``--no-cache`` asks again). Runs against the database the CLI would use.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kgplatform.agent import extract, intent_quality  # noqa: E402
from kgplatform.agent.extract import domain_glossary  # noqa: E402
from kgplatform.config import Settings  # noqa: E402
from kgplatform.db import connect  # noqa: E402
from kgplatform.db.migrations import migrate  # noqa: E402
from kgplatform.ingest import load_dataset, write_dataset  # noqa: E402

DATA = Path(os.environ.get("KGP_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _catalogue(graph, name: str) -> str:
    dataset = f"intent-bench-{name}"
    if graph.read_one("agent/dataset_kind", dataset=dataset):
        return dataset
    if name == "movielens":
        parsed = load_dataset("movielens-100k", DATA / "movielens-100k-tiny", name=dataset,
                              dbpedia_dir=DATA / "movielens-100k" / "dbpedia")
    elif name == "beauty":
        src = DATA / "amazon-beauty"
        users = (src / "user_sequence.txt").read_text(encoding="utf-8").splitlines()[:150]
        items = {i for line in users for i in line.split()[1:]}
        titles = [line for line in (src / "item_titles.txt").read_text(encoding="utf-8").splitlines()
                  if line.split(None, 1)[0] in items]
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "user_sequence.txt").write_text("\n".join(users) + "\n", encoding="utf-8")
            (Path(tmp) / "item_titles.txt").write_text("\n".join(titles) + "\n", encoding="utf-8")
            parsed = load_dataset("amazon-beauty", Path(tmp), name=dataset)
    else:
        raise SystemExit(f"unknown catalogue {name!r} (movielens or beauty)")
    write_dataset(graph, parsed, progress=False)
    return dataset


def _share(summary, *reasons: str) -> float | None:
    n = sum(summary.dropped_reasons.get(r, 0) for r in reasons)
    return round(n / summary.phrases, 4) if summary.phrases else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--catalogue", default="movielens", choices=["movielens", "beauty"])
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--models", default="smollm2,gemma3-270m")
    ap.add_argument("--sample", type=int, default=8)
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    s = Settings()
    graph = connect(s)
    migrate(graph)
    dataset = _catalogue(graph, a.catalogue)
    ids = [r["id"] for r in graph.read("agent/page_items", dataset=dataset, after="", page=a.limit)]
    out = {"command": "python benchmarks/intent_quality.py " + " ".join(sys.argv[1:]), "dataset": dataset,
           "items": len(ids), "glossary": domain_glossary(graph, dataset), "threads": os.cpu_count(),
           "models": {}}
    base = None
    for m in [x.strip() for x in a.models.split(",") if x.strip()]:
        m = str(Path(m).expanduser()) if m.endswith(".gguf") else m
        t0 = time.perf_counter()
        summary = extract(graph, s, round=1, dataset=dataset, limit=a.limit, items_only=True, model=m,
                          use_cache=not a.no_cache, progress=False, retry_failed=True, redo=True)
        wall = time.perf_counter() - t0
        q = intent_quality(graph, dataset, items=ids, sample=a.sample)
        fresh = summary.processed - summary.cached
        per_s = fresh / summary.llm_seconds if summary.llm_seconds and fresh else None
        base = base or per_s
        row = out["models"][summary.model] = {
            "prompt_version": summary.prompt_version, "ok": summary.ok, "failed": summary.failed,
            "cached": summary.cached, "llm_calls": summary.llm_calls, "phrases": summary.phrases,
            "dropped_phrases": summary.dropped_phrases, "dropped_reasons": summary.dropped_reasons,
            # what the model proposed before post-processing (the graph keeps none of these)
            "proposed_echo_share": _share(summary, "echoes the title", "the node's own title"),
            "proposed_code_share": _share(summary, "a model number or year"),
            "items_per_s": per_s, "ratio_to_first": (per_s / base) if per_s and base else None,
            "wall_s": wall, "quality": q,
        }
        print(f"[intents] {summary.model}: ok {summary.ok}, failed {summary.failed}, "
              f"{'-' if per_s is None else f'{per_s:.2f}'} items/s, proposed echo {row['proposed_echo_share']}"
              f" code {row['proposed_code_share']}, kept echo {q['echo_share']}, "
              f"shared {q['shared_intent_share']}, agreement {q['agreement_share']} (chance {q['agreement_chance']})",
              file=sys.stderr)
        for it in q["sample"]:
            print(f"    {it['title']}: {', '.join(it['intents'])}", file=sys.stderr)
    graph.close()
    text = json.dumps(out, indent=1)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)


if __name__ == "__main__":
    main()
