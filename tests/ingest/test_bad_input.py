"""A bad-input corpus for every loader, run through the real ``kgp`` entry point against the real Neo4j.

Each bad case asserts: the documented exit code, exactly one ``Error:`` line, ``file:line:`` where it
applies, no traceback, and an unchanged graph (counts per label and relationship type, over a graph that
already holds a dataset of the same name). Each unusual-but-valid case must load, and load again without
changing a count. The CLI runs in-process (``kgplatform.cli.main.main`` with ``sys.argv`` set), which is the
same code path as the console script; tests/cli/test_cli.py covers the subprocess.
"""
from __future__ import annotations

import shutil
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kgplatform.ingest import load_dataset, write_dataset
from kgplatform.stats import graph_stats

# ------------------------------------------------------------------------------------------------------
# mini datasets, one per loader (small enough to build per case)

ML_FILES = {
    "mini.item": "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                 "1\tToy Story\t1995\tAnimation Comedy\n2\tHeat\t1995\tAction\n3\tAmélie\t2001\tComedy\n",
    "mini.user": "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
                 "1\t24\tM\ttechnician\t85711\n2\t53\tF\tother\t94043\n",
    "mini.inter": "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                  "1\t1\t5\t881250949\n1\t2\t3\t881250950\n2\t3\t4\t881251000\n",
    "mini.kg": "head_id:token\trelation_id:token\ttail_id:token\nm.01\tfilm.film.directed_by\tm.99\n",
    "mini.link": "item_id:token\tentity_id:token\n1\tm.01\n",
    "dbpedia/map.csv": "item_id::string,URI::string\n1,http://dbpedia.org/resource/Toy_Story\n"
                       "2,http://dbpedia.org/resource/Heat_(1995_film)\n3,\n",
    "dbpedia/enriched.csv": "item_id::string,abstract::string,producer::string_list,distributor::string_list,"
                            "writer::string_list,cinematography::string_list,subject::string_list,"
                            "starring::string_list,director::string_list\n"
                            '1,"Toy Story is a film.\nIt has ""toys"", and a cowboy.",http://dbpedia.org/resource/Pixar,'
                            ",,,http://dbpedia.org/resource/Category:Pixar_films,,"
                            "http://dbpedia.org/resource/John_Lasseter\n"
                            "2,A heist film.,,,,,,,http://dbpedia.org/resource/Michael_Mann\n",
}
GENERIC_FILES = {
    "items.csv": "id,title,text,brand\na,Red shoe,A red running shoe,Acme\nb,Blue hat,,Hatco\nc,Green bag,,\n",
    "users.csv": "id,country\nu1,SE\nu2,FR\n",
    "interactions.csv": "user_id,item_id,timestamp,rating\nu1,b,200,4\nu1,a,100,5\nu2,c,50,\n",
    "facts.csv": "item_id,predicate,entity_uri,entity_label\na,brand,urn:brand:acme,Acme\n",
}
BEAUTY_FILES = {
    "item_titles.txt": "B001 sedu ionic flat iron\nB002 rose lip balm\nB003 \n",
    "user_sequence.txt": "A1 B001 B002\nA2 B002 B003 B001\n",
}
GAMES_FILES = {
    "Games-6k.item": 'item_id:token\ttitle:token_seq\n0\tFire Emblem\n1\tIvan "Ironman" Stewart\'s Off Road\n2\tTetris\n',
    "Games-6k.test.inter": "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t0 1\t2\n1\t2\t0\n",
}
KINDS = {
    "ml": ("movielens-100k", ML_FILES),
    "generic": ("generic", GENERIC_FILES),
    "beauty": ("amazon-beauty", BEAUTY_FILES),
    "games": ("amazon-games", GAMES_FILES),
}
NAME = "corpus"


def build(root: Path, kind: str) -> Path:
    folder = root / kind
    for rel, text in KINDS[kind][1].items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text.encode("utf-8"))
    return folder


def ingest_args(kind: str, folder: Path, *extra: str) -> list[str]:
    args = ["ingest", KINDS[kind][0], "--path", str(folder), "--name", NAME]
    if kind == "ml":
        args += ["--dbpedia", str(folder / "dbpedia")]
    return [*args, *extra]


# ------------------------------------------------------------------------------------------------------
# the CLI, in-process


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def kgp(neo4j_server, tmp_path, monkeypatch, capsys) -> Callable[..., Result]:
    import os

    from kgplatform.cli.main import main

    for k in list(os.environ):
        if k.startswith(("NEO4J_", "KGP_")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("NEO4J_URI", neo4j_server.uri)
    monkeypatch.setenv("KGP_HOME", str(tmp_path / "home"))
    if neo4j_server.password:
        monkeypatch.setenv("NEO4J_USER", neo4j_server.user or "neo4j")
        monkeypatch.setenv("NEO4J_PASSWORD", neo4j_server.password)

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        monkeypatch.setattr(sys, "argv", ["kgp", *args])
        capsys.readouterr()
        code = 0
        tb = ""
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:  # noqa: BLE001 - an escaped exception is exactly what must not happen
            code, tb = -1, traceback.format_exc()
        captured = capsys.readouterr()
        for k in (env or {}):
            monkeypatch.delenv(k)
        return Result(code, captured.out, captured.err + tb)

    return run


def fingerprint(graph) -> dict:
    """Counts per label and per relationship type (Neo4j's count store), plus the Dataset nodes' counts."""
    return graph_stats(graph)


@pytest.fixture
def seeded(graph, tmp_path):
    """The empty test graph plus a small generic dataset named like the one each case tries to load."""
    folder = build(tmp_path / "seed", "generic")
    write_dataset(graph, load_dataset("generic", folder, name=NAME), progress=False)
    return graph


# ------------------------------------------------------------------------------------------------------
# mutations


def write(rel: str, text: str) -> Callable[[Path], None]:
    return lambda d: (d / rel).write_bytes(text.encode("utf-8"))


def write_bytes(rel: str, data: bytes) -> Callable[[Path], None]:
    return lambda d: (d / rel).write_bytes(data)


def append(rel: str, text: str) -> Callable[[Path], None]:
    def f(d: Path) -> None:
        with (d / rel).open("ab") as fh:
            fh.write(text.encode("utf-8"))
    return f


def append_bytes(rel: str, data: bytes) -> Callable[[Path], None]:
    def f(d: Path) -> None:
        with (d / rel).open("ab") as fh:
            fh.write(data)
    return f


def sub_bytes(rel: str, old: bytes, new: bytes) -> Callable[[Path], None]:
    def f(d: Path) -> None:
        data = (d / rel).read_bytes()
        assert old in data, (rel, old)
        (d / rel).write_bytes(data.replace(old, new, 1))
    return f


def header_only(rel: str) -> Callable[[Path], None]:
    def f(d: Path) -> None:
        first = (d / rel).read_text(encoding="utf-8").splitlines(keepends=True)[0]
        (d / rel).write_text(first, encoding="utf-8")
    return f


def make_dir(rel: str) -> Callable[[Path], None]:
    def f(d: Path) -> None:
        p = d / rel
        if p.is_file():
            p.unlink()
        p.mkdir(parents=True)
    return f


def remove(rel: str) -> Callable[[Path], None]:
    def f(d: Path) -> None:
        p = d / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return f


def replace(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def f(d: Path) -> None:
        text = (d / rel).read_text(encoding="utf-8")
        assert old in text, (rel, old)
        (d / rel).write_text(text.replace(old, new, 1), encoding="utf-8")
    return f


def recode(rel: str, encoding: str) -> Callable[[Path], None]:
    def f(d: Path) -> None:
        (d / rel).write_bytes((d / rel).read_text(encoding="utf-8").encode(encoding))
    return f


def both(*fs: Callable[[Path], None]) -> Callable[[Path], None]:
    def f(d: Path) -> None:
        for g in fs:
            g(d)
    return f


# ------------------------------------------------------------------------------------------------------
# the bad-input corpus: (class, id, kind, mutation, extra CLI args, exit code, "file:line" or file or None, text)

LONG = "x" * 5000

BAD = [
    # --- encodings -------------------------------------------------------------------------------------
    ("encoding", "generic-latin1-title", "generic", append_bytes("items.csv", b"d,Caf\xe9 cr\xe8me,,\n"), (), 9,
     "items.csv:5", "not valid UTF-8 (byte 0xe9 at column 6)"),
    ("encoding", "ml-item-latin1", "ml", sub_bytes("mini.item", "Amélie".encode(), b"Am\xe9lie"), (), 9,
     "mini.item:4", "not valid UTF-8 (byte 0xe9 at column 5)"),
    ("encoding", "ml-inter-utf16", "ml", recode("mini.inter", "utf-16"), (), 9, "mini.inter:1", "UTF-16"),
    ("encoding", "generic-utf16-le-bom", "generic", recode("items.csv", "utf-16"), (), 9, "items.csv:1", "UTF-16"),
    ("encoding", "beauty-titles-cp1252", "beauty", append_bytes("item_titles.txt", b"B004 na\x96ve lotion\n"), (), 9,
     "item_titles.txt:4", "byte 0x96"),
    ("encoding", "games-item-bad-byte", "games", append_bytes("Games-6k.item", b"3\tPok\xe9mon\n"), (), 9,
     "Games-6k.item:5", "not valid UTF-8"),
    ("encoding", "dbpedia-bad-byte-in-multiline-field", "ml", sub_bytes("dbpedia/enriched.csv", b"It has", b"It h\xc3s"),
     (), 9, "enriched.csv:3", "not valid UTF-8"),
    ("encoding", "generic-nul-byte", "generic", append_bytes("interactions.csv", b"u2,a\x00,10,1\n"), (), 9,
     "interactions.csv:5", "NUL byte"),
    ("encoding", "beauty-sequence-bad-byte", "beauty", append_bytes("user_sequence.txt", b"A\xff3 B001\n"), (), 9,
     "user_sequence.txt:3", "byte 0xff"),
    # --- quoting ---------------------------------------------------------------------------------------
    ("quoting", "generic-unclosed-quote-at-eof", "generic", append("items.csv", 'd,"Unclosed title\ne,Fine\n'), (), 9,
     "items.csv:5", "unclosed quote"),
    ("quoting", "generic-unclosed-quote-swallows", "generic",
     write("interactions.csv", 'user_id,item_id,timestamp,rating\nu1,"a,100,5\nu1,b,200,4\nu2,"c",50,\n'), (), 9,
     "interactions.csv:2", "bad quoting"),
    ("quoting", "generic-text-after-closing-quote", "generic", append("items.csv", 'd,"Red" shoe,,\n'), (), 9,
     "items.csv:5", "bad quoting"),
    ("quoting", "dbpedia-enriched-unclosed", "ml", append("dbpedia/enriched.csv", '3,"An abstract that never ends\n'),
     (), 9, "enriched.csv:5", "unclosed quote"),
    ("quoting", "dbpedia-map-quote-swallows-rows", "ml",
     write("dbpedia/map.csv", 'item_id::string,URI::string\n1,"http://dbpedia.org/resource/Toy_Story\n'
                              '2,http://x\n3,http://y",extra\n'),
     (), 9, "map.csv:2", "check its quotes"),
    ("quoting", "generic-facts-unclosed", "generic", append("facts.csv", 'b,color,"urn:color:blue,Blue\n'), (), 9,
     "facts.csv:3", "unclosed quote"),
    # --- numbers ---------------------------------------------------------------------------------------
    ("number", "ml-timestamp-nan", "ml", append("mini.inter", "2\t1\t4\tnan\n"), (), 9, "mini.inter:5",
     "not a finite number"),
    ("number", "ml-timestamp-inf", "ml", append("mini.inter", "2\t1\t4\tinf\n"), (), 9, "mini.inter:5",
     "not a finite number"),
    ("number", "ml-timestamp-huge", "ml", append("mini.inter", "2\t1\t4\t1e300\n"), (), 9, "mini.inter:5",
     "out of range"),
    ("number", "ml-timestamp-milliseconds", "ml", append("mini.inter", "2\t1\t4\t881250949000\n"), (), 9,
     "mini.inter:5", "milliseconds?"),
    ("number", "ml-timestamp-empty", "ml", append("mini.inter", "2\t1\t4\t \n"), (), 9, "mini.inter:5",
     "column timestamp: empty"),
    ("number", "ml-rating-nan", "ml", append("mini.inter", "2\t1\tNaN\t881250949\n"), (), 9, "mini.inter:5",
     "not a finite number"),
    ("number", "ml-rating-out-of-range", "ml", append("mini.inter", "2\t1\t7\t881250949\n"), (), 9, "mini.inter:5",
     "column rating: 7 is out of range"),
    ("number", "ml-rating-minus-inf", "ml", append("mini.inter", "2\t1\t-inf\t881250949\n"), (), 9, "mini.inter:5",
     "not a finite number"),
    ("number", "ml-age-beyond-int64", "ml", append("mini.user", "3\t99999999999999999999\tM\tother\t1\n"), (), 9,
     "mini.user:4", "column age"),
    ("number", "ml-age-negative", "ml", append("mini.user", "3\t-1\tM\tother\t1\n"), (), 9, "mini.user:4",
     "out of range"),
    ("number", "ml-age-nan", "ml", append("mini.user", "3\tnan\tM\tother\t1\n"), (), 9, "mini.user:4",
     "is not an integer"),
    ("column", "generic-behavior-not-a-word", "generic",
     write("interactions.csv", "user_id,item_id,timestamp,rating,behavior\nu1,b,200,4,view\nu1,a,100,5,buy\n"
                               "u2,c,50,,\nu2,a,10,1,add to cart!\n"), (), 9,
     "interactions.csv:5", "column behavior: 'add to cart!' must be a lowercase word"),
    ("column", "generic-behavior-reserved", "generic",
     write("interactions.csv", "user_id,item_id,timestamp,rating,behavior\nu1,b,200,4,view\nu1,a,100,5,buy\n"
                               "u2,c,50,,\nu2,a,10,1,Interacted\n"), (), 9,
     "interactions.csv:5", "is reserved for another edge type"),
    ("number", "generic-rating-inf", "generic", append("interactions.csv", "u2,a,10,inf\n"), (), 9,
     "interactions.csv:5", "not a finite number"),
    ("number", "generic-rating-nan", "generic", append("interactions.csv", "u2,a,10,nan\n"), (), 9,
     "interactions.csv:5", "not a finite number"),
    ("number", "generic-timestamp-minus-1e20", "generic", append("interactions.csv", "u2,a,-1e20,1\n"), (), 9,
     "interactions.csv:5", "out of range"),
    ("number", "generic-timestamp-overflows-to-inf", "generic", append("interactions.csv", "u2,a,1e400,1\n"), (), 9,
     "interactions.csv:5", "not a finite number"),
    ("number", "generic-timestamp-word", "generic", append("interactions.csv", "u2,a,yesterday,1\n"), (), 9,
     "interactions.csv:5", "is not a number"),
    # --- header-only and empty files ---------------------------------------------------------------------
    ("header-only", "generic-items", "generic", header_only("items.csv"), (), 9, "items.csv:2", "nothing to load"),
    ("header-only", "generic-interactions", "generic", header_only("interactions.csv"), (), 9,
     "interactions.csv:2", "nothing to load"),
    ("header-only", "ml-inter", "ml", header_only("mini.inter"), (), 9, "mini.inter:2", "nothing to load"),
    ("header-only", "ml-item", "ml", header_only("mini.item"), (), 9, "mini.item:2", "nothing to load"),
    ("header-only", "games-test-inter", "games", header_only("Games-6k.test.inter"), (), 9,
     "Games-6k.test.inter:2", "nothing to load"),
    ("header-only", "beauty-empty-sequences", "beauty", write("user_sequence.txt", "\n\n"), (), 9,
     "user_sequence.txt:1", "nothing to load"),
    ("header-only", "generic-items-zero-bytes", "generic", write("items.csv", ""), (), 9, "items.csv:1",
     "empty file"),
    ("header-only", "ml-inter-zero-bytes", "ml", write("mini.inter", ""), (), 9, "mini.inter:1", "empty file"),
    # --- paths -------------------------------------------------------------------------------------------
    ("path", "generic-users-is-a-directory", "generic", make_dir("users.csv"), (), 9, "users.csv", "is a directory"),
    ("path", "generic-facts-is-a-directory", "generic", make_dir("facts.csv"), (), 9, "facts.csv", "is a directory"),
    ("path", "ml-user-is-a-directory", "ml", make_dir("mini.user"), (), 9, "mini.user", "is a directory"),
    ("path", "ml-dbpedia-map-is-a-directory", "ml", make_dir("dbpedia/map.csv"), (), 9, "map.csv", "is a directory"),
    ("path", "beauty-titles-is-a-directory", "beauty", make_dir("item_titles.txt"), (), 9, "item_titles.txt",
     "is a directory"),
    ("path", "generic-items-missing", "generic", remove("items.csv"), (), 9, "items.csv", "missing items"),
    ("path", "ml-inter-missing", "ml", remove("mini.inter"), (), 9, None, "missing *.inter file"),
    ("path", "ml-dbpedia-missing", "ml", remove("dbpedia"), (), 9, "dbpedia", "DBpedia directory not found"),
    ("path", "games-item-missing", "games", remove("Games-6k.item"), (), 9, None, "expected one *.item"),
    # --- huge fields -------------------------------------------------------------------------------------
    ("huge", "generic-id-too-long", "generic", append("items.csv", f"{LONG},Long id,,\n"), (), 9, "items.csv:5",
     "bytes long"),
    ("huge", "generic-entity-uri-too-long", "generic", append("facts.csv", f"b,color,urn:{LONG},Blue\n"), (), 9,
     "facts.csv:3", "bytes long"),
    ("huge", "ml-item-id-too-long", "ml", append("mini.item", f"{LONG}\tLong\t1999\tDrama\n"), (), 9, "mini.item:5",
     "bytes long"),
    ("huge", "generic-huge-field-in-unclosed-quote", "generic",
     append("items.csv", 'd,"' + "y" * 300_000 + "\n"), (), 9, "items.csv:5", "unclosed quote"),
    # --- blank and whitespace-only fields ----------------------------------------------------------------
    ("blank", "generic-user-id-whitespace", "generic", append("interactions.csv", "   ,a,10,1\n"), (), 9,
     "interactions.csv:5", "column user_id: empty id"),
    ("blank", "generic-id-inner-space", "generic", append("items.csv", "d e,Spaced,,\n"), (), 9, "items.csv:5",
     "contains whitespace"),
    ("blank", "ml-inter-item-blank", "ml", append("mini.inter", "2\t \t4\t881250949\n"), (), 9, "mini.inter:5",
     "column item_id: empty id"),
    ("blank", "generic-fact-predicate-blank", "generic", append("facts.csv", "b, ,urn:x,X\n"), (), 9,
     "facts.csv:3", "empty predicate"),
    ("blank", "beauty-user-without-items", "beauty", append("user_sequence.txt", "A3\n"), (), 9,
     "user_sequence.txt:3", "has no items"),
    ("blank", "ml-short-row", "ml", append("mini.inter", "2\t1\n"), (), 9, "mini.inter:5",
     "expected 4 tab-separated fields"),
    # --- duplicates --------------------------------------------------------------------------------------
    ("duplicate", "generic-item-id", "generic", append("items.csv", "a,Again,,\n"), (), 9, "items.csv:5",
     "duplicate item id a (first on line 2)"),
    ("duplicate", "generic-user-id", "generic", append("users.csv", "u1,DE\n"), (), 9, "users.csv:4",
     "duplicate user id u1"),
    ("duplicate", "ml-item-id", "ml", append("mini.item", "2\tHeat again\t1995\tAction\n"), (), 9, "mini.item:5",
     "duplicate item_id 2"),
    ("duplicate", "ml-rating", "ml", append("mini.inter", "1\t1\t4\t881250999\n"), (), 9, "mini.inter:5",
     "duplicate rating"),
    ("duplicate", "beauty-user", "beauty", append("user_sequence.txt", "A1 B003\n"), (), 9, "user_sequence.txt:3",
     "duplicate user A1"),
    ("duplicate", "games-item-id", "games", append("Games-6k.item", "1\tAgain\n"), (), 9, "Games-6k.item:5",
     "duplicate item_id 1"),
    ("duplicate", "dbpedia-enriched-item", "ml", append("dbpedia/enriched.csv", "2,Again.,,,,,,,\n"), (), 9,
     "enriched.csv:5", "duplicate item_id 2"),
    ("duplicate", "generic-header-column", "generic", write("users.csv", "id,country,country\nu1,SE,SE\n"), (), 9,
     "users.csv:1", "duplicate column 'country'"),
    # --- unknown ids across files ------------------------------------------------------------------------
    ("unknown-id", "generic-item", "generic", append("interactions.csv", "u2,zzz,10,1\n"), (), 9,
     "interactions.csv:5", "unknown item_id zzz"),
    ("unknown-id", "generic-user", "generic", append("interactions.csv", "u9,a,10,1\n"), (), 9,
     "interactions.csv:5", "unknown user_id u9"),
    ("unknown-id", "generic-fact-item", "generic", append("facts.csv", "zzz,brand,urn:b,B\n"), (), 9,
     "facts.csv:3", "unknown item_id zzz"),
    ("unknown-id", "ml-user", "ml", append("mini.inter", "9\t1\t4\t881250949\n"), (), 9, "mini.inter:5",
     "unknown user_id 9"),
    ("unknown-id", "beauty-item", "beauty", append("user_sequence.txt", "A3 B001 B999\n"), (), 9,
     "user_sequence.txt:3", "unknown item 'B999'"),
    ("unknown-id", "games-item", "games", append("Games-6k.test.inter", "2\t0 77\t1\n"), (), 9,
     "Games-6k.test.inter:4", "unknown item_id '77'"),
    # --- missing columns ---------------------------------------------------------------------------------
    ("column", "generic-interactions-no-item-id", "generic", write("interactions.csv", "user_id,item\nu1,a\n"), (), 9,
     "interactions.csv:1", "header lacks column(s) item_id"),
    ("column", "ml-inter-no-timestamp", "ml",
     write("mini.inter", "user_id:token\titem_id:token\trating:float\n1\t1\t5\n"), (), 9, "mini.inter:1",
     "header lacks column(s) timestamp"),
    ("column", "dbpedia-enriched-no-director", "ml",
     write("dbpedia/enriched.csv", "item_id,abstract,producer,distributor,writer,cinematography,subject,starring\n"),
     (), 9, "enriched.csv:1", "header lacks column(s) director"),
    ("column", "generic-reserved-property", "generic", write("users.csv", "id,textEmbedding\nu1,x\nu2,y\n"), (), 9,
     "users.csv:1", "cannot be a property"),
    # --- option values -----------------------------------------------------------------------------------
    ("option", "name-with-space", "generic", None, ("--name", "my shop"), 2, None, "bad dataset name"),
    ("option", "name-with-colon", "generic", None, ("--name", "a:b"), 2, None, "bad dataset name"),
    ("option", "negative-session-gap", "generic", None, ("--session-gap=-5",), 2, None, "session gap"),
    ("option", "path-is-a-file", "generic", None, ("--path", "__FILE__"), 9, None, "not a directory"),
    ("option", "path-name-too-long", "generic", None, ("--path", "__LONG__"), 9, None, "cannot use this path"),
    ("option", "dbpedia-is-a-file", "ml", None, ("--dbpedia", "__FILE__"), 9, None,
     "not a directory (expected the DBpedia folder)"),
]


def _ids(cases):
    return [f"{c[0]}:{c[1]}" for c in cases]


def test_corpus_size():
    """The corpus covers every loader and every class the issue lists."""
    assert len(BAD) >= 40
    assert {c[2] for c in BAD} == set(KINDS)
    assert {"encoding", "quoting", "number", "header-only", "path", "huge", "blank", "duplicate", "unknown-id",
            "column", "option"} <= {c[0] for c in BAD}


@pytest.mark.parametrize("cls, case, kind, mutate, extra, code, where, text", BAD, ids=_ids(BAD))
def test_bad_input_is_one_error_line_and_writes_nothing(seeded, kgp, tmp_path, cls, case, kind, mutate, extra,
                                                         code, where, text):
    folder = build(tmp_path / "in", kind)
    if mutate is not None:
        mutate(folder)
    args = ingest_args(kind, folder)
    if extra:  # later options win in click
        placeholders = {"__FILE__": str(folder / next(iter(KINDS[kind][1]))),  # a file where a folder belongs
                        "__LONG__": str(tmp_path / ("d" * 5000))}  # a name the OS refuses
        args = [*args, *(placeholders.get(x, x) for x in extra)]
    before = fingerprint(seeded)
    r = kgp(*args)
    assert "Traceback" not in r.err, r.err
    assert r.code == code, r.err
    errors = [l for l in r.err.splitlines() if l.startswith("Error:")]
    assert len(errors) == 1, r.err
    assert text in errors[0], errors[0]
    if where is not None:
        assert where in errors[0], errors[0]
        if ":" in where:  # file:line: what
            assert f"{where}: " in errors[0], errors[0]
    assert r.out == ""
    assert fingerprint(seeded) == before


# ------------------------------------------------------------------------------------------------------
# valid but unusual input loads (and loads again without a change)


def _bom(rel: str) -> Callable[[Path], None]:
    return lambda d: (d / rel).write_bytes(b"\xef\xbb\xbf" + (d / rel).read_bytes())


def _crlf(rel: str) -> Callable[[Path], None]:
    return lambda d: (d / rel).write_bytes((d / rel).read_bytes().replace(b"\n", b"\r\n"))


HUGE_TEXT = "word " * 60_000  # 300,000 characters, more than Python csv's default field limit (131,072)

GOOD = [
    ("generic-bom", "generic", both(_bom("items.csv"), _bom("interactions.csv"), _bom("users.csv")),
     {"Item": 3, "User": 2}),
    ("generic-crlf", "generic", both(_crlf("items.csv"), _crlf("interactions.csv"), _crlf("facts.csv")),
     {"Item": 3, "User": 2}),
    ("generic-quoted-newlines", "generic",
     write("items.csv", 'id,title,text,brand\na,"Red\nshoe","Line one\r\nline two, with a comma",Acme\n'
                        'b,"Blue ""bowler"" hat",,Hatco\nc,5" screen bag,,\n'),
     {"Item": 3, "User": 2}),
    ("generic-whitespace-around-fields", "generic",
     both(write("items.csv", " id , title ,text,brand\n a , Red shoe ,,  Acme \nb,Blue hat,,\nc ,Green bag,,\n"),
          write("interactions.csv", "user_id, item_id ,timestamp,rating\n u1 ,b, 200 , 4 \nu1,a,100,5\nu2, c ,50,\n")),
     {"Item": 3, "User": 2}),
    ("generic-non-ascii", "generic",
     write("items.csv", "id,title,text,brand\na,Amélie,,Café\nb,東京物語,,松竹\nc,Ça va 🎬,,\n"),
     {"Item": 3, "User": 2}),
    ("generic-huge-field", "generic", write("items.csv", f'id,title,text\na,Red,"{HUGE_TEXT}"\nb,Blue,\nc,Green,\n'),
     {"Item": 3, "User": 2}),
    ("generic-pre-1970-and-fractional-timestamps", "generic",
     write("interactions.csv", "user_id,item_id,timestamp,rating\nu1,b,-86400.5,4\nu1,a,100.25,5\nu2,c,,\n"),
     {"Item": 3, "User": 2}),
    ("generic-blank-lines-and-empty-title", "generic",
     write("items.csv", "id,title\n\na,\n\nb,Blue\n,\nc,Green\n\n"), {"Item": 3, "User": 2}),
    ("ml-bom-crlf", "ml", both(_bom("mini.item"), _crlf("mini.item"), _crlf("mini.inter"), _bom("dbpedia/map.csv")),
     {"Item": 3, "User": 2}),
    ("ml-quoted-multiline-abstract-crlf", "ml", _crlf("dbpedia/enriched.csv"), {"Item": 3, "User": 2}),
    ("beauty-tab-and-untitled", "beauty", write("item_titles.txt", "B001\tsedu ionic\nB002  rose lip balm\nB003\n"),
     {"Item": 3, "User": 2}),
    ("games-quotes-are-literal", "games", _crlf("Games-6k.item"), {"Item": 3, "User": 2}),
]


@pytest.mark.parametrize("case, kind, mutate, counts", GOOD, ids=[g[0] for g in GOOD])
def test_unusual_but_valid_input_loads(graph, kgp, tmp_path, case, kind, mutate, counts):
    folder = build(tmp_path / "in", kind)
    mutate(folder)
    r = kgp(*ingest_args(kind, folder))
    assert r.code == 0, r.err
    assert "Traceback" not in r.err and "Error:" not in r.err
    after = fingerprint(graph)
    for label, n in counts.items():
        assert after["nodes"].get(label) == n, after
    r = kgp(*ingest_args(kind, folder))  # re-run: idempotent
    assert r.code == 0, r.err
    assert fingerprint(graph) == after


def _items(graph) -> dict[str, dict]:
    return {r["key"].split(":", 1)[1]: r["props"] for r in graph.read("embed/page_items", dataset=NAME, after="",
                                                                       page=100)}


def test_values_survive_bom_quotes_whitespace_and_unicode(graph, kgp, tmp_path):
    folder = build(tmp_path / "in", "generic")
    write("items.csv", '\ufeffid , title,text\n a ,"Red\nshoe", Café crème \nb,東京物語,\nc,"Say ""hi""",\n')(folder)
    _crlf("items.csv")(folder)
    r = kgp(*ingest_args("generic", folder))
    assert r.code == 0, r.err
    items = _items(graph)
    assert items["a"]["title"] == "Red\r\nshoe" and items["a"]["text"] == "Café crème"
    assert items["b"]["title"] == "東京物語" and items["b"]["text"] == "東京物語"
    assert items["c"]["title"] == 'Say "hi"'


def test_huge_field_is_kept_whole(graph, kgp, tmp_path):
    folder = build(tmp_path / "in", "generic")
    write("items.csv", f'id,title,text\na,Red,"{HUGE_TEXT}"\nb,Blue,\nc,Green,\n')(folder)
    r = kgp(*ingest_args("generic", folder))
    assert r.code == 0, r.err
    assert _items(graph)["a"]["text"] == HUGE_TEXT.strip()


def test_ml_bom_header_is_accepted(graph, kgp, tmp_path):
    """A spreadsheet's UTF-8 BOM used to make the header 'lack' item_id."""
    folder = build(tmp_path / "in", "ml")
    _bom("mini.item")(folder)
    _bom("dbpedia/enriched.csv")(folder)
    r = kgp(*ingest_args("ml", folder))
    assert r.code == 0, r.err
    items = _items(graph)
    assert items["3"]["title"] == "Amélie"
    assert "It has \"toys\", and a cowboy." in items["1"]["abstract"]


def test_failed_reingest_keeps_previous_dataset(graph, kgp, tmp_path):
    """A dataset already in the graph is untouched by a bad re-ingest of the same name (all rows checked first)."""
    folder = build(tmp_path / "in", "ml")
    assert kgp(*ingest_args("ml", folder)).code == 0
    before = fingerprint(graph)
    # a bad value on the *last* row: every earlier row is fine, and nothing may be written
    append("mini.inter", "2\t2\t4\tnan\n")(folder)
    r = kgp(*ingest_args("ml", folder))
    assert r.code == 9 and "mini.inter:5: column timestamp" in r.err
    assert fingerprint(graph) == before


# ------------------------------------------------------------------------------------------------------
# domain glossaries (kgp extract --glossary): checked before any LLM call or write

GLOSSARY_BAD = [
    ("latin1", b"# movies\nfilm noir\tA dark crime drama.\nna\xefve\tSimple.\n", "g.tsv:3", "not valid UTF-8"),
    ("utf16", "film noir\tDark.\n".encode("utf-16"), "g.tsv:1", "UTF-16"),
    ("no-tab", b"film noir\tDark.\nneo-noir modern noir\n", "g.tsv:2", "expected 'term<TAB>explanation'"),
    ("empty-explanation", b"film noir\t   \n", "g.tsv:1", "empty term or explanation"),
    ("duplicate-term", b"noir\tDark.\nfilm noir|NOIR\tDark again.\n", "g.tsv:2", "already defined on line 1"),
    ("huge-explanation", b"noir\t" + b"dark " * 400 + b"\n", "g.tsv:1", "explanation is"),
    ("only-comments", b"# nothing here\n\n", "g.tsv", "no glossary entries"),
    ("directory", None, "g.tsv", "is a directory"),
]


@pytest.mark.parametrize("case, data, where, text", GLOSSARY_BAD, ids=[g[0] for g in GLOSSARY_BAD])
def test_bad_glossary_is_one_error_line(seeded, kgp, tmp_path, case, data, where, text):
    path = tmp_path / "g.tsv"
    if data is None:
        path.mkdir()
    else:
        path.write_bytes(data)
    before = fingerprint(seeded)
    r = kgp("extract", "--round", "1", "-d", NAME, "--items-only", "--limit", "1", "--no-cache",
            "--glossary", str(path))
    assert "Traceback" not in r.err, r.err
    assert r.code == 9, r.err
    errors = [l for l in r.err.splitlines() if l.startswith("Error:")]
    assert len(errors) == 1 and where in errors[0] and text in errors[0], r.err
    assert fingerprint(seeded) == before


def test_glossary_with_bom_and_crlf_parses(tmp_path):
    from kgplatform.agent.glossary import load_glossary

    path = tmp_path / "g.tsv"
    path.write_bytes(b"\xef\xbb\xbf# movies\r\nfilm noir|noir\tA dark crime drama.\r\nsci-fi\tScience fiction.\r\n")
    g = load_glossary(path)
    assert [e.terms for e in g.entries] == [("film noir", "noir"), ("sci-fi",)]
    assert [e.key for e in g.match("a noir sci-fi film")] == ["film noir", "sci-fi"]


def test_longest_allowed_keys_load(graph, kgp, tmp_path):
    """Ids, URIs and predicates up to MAX_KEY_BYTES (multi-byte characters count as bytes) fit Neo4j's indexes."""
    from kgplatform.ingest.readers import MAX_KEY_BYTES

    item = "é" * (MAX_KEY_BYTES // 2)  # 2 bytes each
    user = "u" * MAX_KEY_BYTES
    uri = "urn:" + "x" * (MAX_KEY_BYTES - 4)
    pred = "p" * MAX_KEY_BYTES
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "items.csv").write_text(f"id,title\n{item},Long\n", encoding="utf-8")
    (folder / "interactions.csv").write_text(f"user_id,item_id\n{user},{item}\n", encoding="utf-8")
    (folder / "facts.csv").write_text(f"item_id,predicate,entity_uri\n{item},{pred},{uri}\n", encoding="utf-8")
    name = "n" * 100
    r = kgp("ingest", "generic", "--path", str(folder), "--name", name)
    assert r.code == 0, r.err
    s = fingerprint(graph)
    assert s["nodes"]["Item"] == 1 and s["nodes"]["Entity"] == 1 and s["relationships"]["FACT"] == 1
    assert s["nodes"]["Session"] == 1


def test_bad_batch_size_is_a_config_error(seeded, kgp, tmp_path):
    folder = build(tmp_path / "in", "generic")
    before = fingerprint(seeded)
    r = kgp(*ingest_args("generic", folder), env={"KGP_BATCH_SIZE": "0"})
    assert r.code == 2 and r.err.count("Error:") == 1 and "KGP_BATCH_SIZE must be >= 1" in r.err
    assert fingerprint(seeded) == before
