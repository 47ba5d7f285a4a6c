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


def test_loss_is_the_target_sum_over_the_batch_norm():
    import torch.nn.functional as F

    m = model()
    seq = torch.tensor([[1, 2, 3, 4], [5, 6, -1, -1]])
    tgt = torch.tensor([[-1, -1, 4, 5], [6, 7, -1, -1]])  # older positions of row 0 are context only
    with torch.no_grad():
        h = m.encode(seq)
        logits = h[tgt >= 0] @ m.item_embeddings().t()
        ce = F.cross_entropy(logits, tgt[tgt >= 0], reduction="none")
        with_norm = m.loss({"seq": seq, "target": tgt, "norm": torch.tensor(8.0)})["ce"]
        without = m.loss({"seq": seq, "target": tgt})["ce"]
    assert torch.allclose(with_norm, ce.sum() / 8.0)
    assert torch.allclose(without, ce.mean())
