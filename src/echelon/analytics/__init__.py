"""Analytics: campaign metrics and thresholds, dashboards, exports, complaints, webhooks."""
