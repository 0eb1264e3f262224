"""Demo aids: a simulated camera to point the agent at when no real one is at hand."""
