"""Solar position and shadow geometry (one job: where the sun is and where shadows fall).

Sun angles follow the NOAA "General Solar Position Calculations" (Spencer's 1971 Fourier series for the solar
declination and the equation of time):

* fractional year ``g = 2 pi / 365 * (day_of_year - 1 + (hour - 12) / 24)``;
* declination ``d = 0.006918 - 0.399912 cos g + 0.070257 sin g - 0.006758 cos 2g + 0.000907 sin 2g
  - 0.002697 cos 3g + 0.00148 sin 3g`` (radians);
* equation of time ``E = 229.18 (0.000075 + 0.001868 cos g - 0.032077 sin g - 0.014615 cos 2g - 0.040849 sin 2g)``
  (minutes); true solar time ``t = 60 h + m + s / 60 + E + 4 lon`` and hour angle ``H = t / 4 - 180`` (degrees);
* ``sin(elevation) = sin(lat) sin(d) + cos(lat) cos(d) cos(H)``; azimuth (clockwise from north)
  ``atan2(sin H, cos H sin(lat) - tan(d) cos(lat)) + 180``.

Accuracy is about 0.5 deg, plenty for shadows. Shadows point away from the sun: on screen (north up, y down) the unit
shadow direction is ``(-sin(azimuth), cos(azimuth))``, and an object of height ``h`` metres casts a shadow
``h / tan(elevation) / gsd`` pixels long.

Example:
    >>> az, el = solar_position(40.0, 0.0, "2021-06-21T12:00:00Z")  # northern summer solstice, solar noon
    >>> round(el, 1), round(az)  # 90 - 40 + 23.44 = 73.44
    (73.4, 179)
    >>> [round(v, 6) + 0.0 for v in shadow_offset(10.0, 180.0, 45.0, gsd=1.0)]  # sun in the south: shadow up
    [0.0, -10.0]
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable

__all__ = [
    "MIN_SHADOW_ELEVATION",
    "parse_timestamp",
    "shadow_offset",
    "shadow_offsets",
    "solar_position",
    "sun_position",
]

# Below this elevation shadows would be absurdly long; the renderer clamps to it.
MIN_SHADOW_ELEVATION = 8.0


def parse_timestamp(timestamp: str) -> _dt.datetime:
    """Parse an ISO-8601 timestamp to an aware UTC datetime (naive times are taken as UTC).

    Raises:
        ValueError: naming the timestamp and the expected form.
    """
    try:
        t = _dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise ValueError(
            f"timestamp {timestamp!r} is not ISO-8601; expected e.g. '2023-06-14T10:32:00Z'"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    return t.astimezone(_dt.UTC)


def solar_position(lat: float, lon: float, timestamp: str) -> tuple[float, float]:
    """Sun ``(azimuth, elevation)`` in degrees for a place and a UTC time (NOAA formula, see module doc).

    Args:
        lat: latitude in degrees, north positive, within [-90, 90].
        lon: longitude in degrees, east positive.
        timestamp: ISO-8601 time (``Z`` or an offset; naive means UTC).

    Returns:
        Azimuth clockwise from north in ``[0, 360)`` and elevation above the horizon in ``[-90, 90]``.
    """
    return sun_position(lat, lon, parse_timestamp(timestamp))


def sun_position(lat: float, lon: float, when: _dt.datetime) -> tuple[float, float]:
    """:func:`solar_position` for a time given as an aware UTC datetime (its microseconds are ignored, as a
    timestamp string's fraction of a second is).

    Example:
        >>> import datetime
        >>> when = datetime.datetime(2021, 6, 21, 12, tzinfo=datetime.UTC)
        >>> sun_position(40.0, 0.0, when) == solar_position(40.0, 0.0, "2021-06-21T12:00:00Z")
        True
    """
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude must be within [-90, 90], got {lat}")
    day = when.timetuple().tm_yday
    days_in_year = 366 if (when.year % 4 == 0 and (when.year % 100 != 0 or when.year % 400 == 0)) else 365
    hour = when.hour + when.minute / 60.0 + when.second / 3600.0
    g = 2.0 * math.pi / days_in_year * (day - 1 + (hour - 12.0) / 24.0)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    true_solar_minutes = hour * 60.0 + eqtime + 4.0 * lon
    hour_angle = math.radians(true_solar_minutes / 4.0 - 180.0)
    phi = math.radians(lat)
    sin_el = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(hour_angle)
    elevation = math.degrees(math.asin(max(-1.0, min(1.0, sin_el))))
    azimuth = math.degrees(
        math.atan2(
            math.sin(hour_angle), math.cos(hour_angle) * math.sin(phi) - math.tan(decl) * math.cos(phi)
        )
    )
    return (azimuth + 180.0) % 360.0, elevation


def shadow_offset(height_m: float, azimuth: float, elevation: float, gsd: float) -> tuple[float, float]:
    """Screen offset ``(dx, dy)`` in pixels from an object's top to the tip of its shadow.

    Elevations below :data:`MIN_SHADOW_ELEVATION` are clamped so shadows stay finite.
    """
    return shadow_offsets(azimuth, elevation, gsd)(height_m)


def shadow_offsets(azimuth: float, elevation: float, gsd: float) -> Callable[[float], tuple[float, float]]:
    """:func:`shadow_offset` as a function of the height alone, for many objects under one sun (the trigonometry
    is done once; every offset is computed exactly as by :func:`shadow_offset`)."""
    tan_el = math.tan(math.radians(max(elevation, MIN_SHADOW_ELEVATION)))
    az = math.radians(azimuth)
    minus_sin_az, cos_az = -math.sin(az), math.cos(az)

    def offset(height_m: float) -> tuple[float, float]:
        length = height_m / tan_el / gsd
        return minus_sin_az * length + 0.0, cos_az * length + 0.0

    return offset
