"""Comparison reports: ``results.json`` (everything, with the command that produced it), ``report.md``
(a table per protocol with 95 % intervals, the paired differences, RecBole side by side) and ``results.png``
(NDCG@10 per model with intervals under both protocols, and validation training curves)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kgplatform.train.seeds import SeedSummary

if TYPE_CHECKING:
    from kgplatform.experiment.compare import Comparison

TABLE_METRICS = ("HR@1", "HR@10", "NDCG@10", "NDCG@20", "MRR", "MRR@10")
CI_METRICS = ("HR@10", "NDCG@10")
PROTOCOL_TITLES = {"full": "full ranking over all items",
                   "sampled99": "99 sampled negatives (drawn once, stored; the same candidates for every model)"}
CONVENTION_NOTES = {
    "kgp": "convention `kgp`: the user's earlier items are masked for every model; negatives are items the user "
           "never interacted with, without replacement",
    "recbole": "convention `recbole` (RecBole 1.2.1's): general models mask the user's earlier items, sequential "
               "models rank every item unmasked; negatives drawn with replacement (general: avoiding the user's "
               "items up to the phase, sequential: avoiding only the target); MRR@10 truncated",
}


def _ci(summary: SeedSummary, proto: str, metric: str, phase: str = "test") -> str:
    try:
        iv = summary.interval(phase, proto, metric)
    except Exception:  # noqa: BLE001 — a row without per-user values (loaded from an old record)
        ms = summary.stats[phase][proto]
        return f"{ms[metric][0]:.4f}"
    return iv.format()


def markdown_tables(summaries: Sequence[SeedSummary], dataset: str, phase: str = "test",
                    convention: str = "kgp") -> str:
    protocols: list[str] = []
    for s in summaries:
        for p in s.stats.get(phase, {}):
            if p not in protocols:
                protocols.append(p)
    out = [f"_{CONVENTION_NOTES.get(convention, convention)}. Intervals: 95 % bootstrap over users, seeds "
           "pooled; ± is the std over seeds._\n"]
    for proto in protocols:
        out.append(f"**{dataset} — {phase}, {PROTOCOL_TITLES.get(proto, proto)}**\n")
        cols = [f"{m} [95 % CI]" for m in CI_METRICS] + [m for m in TABLE_METRICS if m not in CI_METRICS]
        out.append("| model | seeds | s/epoch | " + " | ".join(cols) + " |")
        out.append("|---" * (3 + len(cols)) + "|")
        for s in summaries:
            ms = s.stats.get(phase, {}).get(proto)
            if not ms:
                continue
            cells = [_ci(s, proto, m, phase) if m in ms else "–" for m in CI_METRICS]
            cells += [f"{ms[m][0]:.4f} ± {ms[m][1]:.4f}" if m in ms else "–"
                      for m in TABLE_METRICS if m not in CI_METRICS]
            out.append(f"| {s.model_name} | {len(s.seeds)} | {s.seconds_per_epoch[0]:.1f} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def differences_table(diffs: Sequence[dict]) -> str:
    if not diffs:
        return ""
    out = ["**Paired differences (A − B, same users; 95 % bootstrap interval, two-sided p)**\n",
           "| A | B | why | protocol | metric | A − B [95 % CI] | p | verdict |", "|---" * 8 + "|"]
    for d in diffs:
        why = d["why"] + (f"; {d['users']}" if d.get("users") else "") \
            + (f"; {d['phase']}" if d.get("phase", "test") != "test" else "")
        out.append(f"| {d['a']} | {d['b']} | {why} | {d['protocol']} | {d['metric']} | "
                   f"{d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] | {d['p_value']:.3g} | {d['verdict']} |")
    return "\n".join(out) + "\n"


def recbole_table(rows: Sequence[dict]) -> str:
    if not rows:
        return ""
    out = ["**RecBole 1.2.1 side by side (same exported files, same leave-one-out split; RecBole draws its own "
           "sampled negatives)**\n",
           "| model | protocol | ours NDCG@10 | RecBole NDCG@10 | ours − RecBole [95 % CI] | ours HR@10 | RecBole HR@10 "
           "| s/epoch ours / RecBole | RecBole epochs (best) | RecBole early-stopped on |", "|---" * 10 + "|"]
    for r in rows:
        ours, rb = r.get("ours", {}), r["recbole"]
        d = r.get("differences", {}).get("NDCG@10")
        dtxt = f"{d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]" if d else "–"
        ratio = (f"{r['ours_seconds_per_epoch']:.1f} / {r['recbole_seconds_per_epoch']:.1f} = "
                 f"{r['seconds_ratio']:.2f}×") if r.get("seconds_ratio") else "–"
        o_n = f"{ours['NDCG@10']:.4f}" if "NDCG@10" in ours else "–"
        o_h = f"{ours['HR@10']:.4f}" if "HR@10" in ours else "–"
        out.append(f"| {r['model']} | {r['protocol']} | {o_n} | {rb.get('NDCG@10', float('nan')):.4f} | {dtxt} | "
                   f"{o_h} | {rb.get('HR@10', float('nan')):.4f} | {ratio} | {r.get('recbole_epochs', '–')} "
                   f"({r.get('recbole_best_epoch') or '–'}) | {_stopped_on(r)} |")
    return "\n".join(out) + "\n"


def _stopped_on(r: dict) -> str:
    mode = r.get("recbole_trained_for", r.get("mode", ""))
    return "full-ranking validation" if mode == "full" else f"{mode} validation"


def plot(summaries: Sequence[SeedSummary], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [s.model_name for s in summaries]
    protos = sorted({p for s in summaries for p in s.stats.get("test", {})})
    width = 0.8 / max(1, len(protos))
    for k, proto in enumerate(protos):
        means, err = [], [[], []]
        for s in summaries:
            try:
                iv = s.interval("test", proto, "NDCG@10", resamples=500)
                means.append(iv.mean)
                err[0].append(iv.mean - iv.low)
                err[1].append(iv.high - iv.mean)
            except Exception:  # noqa: BLE001
                means.append(s.stats["test"].get(proto, {}).get("NDCG@10", (0, 0))[0])
                err[0].append(0)
                err[1].append(0)
        ax1.bar([x + k * width for x in range(len(names))], means, width, yerr=err, label=proto, capsize=3)
    ax1.set_xticks([x + width * (len(protos) - 1) / 2 for x in range(len(names))], names, rotation=20)
    ax1.set_ylabel("test NDCG@10 (95 % CI)")
    ax1.set_title("NDCG@10 per model")
    ax1.legend()
    for s in summaries:
        r = s.results[0]
        pts = [(e.epoch, e.valid.get("NDCG@10")) for e in r.log if e.valid and "NDCG@10" in e.valid]
        if pts:
            ax2.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=s.model_name)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation NDCG@10 (full ranking)")
    ax2.set_title("training curves (first seed)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(result: Comparison, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "results.json"
    tmp = json_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=1, default=str))
    tmp.replace(json_path)
    png = plot(result.summaries, out_dir / "results.png")
    md = out_dir / "report.md"
    md.write_text(f"# {result.dataset}: model comparison{' (partial)' if result.partial else ''}\n\n"
                  f"Command: `{result.command}`\n\n"
                  + markdown_tables(result.summaries, result.dataset, convention=result.convention) + "\n"
                  + differences_table(result.differences) + "\n" + recbole_table(result.recbole)
                  + "\n![metrics](results.png)\n")
    return {"json": json_path, "markdown": md, "plot": png}
