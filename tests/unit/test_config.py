from pathlib import Path

import pytest

from moorage.config import ConfigError, load_settings


def test_defaults() -> None:
    settings = load_settings({}, environ={})
    assert (settings.host, settings.port, settings.data_dir) == (
        "127.0.0.1",
        5000,
        Path("moorage-data"),
    )
    assert settings.resolved_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.resolved_database_url.endswith("moorage-data/moorage.db")


def test_precedence_file_then_environment_then_command_line(tmp_path: Path) -> None:
    config = tmp_path / "moorage.toml"
    config.write_text(
        'port = 6000\nhost = "0.0.0.0"\ncreate_on_push = ["team-*"]\naccess_log = false\n'
    )
    environ = {
        "MOORAGE_CONFIG": str(config),
        "MOORAGE_PORT": "7000",
        "MOORAGE_CREATE_ON_PUSH": "a-*, b-*",
    }
    settings = load_settings({"port": 8000}, environ=environ)
    assert settings.port == 8000
    assert settings.host == "0.0.0.0"
    assert settings.create_on_push == ("a-*", "b-*")
    assert settings.access_log is False
    assert load_settings({}, environ=environ).port == 7000
    assert load_settings({"config": config}, environ={}).create_on_push == ("team-*",)


def test_empty_command_line_values_do_not_override(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('create_on_push = ["*"]\n')
    assert load_settings({"config": config, "create_on_push": ()}, environ={}).create_on_push == (
        "*",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nonsense = 1\n", "unknown setting 'nonsense'"),
        ('port = "many"\n', "invalid value"),
        ("port = [\n", "not valid TOML"),
        ("access_log = 3\n", "invalid value"),
    ],
)
def test_bad_config_files_give_one_line(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings({"config": config}, environ={})
    assert "\n" not in str(info.value)


def test_environment_values_are_checked() -> None:
    with pytest.raises(ConfigError):
        load_settings({}, environ={"MOORAGE_PORT": "http"})
    with pytest.raises(ConfigError):
        load_settings({}, environ={"MOORAGE_ACCESS_LOG": "maybe"})
    with pytest.raises(ConfigError):
        load_settings({}, environ={"MOORAGE_REGISTRY_ID": "12"})


def test_tls_needs_both_files() -> None:
    with pytest.raises(ConfigError):
        load_settings({"tls_cert": Path("cert.pem")}, environ={})


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({"config": Path("/nonexistent/moorage.toml")}, environ={})


def test_event_loop_choice() -> None:
    assert load_settings({}, environ={}).event_loop == "uvloop"
    assert load_settings({}, environ={"MOORAGE_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    with pytest.raises(ConfigError, match="event_loop"):
        load_settings({}, environ={"MOORAGE_EVENT_LOOP": "trio"})


def test_max_concurrent_uploads() -> None:
    assert (
        load_settings({}, environ={"MOORAGE_MAX_CONCURRENT_UPLOADS": "8"}).max_concurrent_uploads
        == 8
    )
    with pytest.raises(ConfigError):
        load_settings({}, environ={"MOORAGE_MAX_CONCURRENT_UPLOADS": "0"})


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("header_timeout", "2.5", 2.5),
        ("idle_timeout", "10", 10.0),
        ("body_timeout", "30", 30.0),
        ("max_connections", "100", 100),
        ("max_uploads_per_account", "5", 5),
        ("max_uploads_per_client", "3", 3),
        ("refusal_burst", "5", 5),
        ("refusal_rate", "2.5", 2.5),
    ],
)
def test_connection_and_upload_limits(name: str, text: str, expected: float) -> None:
    settings = load_settings({}, environ={f"MOORAGE_{name.upper()}": text})
    assert getattr(settings, name) == expected
    bad = "0" if name.startswith(("max_", "refusal_burst")) else "-1"
    with pytest.raises(ConfigError, match=name):
        load_settings({}, environ={f"MOORAGE_{name.upper()}": bad})


def test_fixture_images_are_emulator_modes_unless_strict() -> None:
    assert not load_settings({}, environ={}).fixture_images
    assert load_settings({"emulator": True}, environ={}).fixture_images
    strict = load_settings({}, environ={"MOORAGE_EMULATOR": "1", "MOORAGE_EMULATOR_STRICT": "1"})
    assert strict.emulator
    assert not strict.fixture_images
    # Strict alone is not emulator mode: production answers AWS's errors anyway.
    assert not load_settings({"emulator_strict": True}, environ={}).fixture_images
