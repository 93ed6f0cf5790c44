"""Checkpoints in Google Cloud Storage (``gs://``), read through the core's object storage from fake-gcs-server
on loopback (started by the tests: see ``GCSServer`` in tests/helpers/object_stores.py).

fake-gcs-server answers object_store's reads, not its writes (its XML API has no PUT of an object and no
multipart upload), so objects are put through the server's JSON API and only reads are tested here: TensorFlow's
files of every kind read exactly as TensorFlow read them locally, directory URLs, listings, errors, and loops of
small reads whose requests the test proxy counts.
"""

import os
import time

import fastckpt
import numpy as np
import pytest
from fastckpt import errors, saved_model
from helpers.checkpoints import Expected, check_against_expected, fixture_kinds
from helpers.object_stores import apply_env
from helpers.processes import free_port, run_cli
from helpers.remote_loops import assert_loops_cost_about_a_batch, digests, many_small_tensors, requests_of


def write_and_upload(gcs_server, bucket, tmp_path, values, key="run/model.ckpt"):
    """Writes ``values`` as a checkpoint locally and uploads its files as ``gs://bucket/key``; returns the URL."""
    local = tmp_path / "local" / "model.ckpt"
    with fastckpt.CheckpointWriter(str(local)) as writer:
        writer.add_tensors(values)
    for name in os.listdir(local.parent):
        gcs_server.upload(bucket, key + name[len(local.name) :], (local.parent / name).read_bytes())
    return f"gs://{bucket}/{key}"


@pytest.mark.parametrize("kind", fixture_kinds())
def test_tensorflow_checkpoints_read_from_gcs_as_tensorflow_reads_them(kind, gcs_server, gcs_bucket):
    # V1, V2, sharded, partitioned, TF1 and TF2 savers, SavedModels' variables, a directory's state file.
    expected = Expected(kind)
    gcs_server.upload_dir(gcs_bucket, expected.dir, kind)
    # Directories (a state file's, a SavedModel's) are named by the URL of their prefix.
    expected.path = "gs://" + os.path.normpath(f"{gcs_bucket}/{kind}/{os.path.relpath(expected.path, expected.dir)}")
    check_against_expected(expected)


def test_a_directory_url_resolves_through_its_state_file(gcs_server, gcs_bucket):
    gcs_server.upload_dir(gcs_bucket, Expected("directory_state").dir, "run")
    run = f"gs://{gcs_bucket}/run"
    assert fastckpt.latest_checkpoint(run) == f"{run}/model.ckpt-400"
    state = fastckpt.get_checkpoint_state(run)
    assert state.all_model_checkpoint_paths == [f"{run}/model.ckpt-{step}" for step in (200, 300, 400)]
    assert fastckpt.load_checkpoint(run).path == f"{run}/model.ckpt-400"
    assert fastckpt.list_variables(run) == fastckpt.list_variables(f"{run}/model.ckpt-400")
    assert fastckpt.checkpoint_exists(f"{run}/model.ckpt-200")


def test_a_saved_model_loads_from_gcs(gcs_server, gcs_bucket):
    expected = Expected("savedmodel_tf2")
    gcs_server.upload_dir(gcs_bucket, expected.dir, "export")
    export_dir = f"gs://{gcs_bucket}/export"
    assert fastckpt.load_checkpoint(export_dir).path == f"{export_dir}/variables/variables"
    local = saved_model.load(str(expected.dir))
    remote = saved_model.load(export_dir)
    assert remote.tags == local.tags and sorted(remote.variables) == sorted(local.variables)
    for name, value in local.variables.items():
        np.testing.assert_array_equal(remote.variables[name], value)
    assert saved_model.tag_sets(export_dir) == saved_model.tag_sets(str(expected.dir))


def test_listings_name_a_directorys_entries(gcs_server, gcs_bucket):
    # (fake-gcs-server answers a listing in one page whatever its size: pages are not tested here.)
    for i in range(20):
        gcs_server.upload(gcs_bucket, f"many/f{i:02d}", b"")
    gcs_server.upload(gcs_bucket, "many/sub/inner", b"x")
    gcs_server.upload(gcs_bucket, "many.txt", b"not in the directory")
    stores = fastckpt._paths.stores(None)
    assert stores.list_directory(f"gs://{gcs_bucket}/many") == [f"f{i:02d}" for i in range(20)] + ["sub"]
    assert stores.list_directory(f"gs://{gcs_bucket}/many/sub") == ["inner"]
    assert stores.list_directory(f"gs://{gcs_bucket}/nothing") == []
    assert stores.file_kind(f"gs://{gcs_bucket}/many") == "directory"
    assert stores.file_kind(f"gs://{gcs_bucket}/many/sub/inner") == "file"
    assert stores.file_kind(f"gs://{gcs_bucket}/many/none") is None
    assert abs(stores.modified_time(f"gs://{gcs_bucket}/many.txt") - time.time()) < 600


def test_a_directory_without_a_checkpoint_says_what_it_holds(gcs_server, gcs_bucket):
    gcs_server.upload(
        gcs_bucket, "export/saved_model.pb", Expected("savedmodel_tf2").dir.joinpath("saved_model.pb").read_bytes()
    )
    gcs_server.upload(gcs_bucket, "run/notes.txt", b"no checkpoint here")
    with pytest.raises(errors.NotACheckpointError, match="SavedModel without variables"):
        fastckpt.load_checkpoint(f"gs://{gcs_bucket}/export")
    with pytest.raises(errors.NotACheckpointError, match="no 'checkpoint' state file"):
        fastckpt.load_checkpoint(f"gs://{gcs_bucket}/run")
    assert fastckpt.latest_checkpoint(f"gs://{gcs_bucket}/run") is None


def test_a_missing_object_is_not_found_naming_the_url(gcs_bucket):
    with pytest.raises(errors.NotFoundError, match=f"gs://{gcs_bucket}/nothing/model.ckpt"):
        fastckpt.NewCheckpointReader(f"gs://{gcs_bucket}/nothing/model.ckpt")
    assert fastckpt.latest_checkpoint(f"gs://{gcs_bucket}/nothing") is None
    assert not fastckpt.checkpoint_exists(f"gs://{gcs_bucket}/nothing/model.ckpt")


def test_a_missing_bucket_has_no_latest_checkpoint(gcs_bucket):
    assert fastckpt.latest_checkpoint("gs://no-such-bucket-fastckpt/run") is None


@pytest.mark.xfail(
    strict=True,
    raises=errors.UnavailableError,
    reason="fake-gcs-server 1.54 answers the listing of a missing bucket (GET /<bucket>?list-type=2) with 500 'no "
    "bucket named ...', where GCS answers 404: an error of the server that object_store retries",
)
def test_a_missing_bucket_is_not_found_naming_the_url(gcs_bucket):
    with pytest.raises(errors.NotFoundError, match="gs://no-such-bucket-fastckpt"):
        fastckpt.NewCheckpointReader("gs://no-such-bucket-fastckpt/model.ckpt", storage_options={"max_retries": "0"})


def test_a_missing_tensor_is_not_found(gcs_server, gcs_bucket, tmp_path):
    prefix = write_and_upload(gcs_server, gcs_bucket, tmp_path, {"v": np.zeros(3, np.float32)})
    with pytest.raises(errors.NotFoundError, match="Key w not found in checkpoint"):
        fastckpt.load_variable(prefix, "w")


def test_a_server_that_does_not_answer_is_unavailable(gcs_server, monkeypatch):
    apply_env(monkeypatch, gcs_server.env(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(errors.UnavailableError, match="gs://unreachable-fastckpt"):
        fastckpt.NewCheckpointReader("gs://unreachable-fastckpt/model.ckpt", storage_options={"max_retries": "1"})


DATA = "model.ckpt.data-00000-of-00001"


def test_a_truncated_object_is_data_loss(gcs_server, gcs_bucket, tmp_path):
    prefix = write_and_upload(gcs_server, gcs_bucket, tmp_path, {"v": np.arange(1000, dtype=np.float32)}, "model.ckpt")
    data = gcs_server.download(gcs_bucket, DATA)
    gcs_server.upload(gcs_bucket, DATA, data[:1000])
    options = {"cache_max_age": "0"}
    with pytest.raises(errors.DataLossError, match="truncated"):
        fastckpt.NewCheckpointReader(prefix, storage_options=options).get_tensor("v")
    # Truncated after open: the bytes the reader asks for are no longer there.
    gcs_server.upload(gcs_bucket, DATA, data)
    reader = fastckpt.NewCheckpointReader(prefix, storage_options=options)
    gcs_server.upload(gcs_bucket, DATA, data[:1000])
    with pytest.raises(errors.DataLossError, match=DATA):
        reader.get_tensor("v")


def test_an_object_cut_short_of_a_whole_piece_is_data_loss(gcs_server, gcs_bucket, tmp_path):
    values = {"first": np.zeros(1000, np.float32), "second": np.ones(1000, np.float32)}
    prefix = write_and_upload(gcs_server, gcs_bucket, tmp_path, values, "model.ckpt")
    reader = fastckpt.NewCheckpointReader(prefix)
    gcs_server.upload(gcs_bucket, DATA, b"\0" * 100)
    # Every byte of "second" lies past the new end.
    with pytest.raises(errors.DataLossError, match="second"):
        reader.get_tensor("second")


def test_a_changed_byte_is_data_loss(gcs_server, gcs_bucket, tmp_path):
    values = {"small": np.arange(10, dtype=np.int64), "tail": np.arange(1000, dtype=np.float64)}
    prefix = write_and_upload(gcs_server, gcs_bucket, tmp_path, values, "model.ckpt")
    data = bytearray(gcs_server.download(gcs_bucket, DATA))
    data[-1] ^= 0x40
    gcs_server.upload(gcs_bucket, DATA, bytes(data))
    with pytest.raises(errors.DataLossError, match="tail.*checksum|checksum.*tail"):
        fastckpt.NewCheckpointReader(prefix).get_tensors()


def test_storage_options_configure_without_environment_variables(gcs_server, monkeypatch, tmp_path):
    apply_env(monkeypatch, {})  # no GOOGLE_* variable
    bucket = gcs_server.create_bucket()
    values = {"w": np.full((3,), 2, np.float32)}
    prefix = write_and_upload(gcs_server, bucket, tmp_path, values)
    gcs_server.upload(bucket, "run/checkpoint", b'model_checkpoint_path: "model.ckpt"\n')
    run = f"gs://{bucket}/run"
    # The service account key as JSON, or as a file.
    key_file = tmp_path / "service-account.json"
    key_file.write_text(gcs_server.service_account_key())
    for options in (gcs_server.options(), {"google_service_account": str(key_file), "allow_http": "true"}):
        assert fastckpt.latest_checkpoint(run, storage_options=options) == prefix
        assert fastckpt.load_variable(run, "w", storage_options=options).tolist() == [2, 2, 2]
        reader = fastckpt.NewCheckpointReader(prefix, storage_options=options)
        np.testing.assert_array_equal(reader.get_tensor("w"), values["w"])
    # The command line, in a process without any GOOGLE_* variable.
    env = {name: value for name, value in os.environ.items() if not name.startswith("GOOGLE_")}
    flags = [f"--storage-option={key}={value}" for key, value in gcs_server.options().items()]
    result = run_cli(*flags, "inspect", run, "--tensor", "w", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"checkpoint: {prefix}" in result.stdout and "[2. 2. 2.]" in result.stdout


def test_reads_through_faults_give_exact_values(gcs_server, gcs_bucket, make_proxy, monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    values = {f"t{i}": rng.standard_normal((64, 1024)).astype(np.float32) for i in range(8)}
    values["big"] = rng.standard_normal(5 << 20).astype(np.float32)
    prefix = write_and_upload(gcs_server, gcs_bucket, tmp_path, values)
    proxy = make_proxy(gcs_server, fail_503=0.2, drop=0.1, delay=0.1, delay_ms=50, seed=1, upstream_host=True)
    apply_env(monkeypatch, gcs_server.env(proxy.endpoint))
    for _ in range(3):
        read = fastckpt.NewCheckpointReader(prefix, storage_options={"cache_max_age": "0"}).get_tensors()
        assert sorted(read) == sorted(values)
        for name, value in values.items():
            np.testing.assert_array_equal(read[name], value)
    assert proxy.count_503 > 0 and proxy.count_dropped > 0


def test_opening_ten_thousand_tensors_takes_few_requests(gcs_server, gcs_bucket, gcs_proxy, monkeypatch, tmp_path):
    values = {f"layer_{i:05d}/kernel": np.full((4,), i, np.float32) for i in range(10_000)}
    prefix = write_and_upload(gcs_server, gcs_bucket, tmp_path, values)
    apply_env(monkeypatch, gcs_server.env(gcs_proxy.endpoint))
    reader = fastckpt.NewCheckpointReader(prefix)
    assert len(reader.get_variable_to_shape_map()) == 10_000
    assert gcs_proxy.requests_seen <= 3, gcs_proxy.summary()
    assert all(r.status in (200, 206) for r in gcs_proxy.records), gcs_proxy.summary()


@pytest.fixture(scope="module")
def small_tensors():
    return many_small_tensors()


def test_get_tensor_loops_cost_about_what_get_tensors_costs(
    gcs_server, gcs_bucket, gcs_proxy, monkeypatch, small_tensors, tmp_path
):
    prefix = write_and_upload(gcs_server, gcs_bucket, tmp_path, small_tensors)
    apply_env(monkeypatch, gcs_server.env(gcs_proxy.endpoint))
    assert_loops_cost_about_a_batch(gcs_proxy, prefix, small_tensors)


def test_a_load_variable_loop_reuses_what_it_read(
    gcs_server, gcs_bucket, gcs_proxy, monkeypatch, small_tensors, tmp_path
):
    prefix = write_and_upload(gcs_server, gcs_bucket, tmp_path, small_tensors)
    apply_env(monkeypatch, gcs_server.env(gcs_proxy.endpoint))
    requests, read = requests_of(gcs_proxy, prefix, "load_variable")
    assert len(read) == 400 and all(read[name] == digests({name: small_tensors[name]})[name] for name in read)
    # 400 opens of the checkpoint and 400 reads: without reuse, four requests each.
    assert requests <= 30, gcs_proxy.summary()


def test_without_the_block_cache_each_read_is_a_request(gcs_server, gcs_bucket, gcs_proxy, monkeypatch, tmp_path):
    few = dict(list(many_small_tensors().items())[:50])
    prefix = write_and_upload(gcs_server, gcs_bucket, tmp_path, few)
    apply_env(monkeypatch, gcs_server.env(gcs_proxy.endpoint))
    requests, read = requests_of(gcs_proxy, prefix, "loop", {"block_cache_bytes": "0"})
    assert read == digests(few) and requests >= 50, gcs_proxy.summary()
