"""Replication between sites: file replication (notifications) and database replication (CIs)."""
