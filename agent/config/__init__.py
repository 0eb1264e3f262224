"""The owner's YAML config as frozen pydantic models; every error names its key path and line.

This is the package's public face: import config names from `agent.config`, not from its
modules. Inside, one job per module: the whole file and `load_config` (document.py), one
module per section (cameras, recording and storage, police, owner_page, notifications).
What the registry's config shares lives in the contract (`contract.config`): key and field
parsing, the YAML loader that keeps line numbers, the error wording and the `registry:`
section (the broker connection settings); they are named here as before.
"""

from agent.config.cameras import (
    CameraConfig,
    Expectations,
    Location,
    OnvifDeviceConfig,
    SourceKind,
    redact_url,
)
from agent.config.document import (
    DEFAULT_DATA_DIR,
    AgentConfig,
    AgentSection,
    ClockConfig,
    load_config,
)
from agent.config.notifications import NotificationsConfig
from agent.config.owner_page import LOCAL_NETWORKS, OwnerPageConfig
from agent.config.police import (
    Consent,
    ConsentPolicy,
    PoliceConfig,
    PoliceKey,
    police_key_from_file,
)
from agent.config.recording import (
    DirectorySettings,
    OnvifRecorderSettings,
    PlaybackSettings,
    RecordingConfig,
    RecordSettings,
    StorageConfig,
)
from contract.config import (
    MAX_YAML_NODES,
    MQTT_PORT,
    MQTTS_PORT,
    BrokerConfig,
    Bytes,
    ConfigPath,
    ConfigSection,
    Identifier,
    ReadableFile,
    Seconds,
    load_yaml_model,
)
from contract.durations import parse_duration, parse_size

__all__ = [
    "DEFAULT_DATA_DIR",
    "LOCAL_NETWORKS",
    "MAX_YAML_NODES",
    "MQTTS_PORT",
    "MQTT_PORT",
    "AgentConfig",
    "AgentSection",
    "BrokerConfig",
    "Bytes",
    "CameraConfig",
    "ClockConfig",
    "ConfigPath",
    "ConfigSection",
    "Consent",
    "ConsentPolicy",
    "DirectorySettings",
    "Expectations",
    "Identifier",
    "Location",
    "NotificationsConfig",
    "OnvifDeviceConfig",
    "OnvifRecorderSettings",
    "OwnerPageConfig",
    "PlaybackSettings",
    "PoliceConfig",
    "PoliceKey",
    "ReadableFile",
    "RecordSettings",
    "RecordingConfig",
    "Seconds",
    "SourceKind",
    "StorageConfig",
    "load_config",
    "load_yaml_model",
    "parse_duration",
    "parse_size",
    "police_key_from_file",
    "redact_url",
]
