"""MetaLayer console entry point. The full console arrives with its own issue; this page shows the latest runs."""

import pandas as pd
import streamlit as st
from sqlalchemy import create_engine

from pipeline import db

st.set_page_config(page_title="MetaLayer", layout="wide")


@st.cache_resource
def engine():
    return create_engine(db.database_url().replace("postgresql://", "postgresql+psycopg2://", 1))


@st.cache_data(ttl=30)
def latest_runs() -> pd.DataFrame:
    query = """select run_id, run_date, trigger, status, started_at, finished_at, error
               from meta.pipeline_runs order by started_at desc limit 20"""
    return pd.read_sql(query, engine())


st.title("MetaLayer")
st.caption("Latest pipeline runs. Run `make run` to load today's extracts.")
st.dataframe(latest_runs(), use_container_width=True)
