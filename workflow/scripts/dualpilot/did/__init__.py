"""Staggered-DID estimators that depend on nothing else of the project (so they could be published on their own):
imputation, Callaway-Sant'Anna and Sun-Abraham (staggered), the Goodman-Bacon decomposition, HonestDiD
(honestdid), and the cluster-robust small-sample convention every estimator of the project uses (inference)."""
