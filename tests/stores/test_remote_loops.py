"""Loops that read one tensor (or row) at a time from an object store, as users' scripts do (a ``get_tensor`` loop, a
``load_variable`` loop as Hugging Face's ``load_tf_weights_in_*`` does, rows of a table through ``get_slice``), cost
about what one batched read of the same bytes costs. Requests are counted through the test proxy, each read in a
fresh process (its caches empty), and every value is checked exactly."""

import subprocess
import time

import fastckpt
import numpy as np
import pytest
from helpers.object_stores import apply_env
from helpers.processes import python_command
from helpers.remote_loops import assert_loops_cost_about_a_batch, bert_like, digests, many_small_tensors, requests_of


@pytest.fixture(scope="module")
def small_tensors():
    return many_small_tensors()


def save(bucket, values):
    prefix = f"s3://{bucket}/run/model.ckpt"
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add_tensors(values)
    return prefix


def test_get_tensor_loops_cost_about_what_get_tensors_costs(s3_server, s3_proxy, monkeypatch, small_tensors):
    bucket = s3_server.create_bucket()
    apply_env(monkeypatch, s3_server.env())
    prefix = save(bucket, small_tensors)
    apply_env(monkeypatch, s3_server.env(s3_proxy.endpoint))
    assert_loops_cost_about_a_batch(s3_proxy, prefix, small_tensors)


def test_loops_over_large_tensors_read_each_byte_once(s3_server, s3_proxy, monkeypatch):
    # Large kernels after small vectors: the blocks a loop reads ahead into a kernel are not fetched again by the
    # kernel's own read, which fetches only the rest.
    bucket = s3_server.create_bucket()
    apply_env(monkeypatch, s3_server.env())
    values = bert_like()
    prefix = save(bucket, values)
    apply_env(monkeypatch, s3_server.env(s3_proxy.endpoint))
    batch, read = requests_of(s3_proxy, prefix, "batch")
    assert read == digests(values)
    batch_bytes = s3_proxy.response_bytes()
    # In any order, each byte is fetched about once: read-ahead stops short of the kernels, except in a loop in
    # the file's order, which reads them next.
    for how in ("loop", "load_variable", "random"):
        requests, read = requests_of(s3_proxy, prefix, how)
        assert read == digests(values), how
        assert requests <= 2 * batch + 3, (how, batch, s3_proxy.summary())
        assert s3_proxy.response_bytes() <= 1.05 * batch_bytes, (how, batch_bytes, s3_proxy.summary())


def test_a_load_variable_loop_reuses_what_it_read(s3_server, s3_proxy, monkeypatch, small_tensors):
    bucket = s3_server.create_bucket()
    apply_env(monkeypatch, s3_server.env())
    prefix = save(bucket, small_tensors)
    apply_env(monkeypatch, s3_server.env(s3_proxy.endpoint))
    requests, read = requests_of(s3_proxy, prefix, "load_variable")
    assert len(read) == 400 and all(read[name] == digests({name: small_tensors[name]})[name] for name in read)
    # 400 opens of the checkpoint and 400 reads: without reuse, four requests each.
    assert requests <= 30, s3_proxy.summary()


def test_rows_read_one_by_one_cost_about_what_the_whole_table_costs(s3_server, s3_proxy, monkeypatch):
    bucket = s3_server.create_bucket()
    apply_env(monkeypatch, s3_server.env())
    table = np.arange(16 << 20, dtype=np.float32).reshape(-1, 1024)  # 64 MiB, 16,384 rows of 4 KiB
    prefix = save(bucket, {"table": table})
    apply_env(monkeypatch, s3_server.env(s3_proxy.endpoint))
    batch, read = requests_of(s3_proxy, prefix, "batch")
    requests, rows = requests_of(s3_proxy, prefix, "rows")
    assert rows == read == digests({"table": table})
    assert requests <= 2 * batch + 3, (requests, batch, s3_proxy.summary())


def test_loops_through_faults_give_exact_values(s3_server, make_proxy, monkeypatch, small_tensors):
    proxy = make_proxy(s3_server, fail_503=0.2, drop=0.1, seed=3)
    bucket = s3_server.create_bucket()
    apply_env(monkeypatch, s3_server.env())
    prefix = save(bucket, small_tensors)
    apply_env(monkeypatch, s3_server.env(proxy.endpoint))
    for how in ("loop", "load_variable", "random"):
        _, read = requests_of(proxy, prefix, how)
        assert read == {name: digest for name, digest in digests(small_tensors).items() if name in read}, how
    assert proxy.count_503 > 0 and proxy.count_dropped > 0


def test_without_the_block_cache_each_read_is_a_request(s3_server, s3_proxy, monkeypatch, small_tensors):
    bucket = s3_server.create_bucket()
    apply_env(monkeypatch, s3_server.env())
    few = dict(list(small_tensors.items())[:50])
    prefix = save(bucket, few)
    apply_env(monkeypatch, s3_server.env(s3_proxy.endpoint))
    requests, read = requests_of(s3_proxy, prefix, "loop", {"block_cache_bytes": "0"})
    assert read == digests(few) and requests >= 50, s3_proxy.summary()


def test_a_replaced_checkpoint_is_read_afresh_after_the_maximum_age_and_never_mixed(s3_server, s3_bucket):
    prefix = f"s3://{s3_bucket}/run/model.ckpt"
    first = {"w": np.full(1000, 1.0, np.float32), "b": np.full(10, 1.0, np.float32)}
    second = {"w": np.full(1000, 2.0, np.float32), "b": np.full(10, 2.0, np.float32)}
    save(s3_bucket, first)
    options = {"cache_max_age": "1"}
    assert fastckpt.load_variable(prefix, "w", storage_options=options)[0] == 1.0
    # Replaced by another process: this one learns of it only by asking the store again.
    writer = "import sys, numpy as np, fastckpt\nwith fastckpt.CheckpointWriter(sys.argv[1]) as w:\n"
    writer += "    w.add('w', np.full(1000, 2.0, np.float32)); w.add('b', np.full(10, 2.0, np.float32))"
    subprocess.run(python_command(writer, prefix), check=True)
    # Within the maximum age the first version is read whole, or the change is an error: never a mix of the two.
    seen = []
    for name in ("w", "b"):
        try:
            seen.append(float(fastckpt.load_variable(prefix, name, storage_options=options)[0]))
        except fastckpt.errors.DataLossError:
            seen.append(None)
    assert seen in ([1.0, 1.0], [None, None], [1.0, None], [None, 1.0]), seen
    time.sleep(1.2)
    reader = fastckpt.NewCheckpointReader(prefix, storage_options=options)
    for name, value in second.items():
        np.testing.assert_array_equal(reader.get_tensor(name), value)
