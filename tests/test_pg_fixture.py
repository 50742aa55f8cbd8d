"""The throwaway server itself: password auth is enforced and the reject line works."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.db
def test_server_requires_the_password(pg: Any) -> None:
    import psycopg

    assert pg.execute("select 1") == [(1,)]
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(pg.url(password="wrong"), connect_timeout=5)
    assert str(pg.socket_dir).startswith(str(pg.base))
