"""The hierarchy file: a typed model of sites, SUPs, upstream, criteria, schedule; its loader."""
