"""bhpvas dashboard entry point: ``streamlit run app.py``."""

import streamlit as st

from pages.common import init_state, render_sidebar

st.set_page_config(page_title="bhpvas: attention head pruning", page_icon=":scissors:", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True, url_path="overview"),
        st.Page("pages/heads.py", title="Heads", icon=":material/grid_view:", url_path="heads"),
        st.Page("pages/process.py", title="Pruning process", icon=":material/trending_down:", url_path="process"),
        st.Page("pages/samples.py", title="Samples", icon=":material/list_alt:", url_path="samples"),
        st.Page("pages/dependencies.py", title="Dependencies", icon=":material/account_tree:", url_path="dependencies"),
        st.Page("pages/scheme.py", title="Scheme & export", icon=":material/content_cut:", url_path="scheme"),
    ]
)
init_state()
render_sidebar()
navigation.run()
