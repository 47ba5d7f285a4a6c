"""Extraction over several OpenAI-compatible endpoints (``--endpoint a,b``): requests spread with bounded
concurrency, moved to another endpoint on 429/5xx/connection failures with backoff, and an endpoint that dies
mid-run costs no node and answers none twice.

Local HTTP servers that speak the chat-completions protocol stand in for the endpoints (they count what they
answer, per prompt); the last test runs two real llama-cpp-python servers with the SmolLM2 GGUF and kills one.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kgplatform.agent import extract, load_backend
from kgplatform.agent.llm import EndpointPool, parse_endpoints
from kgplatform.errors import ConfigError, ExtractionError

from .conftest import TOY

NODES = 5  # the toy graph: four items and the one user with a profile


class Endpoint:
    """One local chat-completions server. ``fail(n)`` → the status the n-th request (0-based) gets instead of an
    answer (None = answer); ``die_after``: stop listening after that many answers."""

    def __init__(self, fail=lambda n: None, die_after: int | None = None, delay: float = 0.0) -> None:
        self.fail, self.die_after, self.delay = fail, die_after, delay
        self.requests = 0
        self.answered: Counter[str] = Counter()  # prompt hash → answers sent with 200
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the pool's health probe
                self._send(200, {"object": "list", "data": [{"id": "served", "object": "model"}]})

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    n = outer.requests
                    outer.requests += 1
                status = outer.fail(n)
                if outer.delay:
                    time.sleep(outer.delay)
                if status is not None:
                    self._send(status, {"error": {"message": f"status {status}", "type": "server_error"}})
                    return
                prompt = body["messages"][-1]["content"]
                answer = {"intents": ["space travel", "first contact"]}
                self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body.get("model"),
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": json.dumps(answer)}}],
                                 "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
                with outer.lock:
                    outer.answered[hashlib.sha256(prompt.encode()).hexdigest()] += 1
                    if outer.die_after is not None and sum(outer.answered.values()) >= outer.die_after:
                        threading.Thread(target=outer.stop, daemon=True).start()

            def _send(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.shutdown()
            self.server.server_close()  # connections are now refused


@pytest.fixture
def endpoints():
    made: list[Endpoint] = []

    def make(**kw) -> Endpoint:
        made.append(Endpoint(**kw))
        return made[-1]

    yield make
    for e in made:
        e.stop()


@pytest.fixture
def home(settings, tmp_path):
    return settings.model_copy(update={"home": tmp_path / "home", "glossary": None, "llm_endpoint_model": "served"})


def backend(home, eps, parallel=1):
    be = load_backend(home, endpoint=",".join(e.url for e in eps), parallel=parallel)
    be.pool.backoff, be.pool.max_backoff = 0.05, 0.4  # fast tests; the schedule is the same
    return be


def counting_writes(graph):
    """Wrap ``graph.write_rows`` to count how often each node is written by the extraction."""
    writes: Counter[str] = Counter()
    original = graph.write_rows

    def write_rows(name, rows, **kw):
        if name.startswith("agent/write_"):
            for r in rows:
                writes[r["id"]] += 1
        return original(name, rows, **kw)

    graph.write_rows = write_rows
    return writes, original


def done_nodes(graph) -> set[str]:
    return {r["id"] for r in graph.read("agent/page_items", dataset=TOY, after="", page=100)
            if r.get("extractStatus") == "ok"} | \
           {r["id"] for r in graph.read("agent/page_users", dataset=TOY, after="", page=100)
            if r.get("extractStatus") == "ok"}


def test_endpoint_list_is_parsed_and_validated():
    assert parse_endpoints(" http://a:1/v1/ , http://b:2/v1,http://a:1/v1") == ["http://a:1/v1", "http://b:2/v1"]
    with pytest.raises(ConfigError, match="not an http"):
        parse_endpoints("http://a/v1,b:2")
    with pytest.raises(ConfigError, match="empty"):
        parse_endpoints(" , ")


def test_requests_spread_and_move_off_429_and_5xx(toy_graph, home, endpoints):
    a = endpoints(delay=0.5)  # slow: b is back (after backoff and a health probe) long before a is done
    b = endpoints(fail=lambda n: 429 if n < 1 else None, delay=0.05)  # rate-limited at first
    c = endpoints(fail=lambda n: 503)  # broken all along
    be = backend(home, [a, b, c], parallel=2)
    writes, original = counting_writes(toy_graph)
    try:
        s = extract(toy_graph, home, round=1, backend=be, progress=False)
    finally:
        toy_graph.write_rows = original
    assert (s.ok, s.failed, s.errors) == (NODES, 0, 0)
    assert set(writes.values()) == {1} and len(writes) == NODES  # every node written once
    answered = a.answered + b.answered
    assert len(answered) == NODES and set(answered.values()) == {1}  # every prompt answered once in all
    assert a.answered and b.answered  # spread over both working endpoints
    assert b.requests > sum(b.answered.values()) and c.requests >= 1 and not c.answered
    assert be.pool.moved >= 2  # b's 429 and c's 503s went elsewhere
    # bounded concurrency: never more than `parallel` requests in flight per endpoint
    assert be.pool.max_in_flight <= 2


def test_an_endpoint_dying_mid_run_loses_and_repeats_nothing(toy_graph, home, endpoints):
    a = endpoints(delay=0.1)
    b = endpoints(die_after=1, delay=0.1)  # answers once, then stops listening
    be = backend(home, [a, b])
    writes, original = counting_writes(toy_graph)
    try:
        s = extract(toy_graph, home, round=1, backend=be, progress=False)
    finally:
        toy_graph.write_rows = original
    assert b.stopped and sum(b.answered.values()) == 1
    assert (s.ok, s.failed, s.errors) == (NODES, 0, 0)
    assert set(writes.values()) == {1} and len(writes) == NODES
    answered = a.answered + b.answered
    assert len(answered) == NODES and set(answered.values()) == {1}
    assert len(done_nodes(toy_graph)) == NODES


def test_all_endpoints_down_leaves_the_nodes_for_the_next_run(toy_graph, home, endpoints):
    down = [endpoints(fail=lambda n: 500), endpoints(fail=lambda n: 502)]
    with pytest.raises(ExtractionError, match="failed 5 times in a row"):
        extract(toy_graph, home, round=1, backend=backend(home, down), progress=False)
    assert done_nodes(toy_graph) == set()  # nothing recorded on any node: not marked failed either
    up = endpoints()
    s = extract(toy_graph, home, round=1, backend=backend(home, [up]), progress=False)
    assert (s.ok, s.skipped, s.skipped_failed) == (NODES, 0, 0)
    assert len(done_nodes(toy_graph)) == NODES


def test_pool_keeps_job_order_and_reports_non_transient_errors():
    calls = Counter()

    def job(i):
        def run(chat):
            calls[(chat, i)] += 1
            if i == 3:
                raise ValueError("bad request")  # not transient: ends the job at once, not retried
            return i * 10
        return run

    pool = EndpointPool([("http://a", "A"), ("http://b", "B")], per_endpoint=2, probe=lambda url: True)
    out = pool.run([job(i) for i in range(8)])
    assert [o for i, o in enumerate(out) if i != 3] == [i * 10 for i in range(8) if i != 3]
    assert isinstance(out[3], ValueError) and sum(v for (c, i), v in calls.items() if i == 3) == 1
    assert sum(calls.values()) == 8 and pool.moved == 0


# -- two real llama-cpp-python servers -------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _llama_server(model_path, port):
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1",
           "--model_alias", "served"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_up(url, proc, timeout=120.0):
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail("llama_cpp.server did not come up")


@pytest.mark.llm
def test_two_real_llama_servers_one_killed_mid_run(graph, settings, tmp_path, tiny_parsed):
    pytest.importorskip("llama_cpp.server")
    from kgplatform.agent.llm import resolve_model

    from .test_extract_llm import fresh

    g = fresh(graph, tiny_parsed)
    model = resolve_model("smollm2", tmp_path).path
    ports = [_free_port(), _free_port()]
    procs = [_llama_server(model, p) for p in ports]
    urls = [f"http://127.0.0.1:{p}/v1" for p in ports]
    try:
        for u, p in zip(urls, procs):
            _wait_up(u, p)
        home = settings.model_copy(update={"home": tmp_path / "home", "glossary": "movies",
                                           "llm_endpoint_model": "served",
                                           "llm_endpoint_method": "function_calling"})
        be = load_backend(home, endpoint=",".join(urls), parallel=1)
        be.pool.backoff = 0.1
        victim = be.pool.endpoints[1]

        def kill_after_first_answer():
            while victim.answered < 1:
                time.sleep(0.05)
            os.killpg(procs[1].pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_after_first_answer, daemon=True)
        killer.start()
        writes, original = counting_writes(g)
        try:
            s = extract(g, home, round=1, limit=6, items_only=True, backend=be, progress=False, use_cache=False)
        finally:
            g.write_rows = original
        killer.join(5)
        assert procs[1].poll() is not None  # it really died mid-run
        assert s.errors == 0 and s.ok + s.failed == 6
        assert len(writes) == 6 and set(writes.values()) == {1}  # none lost, none written twice
        assert victim.answered >= 1 and be.pool.endpoints[0].answered >= 1
        assert sum(e.answered for e in be.pool.endpoints) == s.llm_calls  # no answer thrown away or repeated
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def _extract_runs(graph) -> list[dict]:
    return [r["run"] for r in graph.read("runs/list_runs", dataset=TOY, model=None, kinds=["extract"], limit=10)]


def test_a_run_that_fails_or_is_interrupted_still_records_its_run_node(toy_graph, home, endpoints):
    # the backend down: the run aborts, and its Run node says so (it had done nothing)
    down = endpoints(fail=lambda n: 500)
    with pytest.raises(ExtractionError):
        extract(toy_graph, home, round=1, dataset=TOY, backend=backend(home, [down]), progress=False)
    [failed] = _extract_runs(toy_graph)
    assert failed["status"] == "failed" and "failed 5 times in a row" in failed["error"]
    assert (failed["ok"], failed["errors"]) == (0, 5)

    # Ctrl-C (or SIGTERM through the CLI) as the third node is about to be written: two nodes are done, and the
    # run's record says so, with its status
    original = toy_graph.write_rows
    writes = [0]

    def write_rows(name, rows, **kw):
        if name.startswith("agent/write_"):
            writes[0] += 1
            if writes[0] == 3:
                raise KeyboardInterrupt
        return original(name, rows, **kw)

    toy_graph.write_rows = write_rows
    try:
        with pytest.raises(KeyboardInterrupt):
            extract(toy_graph, home, round=1, dataset=TOY, backend=backend(home, [endpoints()]), progress=False)
    finally:
        toy_graph.write_rows = original
    runs = {r["status"]: r for r in _extract_runs(toy_graph)}
    assert set(runs) == {"failed", "interrupted"}
    assert runs["interrupted"]["ok"] == 2 and runs["interrupted"]["error"] == "KeyboardInterrupt"
    assert len(done_nodes(toy_graph)) == 2

    # the next run finishes the rest and is recorded as done
    s = extract(toy_graph, home, round=1, dataset=TOY, backend=backend(home, [endpoints()]), progress=False)
    assert (s.ok, s.skipped) == (NODES - 2, 2)
    runs = {r["status"]: r for r in _extract_runs(toy_graph)}
    assert set(runs) == {"failed", "interrupted", "done"} and runs["done"]["ok"] == NODES - 2
    assert runs["done"].get("error") is None


def test_sigterm_stops_kgp_extract_with_one_error_line_and_a_run_record(toy_graph, home, endpoints, neo4j_server,
                                                                         tmp_path):
    from ..test_crash import kgp_cmd, kgp_env, one_error

    slow = endpoints(delay=0.5)  # an answer every half second: the kill lands mid-run
    env = kgp_env(neo4j_server, tmp_path / "kgp-home", KGP_LLM_ENDPOINT_MODEL="served")
    proc = subprocess.Popen(kgp_cmd("extract", "--round", "1", "-d", TOY, "--endpoint", slow.url,
                                    "--model", "served", "--glossary", "none"),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not done_nodes(toy_graph):
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "no node done within 120 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    r = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert one_error(r, 143) == "Error: terminated (SIGTERM)"
    done = len(done_nodes(toy_graph))
    assert 1 <= done < NODES
    [run] = _extract_runs(toy_graph)
    assert run["status"] == "interrupted" and run["error"].startswith("Terminated")
    assert done - 1 <= run["ok"] <= done  # a signal between a node's commit and its count costs at most one
