"""Test helpers shared by every test area: ports and polling, a cuttable TCP proxy, service
processes, a background event loop, the whole system as processes (`system.System`), a client of
the registration API, and the fault tests' figures in the run summary (`fault_report`)."""
