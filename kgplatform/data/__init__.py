"""The data contract every trainer reads (built from the graph by :mod:`kgplatform.graph.export`).

* :class:`RecData` — id maps and integer-indexed interactions, KG, intents, text vectors, sessions;
* :func:`leave_one_out` / :class:`Split` — the split; :func:`sample_negatives` — the stored candidates;
* :func:`training_view` — the leakage boundary: a RecData with training interactions only, the one input of
  every model builder, sampler and training graph (:func:`require_training` enforces it);
* :func:`user_samples` / :func:`session_samples` — prefix → next samples (session boundaries from the graph);
* :func:`training_graph` / :func:`serving_graph` — PyG ``HeteroData`` (training-only, or explicitly everything);
* :func:`build_intent_graph` — IKGR's intent-augmented graph, reusable by other models.
"""
from kgplatform.data.candidates import SampledCandidates, sample_negatives
from kgplatform.data.contract import LeakageError, item_counts, require_training, train_pairs, training_view
from kgplatform.data.hetero import serving_graph, training_graph
from kgplatform.data.intent_graph import IntentGraph, build_intent_graph
from kgplatform.data.recdata import EXACT_KIND, RELATED_KIND, RecData
from kgplatform.data.sequences import Samples, session_samples, user_samples
from kgplatform.data.split import PAD, Split, leave_one_out

__all__ = [
    "EXACT_KIND", "PAD", "RELATED_KIND", "IntentGraph", "LeakageError", "RecData", "SampledCandidates", "Samples",
    "Split", "build_intent_graph", "item_counts", "leave_one_out", "require_training", "sample_negatives",
    "serving_graph", "session_samples", "train_pairs", "training_graph", "training_view", "user_samples",
]
