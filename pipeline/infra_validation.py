"""The InfraValidator of a configuration: which server, which requests, how long to wait.

Graph-time only: it turns config fields into the component's specs, so that the component
and its executor (components/infra_validator.py) know nothing of the configuration.
"""

from tfx.proto import infra_validator_pb2

from components.infra_validator import SIGNATURES, InfraValidator
from pipeline.config import PipelineConfig, split_image


def serving_spec(cfg: PipelineConfig) -> infra_validator_pb2.ServingSpec:
    image, tag, digest = split_image(cfg.tf_serving_image)
    spec = infra_validator_pb2.ServingSpec(
        tensorflow_serving=infra_validator_pb2.TensorFlowServing(
            image_name=image, tags=[tag] if tag else [], digests=[digest] if digest else []
        ),
        model_name=cfg.model_name,
    )
    if cfg.infra_validator_runner == "local_docker":
        spec.local_docker.SetInParent()
    elif cfg.infra_validator_runner == "kubernetes":
        spec.kubernetes.SetInParent()
    return spec  # "local": no platform, i.e. the loopback runner


def request_spec(cfg: PipelineConfig, signatures=SIGNATURES) -> infra_validator_pb2.RequestSpec:
    """`infra_validation_examples` eval examples per signature; the requests are also written
    as the model's warm-up file (make_warmup)."""
    return infra_validator_pb2.RequestSpec(
        tensorflow_serving=infra_validator_pb2.TensorFlowServingRequestSpec(signature_names=list(signatures)),
        split_name="eval",
        num_examples=cfg.infra_validation_examples,
        make_warmup=True,
    )


def validation_spec(cfg: PipelineConfig) -> infra_validator_pb2.ValidationSpec:
    return infra_validator_pb2.ValidationSpec(
        max_loading_time_seconds=cfg.infra_validation_timeout_s, num_tries=cfg.infra_validation_tries
    )


def make_infra_validator(cfg: PipelineConfig, model, examples, signatures=SIGNATURES) -> InfraValidator:
    return InfraValidator(
        model=model,
        examples=examples,
        serving_spec=serving_spec(cfg),
        request_spec=request_spec(cfg, signatures),
        validation_spec=validation_spec(cfg),
    ).with_id("InfraValidator")
