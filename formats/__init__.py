"""Reading and writing image and label files; returns core objects, knows nothing of Qt or torch."""
