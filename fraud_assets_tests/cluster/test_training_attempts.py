"""How the cluster training reports a worker it lost (no cluster needed: the loss is staged)."""

from __future__ import annotations

import pytest

from fraud_assets.core.cluster import external_memory
from fraud_assets.core.cluster.errors import ClusterUnavailable


class _Frame:
    def to_delayed(self) -> list:
        return ["part-0", "part-1"]


class _Scheduler:
    """Two workers, then none: the one training lost them and no nanny has brought them back."""

    def __init__(self) -> None:
        self.calls = 0

    def scheduler_info(self, n_workers: int) -> dict:
        self.calls += 1
        return {"workers": {"tcp://a": {}, "tcp://b": {}} if self.calls == 1 else {}}


def test_an_empty_cluster_after_a_loss_names_the_loss(monkeypatch):
    def lose_a_worker(*_args):
        raise external_memory._WorkerLeft("worker tcp://a left the cluster during training", blocked=[])

    monkeypatch.setattr(external_memory, "_train_once", lose_a_worker)
    monkeypatch.setattr(external_memory, "_restart_blocked_peers", lambda *_args: None)
    with pytest.raises(ClusterUnavailable) as refused:
        external_memory.train_streaming(_Scheduler(), _Frame(), preprocessor=None, boosting=None)
    assert str(refused.value) == ("no Dask worker is left to train on "
                                  "(worker tcp://a left the cluster during training)")


class _Running:
    status = "pending"

    def done(self) -> bool:
        return False


class _OneWorkerGone:
    def scheduler_info(self, n_workers: int) -> dict:
        return {"workers": {"tcp://b": {}}}


def test_a_worker_that_leaves_is_named_with_where_to_look_and_its_peer_is_blocked(monkeypatch):
    monkeypatch.setattr(external_memory, "wait", lambda *_args, **_kwargs: None)
    with pytest.raises(external_memory._WorkerLeft) as left:
        external_memory._wait_while_all_stay(_OneWorkerGone(), [_Running(), _Running()], ["tcp://a", "tcp://b"])
    assert str(left.value).startswith("worker tcp://a left the cluster during training")
    assert "its log says why" in str(left.value) and "memory limit" in str(left.value)
    assert left.value.blocked == ["tcp://b"]
