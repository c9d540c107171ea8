"""bhpvas dashboard entry point: ``streamlit run app.py``."""

import streamlit as st

st.set_page_config(page_title="bhpvas: attention head pruning", page_icon=":scissors:", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True, url_path="overview"),
    ]
)
navigation.run()
