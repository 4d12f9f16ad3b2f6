"""Archive: move a converted original from staging to the archive bucket."""
