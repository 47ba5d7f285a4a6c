"""LLM4SBR (stage 2): the alignment and uniformity losses, the per-prefix lookup of the inferences, the harness
passing each evaluated prefix's position, the backbone-alone variant, ablation rows and training."""
from __future__ import annotations

import math

import pytest
import torch

from kgplatform.data import LeakageError, leave_one_out, training_view
from kgplatform.data.recdata import RecData
from kgplatform.data.session_intents import SessionIntents
from kgplatform.errors import TrainingError
from kgplatform.eval import FULL
from kgplatform.experiment.compare import plan_rows
from kgplatform.models import build_model, get_spec
from kgplatform.models.llm4sbr import LLM4SBR, LLM4SBRConfig, PrefixTable
from kgplatform.models.srgnn import SRGNN, SRGNNConfig
from kgplatform.nn.llm4sbr import alignment_loss, uniformity_loss
from kgplatform.train import TrainConfig, Trainer
from kgplatform.train.samplers import PrefixSampler


def _data(num_users=60, num_items=30, n=8, seed=0, oracle=True, ends=None) -> RecData:
    """Random sequences (the next item is not predictable from behaviour) with session intents that localise every
    listed prefix (all by default) to its true target: an oracle LLM, to test that the inferences reach the score
    of exactly the prefix they belong to."""
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(0, num_items, (n,), generator=g).tolist() for _ in range(num_users)]
    text = torch.randn(num_items, 24, generator=g)
    data = RecData.from_sequences("toy", [f"u{u}" for u in range(num_users)], [f"i{i}" for i in range(num_items)],
                                  seqs, item_text_emb=text)
    rows = []
    for u, s in enumerate(seqs):
        for e in (range(1, n) if ends is None else ends):
            target = s[e] if oracle else int(torch.randint(0, num_items, (1,), generator=g))
            for view in (0, 1):
                rows.append((u, e, view, target))
    t = torch.tensor(rows)
    si = SessionIntents(t[:, 0], t[:, 1], t[:, 2], t[:, 3:4].clone(), torch.ones(len(rows), 1),
                        [f"answer {r}" for r in range(len(rows))], answer_emb=text[t[:, 3]])
    out = RecData(**{**data.__dict__, "session_intents": si})
    out.validate()
    return out


def test_alignment_and_uniformity_known_answers():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert float(alignment_loss(a, 3 * a)) == pytest.approx(0.0, abs=1e-6)  # same directions
    assert float(alignment_loss(a, -a)) == pytest.approx(4.0, abs=1e-6)  # opposite ones
    # two orthogonal unit rows: squared distance 2, log exp(-2 * 2) = -4; identical rows: 0
    assert float(uniformity_loss(a)) == pytest.approx(-4.0, abs=1e-5)
    assert float(uniformity_loss(torch.ones(3, 2))) == pytest.approx(0.0, abs=1e-6)
    # three rows: the log-mean over the 3 pairs
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    want = math.log((math.exp(-4) + math.exp(-8) + math.exp(-4)) / 3)
    assert float(uniformity_loss(b)) == pytest.approx(want, abs=1e-5)
    assert float(alignment_loss(a[:0], a[:0])) == 0.0 and float(uniformity_loss(a[:1])) == 0.0


def test_the_table_finds_each_prefix_and_falls_back_elsewhere():
    data = _data(num_users=4, ends=[3, 7])
    table = PrefixTable.from_data(data, ("long", "short"), "localized")
    assert table.keys.numel() == 8 and bool(table.has.all())
    cfg = LLM4SBRConfig(embedding_dim=8, max_seq_len=8).validate()
    m = LLM4SBR(4, 30, cfg, table)
    users, ends = torch.tensor([0, 1, 2, 3, 3]), torch.tensor([3, 7, 4, 7, 1])
    z, has = m.lookup(users, ends)
    assert has.tolist() == [[True, True], [True, True], [False, False], [True, True], [False, False]]
    seqs = data.seq_items.view(4, 8)
    for row, (u, e) in enumerate(zip(users.tolist(), ends.tolist())):
        if has[row, 0]:
            assert torch.allclose(z[row, 0], data.item_text_emb[seqs[u, e]])  # the localised item's text vector
        else:
            assert float(z[row].abs().sum()) == 0.0
    # one view only: the table holds that view
    assert PrefixTable.from_data(data, ("short",), "localized").z.shape[1] == 1


def test_the_harness_passes_each_prefix_so_an_oracle_inference_wins():
    """With inferences that name the true next item of every prefix (training, validation and test), LLM4SBR
    must rank the test item far above the backbone alone: this fails if the evaluation passed the wrong prefix
    position or the model ignored the inferences."""
    data = _data()
    quiet = dict(device="cpu", num_negatives=15, eval_every=2, patience=100, epochs=12, lr=0.01, batch_size=32, seed=0)
    res = {}
    for name, opts in (("llm", {}), ("backbone", {"use_llm": False})):
        r = Trainer(TrainConfig(**quiet), log=lambda m: None).fit(
            "llm4sbr", data, {"embedding_dim": 16, "max_seq_len": 8, **opts})
        res[name] = r.metrics["test"][FULL]["NDCG@10"]
        if name == "llm":
            assert set(r.log[0].losses) == {"ce", "align", "uniform"}
            assert r.log[-1].losses["ce"] < r.log[0].losses["ce"]
            assert r.user_embeddings.shape == (60, 16)
            assert r.recommend([0, 1], k=5)[0].shape == (2, 5)  # serving: the prefix after the test item, fallback
    assert res["llm"] > 0.6 and res["backbone"] < 0.4, res


def test_no_llm_is_the_backbone_alone():
    torch.manual_seed(0)
    m = LLM4SBR(5, 30, LLM4SBRConfig(embedding_dim=16, max_seq_len=8, use_llm=False).validate())
    torch.manual_seed(0)
    ref = SRGNN(5, 30, SRGNNConfig(embedding_dim=16, max_seq_len=8))
    seq = torch.tensor([[3, 7, 3, 9], [4, 4, -1, -1]])
    m.eval(), ref.eval()
    users = torch.tensor([0, 1])
    assert torch.allclose(m.full_scores(users, seq, torch.tensor([4, 2])), ref.full_scores(users, seq), atol=1e-6)


def test_backbone_fallback_scores_unseen_prefixes_with_the_backbone_and_the_gate_starts_where_told():
    """``fallback="backbone"``: a prefix with no inference in any view gets exactly the backbone's vector, an
    inferred one the fused vector (which differs); ``fallback="learned"`` fuses both. ``gate_bias`` sets the gate's
    start: 3 → g ≈ 0.95 for every prefix."""
    data = _data(num_users=4, ends=[3])
    table = PrefixTable.from_data(data, ("long", "short"), "localized")
    seq = data.seq_items.view(4, 8)[:, :6]
    users, ends = torch.tensor([0, 1, 2, 3]), torch.tensor([3, 5, 3, 2])  # users 0 and 2 at an inferred prefix
    seen = torch.tensor([True, False, True, False])
    out = {}
    for fallback in ("learned", "backbone"):
        torch.manual_seed(0)
        m = LLM4SBR(4, 30, LLM4SBRConfig(embedding_dim=8, max_seq_len=8, fallback=fallback).validate(), table).eval()
        local, glob = m.backbone.session_views(seq)
        hb = m.backbone.session_fuse(local, glob)
        r = m.represent(seq, users, ends)
        out[fallback] = r["h"]
        same = torch.isclose(r["h"], hb, atol=1e-6).all(1)
        if fallback == "backbone":
            assert same.tolist() == (~seen).tolist()
            assert bool((r["gate"][~seen] == 1).all())
        else:
            assert not bool(same.any())
    assert torch.allclose(out["learned"][seen], out["backbone"][seen], atol=1e-6)  # same init, same fused vector
    torch.manual_seed(0)
    g = LLM4SBR(4, 30, LLM4SBRConfig(embedding_dim=8, max_seq_len=8, gate_bias=3.0).validate(), table).eval()
    gate = g.represent(seq, users, ends)["gate"].detach()
    assert 0.85 < float(gate.mean()) < 0.99 and float(gate.min()) > 0.5
    torch.manual_seed(0)
    half = LLM4SBR(4, 30, LLM4SBRConfig(embedding_dim=8, max_seq_len=8).validate(), table).eval()
    assert abs(float(half.represent(seq, users, ends)["gate"].detach().mean()) - 0.5) < 0.1


def test_batch_align_weighs_the_terms_by_the_inferred_share_of_the_batch():
    """``align_mean="batch"``: the alignment and uniformity terms are the per-inferred-prefix ones times the share of
    the batch with an inference (here 2 of 4 prefixes, both views), the cross-entropy unchanged."""
    data = _data(num_users=4, ends=[3])
    table = PrefixTable.from_data(data, ("long", "short"), "localized")
    batch = {"seq": data.seq_items.view(4, 8)[:, :6], "users": torch.tensor([0, 1, 2, 3]),
             "prefix_end": torch.tensor([3, 5, 3, 2]), "target": torch.tensor([1, 2, 3, 4])}
    out = {}
    for mean in ("inferred", "batch"):
        torch.manual_seed(0)
        m = LLM4SBR(4, 30, LLM4SBRConfig(embedding_dim=8, max_seq_len=8, align_mean=mean).validate(), table).eval()
        out[mean] = {k: float(v.detach()) for k, v in m.loss(batch).items()}
    assert out["batch"]["ce"] == pytest.approx(out["inferred"]["ce"])
    assert out["inferred"]["align"] > 0
    for k in ("align", "uniform"):
        assert out["batch"][k] == pytest.approx(0.5 * out["inferred"][k], rel=1e-5)


def test_sasrec_backbone_trains_and_the_losses_are_finite():
    data = _data(num_users=30)
    train = training_view(data)
    torch.manual_seed(0)
    m = build_model("llm4sbr", train, config={"backbone": "sasrec", "embedding_dim": 16, "max_seq_len": 8})
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    sampler = PrefixSampler(train, m.max_seq_len, 32, torch.Generator().manual_seed(0))
    first = last = None
    for _ in range(4):
        tot = 0.0
        for b in sampler:
            losses = m.loss(b)
            assert all(torch.isfinite(v) for v in losses.values())
            loss = sum(losses.values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach())
        first = tot if first is None else first
        last = tot
    assert last < first


def test_training_reads_training_prefixes_only():
    data = _data(num_users=10)
    split = leave_one_out(data)
    train = training_view(data, split)
    for b in PrefixSampler(train, 8, 64, torch.Generator().manual_seed(0)):
        assert bool((b["prefix_end"] < split.train_len[b["users"]]).all())  # no validation/test target
        assert bool((b["prefix_end"] >= 1).all())
    spec = get_spec("llm4sbr")
    with pytest.raises(LeakageError):
        spec.build(data, spec.make_config(), torch.Generator())


def test_options_ablations_and_missing_inputs():
    rows = plan_rows(["llm4sbr"], ["llm4sbr:no_llm", "llm4sbr:long_only", "llm4sbr:no_localization",
                                   "llm4sbr:no_align", "llm4sbr:short_only"])
    opts = {r.name: r.model_options for r in rows}
    assert opts["llm4sbr:no_llm"]["use_llm"] is False and opts["llm4sbr:no_align"]["align_weight"] == 0.0
    assert tuple(opts["llm4sbr:long_only"]["views"]) == ("long",) and opts["llm4sbr:no_localization"]["semantic"] == "answer"
    variants = {r.name: r.model_options for r in plan_rows([], ["llm4sbr:backbone_fallback", "llm4sbr:open_gate",
                                                               "llm4sbr:batch_align"])}
    assert variants["llm4sbr:backbone_fallback"]["fallback"] == "backbone"
    assert variants["llm4sbr:open_gate"]["gate_bias"] == 3.0 and variants["llm4sbr:batch_align"]["align_mean"] == "batch"
    spec = get_spec("llm4sbr")
    for bad in ({"backbone": "gru"}, {"views": "medium"}, {"align_weight": -1}, {"semantic": "raw"},
                {"fallback": "zero"}, {"gate_bias": "open"}, {"gate_bias": float("nan")}, {"align_mean": "all"}):
        with pytest.raises(TrainingError):
            spec.make_config(bad)
    plain = RecData.from_sequences("toy", ["u0", "u1"], ["i0", "i1", "i2"], [[0, 1, 2, 0], [1, 2, 0, 1]])
    with pytest.raises(TrainingError, match="session intents"):
        build_model("llm4sbr", training_view(plain))
    assert isinstance(build_model("llm4sbr", training_view(plain), config={"use_llm": False}), LLM4SBR)
    data = _data(num_users=4)
    no_answers = RecData(**{**data.__dict__, "session_intents": SessionIntents(
        *(getattr(data.session_intents, f) for f in ("user", "prefix_end", "view", "items", "weights")))})
    with pytest.raises(TrainingError, match="raw answers"):
        build_model("llm4sbr", training_view(no_answers), config={"semantic": "answer"})
    # the answer embeddings ablation reads them
    assert isinstance(build_model("llm4sbr", training_view(data), config={"semantic": "answer"}), LLM4SBR)
    # the checksum covers the inferences; without them it is the data's as before
    assert data.checksum() != RecData(**{**data.__dict__, "session_intents": None}).checksum()


def test_keep_users_is_a_user_subsample_with_its_inferences():
    data = _data(num_users=10, ends=[3, 7])
    keep = [7, 2, 5]
    sub = data.keep_users(keep)
    assert sub.user_ids == ["u7", "u2", "u5"] and sub.item_ids == data.item_ids
    for new, old in enumerate(keep):
        a, b = data.seq_indptr[old], data.seq_indptr[old + 1]
        c, d = sub.seq_indptr[new], sub.seq_indptr[new + 1]
        assert torch.equal(sub.seq_items[c:d], data.seq_items[a:b])
    si, full = sub.session_intents, data.session_intents
    assert len(si) == 3 * 2 * 2
    for k in range(len(si)):
        old = keep[int(si.user[k])]
        match = (full.user == old) & (full.prefix_end == si.prefix_end[k]) & (full.view == si.view[k])
        assert torch.equal(full.items[match][0], si.items[k])
    with pytest.raises(TrainingError):
        data.keep_users([1, 1])
    with pytest.raises(TrainingError):
        training_view(data).keep_users([1])


def test_the_experiment_reports_coverage_and_differences_on_the_inferred_users(tmp_path):
    from kgplatform.experiment.llm4sbr import covered_users, inference_coverage, llm4sbr_experiment

    data = _data(num_users=40)
    # only users 0..9 keep their inferences: 10 users with an inferred test prefix
    si = data.session_intents
    data = RecData(**{**data.__dict__, "session_intents": si.select(si.user < 10)})
    cov = inference_coverage(data)
    assert (cov["test_users_inferred"], cov["valid_users_inferred"], cov["users_with_any"]) == (10, 10, 10)
    assert cov["training_prefixes"] == 40 * 5 and cov["training_prefixes_inferred"] == 10 * 5
    assert covered_users(data).tolist() == list(range(10))
    rows = plan_rows(["llm4sbr"], ["llm4sbr:no_llm"], model_options={"embedding_dim": 8, "max_seq_len": 8})
    train = {"epochs": 2, "device": "cpu", "num_negatives": 15, "batch_size": 64}
    doc = llm4sbr_experiment(data, rows, seeds=[0], train=train, out_dir=tmp_path, users="all",
                             compare=[("llm4sbr", "llm4sbr:no_llm")], log=lambda m: None)
    inferred = doc["differences_inferred_users"]
    assert inferred and all(d["n"] == 10 and d["users"] == "inferred test prefix" for d in inferred)
    assert {d["metric"] for d in inferred} == {"NDCG@10", "HR@10", "HR@20", "MRR@20"}
    assert all(d["n"] == 40 for d in doc["differences"])
    sub = llm4sbr_experiment(data, rows[:1], seeds=[0], train=train, out_dir=tmp_path / "c", log=lambda m: None)
    assert sub["coverage"]["users"] == 10 and sub["coverage_whole_dataset"]["users"] == 40
    # the backbone alone reads no inference: the experiment runs on data without any (coverage: none)
    bare = RecData(**{**data.__dict__, "session_intents": None})
    alone = llm4sbr_experiment(bare, rows[1:], seeds=[0], train=train, out_dir=tmp_path / "b", users="all",
                               log=lambda m: None)
    assert alone["coverage"] is None and "differences_inferred_users" not in alone
    assert [m["model"] for m in alone["models"]] == ["llm4sbr:no_llm"]
    with pytest.raises(TrainingError, match="no session intents"):  # the covered users need inferences
        llm4sbr_experiment(bare, rows[1:], seeds=[0], train=train, out_dir=tmp_path / "n", log=lambda m: None)


def test_the_experiment_passes_recbole_settings_on(tmp_path):
    """``recbole_config`` reaches the RecBole jobs: a setting for a model not among ``with_recbole`` is refused
    there, before anything trains (the check needs the RecBole venv of ``make setup-recbole``)."""
    from kgplatform.eval import recbole as rb
    from kgplatform.errors import ConfigError
    from kgplatform.experiment.llm4sbr import llm4sbr_experiment

    if not (rb.default_venv() / "bin" / "python").exists():
        pytest.skip(f"no RecBole venv at {rb.default_venv()}")
    bare = RecData(**{**_data(num_users=12).__dict__, "session_intents": None})
    rows = plan_rows([], ["llm4sbr:no_llm"], model_options={"embedding_dim": 8, "max_seq_len": 8})
    with pytest.raises(ConfigError, match="--recbole-set names gru4rec"):
        llm4sbr_experiment(bare, rows, seeds=[0], train={"epochs": 1, "device": "cpu"}, out_dir=tmp_path,
                           users="all", with_recbole=["sasrec"],
                           recbole_config={"gru4rec": {"MAX_ITEM_LIST_LENGTH": 20}}, log=lambda m: None)
