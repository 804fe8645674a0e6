"""Likeness billing: App Store purchases, subscriptions, notifications and generation quotas."""
