"""Hot reload of providers.yaml: validate the whole file, then swap the runtime at once.

Triggers: the file's contents changing (polled by hash), SIGHUP, and `POST /admin/reload`.
A file that fails any check changes nothing: the running config keeps serving, and the
error (file, key path, problem) is logged, counted and shown at /admin/config/status.
Requests in flight keep the runtime they started with; no connection is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.config.errors import ConfigError
from gateway.config.load import parse_config

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway

log = logging.getLogger("gateway.reload")


@dataclass(frozen=True)
class ReloadResult:
    result: str  # success | failure | unchanged
    hash: str | None
    errors: tuple[str, ...] = ()
    at: float = 0.0
    trigger: str = ""
    actor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "hash": self.hash,
            "errors": list(self.errors),
            "at": self.at,
            "trigger": self.trigger,
            "actor": self.actor,
        }


class ConfigWatcher:
    def __init__(self, gw: Gateway, path: str | Path, interval_s: float = 1.0) -> None:
        self.gw = gw
        self.path = Path(path)
        self.interval_s = interval_s
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._seen_hash = gw.runtime.config.hash

    async def reload(
        self, trigger: str, actor: str | None = None, force: bool = True
    ) -> ReloadResult:
        async with self._lock:  # two triggers at once must not interleave their swaps
            now = time.time()
            try:
                data = await asyncio.to_thread(self.path.read_bytes)
            except OSError as exc:
                return self._failed(
                    [f"cannot read file: {exc.strerror or exc}"], None, now, trigger, actor
                )
            digest = hashlib.sha256(data).hexdigest()
            self._seen_hash = digest
            if not force and digest == self.gw.runtime.config.hash:
                # The file is the running config again (a bad edit reverted, say): what the
                # status reports must say so, not the failure before.
                result = ReloadResult("unchanged", digest, at=now, trigger=trigger, actor=actor)
                self.gw.last_reload = result.to_dict()
                return result
            try:
                # Parsing builds adapters (RSA key loading): keep it off the event loop.
                config = await asyncio.to_thread(
                    parse_config, data, source=str(self.path), base_dir=self.path.parent
                )
            except ConfigError as exc:
                return self._failed(exc.problems, digest, now, trigger, actor)
            refusal = self.gw.refusal(config)
            if refusal is not None:
                return self._failed([refusal], digest, now, trigger, actor)
            old_hash = self.gw.runtime.config.hash
            self.gw.apply(config)
            result = ReloadResult("success", digest, at=now, trigger=trigger, actor=actor)
            self.gw.last_reload = result.to_dict()
            self.gw.metrics.config_reloads.labels("success").inc()
            log.info(
                "config reloaded",
                extra={
                    "trigger": trigger,
                    "actor": actor,
                    "old_hash": old_hash,
                    "new_hash": digest,
                    "file": str(self.path),
                },
            )
            return result

    def _failed(
        self, errors: list[str], digest: str | None, now: float, trigger: str, actor: str | None
    ) -> ReloadResult:
        result = ReloadResult("failure", digest, tuple(errors), now, trigger, actor)
        self.gw.last_reload = result.to_dict()
        self.gw.metrics.config_reloads.labels("failure").inc()
        log.error(
            "config rejected; the running config keeps serving",
            extra={"trigger": trigger, "actor": actor, "file": str(self.path), "errors": errors},
        )
        return result

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                data = await asyncio.to_thread(self.path.read_bytes)
            except OSError:
                continue  # mid-rename or briefly missing: look again next tick
            digest = hashlib.sha256(data).hexdigest()
            if digest != self._seen_hash:
                await self.reload("file_change", force=False)

    @property
    def file_hash(self) -> str:
        """The hash of the file as last read (the running config's until a change is seen)."""
        return self._seen_hash

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll(), name="config-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
