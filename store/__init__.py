"""The corrections store. Arrives with the correct/store issue."""
