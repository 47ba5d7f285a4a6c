"""The local Neo4j Community 5.26 server, without Docker.

The Java launcher in ``launcher/`` (see the comment at the top of its ``Main.java``) runs Neo4j's own server
entry point from Maven Central artifacts: Bolt and the Neo4j Browser over HTTP, bound to 127.0.0.1 only.
:class:`LocalServer` builds it once (Maven resolves the jars into ``~/.m2``; ``javac`` compiles the launcher into
a cache folder keyed by a hash of the launcher's sources), starts it detached, waits until a real Bolt connection
succeeds, and stops it with SIGTERM.

Files under ``home``: ``data/`` (the store, kept across restarts), ``logs/`` (Neo4j's logs and
``launcher.out``), ``conf/neo4j.conf`` (your extra settings, plus a block kgp rewrites at every start: the
Neo4j Browser settings of :mod:`kgplatform.db.browser`), ``browser/`` (the style sheet and guide the server serves
at ``/kgp/browser/``, rewritten at every start), ``password`` (generated when auth is on and no password is
given; mode 0600), ``run/ready.json`` (written by the launcher once Bolt answers) and ``run/launcher.pid``.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..config import resource_dir
from ..errors import AuthenticationFailed, ConfigError, EnvironmentMissing, ServerError

MAIN_CLASS = "io.kgplatform.launcher.Main"
USER = "neo4j"
HOST = "127.0.0.1"
MIN_JAVA = 17
MIN_PASSWORD_CHARS = 8  # Neo4j 5's dbms.security.auth_minimum_password_length
LOG_TAIL_LINES = 20

#: JVM flags beyond the heap, after Neo4j's own defaults (``server.jvm.additional`` in a tarball install).
JVM_FLAGS = (
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+DisableExplicitGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dlog4j2.disable.jmx=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
)

_ALTERNATIVES = "or point NEO4J_URI at a running Neo4j, or start one with docker compose"
_MEMORY = re.compile(r"^[1-9][0-9]*[kKmMgG]?$")


@dataclass(frozen=True)
class ServerInfo:
    """A running local server, as its launcher reported it."""

    uri: str  # bolt://127.0.0.1:PORT
    http_url: str | None  # http://127.0.0.1:PORT/browser/
    pid: int
    home: Path
    auth: bool
    user: str  # "neo4j"
    password: str | None
    bolt_port: int
    http_port: int
    store_bytes: int  # size of <home>/data on disk


@dataclass(frozen=True)
class _Build:
    classes: Path
    classpath: str


class LocalServer:
    """Builds, starts, inspects and stops the local Neo4j that lives under ``home``.

    Args:
        home: Folder for data, logs, config and run files; data persists across restarts.
        bolt_port: Bolt port on 127.0.0.1 (0 = any free port).
        http_port: HTTP port of the Browser and the HTTP API (0 = any free port).
        auth: Require a password for user ``neo4j``.
        password: The password to set on first start; when ``None`` one is generated once and kept in
            ``home/password``.
        heap: JVM heap (``-Xms``/``-Xmx``), e.g. ``"1g"``.
        pagecache: Neo4j page cache, e.g. ``"512m"``.
        start_timeout_s: How long :meth:`start` waits for Bolt to answer.
        build_dir: Cache for the compiled launcher and its classpath (outside the repository), shared by all
            homes since entries are keyed by a hash of the launcher sources. Defaults to
            ``~/.cache/kgplatform/launcher``.
        launcher_dir: The launcher sources (``pom.xml``, ``src/``); defaults to the shipped ``launcher/``.
    """

    def __init__(
        self,
        home: Path,
        *,
        bolt_port: int = 7687,
        http_port: int = 7474,
        auth: bool = True,
        password: str | None = None,
        heap: str = "1g",
        pagecache: str = "512m",
        start_timeout_s: float = 180.0,
        build_dir: Path | None = None,
        launcher_dir: Path | None = None,
    ) -> None:
        for name, port in (("bolt_port", bolt_port), ("http_port", http_port)):
            if not 0 <= port <= 65535:
                raise ConfigError(f"{name} must be 0-65535 (0 = any free port), got {port}")
        for name, size in (("heap", heap), ("pagecache", pagecache)):
            if not _MEMORY.match(size):
                raise ConfigError(f"{name} must look like 512m or 2g, got {size!r}")
        if auth and password is not None and len(password) < MIN_PASSWORD_CHARS:
            raise ConfigError(f"the Neo4j password must have at least {MIN_PASSWORD_CHARS} characters")
        self.home = Path(home).expanduser().resolve()
        self.bolt_port = bolt_port
        self.http_port = http_port
        self.auth = auth
        self.heap = heap
        self.pagecache = pagecache
        self.start_timeout_s = start_timeout_s
        self.build_dir = Path(build_dir) if build_dir else Path.home() / ".cache" / "kgplatform" / "launcher"
        self.launcher_dir = Path(launcher_dir) if launcher_dir else resource_dir("launcher")
        self._password = password
        self._proc: subprocess.Popen[bytes] | None = None

    # -- paths ------------------------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "launcher.out"

    @property
    def password_file(self) -> Path:
        return self.home / "password"

    @property
    def conf_file(self) -> Path:
        return self.home / "conf" / "neo4j.conf"

    @property
    def browser_dir(self) -> Path:
        return self.home / "browser"

    @property
    def _ready_file(self) -> Path:
        return self.run_dir / "ready.json"

    @property
    def _pid_file(self) -> Path:
        return self.run_dir / "launcher.pid"

    # -- public API -------------------------------------------------------------------------------------
    def install(self) -> None:
        """Resolve the Neo4j jars (Maven) and compile the launcher (javac); a no-op when cached."""
        self._build()

    def start(self) -> ServerInfo:
        """Start the server and wait until Bolt answers; returns the running server if there is one."""
        with self._locked():
            info = self.status()
            if info is not None:
                return info
            pid = self._read_pid()
            if pid is not None and _is_launcher(pid, self.home):
                # Another process started it and it is still coming up: wait for that one.
                return self._await_ready(pid, password_file=None)
            self._clear_run_files()
            java = _require("java", "Java 17+ is needed to run the local Neo4j")
            build = self._build()
            # Port 0 is resolved here for HTTP: the Browser settings written below name the real port.
            http_port = self.http_port or _free_port()
            for port in (self.bolt_port, http_port):
                _check_port_free(port)
            self._write_config(http_port)
            password_file = self._password_file_for_launcher()
            pid = self._spawn(java, build, password_file, http_port)
            return self._await_ready(pid, password_file=password_file)

    def stop(self, timeout_s: float = 60) -> bool:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout_s``); False when none was running."""
        with self._locked():
            ready = self._read_ready()
            pid = ready["pid"] if ready else self._read_pid()
            if pid is None or not _is_launcher(pid, self.home):
                self._clear_run_files()
                return False
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout_s):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                if not self._wait_exit(pid, 10):
                    raise ServerError(f"the Neo4j launcher (pid {pid}) did not exit after SIGKILL",
                                      hint=self._log_hint())
            self._clear_run_files()
            return True

    def status(self) -> ServerInfo | None:
        """The running server, or None (a ready.json left by a dead process counts as not running)."""
        ready = self._read_ready()
        if ready is None or not _is_launcher(ready["pid"], self.home):
            return None
        return self._info(ready)

    def import_full(
        self,
        nodes: list[tuple[str, Path]],
        relationships: list[tuple[str, Path]],
        *,
        multiline: list[Path] = (),  # type: ignore[assignment]
        array_delimiter: str = "U+001F",
        id_type: str = "integer",
        database: str = "neo4j",
        timeout_s: float = 3600,
    ) -> str:
        """Replace ``database`` with the CSV files' graph: Neo4j's offline importer (``neo4j-admin database import
        full``, ``org.neo4j.cli.AdminTool`` from the same jars the launcher runs) on this home's store.

        The server must be stopped. ``nodes`` are ``(label, file)``, ``relationships`` ``(type, file)``, in the
        importer's CSV format (header ``name:type``, ``:ID(group)``, ``:START_ID(group)``/``:END_ID(group)``;
        strings quoted, ``""`` for a quote); ``id_type`` is the importer's ``--id-type``. ``multiline`` lists the
        files whose quoted fields hold line breaks (then every file is read with the multi-line reader).
        Returns the importer's output; raises :class:`ServerError` with its last lines when it fails.
        """
        if self.status() is not None:
            raise ServerError(f"the local Neo4j under {self.home} is running; stop it before an offline import")
        java = _require("java", "Java 17+ is needed to run Neo4j's importer")
        build = self._build()
        (self.home / "conf").mkdir(parents=True, exist_ok=True)
        report = self.home / "logs" / "import.report"
        report.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            java, f"-Xmx{self.heap}", *JVM_FLAGS,
            "-cp", os.pathsep.join([str(build.classes), build.classpath]),
            # the database first: an option with an optional value (--multiline-fields) could take a trailing one
            "org.neo4j.cli.AdminTool", "database", "import", "full", database,
            "--overwrite-destination=true", f"--id-type={id_type}", f"--array-delimiter={array_delimiter}",
            "--trim-strings=false", "--ignore-empty-strings=false", "--legacy-style-quoting=false",
            "--skip-duplicate-nodes=false", "--skip-bad-relationships=false", "--bad-tolerance=0",
            f"--report-file={report}",
        ]
        if multiline:
            # the per-file form (--multiline-fields=<paths>, format v2) fails on 5.26.30 when a file is larger than
            # its 4 MiB read buffer ("found CR outside a text cell"); the classic reader for every file does not
            cmd.append("--multiline-fields=true")
        cmd += [f"--nodes={label}={path}" for label, path in nodes]
        cmd += [f"--relationships={rtype}={path}" for rtype, path in relationships]
        env = {**os.environ, "NEO4J_HOME": str(self.home), "NEO4J_CONF": str(self.home / "conf")}
        try:
            result = subprocess.run(cmd, cwd=self.home, env=env, capture_output=True, text=True, timeout=timeout_s,
                                    check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ServerError(f"Neo4j's importer did not run: {e}") from e
        output = (result.stdout or "") + (result.stderr or "")
        if result.returncode != 0:
            raise ServerError(f"Neo4j's importer failed (exit code {result.returncode})", hint=_tail(output))
        return output

    # -- build ------------------------------------------------------------------------------------------
    def _build(self) -> _Build:
        pom = self.launcher_dir / "pom.xml"
        sources = sorted((self.launcher_dir / "src" / "main" / "java").rglob("*.java"))
        if not pom.is_file() or not sources:
            raise ServerError(f"the launcher sources are missing under {self.launcher_dir}")
        digest = hashlib.sha256()
        for path in (pom, *sources):
            digest.update(path.relative_to(self.launcher_dir).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
        target = self.build_dir / digest.hexdigest()[:16]
        cached = _load_build(target)
        if cached is not None:
            return cached

        mvn = _require("mvn", "Maven is needed once to fetch the Neo4j jars (about 200 MB into ~/.m2)")
        javac = _require("javac", "a JDK 17+ with javac is needed to compile the Neo4j launcher")
        _java_major(javac)
        self.build_dir.mkdir(parents=True, exist_ok=True)
        work = self.build_dir / f".tmp-{os.getpid()}-{secrets.token_hex(4)}"
        work.mkdir()
        try:
            classpath_file = work / "classpath.txt"
            _resolve_classpath(mvn, pom, classpath_file)
            classpath = classpath_file.read_text().strip()
            result = subprocess.run(
                [javac, "--release", str(MIN_JAVA), "-encoding", "UTF-8", "-nowarn", "-cp", classpath,
                 "-d", str(work / "classes"), *map(str, sources)],
                capture_output=True, text=True, check=False,
            )
            if result.returncode != 0:
                raise ServerError("compiling the Neo4j launcher failed", hint=_tail(result.stderr or result.stdout))
            (work / "ok").write_text("ok\n")
            try:
                work.rename(target)
            except OSError:  # a concurrent build got there first
                if _load_build(target) is None:
                    shutil.rmtree(target, ignore_errors=True)
                    work.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        build = _load_build(target)
        if build is None:
            raise ServerError(f"the launcher build in {target} is incomplete")
        return build

    # -- start ------------------------------------------------------------------------------------------
    def _stored_password(self) -> str | None:
        with contextlib.suppress(FileNotFoundError):
            return self.password_file.read_text().strip() or None
        return None

    def _resolved_password(self) -> str | None:
        return self._password if self._password is not None else self._stored_password()

    def _password_file_for_launcher(self) -> Path | None:
        """The file the launcher reads the initial password from (used on the store's first start only)."""
        if not self.auth:
            return None
        if self._password is not None:
            path = self.run_dir / "initial-password"
            _write_private(path, self._password)
            return path
        if self._stored_password() is None:
            _write_private(self.password_file, secrets.token_urlsafe(18))
        return self.password_file

    # -- configuration --------------------------------------------------------------------------------
    def _write_config(self, http_port: int) -> None:
        """Publish the Browser style/guide into ``home/browser`` and write their settings into neo4j.conf.

        The launcher's own settings (ports, paths, binding) are passed to Neo4j as overrides and never appear
        here; this block only holds what makes Neo4j Browser a product surface (see :mod:`.browser`). When the
        shipped ``browser/`` folder is missing (or broken) the server still starts, without them.
        """
        from . import browser

        managed: dict[str, str] = {}
        try:
            browser.publish(self.browser_dir, http_port)
            managed = browser.settings(http_port)
        except (ConfigError, OSError) as e:
            print(f"note: Neo4j Browser style and guide not published: {e}", file=sys.stderr)
        write_conf(self.conf_file, managed)

    def _spawn(self, java: str, build: _Build, password_file: Path | None, http_port: int | None = None) -> int:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            java, f"-Xms{self.heap}", f"-Xmx{self.heap}", *JVM_FLAGS,
            "-cp", os.pathsep.join([str(build.classes), build.classpath]),
            MAIN_CLASS,
            "--home", str(self.home),
            "--bolt-port", str(self.bolt_port),
            "--http-port", str(self.http_port if http_port is None else http_port),
            "--pagecache", self.pagecache,
        ]
        if not self.auth:
            cmd.append("--no-auth")
        elif password_file is not None:
            cmd += ["--password-file", str(password_file)]
        with open(self.log_file, "wb") as log:
            try:
                self._proc = subprocess.Popen(
                    cmd, cwd=self.home, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True,
                )
            except OSError as e:
                raise ServerError(f"cannot run {java}: {e}") from e
        self._pid_file.write_text(f"{self._proc.pid}\n")
        return self._proc.pid

    def _await_ready(self, pid: int, password_file: Path | None) -> ServerInfo:
        """Wait for ready.json from ``pid`` and a successful Bolt handshake, within the start timeout."""
        deadline = time.monotonic() + self.start_timeout_s
        delay = 0.1
        try:
            while True:
                if not self._alive(pid):
                    code = self._proc.returncode if self._proc is not None and self._proc.pid == pid else None
                    self._clear_run_files()
                    raise ServerError(
                        f"the Neo4j launcher exited during start-up"
                        + (f" (exit code {code})" if code is not None else ""),
                        hint=self._log_hint(),
                    )
                ready = self._read_ready()
                if ready is not None and ready["pid"] == pid:
                    info = self._info(ready)
                    if self._bolt_answers(info):
                        return info
                if time.monotonic() > deadline:
                    hint = self._log_hint()
                    self._kill(pid)
                    raise ServerError(f"Neo4j did not become ready within {self.start_timeout_s:.0f} s", hint=hint)
                time.sleep(delay)
                delay = min(delay * 1.5, 0.5)
        finally:
            if password_file is not None and password_file.parent == self.run_dir:
                password_file.unlink(missing_ok=True)

    def _bolt_answers(self, info: ServerInfo) -> bool:
        """True once the official driver connects (and authenticates); False while Bolt is not up yet."""
        from neo4j import GraphDatabase
        from neo4j import exceptions as neo4j_exc

        auth = (info.user, info.password or "") if info.auth else None
        try:
            with GraphDatabase.driver(info.uri, auth=auth, connection_timeout=5) as driver:
                driver.verify_connectivity()
            return True
        except neo4j_exc.AuthError as e:
            self._kill(info.pid)
            raise AuthenticationFailed(
                f"the local Neo4j under {self.home} rejected the password for user {USER}",
                hint=f"its store was created with another password; pass that one, or delete {self.home / 'data'}"
                     " to start afresh",
            ) from e
        except (neo4j_exc.ServiceUnavailable, neo4j_exc.SessionExpired, OSError):
            return False

    # -- process helpers --------------------------------------------------------------------------------
    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        return _pid_alive(pid)

    def _wait_exit(self, pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self._alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _kill(self, pid: int) -> None:
        for sig, wait_s in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if self._wait_exit(pid, wait_s):
                break
        self._clear_run_files()

    # -- files ------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialises start/stop on one home across processes."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read_ready(self) -> dict | None:
        try:
            doc = json.loads(self._ready_file.read_text())
            int(doc["pid"]), int(doc["bolt_port"]), int(doc["http_port"])
            return doc
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _read_pid(self) -> int | None:
        try:
            return int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _clear_run_files(self) -> None:
        for path in (self._ready_file, self._pid_file):
            path.unlink(missing_ok=True)

    def _info(self, ready: dict) -> ServerInfo:
        auth = bool(ready.get("auth", False))
        return ServerInfo(
            uri=ready.get("bolt_uri") or f"bolt://{HOST}:{ready['bolt_port']}",
            http_url=ready.get("http_url"),
            pid=int(ready["pid"]),
            home=self.home,
            auth=auth,
            user=USER,
            password=self._resolved_password() if auth else None,
            bolt_port=int(ready["bolt_port"]),
            http_port=int(ready["http_port"]),
            store_bytes=_tree_bytes(self.home / "data"),
        )

    def _log_hint(self) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return f"no launcher log at {self.log_file}"
        return f"last lines of {self.log_file}:\n{_tail(text)}"


# -- neo4j.conf -----------------------------------------------------------------------------------------
CONF_BEGIN = "# >>> kgplatform: written by kgp at every start; put your own settings outside this block >>>"
CONF_END = "# <<< kgplatform <<<"


def write_conf(conf: Path, managed: dict[str, str]) -> bool:
    """Rewrite kgp's block in ``conf`` (created if missing) with ``managed``; True when the file changed.

    Lines outside the block are the user's and are kept as they are; a key the user sets there wins (it is left
    out of the block, since Neo4j refuses a setting given twice). Idempotent; written atomically.
    """
    try:
        text = conf.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {conf}: {e}") from e
    user: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.strip() == CONF_BEGIN:
            inside = True
        elif line.strip() == CONF_END:
            inside = False
        elif not inside:
            user.append(line)
    user_keys = {line.split("=", 1)[0].strip() for line in user
                 if "=" in line and not line.lstrip().startswith("#")}
    while user and not user[-1].strip():
        user.pop()
    block = [f"{k}={v}" for k, v in managed.items() if k not in user_keys]
    lines = user + ([""] if user and block else []) + ([CONF_BEGIN, *block, CONF_END] if block else [])
    new = "\n".join(lines) + "\n" if lines else ""
    if new == text:
        return False
    conf.parent.mkdir(parents=True, exist_ok=True)
    tmp = conf.with_name(f".{conf.name}.{os.getpid()}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, conf)
    return True


# -- module helpers -------------------------------------------------------------------------------------
def _require(tool: str, why: str) -> str:
    path = shutil.which(tool)
    if path is None:
        install = {
            "java": "install a JDK 17+ (apt-get install openjdk-17-jdk-headless, brew install openjdk@17)",
            "javac": "install a JDK 17+, not only a JRE (apt-get install openjdk-17-jdk-headless)",
            "mvn": "install Maven (apt-get install maven, brew install maven)",
        }[tool]
        raise EnvironmentMissing(f"{why}, but '{tool}' is not on PATH", hint=f"{install}; {_ALTERNATIVES}")
    if tool == "java":
        _java_major(path)
    return path


@functools.lru_cache(maxsize=None)
def _java_major(tool: str) -> int:
    """The major version of ``java`` or ``javac``; EnvironmentMissing when below 17."""
    try:
        out = subprocess.run([tool, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise EnvironmentMissing(f"cannot run {tool}: {e}", hint=_ALTERNATIVES) from e
    text = out.stderr + out.stdout
    match = re.search(r'(?:version "|javac )(\d+)(?:\.(\d+))?', text)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # 1.8 style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise EnvironmentMissing(
            f"Java {MIN_JAVA}+ is needed for Neo4j 5.26, found {text.strip().splitlines()[0] if text.strip() else '?'}",
            hint=f"install a JDK 17+ and put it first on PATH; {_ALTERNATIVES}",
        )
    return major


def _resolve_classpath(mvn: str, pom: Path, out: Path) -> None:
    """``mvn dependency:build-classpath``: offline and quiet first, online with progress on stderr if needed."""
    goal = ["-B", "-f", str(pom), "dependency:build-classpath", f"-Dmdep.outputFile={out}"]
    offline = subprocess.run([mvn, "-o", "-q", *goal], capture_output=True, text=True, check=False)
    if offline.returncode == 0 and out.is_file():
        return
    print("Resolving the Neo4j jars with Maven (first time only, about 200 MB into ~/.m2) ...", file=sys.stderr)
    lines: list[str] = []
    proc = subprocess.Popen([mvn, *goal], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        print(line, end="", file=sys.stderr)
    if proc.wait() != 0 or not out.is_file():
        raise ServerError(
            "Maven could not resolve the Neo4j jars",
            hint=f"check network access to Maven Central; {_ALTERNATIVES}\n{_tail(''.join(lines))}",
        )


def _load_build(target: Path) -> _Build | None:
    """A finished build whose jars are all still in ~/.m2, else None."""
    try:
        if not (target / "ok").is_file():
            return None
        classpath = (target / "classpath.txt").read_text().strip()
    except OSError:
        return None
    if not all(Path(p).exists() for p in classpath.split(os.pathsep) if p):
        return None
    return _Build(classes=target / "classes", classpath=classpath)


def _free_port() -> int:
    """A free TCP port on 127.0.0.1 (free now; the launcher binds it within a second or two)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _check_port_free(port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as e:
            raise ServerError(
                f"port {port} on {HOST} is already in use",
                hint="another Neo4j (perhaps one under another home) is listening there; pick other ports "
                     "(0 = any free port) or stop that server",
            ) from e


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):  # a zombie has exited
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _is_launcher(pid: int, home: Path) -> bool:
    """``pid`` is alive and is this home's launcher (not a recycled pid); trusts the pid without /proc."""
    if not _pid_alive(pid):
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return MAIN_CLASS.encode() in args and str(home).encode() in args


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    os.chmod(path, 0o600)


def _tree_bytes(root: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
