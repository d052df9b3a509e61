"""The benchmark driver runs end to end on a small scale (its figures are not asserted: never a timed test)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography import x509

from bench.fleet import make_device_csrs
from bench.issuance import markdown, run


def test_the_device_csrs_are_a_valid_list(tmp_path: Path) -> None:
    devices = make_device_csrs(tmp_path, 6)
    rows = devices.read_text().splitlines()
    assert rows[0] == "eui64,usage,csr" and len(rows) == 7
    eui64, usage, name = rows[1].split(",")
    csr = x509.load_der_x509_csr((tmp_path / name).read_bytes())
    assert csr.is_signature_valid and csr.subject == x509.Name([]) and usage == "ds" and len(eui64) == 16


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_the_benchmark_runs_and_reports_every_figure(tmp_path: Path) -> None:
    report = run(40, 0, [200], tmp_path)
    assert report["issuance"]["software_1"]["issued"] == 40
    assert report["openssl_ca_infiles"]["certificates"] == 40
    assert set(report["ratios"]) >= {"software_1_vs_limit", "software_2_vs_1", "software_1_vs_openssl_ca"}
    assert report["crl"]["200"]["openssl_gencrl_seconds"] > 0
    text = markdown(report)
    assert "## Signing limit" in text and "| 200 |" in text and f"cores seen: {report['machine']['cores_seen']}" in text


@pytest.mark.slow
def test_the_inventory_benchmark_runs_on_a_small_scale(tmp_path: Path) -> None:
    from bench.inventory import markdown as inventory_markdown
    from bench.inventory import run as inventory_run

    report = inventory_run(300, tmp_path, rounds=1)  # one round: the figures are not judged here
    assert report["read_sql"]["rows"] == report["frame_warm"]["rows"] == 302  # plus the two CA certificates
    assert [t["target"][:10] for t in report["targets"]] == [
        "typed fram",
        "notebook <",
        "peak memor",
        "notebook <",
        "every view",
    ]
    assert "## Inventory (synthetic rows)" in inventory_markdown(report)


@pytest.mark.slow
def test_the_evidence_benchmark_times_every_stage(tmp_path: Path) -> None:
    from bench.evidence import markdown as evidence_markdown
    from bench.evidence import run as evidence_run

    report = evidence_run(40, tmp_path, pdf=False)
    assert report["issued"] == 40 and all(v >= 0 for v in report["stages"].values())
    assert list(report["stages"])[0].startswith("checks: every certificate") and "report notebook" in report["stages"]
    assert "| checks: the other 35 controls" in evidence_markdown(report)


def test_a_benchmark_replaces_only_its_own_section(tmp_path: Path) -> None:
    from bench.docs import replace_section

    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nhead\n\n<!-- inventory benchmark -->\n## Inventory\n\nold\n")
    replace_section(doc, "<!-- evidence benchmark -->", "<!-- evidence benchmark -->\n## Evidence\n\nfirst\n")
    replace_section(doc, "<!-- inventory benchmark -->", "<!-- inventory benchmark -->\n## Inventory\n\nnew\n")
    replace_section(doc, "<!-- evidence benchmark -->", "<!-- evidence benchmark -->\n## Evidence\n\nsecond\n")
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nhead\n\n<!-- inventory benchmark -->")
    assert "new" in text and "second" in text and "old" not in text and "first" not in text


def test_the_fuzzing_campaign_counts_its_cases(tmp_path: Path) -> None:
    from bench.fuzz import campaign
    from bench.fuzz import markdown as fuzz_markdown

    results = campaign(25, tmp_path)
    assert [r["cases"] for r in results] == [25] * 5
    assert "| device lists (random CSV text) | 25 |" in fuzz_markdown(results, 25)
