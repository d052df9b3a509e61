"""The lint benchmark runs end to end on a small batch and reports every figure (never asserted: not a timed test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.lint import markdown, run


@pytest.mark.slow
def test_the_lint_benchmark_reports_both_paths_against_pkilint(tmp_path: Path) -> None:
    pytest.importorskip("pkilint", reason="pkilint not installed (dev extra)")
    report = run(40, 10, tmp_path)
    assert report["certificates"] == 40 and report["sample"] == 10
    assert report["same_findings_on_sample"] is True
    assert report["templated"] == 38  # a DS and a KA template: all but their two exemplars
    assert set(report) >= {"pkilint_per_s", "template_per_s", "full_per_s", "template_vs_pkilint", "full_vs_pkilint"}
    assert "## Profile lint" in markdown(report) and "| workbench batch |" in markdown(report)
