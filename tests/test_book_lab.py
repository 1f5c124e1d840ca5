"""`make lab`: a chapter (book/*.md) opens as a notebook through JupyterLab's contents API (jupytext),
its kernel is .venv's python3 started in book/, and a save writes the .md back (no .ipynb).

The real `make lab` target runs headless (ARGS=--no-browser, loopback port, token) on a copy of one
chapter; `-o env` keeps make from touching .venv's packages.
"""
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAB = pathlib.Path(sys.executable).with_name("jupyter-lab")
CHAPTER = "02_nc1_from_kernel.md"
pytestmark = [pytest.mark.skipif(not LAB.exists(), reason="jupyterlab not installed"),
              pytest.mark.skipif(shutil.which("make") is None, reason="make not installed"),
              pytest.mark.skipif(not pathlib.Path("/proc/self/cwd").exists(), reason="needs /proc (Linux)")]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    def __init__(self, port, token):
        self.base, self.token = f"http://127.0.0.1:{port}", token

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")


def _children(pid):
    out = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.fixture
def lab(tmp_path):
    (tmp_path / "book").mkdir()
    shutil.copy(ROOT / "book" / CHAPTER, tmp_path / "book")
    port, token = _free_port(), secrets.token_hex(16)
    args = (f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0 "
            f"--IdentityProvider.token={token}")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / ".runtime"))
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(["make", "-s", "-o", "env", "lab", f"ARGS={args}", f"LAB_ROOT={tmp_path}"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = Lab(port, token)
    try:
        deadline = time.monotonic() + 25
        while True:
            try:
                client.call("GET", "/api/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("jupyter lab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
                time.sleep(0.3)
        client.pid = proc.pid
        yield client
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # make and the jupyter-lab it started (their own group)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def test_chapter_is_a_live_notebook(lab, tmp_path):
    md = tmp_path / "book" / CHAPTER
    original = md.read_text()
    model = lab.call("GET", f"/api/contents/book/{CHAPTER}?type=notebook&content=1")
    assert model["type"] == "notebook"
    nb = model["content"]
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])

    # a click on a .md opens it as a notebook: JupyterLab's default viewer for markdown is jupytext's
    settings = lab.call("GET", "/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
    viewers = settings["schema"]["properties"]["defaultViewers"]["default"]
    assert viewers.get("markdown") == "Jupytext Notebook", viewers

    # the python3 kernel is .venv's and starts in book/
    session = lab.call("POST", "/api/sessions", {"path": f"book/{CHAPTER}", "type": "notebook",
                                                  "name": CHAPTER, "kernel": {"name": "python3"}})
    kernels = []
    for _ in range(50):
        kernels = [pid for child in _children(lab.pid) for pid in [child, *_children(child)]
                   if b"ipykernel" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()]
        if kernels:
            break
        time.sleep(0.1)
    assert kernels, "no kernel process"
    argv0 = pathlib.Path(f"/proc/{kernels[0]}/cmdline").read_bytes().split(b"\0")[0].decode()
    assert os.path.samefile(argv0, sys.executable), argv0
    assert os.path.samefile(os.readlink(f"/proc/{kernels[0]}/cwd"), tmp_path / "book")
    lab.call("DELETE", f"/api/sessions/{session['id']}")

    # edit the parameters cell and save: the .md changes, nothing else is written
    code[0]["source"] = code[0]["source"] + "\nedited_in_lab = True"
    lab.call("PUT", f"/api/contents/book/{CHAPTER}", {"type": "notebook", "format": "json", "content": nb})
    saved = md.read_text()
    assert "edited_in_lab = True" in saved and saved.startswith(original.split("kernelspec:")[0])
    assert "jupytext_version" not in saved
    assert sorted(p.name for p in (tmp_path / "book").iterdir() if p.suffix == ".ipynb") == []
    assert not list(tmp_path.rglob("*.ipynb")) or all(".ipynb_checkpoints" in p.parts for p in tmp_path.rglob("*.ipynb"))
