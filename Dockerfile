# The pipeline image: every Kubeflow task runs in it (kfp_runner.py compile sets `image`).
#   docker build -t REGISTRY/taxi-tfx-pipeline:TAG .
# TFX's own image as the base, then exactly the pins of requirements.lock (the file setup.py
# and the local runtime read too; tests/test_dockerfile.py checks that they agree).
ARG TFX_VERSION=1.21.0
FROM gcr.io/tfx-oss-public/tfx:${TFX_VERSION}
ARG TFX_VERSION

# Compiled specs point relative paths (the schema) here: config `image_workdir`.
WORKDIR /pipeline

COPY requirements.lock ./
RUN python -m pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock

COPY setup.py ./
COPY pipeline/ pipeline/
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
 && python -c "import tfx, components.trainer, components.preprocessing, pipeline.dag, pipeline.kfp_entrypoint; \
assert tfx.__version__ == '${TFX_VERSION}', tfx.__version__"

ENV PYTHONPATH=/pipeline
