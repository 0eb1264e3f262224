"""Config reading that the agent's config (`agent.config`) and the registry's
(`registry.config`) share, so both report problems alike: "key path: what was wrong
(line N)", exit 78.

Import from here, not from the modules: the YAML loader that keeps line numbers
(yaml_loader.py), the error wording (wording.py), the section base model and field types
(fields.py) and the broker connection settings, the agent's `registry:` section and the
registry's `mqtt:` section (broker.py)."""

from contract.config.broker import MQTT_PORT, MQTTS_PORT, BrokerConfig
from contract.config.fields import (
    Bytes,
    ConfigPath,
    ConfigSection,
    Identifier,
    ReadableFile,
    Seconds,
)
from contract.config.yaml_loader import MAX_YAML_NODES, load_yaml_model

__all__ = [
    "MAX_YAML_NODES",
    "MQTTS_PORT",
    "MQTT_PORT",
    "BrokerConfig",
    "Bytes",
    "ConfigPath",
    "ConfigSection",
    "Identifier",
    "ReadableFile",
    "Seconds",
    "load_yaml_model",
]
