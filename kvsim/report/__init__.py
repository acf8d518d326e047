"""Tables and figures, drawn only from files that runs saved."""
