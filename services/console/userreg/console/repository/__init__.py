"""Every SQL statement of the console, one module per page area. Functions take the caller's
`AsyncSession`: the service owns the transaction."""
