"""LLM intent extraction (IKGR §4.1–4.3): two rounds, a domain glossary, local or remote chat models.

Public API (the CLI wraps these)::

    extract(graph, settings, round=1|2, dataset=None, limit=None, items_only=False, model=None,
            endpoint=None, *, glossary=…, related_k=None, retry_failed=False, use_cache=True,
            progress=True, backend=None) -> ExtractSummary
    extract_all(graph, settings, **same) -> [ExtractSummary, ExtractSummary]
    intent_stats(graph, dataset=None) -> dict
    load_backend(settings, model=None, endpoint=None) -> LLMBackend
    load_glossary(name_or_path) -> Glossary | None
"""
from .extract import ExtractSummary, default_cache_path, extract, extract_all
from .glossary import Glossary, bundled_glossaries, load_glossary, parse_glossary
from .llm import BUNDLED_MODELS, LLMBackend, load_backend, resolve_model
from .quality import intent_quality
from .stats import intent_stats, node_intents

__all__ = [
    "BUNDLED_MODELS",
    "ExtractSummary",
    "Glossary",
    "LLMBackend",
    "bundled_glossaries",
    "default_cache_path",
    "extract",
    "extract_all",
    "intent_quality",
    "intent_stats",
    "load_backend",
    "load_glossary",
    "node_intents",
    "parse_glossary",
    "resolve_model",
]
