"""GRU4Rec: session-based recommendation with a recurrent network (Hidasi et al., 2016), as RecBole 1.2.1's
``GRU4Rec`` (item embedding → dropout → GRU → linear back to the embedding size, cross-entropy over all
items)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from kgplatform.models.base import NextItemRecommender
from kgplatform.models.options import check_float, check_int


@dataclass
class GRU4RecConfig:
    """RecBole 1.2.1's defaults (``GRU4Rec.yaml``) unless noted.

    Args:
        embedding_dim: item embedding size (RecBole ``embedding_size``).
        hidden_size: GRU hidden size.
        num_layers: stacked GRU layers.
        dropout: dropout on the input item embeddings (RecBole ``dropout_prob``).
        max_seq_len: longest history read (RecBole ``MAX_ITEM_LIST_LENGTH``).
        train_stride: targets per tail window of :class:`~kgplatform.train.samplers.SequenceSampler` (not
            RecBole's; see :class:`~kgplatform.models.sasrec.SASRecConfig`): ``1`` gives every training
            target exactly its last ``max_seq_len`` items.
    """

    embedding_dim: int = 64
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.3
    max_seq_len: int = 50
    train_stride: int = 1

    def validate(self) -> GRU4RecConfig:
        """Check (and coerce) every field; :class:`~kgplatform.errors.TrainingError` names a bad one."""
        for name in ("embedding_dim", "hidden_size", "num_layers", "max_seq_len", "train_stride"):
            check_int(self, name, 1)
        check_float(self, "dropout", 0.0, 1.0, hi_open=True)
        return self


class GRU4Rec(NextItemRecommender):
    r"""GRU4Rec with a full softmax over items.

    For a history :math:`(i_1, \dots, i_t)` (its last :math:`L` = ``max_seq_len`` items), starting from
    :math:`\mathbf{g}_0 = \mathbf{0}`,

    .. math::
        \mathbf{g}_k = \operatorname{GRU}\big(\operatorname{dropout}(\mathbf{e}_{i_k}), \mathbf{g}_{k-1}\big),
        \qquad \mathbf{h}_t = \mathbf{W}\mathbf{g}_t + \mathbf{b}, \qquad
        s(u, i) = \mathbf{h}_t^\top \mathbf{e}_i,

    (a GRU without biases, as RecBole's) trained with

    .. math::
        \mathcal{L}_{\text{ce}}(B) = -\frac{1}{\bar{N}}\sum_{(t, i_{t+1}) \in B}
            \log \frac{\exp(\mathbf{h}_t^\top \mathbf{e}_{i_{t+1}})}{\sum_{j} \exp(\mathbf{h}_t^\top \mathbf{e}_j)}

    summed over the targets of batch :math:`B` and divided by the epoch's mean number of targets per batch
    :math:`\bar{N}` (``batch["norm"]``), the batches of :class:`~kgplatform.train.samplers.SequenceSampler`
    that SASRec reads: the GRU runs over each right-padded window once and every position's output predicts
    that position's target. A recurrent network is causal and padding comes after the real items, so
    :math:`\mathbf{h}_t` depends only on :math:`i_{\le t}` of its window. Item embeddings are tied between
    input and output (RecBole's ``item_embedding`` serves both). Without ``norm`` in the batch the loss is
    the mean over the batch's targets.

    Args:
        num_users (int): number of users (unused by the model itself).
        num_items (int): number of items.
        config (GRU4RecConfig): hyper-parameters.

    Shapes:
        - **loss** batch: ``seq`` ``[B, L]`` and ``target`` ``[B, L]`` item indices, ``-1`` = padding / no
          target; optional ``norm`` (0-dim)
        - **score**: users ``[B]``, items ``[B, C]``, seq ``[B, L]`` → ``[B, C]``
        - **full_scores**: users ``[B]``, seq ``[B, L]`` → ``[B, num_items]``
    """

    def __init__(self, num_users: int, num_items: int, config: GRU4RecConfig | None = None) -> None:
        super().__init__(num_users, num_items)
        self.config = c = config or GRU4RecConfig()
        self.max_seq_len = c.max_seq_len
        self.train_stride = c.train_stride
        self.item_emb = nn.Embedding(num_items + 1, c.embedding_dim, padding_idx=num_items)
        self.emb_dropout = nn.Dropout(c.dropout)
        self.gru = nn.GRU(c.embedding_dim, c.hidden_size, num_layers=c.num_layers, bias=False, batch_first=True)
        self.dense = nn.Linear(c.hidden_size, c.embedding_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # RecBole: xavier-normal item embeddings, xavier-uniform GRU weights, PyTorch's default for the dense
        nn.init.xavier_normal_(self.item_emb.weight)
        for name, w in self.gru.named_parameters():
            if name.startswith("weight_"):
                nn.init.xavier_uniform_(w)
        self.dense.reset_parameters()
        with torch.no_grad():
            self.item_emb.weight[self.num_items].zero_()

    def encode(self, seq: Tensor) -> Tensor:
        """Output at every position, ``[B, L, d]`` (``seq`` right-padded with ``-1``)."""
        s = torch.where(seq < 0, torch.full_like(seq, self.num_items), seq)
        out, _ = self.gru(self.emb_dropout(self.item_emb(s)))
        return self.dense(out)
