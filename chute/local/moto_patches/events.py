"""EventBridge: an event's delivery no longer parses its input template's paths again.

jsonpath_ng's ``parse`` builds a new parser for every call (PLY reads its tables and reflects
over the grammar again, ~0.3 ms), and moto parses the ten paths of the default input template
for every target of every event: ~6 ms of the endpoint per PutEvents, the workflow's completion
event of every file. A parsed expression is an immutable tree (``find`` only reads it), so the
parsed expressions are kept by their text, as the interpreter's are (``sfn-jsonpath-cache``).
"""

from __future__ import annotations

import jsonpath_ng.ext

from chute.local.moto_patches.seam import Fixes, Kind
from chute.local.moto_patches.stepfunctions import cached_jsonpath

FIXES = Fixes()


FIXES.declare(
    "events-jsonpath-cache",
    Kind.SPEED,
    jsonpath_ng.ext,
    "parse",
    why="EventBridge parses its input template's ten paths for every event it delivers",
)(cached_jsonpath)  # moto.events imports ``parse`` from jsonpath_ng.ext at each delivery
