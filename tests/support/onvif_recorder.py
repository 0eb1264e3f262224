"""A test NVR's ONVIF services: the test camera's device and media services (onvif_device.py)
plus Profile G's search service (GetRecordingSummary, FindRecordings,
GetRecordingSearchResults) and replay service (GetReplayUri). Like the camera, every message
is parsed and built by zeep against the WSDL files onvif-zeep-async ships, so an answer that
breaks ONVIF's schema fails here as it would in a real client. The replay URI it hands out is
the test's (a GStreamer ONVIF RTSP server, replay_recorder.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from tests.support.onvif_device import (
    _VERSION,
    InvalidArgs,
    OnvifDevice,
    Unsupported,
    _binding,
)

SEARCH_PATH = "/onvif/search_service"
REPLAY_PATH = "/onvif/replay_service"
SEARCH_NS = "http://www.onvif.org/ver10/search/wsdl"
REPLAY_NS = "http://www.onvif.org/ver10/replay/wsdl"


def search_binding() -> Any:
    return _binding("search.wsdl", SEARCH_NS, "SearchBinding")


def replay_binding() -> Any:
    return _binding("replay.wsdl", REPLAY_NS, "ReplayBinding")


@dataclass(frozen=True)
class Recording:
    """One recording the NVR holds: of which source (camera), from when to when, and where
    its replay is served."""

    token: str
    source_id: str
    start: dt.datetime
    end: dt.datetime
    replay_uri: str


@dataclass
class OnvifRecorder(OnvifDevice):
    recordings: list[Recording] = field(default_factory=list)
    model: str = "TN-16"
    # A hostile NVR: what GetReplayUri hands out instead of the recording's URI.
    replay_uri_override: str | None = None
    searches: dict[str, list[Recording]] = field(default_factory=dict)

    def service_at(self, path: str) -> str | None:
        return {SEARCH_PATH: "search", REPLAY_PATH: "replay"}.get(path) or super().service_at(path)

    def binding(self, service: str) -> Any:
        if service == "search":
            return search_binding()
        if service == "replay":
            return replay_binding()
        return super().binding(service)

    def more_services(self) -> list[dict[str, Any]]:
        base = f"http://{self.host}:{self.port}"
        return [
            {"Namespace": SEARCH_NS, "XAddr": base + SEARCH_PATH, "Version": _VERSION},
            {"Namespace": REPLAY_NS, "XAddr": base + REPLAY_PATH, "Version": _VERSION},
        ]

    def answer(self, service: str, operation: str, params: Any) -> dict[str, Any]:
        if service == "search":
            return self._search(operation, params)
        if service == "replay":
            return self._replay(operation, params)
        return super().answer(service, operation, params)

    def _search(self, operation: str, params: Any) -> dict[str, Any]:
        if operation == "GetRecordingSummary":
            return {
                "Summary": {
                    "DataFrom": min((r.start for r in self.recordings), default=self.now()),
                    "DataUntil": max((r.end for r in self.recordings), default=self.now()),
                    "NumberRecordings": len(self.recordings),
                }
            }
        if operation == "FindRecordings":
            token = f"search-{len(self.searches) + 1}"
            self.searches[token] = list(self.recordings)
            return {"SearchToken": token}
        if operation == "GetRecordingSearchResults":
            found = self.searches.get(params.SearchToken)
            if found is None:
                raise InvalidArgs(f"no search {params.SearchToken!r}")
            return {
                "ResultList": {
                    "SearchState": "Completed",
                    "RecordingInformation": [_information(r) for r in found],
                }
            }
        raise Unsupported(operation)

    def _replay(self, operation: str, params: Any) -> dict[str, Any]:
        if operation == "GetReplayUri":
            for recording in self.recordings:
                if recording.token == params.RecordingToken:
                    return {"Uri": self.replay_uri_override or recording.replay_uri}
            raise InvalidArgs(f"no recording {params.RecordingToken!r}")
        raise Unsupported(operation)


def _information(recording: Recording) -> dict[str, Any]:
    return {
        "RecordingToken": recording.token,
        "Source": {
            "SourceId": recording.source_id,
            "Name": recording.source_id,
            "Location": "",
            "Description": "",
            "Address": recording.source_id,
        },
        "EarliestRecording": recording.start,
        "LatestRecording": recording.end,
        "Content": "",
        "Track": [
            {
                "TrackToken": "VIDEO001",
                "TrackType": "Video",
                "Description": "",
                "DataFrom": recording.start,
                "DataTo": recording.end,
            }
        ],
        "RecordingStatus": "Recording",
    }
