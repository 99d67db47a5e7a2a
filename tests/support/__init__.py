"""Test helpers shared by every test area: ports, polling, a cuttable TCP proxy, service processes."""
