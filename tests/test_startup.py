"""Config commands stay instant: nothing that runs before Hydra calls the task imports torch or Lightning."""

import subprocess
import sys

import pytest

from cli_helpers import run_cli

_HEAVY = ("torch", "lightning", "timm", "kornia")


def _heavy_modules_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint('heavy:' + ','.join(m for m in {_HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("heavy:"), result.stdout[-2000:]
    return [name for name in line.removeprefix("heavy:").split(",") if name]


def test_importing_the_entry_point_imports_no_heavy_library():
    assert _heavy_modules_after("import sarexp.run, sarexp.__main__") == []


def test_config_commands_import_no_heavy_library(tmp_path):
    """`--cfg job` and a composition error go through Hydra only: the task function is never imported."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['sarexp', 'experiment=ssm4sar', '--cfg', 'job']\n"
        "try:\n    runpy.run_module('sarexp', run_name='__main__')\nexcept SystemExit:\n    pass\n"
    )
    assert _heavy_modules_after(probe) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [(["experiment=no_such_experiment"], "no_such_experiment"), (["trainer.max_step=3"], "max_step")],
)
def test_composition_errors_still_name_the_culprit(tmp_path, args, message):
    result = run_cli(args, cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    assert message in result.stderr
