"""The report's page flow: text wrapped to a measured width, blocks placed top to bottom at their
measured heights, a new page when the next block does not fit. Nothing is placed at a guessed
height, so no text runs under a picture and nothing is cut, however long a warning is."""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

A4 = (8.27, 11.69)  # inches
BOTTOM = 0.05  # the footer's band (figure fraction)
TITLE_H = 0.022  # a block's bold title and the gap under it
GAP = 0.018  # between blocks
LINESPACING = 1.45
_FIT = 0.96  # Agg's hinted glyphs run ~2% wider than the outline metrics the wrapping measures


@lru_cache(maxsize=4096)
def text_width_pt(text: str, size: float) -> float:
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    return TextToPath().get_text_width_height_descent(text, FontProperties(size=size), ismath=False)[0]


def wrap(text: str, width_in: float, size: float, indent: str = "   ") -> list[str]:
    """``text`` as lines no wider than ``width_in`` at ``size`` pt (continuation lines indented); a
    word wider than a line is broken where it must be."""
    limit = width_in * 72 * _FIT
    if text_width_pt(text, size) <= limit:
        return [text]  # as written, its spacing kept
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}" if line else (indent + word if lines else word)
        if text_width_pt(trial, size) <= limit:
            line = trial
            continue
        if line:
            lines.append(line)
        line = indent + word if lines or line else word
        while text_width_pt(line, size) > limit and len(line) > len(indent) + 1:
            cut = len(line) - 1
            while cut > len(indent) + 1 and text_width_pt(line[:cut], size) > limit:
                cut -= 1
            lines.append(line[:cut])
            line = indent + line[cut:]
    if line or not lines:
        lines.append(line)
    return lines


def line_height(size: float) -> float:
    """One line of ``size`` pt text as a fraction of the page height."""
    return size * LINESPACING / 72 / A4[1]


class Flow:
    """Pages filled top to bottom: ``y`` is where the next block starts (figure fraction);
    ``header(fig, ax)`` draws a new page's head and returns the y below it."""

    def __init__(self, header: Callable) -> None:
        self.header = header
        self.pages: list = []
        self.new_page()

    def new_page(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=A4)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.axis("off")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        self.fig, self.ax = fig, ax
        self.pages.append((fig, ax))
        self.y = self.header(fig, ax)
        self.fresh = True  # nothing placed on this page yet: a block too tall for a page goes here anyway

    @property
    def room(self) -> float:
        return self.y - BOTTOM

    def need(self, height: float) -> None:
        """Start a new page unless ``height`` fits below ``y``."""
        if height > self.room and not self.fresh:
            self.new_page()

    def placed(self, height: float) -> None:
        self.y -= height
        self.fresh = False

    def columns(self, cols: list, size: float = 8.5) -> None:
        """Text columns side by side, each (x, width in inches, title, lines), every line wrapped to
        its column; what does not fit on this page goes on on the next under "(continued)"."""
        lh = line_height(size)
        left = [[w for line in lines for w in wrap(line, width, size)] for _x, width, _t, lines in cols]
        more = False
        while True:
            fit = int((self.room - TITLE_H) / lh)
            if fit < min(3, max(map(len, left))) and not self.fresh:
                self.new_page()
                continue
            fit = max(fit, 1)
            for (x, _w, title, _l), lines in zip(cols, left):
                if lines or not more:
                    self.ax.text(x, self.y, title + (" (continued)" if more else ""), fontsize=10,
                                 fontweight="bold", va="top")
                for n, line in enumerate(lines[:fit]):
                    self.ax.text(x, self.y - TITLE_H - n * lh, line, fontsize=size, va="top")
            used = max(min(len(lines), fit) for lines in left)
            left = [lines[fit:] for lines in left]
            self.placed(TITLE_H + used * lh + GAP)
            if not any(left):
                return
            self.new_page()
            more = True
