"""Amazon datasets: Beauty 5-core (S3Rec ``user_sequence.txt`` + ``item_titles.txt``) and Video Games
(LLMRank ``Games-6k``). Neither has timestamps: the order in the file is the time order, kept in ``pos``;
each user's whole sequence is one session. Every row is a review of a bought product: one behaviour type,
``bought``.
"""
from __future__ import annotations

from pathlib import Path

from .. import schema
from ..errors import DataValidationError
from .model import ParsedDataset
from .readers import bad, check_dir, no_rows, read_atomic, read_lines, require_file, require_id, show
from .sessions import build_sessions


def _sequences_to_dataset(out: ParsedDataset, sequences: list[tuple[str, list[str]]],
                          titles: dict[str, str]) -> ParsedDataset:
    dataset = out.name
    nid = lambda raw: schema.node_id(dataset, raw)  # noqa: E731
    out.items = [{"id": nid(i), "rawId": i, "dataset": dataset, "title": t, "text": t} for i, t in titles.items()]
    for user, seq in sequences:
        out.users.append({"id": nid(user), "rawId": user, "dataset": dataset})
        for pos, item in enumerate(seq):
            out.interactions.append({"user": nid(user), "item": nid(item), "pos": pos, "ts": None, "rating": None,
                                     "behavior": schema.PURCHASE_BEHAVIOR})
    out.sessions, out.session_items = build_sessions(dataset, out.interactions, None)
    return out


def load_amazon_beauty(path: Path, *, dataset: str = "amazon-beauty") -> ParsedDataset:
    path = check_dir(Path(path))
    seq_file = require_file(path / "user_sequence.txt", "user sequence (user_sequence.txt)")
    title_file = require_file(path / "item_titles.txt", "item titles (item_titles.txt)")
    titles: dict[str, str] = {}
    for line, raw in read_lines(title_file):
        if not raw.strip():
            continue
        item, *rest = raw.split(None, 1)  # the id, then the title phrase (whitespace between them)
        item = require_id(title_file, line, "item", item)
        title = rest[0] if rest else ""
        if item in titles:
            raise bad(title_file, line, f"duplicate item {item}")
        titles[item] = title.strip()  # Beauty has items without a title phrase: kept with an empty title
    if not titles:
        raise DataValidationError(f"{title_file}:1: no items (expected 'item_id title' lines): nothing to load")
    sequences: list[tuple[str, list[str]]] = []
    seen_users: set[str] = set()
    for line, raw in read_lines(seq_file):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise bad(seq_file, line, f"user {show(parts[0])} has no items")
        user = require_id(seq_file, line, "user", parts[0])
        items = parts[1:]
        if user in seen_users:
            raise bad(seq_file, line, f"duplicate user {user}")
        seen_users.add(user)
        for item in items:
            if item not in titles:
                raise bad(seq_file, line, f"unknown item {show(item)} (not in {title_file.name})")
        sequences.append((user, items))
    if not sequences:
        raise DataValidationError(f"{seq_file}:1: no user sequences (expected 'user item item ...' lines): "
                                  "nothing to load")
    return _sequences_to_dataset(ParsedDataset(dataset, "amazon-beauty", str(path)), sequences, titles)


def load_amazon_games(path: Path, *, dataset: str = "amazon-games") -> ParsedDataset:
    path = check_dir(Path(path))
    item_files = sorted(path.glob("*.item"))
    test_files = sorted(path.glob("*.test.inter"))
    if len(item_files) != 1 or len(test_files) != 1:
        raise DataValidationError(f"{path}: expected one *.item and one *.test.inter file (e.g. Games-6k.*)")
    item_file = require_file(item_files[0], "item")
    test_file = require_file(test_files[0], "test interaction")
    titles: dict[str, str] = {}
    for line, row in read_atomic(item_file, ["item_id", "title"]):
        item = require_id(item_file, line, "item_id", row["item_id"])
        if item in titles:
            raise bad(item_file, line, f"duplicate item_id {item}")
        titles[item] = row["title"].strip()
    if not titles:
        raise no_rows(item_file, "item")
    sequences: list[tuple[str, list[str]]] = []
    seen_users: set[str] = set()
    for line, row in read_atomic(test_file, ["user_id", "item_id_list", "item_id"]):
        user = require_id(test_file, line, "user_id", row["user_id"])
        if user in seen_users:
            raise bad(test_file, line, f"duplicate user_id {user}")
        seen_users.add(user)
        seq = row["item_id_list"].split() + [require_id(test_file, line, "item_id", row["item_id"])]
        for item in seq:
            if item not in titles:
                raise bad(test_file, line, f"unknown item_id {show(item)} (not in {item_file.name})")
        sequences.append((user, seq))
    if not sequences:
        raise no_rows(test_file, "interaction")
    return _sequences_to_dataset(ParsedDataset(dataset, "amazon-games", str(path)), sequences, titles)
