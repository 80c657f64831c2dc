"""Teamwork end to end: remotes, a teammate's fresh clone, branch diffs and experiments.

Alice runs the tiny pipeline in a temporary git repository and pushes; Bob and Carol clone
it next to hers. The team remote is moto's S3 server on loopback (tests/s3server.py); the
default remote is the local directory that the project's own .dvc/config names.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, make_project, tool_env
from tests.s3server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, S3Server
from tools import scratch

pytestmark = pytest.mark.slow

BUCKET = "ds-prior-team"
COST_FN = "evaluate.cost.false_negative"
KEY_METRICS = ["test.prior.precision", "test.prior.recall", "test.prior.expected_cost", "threshold"]
# What DVC prints when it restores a stage from the run-cache instead of running it.
CACHED = "Stage '{}' is cached - skipping run, checking out outputs"
WEIGHTED = {"downsample.ratio": None, "train.balance": "weighted"}
RERUN_BY_WEIGHTED = ("downsample", "audit", "train", "evaluate", "bundle")

# Bob's credentials come from the environment (Alice's from .dvc/config.local).
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    "AWS_DEFAULT_REGION": REGION,
}


def sh(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run a command with the venv's tools (plus ``env``); fail with its output."""
    full_env = {**tool_env(), "NO_PROXY": "127.0.0.1,localhost", **(env or {})}
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def metrics_of(repo: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    return json.loads(sh(["dvc", "metrics", "show", "--json"], repo, env).stdout)


def set_params(repo: Path, changes: dict[str, Any]) -> None:
    """Write dotted-key ``changes`` into the repo's params.yaml."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = params
        for part in parents:
            node = node[part]
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def clone(source: Path, target: Path, endpoint: str | None = None) -> Path:
    """A teammate's full clone; with ``endpoint``, the S3 team remote is its default."""
    sh(["git", "clone", "-q", str(source), str(target)], source.parent)
    if endpoint is not None:
        sh(["dvc", "remote", "modify", "--local", "team", "endpointurl", endpoint], target)
        sh(["dvc", "remote", "default", "--local", "team"], target)
    return target


@pytest.fixture(scope="module")
def s3():
    server = S3Server().start()
    server.create_bucket(BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def alice(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> dict[str, Any]:
    """Alice's repo after a committed run, an S3 team remote and one experiment at c_FN = 5."""
    root = tmp_path_factory.mktemp("team")
    repo = make_project(root / "alice")
    shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")  # the shipped remotes
    sh(["dvc", "repro"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "baseline run"], repo)

    # The team remote: its URL goes to git; endpoint and credentials stay in config.local.
    sh(["dvc", "remote", "add", "team", f"s3://{BUCKET}/ds-prior"], repo)
    sh(["dvc", "remote", "modify", "--local", "team", "endpointurl", s3.endpoint_url], repo)
    sh(["dvc", "remote", "modify", "--local", "team", "access_key_id", ACCESS_KEY_ID], repo)
    sh(["dvc", "remote", "modify", "--local", "team", "secret_access_key", SECRET_ACCESS_KEY], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "team remote"], repo)
    baseline = metrics_of(repo)

    # An experiment in the workspace; its stage runs land in the local run-cache.
    exp = sh(["dvc", "exp", "run", "-S", f"{COST_FN}=5"], repo)
    sh(["git", "reset", "--hard", "-q"], repo)
    sh(["dvc", "checkout", "--force"], repo)
    return {
        "repo": repo,
        "root": root,
        "baseline": baseline,
        "exp_stdout": exp.stdout,
    }


@pytest.fixture(scope="module")
def interrupted_push(alice: dict[str, Any], s3: S3Server) -> dict[str, Any]:
    """Push to S3, killed after a few uploads (held by the server), then pushed again."""
    repo = alice["repo"]
    s3.gate.stall_after(4)
    pusher = subprocess.Popen(
        ["dvc", "push", "-r", "team", "--run-cache", "--jobs", "1"],
        cwd=repo,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    reached = s3.gate.reached.wait(timeout=120)
    os.killpg(pusher.pid, signal.SIGKILL)  # a crash or a dropped laptop lid, mid-upload
    pusher.communicate()
    s3.gate.release()
    keys_after_kill = s3.keys(BUCKET)
    status_after_kill = sh(["dvc", "status", "-c", "-r", "team"], repo).stdout
    resumed = sh(["dvc", "push", "-r", "team", "--run-cache"], repo)
    return {
        "reached": reached,
        "returncode": pusher.returncode,
        "keys_after_kill": keys_after_kill,
        "status_after_kill": status_after_kill,
        "resumed_stdout": resumed.stdout,
        "keys_final": s3.keys(BUCKET),
        "status_final": sh(["dvc", "status", "-c", "-r", "team"], repo).stdout,
    }


@pytest.fixture(scope="module")
def bob(alice: dict[str, Any], interrupted_push: dict[str, Any], s3: S3Server) -> dict[str, Any]:
    """Bob's fresh clone: dry-run before any data, then pull with the run-cache, then repro."""
    repo = clone(alice["repo"], alice["root"] / "bob", endpoint=s3.endpoint_url)
    dry = sh(["dvc", "repro", "--pull", "--allow-missing", "--dry"], repo, AWS_ENV, check=False)
    pull = sh(["dvc", "pull", "--run-cache"], repo, AWS_ENV)
    repro = sh(["dvc", "repro"], repo, AWS_ENV)
    return {"repo": repo, "dry": dry, "pull": pull, "repro": repro}


def test_default_remote_is_a_directory_beside_the_clones(alice: dict[str, Any]):
    repo, root = alice["repo"], alice["root"]
    storage = root / "ds-prior-pipeline-dvc-storage"
    assert not storage.exists()
    assert "Everything is up to date" not in sh(["dvc", "push"], repo).stdout
    assert (storage / "files" / "md5").is_dir()  # resolved from .dvc/, so beside the repo

    sibling = clone(repo, root / "alice-laptop")
    sh(["dvc", "pull"], sibling)
    assert (sibling / "models" / "model.keras").is_file()
    assert "in sync" in sh(["dvc", "status", "-c"], sibling).stdout
    assert "up to date" in sh(["dvc", "status"], sibling).stdout


def test_an_interrupted_push_resumes_and_completes(
    interrupted_push: dict[str, Any], alice: dict[str, Any], tmp_path: Path, s3: S3Server
):
    assert interrupted_push["reached"], "the push never reached the stalled upload"
    assert interrupted_push["returncode"] == -signal.SIGKILL
    after_kill, final = interrupted_push["keys_after_kill"], interrupted_push["keys_final"]
    assert 0 < len(after_kill) < len(final), (len(after_kill), len(final))
    assert set(after_kill) <= set(final)
    assert "new:" in interrupted_push["status_after_kill"]
    assert "files pushed" in interrupted_push["resumed_stdout"]
    assert "Cache and remote 'team' are in sync" in interrupted_push["status_final"]
    assert any(key.startswith("ds-prior/runs/") for key in final)  # the run-cache went too

    # Everything arrived: a fresh clone pulls it all and is in sync with the remote.
    repo = clone(alice["repo"], tmp_path / "fresh", endpoint=s3.endpoint_url)
    sh(["dvc", "pull"], repo, AWS_ENV)
    assert "in sync" in sh(["dvc", "status", "-c"], repo, AWS_ENV).stdout
    assert "up to date" in sh(["dvc", "status"], repo, AWS_ENV).stdout


def test_credentials_stay_out_of_git(bob: dict[str, Any]):
    repo = bob["repo"]
    tracked = sh(
        ["git", "grep", "-l", "-e", SECRET_ACCESS_KEY, "-e", "endpointurl"], repo, check=False
    )
    assert tracked.returncode == 1, tracked.stdout  # no match in any tracked file
    assert "s3://" in (repo / ".dvc" / "config").read_text()
    assert "endpointurl" in (repo / ".dvc" / "config.local").read_text()


def test_fresh_clone_pulls_and_reruns_nothing(bob: dict[str, Any], alice: dict[str, Any]):
    dry = bob["dry"]
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Running stage" not in dry.stdout, dry.stdout
    assert "fetched" in bob["pull"].stdout
    assert "Running stage" not in bob["repro"].stdout, bob["repro"].stdout
    assert "Data and pipelines are up to date" in bob["repro"].stdout
    assert metrics_of(bob["repo"], AWS_ENV) == alice["baseline"]
    assert "in sync" in sh(["dvc", "status", "-c"], bob["repo"], AWS_ENV).stdout


@pytest.fixture(scope="module")
def weighted(alice: dict[str, Any]) -> dict[str, Any]:
    """Alice's branch `weighted` (weighted loss instead of downsampling), run and pushed."""
    repo = alice["repo"]
    sh(["git", "checkout", "-q", "-b", "weighted"], repo)
    try:
        set_params(repo, WEIGHTED)
        ran = sh(["dvc", "repro"], repo).stdout
        sh(["git", "add", "-A"], repo)
        sh(["git", "commit", "-qm", "weighted loss instead of downsampling"], repo)
        pushed = sh(["python", "-m", "tools.team", "push", "-r", "team"], repo).stdout
        metrics = metrics_of(repo)
    finally:
        sh(["git", "checkout", "-q", "main"], repo)
        sh(["dvc", "checkout", "--force"], repo)
    return {"stdout": ran, "metrics": metrics, "pushed": pushed}


def test_branches_compare_in_a_fresh_clone(alice: dict[str, Any], weighted: dict[str, Any]):
    ran = weighted["stdout"]
    assert "Running stage 'train'" in ran and "Running stage 'ingest'" not in ran, ran

    carol = clone(alice["repo"], alice["root"] / "carol")
    sh(["git", "checkout", "-q", "weighted"], carol)  # no dvc pull: diffs read git only

    params = json.loads(sh(["dvc", "params", "diff", "main", "--json"], carol).stdout)
    changed_params = params["params.yaml"]
    assert set(changed_params) == {"downsample.ratio", "train.balance"}, changed_params
    assert changed_params["downsample.ratio"]["old"] == 2
    assert changed_params["downsample.ratio"]["new"] is None
    assert changed_params["train.balance"] == {"old": "downsample", "new": "weighted"}

    metrics = json.loads(sh(["dvc", "metrics", "diff", "main", "--json"], carol).stdout)
    changed = {key for keys in metrics.values() for key in keys}
    assert {"test.prior.precision", "test.prior.expected_cost", "threshold"} <= changed, changed
    text = sh(["dvc", "metrics", "diff", "main"], carol).stdout
    assert "reports/metrics.json" in text and "test.prior.expected_cost" in text

    plots = json.loads(sh(["dvc", "plots", "diff", "main", "--json"], carol).stdout)
    assert not plots.get("errors"), plots["errors"]
    revisions = {name: set(entry["revisions"]) for name, v in plots["data"].items() for entry in v}
    # overlays from dvc.yaml's top level, and files drawn alone as their stage declares them
    pr, cost, loss = (
        "reports/evaluate_plots/precision_recall.json",
        "reports/evaluate_plots/cost.json",
        "reports/train/plots/metrics/train/loss.tsv",
    )
    for name in ("dev_a_precision", pr, cost, loss):
        assert revisions[name] == {"main", "workspace"}, (name, revisions)


def test_already_run_values_come_from_the_run_cache(
    bob: dict[str, Any], alice: dict[str, Any], weighted: dict[str, Any]
):
    """Bob sets Alice's branch values on main: nothing runs; then back: nothing runs."""
    # `tools.team push` sent what the records point to and `dvc push --run-cache` leaves out
    sent = re.search(r"then (\d+) more file\(s\) the records point to", weighted["pushed"])
    assert sent and int(sent.group(1)) > 0, weighted["pushed"]
    repo = bob["repo"]
    set_params(repo, WEIGHTED)
    out = sh(["dvc", "repro", "--pull"], repo, AWS_ENV).stdout  # fetches the cached run's outputs
    for stage in RERUN_BY_WEIGHTED:
        assert CACHED.format(stage) in out, out
    assert "Running stage" not in out, out
    assert metrics_of(repo, AWS_ENV) == weighted["metrics"] != alice["baseline"]

    # Back to main's values. `--pull` again: Bob's cache lacks the metrics his checkout got
    # from git (DVC caches `cache: false` outputs only for the runs it makes itself).
    set_params(repo, {"downsample.ratio": 2, "train.balance": "downsample"})
    out = sh(["dvc", "repro", "--pull"], repo, AWS_ENV).stdout
    for stage in RERUN_BY_WEIGHTED:
        assert CACHED.format(stage) in out, out
    assert "Running stage" not in out, out
    assert metrics_of(repo, AWS_ENV) == alice["baseline"]

    # Bob's push works although records he fetched point to outputs he never pulled
    pushed = sh(["python", "-m", "tools.team", "push"], repo, AWS_ENV).stdout
    assert "skipped" in pushed and "Traceback" not in pushed, pushed


def test_every_stage_is_recorded_in_the_run_cache(alice: dict[str, Any]):
    """A stage with a plain `cache: false` output would never be run-cached (DVC 3.67).

    Every stage that exists in this project (a `foreach` stage over an empty mapping, such as
    external_scores with no scores declared, has no instance) has a run-cache record of its
    command (`python -m stages.<module> ...`)."""
    repo = alice["repo"]
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    present = {
        name: re.search(r"-m stages\.(\w+) ", stage.get("cmd") or stage["do"]["cmd"])[1]
        for name, stage in stages.items()
        if "foreach" not in stage or scratch.foreach_items(stage, params)
    }
    assert "external_scores" not in present and {"source", "train", "monitor"} <= set(present)
    runs = repo / ".dvc" / "cache" / "runs"
    commands = {yaml.safe_load(record.read_text())["cmd"] for record in runs.glob("*/*/*")}
    recorded = {
        name for name, module in present.items() if any(f"stages.{module} " in c for c in commands)
    }
    assert recorded == set(present)


def test_run_cache_entries_lists_every_record(tmp_path: Path):
    from tools.team import run_cache_entries

    assert list(run_cache_entries(tmp_path / "runs")) == []
    for key, value in [("ab12", "v1"), ("ab12", "v2"), ("cd34", "v3")]:
        record = tmp_path / "runs" / key[:2] / key / value
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text("cmd: x\n")
    (tmp_path / "runs" / "ab" / "ab12" / ".q1w2e3.tmp").write_text("partial")  # DVC mid-write
    assert list(run_cache_entries(tmp_path / "runs")) == [
        ("ab12", "v1"),
        ("ab12", "v2"),
        ("cd34", "v3"),
    ]


def test_experiments_single_and_queued_sweep(alice: dict[str, Any]):
    repo = alice["repo"]
    assert "Ran experiment(s)" in alice["exp_stdout"]
    for value in (20, 2):
        queued = sh(["dvc", "exp", "run", "--queue", "-S", f"{COST_FN}={value}"], repo).stdout
        assert "Queued experiment" in queued
    try:
        sh(["dvc", "exp", "run", "--run-all"], repo)
    finally:
        sh(["dvc", "queue", "stop"], repo, check=False)
    status = sh(["dvc", "queue", "status"], repo).stdout
    assert status.count("Success") == 2, status

    table = sh(["dvc", "exp", "show", "--csv"], repo).stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert set(KEY_METRICS) <= set(rows[0]), list(rows[0])
    by_cost = {row[COST_FN]: row for row in rows if row["Experiment"]}
    assert {"5", "20", "2"} <= set(by_cost), table
    for value in ("5", "20", "2"):
        for key in KEY_METRICS:
            assert by_cost[value][key] not in ("", "-"), (value, key)
    # On dev_b, where the threshold minimises it, the expected cost grows with c_FN.
    dev_b_cost = {value: float(by_cost[value]["dev_b.prior.expected_cost"]) for value in by_cost}
    assert dev_b_cost["2"] <= dev_b_cost["5"] <= dev_b_cost["20"], dev_b_cost
    assert dev_b_cost["2"] < dev_b_cost["20"], dev_b_cost
