"""Write an editable schema for your own TFRecords: `make schema ARGS="--input-base DIR --label NAME"`.

TFDV infers types, presence and string domains from statistics of the data. It leaves
integers without a domain, so this also looks at a sample: an integer column with few
distinct values becomes a category (`int_domain { is_categorical: true }`), which the
pipeline then one-hot encodes instead of scaling. The label is kept out of the SERVING
environment (clients do not send it), and float features refuse NaN and infinity. The
file is a starting point: read it, edit domains and roles, and point `schema_path` at it.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import logging
import os
import sys

LOG = logging.getLogger("pipeline.infer_schema")
SAMPLE_RECORDS = 20_000
MAX_CATEGORIES = 20


def infer(files: list[str], label: str = "", sample_records: int = SAMPLE_RECORDS):
    import tensorflow_data_validation as tfdv
    from tensorflow.core.example import example_pb2

    from components.example_gen import read_records
    from components.schema import disallow_nonfinite_floats

    stats = _statistics(files)
    schema = tfdv.infer_schema(stats, infer_feature_shape=True)

    distinct: dict[str, set] = {}
    seen = 0
    for path in files:
        for record in itertools.islice(read_records(path), sample_records - seen):
            seen += 1
            for name, feature in example_pb2.Example.FromString(record).features.feature.items():
                if feature.WhichOneof("kind") == "int64_list":
                    values = distinct.setdefault(name, set())
                    if len(values) <= MAX_CATEGORIES:
                        values.update(feature.int64_list.value)
        if seen >= sample_records:
            break
    by_name = {f.name: f for f in schema.feature}
    if label and label not in by_name:
        raise SystemExit(
            f"infer_schema: --label {label!r} is not a feature of the data (features: {', '.join(sorted(by_name))})"
        )
    for f in schema.feature:
        if f.type == 2 and not f.HasField("int_domain") and not f.HasField("bool_domain"):  # INT
            values = distinct.get(f.name, set())
            if values and len(values) <= MAX_CATEGORIES and min(values) >= 0:
                f.int_domain.min, f.int_domain.max = min(values), max(values)
                f.int_domain.is_categorical = True
    disallow_nonfinite_floats(schema)
    if label:
        by_name[label].not_in_environment.append("SERVING")
        del schema.default_environment[:]
        schema.default_environment.extend(["TRAINING", "SERVING"])
    return schema, seen


def _statistics(files: list[str]):
    """TFDV's statistics of every record, each file read with the compression its content
    shows (TFDV's own reader goes by the file name's suffix)."""
    import tempfile

    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from apache_beam.io.filesystem import CompressionTypes
    from tfx_bsl.public.tfxio import TFExampleBeamRecord

    from components.example_gen import detect_compression

    codec = {"GZIP": CompressionTypes.GZIP, "ZLIB": CompressionTypes.DEFLATE, "": CompressionTypes.UNCOMPRESSED}
    out = os.path.join(tempfile.mkdtemp(prefix="infer-schema-"), "stats.tfrecord")
    options = tfdv.StatsOptions()
    with beam.Pipeline(
        options=beam.options.pipeline_options.PipelineOptions(
            ["--runner=FnApiRunner", "--direct_running_mode=in_memory"]
        )
    ) as p:
        reads = [
            p | f"Read{i}" >> beam.io.ReadFromTFRecord(f, compression_type=codec[detect_compression(f)])
            for i, f in enumerate(files)
        ]
        _ = (
            reads
            | beam.Flatten()
            | TFExampleBeamRecord(physical_format="tfrecord").BeamSource(options.desired_batch_size)
            | tfdv.GenerateStatistics(options)
            | tfdv.WriteStatisticsToTFRecord(out)
        )
    return tfdv.load_statistics(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-base", required=True, help="directory of TFRecord files of tf.train.Example")
    parser.add_argument("--input-pattern", default="*", help="file pattern inside it (default: every file)")
    parser.add_argument("--label", default="", help="the feature to predict: kept out of SERVING")
    parser.add_argument("--output", required=True, help="where to write the schema (.pbtxt)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    files = sorted(f for f in glob.glob(os.path.join(args.input_base, args.input_pattern)) if os.path.isfile(f))
    if not files:
        print(f"input error: no files match {os.path.join(args.input_base, args.input_pattern)}", file=sys.stderr)
        return 2
    from google.protobuf import text_format

    schema, seen = infer(files, args.label)
    text = (
        f"# Inferred by `python -m pipeline.infer_schema` from {args.input_base} ({len(files)} files; "
        f"integer categories from the first {seen} records).\n# Edit domains and presence to taste; "
        f"see docs for feature roles.\n" + text_format.MessageToString(schema)
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    tmp = args.output + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, args.output)
    categorical = [f.name for f in schema.feature if f.HasField("int_domain") and f.int_domain.is_categorical]
    LOG.info(
        "wrote %s: %d features%s%s",
        args.output,
        len(schema.feature),
        f"; integer categories: {', '.join(categorical)}" if categorical else "",
        f"; label {args.label} not in SERVING" if args.label else "",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
