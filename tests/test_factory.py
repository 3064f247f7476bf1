"""The application factory."""

import pytest

from webapp import create_app
from webapp.services import search_text


def test_config_overrides_environment(tmp_path):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"})
    assert app.testing
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("x.db")


def test_default_database_is_sqlite_under_instance(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/crm.sqlite3"
    assert (tmp_path / "secret_key").exists()


def test_database_url_postgres_gets_the_driver(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db.example/crm")
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.example/crm"


@pytest.fixture
def region_reset():
    yield
    search_text.configure(None)


def test_default_phone_region_is_read_from_the_environment(monkeypatch, tmp_path, region_reset):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("DEFAULT_PHONE_REGION", "us")
    create_app()
    assert search_text.phone_region() == "US"
    monkeypatch.delenv("DEFAULT_PHONE_REGION")
    create_app()
    assert search_text.phone_region() is None


def test_an_unknown_phone_region_stops_the_app_with_a_clear_message(
    monkeypatch, tmp_path, region_reset
):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("DEFAULT_PHONE_REGION", "UK")
    with pytest.raises(ValueError, match="DEFAULT_PHONE_REGION must be a two-letter country"):
        create_app()
