"""Delineate's domain model: Qt-free and torch-free."""
