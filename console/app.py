"""MetaLayer console: `metalayer console` (or `make console`) runs this with Streamlit.

The pages are registered here explicitly; each lives in console/views/ and reads
the warehouse through console/data.py.
"""

import sqlalchemy.exc
import streamlit as st

from console import auth, data, prefetch

st.set_page_config(page_title="MetaLayer console", page_icon=":material/layers:", layout="wide")

PAGES = {
    "Monitor": [
        st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", url_path="overview", default=True),
        st.Page("views/runs.py", title="Runs", icon=":material/timeline:", url_path="runs"),
        st.Page("views/quality.py", title="Data quality", icon=":material/rule:", url_path="quality"),
        st.Page("views/anomalies.py", title="Anomalies", icon=":material/troubleshoot:", url_path="anomalies"),
        st.Page("views/lineage.py", title="Lineage", icon=":material/account_tree:", url_path="lineage"),
    ],
    "Business": [
        st.Page("views/business.py", title="Business KPIs", icon=":material/insights:", url_path="business"),
    ],
    "Ops": [
        st.Page("views/operations.py", title="Operations", icon=":material/play_circle:", url_path="operations"),
    ],
}

page = st.navigation(PAGES)
prefetch.warm_server()

with st.sidebar:
    auth.login_box()

try:
    page.run()
except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
    st.error(
        "The warehouse cannot be reached: check that PostgreSQL runs and that `DATABASE_URL` (or the embedded "
        "server under `METALAYER_HOME`) is the pipeline's.",
        icon=":material/cloud_off:",
    )
    st.caption(str(getattr(exc, "orig", exc)).strip().splitlines()[0])

with st.sidebar:
    prefetch.prefetch()  # the other pages' element code, while the browser is idle
    note = data.warehouse().reader_note
    if note:
        st.caption(f":orange[Read-only role unavailable]: {note}.")
