# The pipeline image: every Kubeflow task runs in it (kfp_runner.py compile sets `image`).
#   docker build -t REGISTRY/taxi-tfx-pipeline:TAG .
# TFX's own image as the base, then exactly the pins of requirements.lock (the file setup.py
# and the local runtime read too; tests/test_dockerfile.py checks that they agree).
#
# It is also the SDK worker container of the Beam components on Dataflow (custom container,
# `--sdk_container_image`) and for DOCKER / EXTERNAL workers on Flink or Spark: workers start
# through Beam's boot program, /opt/apache/beam/boot (docs/scale-out.md). TFX 1.21's image
# names it as its ENTRYPOINT but deletes /opt/apache/beam while installing (tfx v1.21.0,
# tfx/tools/docker/Dockerfile), so it is copied back from the Beam SDK image of the Beam
# version and Python version installed below (requirements.lock's apache-beam for the
# image's Python 3.10; tests/test_dockerfile.py checks both).
ARG TFX_VERSION=1.21.0
ARG BEAM_VERSION=2.75.0
ARG BEAM_PYTHON=3.10
FROM apache/beam_python${BEAM_PYTHON}_sdk:${BEAM_VERSION} AS beam_sdk

FROM gcr.io/tfx-oss-public/tfx:${TFX_VERSION}
ARG TFX_VERSION
ARG BEAM_VERSION
ARG BEAM_PYTHON

# Compiled specs point relative paths (the schema) here: config `image_workdir`.
WORKDIR /pipeline

COPY requirements.lock ./
RUN python -m pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock

COPY pyproject.toml setup.py README.md ./
COPY pipeline/ pipeline/
COPY modeling/ modeling/
COPY metrics/ metrics/
COPY components/ components/
COPY reporting/ reporting/
COPY serving/ serving/
COPY schemas/ schemas/
COPY data/ data/
COPY configs/ configs/
COPY local_runner.py kfp_runner.py ./
# Every compiled task runs `python -m pipeline.kfp_entrypoint`: TFX's entrypoint adapted to
# open-source KFP's driver and launcher (see that module).
RUN python -m pip install --no-cache-dir --no-deps . \
 && python -c "import sys, tfx, apache_beam, modeling.trainer, modeling.preprocessing, pipeline.dag, pipeline.kfp_entrypoint; \
assert tfx.__version__ == '${TFX_VERSION}', tfx.__version__; \
assert apache_beam.__version__ == '${BEAM_VERSION}', apache_beam.__version__; \
assert '%d.%d' % sys.version_info[:2] == '${BEAM_PYTHON}', sys.version"

# Beam's SDK worker entrypoint. Kubeflow tasks name their own command, so it only starts
# Beam workers (Dataflow, or a Flink/Spark DOCKER environment running this image).
COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam
ENTRYPOINT ["/opt/apache/beam/boot"]

ENV PYTHONPATH=/pipeline
# Keras 2, as tf.Transform needs (pipeline/__init__.py says why)
ENV TF_USE_LEGACY_KERAS=1
