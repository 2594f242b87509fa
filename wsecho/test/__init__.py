"""
Unit tests of wsecho; they run in memory, with no sockets and no real time.
"""
