"""Configs with a `notifications:` section, read from a file as the agent reads them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import AgentConfig, load_config

ConfigMaker = Callable[..., AgentConfig]


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigMaker:
    """`make_config(notifications, locale="en", **sections)` -> the loaded AgentConfig."""

    def make(notifications: dict[str, Any] | None, locale: str = "en", **sections: Any) -> Any:
        data: dict[str, Any] = {
            "agent": {"id": "shop-42", "data_dir": str(tmp_path / "state"), "locale": locale},
            "registry": {"broker": "mqtt://127.0.0.1"},
            "cameras": [
                {"id": "front", "name": "Voordeur", "url": "rtsp://cam.local/front"},
                {"id": "back", "url": "rtsp://cam.local/back"},
            ],
            **sections,
        }
        if notifications is not None:
            data["notifications"] = notifications
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        return load_config(path)

    return make
