"""Every model config checks the type and range of every field (and its cross-field rules) in ``validate()``,
which ``ModelSpec.make_config`` calls: a bad option is one ``TrainingError`` naming it, before any model is built.
"""
from __future__ import annotations

import dataclasses
import math

import pytest

from kgplatform.errors import TrainingError
from kgplatform.models import MODELS, IKGRConfig, SASRecConfig, get_spec

FIELDS = [(name, f.name) for name, spec in MODELS.items() for f in dataclasses.fields(spec.config_cls)]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_defaults_and_every_ablation_validate(name):
    spec = get_spec(name)
    assert spec.make_config() == spec.config_cls()
    if name == "ikgr":
        for ablation in IKGRConfig.ABLATIONS:
            assert spec.make_config(IKGRConfig().ablation(ablation)).validate()


@pytest.mark.parametrize("name, field", FIELDS, ids=[f"{m}.{f}" for m, f in FIELDS])
def test_every_field_refuses_a_wrong_type(name, field):
    """A string where the field wants a number, a bool or a list; 1 where it wants true/false or a known choice.
    Every registered model, present and future, must check every field of its config."""
    default = getattr(get_spec(name).config_cls(), field)
    bad = 1 if isinstance(default, (bool, str)) else "abc"  # 1 is neither true/false nor a known choice
    with pytest.raises(TrainingError) as e:
        get_spec(name).make_config({field: bad})
    assert f" option {field}" in str(e.value) and "\n" not in str(e.value)  # names the option, one line
    assert e.value.hint.startswith(f"--set {field}=")


@pytest.mark.parametrize("name, field", [(m, f) for m, f in FIELDS
                                         if type(getattr(MODELS[m].config_cls(), f)) in (int, float)])
def test_numbers_refuse_bools_strings_and_non_finite_values(name, field):
    spec = get_spec(name)
    for bad in (True, False, "1", float("nan"), float("inf"), None):
        with pytest.raises(TrainingError, match=f"option {field} must be"):
            spec.make_config({field: bad})


@pytest.mark.parametrize("name, options, message", [
    ("sasrec", {"num_heads": 3}, "SASRec option num_heads: hidden_size (64) must be divisible by num_heads (3)"),
    ("sasrec", {"hidden_size": 30, "num_heads": 4}, "SASRec option num_heads: hidden_size (30) must be divisible"),
    ("sasrec", {"hidden_size": 0}, "SASRec option hidden_size must be an integer >= 1, got 0"),
    ("sasrec", {"dropout": 1.0}, "SASRec option dropout must be a finite number >= 0 and < 1, got 1.0"),
    ("sasrec", {"layer_norm_eps": 0}, "SASRec option layer_norm_eps must be a finite number > 0, got 0"),
    ("sasrec", {"max_seq_len": 2.5}, "SASRec option max_seq_len must be an integer >= 1, got 2.5"),
    ("gru4rec", {"dropout": -0.1}, "GRU4Rec option dropout must be a finite number >= 0 and < 1, got -0.1"),
    ("gru4rec", {"num_layers": 0}, "GRU4Rec option num_layers must be an integer >= 1, got 0"),
    ("bpr", {"embedding_dim": -8}, "BPR option embedding_dim must be an integer >= 1, got -8"),
    ("bpr", {"reg_weight": -1e-3}, "BPR option reg_weight must be a finite number >= 0, got -0.001"),
    ("lightgcn", {"num_layers": -1}, "LightGCN option num_layers must be an integer >= 0, got -1"),
    ("lightgcn", {"require_pow": "yes"}, "LightGCN option require_pow must be true or false, got 'yes'"),
    ("kgcn", {"aggregator": "max"}, "KGCN option aggregator must be one of sum, concat, neighbor, got 'max'"),
    ("kgcn", {"neighbor_sample_size": 0}, "KGCN option neighbor_sample_size must be an integer >= 1, got 0"),
    ("ikgr", {"lam": 1.5}, "IKGR option lam must be a finite number >= 0 and <= 1, got 1.5"),
    ("ikgr", {"lambda_grid": []}, "IKGR option lambda_grid must be a non-empty list of numbers >= 0 and <= 1"),
    ("ikgr", {"lambda_grid": [0.1, 2]}, "IKGR option lambda_grid must be a non-empty list of numbers"),
    ("ikgr", {"tau": 0}, "IKGR option tau must be a finite number > 0, got 0"),
    ("ikgr", {"weighting": "cosine"}, "IKGR option weighting must be one of similar, dissimilar, linear"),
    ("ikgr", {"corrupt_relation": 1.01}, "IKGR option corrupt_relation must be a finite number >= 0 and <= 1"),
    ("pop", {"count": "all"}, "POP option count must be one of interactions, recbole, got 'all'"),
    ("pop", {"recbole_neg": -1}, "POP option recbole_neg must be an integer >= 0, got -1"),
])
def test_ranges_and_cross_field_rules(name, options, message):
    with pytest.raises(TrainingError) as e:
        get_spec(name).make_config(options)
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


def test_obviously_numeric_json_is_coerced():
    cfg = get_spec("sasrec").make_config({"hidden_size": 64.0, "num_heads": 4, "dropout": 0, "max_seq_len": 1e1})
    assert (cfg.hidden_size, cfg.max_seq_len) == (64, 10) and type(cfg.hidden_size) is int
    assert cfg.dropout == 0.0 and type(cfg.dropout) is float
    ikgr = get_spec("ikgr").make_config({"lambda_grid": [0, 0.5, 1], "lam": 1})
    assert ikgr.lambda_grid == (0.0, 0.5, 1.0) and type(ikgr.lam) is float
    # the boundaries are allowed: dropout 0, lam 0 and 1, zero layers for LightGCN/IKGR, zero regularisation
    assert get_spec("lightgcn").make_config({"num_layers": 0, "reg_weight": 0}).num_layers == 0
    assert get_spec("ikgr").make_config({"num_layers": 0, "lam": 0.0, "kg_weight": 0}).lam == 0.0


def test_a_given_instance_is_copied_not_modified():
    mine = SASRecConfig(hidden_size=32.0)  # type: ignore[arg-type]
    cfg = get_spec("sasrec").make_config(mine)
    assert cfg.hidden_size == 32 and type(cfg.hidden_size) is int
    assert type(mine.hidden_size) is float and cfg is not mine
    with pytest.raises(TrainingError, match="num_heads"):
        get_spec("sasrec").make_config(mine, num_heads=5)
    assert math.isclose(get_spec("ikgr").make_config(lam=0.3).lam, 0.3)


def test_model_assignments_group_by_model_and_name_their_flag():
    from kgplatform.errors import ConfigError
    from kgplatform.models.options import parse_model_assignments

    got = parse_model_assignments(["sasrec.MAX_ITEM_LIST_LENGTH=20", "sasrec.loss_type=CE", "pop.x=1.5"],
                                  "--recbole-set")
    assert got == {"sasrec": {"MAX_ITEM_LIST_LENGTH": 20, "loss_type": "CE"}, "pop": {"x": 1.5}}
    assert parse_model_assignments([]) == {}
    with pytest.raises(ConfigError, match="--recbole-set expects MODEL.key=value"):
        parse_model_assignments(["MAX_ITEM_LIST_LENGTH=20"], "--recbole-set")
    with pytest.raises(ConfigError, match="--recbole-set expects key=value"):
        parse_model_assignments(["sasrec.MAX_ITEM_LIST_LENGTH"], "--recbole-set")
