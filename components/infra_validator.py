"""InfraValidator: TFX's own component, client, retries and blessing, with a choice of server.

TFX's executor can start TF Serving only as a Docker container (`local_docker`) or a
Kubernetes pod (`kubernetes`); a host without either could not infra-validate at all. This
executor keeps everything of TFX's (request building from eval examples, its
TensorFlowServingClient over real gRPC, GetModelStatus polling, num_tries, INFRA_BLESSED
and the warm-up model written into the blessing) and adds one runner: when the ServingSpec
names no serving platform, the model server is `python -m serving` in a child process on
127.0.0.1, which loads the model from a TF Serving model base path by TF Serving's rules
and answers its gRPC API. With a platform set, the stock runners run unchanged.
"""

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Optional

from tfx import types
from tfx.components.infra_validator import error_types
from tfx.components.infra_validator import executor as tfx_executor
from tfx.components.infra_validator.model_server_runners import base_runner
from tfx.dsl.components.base import base_component, base_driver, executor_spec
from tfx.proto import infra_validator_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils.model_paths import tf_serving_flavor

from serving.signatures import check_exported_signatures

LOG = logging.getLogger(__name__)
# Shown on the console by the local runner (it shows the "pipeline" loggers).
PROGRESS = logging.getLogger("pipeline.infra_validator")
PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The signatures a client calls by default: predictions, and TF Serving's Classify one.
SIGNATURES = ("serving_default", "classification")
_POLLING_INTERVAL_SEC = 1
KUBERNETES_ENV = ("KFP_POD_NAME", "KFP_NAMESPACE", "KUBERNETES_SERVICE_HOST")


class LoopbackServingRunner(base_runner.BaseModelServerRunner):
    """Starts `python -m serving serve` on 127.0.0.1 for a TF-Serving-flavoured model path.

    A separate process, like the container the stock runners start: a model that crashes
    TensorFlow takes down the server, not the pipeline, and its log is the server's log.
    """

    def __init__(self, model_path: str, serving_spec: infra_validator_pb2.ServingSpec):
        base, name, _ = tf_serving_flavor.parse_model_path(model_path, expected_model_name=serving_spec.model_name)
        self._model_base_path = os.path.join(base, name)  # TF Serving's --model_base_path
        self._model_name = name
        self._workdir: Optional[str] = None
        self._process: Optional[subprocess.Popen] = None
        self._endpoint: Optional[str] = None

    def __repr__(self) -> str:
        return f"LoopbackServingRunner(model_name={self._model_name!r}, model_base_path={self._model_base_path!r})"

    def Start(self) -> None:
        assert self._process is None, "Start() may be called once"
        self._workdir = tempfile.mkdtemp(prefix="infra-validation-")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PROJECT_DIR, os.environ.get("PYTHONPATH")])))
        with open(self._log_path, "wb") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "serving",
                    "serve",
                    "--model-name",
                    self._model_name,
                    "--model-base-path",
                    self._model_base_path,
                    "--host",
                    "127.0.0.1",
                    "--grpc-port",
                    "0",
                    "--rest-port",
                    "-1",
                    "--port-file",
                    self._port_path,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=PROJECT_DIR,
                env=env,
                start_new_session=True,
            )
        LOG.info("started model server pid %d: %r", self._process.pid, self)

    @property
    def _log_path(self) -> str:
        return os.path.join(self._workdir, "server.log")

    @property
    def _port_path(self) -> str:
        return os.path.join(self._workdir, "ports")

    def WaitUntilRunning(self, deadline: float) -> None:
        while time.time() < deadline:
            if self._process.poll() is not None:
                raise error_types.JobAborted(f"model server exited with code {self._process.returncode}")
            if os.path.exists(self._port_path):
                with open(self._port_path) as f:
                    ports = dict(item.split("=") for item in f.read().split())
                self._endpoint = f"127.0.0.1:{ports['grpc']}"
                return
            time.sleep(0.1)
        raise error_types.DeadlineExceeded("model server did not start listening before the deadline")

    def GetEndpoint(self) -> str:
        assert self._endpoint, "the model server is not running"
        return self._endpoint

    def Stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                LOG.warning("model server pid %d ignored SIGTERM; killing it", self._process.pid)
                self._process.kill()
                self._process.wait()
        if self._workdir:
            LOG.info("model server log:\n%s", self.GetLogs() or "(empty)")
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def GetLogs(self) -> Optional[str]:
        if not self._workdir or not os.path.exists(self._log_path):
            return None
        with open(self._log_path, errors="replace") as f:
            return f.read()[-20000:]


class Executor(tfx_executor.Executor):
    """TFX's InfraValidator executor; a ServingSpec without a platform uses the loopback runner."""

    def Do(self, input_dict, output_dict, exec_properties):
        check_platform(exec_properties)
        started = time.monotonic()
        self._sent = Counter()
        super().Do(input_dict, output_dict, exec_properties)
        blessing = artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY])
        sent = ", ".join(f"{n} {kind}" for kind, n in sorted(self._sent.items())) or "no requests"
        if blessing.get_int_custom_property("blessed"):
            PROGRESS.info(
                "InfraValidator: model loaded and answered TF Serving requests (%s) in %.1f s: infra-blessed",
                sent,
                time.monotonic() - started,
            )
        else:
            PROGRESS.info(
                "InfraValidator: model NOT infra-blessed (failed to load or to answer; server log in the run log)"
            )

    def _ValidateOnce(self, model_path, serving_binary, serving_spec, validation_spec, requests):
        self._sent = Counter(type(r).__name__.replace("Request", "") for r in requests)
        # What TF Serving's Predict/Classify/Regress would refuse fails the try (and so the
        # blessing), whichever server runs: TFX sends Predict requests only.
        check_exported_signatures(model_path)
        if serving_spec.WhichOneof("serving_platform"):
            return super()._ValidateOnce(
                model_path=model_path,
                serving_binary=serving_binary,
                serving_spec=serving_spec,
                validation_spec=validation_spec,
                requests=requests,
            )
        # The same steps as TFX's _ValidateOnce, with the loopback runner.
        deadline = time.time() + validation_spec.max_loading_time_seconds
        runner = LoopbackServingRunner(model_path, serving_spec)
        try:
            runner.Start()
            runner.WaitUntilRunning(deadline)
            client = serving_binary.MakeClient(runner.GetEndpoint())  # TFX's TensorFlowServingClient
            client.WaitUntilModelLoaded(deadline, polling_interval_sec=_POLLING_INTERVAL_SEC)
            if requests:
                client.SendRequests(requests)
        except Exception:
            LOG.exception("infra validation failed (the model server's log follows)")
            raise
        finally:
            runner.Stop()


def check_platform(exec_properties) -> None:
    """Fail the task when the configured runner cannot start a model server here at all.

    TFX's executor counts any error of a try as a failed validation and ends with the model
    not blessed (tfx/components/infra_validator/executor.py:344-371): a KubernetesRunner that
    cannot find its pod (tfx/utils/kube_utils.py:236-259; it raises in its constructor,
    model_server_runners/kubernetes_runner.py:131-139) would block every push while the run
    succeeds. That is a broken environment, not a bad model.
    """
    from tfx.utils import proto_utils

    spec = proto_utils.json_to_proto(
        exec_properties[standard_component_specs.SERVING_SPEC_KEY], infra_validator_pb2.ServingSpec()
    )
    if spec.WhichOneof("serving_platform") != "kubernetes":
        return
    # KUBERNETES_SERVICE_HOST: what the in-cluster config TFX loads first requires.
    missing = [name for name in KUBERNETES_ENV if not os.environ.get(name)]
    if missing:
        raise RuntimeError(
            "infra_validator_runner 'kubernetes' starts TF Serving as a pod beside this task: it needs a "
            f"KFP pod, with {', '.join(KUBERNETES_ENV)} set; missing here: {', '.join(missing)}. Run the "
            'task through pipeline.kfp_entrypoint (it sets KFP_NAMESPACE), or set infra_validator_runner = "local"'
        )


class InfraValidator(base_component.BaseComponent):
    """TFX's InfraValidator (its spec, inputs, outputs and driver) with the executor above.

    Deliberately not a subclass of `tfx.components.InfraValidator`: TFX 1.21's Kubeflow V2
    compiler refuses that class by type ("component type ... is not supported"), because
    the stock executor cannot start a model server from a Vertex/KFP v2 task. This one can
    ("local": a loopback server inside the task's own container), so it compiles as an
    ordinary container task.
    """

    SPEC_CLASS = standard_component_specs.InfraValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
    DRIVER_CLASS = base_driver.BaseDriver

    def __init__(
        self,
        model,
        serving_spec: infra_validator_pb2.ServingSpec,
        examples=None,
        request_spec: Optional[infra_validator_pb2.RequestSpec] = None,
        validation_spec: Optional[infra_validator_pb2.ValidationSpec] = None,
    ):
        super().__init__(
            spec=standard_component_specs.InfraValidatorSpec(
                model=model,
                examples=examples,
                blessing=types.Channel(type=standard_artifacts.InfraBlessing),
                serving_spec=serving_spec,
                validation_spec=validation_spec,
                request_spec=request_spec,
            )
        )
