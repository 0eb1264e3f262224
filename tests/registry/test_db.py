"""The registry database opens on both engines and says clearly when it cannot."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from registry.db.engine import open_engine
from registry.db.schema import agents
from registry.errors import RegistryError


def test_tables_are_created_and_usable(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(agents.insert().values(agent_id="shop-42", audit_entries=0))
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(agents)).scalar_one() == 1


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysql://root@127.0.0.1/test", "'mysql' is not supported"),
        ("not a url", "not a database URL"),
        ("postgresql://nobody@127.0.0.1:1/nothing", r"127\.0\.0\.1:1/nothing: connection failed"),
    ],
)
def test_bad_database_url_is_named(url: str, words: str) -> None:
    with pytest.raises(RegistryError, match=words):
        open_engine(url)
