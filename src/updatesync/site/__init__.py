"""The site server of one ConfigMgr site: its database, sync, replication, API and watchers."""
