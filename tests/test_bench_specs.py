"""The benchmarks' model specs (``benchmarks/_common.parse_spec``): ``NAME[:key=value,...]`` read as ``kgp train
--set`` reads values, a comma-separated value kept whole, and the options reach the models' configs."""
from __future__ import annotations

import sys

import pytest

from kgplatform.config import REPO_ROOT
from kgplatform.errors import TrainingError
from kgplatform.models import get_spec

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from _common import parse_spec, split_options  # noqa: E402


def test_specs_parse_like_kgp_set():
    assert parse_spec("bpr") == ("bpr", {})
    assert parse_spec("bpr:sparse_grad=true,batch_size=256,lr=0.003") == (
        "bpr", {"sparse_grad": True, "batch_size": 256, "lr": 0.003})
    name, opts = parse_spec("lightgcn:loader=neighbor,num_neighbors=5,5,sparse_grad=true")
    assert name == "lightgcn" and opts == {"loader": "neighbor", "num_neighbors": "5,5", "sparse_grad": True}
    cfg = get_spec(name).make_config(opts)
    assert cfg.num_neighbors == (5, 5) and cfg.sparse_grad is True


def test_a_bad_option_value_is_refused_by_the_model_config():
    _, opts = parse_spec("lightgcn:sparse_grad=true")  # without the neighbour loader
    with pytest.raises(TrainingError, match="sparse_grad"):
        get_spec("lightgcn").make_config(opts)


def test_options_split_between_the_model_and_training():
    name, opts = parse_spec("lightgcn:loader=neighbor,num_neighbors=5,5,batch_size=256,lr=0.01")
    model, train = split_options(name, opts)
    assert model == {"loader": "neighbor", "num_neighbors": "5,5"} and train == {"batch_size": 256, "lr": 0.01}
    model, train = split_options("ikgr", {"use_kg": False, "batch_size": 4096})
    assert model == {"use_kg": False} and train == {"batch_size": 4096}
