"""Checkpoints in object stores, read and written through the core's object storage on a real S3 API on
loopback (moto's server, started by the tests: see object_stores.py).

TensorFlow's own files, uploaded, must read exactly as TensorFlow read them locally; what fastckpt writes
into a bucket, downloaded, must read in TensorFlow. Faults come from a proxy of the tests' own in front of
the server, and request counts from its records.
"""

import os

import fastckpt
import numpy as np
import pytest
from conftest import Expected, check_against_expected, fixture_kinds
from fastckpt import errors
from object_stores import apply_env


def upload(client, bucket: str, local_dir, prefix: str) -> None:
    for root, _, files in os.walk(local_dir):
        for name in files:
            path = os.path.join(root, name)
            client.upload_file(path, bucket, f"{prefix}/{os.path.relpath(path, local_dir)}")


def keys(client, bucket: str) -> list:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def download(client, bucket: str, prefix: str, local_dir) -> None:
    for key in keys(client, bucket):
        if key.startswith(prefix + "/"):
            target = os.path.join(local_dir, key[len(prefix) + 1 :])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            client.download_file(bucket, key, target)


@pytest.mark.parametrize("kind", fixture_kinds())
def test_tensorflow_checkpoints_read_from_s3_as_tensorflow_reads_them(kind, s3_server, s3_bucket):
    expected = Expected(kind)
    upload(s3_server.client(), s3_bucket, expected.dir, kind)
    # Directories (a state file's, a SavedModel's) are named by the URL of their prefix.
    expected.path = os.path.normpath(f"{s3_bucket}/{kind}/{os.path.relpath(expected.path, expected.dir)}")
    expected.path = "s3://" + expected.path
    check_against_expected(expected)


def test_a_directory_url_resolves_through_its_state_file(s3_server, s3_bucket):
    upload(s3_server.client(), s3_bucket, Expected("directory_state").dir, "run")
    assert fastckpt.latest_checkpoint(f"s3://{s3_bucket}/run") == f"s3://{s3_bucket}/run/model.ckpt-400"


def test_saver_on_s3_keeps_max_to_keep_and_tensorflow_reads_the_download(s3_server, s3_bucket, tmp_path):
    tf = pytest.importorskip("tensorflow")
    client = s3_server.client()
    saver = fastckpt.Saver(max_to_keep=2)
    base = f"s3://{s3_bucket}/run/model.ckpt"
    big = np.arange(5 << 20, dtype=np.float32)  # 20 MiB: the data file is a multipart upload
    for step in range(4):
        saved = saver.save({"w": np.full((3,), step, np.float32), "big": big + step}, base, global_step=step)
        assert saved == f"{base}-{step}"
    names = [key[len("run/") :] for key in keys(client, s3_bucket)]
    assert names == [
        "checkpoint",
        *[f"model.ckpt-{step}{suffix}" for step in (2, 3) for suffix in (".data-00000-of-00001", ".index", ".meta")],
    ]
    assert fastckpt.latest_checkpoint(f"s3://{s3_bucket}/run") == f"{base}-3"
    restored = fastckpt.Saver(["w", "big"]).restore(f"{base}-3")
    np.testing.assert_array_equal(restored["big"], big + 3)
    download(client, s3_bucket, "run", tmp_path)
    reader = tf.train.load_checkpoint(str(tmp_path / "model.ckpt-3"))
    np.testing.assert_array_equal(reader.get_tensor("w"), np.full((3,), 3, np.float32))
    np.testing.assert_array_equal(reader.get_tensor("big"), big + 3)


def test_a_missing_bucket_or_object_is_not_found_naming_the_url(s3_bucket):
    missing = "s3://no-such-bucket-fastckpt/model.ckpt"
    with pytest.raises(errors.NotFoundError, match="no-such-bucket-fastckpt"):
        fastckpt.NewCheckpointReader(missing)
    with pytest.raises(errors.NotFoundError, match=f"s3://{s3_bucket}/nothing"):
        fastckpt.NewCheckpointReader(f"s3://{s3_bucket}/nothing/model.ckpt")
    assert fastckpt.latest_checkpoint(f"s3://{s3_bucket}/nothing") is None
    assert not fastckpt.checkpoint_exists(f"s3://{s3_bucket}/nothing/model.ckpt")


def test_a_server_that_does_not_answer_is_unavailable(s3_server, monkeypatch):
    from object_stores import free_port

    apply_env(monkeypatch, s3_server.env(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(errors.UnavailableError, match="s3://unreachable-fastckpt"):
        fastckpt.NewCheckpointReader("s3://unreachable-fastckpt/model.ckpt")


def test_views_need_local_files(s3_bucket):
    with fastckpt.CheckpointWriter(f"s3://{s3_bucket}/model.ckpt") as writer:
        writer.add("v", np.zeros(3, np.float32))
    with pytest.raises(errors.UnimplementedError, match="object store"):
        fastckpt.NewCheckpointReader(f"s3://{s3_bucket}/model.ckpt").views()


def test_http_servers_are_read_only():
    with pytest.raises(errors.UnimplementedError, match="read-only"):
        with fastckpt.CheckpointWriter("https://127.0.0.1:9/model.ckpt") as writer:
            writer.add("v", np.zeros(3, np.float32))


def test_an_aborted_write_leaves_no_object(s3_server, s3_bucket):
    writer = fastckpt.CheckpointWriter(f"s3://{s3_bucket}/run/model.ckpt")
    writer.add("big", np.zeros(20 << 20, np.uint8))  # past one part: a multipart upload is under way
    writer.abort()
    client = s3_server.client()
    assert keys(client, s3_bucket) == []
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_reads_and_saves_through_faults_give_exact_values(s3_server, make_proxy, monkeypatch):
    proxy = make_proxy(s3_server, fail_503=0.2, drop=0.1, delay=0.1, delay_ms=50, seed=1)
    bucket = s3_server.create_bucket()
    apply_env(monkeypatch, s3_server.env(proxy.endpoint))
    rng = np.random.default_rng(0)
    values = {f"t{i}": rng.standard_normal((64, 1024)).astype(np.float32) for i in range(8)}
    values["big"] = rng.standard_normal(5 << 20).astype(np.float32)
    path = fastckpt.Saver().save(values, f"s3://{bucket}/run/model.ckpt", global_step=1)
    for _ in range(3):
        read = fastckpt.NewCheckpointReader(path).get_tensors()
        assert sorted(read) == sorted(values)
        for name, value in values.items():
            np.testing.assert_array_equal(read[name], value)
    assert proxy.count_503 > 0 and proxy.count_dropped > 0


def test_one_row_of_a_large_table_takes_few_requests_and_bytes(s3_server, s3_proxy, monkeypatch):
    bucket = s3_server.create_bucket()
    table = np.arange(256 << 18, dtype=np.float32).reshape(-1, 1024)  # 256 MiB, rows of 4 KiB
    apply_env(monkeypatch, s3_server.env())
    fastckpt.Saver().save({"embedding": table}, f"s3://{bucket}/model.ckpt")
    apply_env(monkeypatch, s3_server.env(s3_proxy.endpoint))
    s3_proxy.reset()
    row = fastckpt.NewCheckpointReader(f"s3://{bucket}/model.ckpt").get_slice("embedding")[1000]
    np.testing.assert_array_equal(row, table[1000])
    assert s3_proxy.requests_seen <= 4, s3_proxy.summary()
    assert s3_proxy.response_bytes() <= 1 << 20, s3_proxy.summary()


def test_opening_ten_thousand_tensors_takes_few_requests(s3_server, s3_proxy, monkeypatch):
    bucket = s3_server.create_bucket()
    apply_env(monkeypatch, s3_server.env())
    with fastckpt.CheckpointWriter(f"s3://{bucket}/model.ckpt") as writer:
        for i in range(10_000):
            writer.add(f"layer_{i:05d}/kernel", np.full((4,), i, np.float32))
    apply_env(monkeypatch, s3_server.env(s3_proxy.endpoint))
    s3_proxy.reset()
    reader = fastckpt.NewCheckpointReader(f"s3://{bucket}/model.ckpt")
    assert len(reader.get_variable_to_shape_map()) == 10_000
    assert s3_proxy.requests_seen <= 3, s3_proxy.summary()
