"""Load what the pages need ahead of their first visit: the browser's element code, the server's chart library.

Streamlit loads an element's code (Vega-Lite for charts, the data grid, the select
boxes, the code viewer, ...) the first time a page draws one, so the first chart page
a user opens in a browser session waited about a second on two cores for Vega alone.
The first page a session shows instead asks the browser, once it has drawn, to import
those modules from the same URLs Streamlit's own bundle imports them from; the next
page finds them loaded. Nothing else changes: a browser that blocks it simply loads
them on first use as before.

On the server, the first page view of a process starts a thread that imports Altair
and builds one chart (0.2 s on two cores), which the first chart page would otherwise
pay for.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from pathlib import Path

import streamlit as st

# Streamlit's element modules (streamlit/static/static/js/<Element>.<hash>.js) that the pages use.
ELEMENTS = (
    "ArrowVegaLiteChart",
    "DataFrame",
    "Selectbox",
    "Multiselect",
    "DateInput",
    "Radio",
    "TextInput",
    "Metric",
    "DownloadButton",
    "GraphVizChart",
    "StreamlitSyntaxHighlighter",
)
SESSION_KEY = "prefetched_element_code"
# True in the browser once every module (with the modules it imports) is loaded.
DONE_JS = "() => window.metalayerPrefetched === true"

SCRIPT = """<script>
(() => {
  const main = document.querySelector('script[type="module"][src*="static/js/index."]');
  if (!main) return;
  const load = () => Promise.allSettled(%s.map(name => import(new URL(name, main.src).href)))
    .then(() => { window.metalayerPrefetched = true; });
  setTimeout(load, 300);  // after the landing page has drawn
})();
</script>"""


@cache
def module_names() -> tuple[str, ...]:
    """The hashed file names of ELEMENTS in the installed Streamlit (empty if its layout changes)."""
    folder = Path(st.__file__).parent / "static" / "static" / "js"
    return tuple(
        sorted(
            path.name for element in ELEMENTS for path in folder.glob(f"{element}.*.js") if path.name.count(".") == 2
        )
    )


def prefetch() -> None:
    """Once per browser session: the script that imports the element modules when the browser is idle."""
    names = module_names()
    if st.session_state.get(SESSION_KEY) or not names:
        return
    st.session_state[SESSION_KEY] = True
    st.html(SCRIPT % json.dumps(list(names)), unsafe_allow_javascript=True)


def _import_chart_library() -> None:
    import altair as alt
    import pandas as pd

    alt.Chart(pd.DataFrame({"x": [0]})).mark_line().encode(x="x:Q").to_dict()


@st.cache_resource(show_spinner=False)
def warm_server() -> threading.Thread:
    """Once per server process, in the background: the chart library's import and first chart."""
    thread = threading.Thread(target=_import_chart_library, name="console-warm-up", daemon=True)
    thread.start()
    return thread
