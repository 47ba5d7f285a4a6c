"""Comparison reports: one JSON document, a Markdown table per protocol, and a PNG plot
(NDCG@10 per model under both protocols, and validation NDCG@10 training curves)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from kgplatform.train.seeds import SeedSummary

TABLE_METRICS = ("HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR")
PROTOCOL_TITLES = {"full": "full ranking over all items (training items masked)",
                   "sampled99": "99 sampled negatives (fixed seed, stored; same candidates for every model)"}


def markdown_tables(summaries: Sequence[SeedSummary], dataset: str, phase: str = "test") -> str:
    protocols: list[str] = []
    for s in summaries:
        for p in s.stats.get(phase, {}):
            if p not in protocols:
                protocols.append(p)
    out = []
    for proto in protocols:
        out.append(f"**{dataset} — {phase}, {PROTOCOL_TITLES.get(proto, proto)}** (mean ± std over seeds)\n")
        out.append("| model | seeds | s/epoch | " + " | ".join(TABLE_METRICS) + " |")
        out.append("|---" * (3 + len(TABLE_METRICS)) + "|")
        for s in summaries:
            ms = s.stats.get(phase, {}).get(proto)
            if not ms:
                continue
            cells = [f"{ms[m][0]:.4f} ± {ms[m][1]:.4f}" if m in ms else "–" for m in TABLE_METRICS]
            out.append(f"| {s.model_name} | {len(s.seeds)} | {s.seconds_per_epoch[0]:.1f} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def plot(summaries: Sequence[SeedSummary], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [s.model_name for s in summaries]
    protos = sorted({p for s in summaries for p in s.stats.get("test", {})})
    width = 0.8 / max(1, len(protos))
    for k, proto in enumerate(protos):
        means = [s.stats["test"].get(proto, {}).get("NDCG@10", (0, 0))[0] for s in summaries]
        stds = [s.stats["test"].get(proto, {}).get("NDCG@10", (0, 0))[1] for s in summaries]
        ax1.bar([x + k * width for x in range(len(names))], means, width, yerr=stds, label=proto, capsize=3)
    ax1.set_xticks([x + width * (len(protos) - 1) / 2 for x in range(len(names))], names)
    ax1.set_ylabel("test NDCG@10")
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


def write_report(summaries: Sequence[SeedSummary], dataset: str, out_dir: Path, *, extra: dict | None = None
                 ) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"dataset": dataset, **(extra or {}), "models": [s.to_record() for s in summaries],
           "runs": {s.model_name: [r.to_record() for r in s.results] for s in summaries}}
    json_path = out_dir / "results.json"
    json_path.write_text(json.dumps(doc, indent=1, default=str))
    png = plot(summaries, out_dir / "results.png")
    md = out_dir / "report.md"
    md.write_text(f"# {dataset}: model comparison\n\n" + markdown_tables(summaries, dataset)
                  + "\n![metrics](results.png)\n")
    return {"json": json_path, "markdown": md, "plot": png}
