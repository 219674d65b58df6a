"""The page icon, drawn here and served by the dashboard itself: a Material or emoji icon
makes the browser fetch it from a font or emoji CDN (a request that leaves the machine)."""

from __future__ import annotations

from functools import cache

from PIL import Image, ImageDraw

_BLUE = (0, 114, 178, 255)  # the theme's primary colour (Okabe–Ito blue)


@cache
def page_icon() -> Image.Image:
    """A 64 px blue tile with a white heart-monitor trace."""
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((2, 2, 62, 62), radius=12, fill=_BLUE)
    trace = [(8, 34), (22, 34), (27, 22), (33, 46), (39, 14), (44, 34), (56, 34)]
    draw.line(trace, fill=(255, 255, 255, 255), width=5, joint="curve")
    return image
