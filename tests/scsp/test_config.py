"""Configuration: documented defaults, unknown keys named, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from scsp.config import DEFAULT_CONFIG_PATH, Config, ConfigError, join_url, load_config


def test_the_shipped_config_file_equals_the_built_in_defaults() -> None:
    shipped = load_config(DEFAULT_CONFIG_PATH, env={})
    defaults = Config()
    assert shipped.party == defaults.party and shipped.http == defaults.http
    assert shipped.planning == defaults.planning and shipped.profiles == defaults.profiles
    assert shipped.readback == defaults.readback and shipped.optimizer == defaults.optimizer
    assert shipped.defaults == defaults.defaults
    assert Path(shipped.db_path) == DEFAULT_CONFIG_PATH.parent / "scsp.db"


def test_an_unknown_key_is_an_error_that_names_it(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[planning]\ninterval_s = 60\nintervall_s = 5\n')
    with pytest.raises(ConfigError, match="intervall_s"):
        load_config(path, env={})


def test_a_wrong_value_is_an_error_that_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[party]\ncountry_code = "NLD"\n')
    with pytest.raises(ConfigError, match="country_code"):
        load_config(path, env={})


def test_environment_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('db_path = "a.db"\n[http]\nport = 1234\n')
    config = load_config(None, env={"SCSP_CONFIG": str(path), "SCSP_DB_PATH": "/data/x.db", "SCSP_PORT": "9999",
                                    "SCSP_HOST": "0.0.0.0", "SCSP_PUBLIC_URL": "https://scsp.example/"})
    assert config.db_path == "/data/x.db"
    assert (config.http.port, config.http.host) == (9999, "0.0.0.0")
    assert config.versions_url == "https://scsp.example/ocpi/versions"
    with pytest.raises(ConfigError, match="SCSP_PORT"):
        load_config(path, env={"SCSP_PORT": "eighty"})


def test_a_relative_db_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('db_path = "data/scsp.db"\n')
    assert load_config(path, env={}).db_path == str(tmp_path / "data" / "scsp.db")


def test_urls_are_joined_with_exactly_one_slash() -> None:
    assert join_url("http://h/ocpi/", "/2.2.1/", "sessions") == "http://h/ocpi/2.2.1/sessions"
    assert join_url("http://h/ocpi", "2.2.1") == "http://h/ocpi/2.2.1"
    assert join_url("http://h/x/", "") == "http://h/x"


def test_per_party_profile_overrides_merge_and_bad_keys_are_named(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[profiles]\nmax_periods = 10\n[party_profiles.NL-ABC]\nac_charging_rate_unit = "W"\n'
                    'max_periods = 4\n')
    config = load_config(path, env={})
    special = config.profile_settings_for("nl", "abc")
    assert (special.ac_charging_rate_unit, special.max_periods) == ("W", 4)
    assert config.profile_settings_for("NL", "XYZ").max_periods == 10  # everyone else: [profiles]
    path.write_text('[party_profiles.NL-ABC]\nmax_period = 4\n')
    with pytest.raises(ConfigError, match="party_profiles.NL-ABC.*max_period"):
        load_config(path, env={})


def test_a_named_config_file_that_does_not_exist_is_an_error_that_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "typo.toml"
    with pytest.raises(ConfigError, match="typo.toml"):
        load_config(missing, env={})
    with pytest.raises(ConfigError, match="typo.toml"):
        load_config(None, env={"SCSP_CONFIG": str(missing)})
    assert list(tmp_path.iterdir()) == []  # no database created next to it


def test_only_the_default_config_file_may_be_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("scsp.config.DEFAULT_CONFIG_PATH", tmp_path / "config.toml")
    config = load_config(None, env={})
    assert config.http == Config().http and config.db_path == str(tmp_path / "scsp.db")


@pytest.mark.parametrize("port", ["70000", "-1", "abc", "80.5"])
def test_an_invalid_scsp_port_is_an_error_that_names_scsp_port(tmp_path: Path, port: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text("")
    with pytest.raises(ConfigError, match=f"SCSP_PORT.*{port}"):
        load_config(path, env={"SCSP_PORT": port})


def test_a_port_from_the_environment_moves_the_public_url_unless_that_is_set(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("")
    config = load_config(path, env={"SCSP_PORT": "8010", "SCSP_SIM_PORT": "8110"})
    assert (config.http.port, config.http.public_url) == (8010, "http://127.0.0.1:8010")
    assert (config.simulator.port, config.simulator.public_url) == (8110, "http://127.0.0.1:8110")
    assert config.versions_url == "http://127.0.0.1:8010/ocpi/versions"
    # A URL someone set (behind a proxy, say) stays, from the file or the environment.
    path.write_text('[http]\npublic_url = "https://scsp.example"\n')
    assert load_config(path, env={"SCSP_PORT": "8010"}).http.public_url == "https://scsp.example"
    both = load_config(path, env={"SCSP_SIM_PORT": "8110", "SCSP_SIM_PUBLIC_URL": "http://sim.example"})
    assert both.simulator.public_url == "http://sim.example"
    # Without a port from the environment, nothing moves.
    path.write_text('[http]\nport = 8020\n')
    assert load_config(path, env={}).http.public_url == "http://127.0.0.1:8000"
    with pytest.raises(ConfigError, match="SCSP_SIM_PORT"):
        load_config(path, env={"SCSP_SIM_PORT": "x"})
