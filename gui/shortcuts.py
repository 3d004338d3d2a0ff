"""Keyboard shortcuts, in the style of 3D Slicer and ITK-SNAP. One table feeds the actions and
the Help -> Shortcuts dialog, so the two cannot disagree."""
from __future__ import annotations

#: (action id, key sequence, description); keys handled inside slice views have no action id
SHORTCUTS = (
    ("open", "Ctrl+O", "Open an image file"),
    ("open_folder", "Ctrl+Shift+O", "Open a DICOM folder (series browser)"),
    ("open_seg", "Ctrl+Shift+L", "Load a segmentation onto the image"),
    ("open_heat", "Ctrl+Shift+H", "Load a heat map (probability, saliency, uncertainty) onto the image"),
    ("export", "Ctrl+E", "Export the segmentation (DICOM SEG, RTSTRUCT, NIfTI, NRRD, STL, OBJ), statistics or report"),
    ("screenshot_view", "Shift+F12", "Screenshot of the view under focus to PNG"),
    ("screenshot_window", "F12", "Screenshot of the whole window to PNG"),
    ("quit", "Ctrl+Q", "Quit"),
    ("run_default", "Ctrl+R", "Run the default model for this modality (in the background; Cancel stops it)"),
    ("run_model", "Ctrl+Shift+R", "Choose a model (cards shown), device, and run it"),
    ("compare_model", "Ctrl+Shift+M", "Run another model and compare it with the mask on screen (Dice/HD95, "
                                      "disagreement heat map)"),
    ("save_review", "Ctrl+S", "Save the correction to the store (in review)"),
    ("approve", "Ctrl+Shift+A", "Approve and save the correction"),
    ("next_case", "Ctrl+Right", "Next case: save the open case (approved stays approved, else in review) and "
                                "open the next row of the worklist"),
    ("previous_case", "Ctrl+Left", "Previous case: save the open case and open the row above it in the worklist"),
    ("layout_conventional", "Ctrl+1", "Layout: three slices + 3D"),
    ("layout_four_up", "Ctrl+2", "Layout: four-up"),
    ("layout_2d", "Ctrl+3", "Layout: slices only"),
    ("layout_single", "Ctrl+4", "Layout: maximise the view under focus (again: back)"),
    ("layout_image", "Ctrl+5", "Layout: one image plane (2D images and cine loops open in it)"),
    ("toggle_panel", "Ctrl+0", "Show / hide the side panel (the views take its room; on a small or "
                               "HiDPI-scaled screen it takes half the width)"),
    ("undo", "Ctrl+Z", "Undo the last edit (unlimited)"),
    ("redo", "Ctrl+Shift+Z", "Redo"),
    ("tool_paint", "P", "Paint tool (left drag paints the chosen segment)"),
    ("tool_erase", "E", "Erase tool"),
    ("tool_navigate", "N", "Navigate tool (left click moves the crosshair)"),
    ("tool_level_trace", "T", "Level trace tool: click fills the region inside the outline at the clicked "
                              "intensity on the slice (the outline shows under the mouse)"),
    ("tool_scissors", "X", "Scissors tool: drag a shape; erase or fill inside or outside it, on the slice "
                           "or through the volume (Edit panel)"),
    ("brush_smaller", "[", "Brush smaller (its outline follows the mouse)"),
    ("brush_bigger", "]", "Brush bigger"),
    ("tool_interactive", "I", "Interactive tool, point mode: left click inside the object, right click "
                              "(or Ctrl+click) outside it; each click refines the object"),
    ("interactive_box", "B", "Interactive tool, box mode: drag a box around the object on one slice"),
    ("interactive_lasso", "L", "Interactive tool, lasso mode: draw around the object on one slice "
                               "(Ctrl: a negative lasso)"),
    ("interactive_scribble", "K", "Interactive tool, scribble mode: drag over the object (Ctrl: over what "
                                  "is not part of it)"),
    ("interactive_accept", "Return", "In a slice view: accept the interactive object into the chosen segment "
                                      "(one undo step)"),
    ("interactive_new", "Esc", "In a slice view: discard the interactive object and start a new one"),
    (None, "Ctrl+Z (Interactive tool)", "Undo the last prompt while an object is being built"),
    ("measure_ruler", "M", "Measure: ruler (two clicks, or a drag, on a slice view; mm)"),
    ("measure_angle", "Shift+M", "Measure: angle (three clicks: arm, vertex, arm)"),
    ("measure_ellipse", "Alt+M", "Measure: ellipse ROI (drag its box): area, mean, SD, min, max (HU on CT)"),
    ("new_segment", "Ctrl+Shift+N", "Add a segment (a new segmentation if there is none)"),
    ("reset_view", "R", "Reset zoom, pan and 3D camera"),
    ("toggle_segments", "S", "Show / hide all segments"),
    ("toggle_outline", "O", "Segment fill / outline"),
    ("opacity_down", "A", "Segment opacity down"),
    ("opacity_up", "D", "Segment opacity up"),
    ("toggle_heat", "H", "Show / hide heat maps (saliency, uncertainty)"),
    ("preset_next", "W", "Next window preset"),
    ("time_next", "Ctrl+Up", "Next time point of a 3D series over time (next frame of a loop)"),
    ("time_previous", "Ctrl+Down", "Previous time point (previous frame of a loop)"),
    ("cine_play", "Space", "Play / pause the time points (the loop's frames)"),
    ("help_shortcuts", "F1", "This list"),
    (None, "1 ... 9", "Window preset 1 ... 9 (see the Window menu)"),
    (None, "Up / Down, wheel", "Next / previous slice in the view under the mouse or focus"),
    (None, "Page Up / Page Down", "Ten slices"),
    (None, "Home / End", "First / last slice"),
    (None, "Left click / drag", "Move the crosshair; all views follow"),
    (None, "Right drag", "Window (left-right) and level (up-down)"),
    (None, "Middle drag", "Pan"),
    (None, "Ctrl + wheel", "Zoom"),
    (None, "3D: left / right / middle drag", "Rotate / zoom / pan"),
)


def key_for(action_id: str) -> str:
    return next(k for a, k, _ in SHORTCUTS if a == action_id)
