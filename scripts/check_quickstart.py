"""Run the README's Quick start exactly as a reader would, and check what it promises.

The section is read from README.md itself, so an edit that breaks the quick start fails
this check (CI runs it, and ``make quickstart``):

* ``**`path`**`` headings followed by a code block are files to write (a heading saying
  "at the end" appends, as for ``settings.py``); ``sh`` blocks are commands;
* the venv line creates a fresh venv with this interpreter, and the ``pip install
  'drf-instcache[...]'`` line installs *this checkout* with exactly those extras;
* ``runserver`` is started in the background on a free port (the README's 8000 becomes
  that port in the later commands), and the ``# ...`` comment after each ``curl`` is the
  output it must print;
* then a bare install must pass ``manage.py check``, lack the extras it did not ask for,
  import the ``drf_cached_instances`` shim, and serve the cached list with one query.

Usage: python scripts/check_quickstart.py [--readme README.md] [--keep] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "drf-instcache"


@dataclass
class Block:
    """One fenced code block of the section and the file heading just before it."""

    lang: str
    text: str
    heading: str | None  # the line naming the file, when there is one


class QuickstartFailed(AssertionError):
    pass


def quickstart_section(readme: str) -> str:
    match = re.search(r"^## Quick start\s*$(.*?)(?=^## )", readme, re.M | re.S)
    if not match:
        raise QuickstartFailed("README.md has no '## Quick start' section")
    return match.group(1)


def blocks(section: str) -> list[Block]:
    found: list[Block] = []
    pattern = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.M | re.S)
    last_end = 0
    for match in pattern.finditer(section):
        prose = section[last_end : match.start()].strip().splitlines()
        heading = next((line for line in reversed(prose) if line.startswith("**`")), None)
        found.append(Block(match.group(1), match.group(2), heading if prose else None))
        last_end = match.end()
    return found


def file_of(heading: str) -> tuple[str, bool]:
    """The path a heading names, and whether its block is appended to the file."""
    match = re.match(r"\*\*`([^`]+)`\*\*", heading)
    if not match:
        raise QuickstartFailed(f"cannot read a file name from {heading!r}")
    return match.group(1), "at the end" in heading


def commands(text: str) -> list[tuple[str, str]]:
    """(command, trailing comment) pairs; a quoted string may span lines."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            tokens = shlex.split(pending, comments=False)
        except ValueError:  # an open quote: the command goes on
            continue
        command, comment = pending, ""
        if "#" in tokens:
            cut = pending.rindex("  #") if "  #" in pending else pending.rindex("#")
            command, comment = pending[:cut], pending[cut:].lstrip().lstrip("#").strip()
        if command.strip():
            result.append((command.strip(), comment))
        pending = ""
    if pending:
        raise QuickstartFailed(f"unterminated command: {pending!r}")
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Reader:
    """Follows the quick start in ``workdir`` with a fresh venv."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.venv = workdir / ".venv"
        self.port = free_port()
        self.cache_dir = workdir / "cache"
        self.server: subprocess.Popen[bytes] | None = None
        self.extras: list[str] | None = None
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL"))},
            "VIRTUAL_ENV": str(self.venv),
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)

    def shell(self, command: str, timeout: float = 900) -> str:
        print(f"$ {command}", flush=True)
        done = subprocess.run(
            ["bash", "-c", f"set -eo pipefail\n{command}"],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode:
            raise QuickstartFailed(
                f"{command!r} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def run_command(self, command: str, expected: str) -> None:
        if re.match(r"python3? -m venv \S+", command):
            print(f"$ {command}   (fresh venv with {sys.executable})", flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
            return
        tokens = shlex.split(command)
        if tokens[:2] == ["pip", "install"]:
            self.install(tokens[2:])
            return
        if "runserver" in tokens:
            self.start_server(tokens)
            return
        command = command.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
        output = self.shell(command)
        if expected:
            got = " ".join(output.split())
            print(f"  -> {got}", flush=True)
            if got != expected:
                raise QuickstartFailed(f"{command!r} printed {got!r}; README says {expected!r}")

    def install(self, args: list[str]) -> None:
        requirement = next((a for a in args if a.startswith(PACKAGE)), None)
        if requirement is None or len(args) != 1:
            raise QuickstartFailed(f"expected `pip install '{PACKAGE}[extras]'`, got {args!r}")
        extras = re.fullmatch(rf"{PACKAGE}(\[([\w,-]+)\])?", requirement)
        if extras is None:
            raise QuickstartFailed(f"cannot read the extras of {requirement!r}")
        self.extras = extras.group(2).split(",") if extras.group(2) else []
        target = f"{ROOT}[{','.join(self.extras)}]" if self.extras else str(ROOT)
        self.shell(f"pip install -q {shlex.quote(target)}")

    def start_server(self, tokens: list[str]) -> None:
        tokens = [t for t in tokens if not re.fullmatch(r"[\d.]*:?\d+", t)]
        tokens += [f"127.0.0.1:{self.port}", "--noreload"]
        print(f"$ {' '.join(tokens)} &", flush=True)
        self.server = subprocess.Popen(
            tokens,
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "runserver.log", "wb"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                log = (self.workdir / "runserver.log").read_text()
                raise QuickstartFailed(f"runserver exited:\n{log}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/", timeout=1)
                return
            except OSError:
                time.sleep(0.3)
        raise QuickstartFailed("runserver did not answer within 60 s")

    def write(self, heading: str, text: str) -> None:
        path, append = file_of(heading)
        # The cache folder lives in the work directory, so every run starts cold.
        text = re.sub(r'"disk://[^"?]+', f'"disk://{self.cache_dir}', text)
        target = self.workdir / path
        print(f"{'>>' if append else '> '} {path}", flush=True)
        if append:
            with target.open("a") as handle:
                handle.write("\n" + text)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            self.server.wait(timeout=10)

    def check_bare_install(self) -> None:
        """What the issue promised a bare install: checks pass, nothing extra needed."""
        out = self.shell("python manage.py check")
        if "System check identified no issues" not in out:
            raise QuickstartFailed(f"manage.py check reported:\n{out}")
        every = {"redis": "redis", "memcached": "pymemcache", "fast": "orjson", "celery": "celery"}
        absent = [module for extra, module in every.items() if extra not in (self.extras or [])]
        probe = (
            f"import importlib.util as u\nfound = [m for m in {absent!r} if u.find_spec(m)]\n"
            "if found:\n    raise SystemExit(f'installed without being asked for: {found}')\n"
        )
        self.shell(f"python -c {shlex.quote(probe)}")
        shim = "import drf_cached_instances.cache, drf_cached_instances.mixins"
        self.shell(f"python manage.py shell -c {shlex.quote(shim)}")
        one_query = (
            "from django.db import connection\n"
            "from django.test import Client\n"
            "from django.test.utils import CaptureQueriesContext, setup_test_environment\n"
            "setup_test_environment()\n"
            "with CaptureQueriesContext(connection) as queries:\n"
            "    response = Client().get('/api/books/')\n"
            "assert response.status_code == 200, response.status_code\n"
            "assert len(response.json()) == 20, response.json()\n"
            "stats = response['X-Instcache']\n"
            "assert stats.startswith('hits=20 misses=0'), stats\n"
            "assert len(queries) == 1, [q['sql'] for q in queries]\n"
            "print('one query, 20 hits')\n"
        )
        self.shell(f"python manage.py shell -c {shlex.quote(one_query)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--workdir", type=Path, help="an empty folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="leave the work folder in place")
    args = parser.parse_args()

    section = quickstart_section(args.readme.read_text())
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="drf-instcache-quickstart-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if any(workdir.iterdir()):
        raise SystemExit(f"{workdir} is not empty")
    reader = Reader(workdir)
    ran_curl = 0
    try:
        for block in blocks(section):
            if block.heading:
                reader.write(block.heading, block.text)
            elif block.lang in ("sh", "bash", "console"):
                for command, comment in commands(block.text):
                    ran_curl += command.startswith("curl")
                    reader.run_command(command, comment if command.startswith("curl") else "")
            else:
                raise QuickstartFailed(f"a {block.lang or 'plain'} block with no file heading")
        if reader.extras is None or not ran_curl:
            raise QuickstartFailed("the quick start installs nothing or requests nothing")
        reader.check_bare_install()
    except QuickstartFailed as error:
        print(f"\nQUICK START FAILED: {error}\n(work folder: {workdir})", file=sys.stderr)
        return 1
    finally:
        reader.stop()
    print(f"\nquick start OK ({ran_curl} requests as the README says)")
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
