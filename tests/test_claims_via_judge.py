"""The Arc 3 claims give the same results when their labels come from the judge layer.

The paper's released labels go into the replay server as recorded replies; the claims then run
with `--dd-judge-base-url` pointing at it, through the real openai client, and must match the run
that reads the label files directly.
"""

import pytest

from dd.core import Cache
from dd.paper import ArtifactStore
from dd.judges.replay import ReplayServer, paper_recordings
from helpers import read_report, run_pytest

SELECTION = ["claims/arc3", "-k", "baseline or labels", "-q", "-p", "no:randomly"]


@pytest.fixture(scope="module")
def replay_url(artifact_root):
    with ReplayServer(paper_recordings(ArtifactStore(artifact_root))) as server:
        yield server.url


def comparable(entries):
    return {e["nodeid"]: (e["verdict"], e["outcome"], {k: v for k, v in e["metrics"].items()}) for e in entries}


def test_claims_from_replayed_judge_equal_claims_from_files(artifact_root, replay_url, tmp_path):
    from_files, from_judge = tmp_path / "files.json", tmp_path / "judge.json"
    code, out = run_pytest(*SELECTION, "--dd-report", str(from_files), artifacts_dir=artifact_root)
    assert code == 0, out
    code, out = run_pytest(*SELECTION, "--dd-report", str(from_judge), "--dd-judge-base-url", replay_url,
                           "--dd-judge-model", "replay", "--dd-cache", str(tmp_path / "cache"),
                           artifacts_dir=artifact_root)
    assert code == 0, out
    files, judge = read_report(from_files)["results"], read_report(from_judge)["results"]
    assert comparable(files) == comparable(judge)
    axis_entries = [e for e in judge if e["claim"].startswith("arc3.step3.labels")]
    assert len(axis_entries) == 5 and all("labels from the judge" in e["reasons"] for e in axis_entries)
    assert list(Cache(tmp_path / "cache").entries("judges")), "judge replies were not cached"
