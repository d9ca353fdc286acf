"""Run the course as a learner does: a scratch copy of the repository, JupyterLab started with the README's
command, and Debian's Chromium driven by playwright. Used by test_learner.py.

Everything here is careful to leave nothing behind: the server runs in its own process group, its kernels are
shut down through the REST API and then killed by PID, and all Jupyter state lives in a temporary folder.
"""
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps"]


def find_chromium():
    """Path of a Chromium/Chrome executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def readme_lab_command(readme=ROOT / "README.md"):
    """The JupyterLab part of the README's first command, as an argument list (`.venv/bin/jupyter lab ...`)."""
    text = readme.read_text()
    for line in text.splitlines():
        if line.startswith("python3 -m venv .venv") and "jupyter lab" in line:
            return shlex.split(line.split("&&")[-1].strip())
    raise AssertionError("README.md: no first command `python3 -m venv .venv && ... jupyter lab ...` found")


def scratch_copy(dest):
    """Copy the repository's files (tracked and untracked, not ignored) into dest; return dest."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):      # not a git checkout: everything but caches and runs
        skip = {".git", ".venv", "venv", "__pycache__", ".ipynb_checkpoints", ".test-artifacts", "runs", "runs_quick",
                "wandb", "data"}
        listed = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
                  if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            target = Path(dest) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return Path(dest)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid):
    """PIDs of all processes below pid (read from /proc; Linux)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:   # a zombie counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Lab:
    """A JupyterLab server on 127.0.0.1 serving `repo`, started with the README's command."""

    def __init__(self, repo, state_dir, env_extra=None):
        self.repo, self.state = Path(repo), Path(state_dir)
        self.port, self.token = free_port(), secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc, self.log_path = None, self.state / "jupyterlab.log"
        self.env_extra = env_extra or {}

    def command(self):
        cmd = readme_lab_command()
        assert Path(cmd[0]).name == "jupyter" and cmd[1] == "lab", cmd
        cmd[0] = str(Path(sys.executable).parent / "jupyter")       # the venv running the tests
        cmd += ["--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")                                # as documented in the README
        return cmd

    def env(self):
        env = dict(os.environ)
        for var in ("MPLBACKEND", "JUPYTER_PLATFORM_DIRS"):
            env.pop(var, None)                                        # a learner's kernel draws inline
        for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                         ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
                         ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"), ("IPYTHONDIR", "ipython")):
            env[var] = str(self.state / sub)
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        # no news/update fetches from a browser on a closed network
        settings = self.state / "lab-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        # every cell in the page (no virtual scrolling), so the test sees every output
        tracker = self.state / "lab-settings" / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True, exist_ok=True)
        (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        # no autosave: the scratch notebooks change only when the test saves them
        docmanager = self.state / "lab-settings" / "@jupyterlab" / "docmanager-extension"
        docmanager.mkdir(parents=True, exist_ok=True)
        (docmanager / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
        env["PYTHONPATH"] = str(self.repo)                            # kernels import the scratch copy's diydnn
        env.update(self.env_extra)
        return env

    def start(self, timeout=90):
        self.state.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(), cwd=self.repo, env=self.env(), stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                self.api("GET", "/api/status")
                return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"JupyterLab did not answer within {timeout} s:\n{self.log_text()}")

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self, method, path, timeout=10):
        request = urllib.request.Request(self.url + path, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def stop(self):
        """Shut kernels down, stop the server's process group, then kill anything left by PID."""
        if self.proc is None:
            return
        pids = _descendants(self.proc.pid)
        try:
            for kernel in self.api("GET", "/api/kernels"):
                self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=20)
        except Exception:
            pass
        pids = sorted(set(pids) | set(_descendants(self.proc.pid)))
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    pass
            for pid in pids:
                if _alive(pid):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            deadline = time.time() + wait
            while time.time() < deadline and (self.proc.poll() is None or any(_alive(p) for p in pids)):
                time.sleep(0.1)
            if self.proc.poll() is not None and not any(_alive(p) for p in pids):
                break
        self.log.close()
        self.proc = None
        return pids


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def running_lab(repo, state_dir, env_extra=None):
    """A started Lab; stopped at the end whatever happens (an exception, Ctrl-C, or SIGTERM to the test run)."""
    lab = Lab(repo, state_dir, env_extra)
    import threading
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        yield lab.start()
    finally:
        try:
            lab.stop()
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)
