"""Two LLMs' session intents on the same prefixes: how near each guess lands to the item the user really took
next (LLM4SBR stage 1, ``kgp extract --round sessions``), paired by user with 95 % bootstrap intervals.

The graph keeps one guess per (user, view, prefixEnd), so a second model's round replaces the first model's
guesses there. Snapshot the first model's guesses before the second round runs, and the second's after::

    python benchmarks/session_intent_models.py snapshot -d amazon-beauty --out A.json   # e.g. SmolLM2's
    kgp extract --round sessions -d amazon-beauty --limit 60 --train-prefixes 0 --model OTHER.gguf
    python benchmarks/session_intent_models.py snapshot -d amazon-beauty --out B.json   # the other model's
    python benchmarks/session_intent_models.py compare -d amazon-beauty --a A.json --b B.json \\
        --out results/amazon-beauty/session-intents-models.json
    kgp extract --round sessions -d amazon-beauty --limit 60 --redo   # put A's guesses back (replayed from cache)

Per guess, against the prefix's target (``seq[prefixEnd]``: the next item, never shown in the prompt):

- ``target_in_top_r``: the target is among the localised items;
- ``target_cosine``: cosine between the answer's text vector and the target's item vector (the encoder the item
  vectors were made with);
- ``target_rr``: 1 / the target's rank among all catalogue items by cosine to the answer, the prefix's items left
  out as localisation leaves them out;
- ``hallucinated``: the best localised item is under the floor (0.7 unless ``--floor``);
- ``seen_title``: the answer names a title of the prefix (grounding 1, best localised item under 1).

For scale, ``last_item`` gives ``target_cosine`` and ``target_rr`` of a guess that is just the prefix's last
item (its item vector in place of the answer's): what an LLM guess has to beat to add anything over the
session's last click.

Only the guesses both snapshots hold for the same (user, view, prefixEnd) are compared; each user's guesses are
averaged, and B − A is paired by user. Progress goes to stderr, figures to stdout.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from kgplatform.config import Settings  # noqa: E402
from kgplatform.db.connect import connect  # noqa: E402

MEASURES = ("target_in_top_r", "target_cosine", "target_rr", "hallucinated", "seen_title")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _guesses(rows: list[dict]) -> dict[tuple[str, str, int], dict]:
    """(user, view, prefixEnd) → {text, model, phase, grounding, items: [(item id, score)] by rank}."""
    out: dict[tuple[str, str, int], dict] = {}
    for r in sorted(rows, key=lambda r: (r["user"], r["view"], int(r["prefixEnd"]), int(r["rank"]))):
        g = out.setdefault((r["user"], r["view"], int(r["prefixEnd"])), {
            "text": r["text"], "model": r["model"], "phase": r["phase"], "grounding": r["grounding"], "items": []})
        g["items"].append((r["item"], float(r["score"])))
    return out


def cmd_snapshot(a) -> None:
    graph = connect(Settings())
    try:
        rows = [dict(r) for r in graph.read("sessions/read_inferred", dataset=a.dataset, run=a.run)]
    finally:
        graph.close()
    if not rows:
        raise SystemExit(f"Error: {a.dataset} holds no session intents" + (f" of run {a.run}" if a.run else ""))
    guesses = _guesses(rows)
    doc = {"dataset": a.dataset, "run": a.run, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "models": sorted({g["model"] for g in guesses.values()}), "guesses": len(guesses),
           "users": len({k[0] for k in guesses}), "rows": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, default=str), encoding="utf-8")
    log(f"{a.out}: {doc['guesses']} guesses of {doc['users']} users ({', '.join(doc['models'])})")


def _target_sim(sims: np.ndarray, seq: list[int], end: int) -> tuple[float, float]:
    """(cosine of the target, 1 / its rank among the items outside the prefix) for similarities ``sims``."""
    target = seq[end]
    t = float(sims[target])
    others = np.ones(len(sims), dtype=bool)
    others[[i for i in seq[:end] if i != target]] = False  # the prefix's items are left out, as in localisation
    return t, 1.0 / (1 + int((sims[others] > t).sum()))


def last_item(keys: list, data, item_vecs: np.ndarray) -> dict[str, np.ndarray]:
    """``target_cosine`` / ``target_rr`` of the prefix's last item taken as the guess."""
    out = {m: np.zeros(len(keys)) for m in ("target_cosine", "target_rr")}
    for n, (user, _view, end) in enumerate(keys):
        seq = data.sequence(data.user_ids.index(user)).tolist()
        out["target_cosine"][n], out["target_rr"][n] = _target_sim(item_vecs @ item_vecs[seq[end - 1]], seq, end)
    return out


def measure(guesses: dict, keys: list, data, item_vecs: np.ndarray, encode, floor: float) -> dict[str, np.ndarray]:
    """Every measure of the module docstring for ``keys`` (rows in that order)."""
    texts = [guesses[k]["text"] for k in keys]
    vecs = np.asarray(encode(texts), dtype=np.float64)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True).clip(1e-12)
    out = {m: np.zeros(len(keys)) for m in MEASURES}
    for n, (user, _view, end) in enumerate(keys):
        seq = data.sequence(data.user_ids.index(user)).tolist()
        target = seq[end]
        g = guesses[(user, _view, end)]
        t, rr = _target_sim(item_vecs @ vecs[n], seq, end)
        best = float(g["items"][0][1])
        grounding = float(g["grounding"]) if g["grounding"] is not None else best
        out["target_in_top_r"][n] = float(data.item_ids[target] in {i for i, _ in g["items"]})
        out["target_cosine"][n] = t
        out["target_rr"][n] = rr
        out["hallucinated"][n] = float(best < floor)
        out["seen_title"][n] = float(grounding >= 1.0 and best < 1.0)
    return out


def cmd_compare(a) -> None:
    import torch

    from kgplatform.embed import load_encoder
    from kgplatform.eval.stats import bootstrap_interval, paired_difference
    from kgplatform.graph.export import export_recdata

    docs = {name: json.loads(Path(p).read_text(encoding="utf-8")) for name, p in (("a", a.a), ("b", a.b))}
    guesses = {name: _guesses(d["rows"]) for name, d in docs.items()}
    keys = sorted(set(guesses["a"]) & set(guesses["b"]))
    if not keys:
        raise SystemExit("Error: the two snapshots share no (user, view, prefixEnd)")
    settings = Settings()
    graph = connect(settings)
    try:
        data, _ = export_recdata(graph, a.dataset, kg=False, intents=False, text=True, progress=False)
    finally:
        graph.close()
    if data.item_text_emb is None:
        raise SystemExit(f"Error: {a.dataset} has no item text vectors (run kgp embed -d {a.dataset})")
    item_vecs = torch.nn.functional.normalize(data.item_text_emb.double(), dim=1).numpy()
    encoder = load_encoder(settings)
    log(f"{len(keys)} shared guesses of {len({k[0] for k in keys})} users")
    per = {name: measure(guesses[name], keys, data, item_vecs, encoder.encode, a.floor) for name in guesses}
    users = sorted({k[0] for k in keys})
    rows_of = {u: [n for n, k in enumerate(keys) if k[0] == u] for u in users}

    def by_user(vals: np.ndarray) -> np.ndarray:
        return np.array([vals[rows_of[u]].mean() for u in users])

    label = {name: "+".join(docs[name]["models"]) for name in docs}
    doc = {"command": a.command, "dataset": a.dataset, "floor": a.floor,
           "a": {"snapshot": a.a, "models": docs["a"]["models"], "date": docs["a"]["date"]},
           "b": {"snapshot": a.b, "models": docs["b"]["models"], "date": docs["b"]["date"]},
           "guesses": len(keys), "users": len(users),
           "per_view": {v: sum(k[1] == v for k in keys) for v in sorted({k[1] for k in keys})},
           "per_phase": {p: sum(guesses["a"][k]["phase"] == p for k in keys)
                         for p in sorted({guesses["a"][k]["phase"] for k in keys})},
           "protocol": "per guess against its prefix's target (the next item); each user's guesses averaged; "
                       "95 % bootstrap intervals over users (2,000 resamples); B − A paired by user",
           "chance": {"target_in_top_r": round(len(guesses["a"][keys[0]]["items"]) / data.num_items, 6),
                      "target_rr_uniform": round(float(np.mean(1.0 / np.arange(1, data.num_items + 1))), 6)},
           "measures": {}, "examples": []}
    base = last_item(keys, data, item_vecs)
    for m in MEASURES:
        ua, ub = by_user(per["a"][m]), by_user(per["b"][m])
        doc["measures"][m] = {"a": bootstrap_interval(ua).to_dict(), "b": bootstrap_interval(ub).to_dict(),
                              "b_minus_a": paired_difference(ub, ua, names=(label["b"], label["a"])).to_dict()}
        if m in base:
            ul = by_user(base[m])
            doc["measures"][m]["last_item"] = bootstrap_interval(ul).to_dict()
            doc["measures"][m]["a_minus_last_item"] = paired_difference(ua, ul, names=(label["a"], "last item")
                                                                        ).to_dict()
            doc["measures"][m]["b_minus_last_item"] = paired_difference(ub, ul, names=(label["b"], "last item")
                                                                        ).to_dict()
        d = doc["measures"][m]
        print(f"{m:<16} A {d['a']['mean']:.4f}  B {d['b']['mean']:.4f}  B − A {d['b_minus_a']['mean']:+.4f} "
              f"[{d['b_minus_a']['low']:+.4f}, {d['b_minus_a']['high']:+.4f}]"
              + (f"  last item {d['last_item']['mean']:.4f}" if "last_item" in d else ""))
    step = max(1, len(keys) // a.examples)
    for n in range(0, len(keys), step)[: a.examples]:
        k = keys[n]
        doc["examples"].append({"user": k[0], "view": k[1], "prefixEnd": k[2],
                                "target": data.item_ids[data.sequence(data.user_ids.index(k[0])).tolist()[k[2]]],
                                "a": guesses["a"][k]["text"], "b": guesses["b"][k]["text"],
                                "a_target_cosine": round(float(per["a"]["target_cosine"][n]), 3),
                                "b_target_cosine": round(float(per["b"]["target_cosine"][n]), 3)})
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    log(f"wrote {a.out}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("snapshot", help="save the session intents the graph holds now")
    s.add_argument("-d", "--dataset", required=True)
    s.add_argument("--run", default=None, help="only this run")
    s.add_argument("--out", required=True)
    c = sub.add_parser("compare", help="B − A on the guesses both snapshots hold")
    c.add_argument("-d", "--dataset", required=True)
    c.add_argument("--a", required=True)
    c.add_argument("--b", required=True)
    c.add_argument("--floor", type=float, default=0.7)
    c.add_argument("--examples", type=int, default=12)
    c.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    a.command = "python benchmarks/session_intent_models.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    {"snapshot": cmd_snapshot, "compare": cmd_compare}[a.cmd](a)


if __name__ == "__main__":
    main()
