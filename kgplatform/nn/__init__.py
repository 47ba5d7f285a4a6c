"""Graph layers of the IKGR paper, PyG style: KG convolution (eq. 3), TransH (eq. 4–7), intent translation
and matching (eq. 8, 10)."""
from kgplatform.nn.intent import IntentTranslation, intent_match_score, max_cos_per_item
from kgplatform.nn.kg_conv import KGConv
from kgplatform.nn.transh import TransH

__all__ = ["KGConv", "TransH", "IntentTranslation", "intent_match_score", "max_cos_per_item"]
