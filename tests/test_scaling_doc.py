"""docs/scaling.md's results table is what tools/scaling.py computes from its inputs, to the character.

The arithmetic lives in one place (the script); the document shows it and its output, so a
changed figure that was not carried into the document fails here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def scaling_tool() -> ModuleType:
    """tools/scaling.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("scaling_tool", ROOT / "tools" / "scaling.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def test_the_results_table_of_docs_scaling_is_the_tools_output() -> None:
    """Between the markers stands exactly `python tools/scaling.py`'s table."""
    text = (ROOT / "docs" / "scaling.md").read_text()
    block = text.split("<!-- tools/scaling.py: begin -->\n", 1)[1].split("<!-- tools/scaling.py: end -->", 1)[0]
    assert block.strip() == scaling_tool().table()


def test_the_arithmetic_follows_the_inputs() -> None:
    """Doubling the chargers per gateway halves the gateways (N+1 kept); the measured figures drive memory."""
    tool = scaling_tool()
    base = tool.size(1_000_000)
    assert (base.gateways, round(base.gateway_rss / tool.MIB)) == (26, 1411)  # 102 MiB + 40,000 x 33.5 KiB
    tool.ASSUMED["chargers_per_gateway"] = 80_000
    tool.MEASURED["rss_per_charger"] = 20 * tool.KIB
    wider = tool.size(1_000_000)
    assert wider.gateways == 14  # ceil(12.5) + 1
    assert round(wider.gateway_rss / tool.MIB) == round(102 + 1_000_000 / 13 * 20 / 1024)
