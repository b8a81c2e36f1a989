"""The Streamlit ops console (`metalayer console`)."""
