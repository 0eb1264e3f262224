"""The owner's YAML config as frozen pydantic models; every error names its key path and line.

This is the package's public face: import config names from `agent.config`, not from its
modules. Inside, one job per module: the whole file and `load_config` (document.py), one
module per section (cameras, recording and storage, broker, police, owner_page,
notifications), key and field parsing shared by the sections (fields.py), the YAML loader
that keeps line numbers (yaml_loader.py) and the error wording (wording.py).
"""

from agent.config.broker import MQTT_PORT, MQTTS_PORT, RegistryConfig
from agent.config.cameras import (
    CameraConfig,
    Expectations,
    Location,
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
from agent.config.fields import (
    Bytes,
    ConfigPath,
    ConfigSection,
    Identifier,
    ReadableFile,
    Seconds,
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
    RecordingConfig,
    RecordSettings,
    StorageConfig,
)
from agent.config.yaml_loader import MAX_YAML_NODES, load_yaml_model
from agent.durations import parse_duration, parse_size

__all__ = [
    "DEFAULT_DATA_DIR",
    "LOCAL_NETWORKS",
    "MAX_YAML_NODES",
    "MQTTS_PORT",
    "MQTT_PORT",
    "AgentConfig",
    "AgentSection",
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
    "OwnerPageConfig",
    "PoliceConfig",
    "PoliceKey",
    "ReadableFile",
    "RecordSettings",
    "RecordingConfig",
    "RegistryConfig",
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
