"""What watches a site: alerts, the alert watcher with its webhooks, Prometheus metrics."""
