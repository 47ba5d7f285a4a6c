"""kgplatform: a Neo4j-backed knowledge-graph recommendation platform.

Data flows one way: ingest → graph → extract → embed → export → train → write-back → recommend/explain.
"""
__version__ = "0.1.0"
