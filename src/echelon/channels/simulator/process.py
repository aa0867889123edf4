"""The simulator in a child process, for tests, benchmarks and the demo.

``start`` returns once the child has printed READY *and* a TCP connect to its port
succeeded; ``stop`` asks it to finish (SIGTERM) and returns its ``SimulatorStats``;
``kill`` drops it without a word (SIGKILL), which to a client is an SMSC crash —
every connection reset at once. A stopped or killed simulator can be started again
on the same port (an SMSC coming back).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from echelon.channels.simulator.models import SimulatorConfig, SimulatorStats


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class SimulatorError(RuntimeError):
    pass


class SimulatorProcess:
    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        port: int | None = None,
        startup_timeout: float = 15.0,
        env: dict[str, str] | None = None,
    ) -> None:
        """``port`` overrides the config's; by default a free port is picked, so tests
        running side by side never collide."""
        config = config or SimulatorConfig()
        self.config = config.model_copy(update={"port": port or free_port(config.host)})
        self._startup_timeout = startup_timeout
        self._env = env
        self._dir = Path(tempfile.mkdtemp(prefix="echelon-sim-"))
        self._config_path = self._dir / "config.json"
        self._config_path.write_text(self.config.model_dump_json(), encoding="utf-8")
        self._stats_path = self._dir / "stats.json"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def log_path(self) -> Path:
        return self._dir / "simulator.log"

    def start(self) -> None:
        if self._process is not None:
            raise SimulatorError("simulator already running")
        self._stats_path.unlink(missing_ok=True)
        # smpp34 sizes its tokio pool when imported; on 2 cores one worker measured
        # faster than its default of two (less GIL hand-off).
        env = {"SMPP34_WORKER_THREADS": "1", **os.environ, **(self._env or {})}
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "echelon.channels.simulator",
                 "--config", str(self._config_path), "--stats", str(self._stats_path)],
                stdout=subprocess.PIPE, stderr=log, env=env,
            )  # fmt: skip
        self._process = process
        try:
            self._await_ready(process)
        except BaseException:
            self.kill()
            raise

    def _await_ready(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        deadline = time.monotonic() + self._startup_timeout
        line = b""
        while not line.startswith(b"READY"):
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([process.stdout], [], [], max(0.0, remaining))
            if not readable:
                raise SimulatorError(f"simulator not ready after {self._startup_timeout}s")
            line = process.stdout.readline()
            if not line:
                log = self.log_path.read_text(encoding="utf-8", errors="replace")
                raise SimulatorError(f"simulator exited during startup:\n{log}")
        # READY is printed after the listener is bound; connecting proves it accepts.
        with socket.create_connection((self.host, self.port), timeout=deadline - time.monotonic()):
            pass

    def stop(self, timeout: float = 15.0) -> SimulatorStats:
        """Shut down cleanly and return what the simulator saw."""
        process = self._require()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise SimulatorError("simulator did not stop on SIGTERM") from None
        finally:
            self._close(process)
        if process.returncode != 0:
            log = self.log_path.read_text(encoding="utf-8", errors="replace")
            raise SimulatorError(f"simulator exited with {process.returncode}:\n{log}")
        if not self._stats_path.exists():
            raise SimulatorError(f"simulator wrote no stats (exit {process.returncode})")
        return SimulatorStats.model_validate_json(self._stats_path.read_text(encoding="utf-8"))

    def kill(self) -> None:
        """SIGKILL: every connection drops at once, no unbind, no stats."""
        process = self._process
        if process is None:
            return
        process.kill()
        process.wait()
        self._close(process)

    def _require(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise SimulatorError("simulator is not running")
        return self._process

    def _close(self, process: subprocess.Popen[bytes]) -> None:
        if process.stdout is not None:
            process.stdout.close()
        self._process = None

    def __enter__(self) -> SimulatorProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self.stop()
        if exc_type is None:  # keep the log of a failed run for whoever investigates
            self.close()

    def close(self) -> None:
        """Kill the simulator if it still runs and remove its files (config, stats, log)."""
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)
