"""Demo aids: a simulated camera to point the agent at when no real one is at hand.

A folder of the checkout, not a part of the installed agent (pyproject installs only
`agent`, `contract` and `registry`): the demo script, the tests and the benchmarks run it
from here."""
