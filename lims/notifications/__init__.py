"""Clinics are told: an outbox written with each change, delivered by webhooks and e-mail."""
