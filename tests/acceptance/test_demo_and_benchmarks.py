"""Whole processes: the demo as a user runs it, and every benchmark at smoke size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get(
    "ECHELON_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def run(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_demo_runs_end_to_end_on_a_fresh_directory(tmp_path: Path) -> None:
    result = run([sys.executable, "-m", "echelon", "demo", "--json"], cwd=tmp_path)
    summary = json.loads(result.stdout)
    assert summary["rows"] == 10_000
    assert summary["imported"] + summary["rejected"] == 10_000
    # The sample plants about 2% malformed numbers and 10% who declined marketing.
    assert 100 < summary["rejected"] < 400
    assert sum(summary["rejected_by_reason"].values()) == summary["rejected"]
    assert 0.85 < summary["marketing_consent"] / summary["imported"] < 0.95
    assert summary["opt_outs_imported"] == 200
    assert summary["marketing_reachable"] < summary["marketing_consent"]
    assert (tmp_path / "demo-data" / "echelon.db").exists()
    # Every imported member is either planned or blocked with a reason.
    assert summary["planned"] == summary["marketing_reachable"]
    assert summary["planned"] + sum(summary["blocked"].values()) == summary["imported"]
    assert summary["blocked"]["opt_out"] == 200
    assert summary["sample"].startswith("【星河商城】")
    assert summary["sample"].endswith("拒收请回复R")
    # The sending half: every planned message went out once and nearly all came back.
    assert summary["sent"] == summary["planned"]
    final = summary["delivered"] + sum(summary["failed"].values())
    assert final + summary["awaiting_receipt"] + summary["unknown"] == summary["sent"]
    assert summary["awaiting_receipt"] + summary["unknown"] < summary["sent"] * 0.01
    assert 0.93 < summary["delivered"] / summary["sent"] < 0.995
    assert "MK:0001" in summary["failed"]  # the planted 空号
    assert 0 < summary["latency_ms"]["p50"] <= summary["latency_ms"]["p95"] < 10_000
    assert summary["opt_outs"] > 0 and summary["replies"] > summary["opt_outs"]
    assert summary["seconds"] < 60
    assert float(summary["cost_yuan"]) >= 0.06 * summary["parts"] * 0.9


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "bench").glob("bench_*.py")))
def test_benchmark_runs_at_smoke_size(script: str, tmp_path: Path) -> None:
    smoke = {
        "bench_import.py": ["--size", "10000", "--postgres", POSTGRES_URL],
        "bench_content.py": ["--size", "10000"],
        "bench_smpp.py": ["--count", "10000"],
        "bench_planning.py": ["--size", "10000", "--postgres", POSTGRES_URL],
        "bench_dispatch.py": ["--size", "10000", "--postgres", POSTGRES_URL],
        "bench_segments.py": ["--size", "2000", "--postgres", POSTGRES_URL],
        "bench_journeys.py": ["--size", "2000", "--postgres", POSTGRES_URL],
        "bench_redirect.py": ["--size", "3000", "--rate", "1000", "--postgres", POSTGRES_URL],
        "bench_report.py": ["--size", "20000", "--postgres", POSTGRES_URL],
        "bench_send_api.py": ["--size", "300", "--warmup", "20", "--postgres", POSTGRES_URL],
    }
    args = smoke.get(script)
    if args is None:
        pytest.fail(f"{script} has no smoke size here: add it to the table above")
    result = run([sys.executable, str(ROOT / "bench" / script), *args], cwd=tmp_path, timeout=600)
    assert result.stdout.strip(), "a benchmark must print its figures"
