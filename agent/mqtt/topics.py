"""Every MQTT topic of the contract (DESIGN.md), in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    prefix: str
    agent: str

    @property
    def _base(self) -> str:
        return f"{self.prefix}/agents/{self.agent}"

    @property
    def state(self) -> str:
        """Retained birth / last will of the agent."""
        return f"{self._base}/state"

    def health(self, camera: str) -> str:
        """Retained health object of one camera."""
        return f"{self._base}/cameras/{camera}/health"

    @property
    def requests(self) -> str:
        """Signed police requests arrive here (registry to agent)."""
        return f"{self._base}/requests"

    def request_status(self, request_id: str) -> str:
        return f"{self._base}/requests/{request_id}/status"

    @property
    def audit(self) -> str:
        return f"{self._base}/audit"
