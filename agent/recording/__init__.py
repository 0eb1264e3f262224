"""Rolling recording: segments copied from the stream, their SQLite index and retention."""
