"""What a site server serves over HTTP: the SMS Provider and the client policy."""
