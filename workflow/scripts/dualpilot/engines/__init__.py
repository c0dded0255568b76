"""Estimation machinery the analyses call: two-way FE OLS with fixest conventions (estimation), the FWL
partialler (fwl), the vectorised permutation engine (placebo), and seeded draws (resampling)."""
