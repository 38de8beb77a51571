"""Fixtures of the page's tests: what tests import lives in helpers.py."""

import pytest

from vigint.config import EmailSettings, Settings, StorageSettings


@pytest.fixture
async def site(start, tmp_path, mailbox):
    """A real server whose page sends sign-in emails to the test's mailbox; `base` is the page's address."""
    settings = Settings(storage=StorageSettings(data_dir=tmp_path / "data"),
                        email=EmailSettings(smtp_host="127.0.0.1", smtp_port=mailbox.port, security="none"))
    server = await start(settings)
    server.base = f"http://127.0.0.1:{server.page.port}"
    return server
