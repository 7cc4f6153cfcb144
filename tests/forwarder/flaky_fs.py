"""A real FUSE file system that passes everything through to a directory, and can make one read come back short:
the I/O fault of a failing SD card or USB stick, for the queue's corruption tests.

    python -m tests.forwarder.flaky_fs BACKING MOUNTPOINT FAULT_FILE

mounts BACKING at MOUNTPOINT (foreground; unmount to end it). While FAULT_FILE exists, the next read of a
`cache.db` beyond its first page returns half the bytes asked for, and SQLite's read of the rest nothing, as
if the file ended there; FAULT_FILE is deleted: one failed read, then the disk reads fine again. SQLite fills
the missing bytes with zeros and then reports the page as "database disk image is malformed" — though the file
itself is whole. `cache.db` is opened with
`direct_io`, so that every read reaches this file system rather than the kernel's page cache.

When FAULT_FILE holds a number, only a read made by the thread with that id (`threading.get_native_id()`; the
kernel tells FUSE which thread asks) fails: a test can aim the fault at one of the forwarder's two threads.
"""

import errno
import os
import sys
from pathlib import Path
from typing import Any

from fuse import FUSE, FuseOSError, Operations, fuse_get_context  # type: ignore[import-untyped]

_PAGE = 4096


class FlakyPassthrough(Operations):  # type: ignore[misc]
    def __init__(self, backing: str, fault_file: str) -> None:
        self.backing = backing
        self.fault_file = Path(fault_file)
        self._cut_at: int | None = None  # where the short read ended: the next read from there gets nothing

    def _path(self, path: str) -> str:
        return os.path.join(self.backing, path.lstrip("/"))

    def _open_flags(self, path: str, fi: Any, descriptor: int) -> int:
        fi.fh = descriptor
        fi.direct_io = path.endswith("/cache.db")
        return 0

    def access(self, path: str, mode: int) -> None:
        if not os.access(self._path(path), mode):
            raise FuseOSError(errno.EACCES)

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        info = os.lstat(self._path(path))
        return {key: getattr(info, key) for key in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime",
                                                    "st_nlink", "st_size", "st_uid", "st_ino")}

    def readdir(self, path: str, fh: Any) -> list[str]:
        return [".", "..", *os.listdir(self._path(path))]

    def mkdir(self, path: str, mode: int) -> None:
        os.mkdir(self._path(path), mode)

    def rmdir(self, path: str) -> None:
        os.rmdir(self._path(path))

    def unlink(self, path: str) -> None:
        os.unlink(self._path(path))

    def rename(self, old: str, new: str) -> None:
        os.rename(self._path(old), self._path(new))

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(self._path(path), mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(self._path(path), uid, gid)

    def utimens(self, path: str, times: tuple[float, float] | None = None) -> None:
        os.utime(self._path(path), times)

    def statfs(self, path: str) -> dict[str, int]:
        info = os.statvfs(self._path(path))
        return {key: getattr(info, key) for key in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                                    "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    def open(self, path: str, fi: Any) -> int:
        return self._open_flags(path, fi, os.open(self._path(path), fi.flags))

    def create(self, path: str, mode: int, fi: Any) -> int:
        return self._open_flags(path, fi, os.open(self._path(path), os.O_RDWR | os.O_CREAT, mode))

    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        if offset == self._cut_at:
            self._cut_at = None
            return b""
        data = os.pread(fi.fh, size, offset)
        if path.endswith("/cache.db") and offset >= _PAGE and self._fault_armed():
            self.fault_file.unlink()
            self._cut_at = offset + len(data) // 2
            return data[: len(data) // 2]
        return data

    def _fault_armed(self) -> bool:
        """The fault file exists and names no thread, or names the thread making this read."""
        try:
            target = self.fault_file.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return False
        return not target or int(target) == fuse_get_context()[2]

    def write(self, path: str, data: bytes, offset: int, fi: Any) -> int:
        return os.pwrite(fi.fh, data, offset)

    def truncate(self, path: str, length: int, fh: Any = None) -> None:
        os.truncate(self._path(path), length)

    def flush(self, path: str, fi: Any) -> int:
        return 0

    def release(self, path: str, fi: Any) -> int:
        os.close(fi.fh)
        return 0

    def fsync(self, path: str, datasync: int, fi: Any) -> int:
        os.fsync(fi.fh)
        return 0


if __name__ == "__main__":
    backing, mountpoint, fault = sys.argv[1:4]
    FUSE(FlakyPassthrough(backing, fault), mountpoint, foreground=True, raw_fi=True, nothreads=True,
         allow_other=False)
