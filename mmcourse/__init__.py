"""Multimodal big models from scratch: the tested building blocks of the course."""
