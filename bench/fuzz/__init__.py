"""Coverage-guided fuzzing (atheris, libFuzzer's engine) of every parser that takes bytes
from outside: the request token, the agent messages at the registry's ingest, the config
YAML, tus headers on both sides and the recorder's file names.

`python -m bench.fuzz TARGET|all --runs N` (bench/README.md). Each target module has a
`build()` that imports the code under test (inside atheris's instrumentation, so that
coverage guides the search) and returns a `Target`: one input in, and either the parser's
own documented outcome or a crash (any other exception, a broken invariant, a hang).
"""
