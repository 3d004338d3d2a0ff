"""Draw Delineate's icon (resources/icons/delineate.svg and a 256 px PNG): an axial slice of a
head, grey on dark, with one segment's outline drawn round it - what the app is for. Run it again
after changing the drawing; the two small files are committed."""
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "resources" / "icons"
BG, SKULL, BRAIN, OUTLINE = "#1f2933", "#d9dde1", "#7b8794", "#f0a030"

SVG = f"""<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">
  <rect x="8" y="8" width="240" height="240" rx="44" fill="{BG}"/>
  <ellipse cx="128" cy="130" rx="82" ry="96" fill="{SKULL}"/>
  <ellipse cx="128" cy="130" rx="70" ry="84" fill="{BRAIN}"/>
  <path d="M92 104 C102 74 150 70 164 100 C178 128 160 168 128 170 C96 172 82 132 92 104 Z"
        fill="{OUTLINE}" fill-opacity="0.35" stroke="{OUTLINE}" stroke-width="9" stroke-linejoin="round"/>
</svg>
"""


def png(size: int = 256) -> Image.Image:
    s = 4  # drawn at 4x and reduced: smooth edges without an SVG renderer
    im = Image.new("RGBA", (size * s, size * s), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    k = size * s / 256

    def box(cx, cy, rx, ry):
        return [(cx - rx) * k, (cy - ry) * k, (cx + rx) * k, (cy + ry) * k]

    d.rounded_rectangle([8 * k, 8 * k, 248 * k, 248 * k], radius=44 * k, fill=BG)
    d.ellipse(box(128, 130, 82, 96), fill=SKULL)
    d.ellipse(box(128, 130, 70, 84), fill=BRAIN)
    d.ellipse(box(127, 121, 40, 50), fill="#b0946a", outline=OUTLINE, width=int(9 * k))
    return im.resize((size, size), Image.LANCZOS)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "delineate.svg").write_text(SVG)
    png().save(OUT / "delineate.png", optimize=True)
    print(f"wrote {OUT / 'delineate.svg'} and {OUT / 'delineate.png'}")
