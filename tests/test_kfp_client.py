"""`kfp_runner.py submit` / `schedule` up to the HTTP boundary.

No cluster is reachable here, so a small HTTP server on loopback plays KFP's REST API
(v2beta1) and records what kfp's own client sends: these tests check the requests we build
and the errors we print, not KFP's server.
"""

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import kfp_runner

pytestmark = pytest.mark.integration  # kfp.Client against a loopback HTTP server

TOKEN = "s3cr3t-token-value"
SPEC = {
    "pipelineSpec": {
        "pipelineInfo": {"name": "taxi-tips"},
        "root": {
            "inputDefinitions": {
                "parameters": {
                    "input_base": {"parameterType": "STRING", "defaultValue": "gs://b/data"},
                    "train_args": {"parameterType": "STRING", "defaultValue": '{"num_steps": 1000}'},
                }
            }
        },
        "schemaVersion": "2.1.0",
    },
    "runtimeConfig": {"gcsOutputDirectory": "gs://b/root"},
}


class FakeKfp:
    """KFP's API as far as kfp.Client uses it; `status` forces an error answer."""

    def __init__(self):
        self.requests = []
        self.status = None
        self.pipelines = {}  # name -> id
        self.versions = {}  # pipeline id -> [(name, id)]
        self.experiments = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                fake.handle(self, "GET", b"")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.handle(self, "POST", body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, h, method, body):
        path, _, query = h.path.partition("?")
        self.requests.append(
            {"method": method, "path": path, "query": query, "body": body, "auth": h.headers.get("Authorization")}
        )
        if self.status:
            return h._reply(self.status, {"error": "denied", "code": 16, "message": "denied"})
        p = "/apis/v2beta1"
        if method == "GET" and path == f"{p}/healthz":
            return h._reply(200, {"multi_user": False})
        if method == "GET" and path == f"{p}/pipelines":
            name = re.search(r"taxi-tips[^%\"&]*", requests_unquote(query))
            found = [
                {"pipeline_id": i, "display_name": n} for n, i in self.pipelines.items() if name and n == name.group(0)
            ]
            return h._reply(200, {"pipelines": found, "total_size": len(found)})
        if method == "POST" and path == f"{p}/pipelines/upload":
            pid = f"pipeline-{len(self.pipelines) + 1}"
            self.pipelines["taxi-tips"] = pid
            self.versions[pid] = [("taxi-tips", f"{pid}-default")]
            return h._reply(200, {"pipeline_id": pid, "display_name": "taxi-tips"})
        m = re.fullmatch(rf"{p}/pipelines/([^/]+)/versions", path)
        if method == "GET" and m:
            vs = [{"pipeline_version_id": i, "display_name": n} for n, i in self.versions.get(m.group(1), [])]
            return h._reply(200, {"pipeline_versions": vs, "total_size": len(vs)})
        if method == "POST" and path == f"{p}/pipelines/upload_version":
            pid = re.search(r"pipelineid=([^&]+)", query).group(1)
            name = re.search(r"name=([^&]+)", query).group(1)
            vid = f"{pid}-v{len(self.versions[pid]) + 1}"
            self.versions[pid].append((requests_unquote(name), vid))
            return h._reply(200, {"pipeline_id": pid, "pipeline_version_id": vid, "display_name": name})
        if method == "GET" and path == f"{p}/experiments":
            found = [
                {"experiment_id": i, "display_name": n}
                for n, i in self.experiments.items()
                if n in requests_unquote(query)
            ]
            return h._reply(200, {"experiments": found, "total_size": len(found)})
        if method == "POST" and path == f"{p}/experiments":
            name = json.loads(body)["display_name"]
            self.experiments[name] = f"exp-{len(self.experiments) + 1}"
            return h._reply(200, {"experiment_id": self.experiments[name], "display_name": name})
        if method == "POST" and path == f"{p}/runs":
            return h._reply(200, {"run_id": "run-1", **json.loads(body)})
        if method == "POST" and path == f"{p}/recurringruns":
            return h._reply(200, {"recurring_run_id": "rr-1", **json.loads(body)})
        return h._reply(404, {"error": f"no route {method} {path}"})

    def posted(self, suffix):
        return [json.loads(r["body"]) for r in self.requests if r["method"] == "POST" and r["path"].endswith(suffix)]


def requests_unquote(text):
    from urllib.parse import unquote_plus

    return unquote_plus(text)


@pytest.fixture
def api(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no kfp context file of the host
    monkeypatch.setenv("KFP_TOKEN", TOKEN)
    fake = FakeKfp()
    yield fake
    fake.server.shutdown()


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(SPEC))
    return str(path)


def test_submit_uploads_pipeline_creates_experiment_and_run_with_parameters(api, spec, capsys, caplog):
    code = kfp_runner.main(
        [
            "submit",
            "--spec",
            spec,
            "--endpoint",
            api.url,
            "--experiment",
            "nightly",
            "--param",
            "input_base=gs://b/other",
            "--train-steps",
            "50",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in api.requests)
    assert api.experiments == {"nightly": "exp-1"}
    (run,) = api.posted("/runs")
    assert run["experiment_id"] == "exp-1"
    assert run["pipeline_version_reference"]["pipeline_id"] == "pipeline-1"
    assert run["pipeline_version_reference"]["pipeline_version_id"] == "pipeline-1-v2"
    assert run["runtime_config"]["parameters"] == {"input_base": "gs://b/other", "train_args": '{"num_steps": 50}'}
    # The uploaded spec has no root: without this the backend would use its default MinIO root.
    assert run["runtime_config"]["pipeline_root"] == "gs://b/root"
    upload = next(r for r in api.requests if r["path"].endswith("/pipelines/upload"))
    assert b'"schemaVersion": "2.1.0"' in upload["body"] and b"gcsOutputDirectory" not in upload["body"]
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err + caplog.text


def test_second_submit_of_the_same_spec_reuses_pipeline_and_version(api, spec):
    assert kfp_runner.main(["submit", "--spec", spec, "--endpoint", api.url]) == 0
    assert kfp_runner.main(["submit", "--spec", spec, "--endpoint", api.url]) == 0
    assert len([r for r in api.requests if "upload" in r["path"]]) == 2  # pipeline, then one version
    first, second = api.posted("/runs")
    assert first["pipeline_version_reference"] == second["pipeline_version_reference"]


def test_schedule_creates_a_cron_recurring_run_without_catchup(api, spec):
    code = kfp_runner.main(
        ["schedule", "--spec", spec, "--endpoint", api.url, "--cron", "0 0 3 * * *", "--max-concurrency", "2"]
    )
    assert code == 0
    (rr,) = api.posted("/recurringruns")
    assert rr["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert int(rr["max_concurrency"]) == 2
    assert rr["no_catchup"] is True
    assert rr["mode"] == "ENABLE"
    assert rr["runtime_config"]["parameters"] == {}
    assert rr["runtime_config"]["pipeline_root"] == "gs://b/root"


def test_a_root_the_launcher_would_refuse_is_refused_before_any_request(api, tmp_path, capsys):
    path = tmp_path / "local-root.json"
    path.write_text(json.dumps({**SPEC, "runtimeConfig": {"gcsOutputDirectory": "/srv/root"}}))
    for command in (["submit"], ["schedule", "--cron", "0 0 3 * * *"]):
        assert kfp_runner.main(command + ["--spec", str(path), "--endpoint", api.url]) == 2
        assert "KFP's launcher accepts only a bucket URI" in capsys.readouterr().err
    assert api.requests == []


def test_five_field_cron_is_refused_before_any_request(api, spec, capsys):
    assert kfp_runner.main(["schedule", "--spec", spec, "--endpoint", api.url, "--cron", "0 3 * * *"]) == 2
    assert "six fields" in capsys.readouterr().err
    assert api.requests == []


def test_failed_auth_is_one_clear_line_without_the_token(api, spec, capsys):
    api.status = 401
    assert kfp_runner.main(["submit", "--spec", spec, "--endpoint", api.url]) == 1
    err = capsys.readouterr().err
    assert "authentication failed (HTTP 401)" in err and "KFP_TOKEN" in err
    assert TOKEN not in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unreachable_endpoint_is_one_clear_line(spec, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens
    assert kfp_runner.main(["submit", "--spec", spec, "--endpoint", f"http://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach KFP endpoint" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_endpoint_and_unknown_spec_are_usage_errors(spec, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("KFP_ENDPOINT", raising=False)
    assert kfp_runner.main(["submit", "--spec", spec]) == 2
    assert "KFP_ENDPOINT" in capsys.readouterr().err
    assert kfp_runner.main(["submit", "--spec", str(tmp_path / "nope.json"), "--endpoint", "http://x"]) == 2
    assert "run `python kfp_runner.py compile` first" in capsys.readouterr().err
