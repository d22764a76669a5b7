"""updatesync: software-update synchronization across a hierarchy of sites."""

__version__ = "0.1.0"
