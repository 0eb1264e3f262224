"""The whole config file: `AgentConfig` gathers every section (cameras unique by id), with
the agent's own small sections (`agent:`, `clock:`); `load_config` reads it from YAML."""

from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, ValidationError, ValidatorFunctionWrapHandler, model_validator

from agent.config.cameras import CameraConfig
from agent.config.notifications import NotificationsConfig
from agent.config.owner_page import OwnerPageConfig
from agent.config.police import PoliceConfig
from agent.config.recording import StorageConfig
from contract.config.broker import BrokerConfig
from contract.config.fields import ConfigPath, ConfigSection, Identifier, Loc, Seconds
from contract.config.fields import at_least_seconds as _at_least_seconds
from contract.config.fields import raise_with as _raise_with
from contract.config.fields import rule_error as _rule_error
from contract.config.yaml_loader import load_yaml_model

DEFAULT_DATA_DIR = Path("/var/lib/camera-agent")


class AgentSection(ConfigSection):
    """Who this agent is and where it keeps its state."""

    id: Identifier
    data_dir: ConfigPath = DEFAULT_DATA_DIR
    locale: Literal["nl", "en"] = "en"


class ClockConfig(ConfigSection):
    """Whether requests wait until the system clock is synchronised, and how far a camera's
    own clock may be off before health says `clock_drift` (docs/onvif.md)."""

    require_sync: bool = True
    # The times a camera burns into its picture, and a court compares with the footage's
    # times, should agree with the agent's to within a few seconds; ten leaves room for a
    # camera that is set by hand and then kept by NTP.
    camera_drift_limit: Annotated[Seconds, _at_least_seconds(1)] = 10.0


class AgentConfig(ConfigSection):
    """The whole config file."""

    agent: AgentSection
    registry: BrokerConfig
    clock: ClockConfig = Field(default_factory=ClockConfig)
    police: PoliceConfig = Field(default_factory=PoliceConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    cameras: list[CameraConfig] = Field(min_length=1)
    # E-mail, webhook or ntfy messages to the owner; none without this section.
    notifications: NotificationsConfig | None = None
    owner_page: OwnerPageConfig = Field(default_factory=OwnerPageConfig)

    @model_validator(mode="wrap")
    @classmethod
    def _unique_camera_ids(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Self:
        # Checked on the raw input, so a duplicate is reported even when other keys are wrong.
        problems: list[tuple[Loc, str]] = []
        cameras = data.get("cameras") if isinstance(data, dict) else None
        first: dict[str, int] = {}
        for index, camera in enumerate(cameras if isinstance(cameras, list) else []):
            camera_id = camera.get("id") if isinstance(camera, dict) else None
            if not isinstance(camera_id, str):
                continue
            if camera_id in first:
                problems.append(
                    (
                        ("cameras", index, "id"),
                        f"duplicate camera id '{camera_id}' (also cameras[{first[camera_id]}])",
                    )
                )
            else:
                first[camera_id] = index
        try:
            result: Self = handler(data)
        except ValidationError as exc:
            _raise_with(exc, problems)
        if problems:
            _rule_error(*problems)
        return result

    @property
    def footage_dir(self) -> Path:
        """Where recorded segments go: storage.path, or `footage` in the data directory."""
        return self.storage.path or self.agent.data_dir / "footage"

    def camera(self, camera_id: str) -> CameraConfig | None:
        """The camera with this id, if configured."""
        return next((c for c in self.cameras if c.id == camera_id), None)


def load_config(path: str | Path, *, check_folders: bool = False) -> AgentConfig:
    """Read and validate the config file; ConfigError lists every problem found.

    `check_folders` (for `camera-agent check`) also requires each directory-mode
    camera's `recording.path` to be a readable folder now."""
    return load_yaml_model(path, AgentConfig, {"check_folders": check_folders})
