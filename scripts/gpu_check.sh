#!/usr/bin/env bash
# The first GPU session as one command: `pytest -m gpu`, then benchmarks/gpu_suite.py, then one Markdown report
# (pass/fail per test, the speed table with peak memory, nvidia-smi and versions). Installs nothing.
#
#   scripts/gpu_check.sh                          # report: ./gpu_check_report.md, logs: ./gpu_check_report_logs/
#   scripts/gpu_check.sh --report /out/gpu.md     # anywhere else
#   scripts/gpu_check.sh --dry-run                # list what would run (works on a CPU), run nothing
#
# Time: at most GPU_CHECK_PYTEST_S (default 300) seconds of tests, then GPU_CHECK_SUITE_S (default 150) of
# benchmarks, so under 8 minutes on one H100. A stage that runs out of time is interrupted (pytest keeps the
# results it has); the report is rewritten after each stage, so a cut session still leaves one.
# PYTHON (default: python) is the interpreter with sarexp installed.
set -uo pipefail

cd "$(dirname "$0")/.."
dry_run=0
report="gpu_check_report.md"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --report) report="${2:?--report needs a file}"; shift ;;
        -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

python="${PYTHON:-python}"
pytest_s="${GPU_CHECK_PYTEST_S:-300}"
suite_s="${GPU_CHECK_SUITE_S:-150}"
logs="${report%.md}_logs"
pytest_args=(-m gpu -p no:cacheprovider -q -rA --durations=15 --junitxml "$logs/junit.xml")
# SIGINT (the time limit) must reach pytest as KeyboardInterrupt, so it stops and still writes its JUnit XML, even
# where the shell started this script with SIGINT ignored (background jobs)
pytest_cmd=("$python" -c 'import signal, sys, pytest
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.exit(pytest.main(sys.argv[1:]))' "${pytest_args[@]}")
suite_cmd=("$python" benchmarks/gpu_suite.py --steps 5 --budget-s $((suite_s * 2 / 3)))

if [[ $dry_run == 1 ]]; then
    echo "1. tests, at most ${pytest_s} s: $python -m pytest ${pytest_args[*]}"
    # listed as they would be collected with CUDA (the parametrisation then includes each preset's precision)
    SAREXP_GPU_DEVICE=cuda "$python" -m pytest -m gpu -p no:cacheprovider --collect-only -q | sed 's/^/   /'
    echo "2. speed suite, at most ${suite_s} s: ${suite_cmd[*]}"
    "$python" benchmarks/gpu_suite.py --list | sed 's/^/   /'
    echo "3. report: $report (logs in $logs/)"
    exit 0
fi

mkdir -p "$logs"
write_report() {
    "$python" scripts/gpu_report.py --logs "$logs" --out "$report" --pytest-exit "${pytest_exit:-}" \
        --suite-exit "${suite_exit:-}" --pytest-s "${pytest_wall:-}" --suite-s "${suite_wall:-}"
}

nvidia-smi > "$logs/nvidia-smi.txt" 2>&1 || echo "nvidia-smi not found" > "$logs/nvidia-smi.txt"
write_report

start=$SECONDS
timeout -s INT -k 30 "$pytest_s" "${pytest_cmd[@]}" > "$logs/pytest.log" 2>&1
pytest_exit=$?
pytest_wall=$((SECONDS - start))
write_report

start=$SECONDS
timeout -s INT -k 20 "$suite_s" "${suite_cmd[@]}" > "$logs/suite.log" 2>&1
suite_exit=$?
suite_wall=$((SECONDS - start))
write_report

echo "report: $report (tests exit $pytest_exit in ${pytest_wall} s, suite exit $suite_exit in ${suite_wall} s)"
[[ $pytest_exit == 0 && $suite_exit == 0 ]]
