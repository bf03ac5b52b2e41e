"""The engine group: its keys are checked at load, a Ray connection is set up as configured (127.0.0.1, token
authentication left on), and `tetrad doctor --env` says where the stages would run, without starting a cluster."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tetrad.cluster import init_kwargs
from tetrad.envcheck import engine_check
from tetrad.params import ConfigError, EngineParams, load_params, params_from_dict

ROOT = Path(__file__).resolve().parents[2]


def _with_engine(**engine) -> dict:
    data = OmegaConf.to_container(OmegaConf.load(ROOT / "params.yaml"), resolve=True)
    data["engine"] = {**data["engine"], **engine}
    return data


def test_engine_keys_are_checked_at_load():
    assert params_from_dict(_with_engine(name="ray", actor_gpus=0.25)).engine.actor_gpus == 0.25
    with pytest.raises(ConfigError, match="engine.name: 'spark' is not one of"):
        params_from_dict(_with_engine(name="spark"))
    with pytest.raises(ConfigError, match=r"engine.window_shards: 0 is outside"):
        params_from_dict(_with_engine(window_shards=0))
    with pytest.raises(ConfigError, match="unknown config key 'engine.workers'"):
        params_from_dict(_with_engine(workers=3))


def test_a_local_cluster_binds_to_the_configured_host_and_serves_no_dashboard_by_default():
    kwargs = init_kwargs(EngineParams(name="ray", num_cpus=2))
    assert kwargs["address"] == "local" and kwargs["_node_ip_address"] == "127.0.0.1"
    assert kwargs["dashboard_host"] == "127.0.0.1" and kwargs["include_dashboard"] is False
    assert kwargs["num_cpus"] == 2
    assert init_kwargs(EngineParams(name="ray", address="10.0.0.5:6379"))["address"] == "10.0.0.5:6379"


def test_auto_needs_ray_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ConfigError, match="RAY_ADDRESS, which is not set"):
        init_kwargs(EngineParams(name="ray", address="auto"))
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert init_kwargs(EngineParams(name="ray", address="auto"))["address"] == "auto"


def test_doctor_env_reports_the_engine(monkeypatch):
    params = load_params(ROOT / "params.yaml")
    local = engine_check(params)
    assert local.state == "ok" and local.detail.startswith("local: extract in 2 worker processes")
    ray_local = engine_check(replace(params, engine=EngineParams(name="ray", num_cpus=4)))
    assert ray_local.state == "ok" and "one-machine cluster on 127.0.0.1 (4 CPUs, all GPUs)" in ray_local.detail
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    auto = engine_check(replace(params, engine=EngineParams(name="ray", address="auto")))
    assert auto.state == "FAIL" and "RAY_ADDRESS" in auto.detail


def test_doctor_env_takes_overrides_as_dvc_exp_run_would(monkeypatch, capsys):
    import json

    from tetrad.cli import main

    monkeypatch.chdir(ROOT)
    main(["doctor", "--env", "--no-smoke", "--json", "engine=ray", "engine.num_cpus=3"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert "one-machine cluster on 127.0.0.1 (3 CPUs, all GPUs)" in checks["engine"]["detail"]
