"""`accelsim study NAME ...` as a user runs it (through accelsim.cli once the lead wired it)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

from accelsim import cli
from accelsim.commands import study as study_cmd
from accelsim.studies import defs as D


@pytest.fixture(autouse=True)
def _wire(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the study subcommand if cli.build_parser does not (yet)."""
    real = cli.build_parser

    def build() -> argparse.ArgumentParser:
        parser = real()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) and "study" not in action.choices:
                study_cmd.add_parser(action, cli)
        return parser

    monkeypatch.setattr(cli, "build_parser", build)


def test_study_cli_writes_csv_png_md_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(D, "BITPOS_QUICK_FORMATS", ("int8",))
    monkeypatch.setitem(D.BITPOS_BITS, "int8", ((0, 7), tuple(range(8))))
    argv = ["study", "bitpos", "--model", "vit-digits", "--quick", "--samples", "4"]
    argv += ["--workers", "1", "--out", str(tmp_path), "--quiet"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 run now" in out
    for ext in ("csv", "png", "md", "db"):
        assert (tmp_path / f"bitpos.{ext}").exists()
    with open(tmp_path / "bitpos.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["bit"] for r in rows] == ["0", "7"] and all(r["trials"] == "1" for r in rows)
    assert cli.main(argv) == 0
    assert "0 run now, 2 already done" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["study", "nope", "--quick"], "study: got 'nope'"),
        (["study", "bitpos", "--model", "nope"], "--model: got 'nope'"),
        (["study", "timesteps", "--model", "vit-digits"], "needs one of"),
        (["study", "bitpos", "--seeds", "a,b"], "--seeds"),
    ],
)
def test_study_cli_bad_input_is_one_line(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) if "--seeds" in args else _nothing():
        code = cli.main([*args, "--out", str(tmp_path)])
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "Traceback" not in err and len(err.splitlines()) <= 3


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False
