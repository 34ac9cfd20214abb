"""Packages: what a developer sees when zipping a folder and when a zip is deployed."""

from __future__ import annotations

import io
import os
import stat
import struct
import threading
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from faas.deploy import packages
from faas.deploy.packages import is_ignored, read_spec, remove_unreferenced, unpack, zip_folder
from faas.errors import FaasError, PackageTooLarge, ValidationError
from faas.models import MB, UNZIPPED_LIMIT, ZIPPED_LIMIT, FunctionSpec

SPEC = "name: hello\nruntime: python3.11\nhandler: app.handler\n"
APP = "def handler(event, context):\n    return {'ok': True}\n"
REG = stat.S_IFREG


# ------------------------------------------------------------------------- helpers


def make_zip(
    entries: list[tuple[str, bytes | str, int | None]],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    date_time: tuple[int, int, int, int, int, int] = (2024, 5, 6, 7, 8, 10),
) -> bytes:
    """entries: (name, content, full st_mode or None for 'no unix mode', as Windows zips)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content, mode in entries:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = compression
            if mode is None:
                info.create_system = 0
                info.external_attr = 0
            else:
                info.create_system = 3
                info.external_attr = mode << 16
            zf.writestr(info, content)
    return buffer.getvalue()


def good_zip(**kw: object) -> bytes:
    return make_zip([("function.yaml", SPEC, REG | 0o644), ("app.py", APP, REG | 0o644)], **kw)  # type: ignore[arg-type]


def raw_zip(name: str, method: int, crc: int, compressed: bytes, declared_size: int, extra: bytes = b"") -> bytes:
    """A hand-built zip with one entry (plus an optional prebuilt function.yaml entry), so
    that sizes can be made to lie, as real zip bombs do."""
    entries = []
    if extra:
        entries.append(("function.yaml", 0, zlib.crc32(extra), extra, len(extra)))
    entries.append((name, method, crc, compressed, declared_size))
    out = b""
    central = b""
    for ename, emethod, ecrc, edata, esize in entries:
        encoded = ename.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, emethod, 0, 0x21, ecrc, len(edata), esize, len(encoded), 0)
        out += encoded + edata
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            (3 << 8) | 20,
            20,
            0,
            emethod,
            0,
            0x21,
            ecrc,
            len(edata),
            esize,
            len(encoded),
            0,
            0,
            0,
            0,
            (REG | 0o644) << 16,
            offset,
        )
        central += encoded
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return out + central + eocd


def zeros_deflated(megabytes: int) -> tuple[bytes, int]:
    """Raw deflate of `megabytes` MB of zeros and its CRC, built in milliseconds:
    after a full flush every 1 MB block compresses to the same bytes."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = co.compress(bytes(MB)) + co.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    zero = bytes(MB)
    for _ in range(megabytes):
        crc = zlib.crc32(zero, crc)
    return block * megabytes + b"\x03\x00", crc


def snapshot(root: Path) -> list[str] | None:
    """Everything under root, so a test can show a refused deploy wrote nothing."""
    if not root.exists():
        return None
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def make_function(folder: Path, spec: str = SPEC, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function.yaml").write_text(spec)
    for name, content in (files if files is not None else {"app.py": APP}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "packages"
    r.mkdir()
    return r


# ---------------------------------------------------------------------- is_ignored


@pytest.mark.parametrize(
    "path",
    [
        "__pycache__",
        "__pycache__/app.cpython-311.pyc",
        "lib/__pycache__/x.py",
        "app.pyc",
        ".git",
        ".git/config",
        ".hg/store",
        ".svn/entries",
        ".DS_Store",
        "sub/.DS_Store",
        "app.py.swp",
        ".app.py.swo",
        "app.py~",
        ".#app.py",
        "#app.py#",
        ".faas",
        ".faas/state",
        "a\\b\\__pycache__\\c",
    ],
)
def test_is_ignored_names_never_packaged(path: str) -> None:
    assert is_ignored(path)


@pytest.mark.parametrize(
    "path", ["app.py", "lib/util.py", "function.yaml", ".env", "data/git.txt", "a#b", "pyc.py", ".gitignore"]
)
def test_is_ignored_keeps_ordinary_files(path: str) -> None:
    assert not is_ignored(path)


# ----------------------------------------------------------------------- read_spec


def test_read_spec_reads_function_yaml(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn", "name: hello\nmemory: 256\ntimeout: 10\nenvironment: {GREETING: hi, N: 3}\n")
    spec = read_spec(folder)
    assert spec == FunctionSpec(name="hello", memory=256, timeout=10, environment={"GREETING": "hi", "N": "3"})


def test_read_spec_accepts_function_yml(tmp_path: Path) -> None:
    folder = tmp_path / "fn"
    folder.mkdir()
    (folder / "function.yml").write_text("name: other\n")
    assert read_spec(folder).name == "other"


def test_read_spec_missing_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    with pytest.raises(ValidationError, match="no function.yaml found"):
        read_spec(tmp_path / "fn")


def test_read_spec_refuses_both_yaml_and_yml(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn")
    (folder / "function.yml").write_text("name: other\n")
    with pytest.raises(ValidationError, match="both function.yaml and function.yml"):
        read_spec(folder)


def test_read_spec_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn", "name: hello\nmemory: 128\nenvironment: {A: 1\ntimeout: 3\n")
    with pytest.raises(ValidationError) as info:
        read_spec(folder)
    message = str(info.value)
    assert str(folder / "function.yaml") in message
    assert "not valid YAML at line 4" in message


def test_read_spec_bad_indentation_names_line(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn", "name: hello\n  memory: 128\n")
    with pytest.raises(ValidationError, match=r"function.yaml: not valid YAML at line 2"):
        read_spec(folder)


def test_read_spec_empty_file(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn", "")
    with pytest.raises(ValidationError, match="is empty"):
        read_spec(folder)


def test_read_spec_not_a_mapping(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn", "- name: hello\n")
    with pytest.raises(ValidationError, match="expected a mapping"):
        read_spec(folder)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name: hello\nmemroy: 256\n", r"unknown key\(s\): memroy"),
        ("name: hello\nmemory: 64\n", "memory must be between 128 and 10240, got 64"),
        ("name: hello\ntimeout: 0\n", "timeout must be between 1 and 900, got 0"),
        ("name: hello\ntimeout: 901\n", "timeout must be between 1 and 900, got 901"),
        ("name: a/b\n", "name must match"),
        ("runtime: python3.11\n", "name must match"),
        ("name: hello\nhandler:\n", "handler must be a non-empty string"),
        ("name: hello\nhandler: app\n", "handler must be 'module.function'"),
        ("name: hello\nruntime: python2.7\n", "runtime must be one of"),
        ("name: hello\nenvironment: {AWS_REGION: x}\n", "reserved"),
        ("name: hello\nmemory: lots\n", "memory must be an integer"),
    ],
)
def test_read_spec_refuses_bad_settings(tmp_path: Path, text: str, expected: str) -> None:
    folder = make_function(tmp_path / "fn", text)
    with pytest.raises(ValidationError, match=expected) as info:
        read_spec(folder)
    assert str(folder / "function.yaml") in str(info.value)


def test_read_spec_environment_over_4kb(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn", f"name: hello\nenvironment:\n  BIG: {'x' * 4094}\n")
    with pytest.raises(ValidationError, match="over the 4 KB limit"):
        read_spec(folder)


def test_read_spec_environment_exactly_4kb_is_fine(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn", f"name: hello\nenvironment:\n  BIG: {'x' * 4093}\n")
    assert len(read_spec(folder).environment["BIG"]) == 4093


def test_read_spec_handler_defaults_when_omitted(tmp_path: Path) -> None:
    # The contract in models.py: an omitted handler means app.handler.
    folder = make_function(tmp_path / "fn", "name: hello\n")
    assert read_spec(folder).handler == "app.handler"


# ---------------------------------------------------------------------- zip_folder


def names_in(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.namelist()


def test_zip_folder_is_deterministic(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn", files={"app.py": APP, "lib/b.py": "b", "lib/a.py": "a"})
    first = zip_folder(folder)
    for path in folder.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    assert zip_folder(folder) == first
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == ["app.py", "function.yaml", "lib/a.py", "lib/b.py"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}


def test_zip_folder_leaves_out_ignored_names(tmp_path: Path) -> None:
    folder = make_function(
        tmp_path / "fn",
        files={
            "app.py": APP,
            "__pycache__/app.cpython-311.pyc": "x",
            "lib/mod.pyc": "x",
            ".git/config": "x",
            ".DS_Store": "x",
            "app.py.swp": "x",
            "app.py~": "x",
            ".#app.py": "x",
            "#app.py#": "x",
            ".faas/state": "x",
            "lib/keep.py": "k",
        },
    )
    assert names_in(zip_folder(folder)) == ["app.py", "function.yaml", "lib/keep.py"]


def test_zip_folder_keeps_executable_bit(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn", "name: native\nruntime: provided\nhandler: x\n", files={"bootstrap": "#!/bin/sh\n"})
    os.chmod(folder / "bootstrap", 0o755)
    os.chmod(folder / "function.yaml", 0o644)
    with zipfile.ZipFile(io.BytesIO(zip_folder(folder))) as zf:
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    assert modes["bootstrap"] == REG | 0o755
    assert modes["function.yaml"] == REG | 0o644


def test_zip_folder_follows_symlink_inside_folder(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn", files={"app.py": APP, "shared/util.py": "U = 1\n"})
    (folder / "util.py").symlink_to("shared/util.py")
    (folder / "alias").symlink_to("shared", target_is_directory=True)
    data = zip_folder(folder)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("util.py") == b"U = 1\n"
        assert zf.read("alias/util.py") == b"U = 1\n"
        assert all(stat.S_ISREG(i.external_attr >> 16) for i in zf.infolist())


def test_zip_folder_refuses_symlink_outside_folder(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("key")
    folder = make_function(tmp_path / "fn")
    (folder / "leak.txt").symlink_to(secret)
    with pytest.raises(ValidationError, match="leak.txt: symlink points outside the function folder"):
        zip_folder(folder)


def test_zip_folder_refuses_symlink_loop(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn", files={"app.py": APP, "sub/x.py": ""})
    (folder / "sub" / "up").symlink_to("..", target_is_directory=True)
    with pytest.raises(ValidationError, match="symlink loop"):
        zip_folder(folder)


def test_zip_folder_refuses_broken_symlink(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn")
    (folder / "gone.py").symlink_to("nowhere.py")
    with pytest.raises(ValidationError, match="gone.py: broken symlink"):
        zip_folder(folder)


def test_zip_folder_validates_function_yaml_first(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn", "name: hello\nmemory: 64\n")
    with pytest.raises(ValidationError, match="memory must be between"):
        zip_folder(folder)


def test_zip_folder_refuses_over_zipped_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages, "ZIPPED_LIMIT", 64 * 1024)  # random bytes do not compress
    folder = make_function(tmp_path / "fn")
    (folder / "blob.bin").write_bytes(os.urandom(100 * 1024))
    with pytest.raises(PackageTooLarge, match="over Lambda's 50 MB limit") as info:
        zip_folder(folder)
    assert info.value.status == 413


def test_zip_folder_refuses_over_unzipped_limit_before_compressing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages, "UNZIPPED_LIMIT", 1000)
    folder = make_function(tmp_path / "fn")
    (folder / "zeros.bin").write_bytes(bytes(2000))
    with pytest.raises(ValidationError, match="over Lambda's 250 MB limit"):
        zip_folder(folder)


def test_zip_folder_then_unpack_round_trips(tmp_path: Path, root: Path) -> None:
    folder = make_function(tmp_path / "fn", files={"app.py": APP, "lib/util.py": "U = 1\n", "run.sh": "#!/bin/sh\n"})
    os.chmod(folder / "run.sh", 0o755)
    pkg = unpack(zip_folder(folder), root)
    assert (pkg.code_dir / "app.py").read_text() == APP
    assert (pkg.code_dir / "lib" / "util.py").read_text() == "U = 1\n"
    assert stat.S_IMODE((pkg.code_dir / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((pkg.code_dir / "app.py").stat().st_mode) == 0o644


# ------------------------------------------------------------------ unpack: refusals


BAD_ENTRIES = [
    ("../evil.py", "'..' component"),
    ("lib/../../evil.py", "'..' component"),
    ("..\\evil.py", "'..' component"),
    ("/etc/cron.d/evil", "absolute path"),
    ("C:/evil.py", "drive letter"),
    ("C:\\evil.py", "drive letter"),
    ("x" * 256 + ".py", "over 255 bytes"),
    ("/".join(["d" * 200] * 25) + "/app.py", "path over 2048 bytes"),
]


@pytest.mark.parametrize("name, expected", BAD_ENTRIES)
def test_unpack_refuses_escaping_entries_and_writes_nothing(root: Path, name: str, expected: str) -> None:
    data = make_zip([("function.yaml", SPEC, REG | 0o644), ("app.py", APP, REG | 0o644), (name, "boom", REG | 0o644)])
    before = snapshot(root)
    with pytest.raises(ValidationError, match=expected) as info:
        unpack(data, root)
    assert repr(name)[:50] in str(info.value)  # names the first bad entry (a long name shortened)
    assert len(str(info.value)) < 400
    assert snapshot(root) == before == []


@pytest.mark.parametrize(
    "mode, expected",
    [
        (stat.S_IFLNK | 0o777, "is a symlink"),
        (stat.S_IFIFO | 0o644, "is a FIFO"),
        (stat.S_IFCHR | 0o644, "is a character device"),
        (stat.S_IFBLK | 0o644, "is a block device"),
        (stat.S_IFSOCK | 0o644, "is a socket"),
    ],
)
def test_unpack_refuses_special_entries(root: Path, mode: int, expected: str) -> None:
    data = make_zip([("function.yaml", SPEC, REG | 0o644), ("passwd", "/etc/passwd", mode)])
    with pytest.raises(ValidationError, match=f"'passwd' {expected}"):
        unpack(data, root)
    assert snapshot(root) == []


def test_unpack_names_the_first_bad_entry(root: Path) -> None:
    data = make_zip([("function.yaml", SPEC, REG | 0o644), ("ok/../../first", "", REG | 0o644), ("/second", "", REG | 0o644)])
    with pytest.raises(ValidationError, match="'ok/../../first'"):
        unpack(data, root)


def test_unpack_refuses_over_50mb_zipped(root: Path) -> None:
    blob = os.urandom(ZIPPED_LIMIT)  # random bytes: stored as they are, the zip is just over 50 MB
    data = make_zip([("function.yaml", SPEC, REG | 0o644), ("blob.bin", blob, REG | 0o644)], compression=zipfile.ZIP_STORED)
    assert ZIPPED_LIMIT < len(data) < UNZIPPED_LIMIT
    with pytest.raises(PackageTooLarge) as info:
        unpack(data, root)
    assert "over Lambda's 50 MB limit (52428800 bytes)" in str(info.value)
    assert info.value.status == 413 and info.value.error_type == "RequestEntityTooLargeException"
    assert snapshot(root) == []


def test_unpack_refuses_zip_bomb_over_250mb_unzipped(root: Path) -> None:
    compressed, crc = zeros_deflated(251)
    data = raw_zip("zeros.bin", zipfile.ZIP_DEFLATED, crc, compressed, 251 * MB, extra=SPEC.encode())
    assert len(data) < 1 * MB
    with pytest.raises(ValidationError, match="unzipped, over Lambda's 250 MB limit") as info:
        unpack(data, root)
    assert not isinstance(info.value, PackageTooLarge) and info.value.status == 400
    assert snapshot(root) == []


def test_unpack_zip_bomb_lying_about_its_size_writes_no_more_than_declared(root: Path) -> None:
    compressed, _ = zeros_deflated(251)
    data = raw_zip("zeros.bin", zipfile.ZIP_DEFLATED, zlib.crc32(bytes(1000)), compressed, 1000, extra=SPEC.encode())
    pkg = unpack(data, root)
    assert (pkg.code_dir / "zeros.bin").stat().st_size == 1000
    assert pkg.unzipped_size == 1000 + len(SPEC)


def test_unpack_zip_lying_with_bad_crc_is_refused(root: Path) -> None:
    compressed, crc = zeros_deflated(3)
    data = raw_zip("zeros.bin", zipfile.ZIP_DEFLATED, crc, compressed, 1000, extra=SPEC.encode())
    with pytest.raises(ValidationError, match="'zeros.bin' is corrupt"):
        unpack(data, root)
    assert snapshot(root) == []  # the temp folder is gone too


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04" + b"\0" * 40])
def test_unpack_refuses_non_zip(root: Path, data: bytes) -> None:
    with pytest.raises(ValidationError, match="not a valid zip file"):
        unpack(data, root)
    assert snapshot(root) == []


def test_unpack_refuses_truncated_zip(root: Path) -> None:
    with pytest.raises(ValidationError, match="not a valid zip file"):
        unpack(good_zip()[:-30], root)


def test_unpack_requires_function_yaml(root: Path) -> None:
    with pytest.raises(ValidationError, match="no function.yaml at the top of the zip$"):
        unpack(make_zip([("app.py", APP, REG | 0o644)]), root)
    assert snapshot(root) == []


def test_unpack_hints_when_the_folder_itself_was_zipped(root: Path) -> None:
    data = make_zip([("hello/function.yaml", SPEC, REG | 0o644), ("hello/app.py", APP, REG | 0o644)])
    with pytest.raises(ValidationError, match="found hello/function.yaml: zip the folder's contents"):
        unpack(data, root)


def test_unpack_malformed_yaml_names_line(root: Path) -> None:
    data = make_zip([("function.yaml", "name: hello\nenvironment: [\n", REG | 0o644)])
    with pytest.raises(ValidationError, match=r"^function.yaml: not valid YAML at line 3"):
        unpack(data, root)
    assert snapshot(root) == []


def test_unpack_invalid_spec_is_refused(root: Path) -> None:
    data = make_zip([("function.yaml", "name: hello\ntimeout: 901\n", REG | 0o644)])
    with pytest.raises(ValidationError, match="timeout must be between 1 and 900, got 901"):
        unpack(data, root)
    assert snapshot(root) == []


def test_unpack_expected_name_must_match(root: Path) -> None:
    with pytest.raises(ValidationError, match="names the function 'hello' but it was deployed as 'other'"):
        unpack(good_zip(), root, expected_name="other")
    assert snapshot(root) == []


def test_unpack_refuses_duplicate_entries(root: Path) -> None:
    data = make_zip([("function.yaml", SPEC, REG | 0o644), ("app.py", "a", REG | 0o644), ("./app.py", "b", REG | 0o644)])
    with pytest.raises(ValidationError, match="two entries for 'app.py'"):
        unpack(data, root)


def test_unpack_refuses_file_that_is_also_a_folder(root: Path) -> None:
    data = make_zip([("function.yaml", SPEC, REG | 0o644), ("lib", "a", REG | 0o644), ("lib/x.py", "b", REG | 0o644)])
    with pytest.raises(ValidationError, match="'lib' is both a file and a folder"):
        unpack(data, root)
    assert snapshot(root) == []


def test_unpack_refusal_does_not_create_packages_root(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        unpack(b"junk", tmp_path / "new-root")
    assert not (tmp_path / "new-root").exists()


# ------------------------------------------------------------------ unpack: success


def test_unpack_extracts_with_sandbox_readable_modes(root: Path) -> None:
    old = os.umask(0o077)
    try:
        data = make_zip(
            [
                ("function.yaml", SPEC, REG | 0o600),
                ("app.py", APP, REG | 0o600),
                ("bin/tool", "#!/bin/sh\n", REG | 0o700),
                ("lib/", "", stat.S_IFDIR | 0o700),
                ("lib/deep/mod.py", "", REG | 0o644),
            ]
        )
        pkg = unpack(data, root)
    finally:
        os.umask(old)
    code = pkg.code_dir
    assert code == root / pkg.sha256 and len(pkg.sha256) == 64
    assert stat.S_IMODE(code.stat().st_mode) == 0o755
    assert stat.S_IMODE((code / "app.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((code / "function.yaml").stat().st_mode) == 0o644
    assert stat.S_IMODE((code / "bin" / "tool").stat().st_mode) == 0o755
    for d in ("bin", "lib", "lib/deep"):
        assert stat.S_IMODE((code / d).stat().st_mode) == 0o755
    assert snapshot(root) == sorted(
        [pkg.sha256]
        + [f"{pkg.sha256}/{p}" for p in ("app.py", "bin", "bin/tool", "function.yaml", "lib", "lib/deep", "lib/deep/mod.py")]
    )


def test_unpack_reports_spec_and_sizes(root: Path) -> None:
    data = good_zip()
    pkg = unpack(data, root, expected_name="hello")
    assert pkg.spec == FunctionSpec(name="hello")
    assert pkg.zipped_size == len(data)
    assert pkg.unzipped_size == len(SPEC) + len(APP)


def test_same_content_zipped_differently_hashes_the_same(root: Path) -> None:
    a = unpack(good_zip(), root)
    b = unpack(good_zip(date_time=(2030, 1, 1, 0, 0, 0), compression=zipfile.ZIP_STORED), root)
    reordered = make_zip(
        [("./app.py", APP, REG | 0o664), ("function.yaml", SPEC, REG | 0o600), ("lib/", "", stat.S_IFDIR | 0o755)]
    )
    c = unpack(reordered, root)
    assert a.sha256 == b.sha256 == c.sha256
    assert a.code_dir == b.code_dir == c.code_dir
    assert [p.name for p in root.iterdir()] == [a.sha256]  # reused, and no temp folder left


def test_function_yaml_text_is_part_of_the_package(root: Path) -> None:
    # Same settings, different text: function.yaml ships in /var/task like any file.
    a = unpack(good_zip(), root)
    b = unpack(make_zip([("function.yaml", SPEC + "# comment\n", REG | 0o644), ("app.py", APP, REG | 0o644)]), root)
    assert a.spec == b.spec and a.sha256 != b.sha256


@pytest.mark.parametrize(
    "change",
    [
        [("function.yaml", SPEC, REG | 0o644), ("app.py", APP + "# changed\n", REG | 0o644)],
        [("function.yaml", SPEC, REG | 0o644), ("app.py", APP, REG | 0o755)],
        [("function.yaml", SPEC, REG | 0o644), ("main.py", APP, REG | 0o644)],
        [("function.yaml", SPEC, REG | 0o644), ("app.py", APP, REG | 0o644), ("extra.txt", "", REG | 0o644)],
    ],
    ids=["content", "executable-bit", "renamed", "added-file"],
)
def test_any_code_change_changes_the_hash(root: Path, change: list[tuple[str, str, int]]) -> None:
    assert unpack(good_zip(), root).sha256 != unpack(make_zip(change), root).sha256  # type: ignore[arg-type]


def test_spec_override_changes_the_hash_and_needs_no_yaml(root: Path) -> None:
    code_only = make_zip([("app.py", APP, REG | 0o644)])
    small = unpack(code_only, root, spec_override=FunctionSpec(name="hello"))
    big = unpack(code_only, root, spec_override=FunctionSpec(name="hello", memory=1024))
    assert small.spec.memory == 128 and big.spec.memory == 1024
    assert small.sha256 != big.sha256
    with pytest.raises(ValidationError, match="deployed as 'x'"):
        unpack(code_only, root, spec_override=FunctionSpec(name="hello"), expected_name="x")


def test_spec_override_wins_over_function_yaml(root: Path) -> None:
    pkg = unpack(good_zip(), root, spec_override=FunctionSpec(name="hello", timeout=30))
    assert pkg.spec.timeout == 30


def test_windows_zip_without_unix_modes_is_readable(root: Path) -> None:
    data = make_zip([("function.yaml", SPEC, None), ("lib\\util.py", "U = 1\n", None), ("app.py", APP, None)])
    pkg = unpack(data, root)
    assert (pkg.code_dir / "lib" / "util.py").read_text() == "U = 1\n"
    assert stat.S_IMODE((pkg.code_dir / "app.py").stat().st_mode) == 0o644


def test_concurrent_identical_deploys_share_one_package(root: Path) -> None:
    data = make_zip([("function.yaml", SPEC, REG | 0o644)] + [(f"m{i}.py", "x" * 5000, REG | 0o644) for i in range(50)])
    results: list[packages.Package] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def deploy() -> None:
        start.wait()
        try:
            results.append(unpack(data, root))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=deploy) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r.sha256 for r in results}) == 1
    assert [p.name for p in root.iterdir()] == [results[0].sha256]
    assert len(list(results[0].code_dir.iterdir())) == 51


def test_losing_the_rename_race_reuses_the_winner(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    winner = unpack(good_zip(), root)
    real_rename = os.rename
    hidden = root.parent / "hidden"
    real_rename(winner.code_dir, hidden)  # so unpack does not see it before renaming

    def racing_rename(src: str, dst: str) -> None:
        real_rename(hidden, dst)  # the other deploy wins just before us
        real_rename(src, dst)

    monkeypatch.setattr(packages.os, "rename", racing_rename)
    pkg = unpack(good_zip(), root)
    assert pkg.code_dir == winner.code_dir and (pkg.code_dir / "app.py").read_text() == APP
    assert [p.name for p in root.iterdir()] == [winner.sha256]


def test_write_failure_is_a_faas_error_and_cleans_up(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(packages, "_open_new", full)
    with pytest.raises(FaasError, match="No space left on device"):
        unpack(good_zip(), root)
    assert snapshot(root) == []


# ------------------------------------------------------------ remove_unreferenced


def test_remove_unreferenced_keeps_referenced_packages(root: Path) -> None:
    keep = unpack(good_zip(), root)
    drop = unpack(make_zip([("function.yaml", SPEC, REG | 0o644)]), root)
    (root / "not-a-package").mkdir()
    assert remove_unreferenced(root, {keep.sha256}) == 1
    assert sorted(p.name for p in root.iterdir()) == sorted([keep.sha256, "not-a-package"])
    assert not drop.code_dir.exists()


def test_remove_unreferenced_respects_min_age(root: Path) -> None:
    pkg = unpack(good_zip(), root)
    assert remove_unreferenced(root, set(), min_age_s=60) == 0
    os.utime(pkg.code_dir, (time.time() - 120, time.time() - 120))
    assert remove_unreferenced(root, set(), min_age_s=60) == 1


def test_remove_unreferenced_clears_stale_temp_folders(root: Path) -> None:
    stale = root / ".tmp-crashed"
    fresh = root / ".tmp-inflight"
    stale.mkdir()
    fresh.mkdir()
    (stale / "x").write_text("x")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    remove_unreferenced(root, set())
    assert not stale.exists() and fresh.exists()


def test_remove_unreferenced_on_missing_root(tmp_path: Path) -> None:
    assert remove_unreferenced(tmp_path / "nope", set()) == 0
