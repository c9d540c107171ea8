"""Overview: what did I load and how good is it?"""

import streamlit as st

from pages.common import DEFAULT_DATA, DEFAULT_MODEL, cached_dataset, cached_model, evaluate_scheme, show_error
from pruning_core import BhpvasError
from pruning_core.demo import DEMO_DIR, demo_available, prepare_demo

st.title("bhpvas: attention head pruning")
st.caption("Which attention heads of a fine-tuned BERT-family classifier can go, and why?")

params = st.query_params
model_source = params.get("model", DEFAULT_MODEL)
data_source = params.get("data", DEFAULT_DATA)

if model_source == DEFAULT_MODEL and not demo_available():
    st.warning(f"The embedded demo model is missing from `{DEMO_DIR}`.")
    if st.button("Build the demo model (about 30 minutes on a laptop CPU)"):
        bar = st.progress(0.0, text="Fine-tuning")
        prepare_demo(progress=lambda f, m: bar.progress(f, text=f"Fine-tuning: {m}"))
        st.rerun()
    st.stop()

try:
    lm = cached_model(model_source)
    dataset = cached_dataset(data_source)
    result = evaluate_scheme(model_source, data_source, "none")
except BhpvasError as exc:
    show_error(exc)
    st.stop()

facts = lm.describe()
left, middle, right, last = st.columns(4)
left.metric("Architecture", facts["architecture"])
middle.metric("Heads", f"{facts['layers']} × {facts['heads_per_layer']}")
right.metric("Parameters", f"{facts['parameters'] / 1e6:.1f} M")
last.metric(f"Accuracy on {dataset.name}", f"{result.accuracy:.2%}", help=f"{result.n} samples, mean loss {result.loss:.3f}")
st.caption(f"Model `{model_source}` on {facts['device']}; dataset {dataset.name} ({len(dataset)} rows).")
for notice in result.notices + lm.notices:
    st.info(notice)
