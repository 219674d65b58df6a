"""Site configuration: typed and validated (ConfigError naming file and key, exit 2), every
setting with help and documented, overridable per thread."""

from __future__ import annotations

import threading
from dataclasses import fields
from pathlib import Path

import pytest

from monitoring import config as config_module
from monitoring.cli import main
from monitoring.config import (
    SETTING_HELP,
    Config,
    config_override,
    get_config,
    load_config,
    use_config,
)
from monitoring.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _site(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ltfu.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_setting_has_help_and_is_documented() -> None:
    names = [f.name for f in fields(Config)]
    assert set(SETTING_HELP) == set(names)
    assert all(text.strip() for text in SETTING_HELP.values())
    docs = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [name for name in names if f"`{name}`" not in docs]
    assert missing == [], f"add {missing} to docs/configuration.md"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[thresholds]\nbcell_pct_recovry = 3.0\n", ["'bcell_pct_recovry'", "bcell_pct_recovery"]),
        ("[threshold]\nbcell_pct_recovery = 3.0\n", ["'threshold'", "[thresholds]"]),
        ("[thresholds]\nfollowup_overdue_days = '425'\n", ["'followup_overdue_days'", "whole"]),
        ("[thresholds]\nmrd_early_windows = [[21, 35, 40]]\n", ["'mrd_early_windows'", "pairs"]),
        ("[thresholds]\nbcell_pct_recovery = \n", ["not a valid TOML"]),
    ],
)
def test_a_bad_site_file_is_one_config_error_naming_file_and_key(
    tmp_path: Path, text: str, words: list[str]
) -> None:
    path = _site(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and all(w in message for w in words), message


def test_good_values_are_typed(tmp_path: Path) -> None:
    path = _site(
        tmp_path,
        "[thresholds]\nbcell_pct_recovery = 3\nmrd_early_windows = [[20, 30]]\n",
    )
    loaded = load_config(path)
    assert loaded.bcell_pct_recovery == 3.0 and isinstance(loaded.bcell_pct_recovery, float)
    assert loaded.mrd_early_windows == ((20, 30),)


def test_a_typo_in_ltfu_toml_exits_2_with_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site = _site(tmp_path, "[thresholds]\nfollowup_overdue_dayz = 400\n")
    monkeypatch.setenv("LTFU_CONFIG", str(site))
    monkeypatch.setattr(config_module, "_loaded", None)
    db = f"sqlite:///{tmp_path / 'c.db'}"
    code = main(["--db", db, "durability", "--endpoint", "os", "--summary"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("ltfu: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "followup_overdue_dayz" in err and str(site) in err


def test_overrides_belong_to_one_thread() -> None:
    seen: dict[str, int] = {}
    entered = threading.Event()
    release = threading.Event()

    def session() -> None:
        with config_override(followup_overdue_days=1):
            entered.set()
            release.wait(10)
            seen["inside"] = get_config().followup_overdue_days

    worker = threading.Thread(target=session)
    worker.start()
    entered.wait(10)
    seen["other thread"] = get_config().followup_overdue_days
    release.set()
    worker.join(10)
    assert seen == {"inside": 1, "other thread": Config().followup_overdue_days}
    with use_config(Config(followup_overdue_days=7)):
        assert get_config().followup_overdue_days == 7
    assert get_config().followup_overdue_days == Config().followup_overdue_days
