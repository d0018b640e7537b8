"""The window's look: sizes, places and colours (BGR). No OpenCV here, so the X11 check and the
tests can know where things are without drawing them."""

TITLE = "digitrec draw"

CANVAS = 480  # side of the square drawing area, in frame pixels
PANEL = 320  # width of the side panel
HELP_BAR = 52  # height of the key help and status lines under both
FRAME = (CANVAS + HELP_BAR, CANVAS + PANEL)  # height, width
PEN = 26  # pen width: a digit drawn across most of the area gets MNIST's proportions

KEYS = (
    ("c", "clear"),
    ("u", "undo"),
    ("m", "digit/number"),
    ("s", "save PNG"),
    ("0-9", "store with that label"),
    ("q/Esc", "quit"),
)
HELP = "   ".join(f"{key} {what}" for key, what in KEYS)

# Panel layout, in panel pixels (tests read the picture back from these places).
INPUT_BOX = (192, 44, 112)  # left, top, side of the enlarged 28x28 input
BARS_TOP, BAR_ROW, BAR_LEFT, BAR_WIDTH = 196, 27, 44, 196
ROWS_TOP, ROW_HEIGHT, ROW_THUMB = 112, 58, 48  # number mode: one row per digit
# A frame point of the panel above the bars: nothing is ever drawn there, so it shows
# BACKGROUND once the window is painted (x11.MapRepair looks at it).
PAINTED_PROBE = (CANVAS + PANEL - 8, 6)

INK = 255
BACKGROUND = (34, 30, 28)
HELP_BACKGROUND = (24, 22, 20)
SEPARATOR = (80, 80, 80)
TEXT = (236, 236, 236)
DIM = (150, 150, 150)
TRACK = (62, 58, 56)
BAR = (170, 150, 120)
GOOD = (96, 200, 96)  # an answer
WARN = (40, 170, 250)  # a refusal
NOTE = (235, 200, 140)  # the status line
FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX
