"""The layer reader: layers built here with tarfile (plain, gzip, zstd), then read back."""

from __future__ import annotations

import gzip
import io
import random
import tarfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import zstandard

from moorage.domain.digests import Digest
from moorage.scanning.files import ImageFiles
from moorage.scanning.layers import Layer, Limits, read_layers, read_layers_sync

TAR = "application/vnd.oci.image.layer.v1.tar"
TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
TAR_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass
class TarBuilder:
    """A layer's entries, written as a tar in order."""

    entries: list[tuple[tarfile.TarInfo, bytes | None]] = field(default_factory=list)

    def file(self, name: str, data: bytes = b"", mode: int = 0o644) -> TarBuilder:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        self.entries.append((info, data))
        return self

    def dir(self, name: str) -> TarBuilder:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        self.entries.append((info, None))
        return self

    def special(self, name: str, kind: bytes, linkname: str = "") -> TarBuilder:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = linkname
        self.entries.append((info, None))
        return self

    def symlink(self, name: str, target: str) -> TarBuilder:
        return self.special(name, tarfile.SYMTYPE, target)

    def hardlink(self, name: str, target: str) -> TarBuilder:
        return self.special(name, tarfile.LNKTYPE, target)

    def tar(self) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for info, data in self.entries:
                archive.addfile(info, io.BytesIO(data) if data is not None else None)
        return out.getvalue()

    def gzip(self) -> bytes:
        return gzip.compress(self.tar())

    def zstd(self) -> bytes:
        return zstandard.ZstdCompressor().compress(self.tar())


def digest(n: int) -> Digest:
    return Digest("sha256", f"{n:064x}")


def layers(*blobs: tuple[bytes, str]) -> list[Layer]:
    return [(digest(i), media_type, io.BytesIO(blob)) for i, (blob, media_type) in enumerate(blobs)]


def everything(path: str) -> bool:
    return True


def read(*blobs: tuple[bytes, str], wants: Callable[[str], bool] = everything) -> ImageFiles:
    return read_layers_sync(layers(*blobs), wants)


def problems(files: ImageFiles) -> list[str]:
    return [f"{issue.path}: {issue.problem}" for issue in files.issues]


@pytest.mark.parametrize(
    ("encode", "media_type"),
    [
        (TarBuilder.tar, TAR),
        (TarBuilder.gzip, TAR_GZIP),
        (TarBuilder.gzip, DOCKER_GZIP),
        (TarBuilder.zstd, TAR_ZSTD),
    ],
)
def test_layers_apply_in_order_and_later_entries_replace_earlier(
    encode: Callable[[TarBuilder], bytes], media_type: str
) -> None:
    base = TarBuilder().dir("etc/").file("etc/os-release", b"ID=debian\n").file("bin/sh", b"x")
    top = TarBuilder().file("./etc/os-release", b"ID=alpine\n", mode=0o600)

    files = read((encode(base), media_type), (encode(top), media_type))

    assert files.issues == []
    assert files.read("etc/os-release") == b"ID=alpine\n"
    entry = files.entry("etc/os-release")
    assert entry is not None
    assert (entry.layer, entry.size, entry.mode) == (digest(1), 10, 0o600)
    assert files.entry("bin/sh") is not None
    assert list(files.paths()) == ["bin/sh", "etc/os-release"]


def test_whiteout_deletes_a_file_and_a_whole_directory() -> None:
    base = (
        TarBuilder()
        .file("etc/passwd", b"root")
        .file("etc/group", b"g")
        .file("usr/lib/python3/dist-packages/a/METADATA", b"a")
        .file("usr/lib/python3/dist-packages/a/sub/RECORD", b"r")
    )
    top = TarBuilder().file("etc/.wh.passwd").file("usr/lib/python3/dist-packages/.wh.a")

    files = read((base.tar(), TAR), (top.tar(), TAR))

    assert list(files.paths()) == ["etc/group"]
    assert files.issues == []


def test_whiteout_does_not_hide_its_own_layer_entries() -> None:
    base = TarBuilder().file("opt/app/old", b"1")
    top = TarBuilder().file("opt/app/new", b"2").file("opt/.wh.app")

    files = read((base.tar(), TAR), (top.tar(), TAR))

    assert list(files.paths()) == ["opt/app/new"]


def test_opaque_directory_hides_lower_layers_contents_only() -> None:
    base = TarBuilder().file("var/lib/dpkg/status", b"old").file("var/lib/other", b"o")
    middle = TarBuilder().file("var/lib/dpkg/info/x.list", b"x")
    # the new entry comes before the marker: order inside the layer does not matter
    top = TarBuilder().file("var/lib/dpkg/status.d/base", b"new").file("var/lib/dpkg/.wh..wh..opq")

    files = read((base.tar(), TAR), (middle.tar(), TAR), (top.gzip(), TAR_GZIP))

    assert list(files.paths()) == ["var/lib/dpkg/status.d/base", "var/lib/other"]


def test_file_replaces_directory_and_directory_replaces_file() -> None:
    base = TarBuilder().file("a/x", b"1").file("b", b"2")
    top = TarBuilder().file("a", b"now a file").file("b/y", b"3")

    files = read((base.tar(), TAR), (top.tar(), TAR))

    assert list(files.paths()) == ["a", "b/y"]


def test_hard_link_gets_the_target_contents() -> None:
    layer = (
        TarBuilder()
        .file("usr/bin/python3.11", b"\x7fELF...")
        .hardlink("usr/bin/python3", "usr/bin/python3.11")
    )

    files = read((layer.tar(), TAR))

    entry = files.entry("usr/bin/python3")
    assert entry is not None
    assert (entry.size, entry.data) == (7, b"\x7fELF...")


def test_hard_link_wanted_to_a_target_not_kept_is_reported() -> None:
    layer = TarBuilder().file("a", b"abc").hardlink("b", "a")

    files = read((layer.tar(), TAR), wants=lambda path: path == "b")

    entry = files.entry("b")
    assert entry is not None
    assert (entry.size, entry.data) == (3, None)
    assert problems(files) == ["b: hard link to 'a', whose contents were not kept"]


def test_symlinks_are_kept_as_written_and_resolved_inside_the_root() -> None:
    layer = (
        TarBuilder()
        .file("usr/lib/os-release", b"ID=distroless\n")
        .symlink("etc/os-release", "../usr/lib/os-release")
        .symlink("etc/escape", "../../../../etc/shadow")
    )

    files = read((layer.tar(), TAR))

    assert files.links == {
        "etc/os-release": "../usr/lib/os-release",
        "etc/escape": "../../../../etc/shadow",
    }
    assert files.read("etc/os-release") == b"ID=distroless\n"
    assert files.resolve("etc/escape") == "etc/shadow"
    assert problems(files) == [
        "etc/escape: symbolic link target '../../../../etc/shadow' leaves the image root"
    ]


def test_only_wanted_paths_keep_their_contents() -> None:
    layer = TarBuilder().file("etc/os-release", b"ID=debian").file("usr/bin/big", b"x" * 1000)

    files = read((layer.tar(), TAR), wants=lambda path: path == "etc/os-release")

    assert files.read("etc/os-release") == b"ID=debian"
    big = files.entry("usr/bin/big")
    assert big is not None
    assert (big.size, big.data) == (1000, None)


def test_wanted_file_over_the_size_limit_is_not_kept_and_reported() -> None:
    layer = TarBuilder().file("var/lib/rpm/rpmdb.sqlite", b"x" * 2000).file("etc/ok", b"ok")

    files = read_layers_sync(layers((layer.tar(), TAR)), everything, Limits(max_file_bytes=1000))

    big = files.entry("var/lib/rpm/rpmdb.sqlite")
    assert big is not None
    assert (big.size, big.data) == (2000, None)
    assert files.read("etc/ok") == b"ok"
    assert problems(files) == [
        "var/lib/rpm/rpmdb.sqlite: file of 2000 bytes is over the 1000-byte limit; "
        "contents not kept"
    ]


def test_path_traversal_is_refused_and_absolute_paths_are_read_from_the_root() -> None:
    layer = (
        TarBuilder()
        .file("../../etc/passwd", b"evil")
        .file("/etc/x", b"abs")
        .file("a/../b", b"b")
        .file("a/../../c", b"c")
    )

    files = read((layer.tar(), TAR))

    assert list(files.paths()) == ["b", "etc/x"]
    assert files.read("etc/x") == b"abs"
    assert problems(files) == [
        "../../etc/passwd: path leaves the image root ('..'); entry refused",
        "/etc/x: absolute path, read relative to the image root",
        "a/../b: path contains '..'; normalised",
        "a/../../c: path leaves the image root ('..'); entry refused",
    ]


def test_absurdly_deep_paths_are_refused() -> None:
    deep = "a/" * 5000 + "f"
    layer = TarBuilder().file(deep, b"x").file("ok", b"ok")

    files = read((layer.tar(), TAR))

    assert list(files.paths()) == ["ok"]
    assert problems(files) == [f"{deep}: path deeper than 256 directories; entry refused"]


def test_device_files_are_skipped_and_reported_fifos_silently() -> None:
    layer = (
        TarBuilder()
        .special("dev/sda", tarfile.BLKTYPE)
        .special("dev/null", tarfile.CHRTYPE)
        .special("run/fifo", tarfile.FIFOTYPE)
        .file("etc/ok", b"ok")
    )

    files = read((layer.tar(), TAR))

    assert list(files.paths()) == ["etc/ok"]
    assert problems(files) == ["dev/sda: device file skipped", "dev/null: device file skipped"]


def gzip_bomb(size: int) -> bytes:
    """A layer with one file of ``size`` zero bytes, gzip-compressed, built in pieces."""
    out = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as compressed,
        tarfile.open(fileobj=compressed, mode="w|") as archive,
    ):
        info = tarfile.TarInfo("zeros")
        info.size = size

        class Zeros:
            left = size

            def read(self, n: int) -> bytes:
                n = min(n, self.left)
                self.left -= n
                return bytes(n)

        archive.addfile(info, Zeros())  # type: ignore[arg-type]
    return out.getvalue()


def test_decompression_bomb_stops_at_the_byte_limit_and_keeps_what_was_read() -> None:
    bomb = gzip_bomb(200 << 20)
    assert len(bomb) < 400_000
    before = TarBuilder().file("etc/os-release", b"ID=debian").gzip()
    after = TarBuilder().file("later", b"never read").gzip()

    tracemalloc.start()
    started = time.monotonic()
    files = read_layers_sync(
        layers((before, TAR_GZIP), (bomb, TAR_GZIP), (after, TAR_GZIP)),
        lambda path: path != "zeros",
        Limits(max_total_bytes=16 << 20),
    )
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert elapsed < 5
    assert peak < 32 << 20
    assert files.read("etc/os-release") == b"ID=debian"
    assert "later" not in files.files
    assert [issue.layer for issue in files.issues] == [digest(1), digest(2)]
    assert files.issues[0].problem.startswith(f"more than {16 << 20} uncompressed bytes")
    assert files.issues[1].problem == "layer not read: the image's limits were reached"


def test_too_many_entries_stops_the_layer() -> None:
    layer = TarBuilder()
    for n in range(10):
        layer.file(f"f{n}", b"x")

    files = read_layers_sync(layers((layer.tar(), TAR)), everything, Limits(max_entries=4))

    assert len(files.files) == 4
    assert problems(files) == [
        ": more than 4 entries in the image; the rest of the layer was not read"
    ]


@pytest.mark.parametrize(
    ("encode", "media_type"),
    [(TarBuilder.gzip, TAR_GZIP), (TarBuilder.zstd, TAR_ZSTD), (TarBuilder.tar, TAR)],
)
def test_truncated_layer_is_reported_and_what_came_before_is_kept(
    encode: Callable[[TarBuilder], bytes], media_type: str
) -> None:
    layer = TarBuilder().file("first", b"1" * 100)
    for n in range(50):
        layer.file(f"more/{n}", random.Random(n).randbytes(10_000))  # incompressible
    blob = encode(layer)
    base = TarBuilder().file("base", b"b").tar()
    top = TarBuilder().file("top", b"t").tar()

    files = read((base, TAR), (blob[: len(blob) // 2], media_type), (top, TAR))

    assert files.read("base") == b"b"
    assert files.read("first") == b"1" * 100
    assert files.read("top") == b"t"  # a broken layer does not stop the next one
    assert 0 < sum(path.startswith("more/") for path in files.files) < 50
    assert len(files.issues) == 1
    assert files.issues[0].layer == digest(1)
    assert "truncated" in files.issues[0].problem or "unexpected end" in files.issues[0].problem


def test_plain_tar_cut_at_a_header_boundary_is_reported() -> None:
    tar = TarBuilder().file("a", b"x" * 512).tar()
    cut = tar[: 512 * 2]  # "a"'s header and data, no end-of-archive marker

    files = read((cut, TAR))

    assert len(files.issues) == 1


def test_garbage_after_the_entries_is_reported() -> None:
    tar = TarBuilder().file("a", b"x").tar()
    body = tar[: tar.index(b"x" + bytes(511)) + 512]  # up to the end of a's data

    files = read((body + b"garbage!" * 64 + bytes(2048), TAR))

    assert files.read("a") == b"x"
    assert problems(files) == [": invalid tar header; the rest of the layer was not read"]


@pytest.mark.parametrize(
    ("encode", "media_type"),
    [(TarBuilder.gzip, TAR), (TarBuilder.zstd, DOCKER_GZIP), (TarBuilder.tar, TAR_GZIP)],
)
def test_compression_is_recognised_by_magic_bytes_not_media_type(
    encode: Callable[[TarBuilder], bytes], media_type: str
) -> None:
    files = read((encode(TarBuilder().file("etc/os-release", b"ID=debian")), media_type))

    assert files.issues == []
    assert files.read("etc/os-release") == b"ID=debian"


def test_garbage_blob_is_reported() -> None:
    files = read((b"not a tar at all" * 100, TAR), (b"", TAR))

    assert len(files.issues) == 2


async def test_read_layers_reads_paths_in_a_thread(tmp_path: Path) -> None:
    blob = tmp_path / "layer"
    blob.write_bytes(TarBuilder().file("etc/os-release", b"ID=alpine").zstd())

    files = await read_layers(
        [(digest(0), TAR_ZSTD, blob), (digest(1), TAR, str(blob))], everything
    )

    assert files.read("etc/os-release") == b"ID=alpine"
    entry = files.entry("etc/os-release")
    assert entry is not None
    assert entry.layer == digest(1)
