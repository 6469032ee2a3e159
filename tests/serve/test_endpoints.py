"""Each endpoint answers exactly what the CLI's ``--json`` prints for the same input (the CLI is the reference).

The server and the CLI load the model each on their own (fp32), the CLI in-process through ``main``.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from starlette.testclient import TestClient

from glassformer.cli import main
from glassformer.serve.app import create_app
from glassformer.serve.endpoints import load_endpoint

TEXTS = ["the movie was great", "not good at all, a bad plot", "loved it"]


def client_for(model) -> TestClient:
    return TestClient(create_app(load_endpoint(model, precision="fp32")))


def cli_json(capsys, *argv: str):
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_predict_equals_cli_predict_json(sentiment_model, capsys):
    expected = cli_json(capsys, "predict", str(sentiment_model), "--precision", "fp32", "--json", *TEXTS)
    with client_for(sentiment_model) as client:
        assert client.post("/predict", json={"texts": TEXTS}).json() == expected
        [alone] = client.post("/predict", json={"text": TEXTS[1]}).json()
        assert alone == {**expected[1], "score": pytest.approx(expected[1]["score"], abs=1e-6)}
        assert client.get("/health").json()["family"] == "text-classification"


def test_translate_equals_cli_translate_json(translate_model, capsys):
    expected = cli_json(capsys, "translate", str(translate_model), "--precision", "fp32", "--beam", "2", "--json",
                        *TEXTS)
    with client_for(translate_model) as client:
        assert client.post("/translate", json={"texts": TEXTS, "beam": 2}).json() == expected


def test_classify_image_equals_cli_classify_image_json(vit_model, tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    files = []
    for index, size in enumerate([(28, 28), (40, 31)]):
        path = tmp_path / f"picture{index}.png"
        Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8)).save(path)
        files.append(path)
    expected = cli_json(capsys, "classify-image", str(vit_model), "--precision", "fp32", "--json", *map(str, files))
    images = [{"file": str(path), "data": base64.b64encode(path.read_bytes()).decode()} for path in files]
    with client_for(vit_model) as client:
        assert client.post("/classify-image", json={"images": images}).json() == expected
        [unnamed] = client.post("/classify-image", json={"image": images[0]["data"]}).json()
        # Alone, the image runs in a batch of one: the same numbers up to float rounding.
        assert unnamed == {**expected[0], "file": None, "score": pytest.approx(expected[0]["score"], abs=1e-6)}
        assert client.post("/classify-image", json={"image": "bm90IGFuIGltYWdl"}).status_code == 422  # "not an image"


def test_embed_equals_cli_embed_json(encoder_model, capsys):
    expected = cli_json(capsys, "embed", "--model", str(encoder_model), "--precision", "fp32", "--json", *TEXTS)
    with client_for(encoder_model) as client:
        assert client.post("/embed", json={"texts": TEXTS}).json() == expected


def sse_events(text: str) -> list[tuple[str, dict]]:
    """(event, data) pairs of a server-sent event stream."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


@pytest.mark.parametrize("sampling", [["--temperature", "0"], ["--seed", "7", "--top-k", "5"]])
def test_generate_equals_cli_generate_and_streams_the_same_tokens(lm_model, capsys, sampling):
    """The CLI prints the prompt, the continuation and a newline: the reference for both answers."""
    prompt = "the mo"
    capsys.readouterr()
    assert main(["generate", str(lm_model), "--precision", "fp32", "--prompt", prompt, "--max-new-tokens", "25",
                 *sampling]) == 0
    printed = capsys.readouterr().out
    body = {"text": prompt, "max_new_tokens": 25}
    body.update({flag.strip("-").replace("-", "_"): (float if flag == "--temperature" else int)(value)
                 for flag, value in zip(sampling[::2], sampling[1::2])})
    with client_for(lm_model) as client:
        answer = client.post("/generate", json=body).json()
        assert printed == prompt + answer[0]["text"] + "\n" and answer[0]["prompt"] == prompt
        streamed = client.post("/generate", json={**body, "stream": True})
        assert streamed.headers["content-type"].startswith("text/event-stream")
        events = sse_events(streamed.text)
    assert [kind for kind, _ in events][-1] == "done" and events[-1][1] == answer[0]
    assert "".join(data["text"] for kind, data in events if kind == "token") == answer[0]["text"]


def test_openapi_describes_the_served_route(sentiment_model):
    with client_for(sentiment_model) as client:
        document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {"/predict", "/health", "/openapi.json"}
    schema = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {"text", "texts", "special_tokens"}
    assert {"413", "422", "503", "504"} <= set(document["paths"]["/predict"]["post"]["responses"])


def test_a_model_without_a_servable_family_is_refused():
    from glassformer.serve.endpoints import endpoint_for

    with pytest.raises(ValueError, match="cannot serve a dict"):
        endpoint_for({})
