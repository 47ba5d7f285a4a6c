"""Persona labels per local LLM: the same persona descriptions (read from the graph's current Persona nodes),
labelled by each model; prints the labels, how many the validator accepted (the rest fall back to data-derived
labels) and seconds per label, with the ratio to the first model measured in the same run.

    python benchmarks/persona_labels.py -d movielens-100k --models smollm2,~/.kgplatform/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf

Runs against the database the CLI would use (``NEO4J_URI`` or the local launcher), read-only; no cache (every
label is asked again).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kgplatform.agent.llm import load_backend  # noqa: E402
from kgplatform.agent.personas import PersonaDescription, label_personas  # noqa: E402
from kgplatform.config import Settings  # noqa: E402
from kgplatform.db import connect  # noqa: E402
from kgplatform.graph.personas import list_personas  # noqa: E402

_FREEBASE = re.compile(r"^(http://rdf\.freebase\.com/ns/)?m\.[0-9a-z_]+$")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-d", "--dataset", required=True)
    ap.add_argument("--models", default="smollm2")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    s = Settings()
    graph = connect(s)
    personas = sorted(list_personas(graph, a.dataset), key=lambda p: p["index"])
    graph.close()
    if not personas:
        raise SystemExit(f"no personas for {a.dataset}: run kgp personas -d {a.dataset} first")
    descs = [PersonaDescription(list(p.get("topItems") or []),
                                [e for e in (p.get("topEntities") or []) if not _FREEBASE.match(e)],
                                list(p.get("topIntents") or [])) for p in personas]
    out = {"dataset": a.dataset, "personas": len(descs), "models": {}}
    base = None
    for m in [x.strip() for x in a.models.split(",") if x.strip()]:
        m = str(Path(m).expanduser()) if m.endswith(".gguf") else m
        t0 = time.perf_counter()
        be = load_backend(s, m)
        load_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        labels = label_personas(be, descs, cache=None, retries=s.llm_retries)
        per = (time.perf_counter() - t1) / len(descs)
        base = base or per
        ok = sum(lb.source == "llm" for lb in labels)
        out["models"][be.model_id] = {"load_s": load_s, "s_per_label": per, "ratio_to_first": per / base,
                                      "accepted": ok, "labels": [[lb.text, lb.source] for lb in labels]}
        print(f"[labels] {be.model_id}: {ok}/{len(labels)} accepted, {per:.1f} s/label "
              f"({per / base:.2f}x the first model), load {load_s:.1f} s", file=sys.stderr)
        for p, lb in zip(personas, labels):
            print(f"  persona {p['index']} ({p['size']} users): {lb.text!r}"
                  + ("" if lb.source == "llm" else f" [fallback: {lb.error}]"), file=sys.stderr)
    if a.json:
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
