"""The Markdown report of scripts/gpu_check.sh, from the logs it wrote: machine and versions, nvidia-smi, one
row per test (from pytest's JUnit XML), the speed table of benchmarks/gpu_suite.py. Stages not run yet are
reported as such, so the report can be rewritten after each stage."""

import argparse
import datetime
import platform
import subprocess
import xml.etree.ElementTree as ElementTree
from importlib import metadata
from pathlib import Path

SUITE_HEADER = "sarexp GPU suite"


def versions() -> list[str]:
    lines = [f"- Python {platform.python_version()} on {platform.node()} ({platform.platform()})"]
    try:
        import torch

        cuda = torch.version.cuda or "none"
        lines.append(f"- torch {torch.__version__}, CUDA {cuda}, cuDNN {torch.backends.cudnn.version()}")
        if torch.cuda.is_available():
            names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            lines.append(f"- {torch.cuda.device_count()} GPU(s): {names}")
        else:
            lines.append("- no CUDA device visible to torch")
    except ImportError as error:
        lines.append(f"- torch not importable: {error}")
    for package in ("lightning", "pykeops", "diffusers", "transformers"):
        try:
            lines.append(f"- {package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            lines.append(f"- {package}: not installed")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    lines.append(f"- sarexp commit {commit.stdout.strip() or 'unknown'}")
    return lines


def test_rows(junit: Path) -> tuple[list[str], dict[str, int]]:
    """Table lines and counts by outcome from the JUnit XML."""
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    rows = ["| test | result | s | detail |", "|---|---|---|---|"]
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        if case.get("name") is None:  # pytest writes the test it was in when interrupted without a name
            counts["interrupted"] = counts.get("interrupted", 0) + 1
            rows.append("| (the test running at the time limit) | **INTERRUPTED** | | |")
            continue
        outcome, detail = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                message = (child.get("message") or child.text or "").strip()
                detail = message.splitlines()[0][:160] if message else ""
        counts[outcome] += 1
        name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
        mark = {"passed": "pass", "failed": "**FAIL**", "error": "**ERROR**", "skipped": "skip"}[outcome]
        rows.append(f"| `{name}` | {mark} | {float(case.get('time', 0)):.1f} | {detail.replace('|', '/')} |")
    return rows, counts


def tests_section(logs: Path, exit_code: str, seconds: str) -> list[str]:
    junit, log = logs / "junit.xml", logs / "pytest.log"
    if not exit_code:
        return ["## Tests (`pytest -m gpu`)", "", "not run yet"]
    lines = ["## Tests (`pytest -m gpu`)", "", f"exit code {exit_code} after {seconds} s"
             + (" (interrupted at its time limit)" if exit_code in ("124", "130", "137") else "")]
    if junit.is_file():
        rows, counts = test_rows(junit)
        lines += ["", ", ".join(f"{count} {outcome}" for outcome, count in counts.items()), "", *rows]
    tail = log.read_text(errors="replace").splitlines()[-40:] if log.is_file() else ["(no log)"]
    return [*lines, "", "<details><summary>end of the pytest log</summary>", "", "```", *tail, "```", "</details>"]


def suite_section(logs: Path, exit_code: str, seconds: str) -> list[str]:
    log = logs / "suite.log"
    if not exit_code:
        return ["## Speed (`benchmarks/gpu_suite.py`)", "", "not run yet"]
    text = log.read_text(errors="replace") if log.is_file() else ""
    start = text.find(SUITE_HEADER)
    table = text[start:].splitlines() if start >= 0 else ["(no table: the suite did not finish)", "```",
                                                           *text.splitlines()[-40:], "```"]
    return ["## Speed (`benchmarks/gpu_suite.py`)", "", f"exit code {exit_code} after {seconds} s", "", *table]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    for stage in ("pytest", "suite"):
        parser.add_argument(f"--{stage}-exit", default="")
        parser.add_argument(f"--{stage}-s", default="")
    args = parser.parse_args()
    smi = args.logs / "nvidia-smi.txt"
    lines = [f"# sarexp GPU check, {datetime.datetime.now().isoformat(timespec='seconds')}", "", *versions(), "",
             *tests_section(args.logs, args.pytest_exit, args.pytest_s), "",
             *suite_section(args.logs, args.suite_exit, args.suite_s), "",
             "## nvidia-smi", "", "```", *(smi.read_text().splitlines() if smi.is_file() else ["(none)"]), "```"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_suffix(".md.tmp")
    temporary.write_text("\n".join(lines) + "\n")
    temporary.replace(args.out)


if __name__ == "__main__":
    main()
