"""The project's ImportExampleGen executor against TFX's own, on the same data and config."""

from __future__ import annotations

import glob
import os

import pytest
import tensorflow as tf
from tfx.components.example_gen.import_example_gen import executor as tfx_import_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components import example_gen
from tests.taxi_sample import DATA_DIR, read_examples, write_examples


@pytest.fixture(scope="module")
def records():
    return read_examples(str(DATA_DIR / "*.tfrecord.gz"), limit=600)


def write_plain(records, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as w:
        for r in records:
            w.write(r)


def write_zlib(records, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(str(path), tf.io.TFRecordOptions(compression_type="ZLIB")) as w:
        for r in records:
            w.write(r)


def run_executor(executor_class, input_base, out_dir, split_ratio=None, split_patterns=None, beam_args=None):
    """Runs an ImportExampleGen executor as TFX's launcher would; returns the Examples artifact."""
    if split_patterns:
        input_config = example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name=n, pattern=p) for n, p in split_patterns.items()]
        )
        output_config = example_gen_pb2.Output()
    else:
        input_config = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="single_split", pattern="*")])
        output_config = example_gen_pb2.Output(
            split_config=example_gen_pb2.SplitConfig(
                splits=[example_gen_pb2.SplitConfig.Split(name=n, hash_buckets=b) for n, b in split_ratio.items()]
            )
        )
    examples = standard_artifacts.Examples()
    examples.uri = str(out_dir)
    exec_properties = {
        standard_component_specs.INPUT_BASE_KEY: str(input_base),
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config),
        standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(output_config),
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY: example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    context = executor_class.Context(beam_pipeline_args=beam_args or ["--runner=DirectRunner"])
    executor_class(context).Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
    return examples


def split_contents(examples) -> dict[str, list[bytes]]:
    """{split: sorted records, each as its deterministic serialization} (TFX re-serialises)."""
    out = {}
    for split in artifact_utils.decode_split_names(examples.split_names):
        files = glob.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*"))
        assert files and all(f.endswith(".gz") for f in files)
        out[split] = sorted(
            tf.train.Example.FromString(r.numpy()).SerializeToString(deterministic=True)
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP")
        )
    return out


@pytest.mark.slow
def test_splits_are_tfx_splits(tmp_path, records):
    write_examples(records[:300], tmp_path / "in" / "a.tfrecord.gz")
    write_examples(records[300:], tmp_path / "in" / "b.tfrecord.gz")
    ratio = {"train": 2, "eval": 1}
    stock = run_executor(tfx_import_executor.Executor, tmp_path / "in", tmp_path / "stock", ratio)
    ours = run_executor(
        example_gen.Executor, tmp_path / "in", tmp_path / "ours", ratio, beam_args=["--direct_num_workers=3"]
    )
    expected, got = split_contents(stock), split_contents(ours)
    assert set(got) == {"train", "eval"}
    assert got == expected
    assert 150 < len(got["eval"]) < 250  # really a 2:1 hash split of 600
    # Same artifact properties as the stock executor sets (what Transform and TFMA read).
    assert ours.split_names == stock.split_names
    assert ours.get_string_custom_property("payload_format") == stock.get_string_custom_property("payload_format")
    assert ours.get_string_custom_property("file_format") == stock.get_string_custom_property("file_format")
    # Several files per split, each a fair share, for the Evaluator's workers.
    files = sorted(glob.glob(str(tmp_path / "ours" / "Split-eval" / "*")))
    assert [os.path.basename(f) for f in files] == [f"data_tfrecord-0000{i}-of-00003.gz" for i in range(3)]
    sizes = [sum(1 for _ in tf.data.TFRecordDataset(f, compression_type="GZIP")) for f in files]
    assert max(sizes) - min(sizes) <= 1


def test_existing_splits_are_kept(tmp_path, records):
    write_examples(records[:100], tmp_path / "in" / "train" / "a.gz")
    write_plain(records[100:150], tmp_path / "in" / "eval" / "b")
    ours = run_executor(
        example_gen.Executor,
        tmp_path / "in",
        tmp_path / "ours",
        split_patterns={"train": "train/*", "eval": "eval/*"},
        beam_args=["--direct_num_workers=1"],
    )
    got = split_contents(ours)
    assert [len(got["train"]), len(got["eval"])] == [100, 50]


@pytest.mark.slow
def test_compression_is_read_from_content_not_name(tmp_path, records):
    """gzip, zlib and uncompressed files, all named *.tfrecord.gz, in one directory."""
    write_examples(records[:200], tmp_path / "in" / "gzip.tfrecord.gz")
    write_zlib(records[200:400], tmp_path / "in" / "zlib.tfrecord.gz")
    write_plain(records[400:], tmp_path / "in" / "plain.tfrecord.gz")
    assert [
        example_gen.detect_compression(str(tmp_path / "in" / n))
        for n in ("gzip.tfrecord.gz", "zlib.tfrecord.gz", "plain.tfrecord.gz")
    ] == ["GZIP", "ZLIB", ""]
    ours = run_executor(example_gen.Executor, tmp_path / "in", tmp_path / "ours", {"train": 2, "eval": 1})
    # The same splits as TFX's executor gives the same records, written its way (gzip).
    write_examples(records, tmp_path / "ref" / "all.tfrecord.gz")
    stock = run_executor(tfx_import_executor.Executor, tmp_path / "ref", tmp_path / "stock", {"train": 2, "eval": 1})
    assert split_contents(ours) == split_contents(stock)


def test_a_record_length_that_looks_like_zlib_is_still_uncompressed(tmp_path):
    """A 376-byte first record starts the file with 78 01, a valid zlib header."""
    example = tf.train.Example()
    example.features.feature["x"].bytes_list.value.append(b"a" * 358)
    raw = example.SerializeToString()
    assert len(raw) == 376
    write_plain([raw], tmp_path / "f")
    assert (tmp_path / "f").read_bytes()[:2] == b"\x78\x01"
    assert example_gen.detect_compression(str(tmp_path / "f")) == ""


def test_unreadable_inputs_are_named(tmp_path, records):
    (tmp_path / "text.csv").write_bytes(b"fare,tips\n1,2\n")
    with pytest.raises(example_gen.ExampleGenError, match=r"text\.csv: not a TFRecord file"):
        example_gen.detect_compression(str(tmp_path / "text.csv"))
    (tmp_path / "in").mkdir()
    write_plain([b"\x08\x96\x01not-an-example"], tmp_path / "in" / "x")
    with pytest.raises(example_gen.ExampleGenError, match=r"x: record 0 does not parse"):
        run_executor(example_gen.Executor, tmp_path / "in", tmp_path / "out", {"train": 2, "eval": 1})
