"""The demo data: a documented data-generating process with planted effects written as raw extracts (extracts),
and the comparison of estimates with the planted truth (recovery)."""
