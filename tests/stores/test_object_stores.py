"""Checkpoints in object stores, read and written through the core's object storage on a real S3 API on
loopback (moto's server, started by the tests: see tests/helpers/object_stores.py).

TensorFlow's own files, uploaded, must read exactly as TensorFlow read them locally; what fastckpt writes
into a bucket, downloaded, must read in TensorFlow. Faults come from a proxy of the tests' own in front of
the server, and request counts from its records.
"""

import os
import socket
import time
import types

import fastckpt
import numpy as np
import pytest
from fastckpt import errors
from helpers.checkpoints import Expected, check_against_expected, fixture_kinds
from helpers.object_stores import apply_env, upload
from helpers.processes import free_port, run_cli


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


def _listings(proxy) -> int:
    return sum(1 for r in proxy.records if r.method == "GET" and "list-type=" in r.query)


def _state_file_reads(proxy, bucket: str) -> int:
    return sum(1 for r in proxy.records if r.method in ("GET", "HEAD") and r.path.endswith(f"/{bucket}/run/checkpoint"))


def test_each_save_with_max_to_keep_lists_its_directory_once_and_reads_the_state_file_once(
    s3_server, s3_proxy, monkeypatch
):
    bucket = s3_server.create_bucket()
    apply_env(monkeypatch, s3_server.env(s3_proxy.endpoint))
    prefix = f"s3://{bucket}/run/model.ckpt"
    seen = []
    for saver, steps in ((fastckpt.Saver(max_to_keep=2), range(4)), (fastckpt.Saver(max_to_keep=2), range(4, 6))):
        for step in steps:  # from the third save of each saver on, every save deletes one
            s3_proxy.reset()
            saver.save({"w": np.full(4, step, np.float32)}, prefix, global_step=step)
            seen.append((step, _listings(s3_proxy), _state_file_reads(s3_proxy, bucket), s3_proxy.count(method="POST")))
    for step, listings, state_reads, _ in seen:
        assert listings <= 1 and state_reads <= 1, (step, listings, state_reads, s3_proxy.summary())
    # The second saver took up the first one's history from the state file: it deleted from its first save on.
    assert [deletions > 0 for _, _, _, deletions in seen] == [False, False, True, True, True, True], seen
    assert fastckpt.Saver().last_checkpoints == [] and fastckpt.latest_checkpoint(f"s3://{bucket}/run") == f"{prefix}-5"
    left = sorted(fastckpt.list_variables(f"{prefix}-{step}")[0][0] for step in (4, 5))
    assert left == ["w", "w"]


# Every variable an S3 client reads to find a server, credentials or a region.
_AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP",
)


def s3_options(endpoint: str) -> dict:
    return {
        "aws_endpoint": endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "aws_region": "us-east-1",
        "aws_allow_http": "true",
    }


def without_aws_variables(monkeypatch) -> None:
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    apply_env(monkeypatch, {})  # and the other variables that would take S3 clients elsewhere


def cli_without_aws_variables(*args):
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    return run_cli(*args, env=env, timeout=120)


def test_storage_options_configure_without_environment_variables(s3_server, monkeypatch):
    without_aws_variables(monkeypatch)
    bucket = s3_server.create_bucket()
    options = s3_options(s3_server.endpoint)
    run = f"s3://{bucket}/run"

    saver = fastckpt.Saver(max_to_keep=1, storage_options=options)
    for step in (1, 2):
        saver.save({"w": np.full((3,), step, np.float32)}, f"{run}/model.ckpt", global_step=step)
    client = s3_server.client()
    assert keys(client, bucket) == [
        f"run/{name}"
        for name in ("checkpoint", *(f"model.ckpt-2{s}" for s in (".data-00000-of-00001", ".index", ".meta")))
    ]
    assert fastckpt.latest_checkpoint(run, storage_options=options) == f"{run}/model.ckpt-2"
    # Any Mapping, its values made strings.
    frozen = types.MappingProxyType({**options, "aws_allow_http": True})
    reader = fastckpt.NewCheckpointReader(f"{run}/model.ckpt-2", storage_options=frozen)
    np.testing.assert_array_equal(reader.get_tensor("w"), np.full((3,), 2, np.float32))
    directory = fastckpt.load_checkpoint(run, storage_options=options)
    assert directory.path == f"{run}/model.ckpt-2"
    assert fastckpt.list_variables(run, storage_options=options) == [("w", [3])]
    np.testing.assert_array_equal(fastckpt.load_variable(run, "w:0", storage_options=options), [2, 2, 2])
    assert saver.restore(run)["w"].tolist() == [2, 2, 2]
    meta_saver = fastckpt.import_meta_graph(f"{run}/model.ckpt-2.meta", storage_options=options)
    assert meta_saver.restore(f"{run}/model.ckpt-2")["w"].tolist() == [2, 2, 2]

    # A SavedModel, its asset copied from the bucket, and loaded back.
    from fastckpt import saved_model

    vocabulary = f"s3://{bucket}/vocab.txt"
    client.put_object(Bucket=bucket, Key="vocab.txt", Body=b"the\nof\n")
    export_dir = f"s3://{bucket}/export"
    builder = saved_model.Builder(export_dir, storage_options=options)
    builder.add_meta_graph_and_variables(
        {"w": np.ones(2, np.float32)}, [saved_model.SERVING], assets_collection=[vocabulary]
    )
    builder.save()
    assert client.get_object(Bucket=bucket, Key="export/assets/vocab.txt")["Body"].read() == b"the\nof\n"
    loaded = saved_model.load(export_dir, storage_options=options)
    assert loaded.tags == [saved_model.SERVING]
    np.testing.assert_array_equal(loaded.variables["w"], np.ones(2, np.float32))
    assert saved_model.tag_sets(export_dir, storage_options=options) == [[saved_model.SERVING]]

    # The command line, in a process without any AWS_* variable: options before and after the command.
    flags = [f"--storage-option={key}={value}" for key, value in options.items()]
    result = cli_without_aws_variables(*flags, "inspect", run, "--tensor", "w")
    assert result.returncode == 0, result.stderr
    assert f"checkpoint: {run}/model.ckpt-2" in result.stdout and "[2. 2. 2.]" in result.stdout
    result = cli_without_aws_variables("saved-model", "show", export_dir, *flags)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout
    result = cli_without_aws_variables(*flags[:2], "convert", run, f"s3://{bucket}/converted/model.ckpt", *flags[2:])
    assert result.returncode == 0, result.stderr
    converted = fastckpt.load_variable(f"s3://{bucket}/converted/model.ckpt", "w", storage_options=options)
    assert converted.tolist() == [2, 2, 2]


def test_storage_options_win_over_environment_variables(s3_server, monkeypatch):

    bucket = s3_server.create_bucket()
    apply_env(monkeypatch, s3_server.env(f"http://127.0.0.1:{free_port()}"))  # nothing answers there
    options = {"aws_endpoint": s3_server.endpoint, "max_retries": "0"}
    with fastckpt.CheckpointWriter(f"s3://{bucket}/model.ckpt", storage_options=options) as writer:
        writer.add("v", np.arange(3, dtype=np.float32))
    assert fastckpt.checkpoint_exists(f"s3://{bucket}/model.ckpt", storage_options=options)
    assert fastckpt.load_variable(f"s3://{bucket}/model.ckpt", "v", storage_options=options).tolist() == [0, 1, 2]


def test_an_unknown_storage_option_is_an_invalid_argument_naming_it():
    options = {"aws_no_such_option": "1"}
    url = "s3://fastckpt-unknown-option/run/model.ckpt"
    with pytest.raises(errors.InvalidArgumentError, match="aws_no_such_option"):
        fastckpt.NewCheckpointReader(url, storage_options=options)
    with pytest.raises(errors.InvalidArgumentError, match="aws_no_such_option"):
        fastckpt.Saver(storage_options=options).save({"v": [1.0]}, url)
    with pytest.raises(errors.InvalidArgumentError, match="aws_no_such_option"):
        fastckpt.latest_checkpoint("s3://fastckpt-unknown-option/run", storage_options=options)
    result = cli_without_aws_variables("--storage-option", "aws_no_such_option=1", "inspect", url)
    assert result.returncode == 2 and "aws_no_such_option" in result.stderr, result
    assert result.stderr.startswith("fastckpt: error:") and result.stderr.count("\n") == 1, result.stderr
    result = cli_without_aws_variables("inspect", url, "--storage-option", "no-equals-sign")
    assert result.returncode == 2 and "KEY=VALUE" in result.stderr, result


def test_a_second_saver_replacing_the_state_file_is_reported(s3_bucket):
    base = f"s3://{s3_bucket}/run/model.ckpt"
    first, second = fastckpt.Saver(), fastckpt.Saver()
    first.save({"v": np.zeros(2, np.float32)}, base, global_step=1)
    second.save({"v": np.ones(2, np.float32)}, base, global_step=2)
    with pytest.raises(errors.AbortedError, match="another writer replaced the state file"):
        first.save({"v": np.zeros(2, np.float32)}, base, global_step=3)
    # The state file is the second saver's; the first one's checkpoint is complete nonetheless.
    assert fastckpt.latest_checkpoint(f"s3://{s3_bucket}/run") == f"{base}-2"
    assert fastckpt.checkpoint_exists(f"{base}-3")
    # A saver whose own writes are in order never sees the error.
    second.save({"v": np.ones(2, np.float32)}, base, global_step=4)


def test_a_server_that_never_answers_times_out(s3_server, monkeypatch):
    """Every request has a timeout: a server that accepts connections and says nothing is an UnavailableError
    within the bounds the options set, not a hang."""
    without_aws_variables(monkeypatch)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        options = {**s3_options(f"http://127.0.0.1:{silent.getsockname()[1]}"), "timeout": "1s", "max_retries": "1"}
        started = time.monotonic()
        with pytest.raises(errors.UnavailableError, match="s3://silent-fastckpt"):
            fastckpt.NewCheckpointReader("s3://silent-fastckpt/model.ckpt", storage_options=options)
        assert time.monotonic() - started < 30
    finally:
        silent.close()


def _written(bucket: str) -> str:
    prefix = f"s3://{bucket}/model.ckpt"
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add("v", np.arange(1000, dtype=np.float32))
    return prefix


def test_public_buckets_read_anonymously_and_private_ones_refuse(s3_server, s3_bucket, monkeypatch):
    public = s3_server.create_bucket(public=True)
    _written(public)
    _written(s3_bucket)
    without_aws_variables(monkeypatch)
    anonymous = {**s3_options(s3_server.endpoint), "aws_skip_signature": "true"}
    for key in ("aws_access_key_id", "aws_secret_access_key"):
        del anonymous[key]
    reader = fastckpt.NewCheckpointReader(f"s3://{public}/model.ckpt", storage_options=anonymous)
    np.testing.assert_array_equal(reader.get_tensor("v"), np.arange(1000, dtype=np.float32))
    with pytest.raises(errors.PermissionDeniedError, match=f"s3://{s3_bucket}/model.ckpt"):
        fastckpt.NewCheckpointReader(f"s3://{s3_bucket}/model.ckpt", storage_options=anonymous).get_tensor("v")


def test_a_truncated_object_is_data_loss(s3_server, s3_bucket):
    prefix = _written(s3_bucket)
    client = s3_server.client()
    data = client.get_object(Bucket=s3_bucket, Key="model.ckpt.data-00000-of-00001")["Body"].read()
    client.put_object(Bucket=s3_bucket, Key="model.ckpt.data-00000-of-00001", Body=data[:1000])
    with pytest.raises(errors.DataLossError, match="truncated"):
        fastckpt.NewCheckpointReader(prefix).get_tensor("v")
    # Truncated after open: the bytes the reader asks for are no longer there. (Opened without the stat cache,
    # which would give the size of a moment ago, too short for the index: see the test below.)
    client.put_object(Bucket=s3_bucket, Key="model.ckpt.data-00000-of-00001", Body=data)
    reader = fastckpt.NewCheckpointReader(prefix, storage_options={"cache_max_age": "0"})
    client.put_object(Bucket=s3_bucket, Key="model.ckpt.data-00000-of-00001", Body=data[:1000])
    with pytest.raises(errors.DataLossError, match="model.ckpt.data-00000-of-00001"):
        reader.get_tensor("v")


def test_a_data_object_shorter_than_the_index_needs_fails_the_open(s3_server, s3_bucket):
    prefix = _written(s3_bucket)
    client = s3_server.client()
    data = client.get_object(Bucket=s3_bucket, Key="model.ckpt.data-00000-of-00001")["Body"].read()
    client.put_object(Bucket=s3_bucket, Key="model.ckpt.data-00000-of-00001", Body=data[:1000])
    # From the size the object store gives at open, before any tensor is read.
    with pytest.raises(errors.DataLossError, match="holds 1000 bytes, but the index needs 4000.*truncated") as info:
        fastckpt.NewCheckpointReader(prefix)
    assert info.value.filename == prefix + ".data-00000-of-00001" and info.value.tensor_name == "v"


def test_an_object_cut_short_of_a_whole_piece_is_data_loss(s3_server, s3_bucket):
    prefix = f"s3://{s3_bucket}/model.ckpt"
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add("first", np.zeros(1000, np.float32))
        writer.add("second", np.ones(1000, np.float32))
    reader = fastckpt.NewCheckpointReader(prefix)
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="model.ckpt.data-00000-of-00001", Body=b"\0" * 100)
    # Every byte of "second" lies past the new end: the server refuses the range (416).
    with pytest.raises(errors.DataLossError, match="second"):
        reader.get_tensor("second")


def test_a_changed_byte_in_any_piece_of_a_remote_tensor_is_data_loss(s3_server, s3_bucket):
    # 20 MiB tensors are fetched in three pieces (and their small neighbours in a request of their own
    # each); the checksum of each piece is taken as it arrives and combined into the tensor's.
    prefix = f"s3://{s3_bucket}/model.ckpt"
    values = {
        "small": np.arange(10, dtype=np.int64),
        "large": np.random.default_rng(0).standard_normal(5 << 20).astype(np.float32),
        "tail": np.arange(1000, dtype=np.float64),
    }
    with fastckpt.CheckpointWriter(prefix) as writer:
        for name, value in values.items():
            writer.add(name, value)
    reader = fastckpt.NewCheckpointReader(prefix)
    for name, value in reader.get_tensors().items():
        np.testing.assert_array_equal(value, values[name])
    key = "model.ckpt.data-00000-of-00001"
    client = s3_server.client()
    data = client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    large_start = data.index(values["large"][:4].tobytes())
    for at, damaged in [
        (large_start + (9 << 20), "large"),
        (large_start + (20 << 20) - 1, "large"),
        (len(data) - 1, "tail"),
    ]:
        changed = bytearray(data)
        changed[at] ^= 0x40
        client.put_object(Bucket=s3_bucket, Key=key, Body=bytes(changed))
        with pytest.raises(errors.DataLossError, match=f"{damaged}.*checksum|checksum.*{damaged}"):
            fastckpt.NewCheckpointReader(prefix).get_tensors()
    client.put_object(Bucket=s3_bucket, Key=key, Body=data)
    np.testing.assert_array_equal(fastckpt.NewCheckpointReader(prefix).get_tensor("large"), values["large"])
