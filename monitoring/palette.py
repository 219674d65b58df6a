"""Colours and names of the clinical categories, one set for every figure: the dashboard's
plotly charts and the cohort report's SVG draw relapse causes and CD19 status alike
(Okabe–Ito colours, distinguishable with colour-blindness). No plotting here."""

from __future__ import annotations

CD19_COLOURS = {
    "CD19-positive": "#0072B2",
    "antigen escape": "#D55E00",
    "lineage switch": "#CC79A7",
    "unknown": "#999999",
}
CAUSE_COLOURS = {
    "relapse": "#0072B2",
    "relapse_cd19_positive": "#0072B2",
    "relapse_antigen_escape": "#D55E00",
    "relapse_cd19_unknown": "#999999",
    "death": "#000000",
    "hsct": "#009E73",
}
CAUSE_LABELS = {
    "relapse": "Relapse",
    "relapse_cd19_positive": "Relapse, CD19-positive",
    "relapse_antigen_escape": "Relapse, antigen escape",
    "relapse_cd19_unknown": "Relapse, CD19 unknown",
    "death": "Death without relapse (competing)",
    "hsct": "Transplant in remission (competing)",
}
