"""The bhpvas dashboard's UI layer (Streamlit): entry point, session state and URL, shared resources,
the sidebar and the views. Pages (``pages/``) arrange views over results from :mod:`pruning_core`.

Run with ``streamlit run app/main.py``; ``app/main.py`` puts the repository root on ``sys.path`` so
that ``app``, ``pages`` and ``pruning_core`` import from the checkout without an install.
"""
