#!/usr/bin/env python3
"""Set up and run Footfall with nothing but Python 3.11+.

    python3 dev.py demo    # set up, then serve with demo data on the embedded Redis
    python3 dev.py test    # set up, then lint (ruff check, ruff format --check) and run every test
                           # (on pytest-xdist workers, one per core), then every test that uses
                           # Redis again on a Valkey Cluster (with arguments: pytest as given)
    python3 dev.py lint    # set up, then only lint
    python3 dev.py bench   # set up, then run every benchmark (bench <name>: one of them)
    python3 dev.py setup   # only set up (.venv with the project and its test tools)

Setting up creates .venv/ next to this file and installs the project into it (again only when
pyproject.toml changed). Extra arguments after `test` go to pytest, after `demo` to run.py,
after `bench [geo|promo|game|live|console|cluster|webhook]` to the benchmark. `demo`, `test` and a
single benchmark replace this process with theirs (exec), so a signal sent to dev.py's pid
reaches the server.
Setting up also runs `npm ci` (again only when a package-lock.json changed): the consoles'
libraries and the browser tests' Chromium (@sparticuz/chromium) at the root, the JS test
client in tests/js.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".footfall-installed"
JS = ROOT / "tests" / "js"


def setup() -> None:
    """Create the virtualenv and install the project with its test and bench extras."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs on whatever python3 is
        sys.exit(f"Footfall needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print("creating .venv ...", flush=True)
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        except Exception as exc:  # e.g. Debian without python3-venv
            sys.exit(
                f"could not create a virtualenv ({exc}); install your distribution's "
                "python3-venv package (Debian/Ubuntu: apt-get install python3-venv)"
            )
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not (STAMP.exists() and STAMP.read_text().strip() == digest):
        print("installing Footfall and its dependencies into .venv ...", flush=True)
        pip = [str(PY), "-m", "pip", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "install", "-e", f"{ROOT}[test,bench]"], check=True, cwd=ROOT)
        STAMP.write_text(digest)
    install_js()


# The browser of the browser tests: @sparticuz/chromium ships Chromium brotli-compressed; its
# executablePath() unpacks it once into $TMPDIR/chromium, here a folder of node_modules.
BROWSER_DIR = ROOT / "node_modules" / ".footfall-browser"
BROWSER = BROWSER_DIR / "chromium"
UNPACK_BROWSER = "(await import('@sparticuz/chromium')).default.executablePath()"


def install_js() -> None:
    """Install the npm packages (`npm ci` with the venv's node): the consoles' libraries and
    the browser at the root, the JS test client in tests/js; then unpack the browser."""
    for folder in (ROOT, JS):
        npm_ci(folder)
    if not BROWSER.exists():
        print("unpacking the test browser (@sparticuz/chromium) ...", flush=True)
        BROWSER_DIR.mkdir(parents=True, exist_ok=True)
        env = venv_env()
        env["TMPDIR"] = str(BROWSER_DIR)
        node = str(VENV / "bin" / "node")
        subprocess.run(
            [node, "--input-type=module", "-e", UNPACK_BROWSER], check=True, cwd=ROOT, env=env
        )


def npm_ci(folder: Path) -> None:
    """Run `npm ci` in a folder unless its node_modules matches its package-lock.json."""
    lock = folder / "package-lock.json"
    stamp = folder / "node_modules" / ".footfall-installed"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == digest:
        return
    print(f"installing the npm packages of {folder.relative_to(ROOT)}/ (npm ci) ...", flush=True)
    subprocess.run(
        [str(VENV / "bin" / "npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        check=True,
        cwd=folder,
        env=venv_env(),
    )
    stamp.write_text(digest)


BENCHMARKS = ["geo", "promo", "game", "live", "console", "cluster", "webhook"]


def venv_env() -> dict[str, str]:
    """Return this environment with the virtualenv's bin/ first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(args: list[str], env: dict[str, str] | None = None) -> int:
    """Run a command with the virtualenv's Python from the repository root (`env`: variables
    to add to the environment).

    SIGINT and SIGTERM sent to dev.py alone (not to its process group) are passed on to the
    child, which then shuts down as it would on Ctrl-C, and dev.py waits for it to finish.
    """
    child = subprocess.Popen([str(PY), *args], cwd=ROOT, env={**venv_env(), **(env or {})})

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exec_venv(args: list[str]) -> NoReturn:
    """Replace dev.py with a command of the virtualenv's Python, so signals reach it directly."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(ROOT)
    os.execve(PY, [str(PY), *args], venv_env())


def lint() -> int:
    """Run `ruff check .` and `ruff format --check .`; return non-zero when either fails."""
    ruff = str(VENV / "bin" / "ruff")
    checked = subprocess.call([ruff, "check", "."], cwd=ROOT)
    formatted = subprocess.call([ruff, "format", "--check", "."], cwd=ROOT)
    if formatted:
        print("ruff format --check failed: run `.venv/bin/ruff format .`", file=sys.stderr)
    return checked or formatted


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "bench", "lint", "setup"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    setup()
    if command == "setup":
        return 0
    if command == "lint":
        return lint()
    if command == "demo":
        exec_venv(["run.py", *rest])
    if command == "bench":
        names = BENCHMARKS
        if rest and rest[0] in BENCHMARKS:
            names, rest = [rest[0]], rest[1:]
        if len(names) == 1:
            exec_venv([f"bench/{names[0]}_bench.py", *rest])
        return max(run([f"bench/{name}_bench.py", *rest]) for name in names)
    # The test command is CI's: lint is part of it, and fails it before any test runs.
    if lint():
        return 1
    workers = min(os.cpu_count() or 1, 4)
    if rest or workers < 2:
        exec_venv(["-m", "pytest", *rest])
    # The whole suite: one pytest-xdist worker per core (at most 4), each test file on one
    # worker, so a module's servers and browser pages start once (measured on 2 cores: 528 s
    # against 766 s in one process). Schemathesis gives all its generated cases one node id,
    # which pytest-xdist cannot tell apart (it ran 2 of the file's 88), so that file runs in a
    # process of its own first. Then the tests that use Redis run again on a throwaway Valkey
    # Cluster (3 masters, 1 replica each; tests/conftest.py says which tests it leaves out, and
    # why).
    fuzz = "tests/test_schemathesis.py"
    parallel = ["-n", str(workers), "--dist", "loadfile", "--ignore", fuzz]
    results = {
        fuzz: run(["-m", "pytest", fuzz]),
        "the rest": run(["-m", "pytest", *parallel]),
        "the cluster run": run(["-m", "pytest", *parallel], env={"TEST_REDIS_CLUSTER": "1"}),
    }
    failed = [name for name, code in results.items() if code]
    print(f"dev.py test: {'failed: ' + ', '.join(failed) if failed else 'every test passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
