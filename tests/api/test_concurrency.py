"""Many readers at once, and readers while a Saver writes new checkpoints and deletes old ones."""

import threading

import fastckpt
import numpy as np


def values_of(step):
    return {f"layer{i}/w": np.full((64, 256), step * 10 + i, np.float32) for i in range(6)}


def test_many_threads_share_one_reader(tmp_path):
    prefix = fastckpt.Saver().save(values_of(1), str(tmp_path / "m.ckpt"), write_meta_graph=False)
    reader = fastckpt.load_checkpoint(prefix)
    failures = []

    def read():
        try:
            for _ in range(30):
                for name, value in reader.get_tensors().items():
                    assert np.array_equal(value, values_of(1)[name])
                assert reader.get_slice("layer3/w")[5, 7] == 13
        except BaseException as err:  # reported by the main thread
            failures.append(err)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_reader_keeps_working_while_a_saver_deletes_its_checkpoint(tmp_path):
    saver = fastckpt.Saver(max_to_keep=1)
    first = saver.save(values_of(0), str(tmp_path / "model.ckpt"), global_step=0)
    reader = fastckpt.load_checkpoint(first)
    done = threading.Event()
    failures = []

    def save_more():
        try:
            for step in range(1, 20):
                saver.save(values_of(step), str(tmp_path / "model.ckpt"), global_step=step)
        except BaseException as err:
            failures.append(err)
        finally:
            done.set()

    thread = threading.Thread(target=save_more)
    thread.start()
    reads = 0
    while not done.is_set() or reads < 5:
        for name, value in reader.get_tensors().items():
            assert np.array_equal(value, values_of(0)[name])
        reads += 1
    thread.join()
    assert failures == []
    assert not (tmp_path / "model.ckpt-0.index").exists()  # deleted while mapped, still read above
    latest = fastckpt.latest_checkpoint(str(tmp_path))
    assert latest.endswith("model.ckpt-19")
    for name, value in fastckpt.load_checkpoint(latest).get_tensors().items():
        assert np.array_equal(value, values_of(19)[name])
