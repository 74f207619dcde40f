"""The engine's side of the engine link (see Sources/EngineLink/EngineMessage.swift for the protocol)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .layout import layout_size

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 4 << 20


class TributaryError(RuntimeError):
    """The worker stopped, with the same message `tributary worker` prints."""


@dataclass
class Round:
    """A round to train from the parameters now in the link's buffer: `steps` inner steps, or with `seconds`
    (timed rounds) as many as fit that much compute time, at most `steps`."""
    index: int
    steps: int
    report: Optional[dict]
    seconds: Optional[float] = None

    def is_over(self, steps: int, compute_seconds: float) -> bool:
        """Whether the round ends after `steps` steps that took `compute_seconds`: at `steps`, or (timed) once
        one more step of the mean length would overrun the budget, the rule Tributary's own engine follows."""
        if steps >= self.steps:
            return True
        return self.seconds is not None and steps > 0 and compute_seconds + compute_seconds / steps > self.seconds


class EngineLink:
    """Starts `tributary worker --engine-socket` for this engine and speaks to it.

    `layout` lists the engine's parameters (name, shape) in buffer order, or is a function that makes that
    list from the run's config (a dict: model, batchSize, sequenceLength, optimizer, data, strategy); it
    must be the run's model (`gpt2_layout` for GPT-2). The worker flags (`--ca`, `--ca-hash`, `--insecure`, `--out`, ...) go in
    `worker_args`; `tributary` is the executable (default: $TRIBUTARY or `tributary` on PATH). With
    `socket_path` instead of `join`, it connects to a worker started separately with `--engine-socket`.
    """

    def __init__(self, layout: Union[Sequence[Tuple[str, Sequence[int]]], Callable[[dict], Sequence]], *,
                 join: Optional[str] = None, token_file: Optional[str] = None, name: str = "engine",
                 worker_args: Sequence[str] = (), tributary: Optional[str] = None, socket_path: Optional[str] = None,
                 engine: str = "python", connect_timeout: float = 120.0, quiet: bool = False):
        self.name = name
        self._errors: List[str] = []
        self._folder: Optional[str] = None
        self._process: Optional[subprocess.Popen] = None
        if socket_path is None:
            if not join or not token_file:
                raise TributaryError("give join= and token_file= (to start a worker), or socket_path= (to use one)")
            executable = tributary or os.environ.get("TRIBUTARY") or shutil.which("tributary")
            if not executable:
                raise TributaryError("no tributary executable: pass tributary=PATH, set $TRIBUTARY, or put it on PATH")
            self._folder = tempfile.mkdtemp(prefix="tributary-link-")
            socket_path = os.path.join(self._folder, "engine.sock")
            command = [executable, "worker", "--join", join, "--token-file", token_file, "--name", name,
                       "--engine-socket", socket_path, *worker_args]
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE)
            self._stderr = threading.Thread(target=self._forward_stderr, args=(quiet,), daemon=True)
            self._stderr.start()
        self._socket = self._connect(socket_path, connect_timeout)
        self._pending = b""
        self.parameters: Optional[np.ndarray] = None
        self.final_report: Optional[dict] = None
        self.round: Optional[Round] = None
        run = self._receive("run")
        self.config: dict = run["config"]
        # The model's dimensions, also where the config names a preset ("model: tiny").
        self.config["model"] = run["model"]
        self.rounds = int(run["rounds"])
        self.inner_steps = int(self.config["strategy"]["innerSteps"])
        self.batch_size = int(self.config["batchSize"])
        self.sequence_length = int(self.config["sequenceLength"])
        if callable(layout):
            layout = layout(self.config)
        self.layout = [(str(n), [int(d) for d in s]) for n, s in layout]
        self._send({"kind": "hello", "version": PROTOCOL_VERSION, "engine": engine,
                    "layout": [{"name": n, "shape": s} for n, s in self.layout]})
        ready = self._receive("ready")
        count = int(ready["count"])
        if count != layout_size(self.layout):
            raise TributaryError(f"the worker's buffer holds {count} values; this engine's layout {layout_size(self.layout)}")
        self.parameters = np.memmap(ready["buffer"], dtype=np.float32, mode="r+", shape=(count,))

    def next_round(self) -> Optional[Round]:
        """Waits for the next round (its starting parameters are then in `parameters`), or returns None when
        the run finished (`parameters` then hold the final shared model, `final_report` the last report)."""
        message = self._receive("round", "finished")
        if message["kind"] == "finished":
            self.final_report = message.get("report")
            self.round = None
            return None
        seconds = message.get("seconds")
        self.round = Round(int(message["round"]), int(message["steps"]), message.get("report"),
                           None if seconds is None else float(seconds))
        return self.round

    def trained(self, steps: int, loss: float, seconds: float) -> None:
        """Says the round is trained: `parameters` hold the result of `steps` inner steps."""
        if self.round is None:
            raise TributaryError("no round is in progress: call next_round() first")
        if isinstance(self.parameters, np.memmap):
            self.parameters.flush()
        self._send({"kind": "trained", "round": self.round.index, "steps": int(steps), "loss": float(loss),
                    "seconds": float(seconds)})

    def close(self, timeout: float = 60.0) -> int:
        """Lets the worker go (it leaves the run if it has not finished) and returns its exit status."""
        final = None if self.parameters is None else np.array(self.parameters)
        self.parameters = final
        try:
            self._socket.close()
        except OSError:
            pass
        if self._process is None:
            return 0
        try:
            status = self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            status = self._process.wait()
        self._stderr.join(timeout=5)
        shutil.rmtree(self._folder, ignore_errors=True)
        return status

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # The worker's stderr goes on to ours; its error lines are kept for exceptions.
    def _forward_stderr(self, quiet: bool) -> None:
        for raw in self._process.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith("error: "):
                self._errors.append(line[len("error: "):])
            if not quiet:
                print(f"[{self.name}] {line}", file=sys.stderr, flush=True)

    def _failure(self, fallback: str) -> TributaryError:
        if self._process is None:
            return TributaryError(fallback)
        if self._process.poll() is None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._stderr.join(timeout=5)
        return TributaryError(self._errors[-1] if self._errors else fallback)

    def _connect(self, path: str, timeout: float) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise self._failure(f"tributary worker exited with status {self._process.returncode} before the engine connected")
            if os.path.exists(path):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(path)
                    return s
                except OSError:
                    s.close()
            if time.monotonic() > deadline:
                if self._process is not None:
                    self._process.terminate()
                raise TributaryError(f"nothing listens on {path} after {timeout:.0f} s")
            time.sleep(0.02)

    def _send(self, message: dict) -> None:
        try:
            self._socket.sendall(json.dumps(message).encode() + b"\n")
        except OSError as error:
            raise self._failure(f"the worker closed the engine link ({error})")

    def _receive(self, *kinds: str) -> dict:
        while b"\n" not in self._pending:
            if len(self._pending) > MAX_LINE_BYTES:
                raise TributaryError(f"the worker sent a line over {MAX_LINE_BYTES} bytes")
            try:
                chunk = self._socket.recv(1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                raise self._failure("the worker closed the engine link")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        message = json.loads(line)
        if message.get("kind") == "error":
            raise TributaryError(message.get("message", "the worker stopped"))
        if message.get("kind") not in kinds:
            raise TributaryError(f"the worker sent '{message.get('kind')}' where the link expects {' or '.join(kinds)}")
        return message
