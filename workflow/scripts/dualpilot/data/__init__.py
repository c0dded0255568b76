"""From raw yearbook extracts to the analysis panel: reading (yearbook), value checks (quality), shipped reference
files (reference), the panel and location quotients (panel), and the treatment coding (treatment)."""
