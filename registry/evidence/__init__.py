"""Evidence intake (tus 1.0) and package verification, on the server and offline."""
