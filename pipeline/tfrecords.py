"""Reading TFRecord files in plain Python, whatever their compression.

For the few records the pipeline reads before anything runs (a label sample, a schema
inference sample), without a TensorFlow op: TensorFlow's devices must stay unset until
the runner has split the CPU into replicas. The compression is recognised by content
(gzip and zlib headers), not by the file name.
"""

from __future__ import annotations

import gzip
import struct
import zlib


def _masked_crc(data: bytes) -> int:
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def compression(path: str) -> str:
    """"GZIP", "ZLIB" or "" (uncompressed), from the file's first bytes.

    An uncompressed TFRecord starts with a length whose masked CRC-32C follows it, which
    a compressed stream matches only by a 1 in 4 billion chance; gzip and zlib have
    their own headers."""
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) == 12 and struct.unpack("<I", head[8:])[0] == _masked_crc(head[:8]):
        return ""
    if head[:2] == b"\x1f\x8b":
        return "GZIP"
    try:
        zlib.decompressobj().decompress(head)
        return "ZLIB"
    except zlib.error:
        return ""


def records(path: str, limit: int):
    """The first `limit` records of a TFRecord file: an 8-byte length, a 4-byte CRC, the
    data and its 4-byte CRC, each record (CRCs not checked: the preflight does that)."""
    kind = compression(path)
    opener = gzip.open if kind == "GZIP" else open
    with opener(path, "rb") as raw:
        f = _ZlibReader(raw) if kind == "ZLIB" else raw
        for _ in range(limit):
            header = f.read(12)
            if len(header) < 12:
                return
            (length,) = struct.unpack("<Q", header[:8])
            data = f.read(length)
            f.read(4)
            if len(data) < length:
                return
            yield data


class _ZlibReader:
    def __init__(self, raw):
        self._raw, self._z, self._buf = raw, zlib.decompressobj(), b""

    def read(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self._raw.read(1 << 16)
            if not chunk:
                break
            self._buf += self._z.decompress(chunk)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out
