"""Honeyports: Twisted listeners on ports and addresses that no legitimate client touches."""
