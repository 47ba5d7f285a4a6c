"""Graph layers, PyG style: of the IKGR paper — KG convolution (eq. 3), TransH (eq. 4–7), intent translation
and matching (eq. 8, 10) — and SR-GNN's session graph and gated graph layer."""
from kgplatform.nn.intent import IntentTranslation, intent_match_score, max_cos_per_item
from kgplatform.nn.kg_conv import KGConv
from kgplatform.nn.srgnn import GatedSessionGraphConv, SessionGraph, session_graph
from kgplatform.nn.transh import TransH

__all__ = ["KGConv", "TransH", "IntentTranslation", "intent_match_score", "max_cos_per_item",
           "GatedSessionGraphConv", "SessionGraph", "session_graph"]
