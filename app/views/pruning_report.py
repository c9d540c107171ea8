"""The real-pruning report: parameters, the saved model's accuracy (fp32, loaded back) and every other
accuracy with its precision and split, masked = pruned, heads per layer, the repair and recovery
that were carried over, latency against the MACs ceiling, and downloads of the checkpoint and the report."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.plain import code_span
from pruning_core.report import treatment_text


def accuracy_rows(accuracy: dict[str, dict]) -> list[dict]:
    """One row per accuracy of the report: which model, the value, its precision and split, and the
    change against the full model with its 95% interval and McNemar p."""
    rows = []
    for entry in accuracy.values():
        change = entry.get("change_vs_full")
        rows.append(
            {
                "model": entry["model"],
                "accuracy": f"{entry['value']:.2%}",
                "precision": entry["precision"],
                "data": f"{entry['data']} ({entry['split']}, {entry['rows']} rows)",
                "change (pp) [95% interval]": "—"
                if change is None
                else f"{100 * change['delta']:+.2f} [{100 * change['low']:+.2f}, {100 * change['high']:+.2f}]",
                "McNemar p": "—" if change is None else f"{change['p_value']:.3g}",
            }
        )
    return rows


def visualize_pruning_report(result: dict, folder: Path, downloads: dict[str, bytes], *, key: str, pruned_count: int) -> None:
    """Draw a report of :func:`pruning_core.report.pruning_report` written to ``folder``; ``downloads``
    holds its files' bytes (kept with the session, so a later sweep of old runs never breaks a download)."""
    accuracy = result["accuracy"]
    saved = accuracy["saved"]
    cols = st.columns(4)
    cols[0].metric(
        "Parameters",
        f"{result['parameters_pruned'] / 1e6:.2f} M",
        delta=f"{(result['parameters_pruned'] - result['parameters_full']) / 1e6:+.2f} M",
        delta_color="inverse",
    )
    cols[1].metric(
        f"Saved model accuracy ({saved['precision']})",
        f"{saved['value']:.2%}",
        delta=f"{(saved['value'] - accuracy['full']['value']) * 100:+.2f} pp",
        help=f"The saved checkpoint loaded back, on the {saved['split']} set; full model: {accuracy['full']['value']:.2%}.",
    )
    cols[2].metric(
        "Masked = pruned",
        "yes" if result["masked_equals_pruned"] else "no",
        help=f"{result['masked_check']['compares']} ({result['masked_check']['precision']}): largest logit difference "
        f"{result['max_abs_logit_diff_masked_vs_pruned']:.1e}",
    )
    cols[3].metric("Heads per layer", " ".join(str(k) for k in result["kept_per_layer"]))
    st.dataframe(accuracy_rows(accuracy), hide_index=True, width="stretch")
    for label, sentence in treatment_text(result):
        st.text(f"{label}: {sentence}")
    st.dataframe(
        result["latency"],
        hide_index=True,
        column_config={
            "batch_size": st.column_config.NumberColumn("batch"),
            "seq_len": st.column_config.NumberColumn("tokens"),
            "full_ms": st.column_config.NumberColumn("full ms", format="%.1f"),
            "pruned_ms": st.column_config.NumberColumn("pruned ms", format="%.1f"),
            "speedup": st.column_config.NumberColumn("measured speed-up", format="%.2f×"),
            "macs_ceiling": st.column_config.NumberColumn("MACs ceiling", format="%.2f×", help="full MACs / pruned MACs"),
        },
    )
    st.caption(
        f"Saved to {code_span(str(folder / 'model'))}: it loads with `pruning_core.load_model(folder)` or `--model` on the command line. "
        "The MACs ceiling is the speed-up a perfect kernel would reach; measured times depend on this machine."
    )
    buttons = (
        ("Pruned model (zip)", "model.zip", f"pruned-{pruned_count}-heads.zip", "application/zip", "model", "download"),
        ("Report (HTML)", "report.html", "pruning-report.html", "text/html", "report", "description"),
        ("Report (JSON)", "report.json", "pruning-report.json", "application/json", "report-json", "data_object"),
    )
    with st.container(horizontal=True):
        for label, name, file_name, mime, suffix, icon in buttons:
            if name in downloads:
                st.download_button(
                    label,
                    data=downloads[name],
                    file_name=file_name,
                    mime=mime,
                    key=f"{key}-{suffix}",
                    on_click="ignore",
                    icon=f":material/{icon}:",
                )
