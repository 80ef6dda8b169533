"""Acquisition metadata: where on Earth a tile is and when a satellite would plausibly image it.

Sun-synchronous Earth-observation satellites cross the equator at about 10:30 local solar time, so acquisitions are
drawn at 10:30 +- 40 min local solar time (converted to UTC from the longitude) on a random day of 2017-2025; days
with the sun lower than 25 deg are redrawn. Sun angles then follow from :func:`~rszoo.data.synth.sun.solar_position`.

Example:
    >>> import random
    >>> acq = sample_acquisition(random.Random(0), lat=48.1, lon=11.6, gsd=0.5)
    >>> acq.sun_elevation >= 18.0 and acq.timestamp.endswith("Z")
    True
"""

from __future__ import annotations

import datetime as _dt
import math
import random

from rszoo.data.synth.graph import Acquisition
from rszoo.data.synth.sun import parse_timestamp, sun_position
from rszoo.data.synth.world import get_world

__all__ = ["MIN_SUN_ELEVATION", "latlon_of", "sample_acquisition", "season_factor"]

MIN_SUN_ELEVATION = 25.0
_M_PER_DEG = 111_320.0


def latlon_of(world_seed: int, x: float, y: float) -> tuple[float, float]:
    """Latitude/longitude of world position ``(x east, y south)`` metres (local tangent-plane approximation)."""
    world = get_world(world_seed)
    lat = world.lat0 - y / _M_PER_DEG
    lon = world.lon0 + x / (_M_PER_DEG * math.cos(math.radians(world.lat0)))
    lat = max(-80.0, min(80.0, lat))
    lon = (lon + 180.0) % 360.0 - 180.0
    return lat, lon


_FIRST_DAY = _dt.datetime(2017, 1, 1, tzinfo=_dt.UTC)


def _utc_time(day: int, utc_hours: float) -> _dt.datetime:
    """Midnight of ``day`` days after 2017-01-01 (UTC), plus ``utc_hours``."""
    return _FIRST_DAY + _dt.timedelta(days=day) + _dt.timedelta(hours=utc_hours)


def _format(t: _dt.datetime) -> str:
    # to the second, like the timestamps users pass; solar_position ignores fractions of a second as well
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def sample_acquisition(
    rng: random.Random,
    lat: float,
    lon: float,
    gsd: float,
    *,
    timestamp: str | None = None,
    cloud_cover: float = 0.0,
    off_nadir: float | None = None,
    cloud_seed: int | None = None,
) -> Acquisition:
    """Draw a plausible acquisition for a place (or use ``timestamp`` as given)."""
    sun = None
    if timestamp is None:
        # each try's sun from its datetime (the same fields its timestamp string would be parsed back to)
        for _ in range(40):
            day = rng.randrange(9 * 365)
            local = 10.5 + rng.uniform(-0.67, 0.67)
            utc = local - lon / 15.0
            when = _utc_time(day, round(utc * 60) / 60)
            sun = sun_position(lat, lon, when)
            if sun[1] >= MIN_SUN_ELEVATION:
                break
        else:  # polar winter: move to the nearest summer solstice
            solstice = _dt.datetime(2021, 6 if lat >= 0 else 12, 21, tzinfo=_dt.UTC)
            when = solstice + _dt.timedelta(hours=round((12.0 - lon / 15.0) * 60) / 60)
            sun = sun_position(lat, lon, when)
        timestamp = _format(when)
    else:
        parse_timestamp(timestamp)
    if off_nadir is None:
        off_nadir = abs(rng.gauss(0.0, 12.0))
        off_nadir = min(off_nadir, 30.0)
    return Acquisition.at(
        lat,
        lon,
        timestamp,
        gsd=gsd,
        off_nadir=off_nadir,
        cloud_cover=cloud_cover,
        cloud_seed=rng.randrange(1 << 31) if cloud_seed is None else cloud_seed,
        sun=sun,
    )


def season_factor(acquisition: Acquisition | None) -> tuple[float, float, float]:
    """RGB multiplier for vegetation: full green at midsummer, yellow-brown towards midwinter (by hemisphere)."""
    if acquisition is None:
        return (1.0, 1.0, 1.0)
    day = parse_timestamp(acquisition.timestamp).timetuple().tm_yday
    midsummer = 172 if acquisition.lat >= 0 else 355
    # 0 at midsummer, 1 at midwinter
    t = (1.0 - math.cos(2 * math.pi * (day - midsummer) / 365.25)) / 2.0
    # tropics barely change
    t *= min(1.0, abs(acquisition.lat) / 35.0)
    # rounded so that the per-material lookup tables built from it are reused across scenes
    return (round(1.0 + 0.16 * t, 2), round(1.0 - 0.05 * t, 2), round(1.0 - 0.16 * t, 2))
