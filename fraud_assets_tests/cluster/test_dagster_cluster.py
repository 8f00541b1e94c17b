"""The Dagster graph with the ``dask`` resource pointed at a real cluster: ``fraud_model`` trained
by the workers from the stored splits."""

from __future__ import annotations

import dagster as dg
import pytest

from fraud_assets.core.cluster.training import ENGINE
from fraud_assets.definitions import build_definitions, build_resources
from fraud_assets.defs.io_managers import StoredTable
from fraud_assets.defs.resources import DaskCluster
from fraud_assets_tests.cluster.conftest import local_project
from fraud_assets_tests.graph.conftest import FAST_TRAINING

pytestmark = [pytest.mark.dask, pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with local_project(tmp_path_factory.mktemp("project"), 60_000) as root:
        yield root


@pytest.fixture(scope="module")
def instance(project):
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture(scope="module")
def one_process_model(project, instance):
    """The training graph in one process: the splits it stores and the model it trains."""
    defs = build_definitions("local")
    result = defs.resolve_job_def("training_job").execute_in_process(instance=instance, run_config=FAST_TRAINING)
    assert result.success
    return defs.resources["storage"].registry().load_latest()


def test_fraud_model_trains_on_the_cluster_from_the_stored_splits(project, instance, one_process_model,
                                                                  dask_cluster, monkeypatch):
    def never_here(self):
        raise AssertionError(f"{self.path} was read by the Dagster process, not by the workers")

    monkeypatch.setattr(StoredTable, "load", never_here)
    defs = build_definitions("local")
    resources = {**build_resources("local"), "dask": DaskCluster(scheduler=dask_cluster.address)}
    result = dg.materialize(list(defs.assets), selection=["fraud_model"], resources=resources,
                            instance=instance, run_config=FAST_TRAINING)
    assert result.success
    model = resources["storage"].registry().load_latest()
    assert model.version != one_process_model.version
    assert model.manifest["training"]["engine"] == ENGINE
    assert model.manifest["training"]["split_strategy"] == "stored"
    # The same splits and preprocessing as the one-process model: same rows per part.
    assert model.manifest["data"] == one_process_model.manifest["data"]
    assert model.preprocessor.to_dict() == one_process_model.preprocessor.to_dict()
    one, cluster = one_process_model.metrics["test"]["auprc"], model.metrics["test"]["auprc"]
    assert cluster >= one - 0.05, (one, cluster)
