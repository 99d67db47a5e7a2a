"""The console's services, one module per page area: orchestration and transaction boundaries over
the repository, the shared modules and the other services' `operations`; no SQL, no HTTP."""
