"""Settings fail loudly on junk and default sensibly."""

from __future__ import annotations

import pytest

from service.settings import SettingsError, ensure_secret_key, load_settings


def test_defaults_and_environment(tmp_path):
    settings = load_settings(environ={"KEEPWARM_INTAKE_ADDRESS": "Followup@Team.example",
                                      "KEEPWARM_INSTANCE_DIR": str(tmp_path), "KEEPWARM_SEND_AS_REP": "yes"},
                             env_file=None)
    assert settings.intake_address == "followup@team.example"
    assert settings.own_domains == ("team.example",)
    assert settings.send_as_rep is True
    assert settings.database_url == f"sqlite:///{tmp_path / 'keepwarm.db'}"


@pytest.mark.parametrize("name, value", [("KEEPWARM_SEND_AS_REP", "maybe"), ("KEEPWARM_TIMEZONE", "Mars/Base"),
                                         ("KEEPWARM_POLL_INTERVAL", "soon"), ("KEEPWARM_INTAKE_ADDRESS", "nope"),
                                         ("KEEPWARM_IMAP_URL", "http://x")])
def test_junk_fails_loudly_naming_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings(environ={name: value}, env_file=None)


def test_env_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("KEEPWARM_TIMEZONE=Europe/Rome\nKEEPWARM_BASE_URL=https://a.example/\n")
    settings = load_settings(environ={"KEEPWARM_TIMEZONE": "Europe/London"}, env_file=str(env_file))
    assert (settings.timezone, settings.base_url) == ("Europe/London", "https://a.example")


def test_secret_key_is_generated_once_and_kept_private(tmp_path):
    settings = load_settings({"instance_dir": tmp_path}, environ={}, env_file=None)
    first, second = ensure_secret_key(settings), ensure_secret_key(settings)
    assert first.secret_key == second.secret_key and len(first.secret_key) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_server_urls_are_parsed_with_credentials():
    settings = load_settings({"imap_url": "imaps://u%40x.example:p%3Ass@mail.example/Sales",
                              "smtp_url": "smtp://relay.example:587?starttls=1"}, environ={}, env_file=None)
    imap, smtp = settings.imap(), settings.smtp()
    assert (imap.username, imap.password, imap.port, imap.path, imap.secure) == \
        ("u@x.example", "p:ss", 993, "/Sales", True)
    assert (smtp.port, smtp.starttls) == (587, True)


@pytest.mark.parametrize("key", [None, "", "change-me", "secret", "short"])
def test_serving_refuses_a_missing_default_or_short_secret(key):
    from service.settings import check_secret_key

    settings = load_settings({"secret_key": key} if key is not None else {}, environ={}, env_file=None)
    with pytest.raises(SettingsError, match="KEEPWARM_SECRET_KEY"):
        check_secret_key(settings)
    check_secret_key(settings.with_overrides(debug=True))  # debug mode may run with anything
    check_secret_key(settings.with_overrides(secret_key="a-long-random-value-0123456789"))
