"""Picture and stream quality: pure metrics, and the rolling assessment that makes health."""
