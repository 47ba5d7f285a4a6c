"""SASRec: self-attentive sequential recommendation (Kang & McAuley, 2018), cross-entropy over all items."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgplatform.models.base import NextItemRecommender, sequence_ce  # noqa: F401 (re-exported)
from kgplatform.models.options import check_float, check_int, check_user_feature_options, refuse
from kgplatform.nn.user_features import UserFeatureFusion


@dataclass
class SASRecConfig:
    """RecBole 1.2.1's defaults (``SASRec.yaml``) unless noted.

    Args:
        hidden_size: item/position embedding size.
        num_layers / num_heads / inner_size: Transformer encoder shape.
        dropout: hidden and attention dropout (RecBole's ``hidden_dropout_prob``/``attn_dropout_prob``).
        max_seq_len: longest history read (RecBole ``MAX_ITEM_LIST_LENGTH``).
        layer_norm_eps: LayerNorm epsilon.
        train_stride: targets per tail window of :class:`~kgplatform.train.samplers.SequenceSampler` (not
            RecBole's): ``1`` (default) gives every training target exactly its last ``max_seq_len`` items,
            as RecBole's prefix augmentation; ``s > 1`` needs about ``s`` times fewer windows for targets
            with longer histories, which then see between ``max_seq_len - s + 1`` and ``max_seq_len`` items.
        user_features: ``none``, ``fallback`` (the control: only the fallback vector of the users without
            knowledge) or ``knowledge`` (not RecBole's): the embedded fused user knowledge added to
            every position's output :math:`\mathbf{h}_t` through
            :class:`~kgplatform.nn.user_features.UserFeatureFusion` (a user-level term: the same for all of a
            user's windows; the knowledge itself comes from the training split only).
        knowledge_reg: with ``user_features=knowledge``, the L2 weight :math:`\lambda_k` on the knowledge term of
            the step's users (0 = none); knowledge_dropout: its per-user dropout while training (0 = none);
            knowledge_fallback: learn the vector of the users without knowledge (``False``: zero, as the plain
            model). See :class:`~kgplatform.nn.user_features.UserFeatureFusion`.
    """

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 2
    inner_size: int = 256
    dropout: float = 0.5
    max_seq_len: int = 50
    layer_norm_eps: float = 1e-12
    train_stride: int = 1
    user_features: str = "none"
    knowledge_reg: float = 0.0
    knowledge_dropout: float = 0.0
    knowledge_fallback: bool = True

    def validate(self) -> SASRecConfig:
        """Check (and coerce) every field; :class:`~kgplatform.errors.TrainingError` names a bad one."""
        for name in ("hidden_size", "num_layers", "num_heads", "inner_size", "max_seq_len", "train_stride"):
            check_int(self, name, 1)
        check_float(self, "dropout", 0.0, 1.0, hi_open=True)
        check_float(self, "layer_norm_eps", 0.0, lo_open=True)
        check_user_feature_options(self)
        if self.hidden_size % self.num_heads:
            raise refuse(self, "num_heads", f"hidden_size ({self.hidden_size}) must be divisible by num_heads "
                                            f"({self.num_heads})")
        return self


class _Block(nn.Module):
    """Post-LayerNorm Transformer block (as RecBole's ``TransformerLayer``) with causal
    ``scaled_dot_product_attention`` (fused kernels on CPU and CUDA)."""

    def __init__(self, d: int, heads: int, inner: int, dropout: float, eps: float) -> None:
        super().__init__()
        if d % heads:
            raise ValueError(f"hidden_size {d} is not divisible by num_heads {heads}")
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.norm1 = nn.LayerNorm(d, eps=eps)
        self.ff1 = nn.Linear(d, inner)
        self.ff2 = nn.Linear(inner, d)
        self.norm2 = nn.LayerNorm(d, eps=eps)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        B, L, d = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        x = self.norm1(x + self.drop(self.out(a.transpose(1, 2).reshape(B, L, d))))
        return self.norm2(x + self.drop(self.ff2(F.gelu(self.ff1(x)))))


class SASRec(NextItemRecommender):
    r"""SASRec with a causal Transformer encoder and a full softmax over items.

    For a history :math:`(i_1, \dots, i_t)` (its last :math:`L` = ``max_seq_len`` items) the encoder output
    at its last position is :math:`\mathbf{h}_t`, and

    .. math::
        s(u, i) = \mathbf{h}_t^\top \mathbf{e}_i, \qquad
        \mathcal{L}_{\text{ce}}(B) = -\frac{1}{\bar{N}}\sum_{(t, i_{t+1}) \in B}
            \log \frac{\exp(\mathbf{h}_t^\top \mathbf{e}_{i_{t+1}})}{\sum_{j} \exp(\mathbf{h}_t^\top \mathbf{e}_j)}

    summed over the targets of batch :math:`B` and divided by :math:`\bar{N}`, the epoch's mean number of
    targets per batch (``batch["norm"]``, a constant), so every (history, next item) target of the epoch
    weighs the same, as in RecBole's prefix-augmented training (item embeddings are tied between input and
    output). :class:`~kgplatform.train.samplers.SequenceSampler` yields every target exactly once per epoch,
    with :math:`\mathbf{h}_t` computed (for the default ``train_stride = 1``) from exactly :math:`(i_{\max(1, t-L+1)}, \dots, i_t)`: a window
    starting at the sequence's beginning holds the targets of its first :math:`L` positions at once (the
    causal mask guarantees position :math:`t` only sees :math:`i_{\le t}`), and each later target sits at
    the end of its own window of :math:`L` items. Sequences are right-padded, so real positions never attend
    to padding. Without ``norm`` in the batch the loss is the mean over the batch's targets.

    Args:
        num_users (int): number of users (unused by the model itself).
        num_items (int): number of items.
        config (SASRecConfig): hyper-parameters.
        user_fusion (UserFeatureFusion, optional): the user feature term (``user_features != "none"``).

    Shapes:
        - **loss** batch: ``seq`` ``[B, L]`` and ``target`` ``[B, L]`` item indices, ``-1`` = padding / no
          target; optional ``norm`` (0-dim)
        - **score**: users ``[B]``, items ``[B, C]``, seq ``[B, L]`` → ``[B, C]``
        - **full_scores**: users ``[B]``, seq ``[B, L]`` → ``[B, num_items]``
    """

    def __init__(self, num_users: int, num_items: int, config: SASRecConfig | None = None,
                 user_fusion: UserFeatureFusion | None = None) -> None:
        super().__init__(num_users, num_items)
        self.user_fusion = user_fusion
        self.config = c = config or SASRecConfig()
        self.max_seq_len = c.max_seq_len
        self.train_stride = c.train_stride
        self.item_emb = nn.Embedding(num_items + 1, c.hidden_size, padding_idx=num_items)
        self.pos_emb = nn.Embedding(c.max_seq_len, c.hidden_size)
        self.emb_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.emb_dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            _Block(c.hidden_size, c.num_heads, c.inner_size, c.dropout, c.layer_norm_eps) for _ in range(c.num_layers)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fusion = set(self.user_fusion.modules()) if self.user_fusion is not None else set()
        for m in self.modules():
            if m in fusion:  # zero, not drawn: the other weights get the same draws as without user features
                continue
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.item_emb.weight[self.num_items].zero_()
        if self.user_fusion is not None:
            self.user_fusion.reset_parameters()

    def encode(self, seq: Tensor) -> Tensor:
        """Hidden state at every position, ``[B, L, d]`` (``seq`` right-padded with ``-1``)."""
        L = seq.shape[1]
        if L > self.max_seq_len:
            raise ValueError(f"sequence length {L} > max_seq_len {self.max_seq_len}")
        s = torch.where(seq < 0, torch.full_like(seq, self.num_items), seq)
        pos = torch.arange(L, device=seq.device)
        x = self.emb_dropout(self.emb_norm(self.item_emb(s) + self.pos_emb(pos)[None]))
        for block in self.blocks:
            x = block(x)
        return x

    # ---- the two session views a model built on this backbone reads (LLM4SBR)
    def session_views(self, seq: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(local, global)``, ``[B, d]`` each: the output at the last real position :math:`\mathbf{h}_t`
        (what SASRec scores by: short-term, dominated by the last clicks) and the mean of the outputs over the
        real positions (long-term)."""
        h = self.encode(seq)
        mask = (seq >= 0).to(h.dtype)
        last = mask.sum(1).clamp(min=1).long() - 1
        local = h[torch.arange(seq.shape[0], device=seq.device), last]
        glob = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return local, glob

    def session_fuse(self, local: Tensor, glob: Tensor) -> Tensor:
        """SASRec's own session vector: the local one (so a model fusing nothing more is SASRec)."""
        return local

    def output_items(self) -> Tensor:
        """``[num_items, d]`` the (tied) output item embeddings."""
        return self.item_emb.weight[: self.num_items]
