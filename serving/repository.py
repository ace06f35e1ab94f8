"""Which version is served: TF Serving's file-system source and "latest" version policy.

Like TF Serving with its defaults, the repository polls `<model_base_path>` (every
`poll_seconds`), loads the highest integer version directory, and swaps it in only once it
is loaded and warmed up (availability preserving: the old version answers until then). A
version that fails to load is reported in state END with the error, and the previous one
stays AVAILABLE. Both the gRPC and the REST server ask this one object.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from serving.layout import latest_version
from serving.model import LoadedModel, ServingError

LOG = logging.getLogger(__name__)


@dataclass
class VersionStatus:
    """One row of GetModelStatus: state is TF Serving's (START, LOADING, AVAILABLE, UNLOADING, END)."""

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""

    @property
    def error_code_number(self) -> int:
        """tensorflow.error.Code of `error_code` (StatusProto.error_code)."""
        from serving.model import _CODE_NAMES

        return {v: k for k, v in _CODE_NAMES.items()}.get(self.error_code, 0)


class ModelRepository:
    def __init__(self, name: str, base_path: str, poll_seconds: float = 1.0, method_name_check: bool = False):
        self.name = name
        self.base_path = base_path
        self.poll_seconds = poll_seconds
        self.method_name_check = method_name_check
        self._lock = threading.Lock()
        self._current: LoadedModel | None = None
        self._status: dict[int, VersionStatus] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- loading ------------------------------------------------------------------------------
    def poll_once(self) -> bool:
        """Load the highest version if it is new; keep serving the old one until it is ready.
        True when a version is AVAILABLE afterwards."""
        version = latest_version(self.base_path)
        if version is None:
            return self._current is not None
        with self._lock:
            if version in self._status:  # loaded, loading or failed before: TF Serving does not retry forever
                return self._current is not None
            self._status[version] = VersionStatus(version, "LOADING")
        LOG.info("loading %s version %d from %s", self.name, version, self.base_path)
        started = time.monotonic()
        try:
            model = LoadedModel(self.name, f"{self.base_path}/{version}", version, self.method_name_check)
            model.warm_up()
        except Exception as e:  # any failure to load is the version's END state, not the server's
            code = e.code if isinstance(e, ServingError) else "UNKNOWN"
            LOG.error("%s version %d failed to load: %s", self.name, version, e)
            with self._lock:
                self._status[version] = VersionStatus(version, "END", code, f"{type(e).__name__}: {e}")
            return self._current is not None
        with self._lock:
            old, self._current = self._current, model
            self._status[version] = VersionStatus(version, "AVAILABLE")
            if old is not None:
                self._status[old.version] = VersionStatus(old.version, "END")
        LOG.info("%s version %d AVAILABLE after %.1f s", self.name, version, time.monotonic() - started)
        return True  # the old version is freed once no request holds it (no explicit close)

    def load_first(self, stop: threading.Event | None = None) -> None:
        """Block until a version is AVAILABLE, as TF Serving's ServerCore::Create does before
        the server opens its ports (model_servers/server.cc:333, 374-417). A first version
        that fails to load ends the wait with its error (TF Serving then exits)."""
        waited = False
        while not (stop and stop.is_set()):
            if self.poll_once():
                return
            failed = [s for s in self._status.values() if s.state == "END"]
            if failed:
                raise ServingError(
                    failed[-1].error_code,
                    f"version {failed[-1].version} of model {self.name} failed to load: {failed[-1].error_message}",
                )
            if not waited:
                LOG.warning("no model version under %s yet (run `make run` first); waiting for one", self.base_path)
                waited = True
            time.sleep(self.poll_seconds)

    def start(self) -> "ModelRepository":
        """Load in the background, as TF Serving does: the server answers (LOADING) meanwhile."""

        def loop():
            while not self._stop.is_set():
                try:
                    self.poll_once()
                except Exception:  # keep polling: a transient file-system error must not end serving
                    LOG.exception("polling %s failed", self.base_path)
                self._stop.wait(self.poll_seconds)

        self._thread = threading.Thread(target=loop, name=f"poll-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    # -- queries ------------------------------------------------------------------------------
    def get(self, name: str, version: int | None = None, label: str | None = None) -> LoadedModel:
        """The version answering a request for `name` (and `version` or `label`, when given):
        ServerCore::ServableRequestFromModelSpec (server_core.cc:841-871); no labels are
        configured, so every label is unknown (server_core.cc:873-892)."""
        if not name:
            raise ServingError("INVALID_ARGUMENT", "ModelSpec has no name specified.")
        if label is not None:
            raise ServingError("INVALID_ARGUMENT", f"Unrecognized servable version label: {label}")
        with self._lock:
            current = self._current
        if name != self.name or current is None:
            raise ServingError("NOT_FOUND", f"Servable not found for request: Latest({name})")
        if version is not None and version != current.version:
            raise ServingError("NOT_FOUND", f"Servable not found for request: Specific({name}, {version})")
        return current

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """GetModelStatusImpl (model_servers/get_model_status_impl.cc:75-108)."""
        if name != self.name:
            raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")
        with self._lock:
            rows = sorted(self._status.values(), key=lambda s: -s.version)
        if version is not None:
            rows = [r for r in rows if r.version == version]
            if not rows:
                raise ServingError("NOT_FOUND", f"Could not find version {version} of model {name}")
        if not rows:
            raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")
        return rows
