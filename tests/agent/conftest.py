"""Toy graph for the agent tests: four items, two users (one without a profile), known answers."""
from __future__ import annotations

import pytest

from kgplatform.ingest.model import ParsedDataset
from kgplatform.ingest.writer import write_dataset

TOY = "toy"
ITEMS = {
    "i1": ("Star Voyage", "Star Voyage (1990)\nGenres: Sci-Fi.\nA crew travels to a distant planet."),
    "i2": ("Robot Dawn", "Robot Dawn (1991)\nGenres: Sci-Fi, Film-Noir.\nRobots rise up in a rainy city."),
    "i3": ("Love Letters", "Love Letters (1992)\nGenres: Romance.\nTwo strangers fall in love by mail."),
    "i4": ("Bad Output", "Bad Output (1993)\nGenres: Drama.\nThe model answers nonsense for this one."),
}


def toy_dataset(texts: dict[str, str] | None = None) -> ParsedDataset:
    items = [{"id": f"{TOY}:{k}", "rawId": k, "dataset": TOY, "title": t, "text": (texts or {}).get(k, x)}
             for k, (t, x) in ITEMS.items()]
    users = [
        {"id": f"{TOY}:u1", "rawId": "u1", "dataset": TOY, "age": 30, "gender": "F", "occupation": "engineer"},
        {"id": f"{TOY}:u2", "rawId": "u2", "dataset": TOY},
    ]
    return ParsedDataset(name=TOY, kind="generic", path="-", users=users, items=items)


@pytest.fixture
def toy_graph(graph):
    write_dataset(graph, toy_dataset(), progress=False)
    return graph


@pytest.fixture
def agent_settings(settings, tmp_path):
    """Settings with a private home (so a private result cache) per test."""
    return settings.model_copy(update={"home": tmp_path / "home", "glossary": None})
