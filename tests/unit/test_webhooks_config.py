"""Webhook secrets configuration: env and file, rotation, overrides, and never showing a secret."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from webhook_deliveries import OTHER_SECRET, SECRET, deliver, fixture

from streams.config import Settings
from streams.webhooks import Accepted, Rejected, Secret, WebhookConfig


def settings(tmp_path: Path | None = None, file: object = None, **env: str) -> Settings:
    environ = {f"ENGAGE_{k.upper()}": v for k, v in env.items()}
    if file is not None and tmp_path is not None:
        path = tmp_path / "secrets.json"
        path.write_text(file if isinstance(file, str) else json.dumps(file), encoding="utf-8")
        environ["ENGAGE_WEBHOOK_SECRETS_FILE"] = str(path)
    return Settings.from_env(environ)


def test_env_secrets_are_comma_separated_for_rotation() -> None:
    cfg = WebhookConfig.from_settings(settings(webhook_secret_slack=f" {OTHER_SECRET} , {SECRET},"))
    assert len(cfg.secrets_for("slack")) == 2
    assert cfg.secrets_for("github") == ()
    assert isinstance(deliver(fixture("slack", "message"), cfg, secret=SECRET), Accepted)
    assert isinstance(deliver(fixture("slack", "message"), cfg, secret=OTHER_SECRET), Accepted)


def test_an_env_secret_for_an_unknown_platform_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown platform 'slak'"):
        WebhookConfig.from_settings(settings(webhook_secret_slak="x"))


def test_the_secrets_file_adds_platform_and_community_secrets(tmp_path: Path) -> None:
    file = {
        "platforms": {"github": SECRET, "slack": [OTHER_SECRET]},
        "communities": {"discourse": {"forum.example.com": [OTHER_SECRET]}},
    }
    cfg = WebhookConfig.from_settings(settings(tmp_path, file, webhook_secret_slack=SECRET))
    assert len(cfg.secrets_for("slack")) == 2  # env and file together
    assert len(cfg.secrets_for("github")) == 1
    assert cfg.secrets_for("discourse") == ()
    assert len(cfg.secrets_for("discourse", ["forum.example.com"])) == 1
    assert isinstance(deliver(fixture("discourse", "post_liked"), cfg, secret=OTHER_SECRET), Accepted)
    assert isinstance(deliver(fixture("slack", "message"), cfg, secret=OTHER_SECRET), Accepted)


def test_the_same_secret_in_env_and_file_counts_once(tmp_path: Path) -> None:
    cfg = WebhookConfig.from_settings(
        settings(tmp_path, {"platforms": {"slack": SECRET}}, webhook_secret_slack=SECRET)
    )
    assert len(cfg.secrets_for("slack")) == 1


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ('{"platforms": {"slack": "abc",}}', "not valid JSON at line 1"),
        ({"slack": ["top-level platforms are not the format"]}, '"platforms" and/or "communities"'),
        ({"platforms": {"myspace": "x"}}, "unknown platform 'myspace'"),
        ({"platforms": {"slack": 42}}, "platforms.slack must be a secret string or a list"),
        ({"communities": {"discourse": ["forum.example.com"]}}, "communities.discourse must map"),
    ],
)
def test_a_broken_secrets_file_says_where_and_what(tmp_path: Path, file: object, message: str) -> None:
    with pytest.raises(ValueError, match="ENGAGE_WEBHOOK_SECRETS_FILE=") as err:
        WebhookConfig.from_settings(settings(tmp_path, file))
    assert message in str(err.value)
    assert "abc" not in str(err.value)  # the file's content (secrets) is never echoed


def test_a_missing_secrets_file_is_a_clear_error(tmp_path: Path) -> None:
    s = Settings.from_env({"ENGAGE_WEBHOOK_SECRETS_FILE": str(tmp_path / "nope.json")})
    with pytest.raises(ValueError, match="cannot read it"):
        WebhookConfig.from_settings(s)


def test_granularity_and_pseudonymize_key_come_from_settings() -> None:
    cfg = WebhookConfig.from_settings(settings(community_granularity="channel", pseudonymize_key="k"))
    assert cfg.community_granularity == "channel"
    assert cfg.member_ref("slack", "T1", "U1").startswith("p_")
    assert WebhookConfig().member_ref("slack", "T1", "U1") == "U1"


def test_an_unknown_granularity_is_an_error() -> None:
    with pytest.raises(ValueError, match="use 'platform' or 'channel'"):
        WebhookConfig.from_settings(settings(community_granularity="team"))


def test_secrets_never_show_in_repr_str_or_pickle() -> None:
    cfg = WebhookConfig.from_secrets(
        {"slack": [SECRET, OTHER_SECRET]}, {"github": {"acme": SECRET}}, pseudonymize_key="pseudo-key-value"
    )
    shown = repr(cfg) + str(cfg) + repr(cfg.platform_secrets) + repr(cfg.community_secrets)
    shown += repr(cfg.pseudonymize_key) + str(cfg.secrets_for("slack")[0])
    for secret in (SECRET, OTHER_SECRET, "pseudo-key-value"):
        assert secret not in shown
    assert "slack" in repr(cfg) and "<redacted>" in shown
    with pytest.raises(TypeError):
        pickle.dumps(cfg.secrets_for("slack")[0])


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        Secret("")
    # Blank entries in a list (a trailing comma) are skipped, not turned into secrets.
    assert WebhookConfig.from_secrets({"slack": ["", "  "]}).secrets_for("slack") == ()


def test_a_platform_with_only_blank_env_secrets_has_none() -> None:
    cfg = WebhookConfig.from_settings(settings(webhook_secret_slack=" , "))
    result = deliver(fixture("slack", "message"), cfg)
    assert isinstance(result, Rejected) and result.reason == "no_secret"
