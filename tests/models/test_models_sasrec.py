"""SASRec: causal (no peeking at later items), padding-invariant."""
import torch

from kgplatform.models.sasrec import SASRec, SASRecConfig


def model():
    torch.manual_seed(0)
    m = SASRec(5, 30, SASRecConfig(hidden_size=16, inner_size=32, max_seq_len=8))
    return m.eval()


def test_outputs_do_not_depend_on_later_items():
    m = model()
    a = torch.tensor([[1, 2, 3, 4, 5]])
    b = torch.tensor([[1, 2, 3, 9, 9]])
    with torch.no_grad():
        ha, hb = m.encode(a), m.encode(b)
    assert torch.allclose(ha[0, :3], hb[0, :3], atol=1e-6)
    assert not torch.allclose(ha[0, 3], hb[0, 3])


def test_right_padding_does_not_change_scores():
    m = model()
    with torch.no_grad():
        short = m.full_scores(torch.tensor([0]), seq=torch.tensor([[4, 7, 2]]))
        padded = m.full_scores(torch.tensor([0]), seq=torch.tensor([[4, 7, 2, -1, -1]]))
    assert torch.allclose(short, padded, atol=1e-6)
