"""G.711 μ-law and A-law (ITU-T G.711) with numpy lookup tables.

``audioop`` does this too but is deprecated (removed in Python 3.13); the tables here are built once from
the reference algorithm (the Sun/CCITT ``g711.c`` that ``audioop`` also follows, so results are identical)
and make each 20 ms frame a single numpy indexing operation.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_BIAS = 0x84


def _ulaw_encode_ref(x: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    pcm = x >> 2  # 14-bit magnitude, as in the reference
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    pcm = np.minimum(np.abs(pcm), 8159) + 0x21
    seg = np.zeros_like(pcm)
    for i, end in enumerate((0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)):
        seg = np.where(pcm > end, i + 1, seg)
    uval = (np.minimum(seg, 7) << 4) | ((pcm >> (np.minimum(seg, 7) + 1)) & 0x0F)
    uval = np.where(seg >= 8, 0x7F, uval)  # saturate
    return ((uval ^ mask) & 0xFF).astype(np.uint8)


def _ulaw_decode_ref(u: npt.NDArray[np.int32]) -> npt.NDArray[np.int16]:
    u = ~u & 0xFF
    t = (((u & 0x0F) << 3) + _BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _BIAS - t, t - _BIAS).astype(np.int16)


def _alaw_encode_ref(x: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    pcm = x >> 3
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    pcm = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.zeros_like(pcm)
    for i, end in enumerate((0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)):
        seg = np.where(pcm > end, i + 1, seg)
    shift = np.where(seg < 2, 1, seg)
    aval = (np.minimum(seg, 7) << 4) | ((pcm >> shift) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, aval)
    return ((aval ^ mask) & 0xFF).astype(np.uint8)


def _alaw_decode_ref(a: npt.NDArray[np.int32]) -> npt.NDArray[np.int16]:
    a = a ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ALL_LINEAR = np.arange(-32768, 32768, dtype=np.int32)
_ALL_CODES = np.arange(256, dtype=np.int32)
# Indexed by the int16 sample viewed as uint16 (two's complement), so encoding needs no offset arithmetic.
_ULAW_ENC = np.roll(_ulaw_encode_ref(_ALL_LINEAR), 32768)
_ALAW_ENC = np.roll(_alaw_encode_ref(_ALL_LINEAR), 32768)
_ULAW_DEC = _ulaw_decode_ref(_ALL_CODES)
_ALAW_DEC = _alaw_decode_ref(_ALL_CODES)


def encode(pcm: bytes, codec: str) -> bytes:
    """16-bit little-endian linear PCM → G.711 bytes (``codec`` is "PCMU" or "PCMA")."""
    table = _ULAW_ENC if codec == "PCMU" else _ALAW_ENC
    samples = np.frombuffer(pcm, dtype="<i2").view(np.uint16)
    return bytes(table[samples].tobytes())


def decode(data: bytes, codec: str) -> bytes:
    """G.711 bytes → 16-bit little-endian linear PCM."""
    table = _ULAW_DEC if codec == "PCMU" else _ALAW_DEC
    return bytes(table[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes())


def silence(codec: str, samples: int = 160) -> bytes:
    """Encoded digital silence (0xFF for μ-law, 0xD5 for A-law)."""
    return (b"\xff" if codec == "PCMU" else b"\xd5") * samples
