"""Camera streams: opening and demuxing a source, and the per-camera worker thread."""
