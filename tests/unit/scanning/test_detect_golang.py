from moorage.domain.digests import Digest
from moorage.domain.inventory import Package, PackageType
from moorage.scanning.detect import golang
from moorage.scanning.files import FileEntry, ImageFiles

LAYER = Digest.parse("sha256:" + "c" * 64)
SENTINEL_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
SENTINEL_END = bytes.fromhex("f932433186182072008242104116d8f2")

MODINFO = (
    "path\texample.com/hello\n"
    "mod\texample.com/hello\tv1.2.3\th1:abc=\n"
    "dep\tgithub.com/google/uuid\tv1.3.0\th1:def=\n"
    "dep\tgolang.org/x/net\tv0.7.0\th1:ghi=\n"
    "=>\tgolang.org/x/net\tv0.17.0\th1:jkl=\n"
    "dep\texample.com/local\tv0.0.0\n"
    "=>\t../local\t\n"
    "build\t-compiler=gc\n"
    "build\tGOOS=linux\n"
)


def uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def go_binary(version: str, modinfo: str, *, inline: bool = True) -> bytes:
    """An ELF-looking blob with a Go 1.18+ build info header, as the linker lays it out."""
    header = golang.MAGIC + bytes([8, 0x2 if inline else 0x0]) + bytes(16)
    assert len(header) == 32
    mod = SENTINEL_START + modinfo.encode() + SENTINEL_END
    body = uvarint(len(version)) + version.encode() + uvarint(len(mod)) + mod
    return b"\x7fELF" + bytes(0x1000 - 4) + header + body + bytes(64)


def executable(data: bytes, mode: int = 0o755) -> FileEntry:
    return FileEntry(size=len(data), layer=LAYER, data=data, mode=mode)


def test_main_module_dependencies_replacements_and_stdlib() -> None:
    path = "usr/local/bin/hello"
    files = ImageFiles(files={path: executable(go_binary("go1.21.5", MODINFO))})
    detected = golang.detect(files, None)
    assert detected.issues == ()

    def pkg(name: str, version: str, purl: str) -> Package:
        return Package(PackageType.GOLANG, name, version, purl, path, LAYER)

    assert list(detected.packages) == [
        pkg("example.com/hello", "v1.2.3", "pkg:golang/example.com/hello@v1.2.3"),
        pkg("github.com/google/uuid", "v1.3.0", "pkg:golang/github.com/google/uuid@v1.3.0"),
        pkg("golang.org/x/net", "v0.17.0", "pkg:golang/golang.org/x/net@v0.17.0"),
        pkg("stdlib", "1.21.5", "pkg:golang/stdlib@1.21.5"),
    ]


def test_devel_main_module_is_not_reported_and_experiments_are_dropped() -> None:
    modinfo = "path\tx\nmod\texample.com/x\t(devel)\t\n"
    files = ImageFiles(files={"app/x": executable(go_binary("go1.22.1 X:boringcrypto", modinfo))})
    assert [p.purl for p in golang.detect(files, None).packages] == ["pkg:golang/stdlib@1.22.1"]


def test_not_executable_not_inline_not_go_or_too_big() -> None:
    blob = go_binary("go1.21.5", MODINFO)
    files = ImageFiles(
        files={
            "usr/bin/plain": executable(blob, mode=0o644),
            "usr/bin/old": executable(go_binary("go1.17", MODINFO, inline=False)),
            "usr/bin/c": executable(b"\x7fELF" + bytes(100)),
            "usr/bin/truncated": executable(blob[: 0x1000 + 40]),
            "usr/bin/huge": FileEntry(size=golang.MAX_BINARY + 1, layer=LAYER, mode=0o755),
        }
    )
    detected = golang.detect(files, None)
    assert detected.packages == ()
    assert [i.path for i in detected.issues] == ["usr/bin/huge"]


def test_wants_programs_by_path() -> None:
    for path in (
        "manager",
        "usr/bin/kubectl",
        "usr/local/bin/app",
        "bin/server",
        "usr/local/go/bin/go",
        "usr/local/go/pkg/tool/linux_amd64/compile",
        "ko-app/hello",
        "app/server",
        "opt/thing/bin/thing",
        "root/go/bin/dlv",
    ):
        assert golang.wants(path), path
    for path in (
        "usr/bin/script.sh",
        "usr/lib/x86_64-linux-gnu/libc.so.6",
        "usr/share/doc/bash/copyright",
        "etc/hostname",
        "config.json",
    ):
        assert not golang.wants(path), path
