"""Set-up that survives real use: scripts/venv.sh (behind scripts/demo, scripts/test, scripts/bench) installs once
and then starts without the network; `pip install .` (the README's install, run as root) leaves the clone as it
was. Each test works on its own copy of the working tree, with real venvs and real pip."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.config import ROOT

pytestmark = pytest.mark.slow

INSTALL_TIMEOUT = 600


def copy_of_the_tree(target: Path) -> Path:
    """The files git knows or would add (no .venv, caches, build output), copied to `target`."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is listed too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
            (target / name).chmod(source.stat().st_mode)
    return target


def offline() -> dict[str, str]:
    """The environment with pip's network unreachable: no configured or local index, no proxy, no retries."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL="http://127.0.0.1:9/", PIP_RETRIES="0", PIP_TIMEOUT="5")
    return env


def ensure_venv(tree: Path, spec: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """What scripts/test and scripts/demo do before anything else: `ensure_venv SPEC` from scripts/venv.sh."""
    return subprocess.run(["bash", "-c", 'source scripts/venv.sh && ensure_venv "$1"', "ensure_venv", spec],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)


def tree_listing(tree: Path) -> set[str]:
    return {str(path.relative_to(tree)) for path in tree.rglob("*")}


def test_second_run_starts_without_the_network(tmp_path: Path) -> None:
    tree = copy_of_the_tree(tmp_path / "clone")
    first = ensure_venv(tree, ".")
    assert first.returncode == 0, first.stderr
    assert first.stderr.startswith("setting up .venv, about a minute the first time")
    install_log = tree / ".venv" / "install.log"
    installed_at = install_log.stat().st_mtime_ns

    second = ensure_venv(tree, ".", offline())
    assert second.returncode == 0, second.stderr
    assert second.stderr == ""  # nothing to say, nothing installed
    assert install_log.stat().st_mtime_ns == installed_at  # pip never ran
    version = subprocess.run([tree / ".venv" / "bin" / "pvmonit-exporter", "--version"], capture_output=True,
                             text=True, timeout=60, check=False)
    assert version.stdout.startswith("pvmonit-exporter ")

    # The offline environment really is offline, and a changed pyproject.toml is noticed: pip runs, and fails.
    with (tree / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write("\n# a dependency changed\n")
    changed = ensure_venv(tree, ".", offline())
    assert changed.returncode == 2
    assert changed.stderr.startswith("updating .venv for . (pyproject.toml changed")
    assert changed.stderr.endswith("Installing into .venv failed (full log above, also in .venv/install.log).\n")


def test_pip_install_leaves_the_clone_as_it_was(tmp_path: Path) -> None:
    """As root, anything written into the clone would be root's, and scripts/demo would then fail for its user."""
    tree = copy_of_the_tree(tmp_path / "clone")
    before = tree_listing(tree)
    target = tmp_path / "opt-pvmonit-exporter"
    subprocess.run([sys.executable, "-m", "venv", target], check=True, timeout=120)
    install = subprocess.run([target / "bin" / "pip", "install", "."], cwd=tree, capture_output=True, text=True,
                             timeout=INSTALL_TIMEOUT, check=False)
    assert install.returncode == 0, install.stderr
    assert tree_listing(tree) == before  # no build/, no *.egg-info, nothing
    static = subprocess.run(
        [target / "bin" / "python", "-c",
         "import importlib.resources as r; print(sorted(p.name for p in r.files('pvmonit_exporter.web.static')"
         ".iterdir()))"], capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    assert "index.html" in static.stdout, static.stderr  # the live page's files are installed with the code
