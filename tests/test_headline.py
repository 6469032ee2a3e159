"""benchmarks/headline.py: its table, where it writes it, and the README quoting the newest one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def headline():
    spec = importlib.util.spec_from_file_location("headline", ROOT / "benchmarks" / "headline.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["headline"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("headline", None)


def row(figure: str, value: float, anchor_value: float | None = None, other: float = 0.02, **fields) -> dict:
    return {"figure": figure, "value": value, "unit": "u", "anchor": "a" if anchor_value else "",
            "anchor_value": anchor_value, "spread": "", "target": "", "met": None, "note": "", "other": other, **fields}


HEADER = {"date": "2026-12-06 20:00 UTC", "flags": "", "cpu": "cpu", "cores": 2, "cpu_flags": "avx2",
          "precision": "fp32", "torch": "2.13.0", "load_before": 0.2, "load_after": 0.9, "minutes": 19.5}


def test_the_ratio_is_the_value_over_its_same_run_anchor_and_loaded_rows_are_called_void(headline):
    table = headline.render([row("fast", 3.0, 2.0, target="<= 2", met=False), row("alone", 7.0),
                             row("busy", 1.0, 4.0, other=0.6)], HEADER)
    lines = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert "| 1.50× |" in lines["fast"] and "<= 2 (missed)" in lines["fast"]
    assert "×" not in lines["alone"]
    assert "| 0.250× |" not in lines["busy"] and "| 0.25× |" in lines["busy"]
    assert table.startswith(f"{headline.SECTION}, 2026-12-06 20:00 UTC")
    assert "1 row(s) shared the cores with more than 0.25 of a core of other work on average and are void." in table


def test_write_appends_to_results_and_replaces_only_the_readme_block(headline, tmp_path):
    readme, results = tmp_path / "README.md", tmp_path / "RESULTS.md"
    readme.write_text(f"intro\n{headline.BEGIN}\nold table\n{headline.END}\nrest\n")
    results.write_text("# Results\n\n## Older section\nkept\n")
    first = headline.render([row("x", 1.0, 2.0)], HEADER)
    headline.write(first, readme, results)
    second = headline.render([row("y", 5.0, 2.0)], {**HEADER, "date": "2026-12-07 09:00 UTC"})
    headline.write(second, readme, results)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{headline.END}\nrest\n") and "old table" not in text
    assert headline.readme_table(text) == second == headline.last_table(results.read_text())
    assert "kept" in results.read_text() and first in results.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "RESULTS.md"]  # no temporary left


def test_write_refuses_a_readme_without_the_markers_and_changes_nothing(headline, tmp_path):
    readme, results = tmp_path / "README.md", tmp_path / "RESULTS.md"
    readme.write_text("no markers\n")
    results.write_text("# Results\n")
    with pytest.raises(SystemExit, match="headline:begin"):
        headline.write(headline.render([row("x", 1.0)], HEADER), readme, results)
    assert results.read_text() == "# Results\n"


def test_the_scratch_cache_links_the_data_and_starts_without_models(headline, tmp_path, monkeypatch):
    real = tmp_path / "real"
    (real / "models" / "sentiment-quick").mkdir(parents=True)
    (real / "movie-reviews").mkdir()
    monkeypatch.setenv("GLASSFORMER_HOME", str(real))
    home = headline.scratch_home(tmp_path / "scratch")
    assert (home / "movie-reviews").resolve() == (real / "movie-reviews").resolve()
    assert list((home / "models").iterdir()) == []


def test_the_readme_quotes_the_newest_headline_table_of_results(headline):
    """The README's block is the last table headline.py appended to RESULTS.md, untouched by hand."""
    newest = headline.last_table((ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8"))
    quoted = headline.readme_table((ROOT / "README.md").read_text(encoding="utf-8"))
    if newest is None:
        assert quoted == "(no run yet)\n"
    else:
        assert quoted == newest


def test_other_work_counts_a_process_outside_the_block_and_not_the_blocks_own_children(headline):
    import subprocess

    spin = [sys.executable, "-c", "import time\nend = time.time() + 1.5\nwhile time.time() < end: pass"]
    with headline.OtherWork() as own:
        subprocess.run(spin, check=True)  # the job's own work: a waited-for child
    stranger = subprocess.Popen(spin)  # someone else's work, running beside the block
    try:
        with headline.OtherWork() as other:
            subprocess.run([sys.executable, "-c", "import time; time.sleep(1.2)"], check=True)
    finally:
        stranger.wait()
    # Background load adds the same to both; the stranger adds about one core, the block's own child nothing.
    assert other.cores > own.cores + 0.5
