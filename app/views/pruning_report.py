"""The real-pruning report: parameters, the pruned model's accuracy, masked = pruned, heads per
layer, latency against the MACs ceiling, and downloads of the checkpoint and the report."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.plain import code_span


def visualize_pruning_report(result: dict, folder: Path, downloads: dict[str, bytes], *, key: str, pruned_count: int) -> None:
    """Draw a report of :func:`pruning_core.report.pruning_report` written to ``folder``; ``downloads``
    holds its files' bytes (kept with the session, so a later sweep of old runs never breaks a download)."""
    cols = st.columns(4)
    cols[0].metric(
        "Parameters",
        f"{result['parameters_pruned'] / 1e6:.2f} M",
        delta=f"{(result['parameters_pruned'] - result['parameters_full']) / 1e6:+.2f} M",
        delta_color="inverse",
    )
    cols[1].metric("Pruned model accuracy", f"{result['accuracy_pruned']:.2%}", help=f"masked inference: {result['accuracy_masked']:.2%}")
    cols[2].metric(
        "Masked = pruned",
        "yes" if result["masked_equals_pruned"] else "no",
        help=f"largest logit difference between masked inference and the pruned model: {result['max_abs_logit_diff_masked_vs_pruned']:.1e}",
    )
    cols[3].metric("Heads per layer", " ".join(str(k) for k in result["kept_per_layer"]))
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
