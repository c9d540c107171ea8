"""bhpvas dashboard entry point: ``streamlit run app/main.py``.

Streamlit puts this file's folder on ``sys.path``; the repository root goes first, so ``app``,
``pages`` and ``pruning_core`` import from this checkout without an install. The pages are callables
(``pages.<name>.render``) run by ``st.navigation``, so no ``pages/`` folder sits beside this script
and a deep link (``/process?model=demo``) as a server's first request opens that page directly.
On a server process's first run, a notice says it is starting before the dashboard's heavy imports.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from app.boot import starting_notice  # noqa: E402

starting = starting_notice()

from app.shell import run_app  # noqa: E402

run_app(starting)
