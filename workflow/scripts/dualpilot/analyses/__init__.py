"""One module per analysis of the study: the baseline family (baseline), mechanisms, heterogeneity, PSM-DID
(psm), spatial statistics (spatial) and the robustness checks."""
