"""SDSS calibrated frame files ("frame-{band}-{run}-{camcol}-{field}.fits.bz2").

A frame is read by decompressing its bz2 stream once in memory and opening the FITS from the
buffer; every failure (truncated stream, not FITS, no image, no WCS) raises :class:`FrameError`
naming the file, so nothing corrupt ever reaches the stamp cutter.
"""

from __future__ import annotations

import bz2
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from ..bands import BANDS
from ..io import write_bytes_atomic

FRAME_NAME = "frame-{band}-{run:06d}-{camcol}-{field:04d}.fits.bz2"
FRAME_RELPATH = "{rerun}/{run}/{camcol}/" + FRAME_NAME
#: Where DR16 serves frames, relative to the SAS root.
SAS_FRAMES_PREFIX = "dr{release}/eboss/photoObj/frames"
#: Mean size (MB) of a compressed DR16 frame: the five frames of the real field 301/2583/2/136
#: (``../shared/sdss-frames``) hold 17.1 MB; what a download plan multiplies frames by.
TYPICAL_FRAME_MB = 3.42


class FrameError(RuntimeError):
    """A frame file is missing, truncated or not a usable SDSS frame."""


class MissingFrame(FrameError):
    """A frame does not exist where it should (HTTP 404, absent from a mirror): its field is
    skipped and counted rather than failing the shard (``stamps.max_missing_fraction``)."""


def frame_relpath(rerun: int, run: int, camcol: int, field: int, band: str) -> str:
    """Path of a frame below a ``photoObj/frames`` root (the SAS layout)."""
    return FRAME_RELPATH.format(rerun=int(rerun), run=int(run), camcol=int(camcol),
                                field=int(field), band=band)


def frame_url(base_url: str, release: int, rerun, run, camcol, field, band) -> str:
    prefix = SAS_FRAMES_PREFIX.format(release=int(release))
    return f"{base_url.rstrip('/')}/{prefix}/{frame_relpath(rerun, run, camcol, field, band)}"


@dataclass
class Frame:
    path: Path
    band: str
    image: np.ndarray  # (rows, cols) float32, nanomaggies
    wcs: WCS
    header: fits.Header

    def world_to_pixel(self, ra, dec) -> tuple[np.ndarray, np.ndarray]:
        """0-based (x, y) = (column, row) pixel positions of sky positions in this frame."""
        x, y = self.wcs.all_world2pix(np.asarray(ra, float), np.asarray(dec, float), 0)
        return np.asarray(x), np.asarray(y)


def decompress(path: Path, data: bytes | None = None) -> bytes:
    """The raw FITS bytes of a ``.fits.bz2`` (or plain ``.fits``) file, decompressed once.

    ``data`` is the file's content when it is already in memory (a download being verified);
    otherwise the file is read from ``path``.

    The standard library's libbz2 checks every block's and the stream's CRC and refuses a
    truncated stream. indexed_bzip2 was weighed as a faster decoder (``benchmarks/stamps.py --real``
    times it beside libbz2) and not adopted: single-threaded it gains a few percent, its parallel
    mode does not check the stream CRC (a corrupted one passes), it has no conda-forge build for
    ARM machines, and a cluster run already keeps every core busy with one field each.
    """
    path = Path(path)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise FrameError(f"{path}: cannot read frame ({exc})") from exc
    if path.suffix == ".bz2":
        try:
            data = bz2.decompress(data)
        except (OSError, EOFError, ValueError) as exc:
            raise FrameError(f"{path}: corrupt or truncated bz2 stream ({exc})") from exc
    return data


#: The header keyword FRAME counts the camera's raw frames, which the five rows of CCDs (in scan
#: order r, i, u, z, g) see two frames apart: FRAME = field + this offset (measured on the real
#: field 2583/2/136 in shared/: u 140, g 144, r 136, i 138, z 142).
FRAME_OFFSET: dict[str, int] = {"r": 0, "i": 2, "u": 4, "z": 6, "g": 8}


def check_header(path, header, band: str | None = None, key: tuple | None = None) -> None:
    """Raise :class:`FrameError` unless the header's FILTER, RERUN, RUN, CAMCOL and FRAME are the
    requested band and field ``key`` (rerun, run, camcol, field): a frame of another band or
    field in a mirror slot would otherwise be cut as if it were the right one."""
    expect = {}
    if band is not None:
        expect["FILTER"] = band
    if key is not None:
        expect.update(RERUN=int(key[0]), RUN=int(key[1]), CAMCOL=int(key[2]))
        if band is not None:
            expect["FRAME"] = int(key[3]) + FRAME_OFFSET[band]
    wrong = []
    for card, want in expect.items():
        got = header.get(card)
        if got is None:
            wrong.append(f"{card} missing (expected {want!r})")
            continue
        got = str(got).strip()
        if (got != want) if isinstance(want, str) else (not got.lstrip("-").isdigit() or int(got) != want):
            wrong.append(f"{card}={got!r} (expected {want!r})")
    if wrong:
        raise FrameError(f"{path}: not the requested frame: " + ", ".join(wrong))


def parse_frame(path: Path, raw: bytes, band: str | None = None, key: tuple | None = None) -> Frame:
    """Open FITS bytes as a :class:`Frame`, checking HDU0 is a 2-D image with a celestial WCS and,
    when ``band`` and the field ``key`` are given, that its header says so (:func:`check_header`)."""
    path = Path(path)
    try:
        with fits.open(io.BytesIO(raw), memmap=False) as hdul:
            hdu = hdul[0]
            image = np.asarray(hdu.data, dtype=np.float32) if hdu.data is not None else None
            header = hdu.header.copy()
    except Exception as exc:  # astropy raises OSError, TypeError, ValueError... on garbage
        raise FrameError(f"{path}: not a readable FITS file ({exc})") from exc
    if image is None or image.ndim != 2:
        raise FrameError(f"{path}: HDU0 holds no 2-D image")
    if "CTYPE1" not in header or "CTYPE2" not in header:
        raise FrameError(f"{path}: HDU0 header has no WCS (CTYPE1/CTYPE2 missing)")
    check_header(path, header, band, key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header, naxis=2)
    if not wcs.has_celestial:
        raise FrameError(f"{path}: HDU0 WCS is not celestial")
    band = band or str(header.get("FILTER", "?")).strip()
    return Frame(path=path, band=band, image=image, wcs=wcs, header=header)


def read_frame(path, band: str | None = None, key: tuple | None = None) -> Frame:
    return parse_frame(Path(path), decompress(Path(path)), band, key)


def field_paths(root, rerun, run, camcol, field, bands=BANDS) -> dict[str, Path]:
    root = Path(root)
    return {b: root / frame_relpath(rerun, run, camcol, field, b) for b in bands}


def write_frame(path, image: np.ndarray, header: fits.Header, calib: np.ndarray,
                sky: np.ndarray, compresslevel: int = 9) -> None:
    """Write an SDSS-format frame: HDU0 image, HDU1 calibration vector, HDU2 sky table; bz2."""
    primary = fits.PrimaryHDU(image.astype(np.float32), header=header)
    calib_hdu = fits.ImageHDU(calib.astype(np.float32))
    ny, nx = sky.shape
    sky_hdu = fits.BinTableHDU.from_columns([
        fits.Column(name="ALLSKY", format=f"{ny * nx}E", dim=f"({nx},{ny})",
                    array=sky[None].astype(np.float32)),
        fits.Column(name="XINTERP", format=f"{image.shape[1]}E",
                    array=np.linspace(0, nx - 1, image.shape[1], dtype=np.float32)[None]),
        fits.Column(name="YINTERP", format=f"{image.shape[0]}E",
                    array=np.linspace(0, ny - 1, image.shape[0], dtype=np.float32)[None]),
    ])
    buf = io.BytesIO()
    fits.HDUList([primary, calib_hdu, sky_hdu]).writeto(buf)
    write_bytes_atomic(path, bz2.compress(buf.getvalue(), compresslevel))
