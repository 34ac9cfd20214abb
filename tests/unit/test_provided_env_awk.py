"""runtimes/provided/env.awk: the environment message becomes `export` lines that sh's eval
turns back into exactly the variables the platform sent (with the awk and sh of this machine,
which are Debian's, as in the image)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

AWK = Path(__file__).resolve().parents[2] / "runtimes" / "provided" / "env.awk"
pytestmark = pytest.mark.skipif(shutil.which("awk") is None, reason="needs awk")  # Debian always has mawk


def decode(message: str) -> tuple[int, dict[str, str], str]:
    script = f'exports=$(LC_ALL=C awk -f {AWK}) || exit 3; eval "$exports"; env -0'  # as runtimes/provided/launch
    done = subprocess.run(
        ["sh", "-c", script], input=message.encode(), capture_output=True, env={"PATH": "/usr/bin:/bin"}, timeout=10
    )
    pairs = (item.split(b"=", 1) for item in done.stdout.split(b"\0") if item)
    return done.returncode, {k.decode(): v.decode("utf-8", "replace") for k, v in pairs}, done.stderr.decode()


def test_values_survive_quoting_escapes_and_unicode() -> None:
    env = {
        "PLAIN": "value",
        "QUOTES": 'it\'s "both" kinds',
        "BACKSLASH": "a\\b\\\\c",
        "LINES": "one\ntwo\r\tthree",
        "SHELL_META": "$HOME `id` $(id) ; | & * ?",
        "LATIN": "grüße",
        "EURO": "€",
        "EMOJI": "😀 surrogates",
        "EMPTY": "",
        "_HANDLER": "function.handler",
        "CONTROL": "\x01\x1f",
    }
    for ensure_ascii in (True, False):
        message = json.dumps({"handler": "function.handler", "env": env}, ensure_ascii=ensure_ascii)
        code, got, err = decode(message)
        assert code == 0, err
        assert {k: got.get(k) for k in env} == env


def test_other_members_and_layout_are_skipped() -> None:
    message = '{ "extra": {"nested": [1, {"env": "not this"}, "}"], "n": null},\n "env" : {"A": "1", "NUM": 5}, "handler": "x" }'
    code, got, _ = decode(message)
    assert code == 0 and got["A"] == "1" and got["NUM"] == "5"


def test_names_that_are_not_variables_are_dropped() -> None:
    code, got, _ = decode(json.dumps({"env": {"ok_1": "yes", "bad-name": "x", "1ABC": "x", "A B": "x"}}))
    assert code == 0 and got["ok_1"] == "yes"
    assert not {"bad-name", "1ABC", "A B"} & set(got)


@pytest.mark.parametrize(
    "message", ['{"env": {"A": "unterminated}', '{"env": {"A" "1"}}', "not json", '{"env": {"A": "\\uZZZZ"}}']
)
def test_a_broken_message_fails_instead_of_exporting_half(message: str) -> None:
    code, got, err = decode(message)
    assert code == 3 and "bad environment message" in err and "A" not in got
