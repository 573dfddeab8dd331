"""``--scheduler``: a real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1.

The workers preload the stage stand-ins (``tests/_pipeline_standins.py``). Every process is
started with bounded waits and always torn down.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import _pipeline_standins as standins
import pytest

from bordewatch.border import load_border
from bordewatch.errors import SchedulerError
from bordewatch.pipeline import DetectRequest, RunSummary, run_detect

STANDINS = Path(standins.__file__).resolve()


@pytest.fixture(autouse=True)
def _standins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the stages by the stand-ins for this test only."""
    standins.install(monkeypatch)


DASK = Path(sys.executable).with_name("dask")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_workers(address: str, n: int, timeout_s: float = 150.0) -> None:
    from distributed import Client

    with Client(address, timeout=60, set_as_default=False) as client:
        client.wait_for_workers(n, timeout=timeout_s)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, object]]:
    if not DASK.exists():
        pytest.skip(f"no dask command beside {sys.executable}")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "BW_TEST_SLEEP": "0.6"}
    log = open(tmp_path / "dask.log", "w")
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([str(DASK), *args], env=env, stdout=log, stderr=log)
        procs.append(proc)
        return proc

    try:
        start("scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0")
        workers = [
            start(
                "worker",
                address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--preload",
                str(STANDINS),
                "--name",
                f"w{i}",
                "--no-dashboard",
            )
            for i in range(2)
        ]
        _wait_for_workers(address, 2)
        yield {"address": address, "workers": workers}
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


@pytest.fixture
def scene(tmp_path: Path) -> dict[str, Path]:
    border_path = tmp_path / "line.geojson"
    coords = [[129.0, 42.0], [129.06, 42.004]]
    border_path.write_text(
        json.dumps(
            {
                "type": "Feature",
                "properties": {"name": "T"},
                "geometry": {"type": "LineString", "coordinates": coords},
            }
        )
    )
    before, after = standins.make_scene(tmp_path, load_border(border_path), rng=5)
    return {"border": border_path, "before": before, "after": after, "root": tmp_path}


def _request(scene: dict[str, Path], out: str, **kw: object) -> DetectRequest:
    return DetectRequest(
        before=(scene["before"],),
        after=(scene["after"],),
        out_dir=scene["root"] / out,
        border=scene["border"],
        corridor_m=500.0,
        overlap_m=20.0,
        progress=False,
        **kw,
    )  # type: ignore[arg-type]


def test_job_runs_on_an_existing_cluster_and_survives_a_killed_worker(
    cluster: dict[str, object], scene: dict[str, Path]
) -> None:
    reference = run_detect(_request(scene, "local", workers=1))
    assert reference.tiles_done == 5
    box: dict[str, object] = {}

    def job() -> None:
        try:
            box["summary"] = run_detect(_request(scene, "remote", scheduler=cluster["address"]))
        except BaseException as err:  # reported below
            box["error"] = err

    thread = threading.Thread(target=job)
    thread.start()
    cache = scene["root"] / "remote" / ".tiles"
    deadline = time.monotonic() + 90
    while len(list(cache.glob("T-*[0-9a-f].json"))) < 1 and thread.is_alive():
        assert time.monotonic() < deadline, "no tile finished on the cluster"
        time.sleep(0.05)
    assert thread.is_alive(), "the run ended before a worker could be killed"
    victim = cluster["workers"][0]  # type: ignore[index]
    victim.send_signal(signal.SIGKILL)  # lose a worker mid-run
    thread.join(timeout=120)
    assert not thread.is_alive(), "the run did not finish after a worker was killed"
    assert "error" not in box, box.get("error")
    summary = box["summary"]
    assert isinstance(summary, RunSummary)
    assert summary.tiles_done == 5 and not summary.failed
    local = (scene["root"] / "local" / "detections.geojson").read_bytes()
    assert (scene["root"] / "remote" / "detections.geojson").read_bytes() == local


def test_unreachable_scheduler_fails_fast(scene: dict[str, Path]) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(SchedulerError, match=f"no Dask scheduler at {address}"):
        run_detect(_request(scene, "nowhere", scheduler=address))
    assert time.monotonic() - start < 60  # a hang guard, not a speed target


def _worker_settings(dask_worker) -> dict:
    from bordewatch.pipeline import slow_worker_settings

    return {
        "slow": slow_worker_settings(),
        "sampling": "profile" in dask_worker.periodic_callbacks,
        "omp": os.environ.get("OMP_NUM_THREADS"),
    }


def test_local_cluster_workers_keep_glibc_adaptive_and_skip_the_profiler(monkeypatch) -> None:
    # Dask's default MALLOC_TRIM_THRESHOLD_ and 10 ms stack sampling made every tile
    # 30-60 % slower in a worker than in-process (benchmarks/RESULTS.md)
    from distributed import Client

    from bordewatch import pipeline

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    cluster = pipeline._local_cluster(1)
    try:
        with Client(cluster, set_as_default=False) as client:
            settings = list(client.run(_worker_settings).values())
    finally:
        cluster.close()
    assert settings == [{"slow": [], "sampling": False, "omp": "1"}]


class _FakeClient:
    def __init__(self, found: dict[str, list[str]]) -> None:
        self.found = found

    def run(self, func):
        return self.found


def test_slow_settings_on_a_users_cluster_give_one_warning(caplog) -> None:
    from bordewatch import pipeline

    with caplog.at_level("WARNING", logger="bordewatch.pipeline"):
        pipeline._warn_slow_workers(
            _FakeClient(
                {
                    "tcp://a:1": ["MALLOC_TRIM_THRESHOLD_ set", "the stack-sampling profiler on"],
                    "tcp://b:1": ["the stack-sampling profiler on"],
                    "tcp://c:1": [],
                }
            )
        )
        pipeline._warn_slow_workers(_FakeClient({"tcp://a:1": [], "tcp://b:1": []}))
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "2 of 3 Dask workers run with MALLOC_TRIM_THRESHOLD_ set and the stack-sampling "
        "profiler on: tiles take 30-60 % longer; see the README, 'Running big jobs', for the "
        "worker config file"
    ]


def test_slow_worker_settings_reads_this_process(monkeypatch) -> None:
    import dask.config

    from bordewatch.pipeline import slow_worker_settings

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        assert slow_worker_settings() == ["MALLOC_TRIM_THRESHOLD_ set"]
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    with dask.config.set({"distributed.worker.profile.enabled": True}):
        assert slow_worker_settings() == ["the stack-sampling profiler on"]
