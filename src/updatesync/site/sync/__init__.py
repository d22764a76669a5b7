"""The sync of a site: SyncNow flag watcher, inbox, worker loop, sync manager, its SUP client."""
