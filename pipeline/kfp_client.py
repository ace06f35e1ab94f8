"""Submitting and scheduling the compiled pipeline on a Kubeflow Pipelines endpoint.

Credentials come from the environment only (`KFP_TOKEN`, a bearer token; or kfp's own
`KF_PIPELINES_*` settings) and never reach the spec, the logs or an error message. Every
failure to talk to the endpoint becomes one `EndpointError` line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from pipeline.kubeflow import SpecError, pipeline_root, pipeline_spec_document

LOG = logging.getLogger(__name__)
TOKEN_ENV = "KFP_TOKEN"


class EndpointError(RuntimeError):
    """The endpoint could not be reached or refused the request."""


@dataclass
class Created:
    kind: str  # "run" or "recurring run"
    id: str
    pipeline_id: str
    version_id: str
    experiment_id: str
    endpoint: str

    def __str__(self) -> str:
        return (
            f"created {self.kind} {self.id} (pipeline {self.pipeline_id}, version {self.version_id}, "
            f"experiment {self.experiment_id}); see {self.endpoint.rstrip('/')}/#/runs"
        )


def check_cron(cron: str) -> str:
    fields = cron.split()
    if len(fields) == 5:
        raise SpecError(f"cron {cron!r}: KFP's cron has six fields, seconds first, e.g. '0 {cron}'")
    if len(fields) != 6:
        raise SpecError(f"cron {cron!r}: expected six fields (sec min hour day month weekday)")
    return cron


class KfpEndpoint:
    def __init__(self, host: str, namespace: str | None = None, token: str | None = None):
        import kfp

        self.host = host
        self.namespace = namespace
        self._secret = token if token is not None else os.environ.get(TOKEN_ENV)
        self._probe()
        try:
            self._client = kfp.Client(host=host, existing_token=self._secret, namespace=namespace or "kubeflow")
        except Exception as e:  # kfp raises bare exceptions for bad hosts and configs
            raise EndpointError(self._describe(e)) from None

    def _probe(self) -> None:
        """One quick health check first: kfp.Client's own retries it five times with
        sleeps and logs a traceback for each."""
        url = self.host.rstrip("/") + "/apis/v2beta1/healthz"
        headers = {"Authorization": f"Bearer {self._secret}"} if self._secret else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=15):
                pass
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise EndpointError(self._describe(e)) from None
            if e.code != 404:  # some gateways do not route healthz; the real calls will tell
                raise EndpointError(self._describe(e)) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise EndpointError(self._describe(ConnectionError(str(e)))) from None

    def _describe(self, error: Exception) -> str:
        status = getattr(error, "status", None) or getattr(error, "code", None)
        if status in (401, 403):
            text = (
                f"{self.host}: authentication failed (HTTP {status}); "
                f"set {TOKEN_ENV} to a valid token for this endpoint"
            )
        elif status:
            reason = getattr(error, "reason", "") or ""
            body = getattr(error, "body", "") or ""
            if isinstance(body, bytes):
                body = body.decode(errors="replace")
            text = f"{self.host}: HTTP {status} {reason} {body[:200]}".strip()
        elif "Max retries" in str(error) or "Connection" in type(error).__name__ or isinstance(error, OSError):
            text = f"cannot reach KFP endpoint {self.host} (is the URL right and the port-forward up?)"
        else:
            text = f"{self.host}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        if self._secret:
            text = text.replace(self._secret, "***")
        return " ".join(text.split())

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            raise EndpointError(f"{what}: {self._describe(e)}") from None

    def _experiment_id(self, name: str) -> str:
        try:
            return self._client.get_experiment(experiment_name=name, namespace=self.namespace).experiment_id
        except ValueError:  # kfp: "No experiment is found with name ..."
            pass
        except Exception as e:
            raise EndpointError(f"finding experiment {name!r}: {self._describe(e)}") from None
        created = self._call(
            f"creating experiment {name!r}", self._client.create_experiment, name, namespace=self.namespace
        )
        return created.experiment_id

    def _pipeline_version(self, document: dict, name: str | None) -> tuple[str, str]:
        """Upload the pipeline, or a new version of it; reuse a version with the same content."""
        name = name or document["pipelineInfo"]["name"]
        content = json.dumps(document, sort_keys=True)
        version_name = f"{name}-{hashlib.sha256(content.encode()).hexdigest()[:12]}"
        with tempfile.TemporaryDirectory() as tmp:
            package = os.path.join(tmp, f"{name}.yaml")  # JSON is YAML; KFP wants .yaml
            with open(package, "w") as f:
                f.write(content)
            pipeline_id = self._call("looking up the pipeline", self._client.get_pipeline_id, name)
            if pipeline_id is None:
                pipeline = self._call(
                    f"uploading pipeline {name!r}",
                    self._client.upload_pipeline,
                    package,
                    pipeline_name=name,
                    namespace=self.namespace,
                )
                pipeline_id = pipeline.pipeline_id
            existing = self._find_version(pipeline_id, version_name)
            if existing:
                LOG.info("pipeline %s: version %s already uploaded, reusing it", name, version_name)
                return pipeline_id, existing
            version = self._call(
                f"uploading version {version_name!r}",
                self._client.upload_pipeline_version,
                package,
                version_name,
                pipeline_id=pipeline_id,
            )
            LOG.info("pipeline %s: uploaded version %s", name, version_name)
            return pipeline_id, version.pipeline_version_id

    def _find_version(self, pipeline_id: str, version_name: str) -> str | None:
        listing = self._call(
            "listing pipeline versions", self._client.list_pipeline_versions, pipeline_id, page_size=100
        )
        for v in listing.pipeline_versions or []:
            if v.display_name == version_name:
                return v.pipeline_version_id
        return None

    def submit(
        self,
        spec_path: str,
        experiment: str,
        params: dict[str, str],
        pipeline_name: str | None = None,
        run_name: str | None = None,
    ) -> Created:
        document, root = pipeline_spec_document(spec_path), pipeline_root(spec_path)
        pipeline_id, version_id = self._pipeline_version(document, pipeline_name)
        experiment_id = self._experiment_id(experiment)
        # The uploaded pipeline spec carries no root: without one in the run's runtime config
        # the backend writes to its default MinIO root (driver/root_dag.go:108-113).
        run = self._call(
            "creating the run",
            self._client.run_pipeline,
            experiment_id=experiment_id,
            job_name=run_name or _default_name(document),
            params=params,
            pipeline_id=pipeline_id,
            version_id=version_id,
            pipeline_root=root,
        )
        return Created("run", run.run_id, pipeline_id, version_id, experiment_id, self.host)

    def schedule(
        self,
        spec_path: str,
        experiment: str,
        params: dict[str, str],
        cron: str,
        max_concurrency: int = 1,
        catchup: bool = False,
        pipeline_name: str | None = None,
        run_name: str | None = None,
    ) -> Created:
        check_cron(cron)
        if max_concurrency < 1:
            raise SpecError("max concurrency must be >= 1")
        document, root = pipeline_spec_document(spec_path), pipeline_root(spec_path)
        pipeline_id, version_id = self._pipeline_version(document, pipeline_name)
        experiment_id = self._experiment_id(experiment)
        recurring = self._call(
            "creating the recurring run",
            self._client.create_recurring_run,
            experiment_id=experiment_id,
            job_name=run_name or _default_name(document, "daily"),
            cron_expression=cron,
            max_concurrency=max_concurrency,
            no_catchup=not catchup,
            params=params,
            pipeline_id=pipeline_id,
            version_id=version_id,
            pipeline_root=root,
        )
        return Created("recurring run", recurring.recurring_run_id, pipeline_id, version_id, experiment_id, self.host)


def _default_name(document: dict, suffix: str | None = None) -> str:
    name = document["pipelineInfo"]["name"]
    return f"{name}-{suffix}" if suffix else f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
